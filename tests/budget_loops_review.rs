//! `max_buffered_bytes` with several event loops: one budget for the whole server, not a
//! share per loop. Bodies that together fit are read wherever they land; bodies that
//! together do not fit are refused, whichever loops they are on; a body waiting for memory
//! on one loop reads on when a connection on another loop gives memory back.
//!
//! Which loop holds a connection is read from its id (as in tests/loops_review.rs): loop
//! `i` of `n` gives ids `i + 1`, `i + 1 + n`, …

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use h1server::{Config, Request, Response};
use support::*;

/// What a connection holds outside the budget: its first read buffer (`READ_BUF`).
const FIRST_BUF: usize = 16 * 1024;
const BUDGET: usize = 128 * 1024;

fn two_loops() -> Config {
    Config {
        loops: 2,
        workers: 4,
        max_buffered_bytes: BUDGET,
        ..test_config()
    }
}

/// A server with two loops whose `/hold` handler waits for `gate` (counting in `entered`
/// the requests that reached it) and answers the body's length; `/id` answers the
/// connection id, anything else the body's length at once.
fn server(gate: &Gate, entered: &Arc<AtomicUsize>) -> TestServer {
    let (gate, entered) = (gate.clone(), entered.clone());
    TestServer::with_config(two_loops(), move |req: &mut Request| match req.path() {
        "/id" => Response::text(req.conn_id().to_string()),
        "/hold" => {
            entered.fetch_add(1, Ordering::SeqCst);
            gate.wait(IO_TIMEOUT);
            Response::text(req.body().len().to_string())
        }
        _ => Response::text(req.body().len().to_string()),
    })
}

/// The loop a connection is on, asked with a plain GET (which takes nothing from the
/// budget).
fn loop_of(r: &mut Reader) -> usize {
    r.send(b"GET /id HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    let id: u64 = resp.text().parse().unwrap();
    ((id - 1) % 2) as usize
}

/// Two connections on the same loop (`same`) or on different loops, opened until found.
fn pair(server: &TestServer, same: bool) -> (Reader, Reader) {
    let mut open: Vec<(Reader, usize)> = Vec::new();
    for _ in 0..64 {
        let mut r = Reader::new(server.connect());
        let l = loop_of(&mut r);
        if let Some(i) = open.iter().position(|(_, m)| (*m == l) == same) {
            return (open.swap_remove(i).0, r);
        }
        open.push((r, l));
    }
    panic!("64 connections, no pair (same loop: {same})");
}

/// A `Content-Length` request to `path` whose body the budget is charged `charge` bytes
/// for: the read buffer is sized to hold the request whole, and what passes the first
/// buffer counts.
fn post_charging(path: &str, charge: usize) -> Vec<u8> {
    let total = charge + FIRST_BUF;
    let head = |n: usize| format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n\r\n");
    let n = total - head(total).len();
    let mut req = head(n).into_bytes();
    assert_eq!(req.len() + n, total, "the head's length moved with n");
    req.resize(total, b'b');
    req
}

fn body_len(req: &[u8]) -> String {
    let at = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (req.len() - at).to_string()
}

/// Two bodies that together fit the budget, on two connections of the same loop, held by
/// their handlers at once: both are read. (Before, each loop had half the budget: the
/// second was answered 503 on a server with room.)
#[test]
fn two_bodies_that_fit_the_whole_budget_are_both_read_on_one_loop() {
    let (gate, entered) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let server = server(&gate, &entered);
    let _open = OpenOnDrop(gate.clone());
    let (mut a, mut b) = pair(&server, true);
    // 36 KiB each beyond the first buffer: 72 KiB, more than half the budget.
    let req = post_charging("/hold", 36 * 1024);
    a.send(&req);
    assert!(wait_until(IO_TIMEOUT, || entered.load(Ordering::SeqCst) == 1));
    b.send(&req);
    if !wait_until(IO_TIMEOUT, || entered.load(Ordering::SeqCst) == 2) {
        let resp = b.read_response();
        panic!("the second body (same loop, the budget has room) was not read: {resp:?}");
    }
    gate.open();
    for r in [&mut a, &mut b] {
        let resp = r.read_response();
        assert_eq!(
            (resp.status, resp.text()),
            (200, body_len(&req)),
            "{resp:?}"
        );
    }
}

/// A body more than half the budget (a loop's former share), on an idle server, is read;
/// one more than the whole budget is still refused for good: 413, no `Retry-After`
/// (RFC 9110 §15.5.14).
#[test]
fn a_body_over_a_loops_former_share_is_read_on_an_idle_server() {
    let (gate, entered) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let server = server(&gate, &entered);
    let req = post_charging("/len", 100 * 1024);
    let resp = roundtrip(server.addr, &req);
    assert_eq!(
        (resp.status, resp.text()),
        (200, body_len(&req)),
        "{resp:?}"
    );

    let req = post_charging("/len", BUDGET + 1);
    let resp = roundtrip(server.addr, &req);
    assert_eq!(resp.status, 413, "{resp:?}");
    assert_eq!(resp.header("Retry-After"), None, "{resp:?}");
}

/// The budget holds across loops: a body held on one loop and one arriving on the other
/// that together pass it are never both read. The second is refused with 503 +
/// `Retry-After` at once (a small one still fits), and is read once the first is gone.
#[test]
fn bodies_on_two_loops_that_pass_the_budget_together_are_not_both_read() {
    let (gate, entered) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let server = server(&gate, &entered);
    let _open = OpenOnDrop(gate.clone());
    let (mut held, mut other) = pair(&server, false);
    held.send(&post_charging("/hold", 96 * 1024));
    assert!(wait_until(IO_TIMEOUT, || entered.load(Ordering::SeqCst) == 1));
    // 48 KiB more: 144 KiB in all, past the 128 KiB budget (each within half of it).
    let big = post_charging("/len", 48 * 1024);
    other.send(&big);
    let resp = other.read_response();
    assert_eq!(resp.status, 503, "{resp:?}");
    assert_eq!(resp.header("Retry-After"), Some("1"), "{resp:?}");
    // What fits beside the held body is read (on any loop).
    let small = post_charging("/len", 16 * 1024);
    let resp = roundtrip(server.addr, &small);
    assert_eq!(
        (resp.status, resp.text()),
        (200, body_len(&small)),
        "{resp:?}"
    );

    gate.open();
    let resp = held.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    // The first body's memory is back once its answer is out: the second fits now.
    assert!(wait_until(IO_TIMEOUT, || {
        roundtrip(server.addr, &big).status == 200
    }));
}

/// A body waiting for memory on one loop reads on when a request on the other loop
/// gives memory back. The waiting body is chunked behind a 16 000-byte head: its read
/// buffer must grow past the first 16 KiB to read on (its decoded bytes need little),
/// and with 3 000 bytes of the budget left it cannot; it waits (nothing is refused)
/// until the held request on the other loop is answered.
#[test]
fn a_body_waiting_for_memory_reads_on_when_another_loop_gives_memory_back() {
    let (gate, entered) = (Gate::default(), Arc::new(AtomicUsize::new(0)));
    let server = server(&gate, &entered);
    let _open = OpenOnDrop(gate.clone());
    let (mut held, mut waiter) = pair(&server, false);
    held.send(&post_charging("/hold", BUDGET - 3000));
    assert!(wait_until(IO_TIMEOUT, || entered.load(Ordering::SeqCst) == 1));
    let before = server.handle().telemetry().snapshot().bytes_in;

    let start = "POST /len HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-Pad: ";
    let pad = 16_000 - start.len() - "\r\n\r\n".len();
    let mut req = format!("{start}{}\r\n\r\n", "p".repeat(pad)).into_bytes();
    assert_eq!(req.len(), 16_000);
    for _ in 0..8 {
        req.extend_from_slice(b"1000\r\n");
        req.extend_from_slice(&[b'c'; 0x1000]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    waiter.send(&req);
    // The server reads the first buffer's worth and stops: the body waits for memory.
    let read = || server.handle().telemetry().snapshot().bytes_in - before;
    assert!(wait_until(IO_TIMEOUT, || read() >= FIRST_BUF as u64));
    assert_eq!(
        read(),
        FIRST_BUF as u64,
        "the waiting body was read past its buffer"
    );

    // The other loop's request is answered and gives its memory back.
    gate.open();
    let resp = held.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    let resp = waiter.read_response();
    assert_eq!(
        (resp.status, resp.text()),
        (200, "32768".into()),
        "{resp:?}"
    );
}
