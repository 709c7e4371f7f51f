//! Percent-decoding of query strings, form bodies and path segments
//! (`application/x-www-form-urlencoded`, WHATWG URL §5.1; RFC 3986 §2.1).
//!
//! Sans-I/O: strings in, strings out; borrows when nothing needs decoding.

use std::borrow::Cow;

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`, as in forms and
/// query strings). A `%` not followed by two hex digits is kept as is; bytes that do not
/// form UTF-8 after decoding become U+FFFD.
pub fn decode(s: &str, plus_is_space: bool) -> Cow<'_, str> {
    let needs = s.bytes().any(|b| b == b'%' || (plus_is_space && b == b'+'));
    if !needs {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() && hex(b[i + 1]).is_some() && hex(b[i + 2]).is_some() => {
                out.push(hex(b[i + 1]).unwrap_or(0) << 4 | hex(b[i + 2]).unwrap_or(0));
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The decoded `name=value` pairs of a query string or form body, in order. Empty
/// pieces (`a=1&&b=2`) are skipped; a piece without `=` has an empty value.
pub fn pairs(s: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    s.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (decode(k, true), decode(v, true))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        for (input, plus, want) in [
            ("plain", true, "plain"),
            ("a+b", true, "a b"),
            ("a+b", false, "a+b"),
            ("%41%42c", true, "ABc"),
            ("caf%C3%A9", true, "café"),
            ("100%", true, "100%"),
            ("%zz", true, "%zz"),
            ("%4", true, "%4"),
            ("%ff", true, "\u{fffd}"),
        ] {
            assert_eq!(decode(input, plus), want, "{input}");
        }
    }

    #[test]
    fn splits_pairs_in_order() {
        let got: Vec<_> = pairs("a=1&b=x+y&&c&a=%32").collect();
        let want = [("a", "1"), ("b", "x y"), ("c", ""), ("a", "2")];
        assert_eq!(got.len(), want.len());
        for ((k, v), (wk, wv)) in got.iter().zip(want) {
            assert_eq!((k.as_ref(), v.as_ref()), (wk, wv));
        }
    }
}
