//! Graceful drain: `ServerHandle::shutdown()` and SIGTERM let in-flight requests finish
//! with `Connection: close`, close idle connections at once, refuse new ones, run the
//! shutdown hooks, force-close at `shutdown_timeout`, and a second signal exits at once.
mod support;
use support::*;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use h1server::{Request, Response, Server};

/// Reads until the server closes the connection (EOF or reset); returns the bytes that
/// arrived and when the close was seen. Panics if it stays open past the read timeout.
fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, Instant) {
    let mut got = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        match s.read(&mut tmp) {
            Ok(0) => return (got, Instant::now()),
            Ok(n) => got.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the connection was not closed: {e}")
            }
            Err(_) => return (got, Instant::now()),
        }
    }
}

/// Sends `sig` ("TERM", "INT") to `pid` with kill(1).
fn kill(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Waits up to `limit` for the child to exit.
fn wait_exit(child: &mut ChildGuard, limit: Duration) -> Option<ExitStatus> {
    let mut status = None;
    wait_until(limit, || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    status
}

/// Waits until the child logs a line containing `needle` (it runs at trace level, and the
/// loop logs each request it parses), so the request is known to be in flight rather than
/// still in the kernel's buffer; fails after 10 s.
fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        match lines.recv_timeout(Duration::from_millis(50)) {
            Ok(l) if l.contains(needle) => return,
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the server exited"),
        }
    }
    panic!("no log line with {needle:?} within 10 s");
}

fn refuses_connections(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
}

#[test]
fn shutdown_lets_the_in_flight_request_finish_and_closes_idle_connections() {
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let server = TestServer::start(move |req: &mut Request| {
        if req.path() == "/slow" {
            s.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(500));
            return Response::text("slow done\n");
        }
        Response::text("quick\n")
    });
    // An idle keep-alive connection…
    let mut idle = Reader::new(server.connect());
    idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(idle.read_response().status, 200);
    // …and a request in flight.
    let mut busy = Reader::new(server.connect());
    busy.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(wait_until(IO_TIMEOUT, || started.load(Ordering::SeqCst)));

    server.handle().shutdown();
    let (bytes, idle_closed_at) = read_until_closed(&mut idle.stream);
    assert!(bytes.is_empty(), "the idle connection got bytes: {bytes:?}");
    let resp = busy.read_response();
    let answered_at = Instant::now();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "slow done\n");
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    assert!(
        busy.is_closed(),
        "closed after the last answer of the drain"
    );
    assert!(
        idle_closed_at < answered_at,
        "the idle connection was closed only after the in-flight request finished"
    );
    assert!(
        wait_until(IO_TIMEOUT, || refuses_connections(server.addr)),
        "new connections are still accepted after shutdown"
    );
    assert!(server.stop().is_ok(), "join() after a drain is Ok(())");
}

/// What a client saw when the drain hit `shutdown_timeout` (300 ms) while its handler
/// slept 3 s.
struct ForcedDrain {
    /// Bytes the client received before the close.
    received: Vec<u8>,
    /// When the client saw the connection closed.
    closed_at: Instant,
    /// When the handler returned, if it had by the time the client saw the close.
    handler_done: Option<Instant>,
    /// What `join()` returned and how long the stop took.
    joined: std::io::Result<()>,
    took: Duration,
}

fn forced_drain() -> ForcedDrain {
    let started = Arc::new(AtomicBool::new(false));
    let finished: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (s, f) = (started.clone(), finished.clone());
    let mut cfg = test_config();
    cfg.shutdown_timeout = Duration::from_millis(300);
    let server = TestServer::with_config(cfg, move |_req: &mut Request| {
        s.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(3));
        *f.lock().unwrap() = Some(Instant::now());
        Response::text("too late\n")
    });
    let mut client = server.connect();
    client
        .write_all(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(wait_until(IO_TIMEOUT, || started.load(Ordering::SeqCst)));

    let t0 = Instant::now();
    let stopper = std::thread::spawn(move || server.stop());
    let (received, closed_at) = read_until_closed(&mut client);
    let handler_done = *finished.lock().unwrap();
    let joined = stopper.join().unwrap();
    ForcedDrain {
        received,
        closed_at,
        handler_done,
        joined,
        took: t0.elapsed(),
    }
}

#[test]
fn drain_past_shutdown_timeout_does_not_hang() {
    let d = forced_drain();
    assert!(
        d.joined.is_ok(),
        "join() after a forced drain: {:?}",
        d.joined
    );
    // shutdown_timeout (300 ms) + the 1 s grace for stuck workers, with slack for a loaded
    // machine, and well under the 3 s the handler sleeps: a join that waited for the
    // handler (or ignored shutdown_timeout) fails here.
    assert!(
        d.took < Duration::from_millis(2500),
        "join() took {:?}: it must return within shutdown_timeout + 1 s whatever handlers do",
        d.took
    );
}

#[test]
fn drain_force_closes_connections_at_shutdown_timeout() {
    let d = forced_drain();
    assert!(
        d.handler_done.is_none_or(|done| d.closed_at < done),
        "the connection was closed only after its handler finished (3 s), not at \
         shutdown_timeout (300 ms); the client received {:?}",
        String::from_utf8_lossy(&d.received)
    );
    assert!(
        d.joined.is_ok(),
        "join() after a forced drain: {:?}",
        d.joined
    );
}

#[test]
fn shutdown_runs_hooks_fires_the_token_and_reports_draining() {
    let order: Arc<Mutex<Vec<&str>>> = Arc::default();
    let (o1, o2) = (order.clone(), order.clone());
    let server = Server::bind(test_config())
        .unwrap()
        .on_shutdown(move || o1.lock().unwrap().push("first"))
        .on_shutdown(move || o2.lock().unwrap().push("second"));
    let state = server.state();
    let token = state.shutdown_token();
    assert!(!state.is_draining());
    assert!(!token.is_triggered());
    let waiter = {
        let token = token.clone();
        std::thread::spawn(move || token.wait_timeout(IO_TIMEOUT))
    };
    let server = TestServer::with_server(server, |_req: &mut Request| Response::text("up\n"));
    let resp = roundtrip(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert!(!state.is_draining(), "draining before any shutdown");
    assert!(
        order.lock().unwrap().is_empty(),
        "a hook ran before shutdown"
    );

    server.handle().shutdown();
    assert!(
        wait_until(IO_TIMEOUT, || state.is_draining()),
        "is_draining() stayed false after shutdown()"
    );
    assert!(
        waiter.join().unwrap(),
        "the shutdown token did not fire (wait_timeout timed out)"
    );
    assert!(server.stop().is_ok());
    assert!(token.is_triggered());
    assert_eq!(*order.lock().unwrap(), ["first", "second"]);
}

#[test]
fn sigterm_lets_the_in_flight_request_finish_and_hello_exits_0() {
    let (mut child, addr) = spawn_hello(&[("RUST_LOG", "trace")]);
    let lines = stderr_lines(&mut child);
    let mut r = Reader::new(connect(addr));
    r.send(b"GET /sleep?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_for_line(&lines, "GET /sleep"); // in flight, not idle
    kill("TERM", child.0.id());
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "slept 500 ms\n");
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    let status = wait_exit(&mut child, IO_TIMEOUT).expect("hello did not exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[cfg(feature = "cli")] // the demo binary
#[test]
fn sigterm_drains_the_demo_binary_and_it_exits_0() {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = ChildGuard(
        Command::new(built_binary("h1server", false))
            .env("H1_ADDR", addr.to_string())
            .env("DEMO_DB", ":memory:")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn h1server"),
    );
    let _lines = stderr_lines(&mut child);
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
        "h1server did not start listening"
    );
    let resp = roundtrip(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 200, "{resp:?}");
    kill("TERM", child.0.id());
    let status = wait_exit(&mut child, IO_TIMEOUT).expect("h1server did not exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(refuses_connections(addr));
}

/// The Kubernetes `preStop` order, with `H1_DRAIN_DELAY`: after SIGTERM the instance
/// first says it is not ready while it still serves — every answer, on old and new
/// connections, saying `Connection: close` — and only after the delay closes its listener,
/// drains and exits 0.
#[cfg(feature = "cli")] // the demo binary (its /readyz follows the drain)
#[test]
fn drain_delay_fails_readiness_first_serves_with_close_then_closes_the_listener() {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = ChildGuard(
        Command::new(built_binary("h1server", false))
            .env("H1_ADDR", addr.to_string())
            .env("DEMO_DB", ":memory:")
            .env("H1_DRAIN_DELAY", "1500ms")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn h1server"),
    );
    let lines = stderr_lines(&mut child);
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
        "h1server did not start listening"
    );
    assert_eq!(
        roundtrip(addr, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").status,
        200
    );
    // A pooled keep-alive connection, as a load balancer holds.
    let mut pooled = Reader::new(connect(addr));
    pooled.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let first = pooled.read_response();
    assert_eq!((first.status, first.header("Connection")), (200, None));

    kill("TERM", child.0.id());
    let t0 = Instant::now();
    wait_for_line(&lines, "draining in");
    // 1. Not ready at once, on a new connection: the listener still accepts.
    let ready = roundtrip(addr, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.text().contains("draining"), "{}", ready.text());
    assert_eq!(ready.header("Connection"), Some("close"));
    // 2. Still served, with close: a new connection and the pooled one.
    let fresh = roundtrip(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        (fresh.status, fresh.header("Connection")),
        (200, Some("close"))
    );
    pooled.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let last = pooled.read_response();
    assert_eq!(
        (last.status, last.header("Connection")),
        (200, Some("close"))
    );
    assert!(
        pooled.is_closed(),
        "the pooled connection ends after its answer"
    );
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "the checks ran inside the delay"
    );
    // 3. Then the listener closes, and 4. the process exits 0.
    assert!(
        wait_until(Duration::from_secs(10), || refuses_connections(addr)),
        "the listener never closed"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1400),
        "closed before the delay: {:?}",
        t0.elapsed()
    );
    let status = wait_exit(&mut child, IO_TIMEOUT).expect("h1server did not exit");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn second_signal_exits_at_once() {
    let (mut child, addr) = spawn_hello(&[("RUST_LOG", "trace"), ("H1_SHUTDOWN_TIMEOUT", "30s")]);
    let lines = stderr_lines(&mut child);
    let mut client = connect(addr);
    client
        .write_all(b"GET /sleep?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_for_line(&lines, "GET /sleep");
    kill("TERM", child.0.id());
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the first signal must drain (the request is still sleeping), not exit"
    );
    kill("INT", child.0.id());
    // The drain alone would take until the 5 s sleep ends; the second signal must not wait.
    let status = wait_exit(&mut child, Duration::from_secs(3));
    let status = status.expect("hello still runs 3 s after a second signal");
    assert!(
        !status.success(),
        "a forced stop must exit non-zero (the binary decides; the library never exits): {status:?}"
    );
    let (bytes, _) = read_until_closed(&mut client);
    assert!(
        !String::from_utf8_lossy(&bytes).contains("slept"),
        "the sleeping request was not cut short"
    );
}

#[test]
fn background_tasks_get_the_token_at_drain_and_are_joined_before_join_returns() {
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let (t, f) = (ticks.clone(), finished.clone());
    let server = Server::bind(test_config())
        .unwrap()
        .spawn_task("dispatcher", move |token| {
            // The seed's notification dispatcher: work until the drain starts.
            while !token.wait_timeout(Duration::from_millis(10)) {
                t.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(200)); // flush on the way out
            f.store(true, Ordering::SeqCst);
        });
    let srv = TestServer::with_server(server, |_: &mut Request| Response::text("ok"));
    assert!(
        wait_until(Duration::from_secs(5), || ticks.load(Ordering::SeqCst) > 2),
        "the task runs while the server serves"
    );
    assert_eq!(
        roundtrip(srv.addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").status,
        200
    );
    srv.stop().unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "join() returned only after the task finished its shutdown work"
    );
}

#[test]
fn twenty_blocking_requests_in_flight_at_sigterm_all_complete_with_the_default_pool() {
    // The default configuration (no H1_WORKERS): the pool is sized for blocking handlers,
    // so 20 requests that each block 1.5 s all finish well inside a 10 s shutdown_timeout.
    let (mut child, addr) = spawn_hello(&[("RUST_LOG", "trace"), ("H1_SHUTDOWN_TIMEOUT", "10s")]);
    let lines = stderr_lines(&mut child);
    let clients: Vec<Reader> = (0..20)
        .map(|_| {
            let mut r = Reader::new(connect(addr));
            r.send(b"GET /sleep?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n");
            r
        })
        .collect();
    // Every request is in flight (parsed and queued or running) before the signal.
    for _ in 0..20 {
        wait_for_line(&lines, "stage=head_parsed GET /sleep");
    }
    kill("TERM", child.0.id());
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut r| std::thread::spawn(move || r.read_response()))
        .collect();
    for (i, h) in readers.into_iter().enumerate() {
        let resp = h.join().expect("client thread");
        assert_eq!(resp.status, 200, "request {i}: {resp:?}");
        assert_eq!(resp.text(), "slept 1500 ms\n", "request {i}");
        assert_eq!(
            resp.header("connection"),
            Some("close"),
            "request {i}: {resp:?}"
        );
    }
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("hello did not exit");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn a_stuck_handler_is_named_and_left_behind_and_the_process_exits_on_time() {
    let (mut child, addr) = spawn_hello(&[("RUST_LOG", "trace"), ("H1_SHUTDOWN_TIMEOUT", "300ms")]);
    let lines = stderr_lines(&mut child);
    let mut client = connect(addr);
    client
        .write_all(b"GET /sleep?ms=8000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_for_line(&lines, "GET /sleep");
    kill("TERM", child.0.id());
    // 300 ms of drain + 1 s for the stuck worker, far less than the 8 s sleep.
    let status = wait_exit(&mut child, Duration::from_secs(4))
        .expect("hello still runs 4 s after SIGTERM although shutdown_timeout is 300 ms");
    assert_eq!(status.code(), Some(0), "{status:?}");
    let logged: Vec<String> = lines.try_iter().collect();
    assert!(
        logged.iter().any(|l| l.contains("WARN")
            && l.contains("h1-worker-")
            && l.contains("leaving it behind")),
        "no warn line names the stuck worker: {logged:#?}"
    );
}

#[test]
fn requests_already_sent_on_idle_connections_at_the_drain_are_answered_not_reset() {
    let server = TestServer::start(|_: &mut Request| Response::text("ok\n"));
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // 300 keep-alive connections, each answered once and now idle.
    let mut conns: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut r = Reader::new(server.connect());
            r.send(req);
            assert_eq!(r.read_response().text(), "ok\n");
            r.stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    // A second request on each; half-way through, the drain starts. The first 150 were
    // in their sockets before `shutdown()`: the drain must read and answer them.
    for (i, s) in conns.iter_mut().enumerate() {
        if i == 150 {
            server.handle().shutdown();
        }
        let _ = s.write_all(req);
    }
    let mut lost = Vec::new();
    for (i, s) in conns.iter_mut().enumerate().take(150) {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 1024];
        match s.read(&mut buf) {
            // Answered (with `Connection: close` if the drain had begun when it was read).
            Ok(n) if n > 0 => assert!(buf.starts_with(b"HTTP/1.1 200 "), "{i}"),
            other => lost.push((i, format!("{other:?}"))),
        }
    }
    assert!(
        lost.is_empty(),
        "requests sent before shutdown() were not answered: {lost:?}"
    );
}

#[test]
fn a_connection_opened_before_the_drain_is_served_once_with_close_not_closed_unused() {
    // A proxy connects, then writes its request: a connection that has not sent its first
    // request at the drain is about to, and closing it would race that request (a POST
    // nginx will not retry). It is kept (up to `header_read_timeout`) and answered with
    // `Connection: close`; an idle connection that was already used is closed at once.
    let server = TestServer::start(|_: &mut Request| Response::text("ok\n"));
    let mut used = Reader::new(server.connect());
    used.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(used.read_response().status, 200);
    let mut fresh = Reader::new(server.connect());
    // The loop has accepted it once it answers on another connection opened after it.
    let mut probe = Reader::new(server.connect());
    probe.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(probe.read_response().status, 200);

    server.handle().shutdown();
    let (bytes, _) = read_until_closed(&mut used.stream);
    assert!(bytes.is_empty(), "the used idle connection got {bytes:?}");
    assert!(
        wait_until(IO_TIMEOUT, || refuses_connections(server.addr)),
        "the listener is still open"
    );
    fresh.send(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    let resp = fresh.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    assert!(fresh.is_closed(), "closed after its one answer");
    assert!(server.stop().is_ok());
}
