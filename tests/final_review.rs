//! The last review of the session's fixes (parse verdicts, the gateway's early answers,
//! the stop from code, the drain, the first-byte stamp), over real sockets: what each fix
//! broke or missed.

mod support;
use support::*;

use h1server::{Request, Response, Router};

/// RFC 9112 §3.2.4: "The asterisk-form of request-target is only used for a server-wide
/// OPTIONS request" and is exactly `*`. A target that starts with `*` and goes on is in no
/// request form (not origin-form, no scheme, not CONNECT's authority-form): 400 and a
/// close, as `GET a/b` gets (Go: "invalid URI for request"). It reached the router.
#[test]
fn a_target_that_only_starts_with_an_asterisk_gets_400() {
    let mut router = Router::new();
    router.any("/{rest...}", |req: &mut Request| {
        Response::text(format!("path {}\n", req.path()))
    });
    let srv = TestServer::start(router);
    for line in ["GET *x", "GET **", "OPTIONS *x", "OPTIONS */a", "GET *"] {
        let mut r = Reader::new(connect(srv.addr));
        r.send(format!("{line} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = r.read_response();
        assert_eq!(resp.status, 400, "{line}: {resp:?}");
        assert_eq!(resp.header("Connection"), Some("close"), "{line}");
        assert!(r.is_closed(), "{line}: closed after the 400");
    }
    // `OPTIONS *` itself is still the server-wide question.
    let resp = roundtrip(srv.addr, b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(resp.status, 200, "{resp:?}");
}
