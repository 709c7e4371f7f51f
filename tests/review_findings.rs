//! Defects found by the review of the several-loops, drain, completions and job queue
//! changes: each test fails on the code as it was merged.
//!
//! With `loops` = 2 a connection's id says which loop holds it (loop 0's are odd, loop
//! 1's even), so a test can put its connections on the loop it needs.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use h1server::{Config, Request, Response};
use support::*;

/// Long deadlines: no stale wheel entry wakes a loop during a test.
fn quiet(loops: usize) -> Config {
    Config {
        loops,
        header_read_timeout: Duration::from_secs(30),
        read_timeout: Duration::from_secs(30),
        write_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..test_config()
    }
}

fn get_id(r: &mut Reader) -> u64 {
    r.send(b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    resp.text().parse().unwrap()
}

/// `n` keep-alive connections held by loop `which` (0 or 1, with two loops); the
/// connections that landed on the other loop are closed.
fn conns_on_loop(server: &TestServer, which: u64, n: usize) -> Vec<Reader> {
    let mut got = Vec::new();
    for _ in 0..400 {
        if got.len() == n {
            return got;
        }
        let mut r = Reader::new(server.connect());
        if get_id(&mut r) % 2 == (1 - which) {
            got.push(r);
        }
    }
    panic!("fewer than {n} connections reached loop {which}");
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |c| c.get())
}

// ---------------------------------------------------------------------------------
// 1. Only loop 0 watches the pool: jobs queued by loop 1 while loop 0 sleeps never get
//    a reserve worker.

#[test]
fn blocked_workers_get_a_reserve_worker_when_only_loop_1_has_work() {
    let hot = cores();
    let gate = Gate::default();
    let g = gate.clone();
    let cfg = Config {
        // One worker per core takes jobs; two more wait in the reserve.
        workers: hot + 2,
        ..quiet(2)
    };
    let server = TestServer::with_config(cfg, move |req: &mut Request| match req.path() {
        "/block" => {
            g.wait(Duration::from_secs(8));
            Response::text("unblocked")
        }
        "/open" => {
            g.open();
            Response::text("opened")
        }
        _ => Response::text(req.conn_id().to_string()),
    });
    let _open = OpenOnDrop(gate.clone());
    let mut on1 = conns_on_loop(&server, 1, hot + 1);
    // Loop 0 has closed the connections it got and sleeps (no deadline due for 10 s).
    std::thread::sleep(Duration::from_millis(300));
    let mut opener = on1.pop().unwrap();
    for r in &mut on1 {
        r.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    // Every running worker is blocked; the next job waits in the queue.
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    opener.send(b"GET /open HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = opener.read_response();
    let took = t.elapsed();
    assert_eq!(resp.text(), "opened");
    // With one loop a reserve worker comes out after 5 ms (STALL).
    assert!(
        took < Duration::from_secs(2),
        "a job queued by loop 1 behind {hot} blocked workers waited {took:?}: no reserve worker was released (only loop 0 watches the pool, and it was asleep)"
    );
    for r in &mut on1 {
        assert_eq!(r.read_response().text(), "unblocked");
    }
}

// ---------------------------------------------------------------------------------
// 2. A pull (or upload piece) that found the queue full is retried only when its own
//    loop hears from a worker: when the other loop's jobs filled the queue, their
//    completions go to that loop, and the stream stops for good.

const PIECE: usize = 64 * 1024;
const PIECES: usize = 256; // 16 MiB

#[test]
fn a_stream_stalled_on_a_queue_filled_by_the_other_loop_resumes() {
    let gate = Gate::default();
    let g = gate.clone();
    let cfg = Config {
        workers: 1,
        queue_depth: 1,
        stream_buffer_bytes: PIECE,
        ..quiet(2)
    };
    let server = TestServer::with_config(cfg, move |req: &mut Request| match req.path() {
        "/big" => Response::stream((0..PIECES).map(|_| vec![b'x'; PIECE])),
        "/block" => {
            g.wait(Duration::from_secs(8));
            Response::text("unblocked")
        }
        "/quick" => Response::text("quick"),
        _ => Response::text(req.conn_id().to_string()),
    });
    let _open = OpenOnDrop(gate.clone());
    let mut s = conns_on_loop(&server, 1, 1).pop().unwrap();
    let mut on0 = conns_on_loop(&server, 0, 2);
    // The stream starts; its client does not read yet, so the loop's buffer fills and no
    // pull is out.
    s.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    // Loop 0 fills the queue: the one worker blocks, one job waits.
    on0[0].send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(150));
    on0[1].send(b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(150));
    // Now the client reads: loop 1 writes what it has and finds the queue full for
    // the next pull.
    let got = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut stream = s.stream.try_clone().unwrap();
    let reader = {
        let (got, done) = (got.clone(), done.clone());
        std::thread::spawn(move || {
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            let mut tail = Vec::new();
            let until = Instant::now() + Duration::from_secs(8);
            while Instant::now() < until {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        got.fetch_add(n as u64, Ordering::Relaxed);
                        tail.extend_from_slice(&buf[..n]);
                        if tail.len() > 16 {
                            tail.drain(..tail.len() - 16);
                        }
                        if tail.ends_with(b"\r\n0\r\n\r\n") {
                            done.store(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    Err(_) => {} // timeout: look again
                }
            }
        })
    };
    // Wait until the reader has taken everything the loop had (no progress for 400 ms).
    let mut last = u64::MAX;
    let mut still_since = Instant::now();
    while done.load(Ordering::Relaxed) == 0 && still_since.elapsed() < Duration::from_millis(400) {
        std::thread::sleep(Duration::from_millis(50));
        let now = got.load(Ordering::Relaxed);
        if now != last {
            last = now;
            still_since = Instant::now();
        }
    }
    let stalled_at = got.load(Ordering::Relaxed);
    // The worker is released: both of loop 0's jobs finish, the queue empties.
    gate.open();
    assert_eq!(on0[0].read_response().text(), "unblocked");
    assert_eq!(on0[1].read_response().text(), "quick");
    reader.join().unwrap();
    assert_eq!(
        done.load(Ordering::Relaxed),
        1,
        "the stream on loop 1 stopped at {} of ~{} bytes (stalled at {stalled_at} while loop 0's jobs held the queue) and never resumed",
        got.load(Ordering::Relaxed),
        PIECES * PIECE
    );
}

// ---------------------------------------------------------------------------------
// 3. At max_connections the drain's accept_all does nothing (accepting is paused), so
//    a connection the kernel completed — a proxy's request already on it — is reset
//    when the listener closes, although the drain closes idle connections a moment later.

#[test]
fn a_connection_waiting_in_the_backlog_at_max_connections_is_served_by_the_drain() {
    let cfg = Config {
        max_connections: 2,
        ..quiet(1)
    };
    let server = TestServer::with_config(cfg, |req: &mut Request| {
        Response::text(req.conn_id().to_string())
    });
    // Two keep-alive connections, used once and now idle: the server is full.
    let mut held: Vec<Reader> = (0..2).map(|_| Reader::new(server.connect())).collect();
    for r in &mut held {
        get_id(r);
    }
    // A third: completed by the kernel, not accepted; its request waits in the socket.
    let mut waiting = Reader::new(server.connect());
    waiting.send(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    waiting
        .stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        waiting.stream.read(&mut byte).is_err(),
        "served beyond max_connections"
    );
    waiting.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    server.handle().shutdown();
    // The drain closes the two idle connections: there is room for the one waiting.
    let mut buf = Vec::new();
    let r = waiting.stream.read_to_end(&mut buf);
    assert!(
        r.is_ok() && buf.starts_with(b"HTTP/1.1 200 "),
        "the request waiting in the backlog at the drain was not answered: {r:?} {:?}",
        String::from_utf8_lossy(&buf)
    );
    drop(held);
    assert!(server.stop().is_ok());
}

// ---------------------------------------------------------------------------------
// 4. `pump_upload` checks `is_full()`, copies the piece, then `try_send`s it with
//    `unreachable!` on failure ("only the loop sends"): with two loops the other one can
//    fill the queue in between, and the loop thread panics.

struct Count(u64);

impl h1server::BodySink for Count {
    fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
        self.0 += piece.len() as u64;
        Ok(())
    }
    fn finish(self: Box<Self>) -> Response {
        Response::text(format!("{}", self.0))
    }
}

const UPLOAD: usize = 16 << 20;

fn upload_once(s: &mut TcpStream, body: &[u8]) -> Result<(), String> {
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .map_err(|e| format!("head: {e}"))?;
    s.write_all(body).map_err(|e| format!("body: {e}"))?;
    let mut buf = [0u8; 512];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(UPLOAD.to_string().as_bytes())
    {
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("EOF after {:?}", String::from_utf8_lossy(&got))),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    if got.starts_with(b"HTTP/1.1 200 ") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&got).into_owned())
    }
}

#[test]
fn upload_pieces_racing_the_other_loops_jobs_do_not_panic_the_loop() {
    let cfg = Config {
        workers: 1,
        queue_depth: 1,
        max_body_bytes: 1024,
        max_upload_bytes: 1 << 30,
        // A large window: the piece copied between the check and the send is large.
        stream_buffer_bytes: 4 << 20,
        ..quiet(2)
    };
    let server = TestServer::with_config(cfg, |req: &mut Request| match req.path() {
        "/upload" => match req.streamed_body_len() {
            Some(_) => Response::read_body(Count(0)),
            None => Response::text("small"),
        },
        "/id" => Response::text(req.conn_id().to_string()),
        _ => Response::text("q"),
    });
    let addr = server.addr;
    let until = Instant::now() + Duration::from_secs(5);
    // Uploads on both loops, reconnecting after a 503 (the queue was full at the head).
    let uploaders: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let body = vec![7u8; UPLOAD];
                let mut ok = 0;
                while Instant::now() < until {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        continue;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    while Instant::now() < until && upload_once(&mut s, &body).is_ok() {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    // Loop 0 (and loop 1, for reconnects) sends jobs as fast as the one worker takes them.
    let hammers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let burst = b"GET /q HTTP/1.1\r\nHost: x\r\n\r\n".repeat(4);
                let mut buf = vec![0u8; 64 * 1024];
                while Instant::now() < until {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        continue;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                    for _ in 0..50 {
                        if s.write_all(&burst).is_err()
                            || matches!(s.read(&mut buf), Ok(0) | Err(_))
                        {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for h in hammers {
        h.join().unwrap();
    }
    let uploads: usize = uploaders.into_iter().map(|u| u.join().unwrap()).sum();
    // Both loops still accept and serve (a loop that panicked dropped its listener).
    let ids: Vec<u64> = (0..40)
        .filter_map(|_| {
            // A 503 (the queue still full) is no answer about the loops: try again.
            (0..50).find_map(|_| {
                let mut r = Reader::new(server.connect());
                r.send(b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n");
                let resp = r.read_response_to("GET")?;
                if resp.status == 503 {
                    std::thread::sleep(Duration::from_millis(20));
                    return None;
                }
                resp.text().parse().ok()
            })
        })
        .collect();
    let odd = ids.iter().filter(|id| *id % 2 == 1).count();
    assert!(
        odd > 0 && odd < ids.len(),
        "after {uploads} uploads raced loop 0's jobs, only one loop still serves ({odd} of 40 on loop 0): an event loop panicked"
    );
    assert!(server.stop().is_ok(), "run failed: loop 0 panicked");
}

// ---------------------------------------------------------------------------------
// 5. Only loop 0 reports the queue depth gauge, read on its own turns: while it sleeps,
//    jobs queued by loop 1 do not show.

#[test]
fn the_queue_depth_gauge_shows_jobs_queued_by_loop_1_while_loop_0_sleeps() {
    let gate = Gate::default();
    let g = gate.clone();
    let cfg = Config {
        workers: 1,
        ..quiet(2)
    };
    let server = TestServer::with_config(cfg, move |req: &mut Request| match req.path() {
        "/block" => {
            g.wait(Duration::from_secs(8));
            Response::text("unblocked")
        }
        _ => Response::text(req.conn_id().to_string()),
    });
    let _open = OpenOnDrop(gate.clone());
    let mut on1 = conns_on_loop(&server, 1, 4);
    std::thread::sleep(Duration::from_millis(300));
    for r in &mut on1 {
        r.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    // One runs on the only worker, three wait.
    let seen = wait_until(Duration::from_secs(2), || {
        server.handle().telemetry().snapshot().queue_depth == 3
    });
    let depth = server.handle().telemetry().snapshot().queue_depth;
    gate.open();
    for r in &mut on1 {
        assert_eq!(r.read_response().text(), "unblocked");
    }
    assert!(
        seen,
        "3 jobs waited in the queue for 2 s; the gauge said {depth}"
    );
}

// ---------------------------------------------------------------------------------
// 6. `max_connections` is checked (`live >= max`) and counted (`fetch_add` in
//    `add_conn`) in two steps: two loops accepting at the same moment both pass the check.

#[test]
fn max_connections_holds_when_two_loops_accept_at_once() {
    let inflight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (i, m) = (inflight.clone(), most.clone());
    let cfg = Config {
        max_connections: 1,
        timer_tick: Duration::from_millis(1),
        ..quiet(2)
    };
    let server = TestServer::with_config(cfg, move |_: &mut Request| {
        let now = i.fetch_add(1, Ordering::SeqCst) + 1;
        m.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        i.fetch_sub(1, Ordering::SeqCst);
        Response::text("ok")
    });
    let addr = server.addr;
    let until = Instant::now() + Duration::from_secs(3);
    let mut trials = 0;
    while Instant::now() < until && most.load(Ordering::SeqCst) < 2 {
        trials += 1;
        let start = Arc::new(std::sync::Barrier::new(2));
        let clients: Vec<_> = (0..2)
            .map(|_| {
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    let mut buf = Vec::new();
                    let _ = s.read_to_end(&mut buf);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "two connections were served at once with max_connections 1 (trial {trials})"
    );
}
