//! Findings of the REDbot review (docs/bench/redbot-review.md): the demo service and
//! examples/hello were linted with REDbot 2.7.1 and a strict h11 client over real
//! sockets; each defect found has a test here, on the wire.

mod support;

use std::io::Write;

use h1server::{Request, Response, Router};
use support::*;

/// RFC 9110 §8.3: "A sender that generates a message containing content SHOULD generate
/// a Content-Type header field in that message". `/stream` of examples/hello sent chunks
/// of text with no Content-Type at all, so a browser or a cache had to guess (Go's server,
/// the reference, sniffs one for every body).
#[test]
fn hello_stream_says_what_its_chunks_are() {
    let (_child, addr) = spawn_hello(&[]);
    let mut r = Reader::new(connect(addr));
    r.send(b"GET /stream?n=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.status, 200);
    assert!(resp.chunked, "{resp:?}");
    assert_eq!(resp.text(), "chunk 0\nchunk 1\n");
    assert_eq!(
        resp.header("Content-Type"),
        Some("text/plain; charset=utf-8"),
        "{resp:?}"
    );
    // HEAD says the same (RFC 9110 §9.3.2).
    r.send(b"HEAD /stream?n=2 HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = r.read_response_to("HEAD").unwrap();
    assert_eq!(head.header("Content-Type"), resp.header("Content-Type"));
}

/// RFC 9112 §3.2: a request-target is origin-form (starts with `/`), absolute-form (an
/// absolute-URI: `scheme ":" …`), authority-form (CONNECT only) or `*` (OPTIONS only);
/// §3: "Recipients of an invalid request-line SHOULD respond with either a 400 (Bad
/// Request) error or a 301 (Moved Permanently) redirect". `GET a/b` is none of them: it
/// reached the router, which answered 404 and kept the connection, where Go's server
/// (the reference: `url.ParseRequestURI`, "invalid URI for request") answers 400.
#[test]
fn a_target_in_no_request_form_gets_400() {
    let mut router = Router::new();
    router.get("/{rest...}", |req: &mut Request| {
        Response::text(format!("path {}\n", req.path()))
    });
    let srv = TestServer::start(router);
    for target in [
        "a/b",
        "a",
        "1http://h/",
        "-x:y",
        "h.example.com",
        "..",
        "%2F",
    ] {
        let mut r = Reader::new(connect(srv.addr));
        r.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = r.read_response();
        assert_eq!(resp.status, 400, "GET {target}: {resp:?}");
        assert_eq!(resp.header("Connection"), Some("close"), "GET {target}");
        assert!(r.is_closed(), "GET {target}: closed after the 400");
    }
    // The valid forms still reach the handler: origin-form, absolute-form with its
    // authority (RFC 9112 §3.2.2: a server MUST accept it), and an absolute-URI of
    // another scheme, which Go also hands to its handlers.
    for (target, path) in [
        ("/a/b", "/a/b"),
        ("http://t/a/b?x", "/a/b"),
        ("HTTPS://t", "/"),
    ] {
        let resp = roundtrip(
            srv.addr,
            format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        );
        assert_eq!(
            (resp.status, resp.text()),
            (200, format!("path {path}\n")),
            "GET {target}"
        );
    }
    let resp = roundtrip(srv.addr, b"GET urn:x:y HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_ne!(
        resp.status, 400,
        "an absolute-URI is a valid target: {resp:?}"
    );
    // Authority-form is CONNECT's: the parser lets it through to the router.
    let mut s = connect(srv.addr);
    s.write_all(b"CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n")
        .unwrap();
    let resp = Reader::new(s).read_response();
    assert_ne!(resp.status, 400, "{resp:?}");
}
