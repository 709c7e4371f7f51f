//! Adversarial review of streamed request bodies relayed by the event loop (the reverse
//! proxy's uploads, `conn/forward.rs`): each test here showed a defect over real sockets
//! on 127.0.0.1 and failed before its fix — a failed upload kept the connection and read
//! the rest of its body as requests (smuggling); an upstream connection left mid-body by
//! an early answer, or one that said `Connection: close` on a bodiless answer, went back
//! to the pool; an upload answered during the drain delay did not say
//! `Connection: close`. Bounded in time (every socket has a read timeout; each test takes
//! well under 10 s).
#![cfg(feature = "proxy")]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use h1server::Config;
use support::*;

fn gateway(
    upstreams: &[SocketAddr],
    tune: impl FnOnce(h1server::proxy::ProxyBuilder) -> h1server::proxy::ProxyBuilder,
) -> TestServer {
    upload_gateway(upload_config(), upstreams, tune)
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
fn refusing_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A request body of exactly `len` bytes that is itself a complete HTTP request
/// (`GET /plain`, padded with a header): if a server ever parses this body as a request,
/// it answers `200 plain`.
fn smuggling_body(len: usize) -> Vec<u8> {
    let start = b"GET /plain HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    let end = b"\r\n\r\n";
    assert!(len > start.len() + end.len());
    let mut b = start.to_vec();
    b.resize(len - end.len(), b'a');
    b.extend_from_slice(end);
    assert_eq!(b.len(), len);
    b
}

/// After `first` (an answer to a request whose body the server did not read in full),
/// the server must not answer anything else on the connection: it either closes or reads
/// and discards the rest of the declared body (RFC 9110 §10.1.1, RFC 9112 §6.3/§9.6).
/// Returns the second response if one came (the smuggled `GET /plain` was served).
/// Fails if the rest of the connection's bytes, `what`, were answered as a request.
fn assert_no_second_answer(r: &mut Reader, what: &str) {
    if let Some(second) = second_answer(r) {
        panic!(
            "{what} was parsed as a request and answered: {:?}",
            String::from_utf8_lossy(&second.body)
        );
    }
}

fn second_answer(r: &mut Reader) -> Option<Resp> {
    r.stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut probe = Vec::new();
    let mut tmp = [0u8; 4096];
    probe.extend_from_slice(r.leftover());
    loop {
        if probe.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        match r.stream.read(&mut tmp) {
            Ok(0) | Err(_) => return None,
            Ok(n) => probe.extend_from_slice(&tmp[..n]),
        }
    }
    let text = String::from_utf8_lossy(&probe).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Some(Resp {
        status,
        version: String::new(),
        headers: Vec::new(),
        body: probe,
        chunked: false,
    })
}

// ---------------------------------------------------------------------------------------
// Defect 1: an upload whose exchange fails before its body was relayed leaves the
// client's connection open, and the unread body is then parsed as the next requests.

/// Every upstream refuses: the client is answered 502 and its connection closes. (Before
/// the fix: with keep-alive, and the streamed body — already sent, as a client that does
/// not use `Expect` does — was then parsed as a request of its own: a `GET /plain`
/// smuggled inside the body was served.)
#[test]
fn a_refused_upload_closes_and_never_parses_its_body_as_a_request() {
    let gw = gateway(&[refusing_addr()], |b| b);
    let mut r = Reader::new(connect(gw.addr));
    let len = 4000;
    let mut req =
        format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    req.extend_from_slice(&smuggling_body(len));
    r.send(&req);
    let resp = r.read_response();
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert_no_second_answer(&mut r, "the unread request body");
    assert_eq!(
        resp.header("connection"),
        Some("close"),
        "a 502 for an upload whose body was not read must close the connection"
    );
}

/// The upstream reads the head and part of the body, then closes without an answer: 502
/// and the client's connection closes. (Before the fix: 502 with keep-alive, and the
/// rest of the body was parsed as requests.)
#[test]
fn an_upstream_closing_mid_body_closes_the_client_too() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        // The head and the first 3000 body bytes, then close (FIN, nothing left unread).
        let mut buf = Vec::new();
        let mut tmp = [0u8; 65536];
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                && buf.len() >= i + 4 + 3000
            {
                break;
            }
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        drop(s);
        let _ = tx.send(());
    });
    let gw = gateway(&[addr], |b| b);
    let mut r = Reader::new(connect(gw.addr));
    let len = 8000;
    r.send(format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").as_bytes());
    r.send(&vec![b'z'; 3000]);
    rx.recv_timeout(IO_TIMEOUT)
        .expect("the upstream read the first part");
    let resp = r.read_response();
    assert_eq!(resp.status, 502, "{}", resp.text());
    // The client goes on sending its body (most clients do not watch for an early
    // answer): the last 5000 bytes of it are a complete request.
    let _ = r.stream.write_all(&smuggling_body(len - 3000));
    assert_no_second_answer(&mut r, "the rest of the request body");
    assert_eq!(
        resp.header("connection"),
        Some("close"),
        "a 502 for an upload cut off midway must close the connection"
    );
}

/// The client sends `Expect: 100-continue` and, as RFC 9110 §10.1.1 allows ("MAY proceed
/// to send the content even if it has not yet received a response"), its body at once.
/// The upstream closes while the proxy waits for its `100`: 502, and the connection
/// closes. (Before the fix: 502 with keep-alive, and the body was parsed as a request.)
#[test]
fn an_upstream_closing_before_its_100_closes_the_client_too() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        if read_request_head(&mut s, &mut Vec::new()).is_none() {
            return;
        }
        // The head only (the proxy waits for 100 before any body byte): close.
        drop(s);
    });
    let gw = gateway(&[addr], |b| {
        b.expect_continue_timeout(Duration::from_secs(5))
    });
    let mut r = Reader::new(connect(gw.addr));
    let len = 4000;
    let mut req = format!(
        "POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {len}\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(&smuggling_body(len));
    r.send(&req);
    let resp = r.read_response();
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert_no_second_answer(&mut r, "the unread request body");
}

// ---------------------------------------------------------------------------------------
// Defect 2: an upstream connection whose request body was cut short (the upstream
// answered early) goes back to the idle pool; the next request sent on it lands inside
// the body the upstream still expects.

/// An upstream that, on its first connection, answers the head at once with a final
/// status (no `Connection: close`: RFC 9110 §10.1.1 lets it "continue reading and
/// discarding the request content"), then reads and discards the declared body before
/// the next request; every other request (and connection) gets `200 fresh`. Reports each
/// request line with its connection number.
fn early_answering_upstream(early: &'static str) -> (SocketAddr, mpsc::Receiver<(usize, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (conn, s) in l.incoming().enumerate() {
            let Ok(mut s) = s else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut buf = Vec::new();
                let mut tmp = [0u8; 65536];
                let mut first = true;
                loop {
                    let Some((head, head_len)) = read_request_head(&mut s, &mut buf) else {
                        return;
                    };
                    let _ = tx.send((conn, head.lines().next().unwrap_or("").to_string()));
                    let len = head_len as usize;
                    if conn == 0 && first {
                        first = false;
                        if s.write_all(early.as_bytes()).is_err() {
                            return;
                        }
                    }
                    // The body (read and discarded, after an early answer too).
                    let mut left = len;
                    let n = left.min(buf.len());
                    buf.drain(..n);
                    left -= n;
                    while left > 0 {
                        match s.read(&mut tmp[..left.min(65536)]) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => left -= n,
                        }
                    }
                    if !(conn == 0 && len > 0 && head.contains("100-continue")) {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfresh\n");
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// `Expect: 100-continue` and the upstream refuses the body at once (417, keep-alive):
/// the client gets the 417 and its connection closes, and the upstream's connection —
/// whose request still owes 50 000 body bytes — is not reused. (Before the fix it was kept
/// idle and the next request was written on it: the upstream took it for body bytes and
/// never answered, 504.)
#[test]
fn an_upstream_connection_left_mid_body_by_an_early_answer_is_not_reused() {
    let (addr, seen) = early_answering_upstream(
        "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 5\r\n\r\nnope\n",
    );
    let gw = gateway(&[addr], |b| {
        b.response_header_timeout(Duration::from_secs(2))
    });
    let mut r = Reader::new(connect(gw.addr));
    r.send(b"PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 50000\r\n\r\n");
    let resp = r.read_response();
    assert_eq!((resp.status, resp.text().as_str()), (417, "nope\n"));
    assert!(
        r.is_closed(),
        "the client's connection closes (its body is unread)"
    );
    let (c, line) = seen.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!((c, line.as_str()), (0, "PUT /up HTTP/1.1"));
    // The next request through the proxy.
    let resp = roundtrip(gw.addr, b"GET /up?next HTTP/1.1\r\nHost: x\r\n\r\n");
    let on = seen.recv_timeout(Duration::from_millis(500)).ok();
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "fresh\n"),
        "the next request went on the connection left mid-body (the upstream saw {on:?}): \
         the upstream took it for body bytes"
    );
    assert_ne!(
        on.map(|o| o.0),
        Some(0),
        "sent on the connection left mid-body"
    );
}

/// The same midway, without `Expect`: the upstream answers 413 (keep-alive) after part of
/// the body; the rest is not relayed, and the connection must not go back to the pool
/// (before the fix it did).
#[test]
fn an_upstream_connection_left_mid_body_by_a_midway_answer_is_not_reused() {
    let (addr, seen) = early_answering_upstream(
        "HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig\n",
    );
    let gw = gateway(&[addr], |b| {
        b.response_header_timeout(Duration::from_secs(2))
    });
    let mut r = Reader::new(connect(gw.addr));
    r.send(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n");
    r.send(&vec![b'm'; 2000]);
    let resp = r.read_response();
    assert_eq!((resp.status, resp.text().as_str()), (413, "big\n"));
    let _ = r.stream.shutdown(std::net::Shutdown::Both);
    let (c, line) = seen.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!((c, line.as_str()), (0, "PUT /up HTTP/1.1"));
    let resp = roundtrip(gw.addr, b"GET /up?next HTTP/1.1\r\nHost: x\r\n\r\n");
    let on = seen.recv_timeout(Duration::from_millis(500)).ok();
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "fresh\n"),
        "the next request went on the connection left mid-body (the upstream saw {on:?})"
    );
    assert_ne!(
        on.map(|o| o.0),
        Some(0),
        "sent on the connection left mid-body"
    );
}

// ---------------------------------------------------------------------------------------
// Defect 3: an answer without a body (204, 304, or to HEAD) puts the upstream connection
// back in the pool whatever the answer said: `Connection: close` is ignored.

/// A streamed `PUT` answered `204 No Content` with `Connection: close` (the upstream
/// closes its connection a moment later, as it said it would). RFC 9112 §9.6: a client
/// that receives "close" "MUST cease sending requests on that connection". (Before the
/// fix the proxy pooled it and wrote the next request on it: that request was lost, 502.)
#[test]
fn a_204_with_connection_close_after_an_upload_is_not_reused() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, seen) = mpsc::channel::<(usize, String)>();
    std::thread::spawn(move || {
        for (conn, s) in l.incoming().enumerate() {
            let Ok(mut s) = s else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut buf = Vec::new();
                let mut tmp = [0u8; 65536];
                loop {
                    let Some((head, head_len)) = read_request_head(&mut s, &mut buf) else {
                        return;
                    };
                    let _ = tx.send((conn, head.lines().next().unwrap_or("").to_string()));
                    let len = head_len as usize;
                    while buf.len() < len {
                        match s.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    buf.drain(..len);
                    if head.starts_with("PUT") {
                        let _ =
                            s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                        // Closes as it said, a moment later (nothing more is read).
                        std::thread::sleep(Duration::from_millis(1000));
                        return;
                    }
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfresh\n");
                }
            });
        }
    });
    let gw = gateway(&[addr], |b| b);
    let len = 20_000;
    let mut r = Reader::new(connect(gw.addr));
    let mut req =
        format!("PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    req.extend_from_slice(&vec![b'p'; len]);
    r.send(&req);
    let resp = r.read_response();
    assert_eq!(resp.status, 204);
    assert_eq!(
        seen.recv_timeout(IO_TIMEOUT).unwrap(),
        (0, "PUT /up HTTP/1.1".into())
    );
    // The next request through the proxy (a POST: not retried on a fresh connection).
    let resp = roundtrip(
        gw.addr,
        b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "fresh\n"),
        "the next request was written on the connection the upstream said it would close"
    );
    assert_eq!(
        seen.recv_timeout(IO_TIMEOUT).unwrap().0,
        1,
        "not on a fresh connection"
    );
}

// ---------------------------------------------------------------------------------------
// Defect 4: an upload in flight when the server starts to drain is answered without
// `Connection: close`.

/// An upstream that reads each request's `Content-Length` body and answers `200 done`.
fn reading_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut buf = Vec::new();
                let mut tmp = [0u8; 65536];
                loop {
                    let Some((_head, head_len)) = read_request_head(&mut s, &mut buf) else {
                        return;
                    };
                    let len = head_len as usize;
                    while buf.len() < len {
                        match s.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    buf.drain(..len);
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ndone\n");
                }
            });
        }
    });
    addr
}

/// docs/DEPLOY.md: after the first stop, for `drain_delay`, the server keeps serving
/// "every answer saying `Connection: close`" (`PoolShared::draining`: "the last response
/// of each batch says `Connection: close`"), so a load balancer retires its connection
/// after a response, never under a request in flight. A plain request is answered so, and
/// so is an upload that was mid-body when the stop came. (Before the fix the upload was
/// answered keep-alive and its connection kept open for another request.)
#[test]
fn an_upload_answered_during_the_drain_delay_says_connection_close() {
    let cfg = Config {
        drain_delay: Duration::from_secs(3),
        shutdown_timeout: Duration::from_secs(2),
        ..upload_config()
    };
    let gw = upload_gateway(cfg, &[reading_upstream()], |b| b);
    let mut r = Reader::new(connect(gw.addr));
    let len = 50_000;
    r.send(format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").as_bytes());
    r.send(&vec![b'd'; 3000]);
    std::thread::sleep(Duration::from_millis(300));
    gw.handle().shutdown();
    std::thread::sleep(Duration::from_millis(300));
    // For comparison: a request dispatched now is answered with close.
    let plain = roundtrip(gw.addr, b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(plain.header("connection"), Some("close"));
    r.send(&vec![b'd'; len - 3000]);
    let resp = r.read_response();
    assert_eq!((resp.status, resp.text().as_str()), (200, "done\n"));
    assert_eq!(
        resp.header("connection"),
        Some("close"),
        "the upload's answer during the drain delay keeps the connection alive"
    );
}
