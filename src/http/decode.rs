//! Chunked body decoding: this stage owns turning a `Transfer-Encoding: chunked` request
//! body (RFC 9112 §7.1) into its content bytes, incrementally, at any split point.
//! It never touches a socket, a clock or a thread, and never allocates except by growing
//! the caller's output Vec with decoded data (`decode`); `decode_in_place` decodes inside
//! the caller's buffer, moving the data down over the framing it consumed.

use super::parse::is_tchar;
use crate::error::Error;

/// Most bytes of trailer section (RFC 9112 §7.1.2) accepted, final empty line included;
/// past it the body is rejected with [`Error::InvalidChunk`].
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Most bytes of chunk extensions (RFC 9112 §7.1.1) accepted over a whole body; past it
/// the body is rejected with [`Error::InvalidChunk`]. RFC 9112 §7.1.1: "A server ought to
/// limit the total length of chunk extensions received in a request".
pub const MAX_CHUNK_EXT_BYTES: usize = 16 * 1024;

/// Most hex digits in a chunk-size (16 fill a u64, so no overflow is possible).
const MAX_SIZE_DIGITS: u8 = 16;

/// Where the decoder is in the chunked grammar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk-size.
    #[default]
    SizeStart,
    /// Inside the chunk-size hex digits.
    Size,
    /// BWS after the chunk-size: a ";" must follow (see `ChunkedDecoder::step`).
    SizeWs,
    /// After ";", BWS before a chunk-ext-name.
    ExtPreName,
    /// Inside a chunk-ext-name.
    ExtName,
    /// BWS after a chunk-ext-name: "=" or ";" must follow.
    ExtPostName,
    /// After "=", BWS before a chunk-ext-val.
    ExtPreValue,
    /// Inside a token chunk-ext-val.
    ExtValue,
    /// Inside a quoted-string chunk-ext-val.
    ExtQuoted,
    /// After a backslash inside a quoted-string.
    ExtQuotedPair,
    /// Right after the closing DQUOTE of a quoted-string chunk-ext-val.
    ExtQuotedEnd,
    /// BWS after a chunk-ext-val: a ";" must follow.
    ExtPostValue,
    /// Saw CR at the end of the chunk-size line.
    SizeLf,
    /// Inside chunk-data; `size` bytes remain.
    Data,
    /// Expecting the CRLF after chunk-data.
    DataCr,
    /// Saw CR after chunk-data.
    DataLf,
    /// At the start of a trailer field line or of the final empty line.
    TrailerStart,
    /// Inside a trailer field-name.
    TrailerName,
    /// Inside a trailer field-value.
    TrailerValue,
    /// Saw CR at the end of a trailer field line.
    TrailerLf,
    /// Saw CR of the final empty line.
    EndLf,
    /// The last chunk and the trailer section are complete.
    Done,
}

/// Incremental chunked body decoder (RFC 9112 §7.1): chunk extensions are parsed and
/// ignored (`;name=value` and `;name="quoted"`), trailers are parsed as field lines and
/// discarded (bounded by [`MAX_TRAILER_BYTES`]).
#[derive(Debug, Default, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk-size being read, then the chunk-data bytes still to come.
    size: u64,
    digits: u8,
    decoded: u64,
    ext_bytes: usize,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    /// A decoder positioned at the first chunk-size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes from `input`, appending chunk data to `out`; returns (bytes consumed,
    /// done). Call again with the unconsumed bytes plus whatever arrived since; any split
    /// point works, down to one byte at a time. When done, consumed stops right after the
    /// final CRLF of the trailer section (and later calls consume nothing).
    ///
    /// Errors: [`Error::InvalidChunk`] for a bad chunk-size (not hex, more than 16 digits),
    /// a line ended by anything but CRLF (a bare LF or a bare CR), a bad extension or
    /// trailer;
    /// [`Error::BodyTooLarge`] as soon as a chunk-size would take the decoded total past
    /// `max_body`.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_body: u64,
    ) -> Result<(usize, bool), Error> {
        let mut at = 0;
        loop {
            let (skip, n) = self.next_data(&input[at..], max_body)?;
            out.extend_from_slice(&input[at + skip..at + skip + n]);
            at += skip + n;
            if n == 0 {
                return Ok((at, self.is_done()));
            }
        }
    }

    /// [`decode`](Self::decode) with `buf` as both input and output: decodes the raw
    /// bytes `buf[read..]` and moves the chunk data down to `buf[write..]`, where the
    /// data decoded before it ends (`write <= read`; the write position never passes the
    /// read position, since every byte written was read first). Returns (where the
    /// unconsumed raw bytes begin, where the decoded data now ends, done); the bytes in
    /// between are spent. Bytes before `write` and after the end of the body are never
    /// touched: a request pipelined behind the body is parsed from the returned read
    /// position as it came.
    ///
    /// Same verdicts, at the same bytes, as `decode`: on an error, what was moved so far
    /// is unspecified.
    pub fn decode_in_place(
        &mut self,
        buf: &mut [u8],
        mut read: usize,
        mut write: usize,
        max_body: u64,
    ) -> Result<(usize, usize, bool), Error> {
        debug_assert!(write <= read && read <= buf.len());
        loop {
            let (skip, n) = self.next_data(&buf[read..], max_body)?;
            let from = read + skip;
            if from != write {
                buf.copy_within(from..from + n, write);
            }
            write += n;
            read = from + n;
            if n == 0 {
                return Ok((read, write, self.is_done()));
            }
        }
    }

    /// The one place the grammar is walked: consumes the framing at the start of `input`
    /// up to the next run of chunk data and claims that run. Returns (offset of the run
    /// in `input`, its length); the run ends where `input` or the chunk ends. Length 0:
    /// `input` is used up (the offset is then its length) or the body is done (the offset
    /// is right after the final CRLF).
    fn next_data(&mut self, input: &[u8], max_body: u64) -> Result<(usize, usize), Error> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Data => {
                    // `size` > 0 in this state: a chunk-size of 0 is the last-chunk.
                    let n = ((input.len() - i) as u64).min(self.size) as usize;
                    self.decoded += n as u64;
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok((i, n));
                }
                State::Done => break,
                _ => {
                    self.state = self.step(input[i], max_body)?;
                    i += 1;
                }
            }
        }
        Ok((i, 0))
    }

    /// Total content bytes decoded so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// True once the last chunk and trailer section have been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// One byte of framing (everything but chunk-data).
    fn step(&mut self, c: u8, max_body: u64) -> Result<State, Error> {
        use State::*;
        let bad = Err(Error::InvalidChunk);
        let ws = c == b' ' || c == b'\t';
        if matches!(
            self.state,
            SizeWs
                | ExtPreName
                | ExtName
                | ExtPostName
                | ExtPreValue
                | ExtValue
                | ExtQuoted
                | ExtQuotedPair
                | ExtQuotedEnd
                | ExtPostValue
        ) {
            self.ext_bytes += 1;
            if self.ext_bytes > MAX_CHUNK_EXT_BYTES {
                return bad;
            }
        } else if matches!(
            self.state,
            TrailerStart | TrailerName | TrailerValue | TrailerLf | EndLf
        ) {
            // Bounded like a head: MAX_TRAILER_BYTES.
            self.trailer_bytes += 1;
            if self.trailer_bytes > MAX_TRAILER_BYTES {
                return bad;
            }
        }
        match self.state {
            // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; chunk-size = 1*HEXDIG
            // (RFC 9112 §7.1). No sign, no "0x", no leading whitespace.
            SizeStart => match hex(c) {
                Some(v) => {
                    self.size = v;
                    self.digits = 1;
                    Ok(Size)
                }
                None => bad,
            },
            Size => match hex(c) {
                // RFC 9112 §7.1: "Recipients MUST anticipate potentially large hexadecimal
                // numerals and prevent parsing errors due to integer conversion overflows".
                Some(_) if self.digits >= MAX_SIZE_DIGITS => bad,
                Some(v) => {
                    self.size = self.size << 4 | v;
                    self.digits += 1;
                    Ok(Size)
                }
                None => after_value(c, ws, SizeWs),
            },
            // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
            // (RFC 9112 §7.1.1). Decision: in that grammar BWS is always followed by ";",
            // "=" or a name or value, never by the CRLF. So `5 ;a\r\n` and `5;a = b\r\n`
            // are accepted, while `5 \r\n`, `5\t\r\n`, `5;a \r\n` and `5;a=b \r\n`
            // are rejected: whitespace that ends a chunk line is not guessed at (dropped
            // by some parsers, an error for others), since disagreement on chunk lines is
            // how bodies get smuggled.
            SizeWs | ExtPostValue if ws => Ok(self.state),
            SizeWs | ExtPostValue | ExtPostName if c == b';' => Ok(ExtPreName),
            SizeWs | ExtPostValue => bad,
            ExtPreName if ws => Ok(ExtPreName),
            ExtPreName if is_tchar(c) => Ok(ExtName),
            ExtPreName => bad,
            ExtName if is_tchar(c) => Ok(ExtName),
            ExtName | ExtPostName if c == b'=' => Ok(ExtPreValue),
            ExtName => after_value(c, ws, ExtPostName),
            ExtPostName if ws => Ok(ExtPostName),
            ExtPostName => bad,
            ExtPreValue if ws => Ok(ExtPreValue),
            ExtPreValue if c == b'"' => Ok(ExtQuoted),
            ExtPreValue if is_tchar(c) => Ok(ExtValue),
            ExtPreValue => bad,
            ExtValue if is_tchar(c) => Ok(ExtValue),
            ExtValue => after_value(c, ws, ExtPostValue),
            // quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4)
            ExtQuoted => match c {
                b'"' => Ok(ExtQuotedEnd),
                b'\\' => Ok(ExtQuotedPair),
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => Ok(ExtQuoted),
                _ => bad,
            },
            ExtQuotedPair => match c {
                b'\t' | b' '..=0x7e | 0x80..=0xff => Ok(ExtQuoted),
                _ => bad,
            },
            ExtQuotedEnd => after_value(c, ws, ExtPostValue),
            // Every line of the chunked framing ends with CRLF, exactly (RFC 9112 §7.1:
            // "chunk-size [ chunk-ext ] CRLF", "chunk-data CRLF", "trailer-section CRLF").
            // RFC 9112 §2.2 lets a recipient accept a bare LF as a line terminator; that
            // MAY is not taken inside a body: if this server and a proxy in front of it
            // disagree on where a chunk line ends, they disagree on where the body ends
            // and the rest is smuggled in as a request (Go's CVE-2025-22871). A bare CR is
            // rejected everywhere as well (§2.2: "A sender MUST NOT generate a bare CR").
            SizeLf if c == b'\n' => self.end_size_line(max_body),
            SizeLf => bad,
            DataCr if c == b'\r' => Ok(DataLf),
            DataLf if c == b'\n' => Ok(SizeStart),
            DataCr | DataLf => bad,
            // trailer-section = *( field-line CRLF ) (RFC 9112 §7.1.2); field-line =
            // field-name ":" OWS field-value OWS (§5). Obs-fold and whitespace before the
            // colon are rejected like in the head (§5.1, §5.2); unlike the head, a bare LF
            // does not end a line here (see above).
            TrailerStart if c == b'\r' => Ok(EndLf),
            TrailerStart | TrailerName if is_tchar(c) => Ok(TrailerName),
            TrailerName if c == b':' => Ok(TrailerValue),
            TrailerStart | TrailerName => bad,
            TrailerValue => match c {
                b'\r' => Ok(TrailerLf),
                b'\t' | b' '..=0x7e | 0x80..=0xff => Ok(TrailerValue),
                _ => bad,
            },
            TrailerLf if c == b'\n' => Ok(TrailerStart),
            EndLf if c == b'\n' => Ok(Done),
            TrailerLf | EndLf => bad,
            Data | Done => unreachable!("handled by decode"),
        }
    }

    /// The chunk-size line is complete: either chunk-data or, for size 0 (last-chunk),
    /// the trailer section follows.
    fn end_size_line(&mut self, max_body: u64) -> Result<State, Error> {
        if self.size == 0 {
            return Ok(State::TrailerStart);
        }
        match self.decoded.checked_add(self.size) {
            Some(total) if total <= max_body => Ok(State::Data),
            _ => Err(Error::BodyTooLarge),
        }
    }
}

/// Right after a chunk-size, chunk-ext-name or chunk-ext-val: BWS (then `ws_state`),
/// another extension, or the CR that ends the chunk-size line.
fn after_value(c: u8, ws: bool, ws_state: State) -> Result<State, Error> {
    match c {
        _ if ws => Ok(ws_state),
        b';' => Ok(State::ExtPreName),
        // CR, then LF in SizeLf; a bare LF is an error (see `ChunkedDecoder::step`).
        b'\r' => Ok(State::SizeLf),
        _ => Err(Error::InvalidChunk),
    }
}

#[inline]
fn hex(c: u8) -> Option<u64> {
    match c {
        b'0'..=b'9' => Some(u64::from(c - b'0')),
        b'a'..=b'f' => Some(u64::from(c - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(c - b'A' + 10)),
        _ => None,
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
