//! Issue #7 point 6: a proxied request holds no worker while it waits. The proxy runs with
//! 2 workers in front of an upstream that answers every request after 1 s; 200 requests
//! at once all complete together (a worker per waiting request would take 100 s), a
//! plain request to the proxy is answered while they wait, and no worker is busy
//! meanwhile. Also: the loop's upstream pool is reused, and a pooled connection the
//! upstream closed is replaced without the client seeing it.
#![cfg(feature = "proxy")]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use h1server::proxy::ReverseProxy;
use h1server::{Config, Request, Response, Router};
use support::*;

/// An upstream that answers each request 1 s after it arrived, holding no thread per
/// request: h1server itself with a channel body fed by one timer thread.
fn slow_upstream() -> TestServer {
    let mut router = Router::new();
    router.get("/slow/{n}", |req: &mut Request| {
        let n = req.param("n").unwrap_or("?").to_string();
        let (resp, tx) = Response::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            let _ = tx.send(format!("slow {n}\n"));
        });
        resp
    });
    let cfg = Config {
        workers: 4,
        ..test_config()
    };
    TestServer::with_config(cfg, router)
}

fn proxy_config() -> Config {
    Config {
        workers: 2,
        ..test_config()
    }
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = roundtrip(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    );
    (r.status, r.text())
}

#[test]
fn two_hundred_waiting_requests_hold_no_worker() {
    const N: usize = 200;
    let up = slow_upstream();
    let proxy = ReverseProxy::builder()
        .route("/slow", [format!("http://{}", up.addr)])
        .build()
        .unwrap();
    let mut router = Router::new();
    router.get("/plain", |_: &mut Request| Response::text("plain\n"));
    router.any("/slow/{rest...}", proxy);
    let gw = TestServer::with_config(proxy_config(), router);
    let addr = gw.addr;
    let start = Arc::new(Barrier::new(N + 1));
    let t0 = Instant::now();
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut s = connect(addr);
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                start.wait();
                s.write_all(format!("GET /slow/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                    .unwrap();
                let mut r = Reader::new(s);
                let resp = r.read_response();
                (resp.status, resp.text(), Instant::now())
            })
        })
        .collect();
    start.wait();
    // While the 200 wait for the upstream, the proxy answers a plain request, and none of
    // its workers is busy.
    std::thread::sleep(Duration::from_millis(300));
    let tel = gw.handle().telemetry();
    let busy = tel.snapshot().busy_workers;
    let (status, body) = get(addr, "/plain");
    let plain_at = Instant::now();
    assert_eq!((status, body.as_str()), (200, "plain\n"));
    let mut first_slow = None::<Instant>;
    for (i, c) in clients.into_iter().enumerate() {
        let (status, text, at) = c.join().unwrap();
        assert_eq!(status, 200, "request {i}: {text}");
        assert_eq!(text, format!("slow {i}\n"));
        first_slow = Some(first_slow.map_or(at, |f| f.min(at)));
    }
    let all = t0.elapsed();
    assert_eq!(
        busy, 0,
        "a worker was busy while every request waited upstream"
    );
    assert!(
        plain_at < first_slow.unwrap(),
        "the plain request was answered only after the slow ones"
    );
    // Each waits ~1 s upstream; with a worker held per waiting request, 2 workers would
    // need 100 s. The bound is loose on purpose (a slow CI machine), not a speed claim.
    assert!(
        all < Duration::from_secs(20),
        "{N} requests took {all:?}: they waited for workers"
    );
    eprintln!("{N} proxied requests to a 1 s upstream, 2 workers: all done in {all:?}");
}

/// An upstream on a raw listener: answers each request on a connection with a short
/// body, keeps the connection open for `keep` requests and then closes it (as an
/// upstream whose keep-alive ran out does), and counts connections.
fn counting_upstream(keep: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let counted = conns.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut b = [0u8; 4096];
                let mut served = 0;
                while served < keep {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                    while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..i + 4);
                        served += 1;
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
                    }
                }
                // Keep-alive over: closed with nothing said.
            });
        }
    });
    (addr, conns)
}

#[test]
fn the_loop_reuses_upstream_connections_and_replaces_a_closed_one_unseen() {
    let (addr, conns) = counting_upstream(3);
    let proxy = ReverseProxy::builder()
        .route("/", [format!("http://{addr}")])
        .build()
        .unwrap();
    let gw = TestServer::with_config(proxy_config(), proxy);
    let mut r = Reader::new(connect(gw.addr));
    for i in 0..7 {
        r.send(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let resp = r.read_response();
        assert_eq!(
            (resp.status, resp.text().as_str()),
            (200, "ok\n"),
            "request {i}"
        );
        // Let the upstream's close (after its third answer) reach the proxy's pool.
        std::thread::sleep(Duration::from_millis(20));
    }
    // 3 answers per upstream connection: 7 requests need 3 connections, each one opened
    // only when the pooled one was found closed.
    assert_eq!(conns.load(Ordering::SeqCst), 3);
}

#[test]
fn an_upstream_switching_protocols_is_a_502_and_bodies_reach_every_attempt() {
    // The first candidate refuses; the second gets the whole body after its own head.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let live = l.local_addr().unwrap();
    let seen = std::thread::spawn(move || {
        let mut got = Vec::new();
        for round in 0..2 {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = Vec::new();
            let mut b = [0u8; 4096];
            let done = |buf: &[u8]| {
                buf.ends_with(b"body-bytes") || (round == 1 && buf.ends_with(b"\r\n\r\n"))
            };
            while !done(&buf) {
                let n = s.read(&mut b).unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&b[..n]);
            }
            got.push(String::from_utf8_lossy(&buf).into_owned());
            let answer: &[u8] = if round == 0 {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            } else {
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"
            };
            s.write_all(answer).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        got
    });
    let proxy = ReverseProxy::builder()
        .route("/", [format!("http://{dead}"), format!("http://{live}")])
        .build()
        .unwrap();
    let gw = TestServer::with_config(proxy_config(), proxy);
    let r = roundtrip(
        gw.addr,
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nbody-bytes",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let r = roundtrip(
        gw.addr,
        b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 502, "a 101 from an upstream is not relayed");
    let got = seen.join().unwrap();
    assert!(got[0].starts_with("POST /p HTTP/1.1\r\n"), "{}", got[0]);
    assert!(got[0].contains(&format!("Host: {live}")), "{}", got[0]);
    assert!(got[0].ends_with("\r\n\r\nbody-bytes"), "{}", got[0]);
}
