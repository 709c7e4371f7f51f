//! The client against an upstream the test controls (`support/upstream.rs`): retries
//! (which requests, on what, how long, never past the deadline), the circuit breaker,
//! connections the server closes, every timeout, framing errors and limits.
#![cfg(feature = "client")]
mod support;
use support::*;
#[path = "support/upstream.rs"]
mod upstream;
use upstream::{Reply, Upstream, ok, status};

use std::net::TcpListener;
use std::time::{Duration, Instant};

use h1server::client::{
    BreakerPolicy, BreakerState, Client, ClientError, RetryPolicy, TimeoutKind,
};

fn fast_retries(n: u32) -> RetryPolicy {
    RetryPolicy::exponential(n)
        .base_delay(Duration::from_millis(10))
        .max_delay(Duration::from_millis(40))
}

fn client() -> Client {
    Client::builder().timeout(IO_TIMEOUT).build()
}

fn statuses(up: &Upstream) -> usize {
    up.requests().len()
}

#[test]
fn idempotent_requests_are_retried_on_5xx_and_429() {
    let up = Upstream::start(vec![
        Reply::Raw(status(503, "")),
        Reply::Raw(status(429, "")),
        Reply::Raw(ok("third time")),
    ]);
    let c = Client::builder()
        .timeout(IO_TIMEOUT)
        .retry(fast_retries(3))
        .build();
    let resp = c.get(&up.url("/r")).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "third time");
    assert_eq!(statuses(&up), 3);
    // Out of attempts: the last answer is returned as it is.
    up.push(vec![
        Reply::Raw(status(502, "")),
        Reply::Raw(status(500, "")),
    ]);
    let resp = c
        .delete(&up.url("/r"))
        .retry(fast_retries(2))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(statuses(&up), 5);
    // Other statuses are answers, not failures.
    up.push(vec![Reply::Raw(status(404, ""))]);
    assert_eq!(c.get(&up.url("/r")).send().unwrap().status(), 404);
    assert_eq!(statuses(&up), 6);
}

#[test]
fn a_post_is_retried_only_with_an_idempotency_key() {
    let up = Upstream::start(vec![Reply::Raw(status(503, ""))]);
    let c = Client::builder()
        .timeout(IO_TIMEOUT)
        .retry(fast_retries(3))
        .build();
    let resp = c.post(&up.url("/users")).body("{}").send().unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(statuses(&up), 1, "a POST without a key is never repeated");
    up.push(vec![Reply::Raw(status(503, ""))]);
    let resp = c
        .post(&up.url("/users"))
        .header("Idempotency-Key", "k-1")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1].body, b"{}");
    assert_eq!(seen[2].body, b"{}", "the body is sent again");
    assert_eq!(seen[2].header("idempotency-key").as_deref(), Some("k-1"));
}

#[test]
fn retry_after_is_honoured_and_a_long_one_ends_the_retries() {
    let up = Upstream::start(vec![Reply::Raw(status(429, "Retry-After: 1\r\n"))]);
    let c = Client::builder()
        .timeout(IO_TIMEOUT)
        .retry(fast_retries(3))
        .build();
    let t0 = Instant::now();
    assert_eq!(c.get(&up.url("/")).send().unwrap().status(), 200);
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );
    up.push(vec![Reply::Raw(status(503, "Retry-After: 120\r\n"))]);
    let t0 = Instant::now();
    assert_eq!(c.get(&up.url("/")).send().unwrap().status(), 503);
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(statuses(&up), 3);
}

#[test]
fn connect_errors_are_retried_and_the_deadline_is_never_exceeded() {
    let port = free_port(); // nothing listens there
    let c = Client::builder()
        .retry(RetryPolicy::exponential(50).base_delay(Duration::from_millis(40)))
        .build();
    let t0 = Instant::now();
    let err = c
        .get(&format!("http://127.0.0.1:{port}/"))
        .timeout(Duration::from_millis(400))
        .send()
        .unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(took <= Duration::from_millis(400 + 300), "{took:?}");
    // A 5xx with a backoff longer than the deadline: returned, not waited for.
    let up = Upstream::start((0..20).map(|_| Reply::Raw(status(503, ""))).collect());
    let slow = RetryPolicy::exponential(20)
        .base_delay(Duration::from_secs(2))
        .max_delay(Duration::from_secs(2));
    let t0 = Instant::now();
    let resp = c
        .get(&up.url("/"))
        .retry(slow)
        .timeout(Duration::from_millis(300))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(
        t0.elapsed() <= Duration::from_millis(300 + 300),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn a_pooled_connection_the_server_closed_is_not_reused() {
    let up = Upstream::start(vec![Reply::RawThenClose(ok("one"))]);
    let c = client();
    assert_eq!(c.get(&up.url("/1")).send().unwrap().text().unwrap(), "one");
    assert_eq!(c.idle_connections(), 1, "it said nothing about closing");
    std::thread::sleep(Duration::from_millis(50));
    // Even a POST (never repeated) goes through: the stale check runs before sending.
    let resp = c.post(&up.url("/2")).body("x").send().unwrap();
    assert_eq!(resp.text().unwrap(), "ok");
    let seen = up.requests();
    assert_eq!((seen[0].conn, seen[1].conn), (0, 1));
}

#[test]
fn a_pooled_connection_lost_before_the_answer_is_retried_once_if_safe() {
    let up = Upstream::start(vec![Reply::Raw(ok("one")), Reply::Close]);
    let c = client();
    c.get(&up.url("/1")).send().unwrap().bytes().unwrap();
    // The server reads the second request on the pooled connection, then closes it.
    assert_eq!(c.get(&up.url("/2")).send().unwrap().text().unwrap(), "ok");
    let conns: Vec<usize> = up.requests().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 0, 1], "retried on a fresh connection");
    // A POST without a key is not repeated: the caller learns it was lost.
    up.push(vec![Reply::Close]);
    let err = c.post(&up.url("/3")).body("x").send().unwrap_err();
    assert!(matches!(err, ClientError::ConnectionClosed), "{err}");
    assert_eq!(up.requests().len(), 4);
    // A fresh connection closed before answering is not retried either.
    up.push(vec![Reply::Close]);
    let err = client().get(&up.url("/4")).send().unwrap_err();
    assert!(matches!(err, ClientError::ConnectionClosed), "{err}");
}

#[test]
fn the_breaker_opens_fails_fast_and_closes_after_a_good_probe() {
    let up = Upstream::start(vec![
        Reply::Raw(status(503, "")),
        Reply::Raw(status(500, "")),
        // The probe's body comes slowly (a stream, a download).
        Reply::Dribble(
            "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n".into(),
            "slow".into(),
            200,
        ),
    ]);
    let c = Client::builder()
        .timeout(IO_TIMEOUT)
        .breaker(BreakerPolicy::new(2, Duration::from_millis(400)))
        .build();
    let url = up.url("/");
    assert_eq!(c.get(&url).send().unwrap().status(), 503);
    assert_eq!(c.get(&url).send().unwrap().status(), 500);
    let b = c.breaker(&up.upstream()).expect("made on first use");
    assert!(matches!(b.state(), BreakerState::Open { .. }));
    let t0 = Instant::now();
    let err = c.get(&url).send().unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "fails fast, waits for no timeout"
    );
    match &err {
        ClientError::BreakerOpen { upstream, retry_in } => {
            assert_eq!(upstream, &up.upstream());
            assert!(*retry_in <= Duration::from_millis(400));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("circuit breaker open"), "{err}");
    assert_eq!(statuses(&up), 2, "nothing was sent while open");
    std::thread::sleep(Duration::from_millis(450));
    let probe = c.get(&url).send().unwrap();
    assert_eq!(probe.status(), 200, "the probe");
    // The probe counts at its head: its body, still arriving, keeps no other call waiting.
    assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
    drop(probe);
    // Connect failures count too, and retries stop at an open breaker.
    let dead = format!("http://127.0.0.1:{}/", free_port());
    let c = Client::builder()
        .breaker(BreakerPolicy::new(2, Duration::from_secs(30)))
        .retry(fast_retries(5))
        .build();
    let err = c.get(&dead).send().unwrap_err();
    assert!(matches!(err, ClientError::BreakerOpen { .. }), "{err}");
}

#[test]
fn each_timeout_is_named() {
    // connect_timeout: a listener whose backlog is full drops the SYN.
    let full = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) on a socket this test owns, to shrink its backlog to 0.
    unsafe {
        use std::os::fd::AsRawFd;
        assert_eq!(libc::listen(full.as_raw_fd(), 0), 0);
    }
    let addr = full.local_addr().unwrap();
    let _queued: Vec<_> = (0..3)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok()
        })
        .collect();
    let c = Client::builder()
        .connect_timeout(Duration::from_millis(200))
        .response_header_timeout(Duration::from_millis(200))
        .read_timeout(Duration::from_millis(200))
        .write_timeout(Duration::from_millis(200))
        .timeout(IO_TIMEOUT)
        .build();
    let t0 = Instant::now();
    let err = c.get(&format!("http://{addr}/")).send().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                which: TimeoutKind::Connect
            }
        ),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2));

    // response_header_timeout: the request is read, never answered.
    let up = Upstream::start(vec![Reply::Hang]);
    let err = c.get(&up.url("/")).send().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                which: TimeoutKind::ResponseHeader
            }
        ),
        "{err}"
    );
    assert_eq!(err.to_string(), "timed out: response_header_timeout");

    // read_timeout: the head and 3 bytes of 10, then nothing.
    up.push(vec![Reply::Dribble(
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".into(),
        String::new(),
        0,
    )]);
    let resp = c.get(&up.url("/")).send().unwrap();
    let err = resp.text().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                which: TimeoutKind::Read
            }
        ),
        "{err}"
    );

    // The total timeout: a body that keeps coming, a byte every 50 ms, never too slow
    // for read_timeout, ends at the call's deadline.
    let body = "x".repeat(100);
    up.push(vec![Reply::Dribble(
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".into(),
        body,
        50,
    )]);
    let t0 = Instant::now();
    let resp = c
        .get(&up.url("/"))
        .timeout(Duration::from_millis(600))
        .send()
        .unwrap();
    let err = resp.text().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                which: TimeoutKind::Total
            }
        ),
        "{err}"
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(550) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(c.idle_connections(), 0, "a cut body closes its connection");

    // write_timeout: a peer that never reads a 32 MiB body.
    let deaf = TcpListener::bind("127.0.0.1:0").unwrap();
    let err = c
        .put(&format!("http://{}/", deaf.local_addr().unwrap()))
        .body(vec![b'u'; 32 << 20])
        .send()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                which: TimeoutKind::Write
            }
        ),
        "{err}"
    );
}

#[test]
fn framing_errors_and_limits_close_the_connection() {
    let huge_head = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "h".repeat(70 * 1024)
    );
    let up = Upstream::start(vec![
        Reply::Raw(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .into(),
        ),
        Reply::Raw("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".into()),
        Reply::Raw(huge_head),
        Reply::Raw(ok(&"b".repeat(100))),
        Reply::Raw(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n".to_string()
                + &"c".repeat(64)
                + "\r\n40\r\n"
                + &"c".repeat(64)
                + "\r\n0\r\n\r\n",
        ),
        Reply::RawThenClose("HTTP/1.1 200 OK\r\n\r\nuntil close".into()),
        Reply::RawThenClose("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel".into()),
    ]);
    let c = Client::builder()
        .timeout(IO_TIMEOUT)
        .max_response_body_bytes(80)
        .build();
    let err = c.get(&up.url("/")).send().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid response: both Transfer-Encoding and Content-Length"
    );
    let err = c.get(&up.url("/")).send().unwrap_err();
    assert_eq!(err.to_string(), "invalid response: invalid Content-Length");
    let err = c.get(&up.url("/")).send().unwrap_err();
    assert!(
        matches!(err, ClientError::HeadTooLarge { limit: 65536 }),
        "{err}"
    );
    let err = c.get(&up.url("/")).send().unwrap_err();
    assert!(
        matches!(err, ClientError::BodyTooLarge { limit: 80 }),
        "announced: {err}"
    );
    let resp = c.get(&up.url("/")).send().unwrap();
    let err = resp.bytes().unwrap_err();
    assert!(
        matches!(err, ClientError::BodyTooLarge { limit: 80 }),
        "chunked: {err}"
    );
    let resp = c.get(&up.url("/")).send().unwrap();
    assert_eq!(resp.text().unwrap(), "until close", "close-delimited");
    let resp = c.get(&up.url("/")).send().unwrap();
    let err = resp.text().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid response: the connection closed before the last chunk"
    );
    assert_eq!(c.idle_connections(), 0);
    // Every error above closed its connection: each request came on a new one.
    let conns: Vec<usize> = up.requests().iter().map(|s| s.conn).collect();
    assert_eq!(conns, (0..7).collect::<Vec<_>>());
}

#[test]
fn bad_urls_and_headers_are_refused_before_connecting() {
    let up = Upstream::start(vec![]);
    let c = client();
    let err = c.get("https://example.com/").send().unwrap_err();
    assert_eq!(
        err.to_string(),
        "https: TLS not supported (feature tls, issue #8)"
    );
    assert!(matches!(
        c.get("http://exa mple/").send(),
        Err(ClientError::InvalidUrl(_))
    ));
    let err = c
        .get(&up.url("/"))
        .header("X-Evil", "a\r\nInjected: 1")
        .send()
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidRequest(_)), "{err}");
    let err = c.request("GE T", &up.url("/")).send().unwrap_err();
    assert!(matches!(err, ClientError::InvalidRequest(_)), "{err}");
    assert!(up.requests().is_empty(), "nothing reached the upstream");
    // Host may be set; the framing headers are the client's.
    c.post(&up.url("/"))
        .header("Host", "api.internal")
        .header("Content-Length", "999")
        .body("abc")
        .send()
        .unwrap();
    let s = &up.requests()[0];
    assert_eq!(s.header("host").as_deref(), Some("api.internal"));
    assert_eq!(s.header("content-length").as_deref(), Some("3"));
    assert_eq!(s.body, b"abc");
    assert!(s.header("user-agent").unwrap().starts_with("h1server/"));
}
