//! Request-metadata middleware at the wire: request/correlation ids generated, kept and
//! echoed, the idempotency key and propagated headers visible to the handler, a panic
//! answered 500 while the server keeps serving, CORS preflights and actual requests, and
//! bearer authentication's 401 challenges.
#![cfg(feature = "middleware")]
mod support;
use support::*;

use std::collections::HashSet;

use h1server::middleware::{
    AccessLog, BearerAuth, Cors, Principal, Recovery, RequestId, RequestMeta, Stack, propagate,
};
use h1server::{Request, Response};

const ORIGIN: &str = "https://app.example";

/// The handler at the centre: a closure matching on the path (no router).
fn handler(req: &mut Request) -> Response {
    match req.path() {
        "/meta" => {
            let m = RequestMeta::of(req).expect("RequestId ran").clone();
            Response::text(format!(
                "request_id={}\ncorrelation_id={}\nidempotency_key={}\nheader={}\n",
                m.request_id,
                m.correlation_id,
                m.idempotency_key.as_deref().unwrap_or("-"),
                req.header("X-Request-ID").unwrap_or("?"),
            ))
        }
        "/propagate" => {
            let mut outgoing = vec![
                ("Accept".to_string(), "application/json".to_string()),
                ("x-request-id".to_string(), "stale".to_string()),
            ];
            propagate(req, &mut outgoing);
            let lines: Vec<String> = outgoing.iter().map(|(n, v)| format!("{n}: {v}")).collect();
            Response::text(lines.join("\n"))
        }
        "/panic" => panic!("handler bug on purpose"),
        "/whoami" => match Principal::of(req) {
            Some(p) => Response::text(format!("subject={}", p.subject)),
            None => Response::text("anonymous"),
        },
        _ => Response::error(404, ""),
    }
}

/// The demo's order: Recovery outermost, then RequestId, AccessLog, Cors.
fn public_app() -> Stack {
    Stack::new(handler)
        .with(Recovery)
        .with(RequestId::default())
        .with(AccessLog)
        .with(
            Cors::new([ORIGIN])
                .allow_headers(&["Content-Type", "Authorization"])
                .expose_headers(&["X-Request-ID"])
                .allow_credentials(true),
        )
}

fn authed_app() -> Stack {
    Stack::new(handler)
        .with(Recovery)
        .with(RequestId::default())
        .with(BearerAuth::static_token("s3cret-token", "alice"))
}

/// A GET with extra header lines, on a new connection.
fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Resp {
    roundtrip(server.addr, &request("GET", path, headers))
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw.into_bytes()
}

/// The value of `key=` in a `/meta` body.
fn field(resp: &Resp, key: &str) -> String {
    let text = resp.text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
}

fn is_uuid_v4(s: &str) -> bool {
    let g: Vec<&str> = s.split('-').collect();
    g.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && g[2].starts_with('4')
        && matches!(g[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
}

#[test]
fn generated_request_id_is_uuid_shaped_echoed_and_new_for_every_request() {
    let server = TestServer::start(public_app());
    let mut seen = HashSet::new();
    for _ in 0..5 {
        let resp = get(&server, "/meta", &[]);
        assert_eq!(resp.status, 200);
        let id = field(&resp, "request_id");
        assert!(is_uuid_v4(&id), "{id}");
        assert_eq!(resp.header("X-Request-ID"), Some(id.as_str()), "echoed");
        assert_eq!(
            field(&resp, "header"),
            id,
            "request header set for later code"
        );
        assert_eq!(
            field(&resp, "correlation_id"),
            id,
            "correlation defaults to it"
        );
        assert_eq!(resp.header("X-Correlation-ID"), Some(id.as_str()));
        assert!(seen.insert(id), "ids differ per request");
    }
}

#[test]
fn incoming_request_and_correlation_ids_are_kept() {
    let server = TestServer::start(public_app());
    let resp = get(
        &server,
        "/meta",
        &[
            ("X-Request-ID", "req-local-001"),
            ("X-Correlation-ID", "checkout-flow-001"),
        ],
    );
    assert_eq!(field(&resp, "request_id"), "req-local-001");
    assert_eq!(field(&resp, "correlation_id"), "checkout-flow-001");
    assert_eq!(resp.header("X-Request-ID"), Some("req-local-001"));
    assert_eq!(resp.header("X-Correlation-ID"), Some("checkout-flow-001"));
}

#[test]
fn oversized_incoming_request_id_is_replaced_by_a_generated_one() {
    let server = TestServer::start(public_app());
    let long = "x".repeat(129);
    let resp = get(&server, "/meta", &[("X-Request-ID", &long)]);
    let id = field(&resp, "request_id");
    assert!(is_uuid_v4(&id), "{id}");
    assert_eq!(resp.header("X-Request-ID"), Some(id.as_str()));
}

#[test]
fn idempotency_key_is_visible_to_the_handler() {
    let server = TestServer::start(public_app());
    let resp = get(&server, "/meta", &[("Idempotency-Key", "dispatch-7f3a")]);
    assert_eq!(field(&resp, "idempotency_key"), "dispatch-7f3a");
    let resp = get(&server, "/meta", &[]);
    assert_eq!(field(&resp, "idempotency_key"), "-");
}

#[test]
fn propagate_copies_metadata_onto_outgoing_headers() {
    let server = TestServer::start(public_app());
    let resp = get(
        &server,
        "/propagate",
        &[
            ("X-Request-ID", "r-1"),
            ("X-Correlation-ID", "flow-1"),
            ("Idempotency-Key", "op-1"),
        ],
    );
    assert_eq!(
        resp.text(),
        "Accept: application/json\nX-Request-ID: r-1\nX-Correlation-ID: flow-1\nIdempotency-Key: op-1"
    );
}

#[test]
fn panicking_handler_gets_500_and_the_server_keeps_serving() {
    let server = TestServer::start(public_app());
    let mut conn = Reader::new(server.connect());
    conn.send(&request("GET", "/panic", &[("X-Request-ID", "req-panic")]));
    let resp = conn.read_response();
    assert_eq!(resp.status, 500);
    assert_eq!(resp.text(), "Internal Server Error\n");
    assert_eq!(resp.header("X-Request-ID"), Some("req-panic"));
    // Same connection, then a new one: both still answered.
    conn.send(&request("GET", "/meta", &[]));
    assert_eq!(conn.read_response().status, 200);
    assert_eq!(get(&server, "/meta", &[]).status, 200);
}

#[test]
fn cors_preflight_from_allowed_origin_is_answered_204() {
    let server = TestServer::start(public_app());
    let raw = request(
        "OPTIONS",
        "/meta",
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    );
    let mut conn = Reader::new(server.connect());
    conn.send(&raw);
    let resp = conn.read_response_to("OPTIONS").expect("a response");
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("Access-Control-Allow-Origin"), Some(ORIGIN));
    assert_eq!(
        resp.header("Access-Control-Allow-Methods"),
        Some("GET, HEAD, POST, PUT, PATCH, DELETE")
    );
    assert_eq!(
        resp.header("Access-Control-Allow-Headers"),
        Some("Content-Type, Authorization")
    );
    assert_eq!(
        resp.header("Access-Control-Allow-Credentials"),
        Some("true")
    );
    assert_eq!(resp.header("Access-Control-Max-Age"), Some("600"));
    assert!(resp.header("Vary").unwrap_or("").contains("Origin"));
}

#[test]
fn cors_actual_request_gets_allow_origin_and_disallowed_origin_does_not() {
    let server = TestServer::start(public_app());
    let resp = get(&server, "/meta", &[("Origin", ORIGIN)]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Access-Control-Allow-Origin"), Some(ORIGIN));
    assert_eq!(
        resp.header("Access-Control-Expose-Headers"),
        Some("X-Request-ID")
    );
    assert!(resp.header("Vary").unwrap_or("").contains("Origin"));

    let resp = get(&server, "/meta", &[("Origin", "https://evil.example")]);
    assert_eq!(
        resp.status, 200,
        "the request itself runs; the browser hides it"
    );
    assert_eq!(resp.header("Access-Control-Allow-Origin"), None);

    let resp = roundtrip(
        server.addr,
        &request(
            "OPTIONS",
            "/meta",
            &[
                ("Origin", "https://evil.example"),
                ("Access-Control-Request-Method", "DELETE"),
            ],
        ),
    );
    assert_eq!(resp.status, 403);
    assert!(
        resp.headers
            .iter()
            .all(|(n, _)| !n.to_ascii_lowercase().starts_with("access-control-")),
        "{:?}",
        resp.headers
    );
}

#[test]
fn request_without_origin_gets_no_cors_headers() {
    let server = TestServer::start(public_app());
    let resp = get(&server, "/meta", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Access-Control-Allow-Origin"), None);
}

#[test]
fn missing_bearer_token_gets_401_with_a_challenge() {
    let server = TestServer::start(authed_app());
    let resp = get(&server, "/whoami", &[]);
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("WWW-Authenticate"),
        Some("Bearer realm=\"api\"")
    );
    assert!(
        resp.header("X-Request-ID").is_some(),
        "outer layers still ran"
    );
}

#[test]
fn wrong_bearer_token_gets_401_invalid_token() {
    let server = TestServer::start(authed_app());
    let resp = get(
        &server,
        "/whoami",
        &[("Authorization", "Bearer not-the-token")],
    );
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("WWW-Authenticate"),
        Some("Bearer realm=\"api\", error=\"invalid_token\"")
    );
    assert!(!resp.text().contains("not-the-token"));
}

#[test]
fn valid_bearer_token_reaches_the_handler_with_its_principal() {
    let server = TestServer::start(authed_app());
    let resp = get(
        &server,
        "/whoami",
        &[("Authorization", "bearer s3cret-token")],
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "subject=alice");
}
