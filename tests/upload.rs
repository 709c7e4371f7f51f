//! Request bodies larger than memory (`max_upload_bytes`): the handler gets the head
//! alone and answers `Response::read_body(sink)`; the loop feeds the body to the sink
//! piece by piece, so slow uploaders hold no worker.
mod support;
use support::*;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use h1server::{BodySink, Config, Request, Response};

/// Sums and counts what it receives; refuses past `limit` bytes.
struct Sum {
    bytes: u64,
    sum: u64,
    pieces: usize,
    limit: u64,
    aborted: Arc<AtomicUsize>,
}

impl BodySink for Sum {
    fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
        self.bytes += piece.len() as u64;
        self.sum += piece.iter().map(|&b| u64::from(b)).sum::<u64>();
        self.pieces += 1;
        if self.bytes > self.limit {
            return Err(Response::error(413, "quota exceeded\n"));
        }
        Ok(())
    }
    fn finish(self: Box<Self>) -> Response {
        Response::text(format!(
            "{} bytes, sum {}, {} pieces\n",
            self.bytes, self.sum, self.pieces
        ))
    }
    fn abort(self: Box<Self>) {
        self.aborted.fetch_add(1, Ordering::SeqCst);
    }
}

fn upload_server(workers: usize, aborted: Arc<AtomicUsize>) -> TestServer {
    let cfg = Config {
        workers,
        max_body_bytes: 64 * 1024,
        max_upload_bytes: 1 << 30,
        ..test_config()
    };
    TestServer::with_config(cfg, move |req: &mut Request| match req.path() {
        "/upload" => match req.streamed_body_len() {
            Some(_) => Response::read_body(Sum {
                bytes: 0,
                sum: 0,
                pieces: 0,
                limit: 8 << 20,
                aborted: aborted.clone(),
            }),
            None => Response::text(format!("{} bytes in memory\n", req.body().len())),
        },
        "/ignore" => Response::text("not reading that\n"),
        _ => Response::text("plain\n"),
    })
}

fn body_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn sum(b: &[u8]) -> u64 {
    b.iter().map(|&x| u64::from(x)).sum()
}

#[test]
fn a_body_larger_than_memory_reaches_the_sink_piece_by_piece_and_keep_alive_goes_on() {
    let server = upload_server(2, Arc::default());
    let body = body_of(4 << 20);
    let mut r = Reader::new(server.connect());
    r.send(
        format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    r.send(&body);
    // Pipelined behind the body: answered after it, on the same connection.
    r.send(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    let text = resp.text();
    assert!(
        text.starts_with(&format!("{} bytes, sum {}, ", body.len(), sum(&body))),
        "{text}"
    );
    let pieces: usize = text
        .split(", ")
        .nth(2)
        .unwrap()
        .trim_end_matches(" pieces\n")
        .parse()
        .unwrap();
    assert!(
        pieces > 1,
        "one piece of 4 MiB: the body was buffered whole ({text})"
    );
    assert_eq!(r.read_response().text(), "plain\n");
    // A small body is still read whole before the handler.
    r.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(r.read_response().text(), "5 bytes in memory\n");
}

#[test]
fn expect_100_continue_is_sent_when_the_handler_asks_for_the_body() {
    let server = upload_server(2, Arc::default());
    let body = body_of(200_000);
    let mut s = server.connect();
    s.write_all(
        format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(&body).unwrap();
    let mut r = Reader::new(s);
    let resp = r.read_response();
    assert!(resp.text().starts_with("200000 bytes"), "{resp:?}");
}

#[test]
fn a_handler_that_does_not_read_the_body_answers_and_closes() {
    let server = upload_server(2, Arc::default());
    let mut r = Reader::new(server.connect());
    r.send(b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
    r.send(&body_of(100_000));
    let resp = r.read_response();
    assert_eq!(resp.text(), "not reading that\n");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(r.is_closed());
}

#[test]
fn a_sink_that_refuses_answers_with_its_response_and_closes() {
    let server = upload_server(2, Arc::default());
    let body = body_of(16 << 20);
    let mut s = server.connect();
    s.write_all(
        format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    // Send until the server stops taking it (it refuses past 8 MiB and closes).
    let writer = {
        let mut s = s.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = s.write_all(&body);
        })
    };
    let mut r = Reader::new(s);
    let resp = r.read_response();
    assert_eq!(resp.status, 413, "{resp:?}");
    assert_eq!(resp.text(), "quota exceeded\n");
    assert_eq!(resp.header("connection"), Some("close"));
    drop(r);
    writer.join().unwrap();
}

#[test]
fn stalled_uploads_hold_no_worker_and_their_sinks_hear_of_the_disconnect() {
    // 2 workers, 8 uploads that stop half-way: a thread per upload would leave nobody to
    // answer the plain requests below.
    let aborted = Arc::new(AtomicUsize::new(0));
    let server = upload_server(2, aborted.clone());
    let stalled: Vec<_> = (0..8)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
                .unwrap();
            s.write_all(&body_of(300_000)).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..10 {
        let resp = roundtrip(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(resp.text(), "plain\n", "request {i}");
    }
    drop(stalled);
    assert!(
        wait_until(IO_TIMEOUT, || aborted.load(Ordering::SeqCst) == 8),
        "{} of 8 sinks heard of their uploader leaving",
        aborted.load(Ordering::SeqCst)
    );
}

/// Keeps the body; answers its length and first bytes in hex.
struct Collect(Vec<u8>);
impl BodySink for Collect {
    fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
        self.0.extend_from_slice(piece);
        Ok(())
    }
    fn finish(self: Box<Self>) -> Response {
        let head: Vec<String> = self.0.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Response::text(format!(
            "{} bytes, starts {}\n",
            self.0.len(),
            head.join(" ")
        ))
    }
}

/// Streams bodies over 64 KiB to a `Collect` sink; answers others "plain".
fn collect_server() -> TestServer {
    let cfg = Config {
        max_body_bytes: 64 * 1024,
        max_upload_bytes: 1 << 30,
        read_timeout: Duration::from_secs(2),
        ..test_config()
    };
    TestServer::with_config(cfg, |req: &mut Request| match req.streamed_body_len() {
        Some(_) => Response::read_body(Collect(Vec::new())),
        None => Response::text("plain\n"),
    })
}

/// A head and a 100 000-byte body that starts with CR LF LF.
fn upload_starting_with_crlf() -> Vec<u8> {
    let mut msg = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n\r\n\n".to_vec();
    msg.resize(msg.len() + 100_000 - 3, b'x');
    msg
}

#[test]
fn an_upload_body_starting_with_crlf_arrives_whole() {
    let server = collect_server();
    let mut r = Reader::new(server.connect());
    // One write: head and body arrive together.
    r.send(&upload_starting_with_crlf());
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?} {}", resp.text());
    assert_eq!(resp.text(), "100000 bytes, starts 0d 0a 0a 78\n");
}

#[test]
fn an_upload_body_starting_with_crlf_does_not_eat_the_next_request() {
    let server = collect_server();
    let mut r = Reader::new(server.connect());
    let mut msg = upload_starting_with_crlf();
    msg.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    r.send(&msg);
    let resp = r.read_response();
    assert_eq!(resp.text(), "100000 bytes, starts 0d 0a 0a 78\n");
    assert_eq!(r.read_response().text(), "plain\n");
}

/// Takes its time on each piece, then refuses.
struct SlowRefuser;
impl BodySink for SlowRefuser {
    fn data(&mut self, _piece: &[u8]) -> Result<(), Response> {
        std::thread::sleep(Duration::from_millis(900));
        Err(Response::error(413, "no\n"))
    }
    fn finish(self: Box<Self>) -> Response {
        Response::text("done\n")
    }
}

fn slow_refuser_server() -> TestServer {
    let cfg = Config {
        workers: 2,
        max_body_bytes: 64 * 1024,
        max_upload_bytes: 1 << 30,
        read_timeout: Duration::from_millis(500),
        ..test_config()
    };
    TestServer::with_config(cfg, |req: &mut Request| match req.streamed_body_len() {
        Some(_) => Response::read_body(SlowRefuser),
        None => Response::text("plain\n"),
    })
}

#[test]
fn a_sink_refusing_after_the_body_deadline_does_not_kill_the_loop() {
    let server = slow_refuser_server();
    let mut s = server.connect();
    s.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    s.write_all(&vec![b'a'; 100_000]).unwrap();
    // The client stalls; the sink is still busy with the first piece when the body
    // deadline (500 ms) fires; the sink refuses at 900 ms, during the linger.
    std::thread::sleep(Duration::from_millis(1500));
    // The server must still answer others.
    let resp = roundtrip(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.text(), "plain\n");
}

/// Takes every piece, then takes its time to finish (an fsync, a database commit).
struct SlowFinisher;
impl BodySink for SlowFinisher {
    fn data(&mut self, _piece: &[u8]) -> Result<(), Response> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Response {
        std::thread::sleep(Duration::from_millis(900));
        Response::text("stored\n")
    }
}

#[test]
fn a_slow_finish_with_a_pipelined_request_behind_does_not_kill_the_loop() {
    let cfg = Config {
        workers: 2,
        max_body_bytes: 64 * 1024,
        max_upload_bytes: 1 << 30,
        read_timeout: Duration::from_millis(500),
        ..test_config()
    };
    let server = TestServer::with_config(cfg, |req: &mut Request| match req.streamed_body_len() {
        Some(_) => Response::read_body(SlowFinisher),
        None => Response::text("plain\n"),
    });
    let mut r = Reader::new(server.connect());
    r.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    r.send(&vec![b'a'; 100_000]);
    std::thread::sleep(Duration::from_millis(100));
    // A pipelined request while the sink finishes: legal HTTP/1.1.
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let first = r.read_response();
    assert_eq!(first.text(), "stored\n", "{first:?}");
    assert_eq!(r.read_response().text(), "plain\n");
}

/// Takes every piece; answers with a large streamed body.
struct StreamAnswer;
impl BodySink for StreamAnswer {
    fn data(&mut self, _piece: &[u8]) -> Result<(), Response> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Response {
        std::thread::sleep(Duration::from_millis(200));
        Response::stream((0..2000).map(|_| vec![b'z'; 16 * 1024]))
    }
}

#[test]
fn the_body_deadline_of_a_finished_upload_does_not_fire_inside_its_streamed_answer() {
    use std::io::Read;
    let cfg = Config {
        workers: 2,
        max_body_bytes: 64 * 1024,
        max_upload_bytes: 1 << 30,
        read_timeout: Duration::from_millis(500),
        write_timeout: Duration::from_secs(5),
        ..test_config()
    };
    let server = TestServer::with_config(cfg, |req: &mut Request| match req.streamed_body_len() {
        Some(_) => Response::read_body(StreamAnswer),
        None => Response::text("plain\n"),
    });
    let mut s = server.connect();
    s.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    s.write_all(&vec![b'a'; 100_000]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // Do not read for a while: the answer stream fills the socket.
    std::thread::sleep(Duration::from_millis(1500));
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let at = got.windows(13).position(|w| w == b"HTTP/1.1 408 ");
    assert!(
        at.is_none(),
        "a 408 was written at byte {:?} of {} (inside the 200's chunked body)",
        at,
        got.len()
    );
}
