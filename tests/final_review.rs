//! The last review of the session's fixes (parse verdicts, the gateway's early answers,
//! the stop from code, the drain, the first-byte stamp), over real sockets: what each fix
//! broke or missed.

mod support;
use support::*;
#[cfg(feature = "proxy")]
#[path = "support/upstream.rs"]
mod upstream;

use h1server::{Request, Response, Router};

/// RFC 9112 §3.2.4: "The asterisk-form of request-target is only used for a server-wide
/// OPTIONS request" and is exactly `*`. A target that starts with `*` and goes on is in no
/// request form (not origin-form, no scheme, not CONNECT's authority-form): 400 and a
/// close, as `GET a/b` gets (Go: "invalid URI for request"). It reached the router.
#[test]
fn a_target_that_only_starts_with_an_asterisk_gets_400() {
    let mut router = Router::new();
    router.any("/{rest...}", |req: &mut Request| {
        Response::text(format!("path {}\n", req.path()))
    });
    let srv = TestServer::start(router);
    for line in ["GET *x", "GET **", "OPTIONS *x", "OPTIONS */a", "GET *"] {
        let mut r = Reader::new(connect(srv.addr));
        r.send(format!("{line} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = r.read_response();
        assert_eq!(resp.status, 400, "{line}: {resp:?}");
        assert_eq!(resp.header("Connection"), Some("close"), "{line}");
        assert!(r.is_closed(), "{line}: closed after the 400");
    }
    // `OPTIONS *` itself is still the server-wide question.
    let resp = roundtrip(srv.addr, b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(resp.status, 200, "{resp:?}");
}

/// A keep-alive request sent while the one before it is answered by an upstream (the
/// gateway's exchange, on the loop) is stamped from its own first byte, as one sent while
/// the one before it is at a worker is (aac1810). `fill` stamped no phase of an exchange,
/// so the request behind it kept the first byte of the one before (a time before it was
/// sent): its `parse` stage held the whole upstream exchange.
#[cfg(feature = "proxy")]
#[test]
fn a_request_sent_while_the_one_before_it_is_forwarded_is_stamped_from_its_own_first_byte() {
    use h1server::telemetry::Event;
    use h1server::{Config, Server};
    use std::io::{Read, Write};
    use std::sync::mpsc;

    // An upstream that answers its first request only when told to.
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    let (got_tx, got_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut s, _) = up.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).unwrap_or(0) == 0 {
                return;
            }
            head.push(b[0]);
        }
        let _ = got_tx.send(());
        let _ = go_rx.recv_timeout(IO_TIMEOUT);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nup\n");
        // Holds the connection until the gateway closes it.
        let _ = s.read(&mut [0u8; 64]);
    });

    let server = Server::bind(Config {
        record_stages: true,
        ..test_config()
    })
    .unwrap();
    let tel = server.telemetry();
    tel.record_requests(64);
    let proxy = h1server::proxy::ReverseProxy::builder()
        .route("/up", [format!("http://{up_addr}")])
        .build()
        .unwrap();
    let mut router = Router::new();
    router.get("/up", proxy);
    router.get("/next", |_: &mut Request| Response::text("next\n"));
    let srv = TestServer::with_server(server, router);

    let first = b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n";
    let second = b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut c = Reader::new(srv.connect());
    c.send(first);
    // The exchange is under way (the upstream has the request)…
    got_rx
        .recv_timeout(IO_TIMEOUT)
        .expect("the upstream got the request");
    // …when the second request is sent, and read by the loop.
    c.send(second);
    let total = (first.len() + second.len()) as u64;
    assert!(
        wait_until(IO_TIMEOUT, || tel.snapshot().bytes_in >= total),
        "the loop never read the second request"
    );
    go_tx.send(()).unwrap();
    assert_eq!(c.read_response().text(), "up\n");
    assert_eq!(c.read_response().text(), "next\n");
    assert!(c.is_closed());

    let mut recs = Vec::new();
    assert!(
        wait_until(IO_TIMEOUT, || {
            recs.extend(tel.take_events(1000).into_iter().filter_map(|e| match e {
                Event::Request(r) => Some(*r),
                _ => None,
            }));
            recs.len() >= 2
        }),
        "{recs:#?}"
    );
    recs.sort_by_key(|r| r.seq);
    let (one, two) = (&recs[0], &recs[1]);
    assert_eq!((one.path.as_str(), two.path.as_str()), ("/up", "/next"));
    assert!(
        two.timeline.first_byte >= one.timeline.handler_start,
        "request 2's first byte is stamped before it was sent: {:#?} / {:#?}",
        one.timeline,
        two.timeline
    );
}

/// An upstream may answer as soon as it has the head and read the body after (a handler
/// that flushes its status first, a full-duplex echo): RFC 9112 §9.5 has a client stop
/// sending only when the answer "indicates the server does not wish to receive the
/// message body and is closing the connection". Since the gateway reads the upstream
/// while it writes (fe2c049), any answer that came during the write stopped it: the rest
/// of a buffered body was never sent, the upstream waited for it, and the client's answer
/// was cut at the read timeout. The rest is now written as the upstream takes it.
#[cfg(feature = "proxy")]
#[test]
fn an_upstream_that_answers_before_reading_the_body_still_gets_all_of_it() {
    use std::io::{Read, Write};
    use std::time::Duration;
    // More than the loopback socket buffers hold, so the write is still under way when
    // the answer's head comes.
    const N: usize = 24 << 20;
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = up.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        let mut got = Vec::new();
        let head_end = loop {
            let n = s.read(&mut buf).unwrap_or(0);
            if n == 0 {
                return;
            }
            got.extend_from_slice(&buf[..n]);
            if let Some(p) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        // The status first, then the body is read, then the answer's body says how much
        // of it came.
        s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        let mut body = got.len() - head_end;
        while body < N {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => body += n,
            }
        }
        let msg = format!("got {body}");
        let _ = s.write_all(format!("{:x}\r\n{msg}\r\n0\r\n\r\n", msg.len()).as_bytes());
        let _ = s.read(&mut buf);
    });
    let cfg = h1server::Config {
        max_body_bytes: 32 << 20,
        ..test_config()
    };
    let proxy = h1server::proxy::ReverseProxy::builder()
        .route("/", [format!("http://{up_addr}")])
        .read_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let srv = TestServer::with_config(cfg, proxy);
    let mut c = Reader::new(srv.connect());
    let mut req =
        format!("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: {N}\r\n\r\n").into_bytes();
    req.resize(req.len() + N, b'a');
    c.stream.write_all(&req).unwrap();
    let resp = c.read_response();
    assert_eq!((resp.status, resp.text()), (200, format!("got {N}")));
}

/// A streamed body's write that failed because the server answered first (5c676cf) keeps
/// that answer; `finish` — what a caller that stops writing at the first error calls —
/// gives it too, as `early_response` does. It said "the body ended before its declared
/// Content-Length" (`InvalidRequest`) and dropped the `413` the server had sent.
#[cfg(feature = "client")]
#[test]
fn finish_after_a_write_stopped_by_an_early_answer_gives_that_answer() {
    use h1server::client::Client;
    use std::io::{Read, Write};
    use std::time::Duration;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let _ = s.read(&mut [0u8; 4096]);
        s.write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nnope")
            .unwrap();
        // Neither reads nor closes until the test is over (bounded).
        let _ = done_rx.recv_timeout(Duration::from_secs(60));
    });
    let c = Client::builder().write_timeout(IO_TIMEOUT).build();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut req = c
            .put(&format!("http://{addr}/x"))
            .send_streamed(1 << 30)
            .unwrap();
        let piece = vec![0u8; 1 << 20];
        let failed = (0..1024).any(|_| req.write(&piece).is_err());
        let got = req
            .finish()
            .map(|r| (r.status(), r.text().unwrap()))
            .map_err(|e| e.to_string());
        let _ = tx.send((failed, got));
    });
    let outcome = rx.recv_timeout(IO_TIMEOUT);
    drop(done_tx);
    let (failed, got) = outcome.expect("the client is still writing");
    assert!(failed, "the server stopped reading: a write must fail");
    assert_eq!(got, Ok((413, "nope".to_string())));
}
