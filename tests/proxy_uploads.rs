//! Streamed request bodies through the proxy are the event loop's state, not a worker's
//! (the project's principle; issue #7 points 5 and 6): the loop relays a body over
//! `max_body_bytes` from the client's socket to the upstream's a window at a time. So
//! with 2 workers, 40 uploaders that stall mid-body hold no worker and the proxy answers
//! a plain request meanwhile; a client that stops sending gets `408` and the upstream's
//! connection is closed; an upstream that stops reading ends the upload with `502` at the
//! write timeout; an upstream silent after `Expect: 100-continue` gets the body after the
//! continue timeout; and the connection carries the next request after an upload.
//! Only 127.0.0.1.
#![cfg(feature = "proxy")]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use h1server::Config;
use support::*;

/// What the upstream saw of one request.
#[derive(Debug)]
struct Seen {
    head: String,
    /// Body bytes read (all of them unless the connection ended first).
    body: u64,
    /// Sum of the body bytes, to check they arrived intact and in order.
    sum: u64,
    /// The proxy closed the connection before the whole body came.
    cut: bool,
}

/// An upstream that reads each request head and its `Content-Length` body, answers
/// `200` with the byte count and a checksum, and reports what it saw. With `read_body`
/// false it reads the head and then nothing more (an upstream that stops reading).
fn upstream(read_body: bool) -> (SocketAddr, mpsc::Receiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let tx = tx.clone();
            std::thread::spawn(move || serve_upstream(s, read_body, tx));
        }
    });
    (addr, rx)
}

fn serve_upstream(mut s: TcpStream, read_body: bool, tx: mpsc::Sender<Seen>) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    let mut b = vec![0u8; 64 * 1024];
    loop {
        let Some((head, len)) = read_request_head(&mut s, &mut buf) else {
            return;
        };
        if !read_body {
            let _ = tx.send(Seen {
                head,
                body: 0,
                sum: 0,
                cut: false,
            });
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        // (This upstream never says `100`: after `Expect: 100-continue` the body must
        // come anyway.)
        let (mut got, mut sum) = (0u64, 0u64);
        let take = |bytes: &[u8], got: &mut u64, sum: &mut u64| {
            for &c in bytes {
                *sum = sum.wrapping_add(u64::from(c));
            }
            *got += bytes.len() as u64;
        };
        let first = buf.len().min(len as usize);
        take(&buf[..first], &mut got, &mut sum);
        buf.drain(..first);
        let mut cut = false;
        while got < len {
            let want = ((len - got) as usize).min(b.len());
            match s.read(&mut b[..want]) {
                Ok(0) | Err(_) => {
                    cut = true;
                    break;
                }
                Ok(n) => take(&b[..n], &mut got, &mut sum),
            }
        }
        let _ = tx.send(Seen {
            head,
            body: got,
            sum,
            cut,
        });
        if cut {
            return;
        }
        let answer = format!("got {got} sum {sum}\n");
        let _ = s.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            )
            .as_bytes(),
        );
    }
}

/// The body byte at offset `i`.
fn byte(i: u64) -> u8 {
    (i % 251) as u8
}

fn body_sum(len: u64) -> u64 {
    (0..len).map(|i| u64::from(byte(i))).sum()
}

fn body(from: u64, to: u64) -> Vec<u8> {
    (from..to).map(byte).collect()
}

#[test]
fn stalled_uploads_hold_no_worker() {
    const N: usize = 40;
    const LEN: u64 = 200_000;
    let (up, seen) = upstream(true);
    let gw = upload_gateway(upload_config(), &[up], |b| b);
    // Every uploader sends its head and the first 10 000 bytes, then stalls.
    let mut conns: Vec<TcpStream> = (0..N)
        .map(|_| {
            let mut s = connect(gw.addr);
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s.write_all(
                format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {LEN}\r\n\r\n").as_bytes(),
            )
            .unwrap();
            s.write_all(&body(0, 10_000)).unwrap();
            s
        })
        .collect();
    // The proxy relays what came: each upstream connection has its head.
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || {
            gw.handle().telemetry().snapshot().busy_workers == 0
        }),
        "workers stayed busy"
    );
    std::thread::sleep(Duration::from_millis(300));
    let busy = gw.handle().telemetry().snapshot().busy_workers;
    assert_eq!(busy, 0, "a worker is held by a stalled upload");
    let r = roundtrip(gw.addr, b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.text().as_str()), (200, "plain\n"));
    eprintln!(
        "{N} stalled uploads, 2 workers: 0 busy, a plain request answered {:?} after",
        t0.elapsed()
    );
    // The rest of each body, and every upload completes intact.
    for s in &mut conns {
        s.write_all(&body(10_000, LEN)).unwrap();
    }
    let want = format!("got {LEN} sum {}\n", body_sum(LEN));
    for s in conns {
        let mut r = Reader::new(s);
        let resp = r.read_response();
        assert_eq!((resp.status, resp.text()), (200, want.clone()));
    }
    for _ in 0..N {
        let s = seen.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(
            (s.body, s.sum, s.cut),
            (LEN, body_sum(LEN), false),
            "{}",
            s.head
        );
    }
}

#[test]
fn an_upload_and_the_next_request_share_the_connection() {
    let (up, _seen) = upstream(true);
    let gw = upload_gateway(upload_config(), &[up], |b| b);
    let mut r = Reader::new(connect(gw.addr));
    const LEN: u64 = 100_000;
    let mut req =
        format!("PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: {LEN}\r\n\r\n").into_bytes();
    req.extend_from_slice(&body(0, LEN));
    // Pipelined behind the body: answered after the upload's answer, on the same
    // connection.
    req.extend_from_slice(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
    r.send(&req);
    let resp = r.read_response();
    assert_eq!(
        (resp.status, resp.text()),
        (200, format!("got {LEN} sum {}\n", body_sum(LEN)))
    );
    let resp = r.read_response();
    assert_eq!((resp.status, resp.text().as_str()), (200, "plain\n"));
}

#[test]
fn a_client_that_stops_sending_its_body_gets_408_and_the_upstream_connection_closes() {
    let (up, seen) = upstream(true);
    let cfg = Config {
        read_timeout: Duration::from_millis(400),
        ..upload_config()
    };
    let gw = upload_gateway(cfg, &[up], |b| b);
    let mut s = connect(gw.addr);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n")
        .unwrap();
    s.write_all(&body(0, 5_000)).unwrap();
    let t0 = Instant::now();
    let mut r = Reader::new(s);
    let resp = r.read_response();
    assert_eq!(resp.status, 408, "{}", resp.text());
    assert!(r.is_closed(), "the connection stays open after a 408");
    let s = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(s.cut, "the upstream's connection was not closed: {s:?}");
    assert_eq!(s.body, 5_000);
    eprintln!("stalled client answered 408 after {:?}", t0.elapsed());
}

#[test]
fn an_upstream_that_stops_reading_the_body_ends_the_upload_with_502() {
    let (up, seen) = upstream(false);
    let gw = upload_gateway(upload_config(), &[up], |b| {
        b.write_timeout(Duration::from_millis(500))
    });
    let s = connect(gw.addr);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    const LEN: u64 = 32 << 20;
    let mut w = s.try_clone().unwrap();
    // The body is far more than the socket buffers hold: the upstream stops it.
    let writer = std::thread::spawn(move || -> u64 {
        let _ = w.write_all(
            format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {LEN}\r\n\r\n").as_bytes(),
        );
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0u64;
        while sent < LEN {
            if w.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        sent
    });
    let head = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(head.head.starts_with("POST /up HTTP/1.1"), "{}", head.head);
    // Meanwhile no worker is held.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(gw.handle().telemetry().snapshot().busy_workers, 0);
    let mut r = Reader::new(s);
    let resp = r.read_response();
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert_eq!(resp.header("connection"), Some("close"));
    // (What the client still sends is read and dropped by the lingering close, so the
    // writer finishes either way.)
    writer.join().unwrap();
}

#[test]
fn an_upstream_silent_after_expect_continue_gets_the_body_after_the_timeout() {
    let (up, seen) = upstream(true);
    let gw = upload_gateway(upload_config(), &[up], |b| {
        b.expect_continue_timeout(Duration::from_millis(300))
    });
    let mut s = connect(gw.addr);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    const LEN: u64 = 20_000;
    s.write_all(
        format!(
            "POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {LEN}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    // The client waits for its 100, which comes once the upstream's silence timed out.
    let mut r = Reader::new(s);
    let mut interim = [0u8; 25];
    r.stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    r.send(&body(0, LEN));
    let resp = r.read_response();
    assert_eq!(
        (resp.status, resp.text()),
        (200, format!("got {LEN} sum {}\n", body_sum(LEN)))
    );
    let s = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        s.head.to_ascii_lowercase().contains("expect: 100-continue"),
        "{}",
        s.head
    );
}
