//! Review of "a fixed body over 256 KiB is pulled as the client takes it" (9f3c1c9): the
//! answers that are not sent through the pulled-stream path (an upgrade, an upload's
//! answer, a reverse proxy's own answer) must still carry their whole large body, and the
//! stream counters must add up.
mod support;
use support::*;

use std::io::{Read, Write};
use std::time::Duration;

use h1server::{BodySink, Config, Request, Response, Server};

const BIG: usize = 300 * 1024;

fn big_body() -> Vec<u8> {
    (0..BIG).map(|i| (i % 251) as u8).collect()
}

/// A handler may answer any status with `Response::upgrade` (the docs: "usually on a
/// 101"); the socket is handed over once the answer is written. A large body on such an
/// answer was encoded as a pulled stream whose source the upgrade path dropped: the head
/// said `Content-Length: 307200` and the upgrade callback's bytes followed at once, no
/// body. Seen failing on 9f3c1c9: the body read was the callback's bytes plus nothing.
#[test]
fn a_large_body_on_an_upgrading_answer_is_sent_before_the_takeover() {
    let server = TestServer::start(|_req: &mut Request| {
        Response::new(200)
            .with_body(big_body())
            .upgrade(|mut u: h1server::Upgraded| {
                let _ = u.stream.write_all(b"AFTER");
            })
    });
    let mut r = Reader::new(server.connect());
    r.send(b"GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: demo\r\nConnection: upgrade\r\n\r\n");
    let a = r.read_response();
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-length"), Some("307200"));
    assert!(a.body == big_body(), "the body before the takeover differs");
    // Then the new protocol's bytes.
    let mut rest = r.leftover().to_vec();
    let mut tmp = [0u8; 64];
    while rest.len() < 5 {
        match read_some(&mut r.stream, &mut tmp) {
            Ok(0) | Err(_) => break,
            Ok(n) => rest.extend_from_slice(&tmp[..n]),
        }
    }
    assert_eq!(rest, b"AFTER");
}

struct Count(usize);

impl BodySink for Count {
    fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
        self.0 += piece.len();
        Ok(())
    }
    fn finish(self: Box<Self>) -> Response {
        Response::new(200).with_body(big_body())
    }
}

/// A streamed upload (`Response::read_body`) whose sink answers a large body: the body goes
/// out whole, and the stream it is sent as is counted as started as well as ended
/// (`h1_streams_open` = started − ended, `h1_streams_total` = started). Seen failing on
/// 9f3c1c9: started 0, ended 1 (the upload's answer path, `pool::upload::feed_sink`, never
/// counts a start).
#[test]
fn a_large_answer_to_a_streamed_upload_is_counted_as_a_started_stream() {
    let server = Server::bind(upload_config()).unwrap();
    let tel = server.telemetry();
    let server = TestServer::with_server(server, |req: &mut Request| {
        if req.streamed_body_len().is_some() {
            Response::read_body(Count(0))
        } else {
            Response::text("small")
        }
    });
    let mut r = Reader::new(server.connect());
    let body = vec![b'u'; 4096];
    r.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n");
    r.send(&body);
    let a = r.read_response();
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-length"), Some("307200"));
    assert!(a.body == big_body());
    // The connection goes on.
    r.send(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.read_response().text(), "small");
    let snap = tel.snapshot();
    assert_eq!(
        (snap.streams_started, snap.streams_ended),
        (1, 1),
        "h1_streams_total / ended"
    );
}

/// `Connection: close`, HTTP/1.0 keep-alive and `max_requests_per_connection`: the large
/// body goes out whole with its length, then the connection closes (or stays) as asked.
#[test]
fn a_large_body_closes_after_its_last_byte_or_keeps_the_connection_as_asked() {
    let cfg = Config {
        max_requests_per_connection: 2,
        ..test_config()
    };
    let server = TestServer::with_config(cfg, |_req: &mut Request| {
        Response::new(200).with_body(big_body())
    });
    let mut r = Reader::new(server.connect());
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let a = r.read_response();
    assert_eq!(a.header("connection"), Some("close"));
    assert!(a.body == big_body());
    assert!(r.is_closed());
    assert!(r.leftover().is_empty());

    let mut r = Reader::new(server.connect());
    r.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let a = r.read_response();
    assert_eq!(a.header("connection"), Some("keep-alive"));
    assert!(a.body == big_body());
    r.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let b = r.read_response();
    // The second request reached the limit.
    assert_eq!(b.header("connection"), Some("close"));
    assert!(b.body == big_body());
    assert!(r.is_closed());
    assert!(r.leftover().is_empty());
}

/// The drain starts while a large body is half read: the rest of it still comes, then
/// the close.
#[test]
fn the_drain_finishes_a_large_body_half_written() {
    let server =
        TestServer::start(|_req: &mut Request| Response::new(200).with_body(vec![7u8; 8 << 20]));
    let mut s = server.connect();
    // A small receive buffer: most of the body waits in the server.
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut tmp = [0u8; 4096];
    while got.len() < 64 * 1024 {
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&tmp[..n]);
    }
    server.handle().shutdown();
    while let Ok(n) = s.read(&mut tmp) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&tmp[..n]);
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
    assert!(head.contains("content-length: 8388608"), "{head}");
    assert_eq!(got.len() - head_end, 8 << 20, "the body was cut");
    let _ = Duration::ZERO;
}

/// A reverse proxy's own answer (its `error_handler`'s, here for an upstream that refuses
/// the connection) with a large body: it must go out whole. It was encoded as a pulled
/// stream, which the proxy's answer path (`pool::answer_forward`) does not carry: it
/// ended it and closed, after a head saying `Content-Length: 307200`. Seen failing on
/// 9f3c1c9: EOF inside the body.
#[cfg(feature = "proxy")]
#[test]
fn a_large_error_page_of_the_reverse_proxy_goes_out_whole() {
    // A port nobody listens on.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = gone.local_addr().unwrap();
    drop(gone);
    let proxy = h1server::proxy::ReverseProxy::builder()
        .route("/", [format!("http://{up}")])
        .error_handler(|_e| Response::new(502).with_body(big_body()))
        .build()
        .unwrap();
    let server = TestServer::start(proxy);
    let mut r = Reader::new(server.connect());
    r.send(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    let a = r.read_response();
    assert_eq!(a.status, 502);
    assert_eq!(a.header("content-length"), Some("307200"));
    assert!(a.body == big_body(), "the error page differs");
}

/// A client that stops reading mid-body is closed at `write_timeout` (counted from the last
/// progress); one that reads slowly but steadily is not cut off, however long the whole
/// body takes.
#[test]
fn the_write_deadline_closes_a_stalled_reader_not_a_slow_one() {
    let cfg = || Config {
        write_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(400),
        ..test_config()
    };
    let server = Server::bind(cfg()).unwrap();
    let tel = server.telemetry();
    let server = TestServer::with_server(server, |_req: &mut Request| {
        Response::new(200).with_body(vec![9u8; 16 << 20])
    });
    // Stalled: never reads. The server closes it for its write deadline.
    let mut s = server.connect();
    small_receive_buffer(&s);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            tel.snapshot()
                .closed
                .iter()
                .any(|(r, n)| *r == "write_timeout" && *n == 1)
        }),
        "{:?}",
        tel.snapshot().closed
    );
    drop(s);

    // Slow and steady: 1 MiB, 64 KiB every 100 ms (1.6 s, four write_timeouts), through
    // a default receive buffer (a 4 KiB one makes loopback TCP itself crawl).
    let server2 = TestServer::with_config(cfg(), |_req: &mut Request| {
        Response::new(200).with_body(vec![5u8; 1 << 20])
    });
    let mut s = server2.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    for _ in 0..40 {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut have = 0;
        while have < chunk.len() {
            match s.read(&mut chunk[have..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => have += n,
            }
        }
        got.extend_from_slice(&chunk[..have]);
        if have < chunk.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(got.len() - head_end, 1 << 20, "a steady reader was cut off");
}

/// A streamed upload answered with a large body without reading the upload: the answer
/// goes out whole, then the connection closes (the body is not read) — whether the client
/// sends its body at once or waits for `100 Continue` that does not come.
#[test]
fn a_large_answer_to_an_unread_upload_goes_out_whole_then_closes() {
    let server = TestServer::with_config(upload_config(), |_req: &mut Request| {
        Response::new(413).with_body(big_body())
    });
    // The body sent at once (2 MiB: more than the server reads ahead).
    let mut r = Reader::new(server.connect());
    let writer = r.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut w = writer;
        let _ = w.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n");
        let _ = w.write_all(&vec![b'u'; 2 << 20]);
    });
    let a = r.read_response();
    assert_eq!(a.status, 413);
    assert_eq!(a.header("connection"), Some("close"));
    assert!(a.body == big_body());
    assert!(r.is_closed());
    sender.join().unwrap();
    // Expect: 100-continue: the answer comes instead.
    let mut r = Reader::new(server.connect());
    r.send(
        b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\nExpect: 100-continue\r\n\r\n",
    );
    let a = r.read_response();
    assert_eq!(a.status, 413);
    assert!(a.body == big_body());
    assert!(r.is_closed());
}

/// A client that half-closes after its request still gets the whole large answer (RFC 9112
/// §9.6: a FIN is only a half-close), then the close.
#[test]
fn a_half_closed_client_gets_the_whole_large_body() {
    let server = TestServer::start(|_req: &mut Request| Response::new(200).with_body(big_body()));
    let mut r = Reader::new(server.connect());
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    r.stream.shutdown(std::net::Shutdown::Write).unwrap();
    for _ in 0..2 {
        let a = r.read_response();
        assert_eq!(a.header("content-length"), Some("307200"));
        assert!(a.body == big_body());
    }
    assert!(r.is_closed());
    assert!(r.leftover().is_empty());
}
