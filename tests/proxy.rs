//! The reverse proxy at the wire, in front of a scripted upstream this test controls
//! (tests/support/upstream.rs): hop-by-hop stripping, X-Forwarded-* and Via, the hooks,
//! pooled upstream connections, chunked and close-delimited upstream bodies, 502 on a
//! refusing upstream (skipped afterwards), 504 on a slow one, HEAD, and
//! `Expect: 100-continue` for buffered and streamed bodies. Only 127.0.0.1.
#![cfg(feature = "proxy")]
mod support;
#[path = "support/upstream.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use h1server::proxy::{ProxyBuilder, ReverseProxy};
use h1server::{Config, Response};
use support::*;
use upstream::{Reply, Upstream, ok};

fn config() -> Config {
    Config {
        max_body_bytes: 64 * 1024,
        max_upload_bytes: 1 << 30,
        ..test_config()
    }
}

fn start(b: ProxyBuilder) -> TestServer {
    TestServer::with_config(config(), b.build().unwrap())
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
fn refusing_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn hop_by_hop_fields_and_those_named_by_connection_never_reach_the_upstream() {
    let up = Upstream::start(vec![Reply::Raw(ok("fine"))]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let resp = roundtrip(
        gw.addr,
        b"GET /a/b?c=1 HTTP/1.1\r\nHost: gw.test\r\nConnection: foo, keep-alive\r\nFoo: secret\r\n\
          Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
          Proxy-Authorization: Basic eDp5\r\nUpgrade: websocket\r\nAccept: text/plain\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "fine");
    let seen = &up.requests()[0];
    assert_eq!(seen.line(), "GET /a/b?c=1 HTTP/1.1");
    for gone in [
        "foo",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "proxy-authorization",
        "upgrade",
    ] {
        assert_eq!(seen.header(gone), None, "{gone} forwarded:\n{}", seen.head);
    }
    assert_eq!(seen.header("accept").as_deref(), Some("text/plain"));
    assert_eq!(seen.header("host"), Some(up.addr.to_string()));
}

#[test]
fn forwarded_headers_and_via_are_set_and_appended() {
    let up = Upstream::start(vec![]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let resp = roundtrip(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: gw.test:8000\r\nX-Forwarded-For: 203.0.113.9\r\n\
          X-Forwarded-Proto: https\r\nVia: 1.1 edge\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    let seen = &up.requests()[0];
    assert_eq!(
        seen.header("x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(
        seen.header("x-forwarded-host").as_deref(),
        Some("gw.test:8000")
    );
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        seen.header("via").as_deref(),
        Some("1.1 edge, 1.1 h1server")
    );
    assert_eq!(resp.header("via"), Some("1.1 h1server"));
}

#[test]
fn response_hop_by_hop_fields_are_removed_and_the_hooks_run() {
    let up = Upstream::start(vec![Reply::Raw(
        "HTTP/1.1 201 Created\r\nConnection: X-Internal\r\nX-Internal: 1\r\nKeep-Alive: timeout=9\r\n\
         Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok"
            .to_string(),
    )]);
    let gw = start(
        ReverseProxy::builder()
            .route("/", [up.url("/base")])
            .preserve_host(true)
            .director(|out| {
                out.set_header("X-Director", out.upstream().to_string());
                out.target = format!("{}&via=director", out.target);
            })
            .modify_response(|resp| {
                resp.set_header("X-Proxy", "api-gateway");
                Ok(())
            }),
    );
    let resp = roundtrip(
        gw.addr,
        b"POST /x?y=1 HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert_eq!(resp.status, 201);
    assert_eq!(resp.text(), "ok");
    assert_eq!(resp.header("x-internal"), None);
    assert_eq!(resp.header("keep-alive"), None);
    assert_eq!(resp.header_count("set-cookie"), 2);
    assert_eq!(resp.header("x-proxy"), Some("api-gateway"));
    let seen = &up.requests()[0];
    assert_eq!(seen.line(), "POST /base/x?y=1&via=director HTTP/1.1");
    assert_eq!(seen.header("host").as_deref(), Some("gw.test"));
    assert_eq!(seen.header("x-director"), Some(up.addr.to_string()));
    assert_eq!(seen.body, b"abc");
}

#[test]
fn fixed_response_fields_are_set_without_a_hook_and_before_one() {
    let reply = "HTTP/1.1 200 OK\r\nX-Proxy: upstream's\r\nContent-Length: 2\r\n\r\nok";
    // No hook: the event loop decides the head and sets the field (replacing the
    // upstream's); the request the upstream sees is the standard rewrite.
    let up = Upstream::start(vec![Reply::Raw(reply.to_string())]);
    let gw = start(
        ReverseProxy::builder()
            .route("/", [up.url("")])
            .set_response_header("X-Proxy", "api-gateway"),
    );
    let resp = roundtrip(gw.addr, b"GET /a HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok"));
    assert_eq!(resp.header_count("x-proxy"), 1);
    assert_eq!(resp.header("x-proxy"), Some("api-gateway"));
    let seen = &up.requests()[0];
    assert_eq!(seen.line(), "GET /a HTTP/1.1");
    assert_eq!(seen.header("x-forwarded-host").as_deref(), Some("gw.test"));
    // With a hook: it sees the fixed field already set, and has the last word.
    let up = Upstream::start(vec![Reply::Raw(reply.to_string())]);
    let gw = start(
        ReverseProxy::builder()
            .route("/", [up.url("")])
            .set_response_header("X-Proxy", "api-gateway")
            .modify_response(|resp| {
                let seen = resp.header("x-proxy").unwrap_or("none").to_string();
                resp.set_header("X-Seen", seen);
                resp.set_header("X-Proxy", "hook");
                Ok(())
            }),
    );
    let resp = roundtrip(gw.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.header("x-seen"), Some("api-gateway"));
    assert_eq!(resp.header("x-proxy"), Some("hook"));
    // A bad field is refused when the proxy is built, naming it.
    for (name, value, says) in [
        ("X Bad", "v", "\"X Bad\" is not a field name"),
        ("", "v", "\"\" is not a field name"),
        (
            "X-Ok",
            "a\r\nInjected: 1",
            "the value of X-Ok has a control character",
        ),
    ] {
        let Err(err) = ReverseProxy::builder()
            .route("/", ["http://127.0.0.1:9"])
            .set_response_header(name, value)
            .build()
        else {
            panic!("{name:?}: {value:?} accepted");
        };
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[test]
fn a_modify_response_refusal_is_the_answer() {
    let up = Upstream::start(vec![Reply::Raw(ok("secret"))]);
    let gw = start(
        ReverseProxy::builder()
            .route("/", [up.url("")])
            .modify_response(|_| Err(Response::error(403, "filtered\n"))),
    );
    let resp = roundtrip(gw.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((resp.status, resp.text().as_str()), (403, "filtered\n"));
}

#[test]
fn upstream_connections_are_kept_alive_and_reused() {
    let up = Upstream::start(vec![]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    for _ in 0..5 {
        // A new client connection each time: the upstream side is pooled regardless.
        let resp = roundtrip(gw.addr, b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(resp.status, 200);
    }
    let conns: Vec<usize> = up.requests().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 0, 0, 0, 0], "one upstream connection for all");
}

#[test]
fn chunked_and_close_delimited_upstream_bodies_are_streamed_through() {
    let big = "z".repeat(200_000);
    let up = Upstream::start(vec![
        Reply::Raw(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                .to_string(),
        ),
        Reply::RawThenClose(format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{big}")),
        Reply::Raw(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{big}", big.len())),
    ]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let mut r = Reader::new(connect(gw.addr));
    r.send(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    let a = r.read_response();
    assert_eq!(a.text(), "hello world");
    r.send(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n");
    let b = r.read_response();
    assert!(b.chunked, "a close-delimited body goes out chunked");
    assert_eq!(b.body.len(), big.len());
    r.send(b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n");
    let c = r.read_response();
    // Relayed by the event loop as it arrives, with the upstream's length (as nginx does).
    assert!(!c.chunked, "a body of known length keeps it");
    assert_eq!(
        c.header("content-length"),
        Some(big.len().to_string().as_str())
    );
    assert_eq!(c.text(), big);
    // The client connection survived all three.
    r.send(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.read_response().status, 200);
}

#[test]
fn a_short_upstream_body_keeps_its_content_length() {
    let up = Upstream::start(vec![Reply::Raw(ok("twelve bytes"))]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let resp = roundtrip(gw.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!resp.chunked);
    assert_eq!(resp.header("content-length"), Some("12"));
}

#[test]
fn head_gets_the_upstream_head_and_no_body() {
    let up = Upstream::start(vec![Reply::Raw(
        "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-Kind: head\r\n\r\n".to_string(),
    )]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let mut r = Reader::new(connect(gw.addr));
    r.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = r.read_response_to("HEAD").unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-kind"), Some("head"));
    r.send(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        r.read_response().status,
        200,
        "no stray body bytes after HEAD"
    );
}

#[test]
fn a_refusing_upstream_is_502_alone_and_skipped_in_a_round_robin() {
    let dead = refusing_addr();
    let gw_alone = start(ReverseProxy::builder().route("/", [format!("http://{dead}")]));
    let resp = roundtrip(gw_alone.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 502);

    let live = Upstream::start(vec![]);
    let proxy = ReverseProxy::builder()
        .route("/", [format!("http://{dead}"), live.url("")])
        .health_cooldown(Duration::from_secs(60))
        .build()
        .unwrap();
    let gw = TestServer::with_config(config(), proxy.clone());
    for i in 0..6 {
        let resp = roundtrip(
            gw.addr,
            format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
        assert_eq!(
            resp.status, 200,
            "request {i}: the refusal is retried on the live upstream"
        );
    }
    assert_eq!(live.requests().len(), 6);
    let st = &proxy.upstream_status()[0].1;
    assert!(!st[0].healthy);
    assert_eq!(
        (st[0].attempts, st[0].refusals),
        (1, 1),
        "the refusing upstream is tried once, then skipped during its cool-down"
    );
    assert!(st[1].healthy);
}

#[test]
fn a_slow_upstream_is_504_at_the_response_header_timeout() {
    let up = Upstream::start(vec![Reply::Hang]);
    let gw = start(
        ReverseProxy::builder()
            .route("/", [up.url("")])
            .response_header_timeout(Duration::from_millis(300)),
    );
    let t0 = Instant::now();
    let resp = roundtrip(gw.addr, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 504);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(t0.elapsed() < IO_TIMEOUT);
}

#[test]
fn an_upstream_that_resets_mid_body_cuts_the_client_off() {
    let up = Upstream::start(vec![Reply::RawThenClose(format!(
        "HTTP/1.1 200 OK\r\nContent-Length: 500000\r\n\r\n{}",
        "q".repeat(100_000)
    ))]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let mut s = connect(gw.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.starts_with("HTTP/1.1 200 OK"),
        "{}",
        &text[..100.min(text.len())]
    );
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the body must not look complete"
    );
}

/// A pooled connection the upstream closes as the request arrives (after the loop's look
/// at it found it quiet): an idempotent request goes again on a fresh connection, once; a
/// POST is not repeated (RFC 9112 §9.3.1) and is answered 502.
#[test]
fn a_pooled_connection_lost_under_a_request_is_replaced_for_an_idempotent_one_only() {
    let up = Upstream::start(vec![
        Reply::Raw(ok("one")),
        Reply::Close,
        Reply::Raw(ok("two")),
        Reply::Close,
    ]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let mut r = Reader::new(connect(gw.addr));
    r.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.read_response().text(), "one");
    r.send(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
    let b = r.read_response();
    assert_eq!((b.status, b.text().as_str()), (200, "two"));
    r.send(b"POST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx");
    assert_eq!(r.read_response().status, 502);
    let conns: Vec<usize> = up.requests().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 0, 1, 1]);
}

/// RFC 9110 §15.2: a proxy forwards 1xx answers — rewritten as a final head is — to
/// HTTP/1.1 clients and never to HTTP/1.0 ones; a storm of them is capped (8 per answer).
#[test]
fn interim_answers_reach_http11_clients_rewritten_capped_and_never_http10_ones() {
    let hints = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: foo\r\nFoo: x\r\nKeep-Alive: timeout=5\r\n\r\n";
    let answer = format!("{}{}", hints.repeat(20), ok("done"));
    let up = Upstream::start(vec![Reply::Raw(answer.clone()), Reply::Raw(answer)]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let mut r = Reader::new(connect(gw.addr));
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut interim = 0;
    let last = loop {
        let resp = r.read_response();
        if resp.status != 103 {
            break resp;
        }
        interim += 1;
        assert_eq!(resp.header("link"), Some("</a.css>; rel=preload"));
        assert_eq!(resp.header("via"), Some("1.1 h1server"));
        for gone in ["connection", "foo", "keep-alive", "content-length"] {
            assert_eq!(resp.header(gone), None, "{gone} in a relayed 103");
        }
    };
    assert_eq!(
        (interim, last.status, last.text().as_str()),
        (8, 200, "done")
    );
    let old = roundtrip(gw.addr, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!((old.status, old.text().as_str()), (200, "done"));
}

#[test]
fn a_buffered_body_with_expect_continue_is_answered_100_by_the_proxy_and_forwarded_whole() {
    let up = Upstream::start(vec![]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let mut r = Reader::new(connect(gw.addr));
    r.send(b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = r.read_response();
    assert_eq!(interim.status, 100);
    r.send(b"hello");
    assert_eq!(r.read_response().status, 200);
    let seen = &up.requests()[0];
    assert_eq!(seen.body, b"hello");
    assert_eq!(
        seen.header("expect"),
        None,
        "the proxy already answered the expectation"
    );
}

/// A one-request upstream that answers the head at once with `first` (a `100 Continue`
/// or a final answer), then, when `then_ok`, reads the body and answers `200` with its
/// length.
fn expecting_upstream(first: &'static str, then_ok: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut buf = Vec::new();
        let mut tmp = [0u8; 65536];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut tmp).unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&tmp[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        assert!(head.contains("expect: 100-continue"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        s.write_all(first.as_bytes()).unwrap();
        if then_ok {
            let mut got = buf.len() - head_end;
            while got < len {
                let n = s.read(&mut tmp).unwrap();
                assert!(n > 0, "body cut at {got}");
                got += n;
            }
            let body = format!("{got}");
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
    });
    addr
}

#[test]
fn a_streamed_body_with_expect_continue_waits_for_the_upstreams_go_ahead() {
    let addr = expecting_upstream("HTTP/1.1 100 Continue\r\n\r\n", true);
    let gw = start(ReverseProxy::builder().route("/", [format!("http://{addr}")]));
    let len = 300_000;
    let mut r = Reader::new(connect(gw.addr));
    r.send(
        format!(
            "PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\nExpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(r.read_response().status, 100);
    r.send(&vec![b'u'; len]);
    let resp = r.read_response();
    assert_eq!((resp.status, resp.text()), (200, len.to_string()));
}

#[test]
fn an_upstream_refusing_a_streamed_body_before_it_is_sent_answers_the_client() {
    let addr = expecting_upstream(
        "HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big\n",
        false,
    );
    let gw = start(ReverseProxy::builder().route("/", [format!("http://{addr}")]));
    let mut r = Reader::new(connect(gw.addr));
    r.send(b"PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 900000000\r\nExpect: 100-continue\r\n\r\n");
    let resp = r.read_response();
    assert_eq!((resp.status, resp.text().as_str()), (413, "too big\n"));
    assert!(r.is_closed(), "the unread body ends the client connection");
}

#[test]
fn a_streamed_body_without_expectation_passes_through() {
    let up = Upstream::start(vec![]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let len = 1_000_000;
    let mut r = Reader::new(connect(gw.addr));
    r.send(format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").as_bytes());
    r.send(&vec![b'p'; len]);
    assert_eq!(r.read_response().status, 200);
    let seen = &up.requests()[0];
    assert_eq!(seen.body.len(), len);
    assert_eq!(seen.header("content-length"), Some(len.to_string()));
}

#[test]
fn an_upstream_that_refuses_a_streamed_body_midway_gets_its_answer_to_the_client() {
    // Reads the head and a little of the body, answers 413 and closes without reading on.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut tmp = [0u8; 4096];
        let _ = s.read(&mut tmp);
        s.write_all(b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\nrefused\n\n")
            .unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        std::thread::sleep(Duration::from_millis(100));
        // Dropped with unread bytes: the kernel resets the connection.
    });
    let gw = start(ReverseProxy::builder().route("/", [format!("http://{addr}")]));
    let len: usize = 64 << 20;
    let mut s = connect(gw.addr);
    s.write_all(
        format!("PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    // Write the body until the proxy stops reading it (it answered and closes).
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let piece = vec![b'r'; 1 << 20];
            let mut sent = 0;
            while sent < len {
                if s.write_all(&piece).is_err() {
                    break;
                }
                sent += piece.len();
            }
        })
    };
    let mut r = Reader::new(s);
    let resp = r.read_response();
    assert_eq!((resp.status, resp.text().as_str()), (413, "refused\n\n"));
    let _ = r.stream.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
}

#[test]
fn an_absolute_form_target_goes_upstream_in_origin_form() {
    let up = Upstream::start(vec![]);
    let gw = start(ReverseProxy::builder().route("/api", [up.url("")]));
    let resp = roundtrip(
        gw.addr,
        b"GET http://gw.test/api/x?q=1 HTTP/1.1\r\nHost: gw.test\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    assert_eq!(up.requests()[0].line(), "GET /api/x?q=1 HTTP/1.1");
    let resp = roundtrip(gw.addr, b"OPTIONS * HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    assert_eq!(resp.status, 404, "asterisk-form matches no prefix");
}

#[test]
fn a_chunked_request_body_goes_upstream_with_its_length() {
    let up = Upstream::start(vec![]);
    let gw = start(ReverseProxy::builder().route("/", [up.url("")]));
    let resp = roundtrip(
        gw.addr,
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
          3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    let seen = &up.requests()[0];
    assert_eq!(seen.body, b"abcde");
    assert_eq!(seen.header("content-length").as_deref(), Some("5"));
    assert_eq!(seen.header("transfer-encoding"), None);
    assert_eq!(seen.header("trailer"), None);
}

/// Routes are chosen on the path as the upstream will read it. A gateway that routes only
/// `/public` sent `/public/../secret` (and its `%2e%2e` spelling) to the `/public`
/// upstream, matching the raw path, and that upstream — normalising dot segments as
/// RFC 3986 §5.2.4 says — served `/secret`, a path the gateway never routes. nginx
/// matches its `location`s on the normalised path; Go's `ServeMux` cleans it first. The
/// same with `%2F` for the slash (5aeb60e's review): an upstream that decodes it before
/// it resolves dot segments reads `/public/..%2Fsecret` as `/secret`.
#[test]
fn dot_segments_cannot_reach_a_path_outside_the_route_they_are_spelled_under() {
    let up = Upstream::start(vec![Reply::Raw(ok("public")), Reply::Raw(ok("public"))]);
    let gw = start(ReverseProxy::builder().route("/public", [up.url("")]));
    for path in [
        "/public/../secret",
        "/public/%2e%2e/secret",
        "/public/%2E%2E/secret",
        "/public/./../secret",
        "/public/..%2Fsecret",
        "/public/..%2fsecret",
        "/public/%2e%2e%2Fsecret",
        "/public/a/..%2F..%2Fsecret",
    ] {
        let resp = roundtrip(
            gw.addr,
            format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\n\r\n").as_bytes(),
        );
        assert_eq!(resp.status, 404, "{path} reached the /public upstream");
    }
    // Dot segments that stay under the prefix are still routed there.
    let resp = roundtrip(
        gw.addr,
        b"GET /public/a/../b HTTP/1.1\r\nHost: gw.test\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    // An encoded slash that stays under the prefix is routed there too, and goes
    // upstream as the client spelled it.
    let resp = roundtrip(
        gw.addr,
        b"GET /public/a%2F..%2Fb HTTP/1.1\r\nHost: gw.test\r\n\r\n",
    );
    assert_eq!(resp.status, 200);
    let seen = up.requests();
    assert_eq!(
        seen.len(),
        2,
        "only the requests under /public went upstream"
    );
    assert_eq!(seen[1].line(), "GET /public/a%2F..%2Fb HTTP/1.1");
}

/// A proxied request whose handler side (here the director) outlasts the loop's yields:
/// the loop has gone to sleep when the worker hands it the exchange to start, and must be
/// woken for it. It was not (a fully written batch with nothing to write wakes no one),
/// so each such request waited for the loop's next timer tick: with a 1 s tick, a second.
#[test]
fn an_exchange_handed_to_a_sleeping_loop_starts_at_once_not_at_its_next_tick() {
    let up = Upstream::start(vec![Reply::Raw(ok("fine")); 3]);
    let tick = Duration::from_secs(1);
    let gw = TestServer::with_config(
        Config {
            timer_tick: tick,
            ..config()
        },
        ReverseProxy::builder()
            .route("/", [up.url("")])
            .director(|_| std::thread::sleep(Duration::from_millis(30)))
            .build()
            .unwrap(),
    );
    for _ in 0..3 {
        let t0 = Instant::now();
        let resp = roundtrip(
            gw.addr,
            b"GET / HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n",
        );
        assert_eq!((resp.status, resp.text()), (200, "fine".to_string()));
        // Not a speed bar: a missed wake-up shows as the tick itself.
        assert!(
            t0.elapsed() < tick / 2,
            "the exchange waited for the loop's tick: {:?}",
            t0.elapsed()
        );
    }
}
