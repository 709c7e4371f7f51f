//! Several event loops (`loops`, `H1_LOOPS`): each accepts on its own listener
//! (`SO_REUSEPORT`) or its share of one (`Server::from_listener`), owns its connections,
//! and hands work to the one worker pool; `max_connections`, the drain, signals and the
//! telemetry hold across them. A handler that answers its connection's id shows which loop
//! holds it: with `loops` = 2, loop 0's ids are odd and loop 1's even.

mod support;

use std::collections::HashSet;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use h1server::{Config, Request, Response, Server};
use support::*;

fn two_loops() -> Config {
    Config {
        loops: 2,
        ..test_config()
    }
}

fn conn_id_app(req: &mut Request) -> Response {
    if req.path() == "/slow" {
        std::thread::sleep(Duration::from_millis(400));
    }
    Response::text(req.conn_id().to_string())
}

fn get_id(r: &mut Reader) -> u64 {
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    resp.text().parse().unwrap()
}

#[test]
fn two_loops_share_the_connections_the_workers_and_the_counters() {
    let server = TestServer::with_config(two_loops(), conn_id_app);
    let mut conns: Vec<Reader> = (0..40).map(|_| Reader::new(server.connect())).collect();
    let mut ids = Vec::new();
    for r in &mut conns {
        let id = get_id(r);
        // Keep-alive: the same connection, the same loop, the same id.
        assert_eq!(get_id(r), id);
        ids.push(id);
    }
    let unique: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        40,
        "connection ids are unique across loops: {ids:?}"
    );
    let odd = ids.iter().filter(|id| *id % 2 == 1).count();
    // The kernel hashes each connection's port to a listener: 40 on one loop alone would
    // be a 1-in-2^39 chance, or the second loop not accepting.
    assert!(
        odd > 0 && odd < 40,
        "every connection went to one loop ({odd} of 40 on loop 0): {ids:?}"
    );
    let snap = server.handle().telemetry().snapshot();
    assert_eq!(snap.accepted, 40, "accepted, summed over both loops");
    assert_eq!(snap.open, 40);
    let requests: u64 = snap.requests.iter().map(|r| r.count).sum();
    assert_eq!(requests, 80);
    drop(conns);
    assert!(wait_until(IO_TIMEOUT, || server
        .handle()
        .telemetry()
        .snapshot()
        .open
        == 0));
    assert!(server.stop().is_ok());
}

#[test]
fn max_connections_counts_the_connections_of_every_loop() {
    let cfg = Config {
        max_connections: 4,
        ..two_loops()
    };
    let server = TestServer::with_config(cfg, conn_id_app);
    let mut held: Vec<Reader> = (0..4).map(|_| Reader::new(server.connect())).collect();
    let ids: Vec<u64> = held.iter_mut().map(get_id).collect();
    // A fifth connection is made by the kernel (the listen backlog) but not accepted by
    // either loop: its request waits, whichever loop's listener it landed on.
    let mut fifth = Reader::new(server.connect());
    fifth.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    fifth
        .stream
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = std::io::Read::read(&mut fifth.stream, &mut byte);
    assert!(
        early.is_err(),
        "a fifth connection was served with max_connections 4 over two loops (held: {ids:?})"
    );
    fifth.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    // One of the four closes — on either loop — and the fifth is served.
    drop(held.remove(0));
    let resp = fifth.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(server.stop().is_ok());
}

#[test]
fn the_drain_covers_every_loop() {
    let server = TestServer::with_config(two_loops(), conn_id_app);
    // In-flight requests until both loops have one.
    let mut busy: Vec<Reader> = Vec::new();
    let mut loops_seen = HashSet::new();
    while loops_seen.len() < 2 {
        assert!(busy.len() < 64, "no connection reached the second loop");
        let mut r = Reader::new(server.connect());
        let id = get_id(&mut r);
        loops_seen.insert(id % 2);
        busy.push(r);
    }
    for r in &mut busy {
        r.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    std::thread::sleep(Duration::from_millis(100));
    server.handle().shutdown();
    for r in &mut busy {
        let resp = r.read_response();
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
        assert!(r.is_closed());
    }
    // Both listeners are closed: nothing accepts any more.
    assert!(wait_until(IO_TIMEOUT, || (0..20).all(|_| {
        TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).is_err()
    })));
    assert!(server.stop().is_ok());
}

#[test]
fn from_listener_gives_every_loop_the_one_socket() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::from_listener(listener, two_loops()).unwrap();
    assert_eq!(server.local_addr(), addr);
    let server = TestServer::with_server(server, conn_id_app);
    let ids: HashSet<u64> = (0..20)
        .map(|_| get_id(&mut Reader::new(server.connect())))
        .collect();
    assert_eq!(ids.len(), 20);
    assert_eq!(server.handle().telemetry().snapshot().accepted, 20);
    assert!(server.stop().is_ok());
}

#[test]
fn sigterm_drains_every_loop_and_hello_exits_0() {
    let (mut child, addr) = spawn_hello(&[("H1_LOOPS", "2")]);
    let mut slow: Vec<Reader> = Vec::new();
    for _ in 0..8 {
        let mut r = Reader::new(connect(addr));
        r.send(b"GET /sleep?ms=600 HTTP/1.1\r\nHost: x\r\n\r\n");
        slow.push(r);
    }
    std::thread::sleep(Duration::from_millis(200));
    let ok = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    for r in &mut slow {
        let resp = r.read_response();
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(resp.text(), "slept 600 ms\n");
    }
    let mut status = None;
    assert!(wait_until(IO_TIMEOUT, || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    }));
    assert_eq!(status.unwrap().code(), Some(0));
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err();
    assert!(refused, "{addr} still accepts after the exit");
}

#[test]
fn loops_out_of_range_is_a_config_error_naming_the_field() {
    for loops in [0, 65] {
        let cfg = Config {
            loops,
            ..test_config()
        };
        match Server::bind(cfg) {
            Err(h1server::BindError::Config(e)) => assert_eq!(e.source, "loops"),
            other => panic!("loops = {loops}: {:?}", other.err()),
        }
    }
}
