//! Streamed bodies at the wire: chunks leave as they are produced, a client that does not
//! read holds its producer back, a disconnect reaches the producer, and many long-lived
//! SSE streams do not occupy the worker pool.
mod support;
use support::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use h1server::{Request, Response, StreamSender, TrySendError};

/// A raw reader of a chunked response that hands out each chunk as soon as it is
/// complete on the wire (the harness `Reader` reads a whole body at once).
struct ChunkReader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl ChunkReader {
    fn new(stream: TcpStream) -> Self {
        ChunkReader {
            stream,
            buf: Vec::new(),
        }
    }

    fn fill(&mut self) {
        let mut tmp = [0u8; 16384];
        match self.stream.read(&mut tmp) {
            Ok(0) => panic!("EOF inside a streamed response"),
            Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
            Err(e) => panic!("read failed (timeout = the server sent nothing): {e}"),
        }
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return l;
            }
            self.fill();
        }
    }

    /// The status line and headers (lower-cased names).
    fn head(&mut self) -> (String, Vec<(String, String)>) {
        let status = self.line();
        let mut headers = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                return (status, headers);
            }
            let (n, v) = l.split_once(':').expect("header without colon");
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }

    /// The next chunk's data, or None for the last chunk (trailers consumed).
    fn chunk(&mut self) -> Option<Vec<u8>> {
        let size_line = self.line();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
        if size == 0 {
            while !self.line().is_empty() {}
            return None;
        }
        while self.buf.len() < size + 2 {
            self.fill();
        }
        let data: Vec<u8> = self.buf.drain(..size).collect();
        assert_eq!(self.buf.drain(..2).collect::<Vec<u8>>(), b"\r\n");
        Some(data)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Sends a GET for `path` on a new connection and reads the head of a 200 chunked answer.
fn open_stream(server: &TestServer, path: &str) -> ChunkReader {
    let mut s = server.connect();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut r = ChunkReader::new(s);
    let (status, headers) = r.head();
    assert!(status.starts_with("HTTP/1.1 200 "), "{status}");
    assert_eq!(
        header(&headers, "transfer-encoding"),
        Some("chunked"),
        "{headers:?}"
    );
    r
}

#[test]
fn streamed_chunks_arrive_progressively() {
    let last_sent: Arc<Mutex<Option<Instant>>> = Arc::default();
    let ls = last_sent.clone();
    let server = TestServer::start(move |_req: &mut Request| {
        let ls = ls.clone();
        Response::stream((0..3).map(move |i| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            if i == 2 {
                *ls.lock().unwrap() = Some(Instant::now());
            }
            format!("chunk {i}\n")
        }))
    });
    let mut r = open_stream(&server, "/");
    let first = r.chunk().expect("a first chunk");
    let first_read_at = Instant::now();
    assert_eq!(first, b"chunk 0\n");
    assert_eq!(r.chunk().expect("a second chunk"), b"chunk 1\n");
    assert_eq!(r.chunk().expect("a third chunk"), b"chunk 2\n");
    assert_eq!(r.chunk(), None, "the body ends after the producer returns");
    let last_sent = last_sent.lock().unwrap().expect("the last chunk was sent");
    assert!(
        first_read_at < last_sent,
        "the first chunk was only readable after the last one was sent"
    );
}

/// An endless producer that counts the bytes pulled from it and notes when it is dropped.
struct Firehose {
    pulled: Arc<AtomicUsize>,
    dropped: Arc<Mutex<Option<Instant>>>,
}

impl Iterator for Firehose {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        self.pulled.fetch_add(64 * 1024, Ordering::SeqCst);
        Some(vec![b'x'; 64 * 1024])
    }
}

impl Drop for Firehose {
    fn drop(&mut self) {
        *self.dropped.lock().unwrap() = Some(Instant::now());
    }
}

#[test]
fn producer_is_held_back_by_a_client_that_does_not_read() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let dropped: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (p2, d2) = (pulled.clone(), dropped.clone());
    let mut cfg = test_config();
    // Only the disconnect may end this stream, not the write deadline.
    cfg.write_timeout = Duration::from_secs(60);
    let server = TestServer::with_config(cfg, move |_req: &mut Request| {
        Response::stream(Firehose {
            pulled: p2.clone(),
            dropped: d2.clone(),
        })
    });
    let mut s = server.connect();
    s.write_all(b"GET /firehose HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(wait_until(IO_TIMEOUT, || pulled.load(Ordering::SeqCst) > 0));
    std::thread::sleep(Duration::from_secs(1));
    let after_1s = pulled.load(Ordering::SeqCst);
    assert!(
        after_1s < 32 * 1024 * 1024,
        "the producer was pulled for {after_1s} bytes by a client that reads nothing: no backpressure"
    );
    assert!(
        dropped.lock().unwrap().is_none(),
        "the producer was dropped while the client was still connected"
    );

    let closed_at = Instant::now();
    drop(s);
    assert!(
        wait_until(Duration::from_secs(5), || dropped.lock().unwrap().is_some()),
        "the producer was not dropped within 5 s of the client disconnecting"
    );
    assert!(dropped.lock().unwrap().unwrap() >= closed_at);
}

#[test]
fn clients_that_never_read_endless_streams_hold_no_worker() {
    // 2 workers and 4x as many clients holding fast endless streams they never read. If a
    // stream held its worker, every plain request below would wait for the write deadline
    // (60 s here) and fail at the client's read timeout.
    let mut cfg = test_config();
    cfg.workers = 2;
    cfg.write_timeout = Duration::from_secs(60);
    let server = TestServer::with_config(cfg, |req: &mut Request| {
        if req.path() == "/endless" {
            Response::stream(std::iter::repeat_with(|| vec![b'x'; 64 * 1024]))
        } else {
            Response::text("plain\n")
        }
    });
    let hogs: Vec<_> = (0..8)
        .map(|_| {
            let mut s = server.connect();
            s.write_all(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500)); // every stream fills its socket
    for i in 0..20 {
        let resp = roundtrip(server.addr, b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(resp.status, 200, "plain request {i}");
        assert_eq!(resp.text(), "plain\n");
    }
    drop(hogs);
}

#[test]
fn channel_producer_sees_the_client_disconnect() {
    let (report_tx, report_rx) = mpsc::channel::<(bool, bool)>();
    let report_tx = Mutex::new(report_tx);
    let server = TestServer::start(move |_req: &mut Request| {
        let (resp, tx) = Response::channel();
        let report = report_tx.lock().unwrap().clone();
        std::thread::spawn(move || {
            for i in 0..500 {
                std::thread::sleep(Duration::from_millis(20));
                if tx.send(format!("tick {i}\n")).is_err() {
                    let _ = report.send((true, tx.is_closed()));
                    return;
                }
            }
            let _ = report.send((false, tx.is_closed()));
        });
        resp
    });
    let mut r = open_stream(&server, "/ticks");
    assert_eq!(r.chunk().expect("tick 0"), b"tick 0\n");
    assert_eq!(r.chunk().expect("tick 1"), b"tick 1\n");
    drop(r);
    let (send_failed, closed) = report_rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the ticker thread never reported");
    assert!(send_failed, "the ticker sent for 10 s into a closed stream");
    assert!(closed, "is_closed() is false after send failed");
}

#[test]
fn hundred_sse_streams_do_not_starve_a_two_worker_pool() {
    const STREAMS: usize = 100;
    let subscribers: Arc<Mutex<Vec<StreamSender>>> = Arc::default();
    let subscribed = Arc::new(AtomicUsize::new(0));
    let (subs, count) = (subscribers.clone(), subscribed.clone());
    let mut cfg = test_config();
    cfg.workers = 2;
    // The 100 subscriptions arrive as one burst; the queue must hold it (a smaller queue
    // rightly sheds part of the burst with 503, which is not what this test is about).
    cfg.queue_depth = 2 * STREAMS;
    let server = TestServer::with_config(cfg, move |req: &mut Request| {
        if req.path() == "/events" {
            let (resp, tx) = Response::sse();
            subs.lock().unwrap().push(tx);
            count.fetch_add(1, Ordering::SeqCst);
            resp
        } else {
            Response::text("plain\n")
        }
    });
    // The broadcast hub: one event to every subscriber every 50 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let hub = {
        let (subs, stop) = (subscribers.clone(), stop.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while !stop.load(Ordering::Acquire) && t0.elapsed() < Duration::from_secs(30) {
                subs.lock()
                    .unwrap()
                    .retain(|tx| tx.try_send("data: tick\n\n") != Err(TrySendError::Closed));
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let mut clients = Vec::new();
    for _ in 0..STREAMS {
        let mut s = server.connect();
        s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        clients.push(s);
    }
    assert!(
        wait_until(IO_TIMEOUT, || subscribed.load(Ordering::SeqCst) == STREAMS),
        "only {} of {STREAMS} SSE requests reached the handler",
        subscribed.load(Ordering::SeqCst)
    );

    // With 100 streams open, a plain request is still answered promptly.
    let plain = server.connect();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut plain = Reader::new(plain);
    plain.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = plain.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "plain\n");

    for (i, s) in clients.into_iter().enumerate() {
        let mut r = ChunkReader::new(s);
        let (status, headers) = r.head();
        assert!(status.starts_with("HTTP/1.1 200 "), "stream {i}: {status}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/event-stream"),
            "stream {i}: {headers:?}"
        );
        let event = r
            .chunk()
            .unwrap_or_else(|| panic!("stream {i} ended early"));
        assert_eq!(event, b"data: tick\n\n", "stream {i}");
    }

    stop.store(true, Ordering::Release);
    hub.join().unwrap();
    subscribers.lock().unwrap().clear(); // ends every body, so the drain is quick
}

#[test]
fn a_fast_stream_to_a_fast_reader_arrives_complete() {
    // 64 MiB in 64 KiB chunks: well past stream_buffer_bytes many times over, so the
    // pump goes through every refill path (socket full, producer blocked, both).
    let srv = TestServer::start(|_: &mut Request| {
        Response::stream((0..1024).map(|_| vec![b'z'; 64 * 1024]))
    });
    let mut r = Reader::new(srv.connect());
    r.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.body.len(), 64 * 1024 * 1024);
}

#[test]
fn a_client_that_half_closes_still_gets_the_whole_stream() {
    let server = TestServer::start(|_: &mut Request| {
        Response::stream((0..200).map(|_| vec![b's'; 16 * 1024]))
    });
    let mut s = server.connect();
    s.write_all(b"GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Read a little so the stream has started, then half-close (as `nc -N` does).
    let mut first = [0u8; 1024];
    let n = s.read(&mut first).unwrap();
    assert!(n > 0);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut got = first[..n].to_vec();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
        }
    }
    assert!(
        got.ends_with(b"\r\n0\r\n\r\n"),
        "body cut off after {} bytes (expected ~3.2 MiB and the last chunk)",
        got.len()
    );
}

/// An endless producer that records which thread drops it (its `Drop` is user code: a
/// cursor closing over the network, a file flush).
struct RecordsItsDrop(Arc<Mutex<Option<String>>>);

impl Iterator for RecordsItsDrop {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        Some(vec![b'd'; 16 * 1024])
    }
}

impl Drop for RecordsItsDrop {
    fn drop(&mut self) {
        let name = std::thread::current().name().unwrap_or("?").to_string();
        *self.0.lock().unwrap() = Some(name);
    }
}

#[test]
fn a_producer_whose_client_left_is_dropped_on_a_worker_not_the_loop() {
    let dropped_on: Arc<Mutex<Option<String>>> = Arc::default();
    let d = dropped_on.clone();
    let server =
        TestServer::start(move |_: &mut Request| Response::stream(RecordsItsDrop(d.clone())));
    let mut s = server.connect();
    s.write_all(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    assert!(s.read(&mut buf).unwrap() > 0);
    drop(s); // mid-stream, with unread data: a reset
    assert!(wait_until(IO_TIMEOUT, || dropped_on
        .lock()
        .unwrap()
        .is_some()));
    let thread = dropped_on.lock().unwrap().clone().unwrap();
    assert!(
        thread.starts_with("h1-worker-"),
        "the producer was dropped on {thread:?}: the event loop never runs user code"
    );
}

#[test]
fn a_slow_but_steady_reader_is_not_cut_off_at_write_timeout() {
    // The write deadline counts from the last progress. The client reads 64 KiB every
    // 20 ms: the socket (and the server's stream buffer) stays full for far longer than
    // write_timeout (300 ms), yet it keeps reading, so it must get the whole body and the
    // last chunk. A deadline counted from the first full socket cuts it off.
    let mut cfg = test_config();
    cfg.write_timeout = Duration::from_millis(300);
    let server = TestServer::with_config(cfg, |_: &mut Request| {
        Response::stream((0..96).map(|_| vec![b'w'; 64 * 1024]))
    });
    let mut s = server.connect();
    s.write_all(b"GET /long HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::with_capacity(7 << 20);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed after {} bytes: {e}", got.len()),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        got.ends_with(b"\r\n0\r\n\r\n") && got.len() > 6 << 20,
        "cut off after {} bytes",
        got.len()
    );
}

/// How a connection ended: `Ok` for an orderly end (EOF), else the error that ended it.
/// Bounded by the read timeout and 1 MiB.
fn how_it_ends(s: &mut TcpStream, got: &mut Vec<u8>) -> Result<(), std::io::ErrorKind> {
    let mut buf = [0u8; 4096];
    while got.len() < 1 << 20 {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.kind()),
        }
    }
    panic!("more than 1 MiB")
}

/// A streamed body whose producer fails is cut off. An HTTP/1.1 client sees a chunked
/// body without its last chunk; an HTTP/1.0 client's body is delimited by the close
/// itself, and an orderly close (FIN) would tell it the truncated body is complete (RFC
/// 9112 §8: such a response "is considered complete unless an error was indicated by the
/// underlying connection"). The connection must end in an error: a reset.
#[test]
fn a_failed_stream_to_an_http10_client_ends_in_a_reset_not_an_orderly_close() {
    for pulled in [true, false] {
        let server = TestServer::start(move |_req: &mut Request| {
            if pulled {
                let pieces: Vec<Result<&str, &str>> = vec![Ok("part"), Err("the disk failed")];
                Response::try_stream(pieces)
            } else {
                let (resp, tx) = Response::channel();
                // A sender dropped by a panicking producer aborts the body.
                std::thread::spawn(move || {
                    let _ = tx.send("part");
                    std::thread::sleep(Duration::from_millis(50));
                    panic!("the producer failed (expected by this test)");
                });
                resp
            }
        });
        let mut c = server.connect();
        c.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut got = Vec::new();
        let end = how_it_ends(&mut c, &mut got);
        assert!(
            end.is_err(),
            "{} stream: a truncated close-delimited body ended in an orderly close: {:?}",
            if pulled { "pulled" } else { "channel" },
            String::from_utf8_lossy(&got)
        );
    }
}

/// A fixed body over 256 KiB is sent piece by piece as the client takes it (so a client
/// that never reads holds a window of it, not a copy: tests/exhaustion_loops_review.rs),
/// but on the wire it is the same answer: its `Content-Length`, not chunked, every byte in
/// order, the connection kept alive, and pipelined requests behind it answered after it,
/// in order. A `&'static` body and an owned one; `HEAD` gets the length and no body; an
/// HTTP/1.0 client gets the same framing.
#[test]
fn a_large_fixed_body_goes_out_whole_with_its_length_and_the_connection_stays() {
    // A `&'static` body, as a server's embedded asset would be.
    let big: &'static [u8] = Box::leak(
        (0..1usize << 20)
            .map(|i| b'a' + (i % 23) as u8)
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    let owned: Vec<u8> = (0..600 * 1024).map(|i| (i % 251) as u8).collect();
    let expected_owned = owned.clone();
    let server = TestServer::start(move |req: &mut Request| match req.path() {
        "/static" => Response::new(200).with_body(big),
        "/owned" => Response::new(200).with_body(owned.clone()),
        _ => Response::text("small"),
    });
    let mut r = Reader::new(server.connect());
    r.send(
        b"GET /static HTTP/1.1\r\nHost: x\r\n\r\nGET /owned HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /static HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let a = r.read_response();
    assert_eq!(a.status, 200);
    assert!(!a.chunked, "a fixed body is not chunked");
    assert_eq!(a.header("content-length"), Some("1048576"));
    assert!(a.body == big, "the static body differs");
    let b = r.read_response();
    assert_eq!(b.header("content-length"), Some("614400"));
    assert!(!b.chunked);
    assert!(b.body == expected_owned, "the owned body differs");
    let c = r.read_response_to("HEAD").expect("the HEAD answer");
    assert_eq!(c.header("content-length"), Some("1048576"));
    assert!(c.body.is_empty());
    let d = r.read_response();
    assert_eq!(d.text(), "small");
    // Still open: a fifth request on the same connection.
    r.send(b"GET /static HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.read_response().body == big);
    // HTTP/1.0: the same Content-Length framing.
    let mut r = Reader::new(server.connect());
    r.send(b"GET /static HTTP/1.0\r\nHost: x\r\n\r\n");
    let e = r.read_response();
    assert_eq!(e.header("content-length"), Some("1048576"));
    assert!(e.body == big);
}
