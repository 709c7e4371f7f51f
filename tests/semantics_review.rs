//! Findings of the REDbot review (docs/bench/redbot-review.md): the demo service and
//! examples/hello were linted with REDbot 2.7.1 and a strict h11 client over real
//! sockets; each defect found has a test here, on the wire.

mod support;

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
