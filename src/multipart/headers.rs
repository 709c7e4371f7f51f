//! The header side of `multipart/form-data`: the request's `Content-Type` boundary
//! (RFC 7578 §4.1, RFC 2046 §5.1.1) and each part's `Content-Disposition` and
//! `Content-Type` (RFC 7578 §4.2–4.4).
//!
//! Sans-I/O: bytes in, values out; never touches a socket, a file or a thread.

use super::{Error, Part};

/// The longest boundary RFC 2046 §5.1.1 allows.
pub(super) const MAX_BOUNDARY: usize = 70;

/// The `boundary` parameter of a `multipart/form-data` Content-Type, validated.
///
/// `415` ([`Error::NotMultipart`]) for another media type; `400` for a missing, repeated
/// or invalid boundary. Parameter names are case-insensitive, the value a token or a
/// quoted string (RFC 9110 §5.6.6).
///
/// ```
/// use h1server::multipart::boundary;
/// assert_eq!(boundary("multipart/form-data; boundary=AaB03x").unwrap(), "AaB03x");
/// assert_eq!(boundary("Multipart/Form-Data; BOUNDARY=\"simple boundary\"").unwrap(), "simple boundary");
/// assert!(boundary("multipart/form-data").is_err());
/// ```
pub fn boundary(content_type: &str) -> Result<String, Error> {
    // No media type at all is not multipart either.
    let (mime, params) = split_params(content_type.as_bytes()).ok_or(Error::NotMultipart)?;
    if !mime.eq_ignore_ascii_case(b"multipart/form-data") {
        // The media type is checked before its parameters' syntax is blamed.
        return Err(Error::NotMultipart);
    }
    let params = params.ok_or(Error::BadContentType)?;
    let b = params
        .into_iter()
        .find(|(n, _)| n == b"boundary")
        .map(|(_, v)| v)
        .ok_or(Error::MissingBoundary)?;
    // RFC 2046 §5.1.1:
    //   boundary := 0*69<bchars> bcharsnospace
    //   bchars := bcharsnospace / " "
    //   bcharsnospace := DIGIT / ALPHA / "'" / "(" / ")" / "+" / "_" / "," / "-" / "." /
    //                    "/" / ":" / "=" / "?"
    let ok = !b.is_empty()
        && b.len() <= MAX_BOUNDARY
        && b.last() != Some(&b' ')
        && b.iter().all(|&c| c == b' ' || is_bchar_nospace(c));
    if !ok {
        return Err(Error::BadBoundary);
    }
    Ok(String::from_utf8(b).expect("bchars are ASCII"))
}

fn is_bchar_nospace(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&c)
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// A parameter: its name in lower case, its value with quoting undone.
type Param = (Vec<u8>, Vec<u8>);

/// Splits `value *( OWS ";" OWS name "=" ( token / quoted-string ) )` (RFC 9110 §5.6.6).
///
/// The value before the first `;` comes back trimmed; the parameters as `None` when they
/// do not parse or a name repeats; `None` for both when the value itself is empty.
/// Empty elements (`a;;b=c`, a trailing `;`) are skipped.
fn split_params(v: &[u8]) -> Option<(&[u8], Option<Vec<Param>>)> {
    let end = v.iter().position(|&c| c == b';').unwrap_or(v.len());
    let head = v[..end].trim_ascii();
    if head.is_empty() {
        return None;
    }
    Some((head, params(&v[end..])))
}

fn params(v: &[u8]) -> Option<Vec<Param>> {
    let mut out: Vec<Param> = Vec::new();
    let mut i = 0;
    let ows = |i: &mut usize| {
        while *i < v.len() && matches!(v[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    while i < v.len() {
        // At a ';' (or just after a parameter and its OWS).
        if v[i] != b';' {
            return None;
        }
        i += 1;
        ows(&mut i);
        if i == v.len() || v[i] == b';' {
            continue;
        }
        let start = i;
        while i < v.len() && is_tchar(v[i]) {
            i += 1;
        }
        // No whitespace around '=' (RFC 9110 §5.6.6).
        if i == start || i == v.len() || v[i] != b'=' {
            return None;
        }
        let name = v[start..i].to_ascii_lowercase();
        i += 1;
        let value = if v.get(i) == Some(&b'"') {
            quoted(v, &mut i)?
        } else {
            let s = i;
            while i < v.len() && is_tchar(v[i]) {
                i += 1;
            }
            if i == s {
                return None;
            }
            v[s..i].to_vec()
        };
        if out.iter().any(|(n, _)| *n == name) {
            return None;
        }
        out.push((name, value));
        ows(&mut i);
    }
    Some(out)
}

/// A quoted-string starting at `v[*i] == '"'`; leaves `*i` after the closing quote.
///
/// `qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text` (RFC 9110 §5.6.4). A
/// backslash escapes the next character only when that is a `"` or a `\` — as Go's
/// `mime` package does — so an unescaped Windows path (`filename="C:\dir\a.txt"`, sent by
/// old browsers) keeps its backslashes.
fn quoted(v: &[u8], i: &mut usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    *i += 1;
    while *i < v.len() {
        let c = v[*i];
        match c {
            b'"' => {
                *i += 1;
                return Some(out);
            }
            b'\\' if matches!(v.get(*i + 1), Some(b'"' | b'\\')) => {
                out.push(v[*i + 1]);
                *i += 2;
                continue;
            }
            b'\t' | b' '..=b'~' | 0x80.. => out.push(c),
            _ => return None,
        }
        *i += 1;
    }
    None // unterminated
}

/// The `Part` described by one part's header block: its lines, each ending in CRLF,
/// without the blank line that ends the block (the parser checked the line ends).
///
/// RFC 7578 §4.2: each part has `Content-Disposition: form-data; name="…"`, with a
/// `filename` for a file; §4.4: an optional `Content-Type`. Other headers (such as the
/// deprecated `Content-Transfer-Encoding`, §4.7) are ignored.
pub(super) fn parse_part_head(block: &[u8]) -> Result<Part, Error> {
    let mut disposition = None;
    let mut content_type = None;
    for line in block.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_suffix(b"\r").ok_or(Error::BadPartHeader)?;
        if matches!(line.first(), Some(b' ' | b'\t')) {
            return Err(Error::FoldedPartHeader);
        }
        let colon = line
            .iter()
            .position(|&c| c == b':')
            .ok_or(Error::BadPartHeader)?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        // No whitespace between the name and the colon (RFC 9112 §5.1's rule for fields).
        if name.is_empty() || !name.iter().all(|&c| is_tchar(c)) {
            return Err(Error::BadPartHeader);
        }
        // field-vchar / SP / HTAB / obs-text: no other control character.
        if value.iter().any(|&c| c != b'\t' && (c < b' ' || c == 0x7f)) {
            return Err(Error::BadPartHeader);
        }
        let slot = if name.eq_ignore_ascii_case(b"content-disposition") {
            &mut disposition
        } else if name.eq_ignore_ascii_case(b"content-type") {
            &mut content_type
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(Error::DuplicatePartHeader);
        }
    }
    let (kind, params) =
        split_params(disposition.ok_or(Error::MissingDisposition)?).ok_or(Error::NotFormData)?;
    if !kind.eq_ignore_ascii_case(b"form-data") {
        return Err(Error::NotFormData);
    }
    let mut name = None;
    let mut filename = None;
    for (n, v) in params.ok_or(Error::BadDisposition)? {
        // Names and filenames are UTF-8 in practice (RFC 7578 §4.2, §5.1); other bytes
        // become U+FFFD. `filename*` (RFC 5987) must not be used here (§4.2) and is
        // ignored, like every other parameter.
        match n.as_slice() {
            b"name" => name = Some(String::from_utf8_lossy(&v).into_owned()),
            b"filename" => filename = Some(String::from_utf8_lossy(&v).into_owned()),
            _ => {}
        }
    }
    Ok(Part {
        name: name.ok_or(Error::MissingName)?,
        filename,
        content_type: content_type.map(|v| String::from_utf8_lossy(v).into_owned()),
    })
}
