//! `Server::from_listener` with several event loops: the caller's one listening socket
//! must spread its connections over every loop, as `Server::bind`'s `SO_REUSEPORT`
//! listeners do, without giving up what the loops promise (a connection never moves,
//! `max_connections` holds exactly, a stop answers or refuses every connection). Which loop
//! holds a connection is read from its id: loop `i` of `n` gives ids `i + 1`, `i + 1 + n`…

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use h1server::{Config, Request, Response, Server};
use support::*;

const LOOPS: usize = 4;
const CONNS: usize = 80;
/// Nine tenths of a fair share: each loop must get at least this many of `CONNS` (the
/// loops are handed connections in turn, so each gets its share exactly; `main`, where
/// the first loop to wake kept what it accepted, gave e.g. [29, 25, 18, 8], [0, 80, 0, 0]).
const FLOOR: usize = CONNS / LOOPS * 9 / 10;

fn loops(n: usize) -> Config {
    Config {
        loops: n,
        workers: 4,
        ..test_config()
    }
}

fn shared_listener_server(cfg: Config, app: impl h1server::Handler) -> TestServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    TestServer::with_server(Server::from_listener(listener, cfg).unwrap(), app)
}

fn loop_of(id: u64, n: usize) -> usize {
    ((id - 1) % n as u64) as usize
}

fn id_app(req: &mut Request) -> Response {
    Response::text(req.conn_id().to_string())
}

fn get_id(r: &mut Reader) -> u64 {
    r.send(b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    resp.text().parse().unwrap()
}

/// Asks each held connection its id twice (it must not move) and counts them per loop.
fn per_loop(conns: &mut [Reader]) -> Vec<usize> {
    let mut count = vec![0; LOOPS];
    let mut ids = HashSet::new();
    for r in conns.iter_mut() {
        let id = get_id(r);
        assert_eq!(get_id(r), id, "a connection moved between loops");
        assert!(ids.insert(id), "id {id} given twice");
        count[loop_of(id, LOOPS)] += 1;
    }
    count
}

/// One client after another, each served before the next connects (the loops are idle
/// at every connect: whichever wakes first would take them all), each kept open.
#[test]
fn from_listener_spreads_one_connection_after_another_over_every_loop() {
    let server = shared_listener_server(loops(LOOPS), id_app);
    let mut held = Vec::new();
    let mut count = vec![0; LOOPS];
    for _ in 0..CONNS {
        let mut r = Reader::new(server.connect());
        count[loop_of(get_id(&mut r), LOOPS)] += 1;
        held.push(r);
    }
    assert!(
        count.iter().all(|&c| c >= FLOOR),
        "connections per loop {count:?}: each loop should hold at least {FLOOR}"
    );
    assert_eq!(per_loop(&mut held), count);
    drop(held);
    assert!(server.stop().is_ok());
}

/// A burst: every client connects at once (the accept queue fills before any loop has
/// woken), then each asks which loop it is on.
#[test]
fn from_listener_spreads_a_burst_of_connections_over_every_loop() {
    let server = shared_listener_server(loops(LOOPS), id_app);
    let addr = server.addr;
    let start = Arc::new(Barrier::new(CONNS));
    let clients: Vec<_> = (0..CONNS)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                connect(addr)
            })
        })
        .collect();
    let mut held: Vec<Reader> = clients
        .into_iter()
        .map(|c| Reader::new(c.join().unwrap()))
        .collect();
    let count = per_loop(&mut held);
    assert!(
        count.iter().all(|&c| c >= FLOOR),
        "connections per loop {count:?}: each loop should hold at least {FLOOR}"
    );
    let snap = server.handle().telemetry().snapshot();
    assert_eq!(snap.accepted, CONNS as u64);
    assert_eq!(snap.open, CONNS as u64);
    drop(held);
    assert!(server.stop().is_ok());
}

/// `max_connections` is exact however the shared socket's connections are handed out:
/// with three places and twenty clients whose requests are held, three handlers run,
/// never a fourth; every client is answered once the gate opens.
#[test]
fn max_connections_holds_exactly_with_a_shared_listener_on_four_loops() {
    let cfg = Config {
        max_connections: 3,
        workers: 8,
        ..loops(LOOPS)
    };
    let gate = Gate::default();
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let app = {
        let (gate, now, most) = (gate.clone(), now.clone(), most.clone());
        move |req: &mut Request| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n, Ordering::SeqCst);
            gate.wait(IO_TIMEOUT);
            now.fetch_sub(1, Ordering::SeqCst);
            Response::text(req.conn_id().to_string())
        }
    };
    let server = shared_listener_server(cfg, app);
    let _open = OpenOnDrop(gate.clone());
    let mut conns: Vec<Reader> = (0..20)
        .map(|_| {
            let mut r = Reader::new(server.connect());
            r.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            r
        })
        .collect();
    assert!(wait_until(IO_TIMEOUT, || now.load(Ordering::SeqCst) == 3));
    // Long enough for a fourth to pass the gate if the count let it.
    assert!(!wait_until(Duration::from_millis(300), || {
        now.load(Ordering::SeqCst) > 3
    }));
    assert_eq!(server.handle().telemetry().snapshot().open, 3);
    gate.open();
    for r in &mut conns {
        let resp = r.read_response();
        assert_eq!(resp.status, 200, "{resp:?}");
    }
    assert_eq!(most.load(Ordering::SeqCst), 3);
    assert!(wait_until(IO_TIMEOUT, || {
        server.handle().telemetry().snapshot().open == 0
    }));
    assert!(server.stop().is_ok());
}

/// Clients connect and send a request as fast as they can while the server is stopped
/// from code: each connection is refused, or its request is answered in full — never
/// accepted and then reset or closed unanswered (a connection handed from the loop that
/// accepted it to another as that one stops included).
#[test]
fn a_stop_racing_new_connections_on_a_shared_listener_leaves_no_request_unanswered() {
    for round in 0..3 {
        let server = shared_listener_server(loops(LOOPS), id_app);
        let addr = server.addr;
        let served = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..4)
            .map(|_| racing_client(addr, served.clone()))
            .collect();
        assert!(wait_until(IO_TIMEOUT, || served.load(Ordering::SeqCst) >= 50));
        let r = server.stop();
        for c in clients {
            if let Err(e) = c.join().unwrap() {
                panic!("round {round}: {e}");
            }
        }
        assert!(r.is_ok(), "{r:?}");
    }
}
