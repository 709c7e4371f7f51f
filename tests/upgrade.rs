//! Protocol upgrades: a handler answers `101` with an upgrade callback; once the answer is
//! written the connection — socket and bytes already read — belongs to the callback. Here
//! the new protocol is a byte echo, spoken over a raw socket.
mod support;
use support::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use h1server::{Request, Response, Upgraded};

fn app(req: &mut Request) -> Response {
    if req.header("upgrade") == Some("echo") {
        Response::new(101)
            .with_header("Upgrade", "echo")
            .upgrade(echo_upgrade)
    } else {
        Response::text("plain http\n")
    }
}

/// Reads exactly `n` bytes.
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    s.read_exact(&mut got).expect("read");
    got
}

const UPGRADE: &[u8] =
    b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";

#[test]
fn upgraded_connection_belongs_to_the_callback_with_the_bytes_that_came_with_the_head() {
    let server = TestServer::start(app);
    let mut s = server.connect();
    // The first bytes of the new protocol travel in the same write as the request head.
    let mut first = UPGRADE.to_vec();
    first.extend_from_slice(b"hello\n");
    s.write_all(&first).unwrap();
    let head = upgrade_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("\r\nUpgrade: echo\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: Upgrade\r\n"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    assert_eq!(read_n(&mut s, 6), b"hello\n");
    s.write_all(b"world\n").unwrap();
    assert_eq!(read_n(&mut s, 6), b"world\n");
    // No longer HTTP: a request is just bytes to echo now.
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(req).unwrap();
    assert_eq!(read_n(&mut s, req.len()), req);
    // The server goes on serving HTTP on other connections.
    let resp = roundtrip(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.text(), "plain http\n");
}

#[test]
fn requests_pipelined_behind_an_upgrade_are_the_new_protocols_bytes() {
    let server = TestServer::start(app);
    let mut s = server.connect();
    let mut reqs = b"GET /before HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    reqs.extend_from_slice(UPGRADE);
    let behind = b"GET /behind HTTP/1.1\r\nHost: x\r\n\r\n";
    reqs.extend_from_slice(behind);
    s.write_all(&reqs).unwrap();
    let mut r = Reader::new(s.try_clone().unwrap());
    assert_eq!(r.read_response().text(), "plain http\n");
    let mut rest = r.leftover().to_vec();
    // The 101 head, then the request behind it echoed verbatim (not answered).
    while !rest.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut b = [0u8; 512];
        let n = s.read(&mut b).unwrap();
        assert!(n > 0, "closed before the 101");
        rest.extend_from_slice(&b[..n]);
    }
    let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        rest.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    let mut echoed = rest[end..].to_vec();
    if echoed.len() < behind.len() {
        echoed.extend(read_n(&mut s, behind.len() - echoed.len()));
    }
    assert_eq!(echoed, behind);
}

const LINES_UPGRADE: &[u8] =
    b"GET /lines HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: lines\r\n\r\n";

/// The read-ahead a callback gets when `after` follows the upgrade request in one write.
fn read_ahead_of(after: &[u8]) -> Vec<u8> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let tx = std::sync::Mutex::new(tx);
    let server = TestServer::start(move |_req: &mut Request| {
        let tx = tx.lock().unwrap().clone();
        Response::new(101)
            .with_header("Upgrade", "lines")
            .upgrade(move |up: Upgraded| {
                let _ = tx.send(up.read_ahead.clone());
            })
    });
    let mut s = server.connect();
    let mut first = LINES_UPGRADE.to_vec();
    first.extend_from_slice(after);
    s.write_all(&first).unwrap();
    let mut b = [0u8; 512];
    let _ = s.read(&mut b);
    rx.recv_timeout(Duration::from_secs(5))
        .expect("callback ran")
}

#[test]
fn read_ahead_keeps_a_leading_crlf() {
    assert_eq!(read_ahead_of(b"\r\nhello"), b"\r\nhello");
}

#[test]
fn read_ahead_keeps_a_lone_newline() {
    assert_eq!(read_ahead_of(b"\n"), b"\n");
}
