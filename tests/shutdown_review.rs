//! Review of the stop: stopping a server from code while connections do the worst thing
//! (a streamed answer nobody reads, WebSockets silent and flooding, a one-byte-a-second
//! upload, a proxy exchange with an upstream that never answers, half-done TLS
//! handshakes, a handler blocked for good), with one loop and with two; the stop API
//! called twice, from several threads, before serving, after the stop and from a handler;
//! two servers in one process; `from_listener` with a backlog; and what is left once
//! `join` returns (threads, descriptors, the port).
//!
//! Tests that count the process's threads or descriptors, or send it a signal, run in a
//! child process of their own (this binary, re-run with `--exact`), so the other tests of
//! this file cannot disturb their counts.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use h1server::{Config, Request, Response, Router, Server, ServerHandle};
use support::*;

/// The stop must end by `shutdown_timeout` + 1 s (DESIGN.md "Graceful drain"): this adds
/// slack for a loaded 2-core machine on top of that bound.
const SLACK: Duration = Duration::from_secs(3);

/// Runs the test named `name` alone in a child process (this test binary, `--exact`),
/// so that it can count the process's threads and descriptors or signal itself.
/// Returns true in the child: the caller then runs the test's body.
fn in_child(name: &str) -> bool {
    if std::env::var("H1_STOP_REVIEW_CHILD").as_deref() == Ok(name) {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = ChildGuard(
        std::process::Command::new(exe)
            .args([name, "--exact", "--test-threads=1", "--nocapture"])
            .env("H1_STOP_REVIEW_CHILD", name)
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{name}: the child hangs"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.success(),
        "{name} failed in its child process: {status}"
    );
    false
}

/// Threads of this process now.
#[cfg(feature = "middleware")]
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The names of this process's threads (for a failure message).
#[cfg(feature = "middleware")]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

/// Open descriptors of this process now.
#[cfg(feature = "middleware")]
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Stops `h` and returns what `join` gave and how long it took from the call.
fn stop_timed(h: ServerHandle) -> (std::io::Result<()>, Duration) {
    let t0 = Instant::now();
    h.shutdown();
    let r = h.join();
    (r, t0.elapsed())
}

/// A config for the stop tests: a short drain deadline, header deadlines that would
/// outlast it.
fn stop_config(loops: usize) -> Config {
    Config {
        loops,
        workers: 4,
        shutdown_timeout: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(30),
        read_timeout: Duration::from_secs(30),
        write_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..test_config()
    }
}

/// Waits until a handler has set `flag` (it started: its request was fully received).
fn wait_flag(flag: &AtomicBool) {
    assert!(
        wait_until(IO_TIMEOUT, || flag.load(Ordering::Acquire)),
        "the handler did not start"
    );
}

// ---- stop from code, with every kind of stuck connection --------------------------------

/// How many clients of each kind the stop tests start.
const N: usize = 10;

/// Reads until EOF or an error (a reset), at most `limit`; true when the connection ended.
fn ends_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    false
}

/// N clients of each worst kind at once, then `shutdown()`: `join` returns by
/// `shutdown_timeout` + 1 s (+ slack), every cut connection is closed (the upstream's
/// side of the proxy's too), and the requests fully received before the stop (their
/// handlers running) are answered, with `Connection: close`.
fn stop_with_stuck_connections(loops: usize) {
    use std::sync::atomic::AtomicUsize;
    let gate = Gate::default();
    let (slow_started, blocked_started) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // An upstream that accepts and never answers.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let mut router = Router::new();
    {
        let gate = gate.clone();
        let started = blocked_started.clone();
        router.get("/block", move |_: &mut Request| {
            started.fetch_add(1, Ordering::AcqRel);
            gate.wait(Duration::from_secs(60));
            Response::text("late\n")
        });
    }
    {
        let started = slow_started.clone();
        router.get("/slow", move |_: &mut Request| {
            started.fetch_add(1, Ordering::AcqRel);
            std::thread::sleep(Duration::from_millis(300));
            Response::text("slow\n")
        });
    }
    router.get("/stream", |_: &mut Request| {
        Response::stream(std::iter::repeat_with(|| vec![b'x'; 64 * 1024]))
    });
    router.post("/upload", |req: &mut Request| {
        Response::text(format!("{} bytes\n", req.body().len()))
    });
    #[cfg(feature = "proxy")]
    {
        let proxy = h1server::proxy::ReverseProxy::builder()
            .route("/proxy", [format!("http://{up_addr}")])
            .build()
            .unwrap();
        router.any("/proxy/{rest...}", proxy);
    }
    #[cfg(feature = "ws")]
    {
        struct Quiet;
        impl h1server::ws::Session for Quiet {
            fn on_message(&mut self, _: &h1server::ws::Sender, _: h1server::ws::Message) {}
        }
        let up = h1server::ws::Upgrader::new();
        router.get("/ws", move |req: &mut Request| up.upgrade(req, Quiet));
    }
    let _ = up_addr;
    // Two workers blocked for good, N/2 running slow handlers, room for the rest.
    let cfg = Config {
        workers: 2 + N / 2 + 2,
        ..stop_config(loops)
    };
    let h = Server::bind(cfg).unwrap().spawn(router).unwrap();
    let _open = OpenOnDrop(gate.clone());
    let addr = h.local_addr();
    let stop_clients = Arc::new(AtomicBool::new(false));
    let mut helpers = Vec::new();
    // Connections that must end by the deadline.
    let mut cut: Vec<TcpStream> = Vec::new();
    let send = |path: &str| {
        let mut s = connect(addr);
        s.write_all(path.as_bytes()).unwrap();
        s
    };

    // Streamed answers to clients that never read.
    for _ in 0..N {
        cut.push(send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    // Handlers blocked for good.
    for _ in 0..2 {
        cut.push(send("GET /block HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    assert!(wait_until(IO_TIMEOUT, || blocked_started
        .load(Ordering::Acquire)
        == 2));
    // Uploads at one byte a second (none completes within the drain).
    let uploads: Vec<TcpStream> = (0..N)
        .map(|_| send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"))
        .collect();
    {
        let mut socks: Vec<TcpStream> = uploads.iter().map(|s| s.try_clone().unwrap()).collect();
        let stop = stop_clients.clone();
        helpers.push(std::thread::spawn(move || {
            for _ in 0..100 {
                for s in &mut socks {
                    let _ = s.write_all(b"a");
                }
                for _ in 0..10 {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }));
    }
    cut.extend(uploads);
    // Proxy exchanges whose upstream never answers.
    #[allow(unused_mut)]
    let mut upstream_sides: Vec<TcpStream> = Vec::new();
    #[cfg(feature = "proxy")]
    {
        upstream.set_nonblocking(false).unwrap();
        for _ in 0..N {
            cut.push(send("GET /proxy/x HTTP/1.1\r\nHost: t\r\n\r\n"));
            upstream_sides.push(upstream.accept().unwrap().0);
        }
    }
    // WebSockets: N silent, two flooding.
    #[cfg(feature = "ws")]
    {
        #[path = "support/ws_client.rs"]
        mod ws_client;
        for i in 0..N + 2 {
            let c = ws_client::Client::open(addr, "/ws");
            let s = c.s.try_clone().unwrap();
            if i >= N {
                let (mut s, stop) = (c.s.try_clone().unwrap(), stop_clients.clone());
                helpers.push(std::thread::spawn(move || {
                    let mut frame = Vec::new();
                    h1server::ws::frame::encode(
                        &mut frame,
                        true,
                        h1server::ws::frame::OpCode::Binary,
                        &[7u8; 4096],
                        Some(ws_client::MASK),
                    );
                    let t0 = Instant::now();
                    while !stop.load(Ordering::Acquire) && t0.elapsed() < Duration::from_secs(30) {
                        if s.write_all(&frame).is_err() {
                            return;
                        }
                    }
                }));
            }
            cut.push(s);
        }
    }
    // Requests fully received, their handlers running when the stop comes.
    let mut answered: Vec<Reader> = (0..N / 2)
        .map(|_| {
            let mut r = Reader::new(connect(addr));
            r.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
            r
        })
        .collect();
    assert!(wait_until(IO_TIMEOUT, || slow_started
        .load(Ordering::Acquire)
        == N / 2));

    let (r, took) = stop_timed(h);
    stop_clients.store(true, Ordering::Release);
    assert!(r.is_ok(), "a requested stop is not an error: {r:?}");
    let bound = Duration::from_secs(1) + Duration::from_secs(1) + SLACK;
    assert!(took < bound, "join took {took:?} (loops={loops})");
    for a in &mut answered {
        let resp = a.read_response();
        assert_eq!((resp.status, resp.text().as_str()), (200, "slow\n"));
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(a.is_closed());
    }
    // What was cut is closed, not left open; so are the proxy's upstream connections.
    for (i, s) in cut.iter_mut().chain(upstream_sides.iter_mut()).enumerate() {
        assert!(
            ends_within(s, Duration::from_secs(5)),
            "connection {i} still open"
        );
    }
    gate.open();
    for t in helpers {
        t.join().unwrap();
    }
}

#[test]
fn stop_from_code_with_stuck_connections_returns_on_time_and_answers_what_was_received() {
    stop_with_stuck_connections(1);
}

#[test]
fn stop_from_code_with_stuck_connections_on_two_loops_returns_on_time() {
    stop_with_stuck_connections(2);
}

#[cfg(feature = "tls")]
#[test]
fn stop_from_code_with_half_done_tls_handshakes_returns_on_time() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let cfg = Config {
        tls_cert: Some(data.join("localhost-cert.pem")),
        tls_key: Some(data.join("localhost-key.pem")),
        tls_handshake_timeout: Duration::from_secs(30),
        ..stop_config(2)
    };
    let h = Server::bind(cfg)
        .unwrap()
        .spawn(|_: &mut Request| Response::text("hi\n"))
        .unwrap();
    let addr = h.local_addr();
    // Connections that say nothing, and ones that send half a ClientHello.
    let mut socks: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();
    for s in socks.iter_mut().step_by(2) {
        // A TLS record header announcing 512 bytes, then 5 of them.
        s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03])
            .unwrap();
    }
    assert!(wait_until(IO_TIMEOUT, || h.telemetry().snapshot().accepted >= 20));
    let (r, took) = stop_timed(h);
    assert!(r.is_ok(), "{r:?}");
    assert!(took < Duration::from_secs(2) + SLACK, "join took {took:?}");
    for s in &mut socks {
        let mut buf = [0u8; 64];
        assert!(matches!(read_some(s, &mut buf), Ok(0) | Err(_)));
    }
}

// ---- the stop API called the odd ways ---------------------------------------------------

#[test]
fn shutdown_before_serving_twice_and_from_many_threads_stops_once_and_cleanly() {
    for loops in [1, 2] {
        for _ in 0..10 {
            let h = Server::bind(stop_config(loops))
                .unwrap()
                .spawn(|_: &mut Request| Response::text("hi\n"))
                .unwrap();
            // Before the loop can have served anything, then again, from several threads.
            h.shutdown();
            let h = Arc::new(h);
            let callers: Vec<_> = (0..4)
                .map(|_| {
                    let h = h.clone();
                    std::thread::spawn(move || {
                        h.shutdown();
                        h.shutdown();
                    })
                })
                .collect();
            for c in callers {
                c.join().unwrap();
            }
            let h = Arc::into_inner(h).unwrap();
            let addr = h.local_addr();
            let t0 = Instant::now();
            h.join().unwrap();
            assert!(
                t0.elapsed() < SLACK,
                "an empty server took {:?}",
                t0.elapsed()
            );
            assert!(TcpStream::connect(addr).is_err(), "still listening");
        }
    }
}

#[test]
fn a_handler_can_stop_its_own_server_and_is_answered() {
    // The handle, shared with the handler once the server runs (ServerHandle is Sync).
    let slot: Arc<Mutex<Option<ServerHandle>>> = Arc::default();
    let mut router = Router::new();
    {
        let slot = slot.clone();
        router.post("/quit", move |_: &mut Request| {
            if let Some(h) = slot.lock().unwrap().as_ref() {
                h.shutdown();
                h.shutdown();
            }
            Response::text("bye\n")
        });
    }
    let h = Server::bind(stop_config(1)).unwrap().spawn(router).unwrap();
    let (addr, state) = (h.local_addr(), h.state());
    *slot.lock().unwrap() = Some(h);
    let mut r = Reader::new(connect(addr));
    r.send(b"POST /quit HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    let resp = r.read_response();
    assert_eq!((resp.status, resp.text().as_str()), (200, "bye\n"));
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(state.is_draining());
    let h = slot.lock().unwrap().take().unwrap();
    let t0 = Instant::now();
    h.join().unwrap();
    assert!(t0.elapsed() < SLACK);
    // After the stop: harmless.
}

/// `run` blocks its caller: it stops from code through a `ShutdownHandle` taken before,
/// from another thread or from a handler (whose own answer says `Connection: close`),
/// before it serves and after it stopped.
#[test]
fn run_on_the_callers_thread_stops_from_another_thread_or_from_a_handler() {
    // From a handler.
    let server = Server::bind(stop_config(2)).unwrap().handle_signals(false);
    let (addr, stop) = (server.local_addr(), server.shutdown_handle());
    let in_handler = stop.clone();
    let mut router = Router::new();
    router.post("/quit", move |_: &mut Request| {
        in_handler.shutdown();
        Response::text("bye\n")
    });
    router.get("/", |_: &mut Request| Response::text("hi\n"));
    let runner = std::thread::spawn(move || server.run(router));
    let mut r = Reader::new(connect(addr));
    r.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.read_response().header("connection"), None);
    r.send(b"POST /quit HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(
        (resp.status, resp.header("connection")),
        (200, Some("close"))
    );
    assert!(r.is_closed());
    assert!(
        wait_until(SLACK, || runner.is_finished()),
        "run did not return"
    );
    runner.join().unwrap().unwrap();
    stop.shutdown(); // after the stop: nothing happens

    // From another thread, while a request is in flight; and before it serves at all.
    for early in [false, true] {
        let server = Server::bind(stop_config(1)).unwrap().handle_signals(false);
        let (addr, stop) = (server.local_addr(), server.shutdown_handle());
        if early {
            stop.shutdown();
        }
        let started = Arc::new(AtomicBool::new(false));
        let s = started.clone();
        let runner = std::thread::spawn(move || {
            server.run(move |_: &mut Request| {
                s.store(true, Ordering::Release);
                std::thread::sleep(Duration::from_millis(200));
                Response::text("done\n")
            })
        });
        if !early {
            let mut r = Reader::new(connect(addr));
            r.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
            wait_flag(&started);
            stop.shutdown();
            let resp = r.read_response();
            assert_eq!(
                (resp.text().as_str(), resp.header("connection")),
                ("done\n", Some("close"))
            );
        }
        assert!(
            wait_until(SLACK, || runner.is_finished()),
            "run did not return"
        );
        runner.join().unwrap().unwrap();
        assert!(TcpStream::connect(addr).is_err());
    }
}

#[test]
fn two_servers_in_one_process_stopping_one_leaves_the_other_serving() {
    let a = TestServer::start(|_: &mut Request| Response::text("a\n"));
    let b = TestServer::start(|_: &mut Request| Response::text("b\n"));
    let mut kept = Reader::new(b.connect());
    kept.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(kept.read_response().text(), "b\n");
    let a_addr = a.addr;
    a.stop().unwrap();
    assert!(TcpStream::connect(a_addr).is_err());
    // b: the kept-alive connection and a new one are both served, without `close`.
    kept.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = kept.read_response();
    assert_eq!(
        (resp.text().as_str(), resp.header("connection")),
        ("b\n", None)
    );
    assert_eq!(
        roundtrip(b.addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").text(),
        "b\n"
    );
    b.stop().unwrap();
}

/// Two servers that handle signals: stopping one from code must not take the other's
/// handling with it — a SIGTERM then drains the other (in a child process: it signals
/// itself).
#[test]
fn stopping_one_of_two_signal_handling_servers_leaves_the_others_handler() {
    if !in_child("stopping_one_of_two_signal_handling_servers_leaves_the_others_handler") {
        return;
    }
    let start = |body: &'static str| {
        Server::bind(stop_config(1))
            .unwrap()
            .handle_signals(true)
            .spawn(move |_: &mut Request| Response::text(body))
            .unwrap()
    };
    let (a, b) = (start("a\n"), start("b\n"));
    let (b_addr, b_state) = (b.local_addr(), b.state());
    a.shutdown();
    a.join().unwrap();
    assert!(!b_state.is_draining());
    assert_eq!(
        roundtrip(b_addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").text(),
        "b\n"
    );
    sigterm_self();
    assert!(
        wait_until(IO_TIMEOUT, || b_state.is_draining()),
        "b missed the SIGTERM"
    );
    b.join().unwrap();
}

// ---- from_listener -----------------------------------------------------------------------

/// Connections the kernel completed before the server existed (already in the backlog,
/// their requests sent) are served, whether the listener was blocking or not.
#[test]
fn from_listener_serves_the_backlog_it_inherits_blocking_or_not() {
    for (nonblocking, loops) in [(false, 1), (true, 1), (false, 2), (true, 2)] {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(nonblocking).unwrap();
        let addr = l.local_addr().unwrap();
        let mut waiting: Vec<Reader> = (0..8)
            .map(|i| {
                let mut r = Reader::new(connect(addr));
                r.send(format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
                r
            })
            .collect();
        let server = Server::from_listener(l, stop_config(loops)).unwrap();
        let h = server
            .spawn(|req: &mut Request| Response::text(req.path().to_string()))
            .unwrap();
        for (i, r) in waiting.iter_mut().enumerate() {
            let resp = r.read_response();
            assert_eq!(
                resp.text(),
                format!("/{i}"),
                "nonblocking={nonblocking} loops={loops}"
            );
        }
        let (r, _) = stop_timed(h);
        r.unwrap();
        assert!(
            TcpStream::connect(addr).is_err(),
            "the listener outlived the stop"
        );
    }
}

/// A client whose handshake is under way when the drain begins — its `connect` returned
/// and its request is written, the ACK still on its way — is served (`Connection:
/// close`), not reset by the listener's close: a proxy that sent a POST on such a
/// connection does not retry it (tests/scale.rs lost one that way). The drain stops new
/// handshakes and keeps the listener open a grace long enough for the ACK; here the ACK
/// goes out from a shutdown hook, when the drain has begun. One loop and two (a listener
/// shared by both).
#[test]
fn a_client_whose_handshake_is_under_way_when_the_drain_begins_is_served() {
    for loops in [1, 2] {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            hold_handshake_acks(&l);
            let client = connect(addr);
            let mut r = Reader::new(client.try_clone().unwrap());
            r.send(b"GET /late HTTP/1.1\r\nHost: t\r\n");
            let mut writer = client;
            let stop_asked = Arc::new(Mutex::new(None::<Instant>));
            let late = Arc::new(Mutex::new(None::<Duration>));
            let (asked, wrote) = (stop_asked.clone(), late.clone());
            let server = Server::from_listener(l, stop_config(loops))
                .unwrap()
                .on_shutdown(move || {
                    // The drain has begun: the segment goes out now, with its ACK.
                    let _ = writer.write_all(b"\r\n");
                    let at = asked.lock().unwrap().map(|t| t.elapsed());
                    *wrote.lock().unwrap() = at;
                });
            let h = server
                .spawn(|req: &mut Request| Response::text(req.path().to_string()))
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            *stop_asked.lock().unwrap() = Some(Instant::now());
            h.shutdown();
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                r.read_response_to("GET")
            }));
            h.join().unwrap();
            let late = late.lock().unwrap().unwrap_or(Duration::MAX);
            match answer {
                Ok(Some(resp)) => {
                    assert_eq!(resp.status, 200, "loops={loops}");
                    assert_eq!(resp.text(), "/late");
                    assert_eq!(resp.header("connection"), Some("close"));
                    break;
                }
                // The hook ran later than the drain's grace (a loaded machine): the test
                // did not test anything; once more (bounded).
                _ if late > Duration::from_millis(60) && attempts < 3 => continue,
                other => panic!(
                    "loops={loops}: the client under way got {:?} (its last segment went out {late:?} after the stop)",
                    other.map(|o| o.map(|r| r.status))
                ),
            }
        }
    }
}

// ---- what is left after the stop ---------------------------------------------------------

/// After `join`: every thread the server started is gone, every descriptor it opened is
/// closed, and the port can be bound again at once (one loop and two, with connections
/// of every kind having come and gone).
#[test]
#[cfg(feature = "middleware")]
fn after_join_no_thread_no_descriptor_is_left_and_the_port_binds_again() {
    if !in_child("after_join_no_thread_no_descriptor_is_left_and_the_port_binds_again") {
        return;
    }
    for (loops, signals) in [(1, false), (2, true)] {
        let (t0, f0) = (threads(), fds());
        let mut cfg = stop_config(loops);
        cfg.workers = 8;
        let server = Server::bind(cfg.clone())
            .unwrap()
            .spawn_task("ticker", |token| {
                while !token.wait_timeout(Duration::from_millis(20)) {}
            });
        let server = server.on_shutdown(|| {}).handle_signals(signals);
        let addr = server.local_addr();
        let mut router = Router::new();
        router.get("/sleep", |_: &mut Request| {
            std::thread::sleep(Duration::from_millis(50));
            Response::text("z\n")
        });
        router.get("/stream", |_: &mut Request| {
            Response::stream((0..64).map(|_| vec![b'y'; 1024]))
        });
        let app = h1server::middleware::Stack::new(router)
            .with(h1server::middleware::Timeout::new(Duration::from_secs(5)));
        let h = server.spawn(app).unwrap();
        // Enough blocking requests at once to bring reserve workers out.
        let clients: Vec<_> = (0..16)
            .map(|_| {
                std::thread::spawn(move || {
                    let resp = roundtrip(addr, b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n");
                    assert_eq!(resp.status, 200);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        let resp = roundtrip(addr, b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(resp.body.len(), 64 * 1024);
        // An idle keep-alive connection and a silent new one at the stop.
        let mut idle = Reader::new(connect(addr));
        idle.send(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
        idle.read_response();
        let silent = connect(addr);
        let (r, _) = stop_timed(h);
        r.unwrap();
        drop((idle, silent));
        // The server's own threads are joined; the `Timeout` middleware's runners (its
        // own pool, detached by design) exit when the application is dropped.
        let left: Vec<String> = thread_names()
            .into_iter()
            .filter(|n| n.starts_with("h1-") && n != "h1-timeout")
            .collect();
        assert!(
            left.is_empty(),
            "threads left after join (loops={loops}): {left:?}"
        );
        assert!(
            wait_until(IO_TIMEOUT, || threads() == t0),
            "threads left (loops={loops}): {:?}",
            thread_names()
        );
        assert_eq!(fds(), f0, "descriptors left after join (loops={loops})");
        // The same address again, at once.
        let again = Server::bind(Config { addr, ..cfg }).expect("the port is free again");
        drop(again);
    }
}

// ---- what was received before the drain is answered --------------------------------------

/// A keep-alive answer encoded before the stop is still being written (the client reads
/// slowly) when the drain begins; the client has already sent its next request, which the
/// server holds (in its buffer or the socket's). That request was fully received before
/// the drain: it must be answered, with `Connection: close` — not dropped by a close
/// after an answer that promised keep-alive (RFC 9112 §9.6: the server that closes says
/// so in its last response).
#[test]
fn a_request_pipelined_behind_a_slow_keep_alive_answer_is_answered_with_close() {
    const BIG: usize = 32 << 20;
    let mut router = Router::new();
    router.get("/big", |_: &mut Request| {
        Response::new(200).with_body(vec![b'b'; BIG])
    });
    router.get("/next", |_: &mut Request| Response::text("next\n"));
    let began = Arc::new(AtomicBool::new(false));
    let b = began.clone();
    let cfg = Config {
        shutdown_timeout: Duration::from_secs(10),
        ..stop_config(1)
    };
    let h = Server::bind(cfg)
        .unwrap()
        .on_shutdown(move || b.store(true, Ordering::Release))
        .spawn(router)
        .unwrap();
    let mut r = Reader::new(connect(h.local_addr()));
    r.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    // The answer is encoded (keep-alive: no stop yet) and being written when…
    assert!(wait_until(IO_TIMEOUT, || h
        .telemetry()
        .snapshot()
        .bytes_out
        > 0));
    // …the next request arrives, whole, and then the drain begins.
    r.send(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    h.shutdown();
    assert!(wait_until(IO_TIMEOUT, || began.load(Ordering::Acquire)));
    let first = r.read_response();
    assert_eq!((first.status, first.body.len()), (200, BIG));
    assert_eq!(first.header("connection"), None, "encoded before the stop");
    let second = r
        .read_response_to("GET")
        .expect("the request received before the drain was dropped: EOF instead of its answer");
    assert_eq!((second.status, second.text().as_str()), (200, "next\n"));
    assert_eq!(second.header("connection"), Some("close"));
    assert!(r.is_closed());
    h.join().unwrap();
}

/// The same with a streamed (chunked) answer in progress at the drain: when its body ends,
/// the request sent behind it is answered, with `Connection: close`.
#[test]
fn a_request_pipelined_behind_a_stream_in_progress_at_the_drain_is_answered_with_close() {
    const PIECES: usize = 512;
    let mut router = Router::new();
    router.get("/stream", |_: &mut Request| {
        Response::stream((0..PIECES).map(|_| vec![b's'; 64 * 1024]))
    });
    router.get("/next", |_: &mut Request| Response::text("next\n"));
    let began = Arc::new(AtomicBool::new(false));
    let b = began.clone();
    let cfg = Config {
        shutdown_timeout: Duration::from_secs(10),
        ..stop_config(1)
    };
    let h = Server::bind(cfg)
        .unwrap()
        .on_shutdown(move || b.store(true, Ordering::Release))
        .spawn(router)
        .unwrap();
    let mut r = Reader::new(connect(h.local_addr()));
    r.send(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(wait_until(IO_TIMEOUT, || h
        .telemetry()
        .snapshot()
        .bytes_out
        > 0));
    r.send(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    h.shutdown();
    assert!(wait_until(IO_TIMEOUT, || began.load(Ordering::Acquire)));
    let first = r.read_response();
    assert_eq!((first.status, first.body.len()), (200, PIECES * 64 * 1024));
    assert_eq!(first.header("connection"), None, "encoded before the stop");
    let second = r
        .read_response_to("GET")
        .expect("the request received before the drain was dropped");
    assert_eq!((second.status, second.text().as_str()), (200, "next\n"));
    assert_eq!(second.header("connection"), Some("close"));
    assert!(r.is_closed());
    h.join().unwrap();
}

// ---- rolling restart: the delay before the drain ------------------------------------------

/// `shutdown()` with `drain_delay` on two loops: readiness fails at once; for the delay
/// every pooled keep-alive connection (on either loop) and every new one is served, its
/// answer saying `Connection: close`, then closed; then the listener closes and the port
/// is free again.
#[test]
#[cfg(feature = "health")]
fn stop_from_code_with_drain_delay_on_two_loops_fails_readiness_first_and_retires_pooled_connections()
 {
    let health = h1server::health::Health::new("t");
    let mut router = Router::new();
    router.get("/readyz", health.readiness());
    router.get("/", |_: &mut Request| Response::text("ok\n"));
    let cfg = Config {
        drain_delay: Duration::from_millis(1500),
        ..stop_config(2)
    };
    let server = Server::bind(cfg).unwrap();
    health.watch(server.state());
    health.set_ready(true);
    let h = server.spawn(router).unwrap();
    let addr = h.local_addr();
    let get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_eq!(
        roundtrip(addr, b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n").status,
        200
    );
    // Pooled connections, as a load balancer holds (the kernel spreads them over both
    // loops).
    let mut pooled: Vec<Reader> = (0..8)
        .map(|_| {
            let mut r = Reader::new(connect(addr));
            r.send(get);
            let resp = r.read_response();
            assert_eq!(resp.header("connection"), None);
            r
        })
        .collect();
    let t0 = Instant::now();
    h.shutdown();
    assert!(h.state().is_draining(), "readiness fails from the call on");
    let ready = roundtrip(addr, b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        (ready.status, ready.header("connection")),
        (503, Some("close"))
    );
    for r in &mut pooled {
        r.send(get);
        let resp = r.read_response();
        assert_eq!(
            (resp.status, resp.header("connection")),
            (200, Some("close"))
        );
        assert!(
            r.is_closed(),
            "a pooled connection retires after its answer"
        );
    }
    let fresh = roundtrip(addr, get);
    assert_eq!(
        (fresh.status, fresh.header("connection")),
        (200, Some("close"))
    );
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "checked inside the delay"
    );
    h.join().unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(1400),
        "stopped before the delay"
    );
    assert!(TcpStream::connect(addr).is_err());
    Server::bind(Config {
        addr,
        ..stop_config(2)
    })
    .expect("the port is free again");
}

/// A listener that stops listening under the server (its supervisor shuts the socket
/// down: accept(2) then fails with EINVAL for good) must not make the loop spin on
/// accept: the server goes on with what it has and still stops on time.
#[test]
fn a_listener_shut_down_under_the_server_does_not_spin_the_loop_or_hold_the_stop() {
    use std::os::fd::AsRawFd;
    for loops in [1, 2] {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let supervisor = l.try_clone().unwrap();
        let h = Server::from_listener(l, stop_config(loops))
            .unwrap()
            .spawn(|_: &mut Request| Response::text("hi\n"))
            .unwrap();
        let mut kept = Reader::new(connect(addr));
        kept.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(kept.read_response().status, 200);
        #[allow(unsafe_code)]
        // SAFETY: shutdown(2) on a descriptor this test owns; no memory is passed.
        let rc = unsafe { libc::shutdown(supervisor.as_raw_fd(), libc::SHUT_RDWR) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        // The connection already open is still served.
        kept.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(kept.read_response().status, 200, "loops={loops}");
        // And the stop ends on time (the join runs on a thread: a spinning loop would
        // never let it return).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(stop_timed(h));
        });
        let (r, took) = rx
            .recv_timeout(Duration::from_secs(2) + SLACK)
            .unwrap_or_else(|_| panic!("join never returned (loops={loops})"));
        r.unwrap();
        assert!(took < Duration::from_secs(2) + SLACK);
        drop(supervisor);
    }
}

/// `from_listener` with a socket that is bound but not listening (a descriptor passed in
/// the wrong state) is refused with a clear error, not served by a loop that spins.
#[test]
fn from_listener_refuses_a_socket_that_is_not_listening() {
    use std::os::fd::FromRawFd;
    #[allow(unsafe_code)]
    // SAFETY: socket(2) and bind(2) on a descriptor made here, with a sockaddr_in built
    // here; the descriptor is then owned by the TcpListener alone.
    let l = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let mut sin: libc::sockaddr_in = std::mem::zeroed();
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let rc = libc::bind(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0);
        TcpListener::from_raw_fd(fd)
    };
    match Server::from_listener(l, stop_config(1)) {
        Err(h1server::BindError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains("not listening"), "{e}");
        }
        Err(e) => panic!("expected an I/O error, got {e:?}"),
        Ok(server) => {
            // Show what the server does with it: a stop that never comes back.
            let h = server
                .spawn(|_: &mut Request| Response::text("hi\n"))
                .unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(stop_timed(h));
            });
            let outcome = rx.recv_timeout(Duration::from_secs(2) + SLACK);
            panic!("a socket that is not listening was accepted; the stop gave {outcome:?}");
        }
    }
}

// ---- signals after a stop from code -------------------------------------------------------

/// Log lines of this process (installed in a child process only).
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.0.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

static LOGS: Capture = Capture(Mutex::new(Vec::new()));

fn logged(needle: &str) -> usize {
    LOGS.0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

fn sigterm_self() {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// The first SIGTERM that arrives while a drain started from code runs (an orchestrator
/// stopping an instance that was already draining itself) is a first signal: the drain
/// goes on and the requests in flight are answered. Only a second signal forces the stop
/// (signal.rs: "the first signal starts the graceful drain, a second one exits at once").
#[test]
fn a_first_signal_during_a_drain_started_from_code_does_not_force_the_stop() {
    if !in_child("a_first_signal_during_a_drain_started_from_code_does_not_force_the_stop") {
        return;
    }
    log::set_logger(&LOGS).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let (gate_a, gate_b) = (Gate::default(), Gate::default());
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut router = Router::new();
    for (path, gate) in [("/a", gate_a.clone()), ("/b", gate_b.clone())] {
        let started = started.clone();
        router.get(path, move |_: &mut Request| {
            started.fetch_add(1, Ordering::AcqRel);
            gate.wait(Duration::from_secs(30));
            Response::text("done\n")
        });
    }
    let began = Arc::new(AtomicBool::new(false));
    let b = began.clone();
    let cfg = Config {
        shutdown_timeout: Duration::from_secs(20),
        ..stop_config(1)
    };
    let h = Server::bind(cfg)
        .unwrap()
        .handle_signals(true)
        .on_shutdown(move || b.store(true, Ordering::Release))
        .spawn(router)
        .unwrap();
    let _open = (OpenOnDrop(gate_a.clone()), OpenOnDrop(gate_b.clone()));
    let addr = h.local_addr();
    let mut a = Reader::new(connect(addr));
    a.send(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut b = Reader::new(connect(addr));
    b.send(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(wait_until(IO_TIMEOUT, || started.load(Ordering::Acquire) == 2));
    h.shutdown();
    assert!(wait_until(IO_TIMEOUT, || began.load(Ordering::Acquire)));
    // The orchestrator's SIGTERM: the drain goes on.
    sigterm_self();
    assert!(
        wait_until(IO_TIMEOUT, || logged("signal") >= 1),
        "the signal was not seen"
    );
    gate_a.open();
    let resp = a.read_response();
    assert_eq!(
        (resp.status, resp.header("connection")),
        (200, Some("close"))
    );
    // A second signal forces the stop: /b is cut, join returns at once.
    sigterm_self();
    let t0 = Instant::now();
    let r = h.join();
    assert_eq!(
        r.as_ref().map_err(|e| e.kind()),
        Err(std::io::ErrorKind::Interrupted),
        "{r:?}"
    );
    assert!(
        t0.elapsed() < SLACK,
        "the forced stop took {:?}",
        t0.elapsed()
    );
    assert!(ends_within(&mut b.stream, Duration::from_secs(5)));
}
