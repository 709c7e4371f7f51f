//! The `multipart` fuzz harness (`h1server::__fuzz::multipart`, docs/FUZZING.md): the
//! parser fed the same body whole, a byte at a time and in pieces of the fuzzer's sizes,
//! each run checked against a whole-buffer reference splitter written for this harness.
//!
//! Test code: never touches a socket, a file or a thread; panics when an invariant breaks.

use super::headers::parse_part_head;
use super::{Error, Event, Limit, Limits, Parser, Part};

/// What a body parsed to: parts, their data (adjacent pieces merged) and their ends.
/// The parser's unit tests (`tests.rs`) record with it too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Out {
    Part(Part),
    Data(Vec<u8>),
    End,
}

/// Appends one parser event to `out`, merging a part's data into one item.
pub(super) fn record(out: &mut Vec<Out>, ev: Event<'_>) {
    match ev {
        Event::Part(part) => out.push(Out::Part(part)),
        Event::Data(d) => {
            assert!(!d.is_empty(), "an empty Data event");
            match out.last_mut() {
                Some(Out::Data(v)) => v.extend_from_slice(d),
                _ => out.push(Out::Data(d.to_vec())),
            }
        }
        Event::PartEnd => out.push(Out::End),
    }
}

/// The parser's verdict: its own error during `feed` (then `finish` repeats it), or what
/// `finish` said after every piece was fed without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// `feed` refused the body.
    Failed(Error),
    /// Every `feed` took its piece; `finish` then said this.
    Finished(Result<(), Error>),
}

/// Boundaries worth having by name: the RFC's, a browser's, one byte, dashes (a delimiter
/// that looks like the close of a shorter one), a space inside, the longest allowed.
const BOUNDARIES: [&str; 8] = [
    "xyz",
    "AaB03x",
    "-",
    "----WebKitFormBoundary7MA4YWxkTrZu0gW",
    "a",
    "b-",
    "simple boundary",
    "0123456789012345678901234567890123456789012345678901234567890123456789",
];

/// The harness. Input: `[a][b][c][boundary bytes?][split sizes][body]`:
///
/// * `a`: `max_parts` (bits 0–1), `max_part_header_bytes` (2–3), `max_field_bytes` (4–5),
///   `max_fields_bytes` (6–7), each the default or a small value;
/// * `b`: `max_file_bytes` (bits 0–1), `max_total_bytes` (2–3), how many split sizes
///   follow (4–7);
/// * `c`: bit 7 clear, a boundary of `BOUNDARIES`; set, the next `c & 63` (at least 1)
///   bytes are the boundary (7-bit, CR and LF made `_`, so `Parser::new` takes it);
/// * the split sizes (1 byte each: the next piece's length, 0 an empty `feed`), cycled;
/// * the rest is the body.
pub(crate) fn run(data: &[u8]) {
    let [a, b, c, rest @ ..] = data else { return };
    let (a, b, c) = (usize::from(*a), usize::from(*b), *c);
    let limits = Limits {
        max_parts: [100, 0, 1, 3][a & 3],
        max_part_header_bytes: [8 * 1024, 0, 40, 100][a >> 2 & 3],
        max_field_bytes: [64 * 1024, 0, 5, 20][a >> 4 & 3],
        max_fields_bytes: [1 << 20, 0, 8, 30][a >> 6 & 3],
        max_file_bytes: [64 << 20, 0, 5, 100][b & 3],
        max_total_bytes: [64 << 20, 0, 50, 300][b >> 2 & 3],
    };
    let (boundary, rest) = if c & 0x80 == 0 {
        (
            BOUNDARIES[usize::from(c) % BOUNDARIES.len()].to_string(),
            rest,
        )
    } else {
        let n = usize::from(c & 63)
            .clamp(1, rest.len().max(1))
            .min(rest.len());
        let (raw, rest) = rest.split_at(n);
        let s: String = raw
            .iter()
            .map(|&x| match x & 0x7f {
                b'\r' | b'\n' => '_',
                x => char::from(x),
            })
            .collect();
        (s, rest)
    };
    let Ok(_) = Parser::new(&boundary, limits) else {
        assert!(boundary.is_empty(), "{boundary:?} refused");
        return;
    };
    let k = (b >> 4).min(rest.len());
    let (sizes, body) = rest.split_at(k);

    let expected = reference(body, &boundary, &limits);
    let whole = feed_in_pieces(body, &boundary, &limits, &[usize::MAX]);
    agree(&expected, &whole, &limits, "whole");
    let bytewise = feed_in_pieces(body, &boundary, &limits, &[1]);
    agree(&expected, &bytewise, &limits, "one byte at a time");
    if !sizes.is_empty() {
        let mut sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();
        if sizes.iter().all(|&s| s == 0) {
            sizes.push(1); // some piece must bring a byte
        }
        let split = feed_in_pieces(body, &boundary, &limits, &sizes);
        agree(
            &expected,
            &split,
            &limits,
            &format!("in pieces of {sizes:?}"),
        );
    }
    check_parse_bytes(body, &boundary, &limits, &expected);
}

/// The data limits: a run refused by one of them delivered some prefix of the part's data
/// (how much depends on the pieces), so only that prefix is compared.
fn is_data_limit(v: Verdict) -> bool {
    matches!(
        v,
        Verdict::Failed(Error::TooLarge {
            limit: Limit::FieldBytes | Limit::FieldsBytes | Limit::FileBytes,
            ..
        })
    )
}

/// Checks a run against the reference: the same verdict, and the same events — except
/// that under a data limit the last part's data need only be a prefix of the reference's.
fn agree(expected: &(Vec<Out>, Verdict), got: &(Vec<Out>, Verdict), limits: &Limits, how: &str) {
    let (want, verdict) = expected;
    let (events, v) = got;
    assert_eq!(v, verdict, "verdict, fed {how}");
    if is_data_limit(*verdict) {
        let strip = |e: &[Out]| -> (Vec<Out>, Vec<u8>) {
            match e.split_last() {
                Some((Out::Data(d), head)) => (head.to_vec(), d.clone()),
                _ => (e.to_vec(), Vec::new()),
            }
        };
        let (want_head, want_tail) = strip(want);
        let (got_head, got_tail) = strip(events);
        assert_eq!(
            got_head, want_head,
            "events before the refused data, fed {how}"
        );
        assert!(
            want_tail.starts_with(&got_tail),
            "the refused part's data delivered is not a prefix of it, fed {how}"
        );
        assert!(
            matches!(want_head.last(), Some(Out::Part(_))),
            "a data limit refuses a part's data"
        );
    } else {
        assert_eq!(events, want, "events, fed {how}");
    }
    // No part's data over its limit, no fields over theirs, no more parts than allowed.
    let (mut file, mut size, mut fields, mut parts) = (false, 0u64, 0u64, 0u64);
    for e in events {
        match e {
            Out::Part(p) => {
                parts += 1;
                (file, size) = (p.is_file(), 0);
            }
            Out::Data(d) => {
                size += d.len() as u64;
                if file {
                    assert!(size <= limits.max_file_bytes, "a file over its limit");
                } else {
                    fields += d.len() as u64;
                    assert!(size <= limits.max_field_bytes, "a field over its limit");
                    assert!(fields <= limits.max_fields_bytes, "fields over their limit");
                }
            }
            Out::End => {}
        }
    }
    assert!(parts <= limits.max_parts, "more parts than max_parts");
}

/// Feeds `body` in pieces of `sizes` (cycled) and checks what must hold after each call:
/// the memory held is bounded by the limits, nothing is delivered once the parser failed
/// or saw the close delimiter, a failure is repeated, `is_done` agrees with `finish`.
fn feed_in_pieces(
    body: &[u8],
    boundary: &str,
    limits: &Limits,
    sizes: &[usize],
) -> (Vec<Out>, Verdict) {
    let mut p = Parser::new(boundary, *limits).expect("checked by the caller");
    let mut out: Vec<Out> = Vec::new();
    let mut failed: Option<Error> = None;
    // `held_bytes` = the fields' bytes (at most `max_fields_bytes`: refused bytes are not
    // counted) + the capacity of the part-header buffer, which grows by doubling to at
    // most `max_part_header_bytes + 1` bytes (8 when the limit is smaller; `reserve_exact`
    // may round up, which the allocator does not do for `u8` in practice).
    let head_cap = limits.max_part_header_bytes.saturating_add(1).max(8);
    let max_held = usize::try_from(limits.max_fields_bytes).unwrap_or(usize::MAX) + head_cap;
    let (mut pos, mut arrived) = (0, 0usize);
    for &size in sizes.iter().cycle() {
        arrived = arrived.saturating_add(size).min(body.len());
        let piece = &body[pos..arrived];
        pos = arrived;
        let done_before = p.is_done();
        let mut events = 0;
        let r = p.feed(piece, &mut |ev| {
            events += 1;
            record(&mut out, ev);
            Ok::<(), Error>(())
        });
        if let Some(e) = failed {
            assert_eq!(r, Err(e), "a failure is repeated");
            assert_eq!(events, 0, "an event after the parser failed");
        }
        if done_before {
            assert_eq!(events, 0, "an event after the close delimiter");
        }
        assert!(
            p.held_bytes() <= max_held,
            "held {} > {max_held}",
            p.held_bytes()
        );
        match r {
            Ok(()) => {}
            Err(e) => {
                assert!(!p.is_done(), "done and failed");
                assert_eq!(p.finish(), Err(e), "finish repeats the failure");
                failed = Some(e);
            }
        }
        assert_eq!(
            p.is_done(),
            p.finish().is_ok(),
            "is_done agrees with finish"
        );
        if arrived == body.len() {
            break;
        }
    }
    let verdict = match failed {
        Some(e) => Verdict::Failed(e),
        None => Verdict::Finished(p.finish()),
    };
    (out, verdict)
}

/// A whole-buffer reading of the body, for comparison: searches for delimiters and blank
/// lines rather than walking a state machine byte by byte. Errors come from the first
/// byte, in body order, that breaks a rule or a limit (at one byte: a bare CR or LF, then
/// the header size, then the parsed header block; a field's own limit before the fields').
fn reference(body: &[u8], boundary: &str, limits: &Limits) -> (Vec<Out>, Verdict) {
    let allowed = usize::try_from(limits.max_total_bytes).unwrap_or(usize::MAX);
    let (out, verdict) = reference_within(&body[..body.len().min(allowed)], boundary, limits);
    if body.len() > allowed && !matches!(verdict, Verdict::Failed(_)) {
        let e = Error::TooLarge {
            limit: Limit::TotalBytes,
            max: limits.max_total_bytes,
        };
        // The bytes within the limit were read as in any body; the next one is refused.
        return (out, Verdict::Failed(e));
    }
    (out, verdict)
}

fn reference_within(body: &[u8], boundary: &str, limits: &Limits) -> (Vec<Out>, Verdict) {
    let delim: Vec<u8> = [b"\r\n--", boundary.as_bytes()].concat();
    let find = |from: usize| -> Option<usize> {
        body[from..]
            .windows(delim.len())
            .position(|w| w == delim.as_slice())
            .map(|i| from + i)
    };
    let mut out = Vec::new();
    let fail = |out: Vec<Out>, e: Error| (out, Verdict::Failed(e));
    let truncated = |out: Vec<Out>| (out, Verdict::Finished(Err(Error::Truncated)));
    // The preamble: the body may open with the dash-boundary, as if after a CRLF.
    let mut at = if body.starts_with(&delim[2..]) {
        delim.len() - 2
    } else {
        match find(0) {
            Some(i) => i + delim.len(),
            None => return (out, Verdict::Finished(Err(Error::NoBoundaryLine))),
        }
    };
    let (mut parts, mut fields) = (0u64, 0u64);
    loop {
        // After a delimiter: `--`, or transport padding and CRLF.
        let line = &body[at..];
        if line.first() == Some(&b'-') {
            return match line.get(1) {
                Some(b'-') => (out, Verdict::Finished(Ok(()))),
                Some(_) => fail(out, Error::TextAfterBoundary),
                None => truncated(out),
            };
        }
        let pad = line
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        match &line[pad..] {
            [] | [b'\r'] => return truncated(out),
            [b'\r', b'\n', ..] => {}
            _ => return fail(out, Error::TextAfterBoundary),
        }
        at += pad + 2;
        parts += 1;
        if parts > limits.max_parts {
            return fail(
                out,
                Error::TooLarge {
                    limit: Limit::Parts,
                    max: limits.max_parts,
                },
            );
        }
        // The header block: up to its blank line (at once, or after CRLF-ended lines).
        let head = &body[at..];
        let bad_line_end =
            (0..head.len()).find(|&i| (i > 0 && head[i - 1] == b'\r') != (head[i] == b'\n'));
        let end = if head.starts_with(b"\r\n") {
            Some(1)
        } else {
            head.windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 3)
        };
        let too_long = limits.max_part_header_bytes; // index of the first byte too many
        let first = [bad_line_end, Some(too_long), end]
            .into_iter()
            .flatten()
            .filter(|&i| i < head.len())
            .min();
        let part = match first {
            None => return truncated(out),
            Some(i) if Some(i) == bad_line_end => return fail(out, Error::BadPartHeader),
            Some(i) if i == too_long => {
                return fail(
                    out,
                    Error::TooLarge {
                        limit: Limit::PartHeaderBytes,
                        max: too_long as u64,
                    },
                );
            }
            Some(i) => match parse_part_head(&head[..i - 1]) {
                Ok(p) => {
                    at += i + 1;
                    p
                }
                Err(e) => return fail(out, e),
            },
        };
        // The body: up to the next delimiter, or the end less what could begin one.
        let file = part.is_file();
        out.push(Out::Part(part));
        let (data_end, next) = match find(at) {
            Some(d) => (d, Some(d + delim.len())),
            None => {
                let held = (1..delim.len())
                    .rev()
                    .find(|&n| body.len() - at >= n && body.ends_with(&delim[..n]))
                    .unwrap_or(0);
                (body.len() - held, None)
            }
        };
        let data = &body[at..data_end];
        let n = data.len() as u64;
        // The byte count at which each limit is first passed.
        let over = |max: u64, before: u64| max.saturating_sub(before).saturating_add(1);
        let refused = if file {
            (n >= over(limits.max_file_bytes, 0))
                .then_some((Limit::FileBytes, limits.max_file_bytes))
        } else {
            let own = over(limits.max_field_bytes, 0);
            let all = over(limits.max_fields_bytes, fields);
            fields += n;
            if n >= own && own <= all {
                Some((Limit::FieldBytes, limits.max_field_bytes))
            } else if n >= all {
                Some((Limit::FieldsBytes, limits.max_fields_bytes))
            } else {
                None
            }
        };
        if !data.is_empty() {
            out.push(Out::Data(data.to_vec()));
        }
        if let Some((limit, max)) = refused {
            return fail(out, Error::TooLarge { limit, max });
        }
        match next {
            Some(next) => {
                out.push(Out::End);
                at = next;
            }
            None => return truncated(out),
        }
    }
}

/// `parse_bytes` (the buffered way in) reads the same form, when the boundary can be
/// named in a Content-Type; a field that is not UTF-8 refuses the form at its end.
fn check_parse_bytes(body: &[u8], boundary: &str, limits: &Limits, expected: &(Vec<Out>, Verdict)) {
    let ct = format!("multipart/form-data; boundary=\"{boundary}\"");
    if super::boundary(&ct).as_deref() != Ok(boundary) {
        return;
    }
    let got = super::parse_bytes(&ct, body, *limits);
    let (events, verdict) = expected;
    let mut form = super::Form::default();
    let mut current: Option<(Part, Vec<u8>)> = None;
    for e in events {
        match e {
            Out::Part(p) => current = Some((p.clone(), Vec::new())),
            Out::Data(d) => current
                .as_mut()
                .expect("data in a part")
                .1
                .extend_from_slice(d),
            Out::End => {
                let (part, data) = current.take().expect("an end of a part");
                if part.is_file() {
                    form.files.push(super::FilePart {
                        filename: part.filename.unwrap_or_default(),
                        name: part.name,
                        content_type: part.content_type,
                        data,
                    });
                } else {
                    let Ok(value) = String::from_utf8(data) else {
                        assert_eq!(got, Err(Error::FieldNotUtf8), "a field that is not UTF-8");
                        return;
                    };
                    form.fields.push(super::Field {
                        name: part.name,
                        value,
                    });
                }
            }
        }
    }
    match verdict {
        Verdict::Failed(e) | Verdict::Finished(Err(e)) => assert_eq!(got, Err(*e), "parse_bytes"),
        Verdict::Finished(Ok(())) => assert_eq!(got, Ok(form), "parse_bytes"),
    }
}
