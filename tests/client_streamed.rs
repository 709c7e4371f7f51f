//! The client's streamed request bodies (`RequestBuilder::send_streamed`): the body goes
//! out piece by piece behind a `Content-Length` head, `Expect: 100-continue` waits for the
//! go-ahead or takes an early final answer, and a wrong length is refused.
#![cfg(feature = "client")]
mod support;
#[path = "support/upstream.rs"]
mod upstream;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use h1server::client::{Client, ClientError, Continue};
use support::IO_TIMEOUT;
use upstream::{Reply, Upstream, ok};

fn client() -> Client {
    Client::builder().timeout(IO_TIMEOUT).build()
}

#[test]
fn a_streamed_body_arrives_whole_behind_its_content_length() {
    let up = Upstream::start(vec![Reply::Raw(ok("got it"))]);
    let mut req = client()
        .request("PUT", &up.url("/blob"))
        .header("Content-Type", "application/octet-stream")
        .send_streamed(10)
        .unwrap();
    req.write(b"0123").unwrap();
    assert_eq!(req.remaining(), 6);
    req.write(b"456789").unwrap();
    let resp = req.finish().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "got it");
    let seen = up.requests();
    assert_eq!(seen[0].line(), "PUT /blob HTTP/1.1");
    assert_eq!(seen[0].header("content-length").as_deref(), Some("10"));
    assert_eq!(seen[0].body, b"0123456789");
}

#[test]
fn more_or_fewer_bytes_than_declared_are_refused() {
    let up = Upstream::start(vec![]);
    let mut req = client().post(&up.url("/")).send_streamed(3).unwrap();
    assert!(matches!(
        req.write(b"four"),
        Err(ClientError::InvalidRequest(_))
    ));
    req.write(b"ab").unwrap();
    assert!(matches!(req.finish(), Err(ClientError::InvalidRequest(_))));
}

/// A one-connection upstream that answers the head at once with `reply`, then (when
/// `then_body` is set) reads `then_body` bytes and answers `200 body-ok`.
fn expecting_upstream(reply: &'static str, then_body: usize) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut buf = Vec::new();
        let mut tmp = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut tmp).unwrap();
            assert!(n > 0, "client closed before its head");
            buf.extend_from_slice(&tmp[..n]);
        }
        let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        s.write_all(reply.as_bytes()).unwrap();
        if then_body > 0 {
            let mut got = buf.len() - head_end;
            while got < then_body {
                let n = s.read(&mut tmp).unwrap();
                assert!(n > 0);
                got += n;
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nbody-ok")
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    });
    addr
}

#[test]
fn expect_continue_waits_for_the_go_ahead_then_sends_the_body() {
    let addr = expecting_upstream("HTTP/1.1 100 Continue\r\n\r\n", 5);
    let req = client()
        .post(&format!("http://{addr}/up"))
        .header("Expect", "100-continue")
        .send_streamed(5)
        .unwrap();
    let Continue::SendBody(mut req) = req.await_continue(IO_TIMEOUT).unwrap() else {
        panic!("expected the go-ahead");
    };
    req.write(b"hello").unwrap();
    let resp = req.finish().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), "body-ok");
}

#[test]
fn expect_continue_takes_an_early_final_answer_and_never_reuses_the_connection() {
    let addr = expecting_upstream(
        "HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n\r\nbig",
        0,
    );
    let c = client();
    let req = c
        .post(&format!("http://{addr}/up"))
        .header("Expect", "100-continue")
        .send_streamed(1 << 30)
        .unwrap();
    let Continue::Answered(resp) = req.await_continue(IO_TIMEOUT).unwrap() else {
        panic!("expected the early answer");
    };
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.text().unwrap(), "big");
    assert_eq!(
        c.idle_connections(),
        0,
        "a connection owed a body is not pooled"
    );
}

#[test]
fn without_an_answer_the_wait_for_continue_ends_and_the_body_goes() {
    // The upstream says nothing until it has the body.
    let addr = expecting_upstream("", 5);
    let req = client()
        .post(&format!("http://{addr}/up"))
        .header("Expect", "100-continue")
        .send_streamed(5)
        .unwrap();
    let Continue::SendBody(mut req) = req.await_continue(Duration::from_millis(100)).unwrap()
    else {
        panic!("expected the go-ahead after the wait");
    };
    req.write(b"hello").unwrap();
    assert_eq!(req.finish().unwrap().text().unwrap(), "body-ok");
}

#[test]
fn after_a_failed_write_the_servers_early_answer_is_read() {
    // Answers 413 at once, then closes without reading the body: writes start failing.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut tmp = [0u8; 4096];
        let _ = s.read(&mut tmp);
        s.write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nnope")
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    });
    let c = client();
    let mut req = c
        .put(&format!("http://{addr}/x"))
        .send_streamed(1 << 30)
        .unwrap();
    let piece = vec![0u8; 1 << 20];
    let err = (0..1024).find_map(|_| req.write(&piece).err());
    assert!(
        err.is_some(),
        "the server stopped reading: a write must fail"
    );
    let resp = req.early_response(IO_TIMEOUT).unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.text().unwrap(), "nope");
    assert_eq!(c.idle_connections(), 0);
}

/// A server that refuses the body at once — `413` — and then neither reads nor closes
/// (it keeps the connection until the client gives up). A write of the body stalls on the
/// full socket with the final answer already received: it used to wait its whole
/// `write_timeout` (a minute here) before failing. RFC 9112 §9.6: a client "SHOULD
/// monitor the network connection for an error response while it is transmitting the
/// request" and then cease sending. The write fails soon after it stalls and
/// `early_response` gives the answer at once.
#[test]
fn a_write_stalled_behind_an_early_answer_fails_without_waiting_for_write_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut tmp = [0u8; 4096];
        let _ = s.read(&mut tmp);
        s.write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nnope")
            .unwrap();
        // Neither reads nor closes until the test is over (bounded).
        let _ = done_rx.recv_timeout(Duration::from_secs(90));
    });
    let c = Client::builder()
        .write_timeout(Duration::from_secs(60))
        .build();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let mut req = c
            .put(&format!("http://{addr}/x"))
            .send_streamed(1 << 30)
            .unwrap();
        let piece = vec![0u8; 1 << 20];
        let err = (0..1024).find_map(|_| req.write(&piece).err());
        let resp = req.early_response(Duration::from_millis(100));
        let got = resp.map(|r| (r.status(), r.text().unwrap()));
        let _ = tx.send((err.map(|e| e.to_string()), got.map_err(|e| e.to_string())));
        c.idle_connections()
    });
    let outcome = rx.recv_timeout(IO_TIMEOUT);
    drop(done_tx);
    let (err, got) = outcome.expect(
        "the body's write still blocked 10 s after the server's 413 (it waits for its \
         60 s write_timeout)",
    );
    assert!(
        err.is_some(),
        "the server stopped reading: a write must fail"
    );
    assert_eq!(got, Ok((413, "nope".to_string())));
    assert_eq!(
        writer.join().unwrap(),
        0,
        "a connection owed a body is not pooled"
    );
}
