//! Chunked body decoding: this stage owns turning a `Transfer-Encoding: chunked` request
//! body (RFC 9112 §7.1) into its content bytes, incrementally, at any split point.
//! It never touches a socket, a clock or a thread, and never allocates except by growing
//! the caller's output Vec with decoded data.

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
    /// BWS after the chunk-size.
    SizeWs,
    /// After ";", BWS before a chunk-ext-name.
    ExtPreName,
    /// Inside a chunk-ext-name.
    ExtName,
    /// BWS after a chunk-ext-name.
    ExtPostName,
    /// After "=", BWS before a chunk-ext-val.
    ExtPreValue,
    /// Inside a token chunk-ext-val.
    ExtValue,
    /// Inside a quoted-string chunk-ext-val.
    ExtQuoted,
    /// After a backslash inside a quoted-string.
    ExtQuotedPair,
    /// BWS after a chunk-ext-val.
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
    /// a missing CRLF (a bare LF is accepted, RFC 9112 §2.2), a bad extension or trailer;
    /// [`Error::BodyTooLarge`] as soon as a chunk-size would take the decoded total past
    /// `max_body`.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_body: u64,
    ) -> Result<(usize, bool), Error> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Data => {
                    let n = ((input.len() - i) as u64).min(self.size) as usize;
                    out.extend_from_slice(&input[i..i + n]);
                    self.decoded += n as u64;
                    self.size -= n as u64;
                    i += n;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::Done => return Ok((i, true)),
                _ => {
                    self.state = self.step(input[i], max_body)?;
                    i += 1;
                }
            }
        }
        Ok((i, self.state == State::Done))
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
                None => self.after_value(c, ws, max_body, SizeWs),
            },
            // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
            // (RFC 9112 §7.1.1). Whitespace right before the CRLF is tolerated.
            SizeWs | ExtPostValue => self.after_value(c, ws, max_body, self.state),
            ExtPreName if ws => Ok(ExtPreName),
            ExtPreName if is_tchar(c) => Ok(ExtName),
            ExtPreName => bad,
            ExtName if is_tchar(c) => Ok(ExtName),
            ExtName | ExtPostName if c == b'=' => Ok(ExtPreValue),
            ExtName | ExtPostName => self.after_value(c, ws, max_body, ExtPostName),
            ExtPreValue if ws => Ok(ExtPreValue),
            ExtPreValue if c == b'"' => Ok(ExtQuoted),
            ExtPreValue if is_tchar(c) => Ok(ExtValue),
            ExtPreValue => bad,
            ExtValue if is_tchar(c) => Ok(ExtValue),
            ExtValue => self.after_value(c, ws, max_body, ExtPostValue),
            // quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4)
            ExtQuoted => match c {
                b'"' => Ok(ExtPostValue),
                b'\\' => Ok(ExtQuotedPair),
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => Ok(ExtQuoted),
                _ => bad,
            },
            ExtQuotedPair => match c {
                b'\t' | b' '..=0x7e | 0x80..=0xff => Ok(ExtQuoted),
                _ => bad,
            },
            SizeLf if c == b'\n' => self.end_size_line(max_body),
            SizeLf => bad,
            // The CRLF after chunk-data (RFC 9112 §7.1); a bare LF is accepted (§2.2).
            DataCr if c == b'\r' => Ok(DataLf),
            DataCr | DataLf if c == b'\n' => Ok(SizeStart),
            DataCr | DataLf => bad,
            // trailer-section = *( field-line CRLF ) (RFC 9112 §7.1.2); field-line =
            // field-name ":" OWS field-value OWS (§5). Obs-fold and whitespace before the
            // colon are rejected like in the head (§5.1, §5.2).
            TrailerStart if c == b'\r' => Ok(EndLf),
            TrailerStart if c == b'\n' => Ok(Done),
            TrailerStart | TrailerName if is_tchar(c) => Ok(TrailerName),
            TrailerName if c == b':' => Ok(TrailerValue),
            TrailerStart | TrailerName => bad,
            TrailerValue => match c {
                b'\r' => Ok(TrailerLf),
                b'\n' => Ok(TrailerStart),
                b'\t' | b' '..=0x7e | 0x80..=0xff => Ok(TrailerValue),
                _ => bad,
            },
            TrailerLf if c == b'\n' => Ok(TrailerStart),
            EndLf if c == b'\n' => Ok(Done),
            TrailerLf | EndLf => bad,
            Data | Done => unreachable!("handled by decode"),
        }
    }

    /// After a chunk-size or extension item: more whitespace, another extension, or the
    /// end of the chunk-size line.
    fn after_value(
        &mut self,
        c: u8,
        ws: bool,
        max_body: u64,
        ws_state: State,
    ) -> Result<State, Error> {
        match c {
            _ if ws => Ok(ws_state),
            b';' => Ok(State::ExtPreName),
            b'\r' => Ok(State::SizeLf),
            b'\n' => self.end_size_line(max_body),
            _ => Err(Error::InvalidChunk),
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
mod tests {
    use super::*;
    use crate::error::Error::*;

    const MAX: u64 = 1 << 20;

    /// Feeds `input` in pieces of `piece` bytes, each call getting the unconsumed rest of
    /// what has "arrived". Ok(None): ran out of input before done.
    fn run(input: &[u8], piece: usize, max: u64) -> Result<Option<(Vec<u8>, usize)>, Error> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let (mut pos, mut arrived) = (0, 0);
        loop {
            arrived = (arrived + piece).min(input.len());
            let (n, done) = d.decode(&input[pos..arrived], &mut out, max)?;
            pos += n;
            assert!(pos <= arrived);
            if done {
                assert_eq!(d.decoded_len(), out.len() as u64);
                assert!(d.is_done());
                return Ok(Some((out, pos)));
            }
            assert_eq!(pos, arrived, "not done, so everything is consumed");
            if arrived == input.len() {
                return Ok(None);
            }
        }
    }

    /// (name, input, decoded body, bytes left after the body).
    const VALID: &[(&str, &[u8], &[u8], usize)] = &[
        ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello", 0),
        (
            "two chunks",
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"hello world",
            0,
        ),
        ("empty body", b"0\r\n\r\n", b"", 0),
        (
            "upper hex",
            b"A\r\n0123456789\r\n0\r\n\r\n",
            b"0123456789",
            0,
        ),
        (
            "lower hex",
            b"a\r\n0123456789\r\n0\r\n\r\n",
            b"0123456789",
            0,
        ),
        ("leading zeros", b"005\r\nhello\r\n000\r\n\r\n", b"hello", 0),
        (
            "16 digits",
            b"0000000000000005\r\nhello\r\n0\r\n\r\n",
            b"hello",
            0,
        ),
        ("bare LF", b"5\nhello\n0\n\n", b"hello", 0),
        (
            "crlf in data",
            b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
            b"\r\n\r\n",
            0,
        ),
        (
            "next request",
            b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
            b"x",
            16,
        ),
        ("ext name", b"5;foo\r\nhello\r\n0;bar\r\n\r\n", b"hello", 0),
        ("ext value", b"5;a=b;c=d\r\nhello\r\n0\r\n\r\n", b"hello", 0),
        (
            "ext bws",
            b"5 ; a = b ;\tc\r\nhello\r\n0\r\n\r\n",
            b"hello",
            0,
        ),
        (
            "ext quoted",
            b"5;a=\"x;y \\\" z\"\r\nhello\r\n0\r\n\r\n",
            b"hello",
            0,
        ),
        ("size ws", b"5 \r\nhello\r\n0\r\n\r\n", b"hello", 0),
        (
            "trailers",
            b"5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:\r\nZ:\t1 2 \r\n\r\n",
            b"hello",
            0,
        ),
        ("trailer bare LF", b"0\nX: 1\n\n", b"", 0),
    ];

    #[test]
    fn valid_at_every_split() {
        for &(name, input, body, rest) in VALID {
            for piece in [input.len(), 1, 2, 3, 7] {
                let got = run(input, piece, MAX).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                let (out, used) = got.unwrap_or_else(|| panic!("{name}: incomplete"));
                assert_eq!(out, body, "{name} piece {piece}");
                assert_eq!(used, input.len() - rest, "{name} piece {piece}");
            }
            // Every two-way split agrees with the one-shot decode.
            for k in 0..input.len() {
                let mut d = ChunkedDecoder::new();
                let mut out = Vec::new();
                let (n, done) = d.decode(&input[..k], &mut out, MAX).unwrap();
                assert!(!done || k >= input.len() - rest, "{name} split {k}");
                if !done {
                    let (m, done) = d.decode(&input[n..], &mut out, MAX).unwrap();
                    assert!(done, "{name} split {k}");
                    assert_eq!(n + m, input.len() - rest, "{name} split {k}");
                }
                assert_eq!(out, body, "{name} split {k}");
            }
            // Every proper prefix of the body is incomplete, never an error.
            for k in 0..input.len() - rest {
                assert_eq!(run(&input[..k], 1, MAX), Ok(None), "{name} prefix {k}");
            }
        }
    }

    /// (name, input, max body, error).
    const INVALID: &[(&str, &[u8], u64, Error)] = &[
        ("18 digits", b"ffffffffffffffffff\r\n", MAX, InvalidChunk),
        (
            "17 digits",
            b"00000000000000005\r\nhello\r\n0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        ("negative", b"-5\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
        ("plus", b"+5\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
        ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
        ("not hex", b"g\r\n", MAX, InvalidChunk),
        ("empty size", b"\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
        (
            "leading space",
            b" 5\r\nhello\r\n0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        ("size junk", b"5 x\r\nhello\r\n0\r\n\r\n", MAX, InvalidChunk),
        (
            "split size",
            b"5 5\r\nhello\r\n0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        ("CR without LF", b"5\rhello\r\n0\r\n\r\n", MAX, InvalidChunk),
        (
            "no CRLF after data",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        (
            "CR then junk after data",
            b"5\r\nhello\rX0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        (
            "data too long",
            b"3\r\nhello\r\n0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        (
            "empty ext name",
            b"5;\r\nhello\r\n0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        (
            "empty ext value",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        (
            "bad ext name",
            b"5;a@b\r\nhello\r\n0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        (
            "unterminated quote",
            b"5;a=\"x\r\nhello\r\n0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        (
            "NUL in ext",
            b"5;a=\"\0\"\r\nhello\r\n0\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        (
            "trailer ws before colon",
            b"0\r\nX : y\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        (
            "trailer obs-fold",
            b"0\r\nX: y\r\n z\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        ("trailer no colon", b"0\r\nX\r\n\r\n", MAX, InvalidChunk),
        ("trailer NUL", b"0\r\nX: a\0\r\n\r\n", MAX, InvalidChunk),
        (
            "trailer bare CR",
            b"0\r\nX: a\rb\r\n\r\n",
            MAX,
            InvalidChunk,
        ),
        ("final CR junk", b"0\r\n\rX", MAX, InvalidChunk),
        (
            "body cap one chunk",
            b"b\r\nhello world\r\n0\r\n\r\n",
            10,
            BodyTooLarge,
        ),
        (
            "body cap two chunks",
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            10,
            BodyTooLarge,
        ),
        ("body cap huge", b"ffffffffffffffff\r\n", MAX, BodyTooLarge),
        (
            "total overflow",
            b"1\r\nx\r\nffffffffffffffff\r\n",
            u64::MAX,
            BodyTooLarge,
        ),
    ];

    #[test]
    fn invalid_at_every_split() {
        for &(name, input, max, err) in INVALID {
            for piece in [input.len(), 1, 2, 5] {
                assert_eq!(run(input, piece, max), Err(err), "{name} piece {piece}");
            }
        }
    }

    #[test]
    fn body_cap_is_inclusive() {
        let input = b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
        let (out, _) = run(input, 1, 10).unwrap().unwrap();
        assert_eq!(out, b"helloworld");
        assert_eq!(run(input, 1, 9), Err(BodyTooLarge));
    }

    #[test]
    fn trailer_and_extension_bounds() {
        let mut big_trailer = b"0\r\nX: ".to_vec();
        big_trailer.resize(MAX_TRAILER_BYTES, b'a');
        let mut ok = big_trailer.clone();
        ok.truncate(MAX_TRAILER_BYTES - 4 + 3); // trailer bytes exclude the "0\r\n"
        ok.extend_from_slice(b"\r\n\r\n");
        assert!(run(&ok, 4096, MAX).unwrap().is_some());
        big_trailer.extend_from_slice(b"aaaa\r\n\r\n");
        assert_eq!(run(&big_trailer, 4096, MAX), Err(InvalidChunk));

        let mut ext = b"1;a=".to_vec();
        ext.resize(MAX_CHUNK_EXT_BYTES + 8, b'b');
        ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(run(&ext, 4096, MAX), Err(InvalidChunk));
    }

    #[test]
    fn large_body_in_pieces() {
        let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let mut input = Vec::new();
        for c in data.chunks(1000) {
            input.extend_from_slice(format!("{:x};n=v\r\n", c.len()).as_bytes());
            input.extend_from_slice(c);
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b"0\r\n\r\n");
        for piece in [1, 999, 1024, input.len()] {
            let (out, used) = run(&input, piece, MAX).unwrap().unwrap();
            assert_eq!(out, data);
            assert_eq!(used, input.len());
        }
    }

    #[test]
    fn done_consumes_nothing_more() {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        assert_eq!(d.decode(b"0\r\n\r\nrest", &mut out, MAX), Ok((5, true)));
        assert_eq!(d.decode(b"rest", &mut out, MAX), Ok((0, true)));
        assert_eq!(d.decode(b"", &mut out, MAX), Ok((0, true)));
        assert_eq!(
            ChunkedDecoder::new().decode(b"", &mut out, MAX),
            Ok((0, false))
        );
    }
}
