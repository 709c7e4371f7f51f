//! Findings of the differential run (tests/data/differential/: h1server beside nginx and
//! Go's net/http on the same generated request streams), each pinned at the wire: the
//! request, then a second one on the same connection, and what must come back.

mod support;
use support::*;

use h1server::{Request, Response};

/// Answers `METHOD path`, so a test can tell which request was served.
fn app(req: &mut Request) -> Response {
    Response::text(format!("{} {}", req.method_str(), req.path()))
}

/// Sends `first` and a `GET /second` (with `Connection: close`) behind it in one write;
/// returns each status with its body, and whether the server closed the connection
/// after the last response read.
fn exchange(srv: &TestServer, first: &str) -> (Vec<(u16, String)>, bool) {
    let mut r = Reader::new(srv.connect());
    r.send(
        format!("{first}GET /second HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let mut got = Vec::new();
    while got.len() < 2 {
        let Some(resp) = r.read_response_to("GET") else {
            return (got, true);
        };
        let close = resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        got.push((resp.status, resp.text()));
        if close {
            break;
        }
    }
    (got, r.is_closed())
}

/// RFC 3986 §2.1: `pct-encoded = "%" HEXDIG HEXDIG`; a path segment is `*pchar`
/// (§3.3), so a `%` not followed by two hex digits makes the origin-form (RFC 9112 §3.2.1)
/// and so the request line invalid, and RFC 9112 §3 says "Recipients of an invalid
/// request-line SHOULD respond with either a 400 (Bad Request) error or a 301". nginx and
/// Go's net/http both answer 400 to each of these; h1server handed them to the handler.
/// The query is left alone, as both references do (`?q=100%` is common from forms and
/// address bars, and is the application's to decode).
#[test]
fn a_malformed_percent_escape_in_the_path_gets_400_and_close() {
    let srv = TestServer::start(app);
    let mut failures = Vec::new();
    for target in [
        "/%zz",
        "/%",
        "/%4",
        "/%4g",
        "/a%2",
        "/%%41",
        "/x%zz/y",
        "/%g0?a=1",
        "http://t/%zz",
    ] {
        let (got, closed) = exchange(&srv, &format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n"));
        if got.len() != 1 || got[0].0 != 400 || !closed {
            failures.push(format!("{target}: {got:?}, closed {closed}"));
        }
    }
    // The grammar next to the rule is served, and the connection kept.
    for (target, path) in [
        ("/%41", "/%41"),
        ("/%2f%2F", "/%2f%2F"),
        ("/a%e9b", "/a%e9b"),
        ("/?a=%zz", "/"),
        ("/?q=100%", "/"),
        ("/p?%", "/p"),
        ("http://t/x?%zz", "/x"),
    ] {
        let (got, closed) = exchange(&srv, &format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n"));
        let want = vec![
            (200, format!("GET {path}")),
            (200, "GET /second".to_string()),
        ];
        if got != want {
            failures.push(format!("{target}: {got:?}, closed {closed}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
