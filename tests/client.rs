//! The client (`h1server::client`) against the server itself: keep-alive reuse, chunked
//! streams read whole and streamed, responses without a body, JSON, metadata propagation
//! through a real handler (seed 002), fan-out under a deadline (seed 004), and the pool's
//! caps and idle expiry. Every call has a total timeout, so a bug fails, never hangs.
#![cfg(feature = "client")]
mod support;
use support::*;
#[path = "support/upstream.rs"]
mod upstream;
use upstream::{Reply, Upstream, ok, status};

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use h1server::client::{BodyLength, Client, ClientError, RetryPolicy, TimeoutKind, fan_out};
use h1server::middleware::{RequestId, Stack};
use h1server::testing::TestRequest;
use h1server::{Config, Request, Response, status as st};

fn client() -> Client {
    Client::builder().timeout(IO_TIMEOUT).build()
}

/// The server's view of the client: its address and port, per request.
fn whoami(req: &mut Request) -> Response {
    match req.path() {
        "/peer" => Response::text(req.peer_addr().port().to_string()),
        "/stream" => Response::stream((0..50).map(|i| format!("piece {i:02};").into_bytes())),
        "/big" => Response::stream((0..64).map(|_| vec![b'z'; 16 * 1024])),
        "/echo" => Response::new(st::OK)
            .with_header("Content-Type", "application/json")
            .with_body(req.body().to_vec()),
        "/empty" => Response::new(st::NO_CONTENT),
        _ => Response::error(st::NOT_FOUND, ""),
    }
}

#[test]
fn keep_alive_reuses_one_connection_to_h1server() {
    let server = TestServer::start(whoami);
    let c = client();
    let url = format!("http://{}/peer", server.addr);
    let first = c.get(&url).send().unwrap().text().unwrap();
    assert_eq!(c.idle_connections(), 1);
    for _ in 0..5 {
        assert_eq!(c.get(&url).send().unwrap().text().unwrap(), first);
    }
    assert_eq!(c.idle_connections(), 1);
    let nf = c
        .get(&format!("http://{}/nope", server.addr))
        .send()
        .unwrap();
    assert_eq!(nf.status(), 404);
    drop(nf.bytes().unwrap());
    assert_eq!(
        c.get(&url).send().unwrap().text().unwrap(),
        first,
        "a 404 keeps it too"
    );
}

#[test]
fn a_chunked_stream_from_h1server_is_read_whole_and_streamed() {
    let server = TestServer::start(whoami);
    let c = client();
    let url = format!("http://{}/stream", server.addr);
    let want: String = (0..50).map(|i| format!("piece {i:02};")).collect();
    let resp = c.get(&url).send().unwrap();
    assert_eq!(resp.head().body, BodyLength::Chunked);
    assert_eq!(resp.content_length(), None);
    assert_eq!(resp.text().unwrap(), want);
    // Streamed through a 7-byte buffer: same bytes, connection back in the pool at EOF.
    let mut reader = c.get(&url).send().unwrap().into_reader();
    let (mut got, mut buf) = (Vec::new(), [0u8; 7]);
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8(got).unwrap(), want);
    assert_eq!(c.idle_connections(), 1);
    // 1 MiB in 16 KiB chunks, read through io::copy.
    let mut reader = c
        .get(&format!("http://{}/big", server.addr))
        .send()
        .unwrap()
        .into_reader();
    let mut sink = Vec::new();
    assert_eq!(std::io::copy(&mut reader, &mut sink).unwrap(), 1 << 20);
    assert!(sink.iter().all(|&b| b == b'z'));
}

#[test]
fn responses_without_a_body_release_the_connection_at_once() {
    let server = TestServer::start(whoami);
    let c = client();
    let head = c
        .head(&format!("http://{}/stream", server.addr))
        .send()
        .unwrap();
    assert_eq!((head.status(), head.head().body), (200, BodyLength::None));
    assert_eq!(
        c.idle_connections(),
        1,
        "HEAD: pooled before the body is asked for"
    );
    let empty = c
        .get(&format!("http://{}/empty", server.addr))
        .send()
        .unwrap();
    assert_eq!(empty.status(), 204);
    assert_eq!(c.idle_connections(), 1);
    drop(empty);
    // A small body that came with the head is decoded at once, the connection pooled.
    let small = c
        .get(&format!("http://{}/peer", server.addr))
        .send()
        .unwrap();
    assert_eq!(c.idle_connections(), 1);
    assert!(!small.text().unwrap().is_empty());
}

#[cfg(feature = "json")]
#[test]
fn a_post_body_and_json_round_trip() {
    let server = TestServer::start(whoami);
    let c = client();
    let url = format!("http://{}/echo", server.addr);
    let value = serde_json::json!({"name": "Ada", "n": [1, 2, 3]});
    let resp = c.post(&url).json(&value).send().unwrap();
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let back: serde_json::Value = resp.json().unwrap();
    assert_eq!(back, value);
    let text = c.put(&url).body("plain").send().unwrap().text().unwrap();
    assert_eq!(text, "plain");
    let bad = c
        .post(&url)
        .body("{")
        .send()
        .unwrap()
        .json::<serde_json::Value>();
    assert!(matches!(bad, Err(ClientError::Json(_))), "{bad:?}");
}

#[test]
fn propagate_copies_the_incoming_ids_and_a_retry_gets_a_new_request_id() {
    let up = Upstream::start(vec![Reply::Raw(status(503, "")), Reply::Raw(ok("created"))]);
    let url = up.url("/users");
    let c = client();
    // A real handler behind the RequestId middleware calls the upstream (seed 002).
    let app = Stack::new(move |req: &mut Request| {
        let resp = c
            .post(&url)
            .propagate(req)
            .body("{}")
            .retry(RetryPolicy::exponential(3).base_delay(Duration::from_millis(5)))
            .send()
            .unwrap();
        Response::text(resp.text().unwrap())
    })
    .with(RequestId::default());
    let resp = TestRequest::post("/checkout")
        .header("X-Request-ID", "req-local-001")
        .header("X-Correlation-ID", "checkout-flow-001")
        .header("Idempotency-Key", "create-grace-1")
        .run(&app);
    assert_eq!(resp.body_bytes(), b"created");
    let seen = up.requests();
    assert_eq!(
        seen.len(),
        2,
        "the 503 was retried: the POST carries an Idempotency-Key"
    );
    for s in &seen {
        assert_eq!(
            s.header("x-correlation-id").as_deref(),
            Some("checkout-flow-001")
        );
        assert_eq!(
            s.header("idempotency-key").as_deref(),
            Some("create-grace-1")
        );
    }
    assert_eq!(
        seen[0].header("x-request-id").as_deref(),
        Some("req-local-001")
    );
    let retry_id = seen[1].header("x-request-id").unwrap();
    assert_ne!(
        retry_id, "req-local-001",
        "a retry is a new attempt: a new request id"
    );
    assert_eq!(retry_id.len(), 36, "a generated UUID-shaped id: {retry_id}");
}

#[test]
fn propagate_without_the_middleware_reads_and_checks_the_headers() {
    let up = Upstream::start(vec![]);
    let c = client();
    let req = TestRequest::get("/")
        .header("X-Request-ID", "bad id with spaces")
        .build();
    c.get(&up.url("/")).propagate(&req).send().unwrap();
    let s = &up.requests()[0];
    let id = s.header("x-request-id").unwrap();
    assert_ne!(id, "bad id with spaces");
    assert_eq!(
        s.header("x-correlation-id").unwrap(),
        id,
        "defaults to the request id"
    );
    assert_eq!(s.header("idempotency-key"), None);
}

#[test]
fn fan_out_returns_in_order_and_ends_at_its_deadline() {
    let gate = Gate::default();
    let held = gate.clone();
    let cfg = Config {
        workers: 4,
        ..test_config()
    };
    let server = TestServer::with_config(cfg, move |req: &mut Request| {
        if req.path() == "/slow" {
            held.wait(Duration::from_secs(10));
        }
        Response::text(req.path().to_string())
    });
    let _open = OpenOnDrop(gate);
    let client = Arc::new(client());
    let paths = ["/a", "/b", "/slow", "/c", "/d"];
    let calls: Vec<_> = paths
        .iter()
        .map(|p| {
            let (client, url) = (client.clone(), format!("http://{}{p}", server.addr));
            move |deadline| client.get(&url).deadline(deadline).send()?.text()
        })
        .collect();
    let t0 = Instant::now();
    let results = fan_out(calls, 2, Duration::from_millis(700));
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    for (p, r) in paths.iter().zip(&results) {
        match (*p, r) {
            (
                "/slow",
                Err(ClientError::Timeout {
                    which: TimeoutKind::Total,
                }),
            ) => {}
            ("/slow", other) => panic!("/slow: {other:?}"),
            (p, Ok(text)) => assert_eq!(text, p),
            (p, Err(e)) => panic!("{p}: {e}"),
        }
    }
}

#[test]
fn the_pool_keeps_at_most_its_caps_and_drops_expired_connections() {
    let up = Upstream::start(vec![]);
    let replies = || vec![Reply::Delay(150, ok("1")), Reply::Delay(150, ok("2"))];
    // Two requests at once need two connections; one is kept (max_idle_per_host 1).
    up.push(replies());
    let c = Client::builder()
        .timeout(IO_TIMEOUT)
        .max_idle_per_host(1)
        .build();
    let both = |c: &Client, urls: [String; 2]| {
        let handles: Vec<_> = urls
            .into_iter()
            .map(|u| {
                let c = c.clone();
                std::thread::spawn(move || c.get(&u).send().unwrap().text().unwrap())
            })
            .collect();
        handles.into_iter().for_each(|h| drop(h.join().unwrap()));
    };
    both(&c, [up.url("/x"), up.url("/y")]);
    assert_eq!(c.idle_connections(), 1);
    // max_idle_total 1 across two upstream names (two pool keys, one server).
    up.push(replies());
    let c = Client::builder()
        .timeout(IO_TIMEOUT)
        .max_idle_total(1)
        .build();
    let other = format!("http://localhost:{}/y", up.addr.port());
    both(&c, [up.url("/x"), other]);
    assert_eq!(c.idle_connections(), 1);
    // idle_timeout: an expired connection is closed, and the next call opens another.
    let c = Client::builder()
        .timeout(IO_TIMEOUT)
        .idle_timeout(Duration::from_millis(100))
        .build();
    let before = up.requests().len();
    c.get(&up.url("/1")).send().unwrap().bytes().unwrap();
    std::thread::sleep(Duration::from_millis(250));
    c.get(&up.url("/2")).send().unwrap().bytes().unwrap();
    let seen = up.requests();
    assert_ne!(
        seen[before].conn,
        seen[before + 1].conn,
        "expired: not reused"
    );
    // max_idle_per_host 0: nothing is pooled.
    let c = Client::builder()
        .timeout(IO_TIMEOUT)
        .max_idle_per_host(0)
        .build();
    c.get(&up.url("/3")).send().unwrap().bytes().unwrap();
    assert_eq!(c.idle_connections(), 0);
}
