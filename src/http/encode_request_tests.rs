//! Tests of `write_request_head`: the bytes of good heads, and every injection refused.

use super::*;

fn head(
    method: &str,
    target: &str,
    host: &str,
    hs: &[(&str, &[u8])],
    f: BodyFraming,
) -> Result<String, RequestHeadError> {
    let mut out = b"prefix|".to_vec();
    let r = write_request_head(&mut out, method, target, host, hs.iter().copied(), f);
    let s = String::from_utf8_lossy(&out).into_owned();
    let rest = s.strip_prefix("prefix|").expect("appends, never clears");
    match r {
        Ok(()) => Ok(rest.to_owned()),
        Err(e) => {
            assert_eq!(rest, "", "nothing is left behind on error");
            Err(e)
        }
    }
}

#[test]
fn request_heads() {
    use BodyFraming as B;
    type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a [u8])], B, &'a str);
    let table: &[Row] = &[
        (
            "GET",
            "/",
            &[],
            B::None,
            "GET / HTTP/1.1\r\nHost: h:8080\r\n\r\n",
        ),
        (
            "POST",
            "/a?b=c",
            &[("Content-Type", b"text/plain")],
            B::Length(5),
            "POST /a?b=c HTTP/1.1\r\nHost: h:8080\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
        ),
        (
            "PUT",
            "/up",
            &[("X-A", b"1"), ("x-a", b"2\tx")],
            B::Chunked,
            "PUT /up HTTP/1.1\r\nHost: h:8080\r\nX-A: 1\r\nx-a: 2\tx\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (
            "GET",
            "/",
            &[
                ("host", b"evil"),
                ("Content-Length", b"9"),
                ("TRANSFER-ENCODING", b"chunked"),
                ("Accept", b"*/*"),
            ],
            B::None,
            "GET / HTTP/1.1\r\nHost: h:8080\r\nAccept: */*\r\n\r\n",
        ),
        (
            "OPTIONS",
            "*",
            &[],
            B::None,
            "OPTIONS * HTTP/1.1\r\nHost: h:8080\r\n\r\n",
        ),
        (
            "PROPFIND",
            "http://x/y",
            &[],
            B::Length(0),
            "PROPFIND http://x/y HTTP/1.1\r\nHost: h:8080\r\nContent-Length: 0\r\n\r\n",
        ),
    ];
    for (method, target, hs, f, want) in table {
        assert_eq!(head(method, target, "h:8080", hs, *f).as_deref(), Ok(*want));
    }
}

#[test]
fn injections_are_refused() {
    use RequestHeadError as E;
    let b = BodyFraming::None;
    type Row<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a [u8])], E);
    let table: &[Row] = &[
        ("", "/", "h", &[], E::Method),
        ("GET /x HTTP/1.1\r\n", "/", "h", &[], E::Method),
        ("G ET", "/", "h", &[], E::Method),
        ("GET", "", "h", &[], E::Target),
        ("GET", "/a b", "h", &[], E::Target),
        ("GET", "/a\r\nX: y", "h", &[], E::Target),
        ("GET", "/\u{e9}", "h", &[], E::Target),
        ("GET", "/", "", &[], E::Host),
        ("GET", "/", "h\r\nX-Evil: 1", &[], E::Host),
        ("GET", "/", "h/x", &[], E::Host),
        ("GET", "/", "h", &[("", b"1")], E::HeaderName),
        ("GET", "/", "h", &[("X A", b"1")], E::HeaderName),
        ("GET", "/", "h", &[("X:A", b"1")], E::HeaderName),
        ("GET", "/", "h", &[("X-A", b"a\r\nEvil: 1")], E::HeaderValue),
        ("GET", "/", "h", &[("X-A", b"a\nb")], E::HeaderValue),
        ("GET", "/", "h", &[("X-A", b"a\0")], E::HeaderValue),
        ("GET", "/", "h", &[("X-A", b"a\x7f")], E::HeaderValue),
        // An owned name is checked before it is skipped.
        ("GET", "/", "h", &[("Host", b"x\r\ny")], E::HeaderValue),
    ];
    for (method, target, host, hs, want) in table {
        assert_eq!(
            head(method, target, host, hs, b),
            Err(*want),
            "{method:?} {target:?}"
        );
        assert!(!want.as_str().is_empty());
    }
}

#[test]
fn encoded_request_parses_back() {
    let mut out = Vec::new();
    write_request_head(
        &mut out,
        "POST",
        "/users?x=1",
        "127.0.0.1:80",
        [("Idempotency-Key", &b"k-1"[..])],
        BodyFraming::Length(2),
    )
    .unwrap();
    out.extend_from_slice(b"{}");
    let mut fields = Vec::new();
    let h = crate::http::parse::parse_head(
        &out,
        0,
        &crate::http::parse::Limits::default(),
        &mut fields,
    )
    .unwrap()
    .expect("complete");
    assert_eq!(h.method, crate::http::Method::Post);
    assert_eq!(h.framing, crate::http::parse::Framing::Length(2));
    assert_eq!(h.len as usize, out.len() - 2);
}
