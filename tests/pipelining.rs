//! Pipelining corner cases: large answers handed back in pieces, streams in a pipeline,
//! shedding and stray line ends.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use h1server::{Config, Request, Response};
use support::*;

fn app(req: &mut Request) -> Response {
    match req.path() {
        "/big" => Response::new(200).with_body(vec![b'x'; 100 * 1024]),
        "/stream" => Response::stream((0..3).map(|i| format!("s{i}\n"))),
        "/panic-stream" => Response::stream((0..2).map(|i| {
            if i == 1 {
                panic!("producer failed");
            }
            "part 1\n"
        })),
        "/failing-stream" => Response::try_stream((0..2).map(|i| match i {
            0 => Ok("part 1\n"),
            _ => Err("the database went away"),
        })),
        p => Response::text(p.to_string()),
    }
}

#[test]
fn many_large_pipelined_answers_arrive_whole_and_in_order() {
    // 40 × 100 KiB is far above what one batch may buffer: the worker hands the rest back.
    let srv = TestServer::start(app);
    let mut r = Reader::new(srv.connect());
    let mut reqs = Vec::new();
    for i in 0..40 {
        let path = if i % 2 == 0 {
            "/big".to_string()
        } else {
            format!("/n{i}")
        };
        reqs.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    r.send(&reqs);
    for i in 0..40 {
        let resp = r.read_response();
        assert_eq!(resp.status, 200, "response {i}");
        if i % 2 == 0 {
            assert_eq!(resp.body.len(), 100 * 1024, "response {i}");
        } else {
            assert_eq!(resp.text(), format!("/n{i}"), "response {i}");
        }
    }
}

#[test]
fn requests_behind_a_stream_are_answered_after_it_and_a_second_stream_works_too() {
    let srv = TestServer::start(app);
    let mut r = Reader::new(srv.connect());
    r.send(
        b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /a HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let s1 = r.read_response();
    assert!(s1.chunked && s1.text() == "s0\ns1\ns2\n", "{s1:?}");
    assert_eq!(r.read_response().text(), "/a");
    let s2 = r.read_response();
    assert!(s2.chunked && s2.text() == "s0\ns1\ns2\n", "{s2:?}");
    assert_eq!(r.read_response().text(), "/b");
}

#[test]
fn a_producer_that_panics_does_not_end_its_body_as_complete() {
    let srv = TestServer::start(app);
    let mut s = srv.connect();
    s.write_all(b"GET /panic-stream HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_cut_off(&mut s);
}

/// Reads until the server closes (EOF or reset) — failing if it does not close within
/// the read timeout — and checks the body was cut off after its first part.
fn assert_cut_off(s: &mut std::net::TcpStream) {
    let mut got = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        match s.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                assert!(
                    !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "the server did not close the connection after the failed producer"
                );
                break; // a reset is a close too
            }
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("part 1"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "no final chunk after a failed producer: {text:?}"
    );
}

#[test]
fn a_producer_that_fails_cuts_the_body_off_and_closes() {
    let srv = TestServer::start(app);
    let mut s = srv.connect();
    s.write_all(b"GET /failing-stream HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_cut_off(&mut s);
}

#[test]
fn a_full_queue_answers_one_503_and_closes() {
    let (block_tx, block_rx) = std::sync::mpsc::channel::<()>();
    let block_rx = std::sync::Mutex::new(block_rx);
    let cfg = Config {
        workers: 1,
        queue_depth: 1,
        ..test_config()
    };
    let srv = TestServer::with_config(cfg, move |req: &mut Request| {
        if req.path() == "/block" {
            let _ = block_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
        }
        Response::text("ok")
    });
    // One request holds the worker, one fills the queue.
    let mut held = Reader::new(srv.connect());
    held.send(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(200));
    let mut queued = Reader::new(srv.connect());
    queued.send(b"GET /q HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(200));
    let mut shed = Reader::new(srv.connect());
    shed.send(
        b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\nGET /3 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let first = shed.read_response();
    assert_eq!(first.status, 503);
    assert_eq!(first.header("connection"), Some("close"));
    assert!(first.header("retry-after").is_some());
    assert!(
        shed.read_response_to("GET").is_none(),
        "nothing after a response that said close: {:?}",
        shed.leftover()
    );
    block_tx.send(()).unwrap();
    assert_eq!(held.read_response().status, 200);
    assert_eq!(queued.read_response().status, 200);
}

#[test]
fn a_stray_line_end_after_a_request_is_ignored() {
    let cfg = Config {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(5),
        ..test_config()
    };
    let srv = TestServer::with_config(cfg, app);
    let mut r = Reader::new(srv.connect());
    r.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n\r\n");
    assert_eq!(r.read_response().status, 200);
    // Past the header deadline: an idle connection, not a started request, so no 408.
    std::thread::sleep(Duration::from_millis(800));
    r.send(b"GET /y HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = r.read_response();
    assert_eq!((resp.status, resp.text()), (200, "/y".to_string()));
}

#[test]
fn max_requests_per_connection_closes_after_the_last_one() {
    let cfg = Config {
        max_requests_per_connection: 3,
        ..test_config()
    };
    let srv = TestServer::with_config(cfg, app);
    let mut r = Reader::new(srv.connect());
    // One at a time, then the rest pipelined: only three are ever answered.
    r.send(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n");
    let first = r.read_response();
    assert_eq!(first.header("connection"), None);
    r.send(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\nGET /3 HTTP/1.1\r\nHost: t\r\n\r\nGET /4 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.read_response().text(), "/2");
    let third = r.read_response();
    assert_eq!(third.text(), "/3");
    assert_eq!(third.header("connection"), Some("close"));
    assert!(r.read_response_to("GET").is_none(), "no fourth answer");
}

#[test]
fn small_batches_still_answer_every_pipelined_request_in_order() {
    let cfg = Config {
        max_batch: 2,
        ..test_config()
    };
    let srv = TestServer::with_config(cfg, app);
    let mut r = Reader::new(srv.connect());
    let mut reqs = Vec::new();
    for i in 0..7 {
        reqs.extend_from_slice(format!("GET /p{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    r.send(&reqs);
    for i in 0..7 {
        assert_eq!(r.read_response().text(), format!("/p{i}"));
    }
}
