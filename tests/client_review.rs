//! The client against hostile and broken servers: each test here failed before the fix
//! named in its comment. The servers are raw TCP on 127.0.0.1, one thread per
//! connection, scripted byte by byte; every wait is bounded.
#![cfg(feature = "client")]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use h1server::client::{Client, ClientError, RetryPolicy};

/// A raw server: each accepted connection (numbered from 0) runs `script` on its thread.
/// Accepts until the test ends (the listener thread is detached; the process ends it).
fn raw_server<F>(script: F) -> SocketAddr
where
    F: Fn(usize, TcpStream) + Send + Sync + 'static,
{
    let _ = env_logger::builder().is_test(true).try_init();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(script);
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate().take(64) {
            let Ok(stream) = stream else { continue };
            let script = Arc::clone(&script);
            std::thread::spawn(move || script(i, stream));
        }
    });
    addr
}

/// Reads one request head (through its empty line), at most 10 s; returns it as text.
fn read_head(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(10)).build()
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// A hostile `Retry-After` with a client configured without a cap on it
/// (`max_retry_after(Duration::MAX)`) and a deadline: the wait is compared with the
/// deadline by adding it to `Instant::now()`, which overflowed and panicked.
#[test]
fn an_enormous_retry_after_does_not_panic() {
    let addr = raw_server(|_, mut s| {
        read_head(&mut s);
        let _ = s.write_all(
            b"HTTP/1.1 503 Busy\r\nRetry-After: 18446744073709551615\r\nContent-Length: 0\r\n\r\n",
        );
        std::thread::sleep(Duration::from_millis(500));
    });
    let c = Client::builder()
        .timeout(Duration::from_secs(5))
        .retry(RetryPolicy::exponential(3).max_retry_after(Duration::MAX))
        .build();
    let resp = c.get(&url(addr, "/busy")).send().unwrap();
    assert_eq!(
        resp.status(),
        503,
        "no retry: the wait would pass the deadline"
    );
}
/// A body far larger than the loopback socket buffers (so the write blocks).
const BIG_BODY: usize = 32 << 20;

/// RFC 9112 §9.6 / RFC 9110 §15.5.14: a server that refuses a body answers before
/// reading it. The client must stop sending and return that answer — not block in the
/// write until `write_timeout` and report a timeout instead of the server's 413.
#[test]
fn an_early_413_from_a_server_that_stops_reading_is_returned_at_once() {
    let addr = raw_server(|_, mut s| {
        read_head(&mut s);
        let _ = s.write_all(
            b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big\n",
        );
        // Keeps the connection open without reading another byte.
        std::thread::sleep(Duration::from_secs(8));
    });
    let c = Client::builder()
        .write_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build();
    let t0 = Instant::now();
    let resp = c
        .post(&url(addr, "/upload"))
        .body(vec![b'x'; BIG_BODY])
        .send()
        .expect("the server's early answer, not a write failure");
    assert_eq!(resp.status(), 413);
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(resp.text().unwrap(), "too big\n");
    assert_eq!(
        c.idle_connections(),
        0,
        "a half-sent request's connection is never pooled"
    );
}

/// The same answer from a server that closes right after it (its unread input makes the
/// close a reset): the client's write fails, and the answer already received is what the
/// call returns — not `ConnectionClosed`.
#[test]
fn an_early_413_followed_by_a_close_is_returned_not_a_write_error() {
    let addr = raw_server(|_, mut s| {
        read_head(&mut s);
        let _ = s.write_all(
            b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big\n",
        );
        std::thread::sleep(Duration::from_millis(100));
        // Dropped with unread bytes: the kernel answers with RST.
    });
    let resp = client()
        .post(&url(addr, "/upload"))
        .body(vec![b'x'; BIG_BODY])
        .send()
        .expect("the server's early answer, not a write failure");
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.text().unwrap(), "too big\n");
}

/// A 1xx storm: a server that sends interim responses (103 Early Hints) forever, each
/// one small. Every interim head was checked against `max_response_head_bytes` on its
/// own, so the client parsed them until the response-header deadline (30 s by default),
/// at full speed. Together they are the response's head: past the limit, the call fails.
#[test]
fn an_endless_stream_of_interim_responses_is_bounded_by_the_head_limit() {
    let addr = raw_server(|_, mut s| {
        read_head(&mut s);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(12) {
            if s.write_all(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
                .is_err()
            {
                return;
            }
        }
    });
    let t0 = Instant::now();
    let err = client()
        .get(&url(addr, "/storm"))
        .send()
        .expect_err("no final response ever came");
    assert!(
        matches!(err, ClientError::HeadTooLarge { limit: 65536 }),
        "{err:?} after {:?}",
        t0.elapsed()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    // The same for the 100s a client that sent no Expect skips silently.
    let addr = raw_server(|_, mut s| {
        read_head(&mut s);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(12) {
            if s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
                return;
            }
        }
    });
    let t0 = Instant::now();
    let err = client().get(&url(addr, "/storm")).send().unwrap_err();
    assert!(
        matches!(err, ClientError::HeadTooLarge { .. }),
        "{err:?} after {:?}",
        t0.elapsed()
    );
}
