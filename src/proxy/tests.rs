use std::io;

use super::*;
use crate::testing::TestRequest;

#[test]
fn every_upstream_failure_maps_to_one_status() {
    let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
    // (client error, status, variant name in Debug)
    let table: Vec<(ClientError, u16, &str)> = vec![
        (
            ClientError::Connect {
                upstream: "u:1".into(),
                source: refused(),
            },
            502,
            "Unreachable",
        ),
        (
            ClientError::Timeout {
                which: TimeoutKind::Connect,
            },
            504,
            "Timeout",
        ),
        (
            ClientError::Timeout {
                which: TimeoutKind::ResponseHeader,
            },
            504,
            "Timeout",
        ),
        (
            ClientError::Timeout {
                which: TimeoutKind::Read,
            },
            504,
            "Timeout",
        ),
        (
            ClientError::Timeout {
                which: TimeoutKind::Write,
            },
            504,
            "Timeout",
        ),
        (ClientError::ConnectionClosed, 502, "Upstream"),
        (
            ClientError::Io(io::Error::from(io::ErrorKind::ConnectionReset)),
            502,
            "Upstream",
        ),
        (ClientError::Protocol("bad"), 502, "Upstream"),
        (ClientError::HeadTooLarge { limit: 1 }, 502, "Upstream"),
        (ClientError::BodyTooLarge { limit: 1 }, 502, "Upstream"),
        (ClientError::InvalidRequest("ctl"), 500, "Invalid"),
        (ClientError::InvalidUrl("x"), 500, "Invalid"),
    ];
    for (e, status, variant) in table {
        let shown = e.to_string();
        let p = ProxyError::from_client("u:1", e);
        assert_eq!(p.status(), status, "{shown}");
        assert!(format!("{p:?}").starts_with(variant), "{shown}: {p:?}");
        assert!(p.to_string().contains("u:1"), "{p}");
    }
    assert_eq!(ProxyError::NoRoute { path: "/x".into() }.status(), 404);
}

#[test]
fn builder_mistakes_are_reported_by_build() {
    // (builder, part of the message)
    let table: Vec<(ProxyBuilder, &str)> = vec![
        (ReverseProxy::builder(), "no route"),
        (
            ReverseProxy::builder().route("api", ["http://a"]),
            "start with '/'",
        ),
        (
            ReverseProxy::builder().route("/api", Vec::<&str>::new()),
            "no upstream",
        ),
        (ReverseProxy::builder().route("/api", ["https://a"]), "TLS"),
        (
            ReverseProxy::builder()
                .route("/a", ["http://a"])
                .route("/a/", ["http://b"]),
            "twice",
        ),
        (
            ReverseProxy::builder()
                .route("/a", ["http://a"])
                .table(parse_routes("/b=http://b").unwrap()),
            "either table() or route()",
        ),
        // A deadline past 8760h could overflow the event loop's Instant (a panic there).
        (
            ReverseProxy::builder()
                .route("/a", ["http://a"])
                .connect_timeout(Duration::MAX),
            "connect_timeout",
        ),
        (
            ReverseProxy::builder()
                .route("/a", ["http://a"])
                .health_cooldown(Duration::from_secs(u64::MAX)),
            "health_cooldown",
        ),
        (
            ReverseProxy::builder()
                .route("/a", ["http://a"])
                .response_header_timeout(Duration::ZERO),
            "response_header_timeout: must be greater than 0",
        ),
    ];
    for (b, want) in table {
        let err = b.build().unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert!(err.to_string().starts_with("reverse proxy: "), "{err}");
    }
}

#[test]
fn a_path_without_a_route_is_answered_by_the_error_handler() {
    let p = ReverseProxy::builder()
        .route("/api/users", ["http://127.0.0.1:9"])
        .build()
        .unwrap();
    let resp = TestRequest::get("/other").run(&p);
    assert_eq!(resp.status(), 404);

    let p = ReverseProxy::builder()
        .route("/api/users", ["http://127.0.0.1:9"])
        .error_handler(|e| Response::text(format!("custom: {e}")).with_status(e.status()))
        .build()
        .unwrap();
    let resp = TestRequest::get("/other").run(&p);
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.body_bytes(), b"custom: no upstream route for /other");
}

#[test]
fn outgoing_and_upstream_header_helpers_replace_and_remove_case_insensitively() {
    let mut out = OutgoingRequest {
        method: "GET".into(),
        target: "/".into(),
        host: "u".into(),
        headers: vec![("X-A".into(), "1".into()), ("x-a".into(), "2".into())],
        upstream: "u:80".into(),
    };
    assert_eq!(out.header("X-A"), Some("1"));
    out.set_header("X-a", "3");
    assert_eq!(out.headers, vec![("X-a".to_string(), "3".to_string())]);
    out.remove_header("x-A");
    assert!(out.headers.is_empty());
    assert_eq!(out.upstream(), "u:80");

    let mut up = UpstreamResponse {
        status: 200,
        headers: vec![("Server".into(), "x".into())],
        upstream: "u:80".into(),
    };
    up.set_header("server", "gw");
    assert_eq!(up.header("SERVER"), Some("gw"));
    up.remove_header("Server");
    assert_eq!(up.header("server"), None);
}

#[test]
fn the_route_table_and_status_are_reported() {
    let p = ReverseProxy::builder()
        .route("/api", ["http://127.0.0.1:9001", "http://127.0.0.1:9002"])
        .build()
        .unwrap();
    assert_eq!(
        p.routes(),
        "/api -> http://127.0.0.1:9001/ | http://127.0.0.1:9002/"
    );
    let st = p.upstream_status();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].0, "/api");
    assert!(st[0].1.iter().all(|u| u.healthy && u.attempts == 0));
}

#[test]
fn an_upstream_name_is_resolved_once_and_an_ip_never() {
    let ip = Upstream::new("http://127.0.0.1:9").unwrap();
    assert_eq!(forward::socket_addr(&ip), Some(([127, 0, 0, 1], 9).into()));
    assert_eq!(
        ip.resolved(),
        None,
        "an IP literal is parsed, not looked up"
    );
    let named = Upstream::new("http://localhost:9").unwrap();
    assert_eq!(named.resolved(), None);
    let first = forward::socket_addr(&named).expect("localhost resolves");
    assert_eq!(first.port(), 9);
    assert!(first.ip().is_loopback(), "{first}");
    assert_eq!(named.resolved(), Some(first), "kept after the first lookup");
    assert_eq!(forward::socket_addr(&named), Some(first));
}
