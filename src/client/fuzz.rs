//! The `client` fuzz target's harness: an upstream's response bytes, untrusted, through the
//! client's sans-I/O core (`client/conn.rs`), which the blocking client and the gateway
//! (`conn/forward.rs`) both read their answers with. It never touches a socket: the bytes
//! are fed as a driver feeds them, whole and split, and every verdict is checked against
//! RFC 9112 §6.3 and a plain reference reading of the same bytes. See docs/FUZZING.md.
//!
//! Input: `[limits][control][3 request bytes][k split sizes][the upstream's bytes]`.

use self::reference::{
    Chunked, fields_frame_a_body, framing, plain_head, raw_head, reference_chunked, skip_100s,
};
use super::conn::{BodyLength, ClientConn, Event, Limits, ResponseHead};
use crate::http::encode::BodyFraming;
use crate::http::parse::{MAX_HEADERS_CAP, is_tchar};

/// Methods a request may have: GET, HEAD (§6.3 item 1), CONNECT (item 2), POST.
const METHODS: [&str; 4] = ["GET", "HEAD", "CONNECT", "POST"];

/// The request in flight, from one byte.
#[derive(Clone, Copy, Debug)]
struct Req {
    method: &'static str,
    /// `Connection: close`.
    close: bool,
    /// `Connection: upgrade` + `Upgrade: websocket` (a 101 is allowed).
    upgrade: bool,
    /// `Expect: 100-continue` (a 100 is surfaced).
    expect: bool,
    /// `forbid_reuse` after writing it (the driver's early final answer to an `Expect`).
    forbid: bool,
    /// Sent the gateway's way (`conn/forward.rs`): encoded by the caller, announced with
    /// `expect_response` (feature `proxy`; else the same request through `write_request`).
    /// Such a request is never a CONNECT and carries no `close` or `Upgrade`.
    #[cfg_attr(not(feature = "proxy"), allow(dead_code))]
    gateway: bool,
}

impl Req {
    fn from_byte(b: u8) -> Req {
        let gateway = b & 64 != 0;
        let method = METHODS[usize::from(b & 3)];
        Req {
            method: if gateway && method == "CONNECT" {
                "GET"
            } else {
                method
            },
            close: b & 4 != 0 && !gateway,
            upgrade: b & 8 != 0 && !gateway,
            expect: b & 16 != 0,
            forbid: b & 32 != 0,
            gateway,
        }
    }

    fn write(self, c: &mut ClientConn) {
        #[cfg(feature = "proxy")]
        if self.gateway {
            c.expect_response(self.method == "HEAD", self.expect);
            if self.forbid {
                c.forbid_reuse();
            }
            return;
        }
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        if self.close {
            headers.push(("Connection", b"close"));
        }
        if self.upgrade {
            headers.push(("Connection", b"upgrade"));
            headers.push(("Upgrade", b"websocket"));
        }
        let mut framing = BodyFraming::None;
        if self.expect {
            headers.push(("Expect", b"100-continue"));
            framing = BodyFraming::Length(3);
        }
        let target = if self.method == "CONNECT" {
            "h:443"
        } else {
            "/"
        };
        let mut out = Vec::new();
        c.write_request(self.method, target, "h", &headers, framing, &mut out)
            .expect("a valid request");
        if self.forbid {
            c.forbid_reuse();
        }
    }
}

/// One request's answer as a run saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Exchange {
    /// Where (in the whole input) the response started: after the previous one's end.
    start: usize,
    interim: Vec<(ResponseHead, usize)>,
    /// The final head and where it ended.
    head: Option<(ResponseHead, usize)>,
    /// The bytes `Data` events reported.
    body: Vec<u8>,
    /// `End { reusable }` and where the response ended.
    end: Option<(bool, usize)>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// The core failed (the error's `Debug`). Where is not compared: the bytes of a chunk
    /// line consumed before the one that fails depend on the pieces.
    Error(String),
    /// A 101 or a 2xx to CONNECT: the rest is another protocol's.
    Upgraded,
    /// The last request's response ended (reusable or not).
    Ended,
    /// Still waiting for more bytes (the upstream did not close).
    Pending,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    exchanges: Vec<Exchange>,
    outcome: Outcome,
}

/// The harness: see docs/FUZZING.md, `client`.
pub(crate) fn run(data: &[u8]) {
    let [lim, ctl, r0, r1, r2, rest @ ..] = data else {
        return;
    };
    let limits = Limits {
        max_head_bytes: [64 * 1024, 16, 60, 200][usize::from(lim & 3)],
        max_headers: [100, 0, 1, 3][usize::from(lim >> 2 & 3)],
        max_body_bytes: [16 << 20, 0, 5, 64, u64::MAX, 1, 300, 4096][usize::from(lim >> 4 & 7)],
    };
    let reqs: Vec<Req> = [r0, r1, r2][..1 + usize::from(ctl & 3) % 3]
        .iter()
        .map(|&&b| Req::from_byte(b))
        .collect();
    let eof = ctl & 4 == 0;
    let k = usize::from(ctl >> 4).min(rest.len());
    let (sizes, input) = rest.split_at(k);
    let whole = drive(limits, &reqs, input, eof, &[usize::MAX]);
    check(limits, &reqs, input, eof, &whole);
    let bytewise = drive(limits, &reqs, input, eof, &[1]);
    same(&whole, &bytewise, "whole vs one byte per feed");
    if !sizes.is_empty() {
        let mut sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();
        if sizes.iter().all(|&s| s == 0) {
            sizes.push(1);
        }
        let split = drive(limits, &reqs, input, eof, &sizes);
        same(&whole, &split, "whole vs split");
    }
}

/// Two runs of the same bytes agree: the same heads at the same places, the same ends and
/// outcome, and the same body — but a body cut by an error may have been delivered further
/// in smaller pieces (a close-delimited body past the limit is refused at the read that
/// passes it), so there one body must be a prefix of the other. (A head past the limit
/// and a start that is not `HTTP/1.` used to be let off as one verdict, when the limit
/// fell inside those first bytes after interim heads that used most of it; the start is
/// now judged on the bytes the limit lets in, so the verdict is the same, too.)
fn same(a: &Run, b: &Run, what: &str) {
    assert_eq!(a.outcome, b.outcome, "{what}: outcome");
    assert_eq!(a.exchanges.len(), b.exchanges.len(), "{what}: exchanges");
    let last = a.exchanges.len() - 1;
    for (i, (x, y)) in a.exchanges.iter().zip(&b.exchanges).enumerate() {
        assert_eq!(x.start, y.start, "{what}: exchange {i} start");
        assert_eq!(x.interim, y.interim, "{what}: exchange {i} interim");
        assert_eq!(x.head, y.head, "{what}: exchange {i} head");
        assert_eq!(x.end, y.end, "{what}: exchange {i} end");
        let cut = i == last && matches!(a.outcome, Outcome::Error(_) | Outcome::Pending);
        if cut {
            let n = x.body.len().min(y.body.len());
            assert_eq!(x.body[..n], y.body[..n], "{what}: exchange {i} body prefix");
        } else {
            assert_eq!(x.body, y.body, "{what}: exchange {i} body");
        }
    }
}

/// Feeds `input` to a fresh core as a driver does: the bytes received and not consumed,
/// `sizes` more at a time (cycled), polling until `NeedMore` before the next piece, then
/// EOF when `eof`. Writes the next request after a reusable end. Checks the per-call
/// promises on the way.
fn drive(limits: Limits, reqs: &[Req], input: &[u8], eof: bool, sizes: &[usize]) -> Run {
    let mut c = ClientConn::new(limits);
    assert!(c.is_idle());
    reqs[0].write(&mut c);
    assert!(!c.is_idle());
    let mut next_req = 1;
    let mut buf: Vec<u8> = Vec::new();
    // Bytes of `input` consumed so far (buf holds input[used..arrived]).
    let (mut used, mut arrived) = (0usize, 0usize);
    let mut closed = false;
    let mut size = sizes.iter().cycle();
    let mut exchanges = vec![Exchange::default()];
    let mut out = Vec::new();
    let mut polls = 0usize;
    let outcome = loop {
        polls += 1;
        // At least one byte arrives per cycle of at most 16 sizes.
        assert!(polls <= 40 * (input.len() + 4), "no progress: a hang");
        let before = out.len();
        let r = c.poll(&buf, closed, &mut out);
        let (n, ev) = match r {
            Ok(x) => x,
            Err(e) => {
                nothing_after(&mut c, &buf[..], closed);
                break Outcome::Error(format!("{e:?}"));
            }
        };
        assert!(n <= buf.len(), "consumed more than it was given");
        buf.drain(..n);
        used += n;
        let ex = exchanges.last_mut().expect("an exchange");
        if !matches!(ev, Event::Data(_)) {
            assert_eq!(out.len(), before, "body bytes without a Data event");
        }
        assert_eq!(c.is_idle(), matches!(ev, Event::End { reusable: true }));
        match ev {
            Event::NeedMore => {
                if arrived < input.len() {
                    let step = (*size.next().expect("cycled")).min(input.len() - arrived);
                    buf.extend_from_slice(&input[arrived..arrived + step]);
                    arrived += step;
                } else if eof && !closed {
                    closed = true;
                } else {
                    assert!(!closed, "NeedMore after EOF: a hang");
                    break Outcome::Pending;
                }
            }
            Event::Informational(h) => {
                assert!(ex.head.is_none() && n > 0);
                ex.interim.push((h, used));
            }
            Event::Head(h) => {
                assert!(ex.head.is_none() && n > 0);
                ex.head = Some((h, used));
                if c.is_upgraded() {
                    nothing_after(&mut c, &buf[..], closed);
                    break Outcome::Upgraded;
                }
            }
            Event::Data(d) => {
                assert!(ex.head.is_some() && ex.end.is_none());
                assert!(d > 0 && d <= n.max(1) && out.len() - before == d);
                ex.body.extend_from_slice(&out[before..]);
                out.clear();
            }
            Event::End { reusable } => {
                assert!(ex.head.is_some());
                ex.end = Some((reusable, used));
                if !reusable || next_req == reqs.len() {
                    if !reusable {
                        nothing_after(&mut c, &buf[..], closed);
                    }
                    break Outcome::Ended;
                }
                reqs[next_req].write(&mut c);
                next_req += 1;
                exchanges.push(Exchange {
                    start: used,
                    ..Exchange::default()
                });
            }
        }
    };
    Run { exchanges, outcome }
}

/// After an error, a non-reusable end or an upgrade the core refuses everything.
fn nothing_after(c: &mut ClientConn, rest: &[u8], eof: bool) {
    assert!(!c.is_idle());
    let mut out = Vec::new();
    assert!(c.poll(rest, eof, &mut out).is_err(), "a call after the end");
    assert!(c.poll(b"HTTP/1.1 200 OK\r\n\r\n", eof, &mut out).is_err());
    assert!(out.is_empty());
    assert!(!c.is_idle());
    let mut req = Vec::new();
    assert!(
        c.write_request("GET", "/", "h", &[], BodyFraming::None, &mut req)
            .is_err()
    );
}

/// The whole-input run against RFC 9112 and a reference reading of the same bytes.
fn check(limits: Limits, reqs: &[Req], input: &[u8], eof: bool, run: &Run) {
    let max_fields = limits.max_headers.clamp(1, MAX_HEADERS_CAP);
    for (i, ex) in run.exchanges.iter().enumerate() {
        let req = reqs[i];
        accepts_plain_head(limits, req, &input[ex.start..], ex);
        let mut at = ex.start;
        for (h, end) in &ex.interim {
            // RFC 9110 §15.2.1: a 100 nobody asked for is skipped, not surfaced.
            assert!((100..200).contains(&h.status) && h.status != 101, "{h:?}");
            assert!(h.status != 100 || req.expect, "an unasked-for 100 surfaced");
            assert_eq!(h.body, BodyLength::None);
            raw_head(skip_100s(&input[at..*end], req), h);
            at = *end;
        }
        let Some((h, head_end)) = &ex.head else {
            continue;
        };
        let final_raw = skip_100s(&input[at..*head_end], req);
        raw_head(final_raw, h);
        // Every 1xx before the final head, surfaced or skipped.
        let interim_raw = &input[ex.start..*head_end - final_raw.len()];
        assert!(
            head_end - ex.start <= limits.max_head_bytes,
            "interim and final heads past max_head_bytes"
        );
        for h in ex.interim.iter().map(|(h, _)| h).chain([h]) {
            assert!(
                h.headers.len() <= max_fields,
                "more fields than max_headers"
            );
            for (name, value) in &h.headers {
                assert!(!name.is_empty() && name.bytes().all(is_tchar), "{name:?}");
                assert!(!value.iter().any(|&c| c == b'\r' || c == b'\n' || c == 0));
                let ows = |c: Option<&u8>| matches!(c, Some(b' ' | b'\t'));
                assert!(!ows(value.first()) && !ows(value.last()));
            }
        }
        let expected = framing(req, limits, h);
        let Ok((body, persist)) = expected else {
            panic!("accepted a head §6.3 refuses: {h:?} for {req:?}");
        };
        // A 1xx that framed a body leaves the connection out of step, as a 204 does.
        let persist = persist && !fields_frame_a_body(interim_raw);
        assert_eq!(h.body, body, "§6.3 framing of {h:?} for {req:?}");
        let upgraded = h.status == 101 || (req.method == "CONNECT" && h.status / 100 == 2);
        assert_eq!(
            upgraded,
            run.outcome == Outcome::Upgraded && i + 1 == run.exchanges.len()
        );
        if upgraded {
            assert!(
                h.status != 101 || req.upgrade,
                "101 to a request without Upgrade"
            );
            assert!(ex.body.is_empty() && ex.end.is_none());
            continue;
        }
        assert!(
            ex.body.len() as u64 <= limits.max_body_bytes,
            "body past the limit"
        );
        let rest = &input[*head_end..];
        // The body against a reference reading of the bytes after the head.
        let (want, want_end): (&[u8], Option<usize>) = match body {
            BodyLength::None => (&[], Some(0)),
            BodyLength::Length(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if rest.len() >= n {
                    (&rest[..n], Some(n))
                } else {
                    (rest, None)
                }
            }
            BodyLength::CloseDelimited => (rest, eof.then_some(rest.len())),
            BodyLength::Chunked => match reference_chunked(rest) {
                Chunked::Complete(b, n) => {
                    let fits = b.len() as u64 <= limits.max_body_bytes;
                    check_body(ex, &b, fits.then_some(*head_end + n), run, i, persist, req);
                    assert!(
                        fits || matches!(run.outcome, Outcome::Error(_)),
                        "past the limit"
                    );
                    continue;
                }
                Chunked::Incomplete(b, announced) => {
                    let fits = announced <= limits.max_body_bytes;
                    // The engine ends no body the reference has not seen end.
                    assert!(ex.end.is_none(), "a chunked body ended early");
                    if fits && !eof {
                        assert_eq!(run.outcome, Outcome::Pending);
                    }
                    if fits && eof {
                        assert!(matches!(run.outcome, Outcome::Error(_)), "EOF mid-chunk");
                    }
                    let n = ex.body.len().min(b.len());
                    assert_eq!(ex.body[..n], b[..n]);
                    continue;
                }
                Chunked::Unknown(b) => {
                    // Past what the reference reads: the body so far must still agree.
                    let n = ex.body.len().min(b.len());
                    assert_eq!(ex.body[..n], b[..n], "chunked body");
                    continue;
                }
            },
        };
        let too_large = want.len() as u64 > limits.max_body_bytes;
        check_body(
            ex,
            want,
            want_end.filter(|_| !too_large).map(|n| head_end + n),
            run,
            i,
            persist,
            req,
        );
        if body == BodyLength::CloseDelimited && too_large {
            assert!(
                matches!(run.outcome, Outcome::Error(_)),
                "body past the limit"
            );
        }
    }
}

/// The exchange's body is `want` and it ends at `end` (absolute) when that is `Some`;
/// otherwise the body delivered is a prefix of `want` and nothing ended it.
fn check_body(
    ex: &Exchange,
    want: &[u8],
    end: Option<usize>,
    run: &Run,
    i: usize,
    persist: bool,
    req: Req,
) {
    let last = i + 1 == run.exchanges.len();
    match end {
        Some(at) => {
            assert_eq!(ex.body, want, "the body");
            let Some((reusable, got)) = ex.end else {
                panic!("a complete body did not end the response: {run:?}");
            };
            assert_eq!(got, at, "where the response ended");
            // RFC 9112 §9.3.
            let close_delimited =
                ex.head.as_ref().expect("head").0.body == BodyLength::CloseDelimited;
            assert_eq!(
                reusable,
                persist && !req.close && !req.forbid && !close_delimited,
                "reusable"
            );
            if last {
                assert_eq!(run.outcome, Outcome::Ended);
            }
        }
        None => {
            assert!(ex.end.is_none(), "an incomplete body ended");
            assert!(want.starts_with(&ex.body), "the body so far");
            assert!(last);
            assert!(matches!(run.outcome, Outcome::Error(_) | Outcome::Pending));
        }
    }
}

/// The converse of the checks on what the core accepted: a plainly valid first head, within
/// the limits, whose framing §6.3 allows, is not refused. Plain: `HTTP/1.0` or `HTTP/1.1` to `1.9`,
/// SP, three digits, SP, a reason of VCHAR / SP / HTAB / obs-text, CRLF; field lines of a
/// token, `:`, and a value of the same bytes, each ending with CRLF; the final CRLF.
fn accepts_plain_head(limits: Limits, req: Req, bytes: &[u8], ex: &Exchange) {
    let Some((len, h)) = plain_head(bytes) else {
        return;
    };
    let max_fields = limits.max_headers.clamp(1, MAX_HEADERS_CAP);
    if len > limits.max_head_bytes
        || h.headers.len() > max_fields
        || (h.status == 100 && !req.expect)
        || (h.status == 101 && !req.upgrade)
    {
        return;
    }
    if (h.status >= 200 || h.status == 101) && framing(req, limits, &h).is_err() {
        return;
    }
    let first = ex.interim.first().or(ex.head.as_ref());
    let Some((got, end)) = first else {
        panic!("a plain head refused: {h:?} for {req:?}");
    };
    assert_eq!(*end - ex.start, len, "where the plain head ends");
    assert_eq!(
        (got.status, got.version, &got.headers),
        (h.status, h.version, &h.headers)
    );
}

#[path = "fuzz_reference.rs"]
mod reference;
