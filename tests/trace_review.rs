//! From the lifecycle review (docs/LIFECYCLE.md): the stage stamps and the trace lines of
//! the less common paths must tell what happened to each request, seen over real sockets.
//!
//! The tests share the process-wide logger, and connection ids restart at 1 with every
//! server: each takes `SERIAL` and clears the captured lines first.

mod support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use h1server::telemetry::{Event, RequestRecord};
use h1server::{Config, Request, Response, Server};
use support::*;

/// Keeps every h1server log line (its text).
#[path = "support/log_capture.rs"]
mod log_capture;
use log_capture::LINES;
static SERIAL: Mutex<()> = Mutex::new(());

/// Installs the capturing logger (once) and starts with no lines.
fn capture() -> std::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if log::set_logger(&LINES).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    LINES.0.lock().unwrap().clear();
    guard
}

fn lines_of(conn: u64) -> Vec<String> {
    let prefix = format!("conn={conn} ");
    LINES
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with(&prefix))
        .cloned()
        .collect()
}

fn records(tel: &h1server::Telemetry, into: &mut Vec<RequestRecord>) {
    into.extend(tel.take_events(1000).into_iter().filter_map(|e| match e {
        Event::Request(r) => Some(*r),
        _ => None,
    }));
}

/// A keep-alive request that arrives while the request before it is still at a worker
/// (HTTP/1.1 pipelining in separate writes): its first byte is stamped, and its
/// `stage=first_byte` line logged, when its own bytes are read. It used to inherit the
/// first byte of the request before it — a time before it was even sent — so its `parse`
/// (in `Server-Timing`, the metrics and the inspector) held the other request's whole
/// handler time, and its trace had no `first_byte` line.
#[test]
fn a_request_sent_while_the_one_before_it_runs_is_stamped_from_its_own_first_byte() {
    let _serial = capture();
    let server = Server::bind(Config {
        record_stages: true,
        ..test_config()
    })
    .unwrap();
    let tel = server.telemetry();
    tel.record_requests(64);
    let gate = Gate::default();
    let started = std::sync::Arc::new(AtomicBool::new(false));
    let (g, s) = (gate.clone(), started.clone());
    let srv = TestServer::with_server(server, move |req: &mut Request| {
        if req.path() == "/slow" {
            s.store(true, Ordering::SeqCst);
            g.wait(Duration::from_secs(10));
        }
        Response::text("ok\n")
    });
    let _open = OpenOnDrop(gate.clone());

    let first = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    let second = b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut c = Reader::new(srv.connect());
    c.send(first);
    // The first request's handler has started (so its `handler_start` is stamped)…
    assert!(wait_until(Duration::from_secs(5), || started.load(Ordering::SeqCst)));
    // …and only then the second request is sent.
    c.send(second);
    let total = (first.len() + second.len()) as u64;
    assert!(
        wait_until(Duration::from_secs(5), || tel.snapshot().bytes_in >= total),
        "the loop never read the second request"
    );
    gate.open();
    assert_eq!(c.read_response().status, 200);
    assert_eq!(c.read_response().status, 200);
    assert!(c.is_closed());

    let mut recs = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            records(&tel, &mut recs);
            recs.len() >= 2
        }),
        "{recs:#?}"
    );
    let (one, two) = (&recs[0], &recs[1]);
    assert_eq!((one.path.as_str(), two.path.as_str()), ("/slow", "/next"));
    assert_eq!((one.conn_id, one.seq, two.conn_id, two.seq), (1, 1, 1, 2));
    // The second request was sent after the first one's handler had started: its first
    // byte cannot be earlier than that.
    assert!(
        two.timeline.first_byte >= one.timeline.handler_start,
        "request 2's first byte is stamped before it was sent: {:#?} / {:#?}",
        one.timeline,
        two.timeline
    );
    assert!(two.timeline.first_byte <= two.timeline.head_parsed);

    // The trace: request 2 has its own first_byte line, after request 1's handler_start.
    assert!(
        wait_until(Duration::from_secs(5), || lines_of(1)
            .iter()
            .any(|l| l.contains("stage=closed"))),
        "{:#?}",
        lines_of(1)
    );
    let lines = lines_of(1);
    let at = |needle: &str| {
        let hits: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(needle))
            .collect();
        assert_eq!(hits.len(), 1, "{needle} in {lines:#?}");
        hits[0]
    };
    assert!(
        at("req=1 stage=handler_start") < at("req=2 stage=first_byte"),
        "{lines:#?}"
    );
    assert!(
        at("req=2 stage=first_byte") < at("req=2 stage=head_parsed"),
        "{lines:#?}"
    );
}

/// A request refused with 503 because the job queue is full never reaches the queue: its
/// trace says so, and has no `stage=queued` line (it used to log one before the refusal,
/// so `grep stage=` showed a shed request as queued).
#[test]
fn a_request_shed_with_503_is_not_traced_as_queued() {
    let _serial = capture();
    let gate = Gate::default();
    let started = std::sync::Arc::new(AtomicBool::new(false));
    let (g, s) = (gate.clone(), started.clone());
    let srv = TestServer::with_config(
        Config {
            workers: 1,
            queue_depth: 1,
            ..test_config()
        },
        move |_: &mut Request| {
            s.store(true, Ordering::SeqCst);
            g.wait(Duration::from_secs(10));
            Response::text("ok\n")
        },
    );
    let _open = OpenOnDrop(gate.clone());
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // Connection 1 holds the only worker…
    let mut one = Reader::new(srv.connect());
    one.send(req);
    assert!(wait_until(Duration::from_secs(5), || started.load(Ordering::SeqCst)));
    // …connection 2's request fills the queue…
    let mut two = Reader::new(srv.connect());
    two.send(req);
    assert!(
        wait_until(Duration::from_secs(5), || lines_of(2)
            .iter()
            .any(|l| l.contains("req=1 stage=queued"))),
        "{:#?}",
        lines_of(2)
    );
    // …and connection 3's is shed.
    let mut three = Reader::new(srv.connect());
    three.send(req);
    let shed = three.read_response();
    assert_eq!(shed.status, 503);
    assert_eq!(shed.header("retry-after"), Some("1"));
    assert!(three.is_closed());
    gate.open();
    assert_eq!(one.read_response().status, 200);
    assert_eq!(two.read_response().status, 200);

    let lines = lines_of(3);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("worker queue full: answering 503")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("stage=queued")),
        "a shed request is traced as queued: {lines:#?}"
    );
}

/// The inspector shows where each request's time went, so creating one turns on the
/// handler and write stamps (`record_stages`), which the library leaves off by default.
/// docs/LIFECYCLE.md's "In your own server" binds with the caller's config; with the
/// default one every row had only its parse segment and was drawn "not written".
#[test]
#[cfg(feature = "inspect")]
fn an_inspector_on_a_default_config_records_every_stage() {
    let _serial = capture();
    let server = Server::bind(test_config()).unwrap();
    assert!(!test_config().record_stages);
    let inspector = h1server::inspect::Inspector::new(server.telemetry(), 16);
    let mut app = h1server::Router::new();
    app.get("/hello", |_: &mut Request| Response::text("hi\n"));
    inspector.routes(&mut app, "/debug/requests");
    let srv = TestServer::with_server(server, app);

    let r = roundtrip(
        srv.addr,
        b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let mut hist = Vec::new();
    assert!(wait_until(Duration::from_secs(5), || {
        hist = inspector.history();
        !hist.is_empty()
    }));
    let t = hist[0].timeline;
    assert_eq!(hist[0].path, "/hello");
    assert!(
        t.first_byte != 0 && t.handler_start != 0 && t.handler_end != 0 && t.written != 0,
        "{t:#?}"
    );
    assert!(t.first_byte <= t.handler_start && t.handler_start <= t.handler_end);
    assert!(t.handler_end <= t.written);
}

/// Every per-request line carries `conn=N ` (docs/LIFECYCLE.md: `grep 'conn=1 '` picks a
/// connection's lines out of a busy log); the router's said `conn 1:` and fell out.
#[test]
fn the_routers_lines_carry_conn_eq_like_every_per_request_line() {
    let _serial = capture();
    let mut app = h1server::Router::new();
    app.get("/hello", |_: &mut Request| Response::text("hi\n"));
    let srv = TestServer::start(app);
    let mut c = Reader::new(srv.connect());
    c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    c.send(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(c.read_response().status, 405);
    assert!(c.is_closed());
    assert!(wait_until(Duration::from_secs(5), || lines_of(1)
        .iter()
        .any(|l| l.contains("stage=closed"))));
    let lines = lines_of(1);
    assert!(
        lines.iter().any(|l| l.contains("route GET /hello")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("405 POST")), "{lines:#?}");
    let all = LINES.0.lock().unwrap().clone();
    assert!(
        !all.iter().any(|l| l.starts_with("conn ")),
        "a line without conn=: {all:#?}"
    );
}

/// A request whose connection ends before its answer is out has no `written` stage: its
/// trace says "not written", as the inspector does. It used to log `stage=written` for it
/// too (with a 0 stamp), so the trace told a reset client's request was answered.
#[test]
fn a_request_whose_client_resets_is_traced_as_not_written() {
    let _serial = capture();
    let gate = Gate::default();
    let started = std::sync::Arc::new(AtomicBool::new(false));
    let (g, s) = (gate.clone(), started.clone());
    let srv = TestServer::start(move |req: &mut Request| {
        if req.path() == "/slow" {
            s.store(true, Ordering::SeqCst);
            g.wait(Duration::from_secs(10));
        }
        Response::text("ok\n")
    });
    let _open = OpenOnDrop(gate.clone());
    let mut c = srv.connect();
    // The first answer is left unread, so closing the socket sends a reset.
    std::io::Write::write_all(&mut c, b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(wait_until(Duration::from_secs(5), || lines_of(1)
        .iter()
        .any(|l| l.contains("req=1 stage=written"))));
    std::io::Write::write_all(&mut c, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(wait_until(Duration::from_secs(5), || started.load(Ordering::SeqCst)));
    drop(c);
    // The loop saw the reset: the close waits for the batch.
    assert!(
        wait_until(Duration::from_secs(5), || lines_of(1)
            .iter()
            .any(|l| l.contains("closing once its batch is back"))),
        "{:#?}",
        lines_of(1)
    );
    gate.open();
    assert!(
        wait_until(Duration::from_secs(5), || lines_of(1)
            .iter()
            .any(|l| l.contains("stage=closed"))),
        "{:#?}",
        lines_of(1)
    );
    let lines = lines_of(1);
    assert!(
        !lines.iter().any(|l| l.contains("req=2 stage=written")),
        "an answer that never went out is traced as written: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("req=2 not written")),
        "{lines:#?}"
    );
}
