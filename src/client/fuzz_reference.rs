//! The `client` harness's reference readers (`client/fuzz.rs`): RFC 9112 read plainly, with
//! none of the core's code — §6.3 framing from a head, a plain head parser, a plain chunked
//! reader, the checks of a head against its bytes. Test code: never part of a build users get.

use super::super::conn::{BodyLength, Limits, ResponseHead};
use super::Req;
use crate::http::Version;
use crate::http::decode::{MAX_CHUNK_EXT_BYTES, MAX_TRAILER_BYTES};
use crate::http::parse::is_tchar;

/// A plain head at the start of `b` (see `accepts_plain_head`): its length, and the head
/// with `BodyLength::None` (framing is decided by `framing`).
pub(super) fn plain_head(b: &[u8]) -> Option<(usize, ResponseHead)> {
    let text = |c: &u8| *c == b'\t' || (b' '..=b'~').contains(c) || *c >= 0x80;
    let mut lines = b.split(|&c| c == b'\n');
    let status_line = lines.next()?.strip_suffix(b"\r")?;
    // RFC 9110 §2.5: a higher HTTP/1 minor version is read as HTTP/1.1.
    let version = match status_line.get(..9)? {
        b"HTTP/1.0 " => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'1'..=b'9', b' '] => Version::Http11,
        _ => return None,
    };
    let digits = status_line.get(9..12)?;
    let status = std::str::from_utf8(digits).ok()?.parse::<u16>().ok()?;
    if !(digits.iter().all(u8::is_ascii_digit)
        && status >= 100
        && status_line.get(12) == Some(&b' '))
    {
        return None;
    }
    let reason = &status_line[13..];
    if !reason.iter().all(text) {
        return None;
    }
    let mut len = status_line.len() + 2;
    let mut headers = Vec::new();
    loop {
        // A line is complete only when its LF is there (`split` also yields the tail).
        let line = lines.next()?;
        if b.len() < len + line.len() + 1 {
            return None;
        }
        let line = line.strip_suffix(b"\r")?;
        len += line.len() + 2;
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&c| c == b':')?;
        let (name, mut value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) || !value.iter().all(text) {
            return None;
        }
        value = trim_ows(value);
        let name = String::from_utf8(name.to_vec()).ok()?;
        headers.push((name, value.to_vec()));
    }
    let head = ResponseHead {
        status,
        version,
        reason: String::from_utf8_lossy(reason).into_owned(),
        headers,
        body: BodyLength::None,
    };
    Some((len, head))
}

/// The bytes of a head without the `100`s skipped before it (a request without `Expect`).
pub(super) fn skip_100s(mut raw: &[u8], req: Req) -> &[u8] {
    if req.expect {
        return raw;
    }
    loop {
        let start = raw
            .iter()
            .position(|&c| c != b'\r' && c != b'\n')
            .unwrap_or(0);
        let line = &raw[start..];
        if !(line.len() > 12 && line.starts_with(b"HTTP/1.") && &line[8..12] == b" 100") {
            break;
        }
        let end = (start..raw.len())
            .find(|&i| raw[i] == b'\n' && matches!(&raw[i + 1..], [b'\n', ..] | [b'\r', b'\n', ..]))
            .expect("a skipped head ends");
        raw = &raw[end + if raw[end + 1] == b'\n' { 2 } else { 3 }..];
    }
    raw
}

/// The head's bytes as sent: optional empty lines, `HTTP/1.x SSS`, ending with an empty line.
pub(super) fn raw_head(raw: &[u8], h: &ResponseHead) {
    let start = raw
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .expect("a head");
    let line = &raw[start..];
    assert!(line.len() >= 12 && line.starts_with(b"HTTP/1."), "{raw:?}");
    let version = match line[7] {
        b'0' => Version::Http10,
        b'1'..=b'9' => Version::Http11, // RFC 9110 §2.5
        _ => panic!("version {raw:?}"),
    };
    assert_eq!(version, h.version);
    assert_eq!(line[8], b' ');
    let digits = &line[9..12];
    assert!(digits.iter().all(u8::is_ascii_digit), "{raw:?}");
    let status = digits
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    assert_eq!(status, h.status);
    assert!(status >= 100);
    assert!(
        raw.ends_with(b"\n\r\n") || raw.ends_with(b"\n\n"),
        "{raw:?}"
    );
}

/// RFC 9112 §6.3 (and §9.3 persistence) read plainly from the head, as this client
/// documents it: no body for HEAD, 1xx, 204, 304, a 101 or a 2xx to CONNECT; any
/// Transfer-Encoding other than one `chunked` (with a Content-Length, in HTTP/1.0, another
/// coding) refused; Content-Length values all equal and plain digits, within the limit;
/// else until close.
pub(super) fn framing(
    req: Req,
    limits: Limits,
    h: &ResponseHead,
) -> Result<(BodyLength, bool), ()> {
    let values = |name: &str| -> Vec<Vec<u8>> {
        h.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(|&c| c == b','))
            .map(|e| trim_ows(e).to_vec())
            .filter(|e| !e.is_empty())
            .collect()
    };
    let has = |name: &str| h.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let conn = values("connection");
    let opt = |o: &str| conn.iter().any(|c| c.eq_ignore_ascii_case(o.as_bytes()));
    let persist = !opt("close") && (h.version == Version::Http11 || opt("keep-alive"));
    if req.method == "HEAD"
        || matches!(h.status, 101 | 204 | 304)
        || (req.method == "CONNECT" && h.status / 100 == 2)
    {
        let out_of_step = h.status == 204 && fields_frame_a_body(&raw_fields(h));
        return Ok((BodyLength::None, persist && !out_of_step));
    }
    if has("transfer-encoding") {
        let codings = values("transfer-encoding");
        let chunked_alone = codings.len() == 1 && codings[0].eq_ignore_ascii_case(b"chunked");
        if h.version == Version::Http10 || has("content-length") || !chunked_alone {
            return Err(());
        }
        return Ok((BodyLength::Chunked, persist));
    }
    if has("content-length") {
        let lengths = values("content-length");
        let parse = |v: &[u8]| -> Option<u64> {
            if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(v).ok()?.parse().ok()
        };
        // A field with no value at all is not a length (`1*DIGIT`), whatever the others say.
        let empty_field = h.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("content-length")
                && v.split(|&c| c == b',').all(|e| trim_ows(e).is_empty())
        });
        if empty_field {
            return Err(());
        }
        let first = lengths.first().and_then(|v| parse(v)).ok_or(())?;
        if lengths.iter().any(|v| parse(v) != Some(first)) || first > limits.max_body_bytes {
            return Err(());
        }
        return Ok((BodyLength::Length(first), persist));
    }
    Ok((BodyLength::CloseDelimited, false))
}

/// What the reference chunked reader made of the bytes after a head.
pub(super) enum Chunked {
    /// A complete body (its bytes, the bytes it took) in the plain subset.
    Complete(Vec<u8>, usize),
    /// A plain prefix of a body, cut short by the end of the input; and the sum of the
    /// chunk sizes announced so far (a chunk past the limit is refused at its size line).
    Incomplete(Vec<u8>, u64),
    /// Something the reference does not read (quoted or spaced extensions, an error): the
    /// body decoded up to there.
    Unknown(Vec<u8>),
}

/// A deliberately plain chunked reader (RFC 9112 §7.1): `1*16HEXDIG *( ";" token [ "="
/// token ] ) CRLF`, the data, `CRLF`; after the last chunk, `token ":" *(VCHAR / SP /
/// HTAB / obs-text) CRLF` lines and the final `CRLF`.
pub(super) fn reference_chunked(b: &[u8]) -> Chunked {
    let mut body = Vec::new();
    let mut announced = 0u64;
    let mut i = 0;
    // The engine bounds extensions and trailers (16 KiB each): beyond, no verdict here.
    if b.len() > MAX_CHUNK_EXT_BYTES.min(MAX_TRAILER_BYTES) {
        return Chunked::Unknown(body);
    }
    // Finds the CRLF-ended line at `i`: `Err(true)` when cut short, `Err(false)` when a
    // CR or LF appears other than as the CRLF.
    let line = |i: usize| -> Result<&[u8], bool> {
        let rest = &b[i..];
        match rest.iter().position(|&c| c == b'\r' || c == b'\n') {
            None => Err(true),
            Some(p) if rest[p] == b'\n' => Err(false),
            Some(p) if p + 1 == rest.len() => Err(true),
            Some(p) if rest[p + 1] == b'\n' => Ok(&rest[..p]),
            Some(_) => Err(false),
        }
    };
    loop {
        let l = match line(i) {
            Ok(l) => l,
            // Cut inside a size line: plain only while it is nothing but 1-16 hex digits.
            Err(true) => {
                let part = b[i..].strip_suffix(b"\r").unwrap_or(&b[i..]);
                return if part.len() <= 16 && part.iter().all(u8::is_ascii_hexdigit) {
                    Chunked::Incomplete(body, announced)
                } else {
                    Chunked::Unknown(body)
                };
            }
            Err(false) => return Chunked::Unknown(body),
        };
        let mut parts = l.split(|&c| c == b';');
        let size = parts.next().unwrap_or_default();
        let ext_ok = parts.all(|e| {
            let mut kv = e.splitn(2, |&c| c == b'=');
            let token = |t: &[u8]| !t.is_empty() && t.iter().all(|&c| is_tchar(c));
            token(kv.next().unwrap_or_default()) && kv.next().is_none_or(token)
        });
        let hex = std::str::from_utf8(size)
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= 16 && s.bytes().all(|c| c.is_ascii_hexdigit()));
        let (Some(hex), true) = (hex, ext_ok) else {
            return Chunked::Unknown(body);
        };
        let n = u64::from_str_radix(hex, 16).expect("hex");
        announced = announced.saturating_add(n);
        i += l.len() + 2;
        if n == 0 {
            break;
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if b.len() - i < n {
            body.extend_from_slice(&b[i..]);
            return Chunked::Incomplete(body, announced);
        }
        body.extend_from_slice(&b[i..i + n]);
        i += n;
        match &b[i..] {
            [b'\r', b'\n', ..] => i += 2,
            [] | [b'\r'] => return Chunked::Incomplete(body, announced),
            _ => return Chunked::Unknown(body),
        }
    }
    loop {
        let l = match line(i) {
            Ok(l) => l,
            // Cut inside a trailer line: plain only when nothing (or its CR) arrived.
            Err(true) if matches!(&b[i..], [] | [b'\r']) => {
                return Chunked::Incomplete(body, announced);
            }
            Err(_) => return Chunked::Unknown(body),
        };
        i += l.len() + 2;
        if l.is_empty() {
            return Chunked::Complete(body, i);
        }
        let Some(colon) = l.iter().position(|&c| c == b':') else {
            return Chunked::Unknown(body);
        };
        let (name, value) = (&l[..colon], &l[colon + 1..]);
        let plain = !name.is_empty()
            && name.iter().all(|&c| is_tchar(c))
            && value.iter().all(|&c| c == b'\t' || c >= b' ' && c != 0x7f);
        if !plain {
            return Chunked::Unknown(body);
        }
    }
}

/// The field lines of a parsed head, as `name: value` lines.
fn raw_fields(h: &ResponseHead) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in &h.headers {
        out.extend_from_slice(n.as_bytes());
        out.push(b':');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

/// Whether any field line in `raw` (heads that can carry no body: 1xx, 204) frames a
/// body anyway — a Transfer-Encoding, or a Content-Length that is not a plain zero — so
/// the connection is not reused after the response. Read line by line, names before
/// the first colon (a status line has none that matches).
pub(super) fn fields_frame_a_body(raw: &[u8]) -> bool {
    raw.split(|&c| c == b'\n').any(|line| {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return false;
        };
        let (name, value) = (&line[..colon], trim_ows(line[colon + 1..].trim_ascii_end()));
        let plain_zero = !value.is_empty() && value.iter().all(|&c| c == b'0');
        name.eq_ignore_ascii_case(b"transfer-encoding")
            || (name.eq_ignore_ascii_case(b"content-length") && !plain_zero)
    })
}

/// Without leading and trailing SP and HTAB (OWS, RFC 9110 §5.6.3).
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}
