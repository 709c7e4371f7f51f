//! Adversarial review of the response side against hostile or broken upstreams: the
//! reverse proxy (the event loop's relay, `conn/forward.rs`) and the blocking client
//! (`src/client`). Each test is a defect shown over real sockets on 127.0.0.1 and fails on
//! the code it was written against, unless it says it pins a behaviour that held up.
//! Every upstream here is a raw, scripted listener; every socket has a read timeout and
//! every loop is bounded, so a test fails instead of hanging.
#![cfg(feature = "proxy")]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use h1server::Config;
use h1server::proxy::{ProxyBuilder, ReverseProxy};
use support::*;

fn config() -> Config {
    Config {
        workers: 2,
        ..test_config()
    }
}

fn gateway(up: SocketAddr, tune: impl FnOnce(ProxyBuilder) -> ProxyBuilder) -> TestServer {
    let proxy = tune(ReverseProxy::builder().route("/", [format!("http://{up}")]))
        .build()
        .unwrap();
    TestServer::with_config(config(), proxy)
}

/// What a scripted upstream saw: each request's head, with the number of the connection
/// it came on.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(usize, String)>>>);

impl Seen {
    fn all(&self) -> Vec<(usize, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// A raw upstream on 127.0.0.1: for each accepted connection (numbered from 0) and each
/// request on it (numbered from 0, its body read by `Content-Length`), `answer(conn, n,
/// stream)` writes whatever it likes and returns whether to go on reading requests on
/// that connection (false: the connection is closed). Bounded: reads time out after 10 s.
fn scripted(
    answer: impl Fn(usize, usize, &mut TcpStream) -> bool + Send + Sync + 'static,
) -> (SocketAddr, Seen, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Seen::default();
    let conns = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let (seen2, conns2) = (seen.clone(), conns.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let conn = conns2.fetch_add(1, Ordering::SeqCst);
            let (answer, seen) = (answer.clone(), seen2.clone());
            std::thread::spawn(move || {
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let _ = s.set_nodelay(true);
                let mut buf = Vec::new();
                for n in 0.. {
                    let Some((head, len)) = read_request_head(&mut s, &mut buf) else {
                        return;
                    };
                    let mut tmp = [0u8; 4096];
                    while (buf.len() as u64) < len {
                        match read_some(&mut s, &mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&tmp[..k]),
                        }
                    }
                    buf.drain(..len as usize);
                    seen.0.lock().unwrap().push((conn, head));
                    if !answer(conn, n, &mut s) {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen, conns)
}

/// A gateway built from `proxy` (bodies up to 8 MiB buffered by the engine) and a POST
/// through it whose `len`-byte body is sent whole before the answer is read.
fn post_buffered_through(proxy: ProxyBuilder, len: usize) -> Resp {
    let cfg = Config {
        max_body_bytes: 8 << 20,
        ..config()
    };
    let gw = TestServer::with_config(cfg, proxy.build().unwrap());
    let mut s = connect(gw.addr);
    s.write_all(format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n").as_bytes())
        .unwrap();
    // The whole body: the engine buffers it before the handler runs.
    let _ = s.write_all(&vec![b'b'; len]);
    Reader::new(s).read_response()
}

fn send_all(s: &mut TcpStream, bytes: &[u8]) {
    let _ = s.write_all(bytes);
}

fn pause(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

// ---------------------------------------------------------------------------------------
// Defect: the loop pools an upstream connection without looking at what is left in its
// socket. Upstream sockets are registered edge-triggered; the read loop stops as soon as
// the answer ends (`fwd_end` changes the phase), so bytes or an EOF that arrived in the
// same edge as the answer's last bytes are never seen, and no new event will ever come
// for them. The next exchange takes that connection from the pool.

/// The upstream answers, then closes its side at once without saying
/// `Connection: close` (a keep-alive limit, a restart). The proxy pools that connection
/// anyway, and a POST sent a second later goes on it and is answered 502.
///
/// Correct: the close was in the socket long before the POST; a connection known to be
/// closed must not be chosen for a request (RFC 9112 §9.3: a client must handle an
/// asynchronous close, and §9.3.1 forbids retrying the non-idempotent request
/// automatically — so the only correct move is to never send it on a connection that was
/// already closed). The blocking client gets this right (its pool peeks before reuse).
#[test]
fn a_post_after_an_answer_the_upstream_closed_behind_is_not_sent_on_the_dead_connection() {
    let (up, seen, conns) = scripted(|conn, _n, s| {
        if conn == 0 {
            // The head now; the body and the close together, a moment later, so both are
            // in the proxy's socket by the time its loop reads the body.
            send_all(s, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
            pause(100);
            send_all(s, b"first");
            let _ = s.shutdown(std::net::Shutdown::Both);
            return false;
        }
        send_all(s, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond");
        true
    });
    let gw = gateway(up, |b| b);
    let mut r = Reader::new(connect(gw.addr));
    r.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
    let a = r.read_response();
    assert_eq!((a.status, a.text().as_str()), (200, "first"));
    // Ample time for the proxy to learn of the close.
    pause(300);
    r.send(b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\ndata");
    let b = r.read_response();
    assert_eq!(
        (b.status, b.text().as_str()),
        (200, "second"),
        "the POST went out on the connection the upstream had closed ({} connections, seen {:?})",
        conns.load(Ordering::SeqCst),
        seen.all()
    );
}

/// A broken upstream writes one answer and, in the same write, bytes nobody asked for —
/// here a complete second response. When the answer ends exactly where one read of the
/// loop ends (16 KiB), the rest stays in the socket unseen, the connection is pooled, and
/// the next client's request is answered with those bytes: the responses are out of step
/// from then on (the real answer to request 2 is given to request 3).
///
/// Correct: a connection with unread bytes after a complete response is not reusable
/// (RFC 9112 §9.3, §6.3: the bytes are not a response to anything; reading them as the
/// next request's answer is response desynchronisation). The blocking client's pool
/// discards such a connection ("bytes nobody asked for").
#[test]
fn bytes_left_behind_an_answer_at_a_read_boundary_are_never_served_as_the_next_answer() {
    const BODY: usize = 16 * 1024; // the loop's READ_CHUNK
    let (up, seen, _conns) = scripted(|conn, n, s| {
        if conn == 0 && n == 0 {
            send_all(
                s,
                format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").as_bytes(),
            );
            // The proxy has the head (and waits for the body) before the rest comes.
            pause(100);
            let mut rest = vec![b'a'; BODY];
            rest.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled");
            send_all(s, &rest);
            return true;
        }
        let body = format!("answer to request {n} on connection {conn}");
        send_all(
            s,
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        true
    });
    let gw = gateway(up, |b| b);
    let a = roundtrip(gw.addr, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((a.status, a.body.len()), (200, BODY));
    pause(200);
    let b = roundtrip(gw.addr, b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_ne!(
        b.text(),
        "smuggled",
        "request 2 was answered with the bytes left behind answer 1 (seen {:?})",
        seen.all()
    );
    assert_eq!(b.status, 200);
}

// ---------------------------------------------------------------------------------------
// Defect: interim responses from the upstream are swallowed by the proxy.

/// The upstream sends `103 Early Hints` (with the `Link` a browser preloads from) before
/// its `200`. The proxy's client, an HTTP/1.1 one, never sees the 103.
///
/// Correct: RFC 9110 §15.2: "A proxy MUST forward 1xx responses unless the proxy itself
/// requested the generation of the 1xx response" (only a `100` to an `Expect` the proxy
/// added itself, or one the engine already answered, may be dropped); and never to an
/// HTTP/1.0 client (same section). `conn/forward.rs` ignores `Event::Informational` in
/// `Stage::Head`.
#[test]
fn an_upstreams_103_early_hints_reaches_an_http11_client() {
    let (up, _seen, _conns) = scripted(|_conn, _n, s| {
        send_all(
            s,
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n",
        );
        pause(50);
        send_all(s, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        true
    });
    let gw = gateway(up, |b| b);
    let mut r = Reader::new(connect(gw.addr));
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let first = r.read_response();
    assert_eq!(
        (first.status, first.header("link")),
        (103, Some("</style.css>; rel=preload; as=style")),
        "the 103 was dropped: first answer {} {:?}",
        first.status,
        first.text()
    );
    let last = r.read_response();
    assert_eq!((last.status, last.text().as_str()), (200, "ok"));
}

// ---------------------------------------------------------------------------------------
// Defect (blocking client): the circuit breaker never hears of failures in the body.

/// An upstream that answers every call with a good head and then fails the body (closes
/// early, here) is never cut off by the breaker: `guarded` (src/client/call.rs) records
/// the outcome when the head arrives, so the body's failure is not counted.
///
/// Correct (docs/CLIENT.md, "Errors"): `Io` — "a reset mid-body" — and `Protocol`
/// (framing errors) and `Timeout` (`Read`) count for the breaker; 3 such calls in a row
/// with `failure_threshold` 3 open it.
#[test]
fn failures_in_the_body_count_for_the_breaker() {
    use h1server::client::{BreakerPolicy, BreakerState, Client};
    let (up, _seen, _conns) = scripted(|_conn, _n, s| {
        // 2 of the 10 bytes announced, then the connection closes.
        send_all(s, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
        false
    });
    let c = Client::builder()
        .timeout(IO_TIMEOUT)
        .breaker(BreakerPolicy::new(3, Duration::from_secs(60)))
        .build();
    let url = format!("http://{up}/");
    for i in 0..3 {
        let resp = c.get(&url).send().expect("the head is fine");
        let err = resp.bytes().expect_err("the body is cut short");
        assert!(err.to_string().contains("closed"), "call {i}: {err}");
    }
    let b = c.breaker(&up.to_string()).expect("made on first use");
    assert!(
        matches!(b.state(), BreakerState::Open { .. }),
        "3 failed bodies in a row, breaker {:?}",
        b.state()
    );
}

// ---------------------------------------------------------------------------------------
// Defect: an upstream's early final answer to a buffered request body is lost.

/// A POST whose body the engine buffered (under `max_body_bytes`) goes upstream with its
/// body; the upstream refuses it at once — `413` with `Connection: close` — and closes
/// without reading the body, as servers do for a body too large. The proxy's write then
/// fails (reset), and the client is answered `502` instead of the upstream's `413`.
///
/// Correct: the upstream's answer is the client's (RFC 9110 §15.5.14; RFC 9112 §9.6: a
/// client sending a body "SHOULD ... monitor the connection for an error status code"
/// and a server may close after answering without reading the body). The streamed-upload
/// path already does this (`fwd_body_failed` reads what the upstream sent before failing
/// the exchange); the buffered path (`fwd_write` → `fwd_io_error` → `fwd_fail`) does not.
#[test]
fn an_upstreams_early_413_to_a_buffered_body_reaches_the_client() {
    const LEN: usize = 6 << 20;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut buf = Vec::new();
        if read_request_head(&mut s, &mut buf).is_some() {
            send_all(
                &mut s,
                b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large",
            );
        }
        // Closed with the body unread: the kernel resets the connection.
    });
    let resp = post_buffered_through(
        ReverseProxy::builder().route("/", [format!("http://{up}")]),
        LEN,
    );
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (413, "too large"),
        "the upstream's answer was lost"
    );
}

/// The same refusal from an upstream that neither reads the rest of the body nor closes
/// (it keeps the connection, as a server that answers early and then waits for the
/// client to give up may). The proxy's write stops on a full socket, and the answer sat
/// in the upstream socket unread: reading began only once the whole request was written,
/// so the exchange waited for `response_header_timeout` and the client got `504`.
///
/// Correct: the proxy watches the upstream while it writes the request (RFC 9112 §9.6:
/// a client sending a body "SHOULD ... monitor the connection for an error status code"),
/// and the final answer that comes is the client's; the rest of the body is not sent and
/// that upstream connection carries nothing else.
#[test]
fn an_upstreams_early_413_without_a_close_reaches_the_client_at_once() {
    const LEN: usize = 6 << 20;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut buf = Vec::new();
        if read_request_head(&mut s, &mut buf).is_some() {
            send_all(
                &mut s,
                b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\n\r\ntoo large",
            );
        }
        // Neither reads nor closes until the test is over (bounded).
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
    });
    let resp = post_buffered_through(
        ReverseProxy::builder()
            .route("/", [format!("http://{up}")])
            .response_header_timeout(Duration::from_secs(60))
            .write_timeout(Duration::from_secs(60)),
        LEN,
    );
    drop(done_tx);
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (413, "too large"),
        "the upstream's early answer was not read while the request was being written"
    );
}

// ---------------------------------------------------------------------------------------
// Defect: a body that is invalid from its first byte gets the client no answer at all.

/// The upstream's head is fine but its chunked body is invalid at once (a chunk-size of
/// 18 hex digits, past any u64), and both come in one write. The loop decides the head,
/// appends it to the client's buffer, meets the bad chunk in the same pass and closes the
/// client's connection (`Close::UpstreamFailed`) with the head never written: the client
/// gets an empty reply — no status at all.
///
/// Correct: nothing had been sent to the client, so the answer can still be the gateway
/// error it is — `502` (RFC 9110 §15.6.3: "received an invalid response from an inbound
/// server"), as for an invalid head. (Cutting the body off is only for a failure after
/// the head went out, docs/PROXY.md "Errors".)
#[test]
fn an_upstream_body_invalid_before_any_byte_went_out_is_a_502_not_an_empty_reply() {
    let (up, _seen, _conns) = scripted(|_conn, _n, s| {
        send_all(
            s,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nok\r\n0\r\n\r\n",
        );
        false
    });
    let gw = gateway(up, |b| b);
    let mut s = connect(gw.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 502 "),
        "the client got {text:?} (nothing at all: an empty reply)"
    );
}
