//! HTTP/1.1 message semantics at the wire: keep-alive and close, pipelining order,
//! request bodies (length, chunked, split), `Expect: 100-continue`, HEAD, bodiless
//! statuses, `Date`/`Content-Length` on every response, and streamed bodies.
//!
//! Every test starts a real server on 127.0.0.1:0 and speaks raw bytes over a socket
//! with a read timeout (see `support`).

mod support;
use support::*;

use std::io::Read;
use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use h1server::{Request, Response};

/// The application every test talks to; the path picks the behaviour.
///
/// * `/echo` — the request body back, as `application/octet-stream`.
/// * `/close` — a short text answer that asks the engine to close (`Connection: close`).
/// * `/204`, `/204-with-body`, `/304` — bodiless statuses (the second tries to attach a
///   body, which the engine must not send).
/// * `/404` — `Response::error(404, "")`.
/// * `/stream` — three chunks `0\n`, `1\n`, `2\n`, 50 ms apart.
/// * `/slow` — sleeps 50 ms; `/sleep/N` — sleeps N ms; both then echo the path.
/// * anything else — the path as text.
fn app(req: &mut Request) -> Response {
    let path = req.path().to_string();
    match path.as_str() {
        "/echo" => Response::new(200)
            .with_header("Content-Type", "application/octet-stream")
            .with_body(req.body().to_vec()),
        "/close" => Response::text("bye\n").with_header("Connection", "close"),
        "/204" => Response::new(204),
        "/204-with-body" => Response::new(204).with_body(&b"must not be sent"[..]),
        "/304" => Response::new(304).with_header("ETag", "\"v1\""),
        "/404" => Response::error(404, ""),
        "/stream" => Response::stream((0..3).map(|i| {
            if i > 0 {
                sleep(Duration::from_millis(50));
            }
            format!("{i}\n")
        })),
        "/slow" => {
            sleep(Duration::from_millis(50));
            Response::text(path)
        }
        p if p.starts_with("/sleep/") => {
            let ms: u64 = p["/sleep/".len()..].parse().unwrap_or(0);
            sleep(Duration::from_millis(ms.min(1000)));
            Response::text(path)
        }
        _ => Response::text(path),
    }
}

fn server() -> TestServer {
    TestServer::start(app)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// True when the response's Connection field lists `token` (case-insensitive).
fn connection_has(r: &Resp, token: &str) -> bool {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Reads exactly `n` raw bytes from the socket (only valid while the Reader has nothing
/// buffered, i.e. before any response was parsed on it).
fn read_raw(r: &mut Reader, n: usize) -> Vec<u8> {
    assert!(r.leftover().is_empty(), "read_raw after buffered bytes");
    let mut buf = vec![0u8; n];
    r.stream
        .read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("reading {n} raw bytes: {e}"));
    buf
}

/// Writes `bytes` in pieces whose sizes cycle through `sizes`, pausing `pause` between
/// pieces so the server sees them as separate reads.
fn send_in_pieces(r: &mut Reader, bytes: &[u8], sizes: &[usize], pause: Duration) {
    let mut pos = 0;
    let mut i = 0;
    while pos < bytes.len() {
        let n = sizes[i % sizes.len()].max(1).min(bytes.len() - pos);
        r.send(&bytes[pos..pos + n]);
        pos += n;
        i += 1;
        sleep(pause);
    }
}

// ---------------------------------------------------------------- keep-alive and close

#[test]
fn http11_keeps_the_connection_alive_by_default() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    for path in ["/first", "/second", "/third"] {
        r.send(get(path).as_bytes());
        let resp = r.read_response();
        assert_eq!(resp.status, 200, "{path}: {resp:?}");
        assert_eq!(resp.version, "HTTP/1.1", "{path}");
        assert_eq!(resp.text(), path);
        assert!(
            !connection_has(&resp, "close"),
            "{path}: HTTP/1.1 without Connection must stay open: {resp:?}"
        );
    }
    assert!(r.leftover().is_empty());
}

#[test]
fn http10_without_keep_alive_is_answered_then_closed() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    r.send(b"GET /old HTTP/1.0\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "/old");
    assert!(
        !connection_has(&resp, "keep-alive"),
        "HTTP/1.0 without keep-alive must not be told keep-alive: {resp:?}"
    );
    assert!(
        r.is_closed(),
        "the server must close an HTTP/1.0 connection"
    );
    assert!(r.leftover().is_empty(), "{:?}", r.leftover());
}

#[test]
fn http10_keep_alive_is_echoed_and_the_connection_reused() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    for path in ["/one", "/two"] {
        r.send(format!("GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes());
        let resp = r.read_response();
        assert_eq!(resp.status, 200, "{path}: {resp:?}");
        assert_eq!(resp.text(), path);
        assert!(
            connection_has(&resp, "keep-alive"),
            "{path}: an HTTP/1.0 keep-alive request must be answered with \
             Connection: keep-alive: {resp:?}"
        );
        assert!(resp.header("content-length").is_some(), "{path}: {resp:?}");
    }
    // The last one does not ask for keep-alive: answered, then closed.
    r.send(b"GET /three HTTP/1.0\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.text(), "/three");
    assert!(r.is_closed());
}

#[test]
fn client_connection_close_is_echoed_and_the_server_closes() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    r.send(b"GET /bye HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "/bye");
    assert!(connection_has(&resp, "close"), "{resp:?}");
    assert!(
        r.is_closed(),
        "the server must close after Connection: close"
    );
    assert!(r.leftover().is_empty(), "{:?}", r.leftover());
}

#[test]
fn handler_connection_close_closes_and_drops_the_pipelined_rest() {
    let srv = server();
    // Alone on a connection.
    let mut r = Reader::new(srv.connect());
    r.send(get("/close").as_bytes());
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "bye\n");
    assert_eq!(resp.header_count("connection"), 1, "{resp:?}");
    assert!(connection_has(&resp, "close"), "{resp:?}");
    assert!(r.is_closed(), "a handler's Connection: close must close");

    // With a request pipelined behind it: RFC 9112 §9.6, nothing after a "close"
    // response is answered.
    let mut r = Reader::new(srv.connect());
    r.send(format!("{}{}", get("/close"), get("/after")).as_bytes());
    let resp = r.read_response();
    assert_eq!(resp.text(), "bye\n");
    assert!(connection_has(&resp, "close"), "{resp:?}");
    assert!(r.is_closed());
    assert!(
        r.leftover().is_empty(),
        "a request after a close response was answered: {:?}",
        String::from_utf8_lossy(r.leftover())
    );
}

// ---------------------------------------------------------------- pipelining

/// Ten different paths; some handlers sleep (different times) so a server that let a
/// later, faster response overtake an earlier one would be caught.
const PIPELINE: [&str; 10] = [
    "/slow",
    "/p1",
    "/sleep/30",
    "/p3",
    "/sleep/5",
    "/p5",
    "/sleep/50",
    "/p7",
    "/sleep/20",
    "/p9",
];

fn pipeline_bytes() -> Vec<u8> {
    PIPELINE
        .iter()
        .map(|p| get(p))
        .collect::<String>()
        .into_bytes()
}

fn expect_pipeline_answers(r: &mut Reader, what: &str) {
    for (i, path) in PIPELINE.iter().enumerate() {
        let resp = r.read_response();
        assert_eq!(resp.status, 200, "{what}: response {i}: {resp:?}");
        assert_eq!(resp.text(), *path, "{what}: response {i} out of order");
    }
    assert!(r.leftover().is_empty(), "{what}: extra bytes");
    // The connection is still usable afterwards.
    r.send(get("/after").as_bytes());
    assert_eq!(r.read_response().text(), "/after", "{what}");
}

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    r.send(&pipeline_bytes());
    expect_pipeline_answers(&mut r, "one write");
}

#[test]
fn pipelined_requests_split_at_odd_boundaries_are_answered_in_order() {
    let srv = server();
    let bytes = pipeline_bytes();
    let patterns: [(&str, &[usize]); 3] = [
        ("primes", &[1, 2, 3, 5, 7, 11, 13, 17, 19, 23]),
        ("one byte at a time", &[1]),
        ("straddling requests", &[37, 29, 41, 53]),
    ];
    for (what, sizes) in patterns {
        let mut r = Reader::new(srv.connect());
        send_in_pieces(&mut r, &bytes, sizes, Duration::from_millis(1));
        expect_pipeline_answers(&mut r, what);
    }
}

// ---------------------------------------------------------------- request bodies

#[test]
fn content_length_body_is_echoed() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    r.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nhello world");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.body, b"hello world");
    // Binary body, including CR LF and NUL bytes, followed by another request.
    let body: Vec<u8> = (0u8..=255).collect();
    let mut req = format!(
        "PUT /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    req.extend_from_slice(get("/next").as_bytes());
    r.send(&req);
    assert_eq!(r.read_response().body, body);
    assert_eq!(r.read_response().text(), "/next");
}

#[test]
fn chunked_body_with_extensions_and_trailers_is_echoed() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    let req = concat!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n",
        "5;ext=1\r\nhello\r\n",
        "1;name=\"quoted value\"\r\n \r\n",
        "A\r\n0123456789\r\n",
        "0\r\n",
        "X-Trailer: yes\r\nX-Other: also\r\n",
        "\r\n",
        // Pipelined behind it: proves the trailer section was consumed exactly.
        "GET /next HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    r.send(req.as_bytes());
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "hello 0123456789");
    let next = r.read_response();
    assert_eq!(next.status, 200, "{next:?}");
    assert_eq!(next.text(), "/next");
}

#[test]
fn body_split_over_several_writes_is_reassembled() {
    let srv = server();
    let pause = Duration::from_millis(50);

    // Content-Length: the head itself is split too.
    let mut r = Reader::new(srv.connect());
    for piece in [
        &b"POST /echo HTTP/1.1\r\nHo"[..],
        b"st: test\r\nContent-Length: 26\r\n\r",
        b"\nabcdefgh",
        b"ijklmnopq",
        b"rstuvwxyz",
    ] {
        r.send(piece);
        sleep(pause);
    }
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "abcdefghijklmnopqrstuvwxyz");

    // Chunked: split inside a chunk-size line, inside data, between CR and LF, and
    // inside the trailer section.
    for piece in [
        &b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n1"[..],
        b"0\r\n0123456",
        b"789abcdef\r",
        b"\n3;x=y\r\nabc\r\n0\r\nX-T",
        b"railer: 1\r\n",
        b"\r\n",
    ] {
        r.send(piece);
        sleep(pause);
    }
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "0123456789abcdefabc");
    assert!(r.leftover().is_empty());
}

// ---------------------------------------------------------------- Expect: 100-continue

#[test]
fn expect_continue_gets_100_then_the_final_answer() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    r.send(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\
          Expect: 100-continue\r\n\r\n",
    );
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let got = read_raw(&mut r, interim.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(interim),
        "the head alone must get exactly a 100 Continue"
    );
    r.send(b"hello");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "hello");

    // The same connection serves a second 100-continue request.
    r.send(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\
          Expect: 100-continue\r\n\r\n",
    );
    let resp = r.read_response();
    assert_eq!(resp.status, 100, "second request: {resp:?}");
    r.send(b"3\r\nabc\r\n0\r\n\r\n");
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "abc");
}

#[test]
fn expect_continue_with_a_too_large_body_gets_413_at_once_and_close() {
    let mut cfg = test_config();
    cfg.max_body_bytes = 1024;
    let srv = TestServer::with_config(cfg, app);
    let mut r = Reader::new(srv.connect());
    r.send(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\
          Expect: 100-continue\r\n\r\n",
    );
    // The very first bytes back are the final status: no 100 Continue first.
    let resp = r.read_response();
    assert_eq!(
        resp.status, 413,
        "a too-large body must be refused before 100 Continue: {resp:?}"
    );
    assert!(resp.header("content-length").is_some(), "{resp:?}");
    assert!(connection_has(&resp, "close"), "{resp:?}");
    assert!(r.is_closed(), "the server must close after the 413");
    assert!(r.leftover().is_empty(), "{:?}", r.leftover());
}

// ---------------------------------------------------------------- HEAD, 204, 304

#[test]
fn head_gets_the_headers_of_get_and_no_body() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    let req = "HEAD /some/resource HTTP/1.1\r\nHost: test\r\n\r\n\
               GET /some/resource HTTP/1.1\r\nHost: test\r\n\r\n\
               HEAD /some/resource HTTP/1.1\r\nHost: test\r\n\r\n\
               GET /last HTTP/1.1\r\nHost: test\r\n\r\n";
    r.send(req.as_bytes());
    let head = r.read_response_to("HEAD").expect("HEAD response");
    let get = r.read_response();
    let head2 = r.read_response_to("HEAD").expect("second HEAD response");
    let last = r.read_response();
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(get.status, 200, "{get:?}");
    assert_eq!(get.text(), "/some/resource");
    assert_eq!(
        head.header("content-length"),
        Some("14"),
        "HEAD must carry the Content-Length GET would have: {head:?}"
    );
    assert_eq!(head.header("content-length"), get.header("content-length"));
    assert_eq!(head.header("content-type"), get.header("content-type"));
    assert!(head.header("transfer-encoding").is_none(), "{head:?}");
    assert_eq!(head2.header("content-length"), Some("14"));
    // If any body byte had followed a HEAD response, these would not parse.
    assert_eq!(last.status, 200, "{last:?}");
    assert_eq!(last.text(), "/last");
    assert!(r.leftover().is_empty(), "{:?}", r.leftover());
}

#[test]
fn no_content_and_not_modified_carry_no_body_and_no_framing() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    let paths = ["/204", "/204-with-body", "/304"];
    let mut req: String = paths.iter().map(|p| get(p)).collect();
    req.push_str(&get("/after"));
    r.send(req.as_bytes());
    for (path, status) in paths.iter().zip([204, 204, 304]) {
        let resp = r.read_response();
        assert_eq!(resp.status, status, "{path}: {resp:?}");
        assert!(
            resp.header("content-length").is_none(),
            "{path}: {status} must not carry Content-Length: {resp:?}"
        );
        assert!(
            resp.header("transfer-encoding").is_none(),
            "{path}: {status} must not carry Transfer-Encoding: {resp:?}"
        );
        assert!(resp.header("date").is_some(), "{path}: {resp:?}");
    }
    // Any body byte after a 204/304 head would break this parse.
    let after = r.read_response();
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(after.text(), "/after");
    assert!(r.leftover().is_empty(), "{:?}", r.leftover());
}

// ---------------------------------------------------------------- Date, Content-Length

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Checks `IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT` (RFC 9110 §5.6.7),
/// e.g. `Sun, 06 Nov 1994 08:49:37 GMT`, and returns it as Unix seconds.
fn parse_imf_fixdate(d: &str) -> Result<i64, String> {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let b = d.as_bytes();
    if b.len() != 29 {
        return Err(format!("{d:?} is {} chars, not 29", b.len()));
    }
    if !d.ends_with(" GMT") {
        return Err(format!("{d:?} does not end with \" GMT\""));
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let s = &d[r];
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("{d:?}: {s:?} is not digits"));
        }
        Ok(s.parse().unwrap())
    };
    let punct = [(3, b','), (4, b' '), (7, b' '), (11, b' '), (16, b' ')];
    let punct = punct.into_iter().chain([(19, b':'), (22, b':')]);
    for (i, c) in punct {
        if b[i] != c {
            return Err(format!("{d:?}: expected {:?} at {i}", c as char));
        }
    }
    let wday = DAYS
        .iter()
        .position(|&n| n == &d[0..3])
        .ok_or_else(|| format!("{d:?}: bad day name"))?;
    let month = MONTHS
        .iter()
        .position(|&n| n == &d[8..11])
        .ok_or_else(|| format!("{d:?}: bad month name"))? as i64
        + 1;
    let (day, year) = (num(5..7)?, num(12..16)?);
    let (h, m, s) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return Err(format!("{d:?}: field out of range"));
    }
    let days = days_from_civil(year, month, day);
    // 1970-01-01 was a Thursday (index 4 with Sunday = 0).
    if (days + 4).rem_euclid(7) as usize != wday {
        return Err(format!("{d:?}: day name does not match the date"));
    }
    Ok(days * 86400 + h * 3600 + m * 60 + s)
}

/// One request per case on its own connection, covering every kind of response the
/// engine writes: handler answers, HEAD, bodiless, streamed, HTTP/1.0, protocol errors.
fn response_kinds(srv: &TestServer) -> Vec<(&'static str, Resp)> {
    let cases: [(&str, &str, &str); 11] = [
        ("200 text", "GET", "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("HEAD", "HEAD", "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("404 error", "GET", "GET /404 HTTP/1.1\r\nHost: t\r\n\r\n"),
        (
            "empty 200",
            "POST",
            "POST /echo HTTP/1.1\r\nHost: t\r\n\r\n",
        ),
        ("204", "GET", "GET /204 HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("304", "GET", "GET /304 HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("close", "GET", "GET /close HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("HTTP/1.0", "GET", "GET /old HTTP/1.0\r\n\r\n"),
        ("stream", "GET", "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("400 missing Host", "GET", "GET / HTTP/1.1\r\n\r\n"),
        (
            "400 bad CL",
            "GET",
            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",
        ),
    ];
    cases
        .into_iter()
        .map(|(name, method, req)| {
            let mut r = Reader::new(srv.connect());
            r.send(req.as_bytes());
            let resp = r
                .read_response_to(method)
                .unwrap_or_else(|| panic!("{name}: closed without a response"));
            (name, resp)
        })
        .collect()
}

#[test]
fn every_response_has_one_date_in_imf_fixdate() {
    let srv = server();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (name, resp) in response_kinds(&srv) {
        assert_eq!(resp.header_count("date"), 1, "{name}: {resp:?}");
        let date = resp.header("date").unwrap();
        let secs = parse_imf_fixdate(date).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Not a speed assertion: the clock must be today's, not a constant or garbage.
        assert!(
            (secs - now).abs() < 600,
            "{name}: Date {date:?} is far from now ({now})"
        );
    }
    assert_eq!(
        parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
        Ok(784111777),
        "the checker itself (RFC 9110's example)"
    );
}

#[test]
fn every_non_streamed_response_has_content_length() {
    let srv = server();
    for (name, resp) in response_kinds(&srv) {
        match name {
            "204" | "304" => continue, // covered by no_content_and_not_modified_…
            "stream" => {
                assert!(resp.header("content-length").is_none(), "{name}: {resp:?}");
                assert!(resp.chunked, "{name}: {resp:?}");
                continue;
            }
            _ => {}
        }
        assert_eq!(
            resp.header_count("content-length"),
            1,
            "{name}: exactly one Content-Length expected: {resp:?}"
        );
        assert!(
            resp.header("transfer-encoding").is_none(),
            "{name}: {resp:?}"
        );
        if name != "HEAD" {
            let cl: usize = resp.header("content-length").unwrap().parse().unwrap();
            assert_eq!(cl, resp.body.len(), "{name}");
        }
        if resp.status >= 400 {
            assert!(!resp.body.is_empty(), "{name}: error body is empty");
        }
    }
}

// ---------------------------------------------------------------- streaming

#[test]
fn streamed_response_is_chunked_and_the_connection_reusable() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    r.send(get("/stream").as_bytes());
    let resp = r.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp.chunked, "HTTP/1.1 stream must be chunked: {resp:?}");
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert!(resp.header("content-length").is_none(), "{resp:?}");
    assert!(!connection_has(&resp, "close"), "{resp:?}");
    assert_eq!(resp.text(), "0\n1\n2\n");
    assert!(r.leftover().is_empty(), "{:?}", r.leftover());

    r.send(get("/after").as_bytes());
    let after = r.read_response();
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(after.text(), "/after");

    // A request pipelined behind a stream is answered after the stream ends.
    r.send(format!("{}{}", get("/stream"), get("/behind")).as_bytes());
    let resp = r.read_response();
    assert_eq!(resp.text(), "0\n1\n2\n", "{resp:?}");
    let behind = r.read_response();
    assert_eq!(behind.text(), "/behind", "{behind:?}");
}

#[test]
fn http10_streamed_response_is_unchunked_then_closed() {
    let srv = server();
    for (what, req) in [
        ("plain", "GET /stream HTTP/1.0\r\n\r\n"),
        (
            "keep-alive asked",
            "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ),
    ] {
        let mut r = Reader::new(srv.connect());
        r.send(req.as_bytes());
        let resp = r.read_response(); // no framing: reads until the server closes
        assert_eq!(resp.status, 200, "{what}: {resp:?}");
        assert!(
            !resp.chunked,
            "{what}: HTTP/1.0 cannot be chunked: {resp:?}"
        );
        assert!(
            resp.header("transfer-encoding").is_none(),
            "{what}: {resp:?}"
        );
        assert!(resp.header("content-length").is_none(), "{what}: {resp:?}");
        assert!(
            connection_has(&resp, "close"),
            "{what}: the body ends with the connection, so it must say close: {resp:?}"
        );
        assert_eq!(resp.text(), "0\n1\n2\n", "{what}");
        assert!(r.is_closed(), "{what}");
    }
}
