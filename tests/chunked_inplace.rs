//! A buffered chunked request body is decoded in place, in the connection's read buffer:
//! the chunk data is moved down behind the head as the framing is consumed, so the
//! finished body is a span of the buffer like a `Content-Length` body and costs the
//! memory budget about its raw size — not a second, doubling buffer beside the raw one.
//! Under a tight `max_buffered_bytes`, a chunked upload is served where its
//! `Content-Length` twin is; the bytes the handler sees, what follows the body in the same
//! read, and the verdicts on bad or oversized bodies are as before.
mod support;
use support::*;

use h1server::{Config, Request, Response};

use std::time::Duration;

/// FNV-1a, 64 bits: what the handler answers for the body it saw.
fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A body of `n` bytes that is not one byte repeated: CR, LF, hex digits and every other
/// byte value appear, so a byte moved to the wrong place changes the hash.
fn body_of(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect()
}

/// `body` framed in chunks of varying sizes (1 byte to a few KiB), some with extensions,
/// then the last chunk and `trailers` (each a field line without its CRLF).
fn chunked(body: &[u8], trailers: &[&str]) -> Vec<u8> {
    let sizes = [1usize, 7, 4096, 300, 2, 8000, 17, 1024, 3, 555];
    let mut out = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < body.len() {
        let n = sizes[i % sizes.len()].min(body.len() - at);
        if i % 3 == 1 {
            out.extend_from_slice(format!("{n:X};name=\"v;al\"\r\n").as_bytes());
        } else {
            out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        }
        out.extend_from_slice(&body[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
        i += 1;
    }
    out.extend_from_slice(b"0\r\n");
    for t in trailers {
        out.extend_from_slice(t.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn post_head(path: &str) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes()
}

/// What the handler answers for a body.
fn summary(body: &[u8]) -> String {
    format!("{} {:016x}", body.len(), fnv(body))
}

/// A tight budget (128 KiB beyond each connection's first 16 KiB buffer) and room for
/// bodies of a MiB: an 80–90 KiB body fits the budget once, not 2.75 times.
fn tight() -> Config {
    Config {
        max_buffered_bytes: 128 * 1024,
        max_body_bytes: 1024 * 1024,
        ..test_config()
    }
}

/// Answers the path, the body's length and its hash.
fn server(cfg: Config) -> TestServer {
    TestServer::with_config(cfg, |req: &mut Request| {
        Response::text(format!("{} {}", req.path(), summary(req.body())))
    })
}

/// Writes `req` in pieces of `piece` bytes; stops at the first failed write (the server
/// may answer and close before the body is all sent).
fn send_until_refused(c: &mut Reader, req: &[u8], piece: usize) {
    use std::io::Write;
    for p in req.chunks(piece) {
        if c.stream.write_all(p).is_err() {
            break;
        }
    }
}

fn expect_body(r: &Resp, path: &str, body: &[u8]) {
    assert_eq!(
        (r.status, r.text()),
        (200, format!("{path} {}", summary(body))),
        "the answer to {path}"
    );
}

/// Sent whole, the raw body grew the read buffer and was then decoded into a second,
/// doubling buffer: from 64 KiB up such a body got 413 where its twin got 200.
#[test]
fn a_chunked_body_sent_whole_fits_the_budget_its_content_length_twin_fits() {
    let srv = server(tight());
    for size in [80 * 1024, 85 * 1024, 90 * 1024] {
        let body = body_of(size);
        // The twin with Content-Length: charged once, at its head.
        let mut c = Reader::new(srv.connect());
        let mut req =
            format!("POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n").into_bytes();
        req.extend_from_slice(&body);
        c.send(&req);
        expect_body(&c.read_response(), "/cl", &body);
        // Chunked, head and body in one write.
        let mut c = Reader::new(srv.connect());
        let mut req = post_head("/chunked");
        req.extend_from_slice(&chunked(&body, &[]));
        c.send(&req);
        expect_body(&c.read_response(), "/chunked", &body);
    }
}

/// Sent a piece at a time, the body was decoded into a second buffer that doubled as it
/// grew: 128 KiB got 413 where its `Content-Length` twin got 200 (88 KiB passed).
#[test]
fn a_dribbled_chunked_body_fits_the_budget() {
    let srv = server(tight());
    for size in [88 * 1024, 128 * 1024] {
        let body = body_of(size);
        let mut req = post_head("/dribbled");
        req.extend_from_slice(&chunked(&body, &[]));
        let mut c = Reader::new(srv.connect());
        // Small writes, paced so the server reads them one by one (the pause is for the
        // pacing, not a synchronisation: any split point must give the same answer).
        for piece in req.chunks(1500) {
            c.send(piece);
            std::thread::sleep(Duration::from_millis(1));
        }
        expect_body(&c.read_response(), "/dribbled", &body);
        // The connection is kept and serves the next request.
        c.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        expect_body(&c.read_response(), "/next", b"");
    }
}

#[test]
fn a_get_pipelined_behind_a_chunked_post_is_answered_after_it() {
    let srv = server(tight());
    for size in [5, 3000, 40 * 1024, 85 * 1024] {
        let body = body_of(size);
        let mut req = post_head("/post");
        req.extend_from_slice(&chunked(&body, &[]));
        req.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut c = Reader::new(srv.connect());
        c.send(&req);
        expect_body(&c.read_response(), "/post", &body);
        expect_body(&c.read_response(), "/after", b"");
    }
}

/// The chunked bodies of a batch's later requests are decoded in the buffer the earlier
/// requests' spans point into: only bytes after their own head move.
#[test]
fn chunked_posts_inside_a_pipelined_batch_leave_the_others_intact() {
    let srv = server(tight());
    let first = body_of(700);
    let second = body_of(3000);
    let third = body_of(9);
    let mut req = Vec::new();
    req.extend_from_slice(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    req.extend_from_slice(
        format!(
            "POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            first.len()
        )
        .as_bytes(),
    );
    req.extend_from_slice(&first);
    req.extend_from_slice(&post_head("/c1"));
    req.extend_from_slice(&chunked(&second, &[]));
    req.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    req.extend_from_slice(&post_head("/c2"));
    req.extend_from_slice(&chunked(&third, &["X-Sum: 1"]));
    req.extend_from_slice(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut c = Reader::new(srv.connect());
    c.send(&req);
    expect_body(&c.read_response(), "/a", b"");
    expect_body(&c.read_response(), "/cl", &first);
    expect_body(&c.read_response(), "/c1", &second);
    expect_body(&c.read_response(), "/b", b"");
    expect_body(&c.read_response(), "/c2", &third);
    expect_body(&c.read_response(), "/c", b"");
}

/// A worker that stops running a batch early — after a streamed answer, or 256 KiB of
/// answers — hands the requests behind back to the loop as their raw bytes, which are
/// parsed again (`Done::resume_at`); a body already decoded in place there would be read
/// as framing. So a chunked body is decoded in place only as the first request of a
/// batch, which a worker always runs.
#[test]
fn chunked_posts_handed_back_behind_a_stream_are_parsed_as_they_came() {
    let srv = TestServer::with_config(tight(), |req: &mut Request| match req.path() {
        "/stream" => Response::stream((0..3).map(|i| format!("s{i}\n"))),
        "/big" => Response::new(200).with_body(vec![b'b'; 200 * 1024]),
        p => Response::text(format!("{p} {}", summary(req.body()))),
    });
    let first = body_of(5000);
    let second = body_of(77);
    for lead in ["/stream", "/big"] {
        let mut req = format!("GET {lead} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
        if lead == "/big" {
            // 256 KiB of answers before the chunked POSTs: the worker stops there.
            req.extend_from_slice(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        req.extend_from_slice(&post_head("/c1"));
        req.extend_from_slice(&chunked(&first, &["X-T: 1"]));
        req.extend_from_slice(&post_head("/c2"));
        req.extend_from_slice(&chunked(&second, &[]));
        req.extend_from_slice(b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut c = Reader::new(srv.connect());
        c.send(&req);
        let r = c.read_response();
        assert_eq!(r.status, 200, "{lead}");
        if lead == "/big" {
            assert_eq!(c.read_response().body.len(), 200 * 1024);
        } else {
            assert_eq!(r.text(), "s0\ns1\ns2\n");
        }
        expect_body(&c.read_response(), "/c1", &first);
        expect_body(&c.read_response(), "/c2", &second);
        expect_body(&c.read_response(), "/last", b"");
    }
}

/// A chunked POST second in a batch whose body is not all there yet: it waits for the
/// first request's answer and is then read on (its bytes were left as they came).
#[test]
fn a_chunked_post_second_in_a_batch_and_still_arriving_is_read_on() {
    let srv = server(tight());
    let body = body_of(85 * 1024);
    let framed = chunked(&body, &[]);
    let mut req = b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    req.extend_from_slice(&post_head("/second"));
    req.extend_from_slice(&framed[..10_000]);
    let mut c = Reader::new(srv.connect());
    c.send(&req);
    expect_body(&c.read_response(), "/first", b"");
    c.send(&framed[10_000..]);
    expect_body(&c.read_response(), "/second", &body);
}

#[test]
fn trailers_and_extensions_are_dropped_and_the_next_request_follows() {
    let srv = server(tight());
    let body = body_of(20 * 1024);
    let mut req = post_head("/t");
    req.extend_from_slice(&chunked(&body, &["X-Checksum: abc", "X-Other:  v  "]));
    req.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    // Whole, then a byte per write for the tail (trailers split at every point).
    let mut c = Reader::new(srv.connect());
    c.send(&req);
    expect_body(&c.read_response(), "/t", &body);
    expect_body(&c.read_response(), "/after", b"");
    let mut c = Reader::new(srv.connect());
    let tail = req.len() - 120;
    c.send(&req[..tail]);
    for b in &req[tail..] {
        c.send(std::slice::from_ref(b));
    }
    expect_body(&c.read_response(), "/t", &body);
    expect_body(&c.read_response(), "/after", b"");
}

#[test]
fn a_chunked_body_over_max_body_bytes_is_still_413() {
    let srv = server(Config {
        max_body_bytes: 64 * 1024,
        ..tight()
    });
    // Exactly at the limit: served.
    let body = body_of(64 * 1024);
    let mut req = post_head("/at");
    req.extend_from_slice(&chunked(&body, &[]));
    let mut c = Reader::new(srv.connect());
    c.send(&req);
    expect_body(&c.read_response(), "/at", &body);
    // One byte over, whole or dribbled: 413, and the connection closes.
    let body = body_of(64 * 1024 + 1);
    let mut req = post_head("/over");
    req.extend_from_slice(&chunked(&body, &[]));
    let mut c = Reader::new(srv.connect());
    c.send(&req);
    let r = c.read_response();
    assert_eq!(r.status, 413);
    assert!(c.is_closed());
    let mut c = Reader::new(srv.connect());
    send_until_refused(&mut c, &req, 4000);
    assert_eq!(c.read_response().status, 413);
}

/// A body larger than the whole budget could hold is refused for good (413), as its
/// `Content-Length` twin is (`never_fits`), while `max_body_bytes` allows it.
#[test]
fn a_chunked_body_larger_than_the_whole_budget_is_413_like_its_twin() {
    let srv = server(tight());
    let size = 400 * 1024;
    let mut c = Reader::new(srv.connect());
    c.send(format!("POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n").as_bytes());
    assert_eq!(c.read_response().status, 413);
    let mut req = post_head("/chunked");
    req.extend_from_slice(&chunked(&body_of(size), &[]));
    let mut c = Reader::new(srv.connect());
    send_until_refused(&mut c, &req, 8000);
    assert_eq!(c.read_response().status, 413);
}

/// When other connections hold the budget, a chunked body that needs more memory than is
/// left gets 503 + Retry-After (a retry may pass), as a `Content-Length` body does.
#[test]
fn a_chunked_body_gets_503_while_the_budget_is_held_by_others() {
    let srv = server(tight());
    // Holds ~100 KiB of the budget: a Content-Length body sized at its head, never sent.
    // Its `100 Continue` says the memory is taken.
    let mut holder = Reader::new(srv.connect());
    holder.send(
        b"POST /hold HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 102400\r\n\r\n",
    );
    assert_eq!(holder.read_response().status, 100);
    let body = body_of(85 * 1024);
    let mut req = post_head("/chunked");
    req.extend_from_slice(&chunked(&body, &[]));
    let mut c = Reader::new(srv.connect());
    send_until_refused(&mut c, &req, 8000);
    let r = c.read_response();
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
    // The holder lets go: the same body now passes.
    drop(holder);
    assert!(wait_until(Duration::from_secs(5), || {
        let mut c = Reader::new(srv.connect());
        send_until_refused(&mut c, &req, 8000);
        c.read_response().status == 200
    }));
}
