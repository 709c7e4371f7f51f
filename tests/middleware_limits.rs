//! The limit middleware on the wire: per-IP and global rate limits answer 429 with
//! Retry-After and recover after the refill, the concurrency limit sheds with 503, a
//! handler deadline answers 503 while the handler still runs (and cancels it), and an
//! Idempotency-Key makes a retried POST replay instead of running twice.
#![cfg(feature = "middleware")]
mod support;
use support::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use h1server::middleware::{ConcurrencyLimit, Idempotency, RateLimit, Stack, Timeout};
use h1server::{Handler, Request, Response};

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes()
}

fn post(path: &str, key: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nIdempotency-Key: {key}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn hello(_: &mut Request) -> Response {
    Response::text("hello\n")
}

/// Sends `n` pipelined copies of `req` in one write and reads the `n` statuses.
fn burst(server: &TestServer, req: &[u8], n: usize) -> Vec<Resp> {
    let mut r = Reader::new(server.connect());
    r.send(&req.repeat(n));
    (0..n).map(|_| r.read_response()).collect()
}

#[test]
fn per_ip_limit_answers_429_with_retry_after_after_the_burst_then_recovers() {
    // 2 at once, then 1 per second: the third request of a pipelined burst is refused.
    let server = TestServer::start(Stack::new(hello).with(RateLimit::per_ip(1.0, 2)));
    let got = burst(&server, &get("/", ""), 3);
    assert_eq!(got[0].status, 200);
    assert_eq!(got[1].status, 200);
    assert_eq!(got[2].status, 429, "{:?}", got[2]);
    assert_eq!(got[2].header("retry-after"), Some("1"));
    assert!(!got[2].body.is_empty());
    // Honour Retry-After: a token is back.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(roundtrip(server.addr, &get("/", "")).status, 200);
}

#[test]
fn each_forwarded_client_has_its_own_bucket_when_forwarded_for_is_trusted() {
    let limit = RateLimit::per_ip(0.1, 1).trust_forwarded_for(true);
    let server = TestServer::start(Stack::new(hello).with(limit));
    let alice = get("/", "X-Forwarded-For: 203.0.113.1\r\n");
    let bob = get("/", "X-Forwarded-For: 203.0.113.2, 10.0.0.1\r\n");
    assert_eq!(roundtrip(server.addr, &alice).status, 200);
    let refused = roundtrip(server.addr, &alice);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("10"));
    assert_eq!(
        roundtrip(server.addr, &bob).status,
        200,
        "bob has his own bucket"
    );
}

#[test]
fn the_global_limit_is_shared_by_all_clients() {
    let server = TestServer::start(Stack::new(hello).with(RateLimit::global(0.2, 2)));
    let a = get("/", "X-Forwarded-For: 203.0.113.1\r\n");
    let b = get("/", "X-Forwarded-For: 203.0.113.2\r\n");
    assert_eq!(roundtrip(server.addr, &a).status, 200);
    assert_eq!(roundtrip(server.addr, &b).status, 200);
    let refused = roundtrip(server.addr, &b);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(roundtrip(server.addr, &a).status, 429);
}

#[test]
fn concurrency_limit_sheds_with_503_while_the_slot_is_held_and_frees_it_after() {
    let gate = Gate::default();
    let (entered_tx, entered) = mpsc::channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let (g, c) = (gate.clone(), calls.clone());
    let entered_tx = Mutex::new(entered_tx);
    let app = move |req: &mut Request| {
        c.fetch_add(1, Ordering::SeqCst);
        if req.path() == "/block" {
            let _ = entered_tx.lock().unwrap().send(());
            g.wait(Duration::from_secs(20));
        }
        Response::text("done\n")
    };
    let limit = Arc::new(ConcurrencyLimit::new(1));
    let server = TestServer::start(Stack::new(app).with_arc(limit.clone()));
    let _release = OpenOnDrop(gate.clone());

    let mut a = Reader::new(server.connect());
    a.send(&get("/block", ""));
    entered
        .recv_timeout(IO_TIMEOUT)
        .expect("A reached the handler");
    assert_eq!(limit.in_flight(), 1);

    // The second worker is free, but the only slot is taken.
    let shed = roundtrip(server.addr, &get("/block", ""));
    assert_eq!(shed.status, 503, "{shed:?}");
    assert_eq!(shed.header("retry-after"), Some("1"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the shed request never ran"
    );

    gate.open();
    assert_eq!(a.read_response().status, 200);
    assert!(wait_until(IO_TIMEOUT, || limit.in_flight() == 0));
    assert_eq!(roundtrip(server.addr, &get("/", "")).status, 200);
}

#[test]
fn expired_handler_gets_503_at_its_deadline_and_sees_its_request_cancelled() {
    let gate = Gate::default();
    let (events_tx, events) = mpsc::channel();
    let returned = Arc::new(AtomicUsize::new(0));
    let (g, ret) = (gate.clone(), returned.clone());
    let events_tx = Mutex::new(events_tx);
    let app = move |req: &mut Request| {
        if req.path() != "/slow" {
            return Response::text("fast\n");
        }
        // Sleep until cancelled (bounded), report it, then hold on until the test says.
        let t0 = Instant::now();
        while !req.is_cancelled() && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = events_tx.lock().unwrap().send(req.is_cancelled());
        g.wait(Duration::from_secs(20));
        ret.fetch_add(1, Ordering::SeqCst);
        Response::text("too late\n")
    };
    let server = TestServer::start(Stack::new(app).with(Timeout::new(Duration::from_millis(200))));
    let _release = OpenOnDrop(gate.clone());

    let mut r = Reader::new(server.connect());
    r.send(&get("/slow", ""));
    let resp = r.read_response();
    assert_eq!(resp.status, 503);
    assert_eq!(resp.text(), "handler timeout\n");
    assert_eq!(
        returned.load(Ordering::SeqCst),
        0,
        "answered while the handler runs"
    );
    assert_eq!(
        events.recv_timeout(IO_TIMEOUT),
        Ok(true),
        "the handler saw the cancel"
    );

    // The connection and the server stay healthy; the late answer never shows up.
    r.send(&get("/", ""));
    let next = r.read_response();
    assert_eq!((next.status, next.text().as_str()), (200, "fast\n"));
    gate.open();
    assert!(wait_until(IO_TIMEOUT, || returned.load(Ordering::SeqCst) == 1));
    r.send(&get("/", ""));
    assert_eq!(r.read_response().text(), "fast\n");
}

#[test]
fn a_per_route_timeout_limits_only_its_route() {
    let gate = Gate::default();
    let g = gate.clone();
    let slow_route = Stack::new(move |_: &mut Request| {
        g.wait(Duration::from_secs(20));
        Response::text("slow\n")
    })
    .with(Timeout::new(Duration::from_millis(100)));
    let app = move |req: &mut Request| match req.path() {
        "/slow" => slow_route.call(req),
        _ => {
            // Longer than the route's deadline, but this route has none.
            std::thread::sleep(Duration::from_millis(300));
            Response::text("unhurried\n")
        }
    };
    let server = TestServer::start(app);
    let _release = OpenOnDrop(gate.clone());
    assert_eq!(roundtrip(server.addr, &get("/slow", "")).status, 503);
    let other = roundtrip(server.addr, &get("/other", ""));
    assert_eq!((other.status, other.text().as_str()), (200, "unhurried\n"));
}

#[test]
fn a_panic_under_a_timeout_is_a_500_and_the_server_lives_on() {
    let app = |req: &mut Request| {
        if req.path() == "/panic" {
            panic!("handler bug on purpose");
        }
        Response::text("ok\n")
    };
    let server = TestServer::start(Stack::new(app).with(Timeout::new(IO_TIMEOUT)));
    assert_eq!(roundtrip(server.addr, &get("/panic", "")).status, 500);
    assert_eq!(roundtrip(server.addr, &get("/", "")).status, 200);
}

/// An app counting the orders it created; `/orders/slow` waits on the gate first.
fn orders(gate: Gate, entered: mpsc::Sender<()>) -> (Stack, Arc<AtomicUsize>) {
    let created = Arc::new(AtomicUsize::new(0));
    let c = created.clone();
    let entered = Mutex::new(entered);
    let app = move |req: &mut Request| {
        if req.path() == "/orders/slow" {
            let _ = entered.lock().unwrap().send(());
            gate.wait(Duration::from_secs(20));
        }
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        Response::json_text(format!("{{\"order\":{n}}}\n")).with_status(201)
    };
    (Stack::new(app).with(Idempotency::new()), created)
}

#[test]
fn a_retried_post_with_an_idempotency_key_is_replayed_not_run_again() {
    let (app, created) = orders(Gate::default(), mpsc::channel().0);
    let server = TestServer::start(app);
    let first = roundtrip(server.addr, &post("/orders", "order-7", "{\"qty\":1}"));
    assert_eq!(first.status, 201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let retry = roundtrip(server.addr, &post("/orders", "order-7", "{\"qty\":1}"));
    assert_eq!(retry.status, 201);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.header("content-type"), Some("application/json"));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(created.load(Ordering::SeqCst), 1, "the handler ran once");
    // Another key is another operation.
    let other = roundtrip(server.addr, &post("/orders", "order-8", "{\"qty\":1}"));
    assert_eq!(other.text(), "{\"order\":2}\n");
}

#[test]
fn a_duplicate_arriving_while_the_first_runs_gets_409() {
    let gate = Gate::default();
    let (entered_tx, entered) = mpsc::channel();
    let (app, created) = orders(gate.clone(), entered_tx);
    let server = TestServer::start(app);
    let _release = OpenOnDrop(gate.clone());

    let mut first = Reader::new(server.connect());
    first.send(&post("/orders/slow", "dup-1", "{}"));
    entered
        .recv_timeout(IO_TIMEOUT)
        .expect("the first request runs");
    let dup = roundtrip(server.addr, &post("/orders/slow", "dup-1", "{}"));
    assert_eq!(dup.status, 409, "{dup:?}");

    gate.open();
    let done = first.read_response();
    assert_eq!(done.status, 201);
    let retry = roundtrip(server.addr, &post("/orders/slow", "dup-1", "{}"));
    assert_eq!(retry.body, done.body);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

#[test]
fn a_key_reused_on_another_path_gets_422() {
    let (app, created) = orders(Gate::default(), mpsc::channel().0);
    let server = TestServer::start(app);
    assert_eq!(
        roundtrip(server.addr, &post("/orders", "k-9", "{}")).status,
        201
    );
    let reused = roundtrip(server.addr, &post("/refunds", "k-9", "{}"));
    assert_eq!(reused.status, 422, "{reused:?}");
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

#[test]
fn a_timeout_cancels_only_its_own_request_of_a_pipelined_batch() {
    let seen: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let s2 = seen.clone();
    let slow = Stack::new(|req: &mut Request| {
        std::thread::sleep(Duration::from_millis(400));
        Response::text(format!("late {}", req.is_cancelled()))
    })
    .with(Timeout::new(Duration::from_millis(100)));
    let srv = TestServer::start(move |req: &mut Request| {
        if req.path() == "/slow" {
            return slow.call(req);
        }
        s2.lock()
            .unwrap()
            .push((req.path().to_string(), req.is_cancelled()));
        Response::text("fast")
    });
    let mut r = Reader::new(srv.connect());
    r.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.read_response().status, 503);
    assert_eq!(r.read_response().status, 200);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("/next".to_string(), false)],
        "the request after the timed-out one is not cancelled"
    );
}
