//! Deadlines at the wire: header read (slowloris), body read, idle keep-alive and write.
//!
//! Every test uses millisecond deadlines and asserts the order of events with generous
//! slack (a loaded 2-core CI machine must pass): "not before about half the deadline" and
//! "well before the slack runs out" — never a speed.
mod support;
use support::*;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use h1server::{Config, Request, Response};

/// How late a deadline may fire on a loaded machine before we call it a hang. It stays
/// below `IO_TIMEOUT`, so a socket read times out only when the server really hangs.
const SLACK: Duration = Duration::from_secs(5);

/// A test config with every deadline long except the ones a test sets.
fn config() -> Config {
    let mut c = test_config();
    c.header_read_timeout = Duration::from_secs(30);
    c.read_timeout = Duration::from_secs(30);
    c.write_timeout = Duration::from_secs(30);
    c.idle_timeout = Duration::from_secs(30);
    c
}

fn hello(_req: &mut Request) -> Response {
    Response::text("hello\n")
}

/// Reads until the server closes the connection (EOF or reset) and returns how many bytes
/// arrived and when the close was seen. Panics when the socket stays open past its read
/// timeout. Bytes are counted, not kept, so memory stays bounded.
fn read_until_closed(s: &mut TcpStream) -> (usize, Instant) {
    let mut tmp = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match s.read(&mut tmp) {
            Ok(0) => return (total, Instant::now()),
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server did not close the connection ({total} bytes read): {e}")
            }
            Err(_) => return (total, Instant::now()), // reset: closed too
        }
    }
}

/// Asserts `elapsed` lies between half of `deadline` and `deadline + SLACK`.
fn assert_around(what: &str, elapsed: Duration, deadline: Duration) {
    assert!(
        elapsed >= deadline / 2,
        "{what} after {elapsed:?}: too early for a {deadline:?} deadline"
    );
    assert!(
        elapsed <= deadline + SLACK,
        "{what} after {elapsed:?}: a {deadline:?} deadline did not fire"
    );
}

/// Writes `bytes` one at a time every `every` on another thread, until done, a write
/// fails, or `stop` is set; returns how many bytes it wrote.
fn dribble(
    mut s: TcpStream,
    bytes: Vec<u8>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut sent = 0;
        for b in bytes {
            if stop.load(Ordering::Acquire) || s.write_all(&[b]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(every);
        }
        sent
    })
}

#[test]
fn silent_client_is_closed_at_the_header_deadline() {
    let mut cfg = config();
    cfg.header_read_timeout = Duration::from_millis(400);
    let server = TestServer::with_config(cfg.clone(), hello);
    let t0 = Instant::now();
    let mut s = server.connect();
    let (bytes, closed_at) = read_until_closed(&mut s);
    assert_eq!(bytes, 0, "nothing was asked, so nothing is answered");
    assert_around(
        "silent connection closed",
        closed_at - t0,
        cfg.header_read_timeout,
    );
}

#[test]
fn slowloris_gets_408_at_header_deadline() {
    let mut cfg = config();
    cfg.header_read_timeout = Duration::from_millis(400);
    let server = TestServer::with_config(cfg.clone(), hello);
    let mut s = server.connect();
    // A head that would take 20 s to complete at one byte per 50 ms: each byte comes well
    // within the deadline, so only a deadline counted from the first byte can fire.
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_vec();
    head.resize(400, b'a');
    s.write_all(&head[..1]).unwrap();
    let first_byte = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = dribble(
        s.try_clone().unwrap(),
        head[1..].to_vec(),
        Duration::from_millis(50),
        stop.clone(),
    );
    let mut r = Reader::new(s);
    let resp = r.read_response();
    let answered = first_byte.elapsed();
    stop.store(true, Ordering::Release);
    assert_eq!(resp.status, 408, "{resp:?}");
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    assert!(r.is_closed(), "the connection must close after the 408");
    let sent = writer.join().unwrap() + 1;
    assert!(sent < head.len(), "the head was never completed");
    assert!(
        sent >= 3,
        "the client kept dribbling ({sent} bytes) before the 408"
    );
    assert_around("408", answered, cfg.header_read_timeout);
}

#[test]
fn body_not_complete_within_read_timeout_gets_408_and_close() {
    let mut cfg = config();
    cfg.read_timeout = Duration::from_millis(400);
    let server = TestServer::with_config(cfg.clone(), hello);
    let mut s = server.connect();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        .unwrap();
    let head_sent = Instant::now();
    // The body keeps coming, one byte per 50 ms (it would take 50 s): progress does not
    // extend the body deadline.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = dribble(
        s.try_clone().unwrap(),
        vec![b'b'; 997],
        Duration::from_millis(50),
        stop.clone(),
    );
    let mut r = Reader::new(s);
    let resp = r.read_response();
    let answered = head_sent.elapsed();
    stop.store(true, Ordering::Release);
    assert_eq!(resp.status, 408, "{resp:?}");
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    assert!(r.is_closed(), "the connection must close after the 408");
    writer.join().unwrap();
    assert_around("408", answered, cfg.read_timeout);
}

#[test]
fn idle_keep_alive_connection_is_closed_silently_after_idle_timeout() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_millis(400);
    let server = TestServer::with_config(cfg.clone(), hello);
    let mut r = Reader::new(server.connect());
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = r.read_response();
    let answered = Instant::now();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), None, "kept alive: {resp:?}");
    assert!(r.leftover().is_empty());
    let (bytes, closed_at) = read_until_closed(&mut r.stream);
    assert_eq!(bytes, 0, "an idle close is silent (no 408)");
    assert_around(
        "idle connection closed",
        closed_at - answered,
        cfg.idle_timeout,
    );
}

#[test]
fn client_that_stops_reading_is_dropped_at_write_timeout() {
    const BODY: usize = 64 * 1024 * 1024;
    let mut cfg = config();
    cfg.write_timeout = Duration::from_millis(500);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = TestServer::with_config(cfg.clone(), move |_req: &mut Request| {
        c.fetch_add(1, Ordering::SeqCst);
        Response::new(200).with_body(vec![b'x'; BODY])
    });
    let mut s = server.connect();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(wait_until(IO_TIMEOUT, || calls.load(Ordering::SeqCst) == 1));
    // Read nothing for five write deadlines: the kernel buffers fill, the server's write
    // blocks, and its write deadline passes.
    std::thread::sleep(cfg.write_timeout * 5);
    let (received, _) = read_until_closed(&mut s);
    assert!(received > 0, "the response had started");
    assert!(
        received < BODY,
        "the whole body arrived ({received} bytes): the write deadline never closed the connection"
    );
}
