//! A review of the multi-loop mode (`loops`): what N clients doing the worst thing can
//! take from a server with 2–4 event loops. Which loop holds a connection is read from
//! its id: loop `i` of `n` gives ids `i + 1`, `i + 1 + n`, … (`conn_id % n == (i + 1) % n`).

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use h1server::{Config, Request, Response, Server};
use support::*;

fn loops(n: usize) -> Config {
    Config {
        loops: n,
        ..test_config()
    }
}

/// The loop index of a connection id on a server with `n` loops.
fn loop_of(id: u64, n: usize) -> usize {
    ((id - 1) % n as u64) as usize
}

fn get_id(r: &mut Reader) -> u64 {
    r.send(b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    resp.text().parse().unwrap()
}

fn id_app(req: &mut Request) -> Response {
    Response::text(req.conn_id().to_string())
}

/// One sample of a Prometheus text body (`name{labels} value`, labels as written).
#[cfg(feature = "metrics")]
fn sample(body: &str, name_and_labels: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name_and_labels} in:\n{body}"))
        .trim()
        .parse()
        .unwrap()
}

#[cfg(feature = "metrics")]
fn sum_of(body: &str, name: &str) -> u64 {
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| l[name.len()..].starts_with(['{', ' ']))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
#[cfg(feature = "metrics")]
fn metrics_on_four_loops_add_up_exactly() {
    let server = Server::bind(loops(4)).unwrap();
    let tel = server.telemetry();
    let app = move |req: &mut Request| {
        if req.path() == "/metrics" {
            h1server::metrics::response(&tel)
        } else {
            Response::text(req.conn_id().to_string())
        }
    };
    let server = TestServer::with_server(server, app);
    let mut conns: Vec<Reader> = (0..24).map(|_| Reader::new(server.connect())).collect();
    let mut seen = HashSet::new();
    for r in &mut conns {
        for _ in 0..3 {
            seen.insert(loop_of(get_id(r), 4));
        }
    }
    assert!(seen.len() > 1, "every connection on one loop: {seen:?}");
    // A scrape on a connection of its own (the 25th): 72 requests answered before it.
    let body = roundtrip(server.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").text();
    assert_eq!(sample(&body, "h1_connections_accepted_total"), 25);
    assert_eq!(sample(&body, "h1_connections_open"), 25);
    assert_eq!(sum_of(&body, "h1_requests_total"), 72, "{body}");
    assert_eq!(sum_of(&body, "h1_connections_closed_total"), 0);
    drop(conns);
    assert!(wait_until(IO_TIMEOUT, || {
        server.handle().telemetry().snapshot().open == 0
    }));
    let body = roundtrip(server.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").text();
    assert_eq!(sample(&body, "h1_connections_accepted_total"), 26);
    assert_eq!(sample(&body, "h1_connections_open"), 1);
    assert_eq!(sum_of(&body, "h1_connections_closed_total"), 25);
    assert_eq!(sum_of(&body, "h1_requests_total"), 73);
    assert!(server.stop().is_ok());
}

#[test]
fn max_connections_holds_exactly_across_four_loops_under_a_burst() {
    let cfg = Config {
        max_connections: 3,
        workers: 8,
        ..loops(4)
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
    let server = TestServer::with_config(cfg, app);
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
    assert!(server.stop().is_ok());
}

#[test]
fn the_drain_on_four_loops_answers_every_request_in_flight_and_join_returns_ok() {
    let gate = Gate::default();
    let started = Arc::new(AtomicUsize::new(0));
    let app = {
        let (gate, started) = (gate.clone(), started.clone());
        move |req: &mut Request| {
            if req.path() == "/hold" {
                started.fetch_add(1, Ordering::SeqCst);
                gate.wait(IO_TIMEOUT);
            }
            Response::text(req.conn_id().to_string())
        }
    };
    let cfg = Config {
        workers: 16,
        ..loops(4)
    };
    let server = TestServer::with_config(cfg, app);
    let _open = OpenOnDrop(gate.clone());
    // One connection on each loop (the others are closed): as many held requests as
    // loops, well within the 16 workers however many connections it took to find them.
    let mut busy: Vec<Reader> = Vec::new();
    let mut seen = HashSet::new();
    for _ in 0..64 {
        if seen.len() == 4 {
            break;
        }
        let mut r = Reader::new(server.connect());
        if seen.insert(loop_of(get_id(&mut r), 4)) {
            busy.push(r);
        }
    }
    assert_eq!(seen.len(), 4, "no connection reached every loop: {seen:?}");
    for r in &mut busy {
        r.send(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    let n = busy.len();
    assert!(wait_until(IO_TIMEOUT, || started.load(Ordering::SeqCst) == n));
    server.handle().shutdown();
    // Every loop has begun its drain (the listeners close) while the requests are held.
    assert!(wait_until(IO_TIMEOUT, || {
        TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)).is_err()
    }));
    gate.open();
    for r in &mut busy {
        let resp = r.read_response();
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
        assert!(r.is_closed());
    }
    assert!(server.stop().is_ok());
}

/// Clients connect and send a request as fast as they can while the server is stopped
/// from code: each connection is refused, or its request is answered in full — never
/// accepted by the kernel and then reset or closed unanswered.
#[test]
fn a_stop_from_code_racing_new_connections_on_four_loops_leaves_no_request_unanswered() {
    for round in 0..3 {
        let server = TestServer::with_config(loops(4), id_app);
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

#[test]
fn idle_timeout_and_max_requests_hold_on_every_loop() {
    let cfg = Config {
        idle_timeout: Duration::from_millis(300),
        max_requests_per_connection: 2,
        ..loops(3)
    };
    let server = TestServer::with_config(cfg, id_app);
    let mut conns: Vec<Reader> = (0..12).map(|_| Reader::new(server.connect())).collect();
    let mut seen = HashSet::new();
    for r in &mut conns {
        seen.insert(loop_of(get_id(r), 3));
    }
    assert!(seen.len() > 1, "{seen:?}");
    // max_requests_per_connection: the second answer says close, on every loop.
    let mut second: Vec<Reader> = (0..12).map(|_| Reader::new(server.connect())).collect();
    for r in &mut second {
        get_id(r);
        r.send(b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n");
        let resp = r.read_response();
        assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
        assert!(r.is_closed());
    }
    // The idle ones close at idle_timeout, whichever loop holds them.
    for r in &mut conns {
        assert!(r.is_closed());
    }
    let snap = server.handle().telemetry().snapshot();
    let idle = snap.deadlines.iter().find(|d| d.0 == "idle").unwrap().1;
    assert_eq!(idle, 12, "{:?}", snap.deadlines);
    assert!(server.stop().is_ok());
}

/// `from_listener` with four loops: the one socket's accept queue is shared, every
/// connection is served once with an id of its own, and the stop drains and returns. (How
/// the connections spread over the loops: `tests/spread_review.rs`.)
#[test]
fn from_listener_on_four_loops_serves_each_connection_once_and_stops() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = Server::from_listener(listener, loops(4)).unwrap();
    let server = TestServer::with_server(server, id_app);
    let mut held: Vec<Reader> = (0..40).map(|_| Reader::new(server.connect())).collect();
    let mut ids = HashSet::new();
    for r in &mut held {
        let id = get_id(r);
        assert_eq!(get_id(r), id, "a connection moved between loops");
        ids.insert(id);
    }
    for _ in 0..20 {
        ids.insert(get_id(&mut Reader::new(server.connect())));
    }
    assert_eq!(ids.len(), 60);
    let snap = server.handle().telemetry().snapshot();
    assert_eq!(snap.accepted, 60);
    drop(held);
    assert!(server.stop().is_ok());
}

/// A second SIGTERM during a drain with requests in flight on several loops stops every
/// loop at once: `run` returns the forced stop (hello exits 1 for it) without waiting
/// for the handlers (they sleep far longer than the test waits), and no slow request is
/// answered.
#[test]
fn a_second_sigterm_stops_every_loop_at_once() {
    let (mut child, addr) = spawn_hello(&[("H1_LOOPS", "4"), ("H1_WORKERS", "16")]);
    let mut slow: Vec<Reader> = Vec::new();
    for _ in 0..16 {
        let mut r = Reader::new(connect(addr));
        r.send(b"GET /sleep?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n");
        slow.push(r);
    }
    let term = |pid: u32| {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    std::thread::sleep(Duration::from_millis(300));
    term(child.0.id());
    // The drain has begun (the listeners close) before the second signal.
    assert!(wait_until(IO_TIMEOUT, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
    }));
    term(child.0.id());
    let mut status = None;
    assert!(wait_until(IO_TIMEOUT, || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    }));
    assert_eq!(status.unwrap().code(), Some(1));
    for r in &mut slow {
        assert!(r.read_response_to("GET").is_none());
    }
}

/// A client socket bound to 127.0.0.1:`port` before it connects to `addr` (the kernel's
/// `SO_REUSEPORT` hash of the same four-tuple picks the same listener every time).
#[allow(unsafe_code)]
fn connect_from(addr: std::net::SocketAddr, port: u16) -> Option<TcpStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: socket(2) takes integers; a non-negative result is a descriptor we own.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0);
    // SAFETY: `fd` is ours and owned by the TcpStream from here on.
    let s = unsafe { TcpStream::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: the option value is a live c_int and its size is passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let sin = |ip: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let local = sin([127, 0, 0, 1], port);
    // SAFETY: `local` is a sockaddr_in of `len` bytes.
    if unsafe { libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) } != 0 {
        return None;
    }
    let remote = sin([127, 0, 0, 1], addr.port());
    // SAFETY: as above.
    if unsafe { libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) } != 0 {
        return None;
    }
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    Some(s)
}

/// One keep-alive request on `s`; its loop, from the connection id; then a reset, so
/// neither side keeps the four-tuple in TIME_WAIT and the port can connect again.
fn loop_by_port(s: TcpStream, n: usize) -> Option<usize> {
    let mut r = Reader::new(s);
    r.stream
        .write_all(b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let resp = r.read_response_to("GET")?;
    reset_on_close(&r.stream);
    Some(loop_of(resp.text().parse().ok()?, n))
}

/// At `max_connections` every loop pauses accepting, and a connection that closes frees a
/// place. A loop took the place its own close freed at once, from its own backlog; a loop
/// with no connection closing found a place only at a tick when the others' backlogs were
/// empty. So while clients kept one loop's backlog full, the other loop's was not served
/// at all (one loop's accept queue is served in order; with several, nothing ordered
/// them). Here the clients that keep loop 1's backlog full use source ports the kernel
/// hashes to loop 1, and the 4 patient clients ports it hashes to loop 0: before the fix
/// all 4 still waited after loop 1 had served 218–265 others. Freed places now go to the
/// waiting loops in turn.
#[test]
fn at_max_connections_a_backlog_on_another_loop_is_served_while_one_loop_churns() {
    let cfg = Config {
        max_connections: 1,
        workers: 4,
        ..loops(2)
    };
    let server = TestServer::with_config(cfg, id_app);
    let addr = server.addr;
    // Which loop each source port lands on.
    let base = 20000 + (std::process::id() % 20000) as u16;
    let (mut on0, mut on1) = (Vec::new(), Vec::new());
    for port in base..base + 400 {
        let Some(s) = connect_from(addr, port) else {
            continue;
        };
        match loop_by_port(s, 2) {
            Some(0) => on0.push(port),
            Some(_) => on1.push(port),
            None => {}
        }
        if on0.len() >= 4 && on1.len() >= 24 {
            break;
        }
    }
    assert!(on0.len() >= 4 && on1.len() >= 24, "{on0:?} {on1:?}");
    assert!(wait_until(IO_TIMEOUT, || server
        .handle()
        .telemetry()
        .snapshot()
        .open
        == 0));
    // The place is held on loop 1; 4 clients queue on loop 0's backlog.
    let holder = connect_from(addr, on1[0]).unwrap();
    let mut holder = Reader::new(holder);
    assert_eq!(loop_of(get_id(&mut holder), 2), 1);
    let patient: Vec<_> = on0[..4]
        .iter()
        .map(|&p| {
            let mut r = Reader::new(connect_from(addr, p).unwrap());
            r.send(b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n");
            std::thread::spawn(move || {
                let resp = r.read_response_to("GET");
                reset_on_close(&r.stream);
                resp.map(|r| r.status)
            })
        })
        .collect();
    // 6 clients queue on loop 1's backlog, each connecting again once answered.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (answered, connected) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let churn: Vec<_> = on1[1..]
        .chunks(on1[1..].len() / 6)
        .take(6)
        .map(|ports| {
            let (ports, stop) = (ports.to_vec(), stop.clone());
            let (answered, connected) = (answered.clone(), connected.clone());
            std::thread::spawn(move || {
                for &p in ports.iter().cycle() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Some(s) = connect_from(addr, p) else {
                        continue;
                    };
                    connected.fetch_add(1, Ordering::SeqCst);
                    if loop_by_port(s, 2).is_some() {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    // Every churning client has a connection in loop 1's backlog.
    assert!(wait_until(IO_TIMEOUT, || connected.load(Ordering::SeqCst) >= 6));
    drop(holder);
    // One queue would serve the 4 first; here they get their turn before loop 1 has
    // served 200 more (counted, not timed).
    let served_first = wait_until(Duration::from_secs(30), || {
        patient.iter().all(|t| t.is_finished()) || answered.load(Ordering::SeqCst) >= 200
    });
    let waiting = patient.iter().filter(|t| !t.is_finished()).count();
    let n = answered.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    for t in churn {
        t.join().unwrap();
    }
    for t in patient {
        assert_eq!(t.join().unwrap(), Some(200));
    }
    assert!(served_first);
    assert_eq!(
        waiting, 0,
        "{waiting} of 4 clients on loop 0's backlog still waiting after loop 1 served {n}"
    );
    assert!(server.stop().is_ok());
}
