//! The `multipart/form-data` body state machine (RFC 2046 §5.1.1, RFC 7578): fed the body
//! in pieces of any size, it reports each part's headers, its bytes and its end.
//!
//! Sans-I/O: never touches a socket, a file or a thread, never holds a part's body; it
//! keeps one part's header block (bounded) and how much of a boundary delimiter the last
//! piece ended with — the held bytes are the delimiter's own, so no copy is needed.
//!
//! ```text
//! multipart-body := [preamble CRLF] dash-boundary transport-padding CRLF body-part
//!                   *encapsulation close-delimiter transport-padding [CRLF epilogue]
//! encapsulation  := delimiter transport-padding CRLF body-part
//! delimiter      := CRLF dash-boundary        dash-boundary := "--" boundary
//! close-delimiter := delimiter "--"           transport-padding := *LWSP-char
//! body-part      := MIME-part-headers [CRLF *OCTET]
//! ```

use super::headers::{MAX_BOUNDARY, parse_part_head};
use super::{Error, Limit, Limits, Part};

/// What the parser found, in body order: `Part`, any number of `Data`, `PartEnd`, and so
/// on for each part.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A part begins: its headers.
    Part(Part),
    /// The next bytes of the current part's body (possibly a few bytes at a time where a
    /// piece ended with what could have been a boundary).
    Data(&'a [u8]),
    /// The current part's body is complete.
    PartEnd,
}

/// Where the parser is in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the first delimiter: the preamble, discarded (RFC 2046 §5.1.1).
    Preamble,
    /// Just after a delimiter: `--` closes the body, else padding then CRLF.
    AfterDelimiter,
    /// The first `-` of a closing `--`.
    CloseDash,
    /// Transport padding (SP / HTAB) after a delimiter.
    Padding,
    /// The CR ending a delimiter line.
    DelimiterCr,
    /// A part's header block, up to its blank line.
    Headers,
    /// A part's body, up to the next delimiter.
    Body,
    /// After the closing delimiter: the epilogue, discarded.
    Epilogue,
}

/// An incremental `multipart/form-data` parser for one body.
///
/// Feed it the body in order with [`feed`](Parser::feed), in pieces of any size, then call
/// [`finish`](Parser::finish) when the body ends. Line ends are CRLF (RFC 2046 §5.1.1): a
/// bare LF in part headers is refused and an LF-only delimiter is not one.
///
/// ```
/// use h1server::multipart::{Event, Limits, Parser};
///
/// let body = b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--xyz--\r\n";
/// let mut p = Parser::new("xyz", Limits::default()).unwrap();
/// let mut data = Vec::new();
/// for piece in body.chunks(7) {
///     p.feed(piece, &mut |ev| {
///         if let Event::Data(d) = ev {
///             data.extend_from_slice(d);
///         }
///         Ok::<(), h1server::multipart::Error>(())
///     })
///     .unwrap();
/// }
/// p.finish().unwrap();
/// assert_eq!(data, b"hello");
/// ```
#[derive(Debug)]
pub struct Parser {
    /// `CRLF "--" boundary`: what ends a part (and, after a virtual CRLF, the preamble).
    delim: Box<[u8]>,
    /// The bounds this body is held to.
    limits: Limits,
    state: State,
    /// How many bytes of `delim` the input seen so far ends with (preamble and body): they
    /// are held back until the next byte says whether they were data.
    matched: usize,
    /// The current part's header block so far (at most `max_part_header_bytes`).
    head: Vec<u8>,
    /// Parts begun, for `max_parts`.
    parts: u64,
    /// Body bytes fed, for `max_total_bytes`.
    total: u64,
    /// The current part is a file (it has a filename): which size limit applies.
    part_is_file: bool,
    /// The current part's body bytes, for `max_field_bytes` / `max_file_bytes`.
    part_bytes: u64,
    /// All field values' bytes, for `max_fields_bytes`.
    fields_bytes: u64,
    /// The parser's own error, repeated by every later call: the body is refused.
    failed: Option<Error>,
}

impl Parser {
    /// A parser for a body delimited by `boundary` (as [`boundary`](super::boundary)
    /// returns it); [`Error::BadBoundary`] unless it is 1–70 characters with no CR or LF.
    pub fn new(boundary: &str, limits: Limits) -> Result<Parser, Error> {
        let b = boundary.as_bytes();
        if b.is_empty() || b.len() > MAX_BOUNDARY || b.iter().any(|&c| c == b'\r' || c == b'\n') {
            return Err(Error::BadBoundary);
        }
        let mut delim = Vec::with_capacity(4 + b.len());
        delim.extend_from_slice(b"\r\n--");
        delim.extend_from_slice(b);
        Ok(Parser {
            delim: delim.into_boxed_slice(),
            limits,
            state: State::Preamble,
            // The body may open with `--boundary`: as if a CRLF came before it.
            matched: 2,
            head: Vec::new(),
            parts: 0,
            total: 0,
            part_is_file: false,
            part_bytes: 0,
            fields_bytes: 0,
            failed: None,
        })
    }

    /// Parses the next piece of the body, calling `on` for each event. The parser's own
    /// errors convert into `E`; an error from `on` is returned as is (the parser stays
    /// consistent: feeding on is allowed, though usually the body is refused).
    ///
    /// Once the parser returned an error of its own, every later call returns it again.
    pub fn feed<E: From<Error>>(
        &mut self,
        input: &[u8],
        on: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if let Some(e) = self.failed {
            return Err(e.into());
        }
        // The bytes within `max_total_bytes` are read as in any body, and the first one
        // past it is refused: so the verdict does not depend on how the body was cut into
        // pieces (an error earlier in the body wins, whatever piece brought the excess).
        let room = self.limits.max_total_bytes - self.total;
        let over = input.len() as u64 > room;
        let input = if over { &input[..room as usize] } else { input };
        self.total += input.len() as u64;
        self.parse(input, on)?;
        if over {
            let max = self.limits.max_total_bytes;
            return Err(self.fail(Error::TooLarge {
                limit: Limit::TotalBytes,
                max,
            }));
        }
        Ok(())
    }

    /// `feed` for a piece within `max_total_bytes`.
    fn parse<E: From<Error>>(
        &mut self,
        input: &[u8],
        on: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut i = 0;
        while i < input.len() {
            let c = input[i];
            let next = match (self.state, c) {
                (State::Preamble | State::Body, _) => {
                    i = self.scan(input, i, on)?;
                    continue;
                }
                (State::Headers, _) => {
                    i = self.read_head(input, i, on)?;
                    continue;
                }
                (State::Epilogue, _) => break,
                (State::AfterDelimiter, b'-') => State::CloseDash,
                (State::CloseDash, b'-') => State::Epilogue,
                (State::AfterDelimiter | State::Padding, b' ' | b'\t') => State::Padding,
                (State::AfterDelimiter | State::Padding, b'\r') => State::DelimiterCr,
                (State::DelimiterCr, b'\n') => {
                    self.start_part()?;
                    State::Headers
                }
                (State::AfterDelimiter | State::CloseDash | State::Padding, _) => {
                    return Err(self.fail(Error::TextAfterBoundary));
                }
                (State::DelimiterCr, _) => return Err(self.fail(Error::TextAfterBoundary)),
            };
            self.state = next;
            i += 1;
        }
        Ok(())
    }

    /// The body ended: `Ok` when the closing delimiter was seen (the epilogue may follow).
    pub fn finish(&self) -> Result<(), Error> {
        match (self.failed, self.state) {
            (Some(e), _) => Err(e),
            (None, State::Epilogue) => Ok(()),
            (None, State::Preamble) => Err(Error::NoBoundaryLine),
            (None, _) => Err(Error::Truncated),
        }
    }

    /// True once the closing delimiter was seen: the rest is epilogue.
    pub fn is_done(&self) -> bool {
        self.state == State::Epilogue && self.failed.is_none()
    }

    fn fail<E: From<Error>>(&mut self, e: Error) -> E {
        self.failed = Some(e);
        e.into()
    }

    /// A delimiter line ended: a new part begins, if `max_parts` allows.
    fn start_part<E: From<Error>>(&mut self) -> Result<(), E> {
        self.parts += 1;
        if self.parts > self.limits.max_parts {
            let max = self.limits.max_parts;
            return Err(self.fail(Error::TooLarge {
                limit: Limit::Parts,
                max,
            }));
        }
        self.head.clear();
        Ok(())
    }

    /// Preamble or body from `input[i..]` up to the next complete delimiter (then the
    /// state is `AfterDelimiter`) or the end of the input. Returns where it stopped.
    ///
    /// The delimiter holds one CR, at its start (a boundary has no CR), so no proper
    /// suffix of a partial match begins a new one: after a mismatch the search restarts
    /// at the next CR, and the bytes held back are exactly `delim[..matched]`.
    fn scan<E: From<Error>>(
        &mut self,
        input: &[u8],
        mut i: usize,
        on: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let body = self.state == State::Body;
        loop {
            if self.matched > 0 {
                let mut m = self.matched;
                while i < input.len() && m < self.delim.len() && input[i] == self.delim[m] {
                    m += 1;
                    i += 1;
                }
                if m == self.delim.len() {
                    self.matched = 0;
                    self.state = State::AfterDelimiter;
                    if body {
                        on(Event::PartEnd)?;
                    }
                    return Ok(i);
                }
                if i == input.len() {
                    self.matched = m;
                    return Ok(i);
                }
                // `input[i]` breaks the match: the held bytes were data (in the preamble,
                // including the virtual CRLF, nothing is kept).
                self.matched = 0;
                if body {
                    self.count(m)?;
                    on(Event::Data(&self.delim[..m]))?;
                }
            }
            let rest = &input[i..];
            let Some(cr) = rest.iter().position(|&c| c == b'\r') else {
                if body && !rest.is_empty() {
                    self.count(rest.len())?;
                    on(Event::Data(rest))?;
                }
                return Ok(input.len());
            };
            if body && cr > 0 {
                self.count(cr)?;
                on(Event::Data(&rest[..cr]))?;
            }
            i += cr + 1;
            self.matched = 1;
        }
    }

    /// What this body keeps in memory between pieces: the field values so far (a
    /// handler keeps them; files are written out) and the part header being read.
    pub fn held_bytes(&self) -> usize {
        usize::try_from(self.fields_bytes).unwrap_or(usize::MAX) + self.head.capacity()
    }

    /// Counts `n` body bytes of the current part against its limits. When the bytes pass
    /// one, the limit named is the one the earliest byte passed (at one byte, the part's
    /// own): the same however the body was cut into pieces. Refused bytes are not counted,
    /// so `held_bytes` stays within the limits.
    fn count<E: From<Error>>(&mut self, n: usize) -> Result<(), E> {
        let n = n as u64;
        let l = &self.limits;
        // Bytes still allowed: these counts never pass their limits (see above).
        let own_room = if self.part_is_file {
            l.max_file_bytes
        } else {
            l.max_field_bytes
        } - self.part_bytes;
        let over = if self.part_is_file {
            (n > own_room).then_some((Limit::FileBytes, l.max_file_bytes))
        } else {
            let all_room = l.max_fields_bytes - self.fields_bytes;
            if n > own_room && own_room <= all_room {
                Some((Limit::FieldBytes, l.max_field_bytes))
            } else {
                (n > all_room).then_some((Limit::FieldsBytes, l.max_fields_bytes))
            }
        };
        if let Some((limit, max)) = over {
            return Err(self.fail(Error::TooLarge { limit, max }));
        }
        self.part_bytes += n;
        if !self.part_is_file {
            self.fields_bytes += n;
        }
        Ok(())
    }

    /// A part's header block from `input[i..]`, to its blank line (then the part begins
    /// and the state is `Body`) or the end of the input. Returns where it stopped.
    fn read_head<E: From<Error>>(
        &mut self,
        input: &[u8],
        mut i: usize,
        on: &mut impl FnMut(Event<'_>) -> Result<(), E>,
    ) -> Result<usize, E> {
        while i < input.len() {
            let c = input[i];
            i += 1;
            // Lines end in CRLF: no bare CR, no bare LF (RFC 2046 §5.1.1, RFC 5322 §2.2).
            let after_cr = self.head.last() == Some(&b'\r');
            if after_cr != (c == b'\n') {
                return Err(self.fail(Error::BadPartHeader));
            }
            if self.head.len() == self.head.capacity() {
                // Doubling, but never past the one byte over the limit that refuses the
                // block: the buffer holds at most `max_part_header_bytes + 1` bytes, as
                // `Limits` promises, not the next power of two (16 KiB for 8 KiB).
                let max = self.limits.max_part_header_bytes.saturating_add(1);
                let cap = (self.head.capacity() * 2).max(8).min(max);
                self.head.reserve_exact(cap - self.head.len());
            }
            self.head.push(c);
            if self.head.len() > self.limits.max_part_header_bytes {
                let max = self.limits.max_part_header_bytes as u64;
                return Err(self.fail(Error::TooLarge {
                    limit: Limit::PartHeaderBytes,
                    max,
                }));
            }
            if c == b'\n' && (self.head.len() == 2 || self.head.ends_with(b"\r\n\r\n")) {
                let block = &self.head[..self.head.len() - 2];
                let part = match parse_part_head(block) {
                    Ok(p) => p,
                    Err(e) => return Err(self.fail(e)),
                };
                self.part_is_file = part.is_file();
                self.part_bytes = 0;
                self.state = State::Body;
                self.matched = 0;
                on(Event::Part(part))?;
                return Ok(i);
            }
        }
        Ok(i)
    }
}
