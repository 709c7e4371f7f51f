//! An independent review of a day's changes (the shared memory budget, connections spread
//! over the loops from one listener, resets on a cut-off body, requests still being
//! written kept in their connection, `%` escapes in the path): each test here failed on
//! the code before its fix.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use h1server::{Request, Response, Telemetry};
use support::*;

/// How many connections closed for `reason` (a `CLOSE_REASONS` label).
fn closed(tel: &Telemetry, reason: &str) -> u64 {
    tel.snapshot()
        .closed
        .iter()
        .find(|(r, _)| *r == reason)
        .map_or(0, |(_, n)| *n)
}

/// Everything the client reads until the end of the connection, and how it ended: `Ok`
/// for an orderly close (FIN), the error kind for a reset.
fn read_to_end(s: &mut TcpStream) -> (Vec<u8>, Result<(), std::io::ErrorKind>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while got.len() < 64 << 20 {
        match s.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Err(e.kind())),
        }
    }
    panic!("more than 64 MiB")
}

/// The length of the first response in `got` when its head and its whole
/// `Content-Length` body are there.
fn first_response_complete(got: &[u8]) -> bool {
    let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&got[..at]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("the first answer has a Content-Length");
    got.len() >= at + 4 + len
}

// ------------------------------------------------------------------ resets

/// The complete answer pipelined before a failed stream. The client asked for `/big` and
/// then `/fail` in one write and reads nothing yet; `/big` is handed to the kernel whole
/// (more than the client's receive window: part of it waits in the server's send queue),
/// then `/fail`'s producer fails. The stream is chunked: the missing last chunk and the
/// close tell an HTTP/1.1 client it is incomplete (RFC 9112 §7.1), so no reset is needed
/// — and a reset (`SO_LINGER` 0) throws away what the send queue still holds: the tail
/// of `/big`, an answer complete and correct, never reaches the client.
#[test]
fn a_failed_chunked_stream_does_not_reset_away_the_complete_answer_before_it() {
    const BIG: usize = 1 << 20;
    const PART: usize = 4096;
    let go = Gate::default();
    let g = go.clone();
    let server = TestServer::start(move |req: &mut Request| match req.path() {
        "/big" => Response::new(200).with_body(vec![b'x'; BIG]),
        _ => {
            let (resp, tx) = Response::channel();
            let g = g.clone();
            std::thread::spawn(move || {
                let _ = tx.send(vec![b'p'; PART]);
                g.wait(IO_TIMEOUT);
                panic!("the producer failed (expected by this test)");
            });
            resp
        }
    });
    let _open = OpenOnDrop(go.clone());
    let tel = server.handle().telemetry();
    let mut c = server.connect();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // `/big`'s head is well under PART bytes: past BIG + PART, all of `/big` is out of
    // the server's buffer (the stream's bytes come after it).
    assert!(
        wait_until(IO_TIMEOUT, || tel.snapshot().bytes_out
            >= (BIG + PART) as u64),
        "the server did not hand /big whole to the kernel: {} bytes out",
        tel.snapshot().bytes_out
    );
    go.open();
    assert!(wait_until(IO_TIMEOUT, || closed(&tel, "stream_aborted") == 1));
    let (got, end) = read_to_end(&mut c);
    assert!(
        first_response_complete(&got),
        "the complete answer before the failed stream was cut off ({} bytes read, ended {end:?})",
        got.len()
    );
}

/// The same through the gateway: an HTTP/1.1 client pipelines `/big` and `/cut`; the
/// upstream answers `/big` whole (the gateway relays it into the kernel, where the tail
/// waits for the client's window) and cuts `/cut`'s chunked body short. The client's
/// answer to `/cut` is chunked, so the missing last chunk and the close say it is
/// incomplete; a reset threw away the tail of `/big`.
#[cfg(feature = "proxy")]
#[test]
fn a_relay_cut_short_does_not_reset_away_the_complete_answer_before_it() {
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex, mpsc};
    const BIG: usize = 1 << 20;
    const PART: usize = 4096;
    let (cut_tx, cut_rx) = mpsc::channel::<()>();
    let cut_rx = Arc::new(Mutex::new(cut_rx));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(8) {
            let Ok(mut s) = s else { return };
            let cut_rx = cut_rx.clone();
            std::thread::spawn(move || {
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut buf = Vec::new();
                while let Some((head, _)) = read_request_head(&mut s, &mut buf) {
                    if head.starts_with("GET /big ") {
                        let mut out = format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n")
                            .into_bytes();
                        out.resize(out.len() + BIG, b'x');
                        if s.write_all(&out).is_err() {
                            return;
                        }
                    } else {
                        let mut out = format!(
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                            PART * 2
                        )
                        .into_bytes();
                        out.resize(out.len() + PART, b'p');
                        let _ = s.write_all(&out);
                        let _ = cut_rx.lock().unwrap().recv_timeout(IO_TIMEOUT);
                        return; // closed inside the chunk
                    }
                }
            });
        }
    });
    let proxy = h1server::proxy::ReverseProxy::builder()
        .route("/", [format!("http://{up}")])
        .build()
        .unwrap();
    let gw = TestServer::with_config(test_config(), proxy);
    let tel = gw.handle().telemetry();
    let mut c = gw.connect();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(
        wait_until(IO_TIMEOUT, || tel.snapshot().bytes_out
            >= (BIG + PART) as u64),
        "the gateway did not relay /big whole into the kernel: {} bytes out",
        tel.snapshot().bytes_out
    );
    cut_tx.send(()).unwrap();
    assert!(wait_until(IO_TIMEOUT, || closed(&tel, "upstream_failed") == 1));
    let (got, end) = read_to_end(&mut c);
    assert!(
        first_response_complete(&got),
        "the complete answer before the cut relay was lost ({} bytes read, ended {end:?})",
        got.len()
    );
}

// ------------------------------------------------------------------ the shared budget

/// What a connection holds outside the budget: its first read buffer (`READ_BUF`).
const FIRST_BUF: usize = 16 * 1024;

/// A `Content-Length` request whose body the budget is charged `charge` bytes for (the
/// read buffer is sized to hold it whole; what passes the first buffer counts).
fn post_charging(charge: usize) -> Vec<u8> {
    let total = charge + FIRST_BUF;
    let head = |n: usize| format!("POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n\r\n");
    let n = total - head(total).len();
    let mut req = head(n).into_bytes();
    assert_eq!(req.len() + n, total, "the head's length moved with n");
    req.resize(total, b'b');
    req
}

/// Every way a connection can leave holding memory of the budget, on both loops: bodies
/// cut off by a reset or a FIN, chunked bodies being decoded, grown heads, pipelined
/// requests behind an answered one. Once all are closed, the budget is whole again: a
/// body that needs every byte of it is read (a charge left behind would get it 503 for
/// good).
#[test]
fn connections_that_leave_mid_body_on_every_loop_give_the_whole_budget_back() {
    const BUDGET: usize = 512 * 1024;
    let cfg = h1server::Config {
        loops: 2,
        workers: 2,
        max_buffered_bytes: BUDGET,
        ..test_config()
    };
    let server = TestServer::with_config(cfg, |req: &mut Request| {
        Response::text(req.body().len().to_string())
    });
    let tel = server.handle().telemetry();
    for round in 0..4 {
        let mut cut = Vec::new();
        let mut sent = 0;
        let before = tel.snapshot().bytes_in;
        // A `Content-Length` body, half sent.
        let half = post_charging(64 * 1024);
        let mut c = server.connect();
        c.write_all(&half[..half.len() / 2]).unwrap();
        sent += half.len() / 2;
        cut.push(c);
        assert!(
            wait_until(IO_TIMEOUT, || tel.snapshot().bytes_in
                >= before + sent as u64),
            "{}: read {} of {sent}",
            line!(),
            tel.snapshot().bytes_in - before
        );
        // A chunked body, decoded in part.
        let mut c = server.connect();
        let mut req =
            b"POST /len HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..8 {
            req.extend_from_slice(b"2000\r\n");
            req.extend_from_slice(&[b'c'; 0x2000]);
            req.extend_from_slice(b"\r\n");
        }
        c.write_all(&req).unwrap();
        sent += req.len();
        cut.push(c);
        assert!(
            wait_until(IO_TIMEOUT, || tel.snapshot().bytes_in
                >= before + sent as u64),
            "{}: read {} of {sent}",
            line!(),
            tel.snapshot().bytes_in - before
        );
        // A head larger than the first buffer, unfinished.
        let mut c = server.connect();
        let head = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n",
            "p".repeat(24 * 1024)
        );
        c.write_all(head.as_bytes()).unwrap();
        sent += head.len();
        cut.push(c);
        assert!(
            wait_until(IO_TIMEOUT, || tel.snapshot().bytes_in
                >= before + sent as u64),
            "{}: read {} of {sent}",
            line!(),
            tel.snapshot().bytes_in - before
        );
        // A request answered, and one pipelined behind it cut off.
        let mut c = server.connect();
        let mut req = post_charging(20 * 1024);
        let next = post_charging(40 * 1024);
        req.extend_from_slice(&next[..next.len() - 100]);
        c.write_all(&req).unwrap();
        sent += req.len();
        cut.push(c);
        assert!(
            wait_until(IO_TIMEOUT, || tel.snapshot().bytes_in
                >= before + sent as u64),
            "{}: read {} of {sent}",
            line!(),
            tel.snapshot().bytes_in - before
        );
        for (i, c) in cut.into_iter().enumerate() {
            if (i + round) % 2 == 0 {
                reset_on_close(&c);
            }
            drop(c);
        }
        assert!(
            wait_until(IO_TIMEOUT, || tel.snapshot().open == 0),
            "connections still open: {}",
            tel.snapshot().open
        );
    }
    // Every byte of the budget: only an idle budget has room for it.
    let whole = post_charging(BUDGET);
    // A body's memory comes back when the loop takes its batch back from the worker,
    // which may be just after the client read its answer: a 503 (`Retry-After: 1`) is
    // then right for a moment, and retried. A leak would refuse it for ever.
    for _ in 0..4 {
        let mut resp = roundtrip(server.addr, &whole);
        for _ in 0..50 {
            if resp.status != 503 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            resp = roundtrip(server.addr, &whole);
        }
        assert_eq!(resp.status, 200, "the budget is not whole again: {resp:?}");
    }
}
