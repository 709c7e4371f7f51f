//! The loop's memory budget (`max_buffered_bytes`): many clients that stall in the middle
//! of large uploads hold about the budget, not their bodies' worth; requests that would
//! need more are refused with 503 + Retry-After, accepted ones wait, and a fresh GET is
//! still answered at once.
mod support;
use support::*;

use h1server::{Config, Request, Response};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn four_hundred_stalled_uploads_hold_the_budget_not_their_bodies() {
    const BODY: usize = 1024 * 1024;
    const CLIENTS: usize = 400;
    let (child, addr) = spawn_hello(&[
        ("H1_MAX_BUFFERED_BYTES", "16MiB"),
        ("H1_READ_TIMEOUT", "60s"),
        ("H1_HEADER_READ_TIMEOUT", "60s"),
    ]);
    let pid = child.0.id();
    let before = rss_kib(pid);
    let head = format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY}\r\n\r\n");
    let body = vec![b'u'; BODY - 1]; // one byte short: every upload stalls, unfinished
    let mut clients: Vec<(TcpStream, usize)> = (0..CLIENTS)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(head.as_bytes()).unwrap();
            s.set_nonblocking(true).unwrap();
            let sent = write_some(&mut s, &body);
            (s, sent)
        })
        .collect();
    // Keep pushing what the sockets did not take, for a bounded time.
    for _ in 0..50 {
        let mut all = true;
        for (s, sent) in clients.iter_mut() {
            if *sent < body.len() {
                *sent += write_some(s, &body[*sent..]);
                all &= *sent == body.len();
            }
        }
        if all {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500)); // the loop has read what it will read
    let held = rss_kib(pid).saturating_sub(before);
    // Without the budget each stalled upload holds its 1 MiB buffer: ~400 MiB. With it,
    // the 16 MiB budget plus the base buffers and pools.
    assert!(
        held < 64 * 1024,
        "the server holds {held} KiB more after {CLIENTS} stalled 1 MiB uploads (budget 16 MiB)"
    );

    // A fresh GET is answered at once.
    let resp = roundtrip(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 200);

    // Uploads past the budget were refused with 503 + Retry-After (and closed); the others
    // were accepted and are still waiting for their last byte.
    let (mut refused, mut waiting) = (0, 0);
    for (s, _) in clients.iter_mut() {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut got = Vec::new();
        let mut tmp = [0u8; 1024];
        loop {
            match s.read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&tmp[..n]),
                Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&got);
        if got.is_empty() {
            waiting += 1;
        } else {
            assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
            assert!(text.contains("Retry-After: 1\r\n"), "{text}");
            refused += 1;
        }
    }
    assert!(refused > 0, "no upload was refused: the budget did nothing");
    assert!(
        waiting > 0,
        "every upload was refused: the budget admitted none"
    );
}

#[test]
fn a_body_admitted_once_sized_is_read_on_without_a_new_edge() {
    let cfg = Config {
        max_buffered_bytes: 20 * 1024,
        read_timeout: Duration::from_secs(2),
        ..test_config()
    };
    let server = TestServer::with_config(cfg, |req: &mut Request| {
        Response::text(format!("{} bytes\n", req.body().len()))
    });
    // Another client holds a read buffer (a head on its way).
    let mut other = server.connect();
    other.write_all(b"G").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // One write: head and an 18000-byte body (fits the budget left once sized).
    let mut msg = b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 18000\r\n\r\n".to_vec();
    msg.resize(msg.len() + 18000, b'b');
    let mut r = Reader::new(server.connect());
    let t0 = Instant::now();
    r.send(&msg);
    let resp = r.read_response();
    assert_eq!(
        (resp.status, resp.text()),
        (200, "18000 bytes\n".to_string()),
        "after {:?}",
        t0.elapsed()
    );
    drop(other);
}
