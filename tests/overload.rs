//! Overload and failure: a full queue is shed with 503, a panicking handler costs one 500
//! and not its worker, a vanished client cancels its request, and connection and
//! descriptor limits pause accepting without spinning.
mod support;
use support::*;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use h1server::{Config, Request, Response};

const GET_BLOCK: &[u8] = b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n";
const GET_ROOT: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

fn one_worker_config(queue_depth: usize) -> Config {
    let mut c = test_config();
    c.workers = 1;
    c.queue_depth = queue_depth;
    c.idle_timeout = Duration::from_secs(30);
    c
}

/// Sends a GET on a new connection and returns its status, or None on any failure
/// (refused, closed, timed out) — for polling a server that may not be serving yet.
fn try_get(addr: SocketAddr, timeout: Duration) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// CPU time (user + system) the process has used, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

#[test]
fn full_queue_is_answered_503_with_retry_after_and_never_reaches_a_handler() {
    let gate = Gate::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (g, c) = (gate.clone(), calls.clone());
    let server = TestServer::with_config(one_worker_config(1), move |req: &mut Request| {
        c.fetch_add(1, Ordering::SeqCst);
        if req.path() == "/block" {
            g.wait(Duration::from_secs(30));
        }
        Response::text("done\n")
    });
    let _release = OpenOnDrop(gate.clone());

    // A occupies the only worker…
    let mut a = Reader::new(server.connect());
    a.send(GET_BLOCK);
    assert!(wait_until(IO_TIMEOUT, || calls.load(Ordering::SeqCst) == 1));
    // …B takes the only queue slot…
    let mut b = Reader::new(server.connect());
    b.send(GET_BLOCK);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "B waits in the queue");
    // …so C is shed at once, while the gate is still closed.
    let mut c = Reader::new(server.connect());
    c.send(GET_BLOCK);
    let resp = c.read_response();
    assert_eq!(resp.status, 503, "{resp:?}");
    assert!(
        resp.header("retry-after").is_some(),
        "503 without Retry-After: {resp:?}"
    );
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    assert!(c.is_closed(), "the shed connection is closed");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    gate.open();
    assert_eq!(a.read_response().status, 200);
    assert_eq!(b.read_response().status, 200);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "only A and B reached the handler; the 503'd request never did"
    );
}

#[test]
fn panicking_handler_yields_500_and_the_worker_lives_on() {
    let server = TestServer::with_config(one_worker_config(8), |req: &mut Request| {
        if req.path() == "/panic" {
            panic!("handler exploded on purpose");
        }
        Response::text("still here\n")
    });
    for round in 0..3 {
        let mut r = Reader::new(server.connect());
        r.send(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
        let resp = r.read_response();
        assert_eq!(resp.status, 500, "round {round}: {resp:?}");
        // The one worker survived: the next request (same or new connection) is served.
        r.send(GET_ROOT);
        let resp = r.read_response();
        assert_eq!(resp.status, 200, "round {round}: {resp:?}");
        let resp = roundtrip(server.addr, GET_ROOT);
        assert_eq!(resp.status, 200, "round {round}: {resp:?}");
        assert_eq!(resp.text(), "still here\n");
    }
}

/// A server whose `/wait` handler polls `is_cancelled()` for up to 10 s and reports what it
/// saw (how long until the cancel, or None), plus a flag set when the handler started.
fn cancel_server() -> (
    TestServer,
    Arc<AtomicBool>,
    mpsc::Receiver<Option<Duration>>,
) {
    let started = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let s = started.clone();
    let server = TestServer::start(move |req: &mut Request| {
        s.store(true, Ordering::SeqCst);
        let t0 = Instant::now();
        let mut seen = None;
        while t0.elapsed() < Duration::from_secs(10) {
            if req.is_cancelled() {
                seen = Some(t0.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = tx.lock().unwrap().send(seen);
        Response::text("finished\n")
    });
    (server, started, rx)
}

/// Waits for the handler of `cancel_server` to return and checks it saw the cancellation.
fn assert_handler_saw_cancel<T: std::fmt::Debug>(rx: &mpsc::Receiver<Option<T>>) {
    let seen = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the handler never returned");
    assert!(
        seen.is_some(),
        "the handler polled for 10 s and never saw the cancellation"
    );
}

#[test]
fn client_disconnect_while_handler_runs_sets_the_cancel_flag() {
    let (server, started, rx) = cancel_server();
    let mut s = server.connect();
    s.write_all(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(wait_until(IO_TIMEOUT, || started.load(Ordering::SeqCst)));
    drop(s);
    assert_handler_saw_cancel(&rx);
}

#[test]
fn client_that_sends_a_request_and_closes_at_once_cancels_it() {
    let (server, started, rx) = cancel_server();
    let mut s = server.connect();
    s.write_all(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    drop(s); // the request and the FIN may reach the server in the same read
    // The FIN may arrive with the request (the handler runs, cancelled) or just after it
    // was queued (the batch is then not run at all). Whichever: a handler that runs must
    // see the cancellation.
    if wait_until(Duration::from_secs(2), || started.load(Ordering::SeqCst)) {
        assert_handler_saw_cancel(&rx);
    }
}

/// A FIN is a half-close: the client may still be reading (RFC 9112 §9.6). A request
/// queued behind a busy pool whose client then half-closes is still run — cancelled, as
/// Go cancels the request's context — and answered; before, it was skipped, so whether a
/// client that sends, shuts down its write side and reads got an answer depended on
/// whether the FIN came in the same read as the request.
#[test]
fn a_queued_request_whose_client_half_closed_is_run_cancelled_and_answered() {
    let gate = Gate::default();
    let ran: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let (g, r) = (gate.clone(), ran.clone());
    let server = TestServer::with_config(one_worker_config(16), move |req: &mut Request| {
        let cancelled = req.is_cancelled();
        r.lock().unwrap().push((req.path().to_string(), cancelled));
        if req.path() == "/block" {
            g.wait(Duration::from_secs(10));
        }
        Response::text(format!("ok {}\n", req.path()))
    });
    let mut blocker = Reader::new(server.connect());
    blocker.send(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(wait_until(IO_TIMEOUT, || ran.lock().unwrap().len() == 1));
    // The only worker is busy: this request waits in the queue, and its client
    // half-closes, then reads.
    let mut half = server.connect();
    half.write_all(b"GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200)); // read and queued by the loop
    half.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(200)); // the loop reads the FIN
    gate.open();
    assert_eq!(blocker.read_response().status, 200);
    half.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    half.read_to_end(&mut got).unwrap();
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("ok /half\n"),
        "the half-closed client's answer, then the close: {got:?}"
    );
    let resp = roundtrip(server.addr, b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(
        *ran.lock().unwrap(),
        [
            ("/block".to_string(), false),
            ("/half".to_string(), true),
            ("/after".to_string(), false)
        ]
    );
}

#[test]
fn third_connection_waits_for_a_free_slot_at_max_connections() {
    let mut cfg = test_config();
    cfg.max_connections = 2;
    cfg.idle_timeout = Duration::from_secs(30);
    cfg.header_read_timeout = Duration::from_secs(30);
    let server = TestServer::with_config(cfg, |_req: &mut Request| Response::text("ok\n"));
    let mut a = Reader::new(server.connect());
    a.send(GET_ROOT);
    assert_eq!(a.read_response().status, 200);
    let mut b = Reader::new(server.connect());
    b.send(GET_ROOT);
    assert_eq!(b.read_response().status, 200);

    // The kernel completes the handshake (backlog), but the server does not take it.
    let mut c = server.connect();
    c.write_all(GET_ROOT).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut tmp = [0u8; 256];
    match c.read(&mut tmp) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a third connection was served over max_connections=2: {other:?}"),
    }
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();

    drop(a); // frees a slot
    let mut c = Reader::new(c);
    let resp = c.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    // B is still served too.
    b.send(GET_ROOT);
    assert_eq!(b.read_response().status, 200);
}

#[test]
fn descriptor_exhaustion_pauses_accepting_without_spinning_and_recovers() {
    let hello = built_binary("hello", true);
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = ChildGuard(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 64 && exec '{}' --port {port}",
                hello.display()
            ))
            // Let accept(2) itself run out of descriptors: with the default the
            // max_connections gate (derived from the open-file limit) would stop first.
            .env("H1_MAX_CONNECTIONS", "1000")
            .env("H1_WORKERS", "2")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hello under ulimit -n 64"),
    );
    let pid = child.0.id(); // `exec`: the shell's PID is hello's
    let emfile_logged = Arc::new(AtomicBool::new(false));
    {
        let stderr = child.0.stderr.take().unwrap();
        let seen = emfile_logged.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Too many open files") {
                    seen.store(true, Ordering::SeqCst);
                }
            }
        });
    }
    assert!(
        wait_until(Duration::from_secs(20), || try_get(
            addr,
            Duration::from_secs(2)
        ) == Some(200)),
        "hello did not start under ulimit -n 64"
    );

    let mut clients = Vec::new();
    for _ in 0..100 {
        let mut s = connect(addr);
        s.write_all(GET_ROOT).unwrap();
        clients.push(s);
    }
    assert!(
        wait_until(IO_TIMEOUT, || emfile_logged.load(Ordering::SeqCst)),
        "100 connections under ulimit -n 64 never made accept fail with EMFILE"
    );
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "hello exited on EMFILE"
    );

    // Exhausted with connections pending: the loop must sleep, not spin.
    std::thread::sleep(Duration::from_millis(200));
    let cpu0 = cpu_time(pid);
    std::thread::sleep(Duration::from_secs(1));
    let burned = cpu_time(pid) - cpu0;
    assert!(
        burned < Duration::from_millis(500),
        "hello burned {burned:?} of CPU in 1 s while out of descriptors: it spins"
    );

    drop(clients);
    assert!(
        wait_until(Duration::from_secs(20), || try_get(
            addr,
            Duration::from_secs(2)
        ) == Some(200)),
        "hello does not serve again after the clients left"
    );
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "hello exited after EMFILE"
    );
}
