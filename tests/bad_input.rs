//! Bad input at the wire: every row of DESIGN.md's "Limits, deadlines and the status each
//! bad input gets" table that is about a malformed or oversized request, as a table of
//! raw requests, each with the status it must get and whether the connection must close.
//!
//! Every case runs on its own connection to one server with small limits; a failing case
//! is named in the panic message, and all cases run before the test fails.

mod support;
use support::*;

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use h1server::{Config, Request, Response};

const MAX_URI: usize = 1024;
const MAX_HEAD: usize = 4096;
const MAX_HEADERS: usize = 16;
const MAX_BODY: usize = 1024;

fn small_limits() -> Config {
    let mut c = test_config();
    c.max_uri_bytes = MAX_URI;
    c.max_head_bytes = MAX_HEAD;
    c.max_headers = MAX_HEADERS;
    c.max_body_bytes = MAX_BODY as u64;
    c
}

/// Answers `METHOD path body-length`, so a test can tell which request was served.
fn app(req: &mut Request) -> Response {
    Response::text(format!(
        "{} {} {}",
        req.method_str(),
        req.path(),
        req.body().len()
    ))
}

fn server() -> TestServer {
    TestServer::with_config(small_limits(), app)
}

/// What must happen to the connection after the error response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// The server must close (the framing of what follows is unknown).
    Close,
    /// Closing or not are both acceptable; not checked.
    Either,
}
use After::*;

struct Case {
    name: String,
    request: Vec<u8>,
    status: u16,
    after: After,
}

fn case(name: impl Into<String>, request: impl AsRef<[u8]>, status: u16, after: After) -> Case {
    Case {
        name: name.into(),
        request: request.as_ref().to_vec(),
        status,
        after,
    }
}

/// A POST head with the given extra field lines, then `body`.
fn post(fields: &str, body: &str) -> String {
    format!("POST /upload HTTP/1.1\r\nHost: test\r\n{fields}\r\n{body}")
}

/// Runs one case; Err names what went wrong.
fn check(srv: &TestServer, c: &Case) -> Result<(), String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let mut r = Reader::new(srv.connect());
        r.send(&c.request);
        let resp = r
            .read_response_to("GET")
            .ok_or("the connection closed without a response")?;
        check_error_response(&resp, c.status)?;
        if c.after == Close {
            if !resp
                .header("connection")
                .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
            {
                return Err(format!("no `Connection: close` in {resp:?}"));
            }
            if !r.is_closed() {
                return Err("the connection was not closed after the response".into());
            }
            if !r.leftover().is_empty() {
                return Err(format!(
                    "bytes after the error response: {:?}",
                    String::from_utf8_lossy(r.leftover())
                ));
            }
        }
        Ok(())
    }));
    match outcome {
        Ok(result) => result,
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into())),
    }
}

/// The status, a Content-Length matching a non-empty plain-text body.
fn check_error_response(resp: &Resp, status: u16) -> Result<(), String> {
    if resp.status != status {
        return Err(format!(
            "status {} instead of {status}: {resp:?} body {:?}",
            resp.status,
            resp.text()
        ));
    }
    let Some(cl) = resp.header("content-length") else {
        return Err(format!("no Content-Length: {resp:?}"));
    };
    if cl.parse::<usize>() != Ok(resp.body.len()) {
        return Err(format!("Content-Length {cl} for {} bytes", resp.body.len()));
    }
    if resp.body.is_empty() {
        return Err("empty error body".into());
    }
    if std::str::from_utf8(&resp.body).is_err() {
        return Err(format!("error body is not text: {:?}", resp.body));
    }
    if !resp
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain"))
    {
        return Err(format!("error body is not text/plain: {resp:?}"));
    }
    if resp.header("date").is_none() {
        return Err(format!("no Date: {resp:?}"));
    }
    Ok(())
}

/// Runs every case, then fails once, listing each failed case by name.
fn run_table(cases: &[Case]) {
    let srv = server();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            check(&srv, c).err().map(|e| {
                format!(
                    "[{}] {:?} (want {} {:?}): {e}",
                    c.name,
                    String::from_utf8_lossy(&c.request[..c.request.len().min(160)]),
                    c.status,
                    c.after
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------- malformed heads (400)

#[test]
fn malformed_heads_get_400_and_close() {
    let h = "Host: test\r\n";
    let cases = [
        // Request line (RFC 9112 §3).
        case("method only", "GET\r\n\r\n", 400, Close),
        case("no version", format!("GET /\r\n{h}\r\n"), 400, Close),
        case("no target", format!("GET  HTTP/1.1\r\n{h}\r\n"), 400, Close),
        case(
            "double space",
            format!("GET  / HTTP/1.1\r\n{h}\r\n"),
            400,
            Close,
        ),
        case(
            "space inside target",
            format!("GET /a b HTTP/1.1\r\n{h}\r\n"),
            400,
            Close,
        ),
        case(
            "extra word after version",
            format!("GET / HTTP/1.1 x\r\n{h}\r\n"),
            400,
            Close,
        ),
        case(
            "bad method token",
            format!("G(ET / HTTP/1.1\r\n{h}\r\n"),
            400,
            Close,
        ),
        case(
            "lower-case http name",
            format!("GET / http/1.1\r\n{h}\r\n"),
            400,
            Close,
        ),
        case(
            "garbage version",
            format!("GET / HTTX/1.1\r\n{h}\r\n"),
            400,
            Close,
        ),
        case(
            "binary garbage",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            400,
            Close,
        ),
        // Field lines (RFC 9112 §5, RFC 9110 §5.6.2).
        case(
            "bad header token (parenthesis)",
            format!("GET / HTTP/1.1\r\n{h}Bad(Name): v\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "bad header token (space inside)",
            format!("GET / HTTP/1.1\r\n{h}Bad Name: v\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "empty field name",
            format!("GET / HTTP/1.1\r\n{h}: v\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "field line without colon",
            format!("GET / HTTP/1.1\r\n{h}NoColon\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "NUL in field value",
            format!("GET / HTTP/1.1\r\n{h}X-A: a\0b\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "control char in field value",
            format!("GET / HTTP/1.1\r\n{h}X-A: a\x01b\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "bare CR in field value",
            format!("GET / HTTP/1.1\r\n{h}X-A: a\rb\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "bare CR at end of field line",
            format!("GET / HTTP/1.1\r\n{h}X-A: ab\r\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "bare CR in request line",
            format!("GET /\r HTTP/1.1\r\n{h}\r\n"),
            400,
            Close,
        ),
        case(
            "obs-fold with space (RFC 9112 §5.2)",
            format!("GET / HTTP/1.1\r\n{h}X-A: a\r\n b\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "obs-fold with tab",
            format!("GET / HTTP/1.1\r\n{h}X-A: a\r\n\tb\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "obs-fold of the Host field",
            "GET / HTTP/1.1\r\nHost: te\r\n st\r\n\r\n",
            400,
            Close,
        ),
        case(
            "space before colon (Host : x, RFC 9112 §5.1)",
            "GET / HTTP/1.1\r\nHost : test\r\n\r\n",
            400,
            Close,
        ),
        case(
            "tab before colon",
            format!("GET / HTTP/1.1\r\n{h}X-A\t: v\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "space before colon on Transfer-Encoding",
            format!(
                "POST / HTTP/1.1\r\n{h}Content-Length: 5\r\n\
                 Transfer-Encoding : chunked\r\n\r\nhello"
            ),
            400,
            Close,
        ),
    ];
    run_table(&cases);
}

// ---------------------------------------------------------------- Host (400)

#[test]
fn missing_duplicate_or_invalid_host_gets_400_and_close() {
    let cases = [
        case(
            "missing Host on HTTP/1.1",
            "GET / HTTP/1.1\r\n\r\n",
            400,
            Close,
        ),
        case(
            "missing Host, other fields present",
            "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
            400,
            Close,
        ),
        case(
            "duplicate Host, same value",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            400,
            Close,
        ),
        case(
            "duplicate Host, different values",
            "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nhost: b\r\n\r\n",
            400,
            Close,
        ),
        case(
            "invalid Host value",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            400,
            Close,
        ),
        case(
            "duplicate Host on HTTP/1.0",
            "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
            Close,
        ),
        // RFC 9112 §3.2, §3.3: origin-form and asterisk-form take their authority from
        // Host, and an http URI's authority is never empty.
        case(
            "empty Host, origin-form",
            "GET / HTTP/1.1\r\nHost: \r\n\r\n",
            400,
            Close,
        ),
        case(
            "empty Host without a space",
            "GET /a?b HTTP/1.1\r\nHost:\r\n\r\n",
            400,
            Close,
        ),
        case(
            "empty Host on HTTP/1.0",
            "GET / HTTP/1.0\r\nHost: \r\n\r\n",
            400,
            Close,
        ),
        case(
            "empty Host, OPTIONS *",
            "OPTIONS * HTTP/1.1\r\nHost: \r\n\r\n",
            400,
            Close,
        ),
    ];
    run_table(&cases);
}

// ---------------------------------------------------------------- framing / smuggling (400)

#[test]
fn ambiguous_or_invalid_framing_gets_400_and_close() {
    let chunked_body = "5\r\nhello\r\n0\r\n\r\n";
    let mut cases = vec![
        case(
            "Content-Length and Transfer-Encoding",
            post(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                chunked_body,
            ),
            400,
            Close,
        ),
        case(
            "Transfer-Encoding then Content-Length",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                chunked_body,
            ),
            400,
            Close,
        ),
        case(
            "duplicate Content-Length, same value",
            post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
            400,
            Close,
        ),
        case(
            "duplicate Content-Length, different values",
            post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
            400,
            Close,
        ),
        case(
            "Content-Length list",
            post("Content-Length: 5, 5\r\n", "hello"),
            400,
            Close,
        ),
        case(
            "Transfer-Encoding: chunked, gzip (chunked not last)",
            post("Transfer-Encoding: chunked, gzip\r\n", chunked_body),
            400,
            Close,
        ),
        case(
            "Transfer-Encoding: gzip (no chunked)",
            post("Transfer-Encoding: gzip\r\n", "hello"),
            400,
            Close,
        ),
        case(
            "Transfer-Encoding: chunked on two lines then gzip",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
                chunked_body,
            ),
            400,
            Close,
        ),
        case(
            "Transfer-Encoding: chunked, chunked",
            post("Transfer-Encoding: chunked, chunked\r\n", chunked_body),
            400,
            Close,
        ),
        case(
            "Transfer-Encoding: chunked twice on two lines",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                chunked_body,
            ),
            400,
            Close,
        ),
        case(
            "Transfer-Encoding on HTTP/1.0",
            format!("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_body}"),
            400,
            Close,
        ),
        case(
            "chunk-size overflow",
            post(
                "Transfer-Encoding: chunked\r\n",
                "fffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
            ),
            400,
            Close,
        ),
        case(
            "invalid chunk size zz",
            post("Transfer-Encoding: chunked\r\n", "zz\r\nhello\r\n0\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "negative chunk size",
            post("Transfer-Encoding: chunked\r\n", "-5\r\nhello\r\n0\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "0x-prefixed chunk size",
            post(
                "Transfer-Encoding: chunked\r\n",
                "0x5\r\nhello\r\n0\r\n\r\n",
            ),
            400,
            Close,
        ),
        case(
            "empty chunk-size line",
            post("Transfer-Encoding: chunked\r\n", "\r\nhello\r\n0\r\n\r\n"),
            400,
            Close,
        ),
        case(
            "chunk data longer than its size (no CRLF after data)",
            post("Transfer-Encoding: chunked\r\n", "3\r\nhello\r\n0\r\n\r\n"),
            400,
            Close,
        ),
    ];
    // RFC 9110 §8.6: Content-Length = 1*DIGIT.
    for value in [
        "+5",
        "-5",
        "0x5",
        "",
        "5 5",
        "99999999999999999999999",
        "5.0",
        "five",
    ] {
        cases.push(case(
            format!("invalid Content-Length {value:?}"),
            post(&format!("Content-Length: {value}\r\n"), "hello"),
            400,
            Close,
        ));
    }
    run_table(&cases);
}

// ---------------------------------------------------------------- request-target (400)

/// RFC 9112 §3.2, RFC 3986 §2: a request-target is visible ASCII (0x21..=0x7E); raw
/// UTF-8, other bytes above 0x7E, DEL and controls are 400.
#[test]
fn bytes_outside_visible_ascii_in_the_target_get_400_and_close() {
    let targets: &[(&str, &[u8])] = &[
        ("raw UTF-8 in the path", b"/caf\xc3\xa9"),
        ("raw UTF-8 in the query", b"/?q=\xe2\x82\xac"),
        ("4-byte UTF-8", b"/\xf0\x9f\x98\x80"),
        ("raw UTF-8 in an absolute-form host", b"http://h\xc3\xa9/"),
        ("Latin-1 byte", b"/caf\xe9"),
        ("byte 0x80", b"/\x80"),
        ("byte 0xFF", b"/\xff"),
        ("DEL", b"/a\x7fb"),
        ("NUL", b"/a\0b"),
        ("control 0x01", b"/a\x01b"),
        ("ESC", b"/\x1b[0m"),
        ("tab", b"/a\tb"),
    ];
    let cases: Vec<Case> = targets
        .iter()
        .map(|&(name, target)| {
            let mut req = b"GET ".to_vec();
            req.extend_from_slice(target);
            req.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\n\r\n");
            case(name, req, 400, Close)
        })
        .collect();
    run_table(&cases);
}

#[test]
fn asterisk_form_without_options_gets_400_and_close() {
    // RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS request.
    let cases: Vec<Case> = ["GET", "HEAD", "POST", "DELETE", "options"]
        .into_iter()
        .map(|m| {
            let req = format!("{m} * HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
            case(format!("{m} *"), req, 400, Close)
        })
        .collect();
    run_table(&cases);
}

// ---------------------------------------------------------------- chunked lines (400)

/// RFC 9112 §7.1: every line of a chunked body ends with CRLF. A bare LF (the lenient
/// parsing behind Go's CVE-2025-22871) or a bare CR anywhere in the framing is a 400.
#[test]
fn chunked_lines_not_ended_by_crlf_get_400_and_close() {
    let te = "Transfer-Encoding: chunked\r\n";
    let rows: &[(&str, &str)] = &[
        ("bare LF after the chunk-size", "5\nhello\r\n0\r\n\r\n"),
        ("bare LF after an extension", "5;a=b\nhello\r\n0\r\n\r\n"),
        ("bare LF after chunk data", "5\r\nhello\n0\r\n\r\n"),
        ("bare LF after the last-chunk", "5\r\nhello\r\n0\n\r\n"),
        ("bare LF as the final line", "0\r\n\n"),
        ("bare LF ending a trailer", "0\r\nX: y\n\r\n"),
        ("bare LF after the trailers", "0\r\nX: y\r\n\n"),
        ("bare LF on every line", "5\nhello\n0\n\n"),
        ("bare CR after the chunk-size", "5\rhello\r\n0\r\n\r\n"),
        ("CR CR LF after chunk data", "5\r\nhello\r\r\n0\r\n\r\n"),
        ("bare CR in a trailer", "0\r\nX: a\rb\r\n\r\n"),
        ("CR CR LF as the final line", "0\r\n\r\r\n"),
    ];
    let cases: Vec<Case> = rows
        .iter()
        .map(|&(name, body)| case(name, post(te, body), 400, Close))
        .collect();
    run_table(&cases);
}

/// RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS
/// chunk-ext-val ] ). BWS may come before a ";" but never right before the CRLF.
#[test]
fn whitespace_ending_a_chunk_line_gets_400_and_close() {
    let te = "Transfer-Encoding: chunked\r\n";
    let rows: &[(&str, &str)] = &[
        ("space after the chunk-size", "5 \r\nhello\r\n0\r\n\r\n"),
        ("tab after the chunk-size", "5\t\r\nhello\r\n0\r\n\r\n"),
        ("space after the last-chunk", "0 \r\n\r\n"),
        (
            "space after an extension name",
            "5;a \r\nhello\r\n0\r\n\r\n",
        ),
        (
            "tab after an extension value",
            "5;a=b\t\r\nhello\r\n0\r\n\r\n",
        ),
    ];
    let cases: Vec<Case> = rows
        .iter()
        .map(|&(name, body)| case(name, post(te, body), 400, Close))
        .collect();
    run_table(&cases);
}

// ---------------------------------------------------------------- other statuses

#[test]
fn unknown_transfer_coding_gets_501() {
    // The body is left unread behind the head, so the rest of the stream has unknown
    // framing: the server has to close as well.
    let cases = [
        case(
            "gzip, chunked",
            post(
                "Transfer-Encoding: gzip, chunked\r\n",
                "5\r\nhello\r\n0\r\n\r\n",
            ),
            501,
            Close,
        ),
        case(
            "x-custom then chunked on two lines",
            post(
                "Transfer-Encoding: x-custom\r\nTransfer-Encoding: chunked\r\n",
                "5\r\nhello\r\n0\r\n\r\n",
            ),
            501,
            Close,
        ),
    ];
    run_table(&cases);
}

/// RFC 9110 §9.1: a method longer than any the server could route (more than 32 bytes)
/// is 501 as soon as its 33rd byte arrives, not 414 or 431 once a limit is reached.
#[test]
fn overlong_method_gets_501() {
    let m33 = "M".repeat(33);
    let cases = [
        case(
            "33-byte method, complete head",
            format!("{m33} / HTTP/1.1\r\nHost: test\r\n\r\n"),
            501,
            Close,
        ),
        case("33-byte method, nothing after it", &m33, 501, Close),
        // RFC 9112 §2.2: an empty line before the request line is skipped; the request
        // line after it is judged as early as one without it.
        case(
            "an empty line, then a 33-byte method, nothing after it",
            format!("\r\n{m33}"),
            501,
            Close,
        ),
        case(
            "100 000-byte method, unterminated",
            "A".repeat(100_000),
            501,
            Close,
        ),
        case(
            "method longer than max_head_bytes, then a whole head",
            format!(
                "{} / HTTP/1.1\r\nHost: test\r\n\r\n",
                "A".repeat(MAX_HEAD + 1)
            ),
            501,
            Close,
        ),
        case(
            "33-byte method, then a bad target",
            format!("{m33} /\x01 HTTP/1.1\r\nHost: test\r\n\r\n"),
            501,
            Close,
        ),
    ];
    run_table(&cases);
}

#[test]
fn oversized_target_and_head_get_414_and_431() {
    let long_target = format!("/{}", "a".repeat(MAX_URI + 100));
    let big = "b".repeat(1500);
    let mut many_fields = String::from("GET / HTTP/1.1\r\nHost: test\r\n");
    for i in 0..MAX_HEADERS + 4 {
        many_fields.push_str(&format!("X-Field-{i}: v\r\n"));
    }
    many_fields.push_str("\r\n");
    let cases = [
        case(
            "target longer than max_uri_bytes",
            format!("GET {long_target} HTTP/1.1\r\nHost: test\r\n\r\n"),
            414,
            Either,
        ),
        case(
            "target longer than max_uri_bytes, request line unterminated",
            format!("GET {long_target}{long_target}"),
            414,
            Either,
        ),
        case(
            "two empty lines, then an unterminated target longer than max_uri_bytes",
            format!("\r\n\nGET {long_target}"),
            414,
            Either,
        ),
        case(
            "head larger than max_head_bytes",
            format!(
                "GET / HTTP/1.1\r\nHost: test\r\nX-A: {big}\r\nX-B: {big}\r\nX-C: {big}\r\n\r\n"
            ),
            431,
            Either,
        ),
        case(
            "head larger than max_head_bytes, unterminated",
            format!("GET / HTTP/1.1\r\nHost: test\r\nX-A: {big}{big}{big}{big}"),
            431,
            Either,
        ),
        case("more fields than max_headers", many_fields, 431, Either),
    ];
    run_table(&cases);
}

#[test]
fn body_over_max_body_bytes_gets_413_and_close() {
    let over = MAX_BODY + 1;
    let mut chunked = String::new();
    for _ in 0..4 {
        chunked.push_str(&format!("100\r\n{}\r\n", "c".repeat(256)));
    }
    chunked.push_str("1\r\nX\r\n0\r\n\r\n");
    let cases = [
        case(
            "Content-Length one over the limit",
            post(&format!("Content-Length: {over}\r\n"), &"x".repeat(over)),
            413,
            Close,
        ),
        case(
            "Content-Length far over the limit, body not sent",
            post("Content-Length: 1000000000\r\n", ""),
            413,
            Close,
        ),
        case(
            "chunked body one byte over the limit",
            post("Transfer-Encoding: chunked\r\n", &chunked),
            413,
            Close,
        ),
        case(
            "one huge chunk announced",
            post("Transfer-Encoding: chunked\r\n", "100000\r\nabc"),
            413,
            Close,
        ),
    ];
    run_table(&cases);
}

#[test]
fn unsupported_versions_get_505() {
    let cases = [
        case(
            "HTTP/2.0",
            "GET / HTTP/2.0\r\nHost: test\r\n\r\n",
            505,
            Either,
        ),
        case(
            "HTTP/0.9",
            "GET / HTTP/0.9\r\nHost: test\r\n\r\n",
            505,
            Either,
        ),
        case(
            "HTTP/3.0",
            "GET / HTTP/3.0\r\nHost: test\r\n\r\n",
            505,
            Either,
        ),
    ];
    run_table(&cases);
}

/// RFC 9110 §2.5: a recipient "SHOULD process the message as if it were in the highest
/// minor version within that major version to which the recipient is conformant", and
/// 505 is for the major version (§15.6.6). nginx and Go serve these as HTTP/1.1 too.
#[test]
fn a_higher_http1_minor_version_is_served_as_http11() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    // Pipelined behind each other on one connection: the version does not desync the
    // framing, and HTTP/1.1's keep-alive default holds.
    r.send(
        b"GET /one HTTP/1.2\r\nHost: test\r\n\r\n\
          POST /two HTTP/1.9\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc\
          GET /three HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    for want in ["GET /one 0", "POST /two 3", "GET /three 0"] {
        let resp = r.read_response_to("GET").expect("an answer");
        assert_eq!(
            (resp.status, resp.text()),
            (200, want.to_string()),
            "{resp:?}"
        );
        assert_eq!(resp.version, "HTTP/1.1", "{resp:?}");
    }
    // Still open, as HTTP/1.1 without `Connection: close` leaves it.
    r.send(b"GET /four HTTP/1.2\r\nHost: test\r\n\r\n");
    let resp = r
        .read_response_to("GET")
        .expect("an answer on the same connection");
    assert_eq!(resp.text(), "GET /four 0");
    // As HTTP/1.1, it needs a Host (RFC 9112 §3.2), and a chunked body is read as one.
    let cases = [
        case(
            "HTTP/1.2 without Host",
            "GET / HTTP/1.2\r\n\r\n",
            400,
            Close,
        ),
        case(
            "HTTP/1.3, Transfer-Encoding and Content-Length",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                "0\r\n\r\n",
            )
            .replace("HTTP/1.1", "HTTP/1.3"),
            400,
            Close,
        ),
    ];
    run_table(&cases);
    let mut r = Reader::new(srv.connect());
    r.send(b"POST /c HTTP/1.4\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    let resp = r.read_response_to("POST").expect("an answer");
    assert_eq!((resp.status, resp.text()), (200, "POST /c 3".to_string()));
}

// ---------------------------------------------------------------- controls

/// The limits are inclusive: requests exactly at each limit are served, so the tables
/// above fail for the right reason.
#[test]
fn requests_at_the_limits_are_accepted() {
    let srv = server();
    let mut checks: Vec<(&str, Vec<u8>, String)> = Vec::new();

    let target = format!("/{}", "t".repeat(MAX_URI - 1));
    checks.push((
        "target of exactly max_uri_bytes",
        format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes(),
        format!("GET {target} 0"),
    ));

    let mut fields = String::from("GET /fields HTTP/1.1\r\nHost: test\r\n");
    for i in 1..MAX_HEADERS {
        fields.push_str(&format!("X-Field-{i}: v\r\n"));
    }
    fields.push_str("\r\n");
    checks.push((
        "exactly max_headers fields",
        fields.into_bytes(),
        "GET /fields 0".into(),
    ));

    let prefix = "GET /head HTTP/1.1\r\nHost: test\r\nX-Pad: ";
    let pad = MAX_HEAD - prefix.len() - "\r\n\r\n".len();
    let head = format!("{prefix}{}\r\n\r\n", "p".repeat(pad));
    assert_eq!(head.len(), MAX_HEAD);
    checks.push((
        "head of exactly max_head_bytes",
        head.into_bytes(),
        "GET /head 0".into(),
    ));

    checks.push((
        "Content-Length body of exactly max_body_bytes",
        post(
            &format!("Content-Length: {MAX_BODY}\r\n"),
            &"x".repeat(MAX_BODY),
        )
        .into_bytes(),
        format!("POST /upload {MAX_BODY}"),
    ));

    let mut chunked = String::new();
    for _ in 0..4 {
        chunked.push_str(&format!("100\r\n{}\r\n", "c".repeat(256)));
    }
    chunked.push_str("0\r\n\r\n");
    checks.push((
        "chunked body of exactly max_body_bytes",
        post("Transfer-Encoding: chunked\r\n", &chunked).into_bytes(),
        format!("POST /upload {MAX_BODY}"),
    ));

    checks.push((
        "HTTP/1.0 without Host",
        b"GET /old HTTP/1.0\r\n\r\n".to_vec(),
        "GET /old 0".into(),
    ));

    for (name, req, want) in checks {
        let resp = roundtrip(srv.addr, &req);
        assert_eq!(resp.status, 200, "{name}: {resp:?} {:?}", resp.text());
        assert_eq!(resp.text(), want, "{name}");
    }
}

/// What the grammar allows right next to each strictness rule is still served, so the
/// strict tables above fail for the right reason.
#[test]
fn the_grammar_next_to_each_strict_rule_is_served() {
    let srv = server();
    let te = "Transfer-Encoding: chunked\r\n";
    let checks: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "BWS before \";\" and around \"=\" in chunk extensions (RFC 9112 §7.1.1)",
            post(
                te,
                "5 ;a\r\nhello\r\n6\t; b = \"c d\"\r\n world\r\n0 ;z\r\n\r\n",
            )
            .into_bytes(),
            "POST /upload 11",
        ),
        (
            "UTF-8 percent-encoded in the target (RFC 3986 §2.1)",
            b"GET /caf%C3%A9?q=%E2%82%AC HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(),
            "GET /caf%C3%A9 0",
        ),
        (
            "empty Host with an absolute-form target (RFC 9112 §3.2.2)",
            b"GET http://test/abs HTTP/1.1\r\nHost: \r\n\r\n".to_vec(),
            "GET /abs 0",
        ),
        (
            "no Host on HTTP/1.0 (RFC 9112 §3.2)",
            b"GET /old HTTP/1.0\r\n\r\n".to_vec(),
            "GET /old 0",
        ),
        (
            "a 32-byte extension method (RFC 9110 §9.1)",
            format!("{} /m HTTP/1.1\r\nHost: test\r\n\r\n", "M".repeat(32)).into_bytes(),
            "MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM /m 0",
        ),
        (
            "OPTIONS * (RFC 9112 §3.2.4)",
            b"OPTIONS * HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(),
            "OPTIONS * 0",
        ),
    ];
    for (name, req, want) in checks {
        let resp = roundtrip(srv.addr, &req);
        assert_eq!(resp.status, 200, "{name}: {resp:?} {:?}", resp.text());
        assert_eq!(resp.text(), want, "{name}");
    }
}

/// RFC 9112 §2.2: "a recipient MAY recognize a single LF as a line terminator" — kept
/// for the head (pipelined too), while a chunked body still needs CRLF.
#[test]
fn bare_lf_still_ends_head_lines() {
    let srv = server();
    let mut r = Reader::new(srv.connect());
    r.send(
        b"GET /lf HTTP/1.1\nHost: test\n\n\
          POST /mixed HTTP/1.1\r\nHost: test\nContent-Length: 2\r\n\nhi\
          \nPOST /chunked HTTP/1.1\nHost: test\nTransfer-Encoding: chunked\n\n\
          3\r\nabc\r\n0\r\n\r\n\
          POST /bad HTTP/1.1\nHost: test\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
    );
    for want in ["GET /lf 0", "POST /mixed 2", "POST /chunked 3"] {
        let resp = r.read_response();
        assert_eq!(resp.status, 200, "{want}: {resp:?}");
        assert_eq!(resp.text(), want);
    }
    let resp = r.read_response();
    if let Err(e) = check_error_response(&resp, 400) {
        panic!("bare LF in the chunked body: {e}");
    }
    assert!(r.is_closed(), "not closed after the 400");
}

// ---------------------------------------------------------------- order with good requests

#[test]
fn good_requests_before_a_bad_one_are_answered_first_then_close() {
    let srv = server();
    let good = |p: &str| format!("GET {p} HTTP/1.1\r\nHost: test\r\n\r\n");
    let scenarios: Vec<(&str, String, Vec<&str>, u16)> = vec![
        (
            "one good, then whitespace before colon",
            format!("{}GET /bad HTTP/1.1\r\nHost : test\r\n\r\n", good("/ok")),
            vec!["GET /ok 0"],
            400,
        ),
        (
            "two good, then invalid Content-Length",
            format!(
                "{}{}POST /bad HTTP/1.1\r\nHost: test\r\nContent-Length: +5\r\n\r\nhello",
                good("/a"),
                good("/b")
            ),
            vec!["GET /a 0", "GET /b 0"],
            400,
        ),
        (
            "a good POST with a body, then a bad chunk size",
            format!(
                "{}{}",
                post("Content-Length: 5\r\n", "hello"),
                post("Transfer-Encoding: chunked\r\n", "zz\r\n")
            ),
            vec!["POST /upload 5"],
            400,
        ),
        (
            "a good chunked POST, then CL + TE",
            format!(
                "{}{}",
                post("Transfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"),
                post(
                    "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                    "0\r\n\r\n"
                )
            ),
            vec!["POST /upload 3"],
            400,
        ),
        (
            "one good, then a too-large body",
            format!("{}{}", good("/ok"), post("Content-Length: 99999\r\n", "")),
            vec!["GET /ok 0"],
            413,
        ),
        (
            "one good, then HTTP/2.0",
            format!("{}GET / HTTP/2.0\r\nHost: test\r\n\r\n", good("/ok")),
            vec!["GET /ok 0"],
            505,
        ),
        (
            "a chunk line ended by a bare LF: the request behind it is not answered",
            format!(
                "{}{}",
                post("Transfer-Encoding: chunked\r\n", "2;x\nxx\r\n0\r\n\r\n"),
                good("/smuggled")
            ),
            vec![],
            400,
        ),
        (
            "bad first: nothing behind it is answered",
            format!("GET / HTTP/1.1\r\n\r\n{}", good("/never")),
            vec![],
            400,
        ),
    ];
    for (name, bytes, goods, bad_status) in scenarios {
        let mut r = Reader::new(srv.connect());
        r.send(bytes.as_bytes());
        for want in &goods {
            let resp = r.read_response();
            assert_eq!(resp.status, 200, "{name}: {resp:?}");
            assert_eq!(resp.text(), *want, "{name}");
        }
        let resp = r.read_response();
        if let Err(e) = check_error_response(&resp, bad_status) {
            panic!("{name}: {e}");
        }
        assert!(r.is_closed(), "{name}: not closed after the error");
        assert!(
            r.leftover().is_empty(),
            "{name}: answered something after the error: {:?}",
            String::from_utf8_lossy(r.leftover())
        );
    }
}

/// An unfinished head whose field lines go wrong — one too many, or one malformed — gets
/// the same verdict whether it arrives in one read or dribbles in: each field line is
/// judged when its LF arrives. Before, a head whose request line came in a read of its own
/// was not parsed again until it was complete or past `max_head_bytes`, so a client that
/// sent 17 fields a line at a time and stopped got `408` at the header deadline, where the
/// same bytes in one write got `431` at once.
#[test]
fn an_unfinished_head_going_wrong_gets_its_verdict_however_it_was_split() {
    use std::time::{Duration, Instant};
    let srv = server();
    let line = "GET / HTTP/1.1\r\n";
    let good: String = (0..MAX_HEADERS)
        .map(|i| format!("X-Field-{i}: v\r\n"))
        .collect();
    let cases: &[(&str, String, u16)] = &[
        (
            "one field line more than max_headers",
            format!("{good}X-One-Too-Many: v\r\n"),
            431,
        ),
        (
            "a space in a field name",
            "Host: test\r\nBad Name: v\r\n".into(),
            400,
        ),
        ("whitespace before the colon", "Host : test\r\n".into(), 400),
        (
            "obs-fold",
            "Host: test\r\nX-A: a\r\n folded\r\n".into(),
            400,
        ),
        (
            "a bare CR ending a line",
            "Host: test\r\nX-A: a\r\rX-B: b\r\n".into(),
            400,
        ),
        (
            "a control byte in a value",
            "Host: test\r\nX-A: a\x01b\r\n".into(),
            400,
        ),
    ];
    // How the bytes after the request line are written: each piece is its own write, a
    // little after the one before, so that the server reads them apart.
    type Split = fn(&[u8]) -> Vec<&[u8]>;
    let splits: &[(&str, Split)] = &[
        ("in one write with the request line", |b| vec![b]),
        ("after the request line, in one write", |b| vec![b]),
        ("a line at a time", |b| {
            b.split_inclusive(|&c| c == b'\n').collect()
        }),
        ("a byte at a time", |b| b.chunks(1).collect()),
    ];
    let mut failures = Vec::new();
    for (name, fields, status) in cases {
        for (i, (how, split)) in splits.iter().enumerate() {
            let mut s = srv.connect();
            s.set_nodelay(true).unwrap();
            let started = Instant::now();
            if i == 0 {
                s.write_all(format!("{line}{fields}").as_bytes()).unwrap();
            } else {
                s.write_all(line.as_bytes()).unwrap();
                for piece in split(fields.as_bytes()) {
                    std::thread::sleep(Duration::from_millis(2));
                    // The server may answer and close before the last piece: that is
                    // the point, not an error.
                    if s.write_all(piece).is_err() {
                        break;
                    }
                }
            }
            // Never the empty line: the head stays unfinished.
            let mut r = Reader::new(s);
            let got = r.read_response_to("GET").map(|resp| resp.status);
            if got != Some(*status) {
                failures.push(format!(
                    "[{name}, {how}] {got:?} after {:?}, want {status}",
                    started.elapsed()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Judging field lines as they end refuses nothing a complete head would pass: exactly
/// `max_headers` fields, dribbled a line and a byte at a time, are served.
#[test]
fn a_head_at_the_field_limit_dribbled_in_is_served() {
    use std::time::Duration;
    let srv = server();
    let mut head = String::from("GET /dribbled HTTP/1.1\r\nHost: test\r\n");
    for i in 1..MAX_HEADERS {
        head.push_str(&format!("X-Field-{i}:\tv{i} \r\n"));
    }
    head.push_str("\r\n");
    for bytes_per_write in [1, 7, 64] {
        let mut s = srv.connect();
        s.set_nodelay(true).unwrap();
        for piece in head.as_bytes().chunks(bytes_per_write) {
            s.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_micros(300));
        }
        let mut r = Reader::new(s);
        let resp = r.read_response_to("GET").expect("an answer");
        assert_eq!(
            resp.status, 200,
            "{bytes_per_write} bytes a write: {resp:?}"
        );
        assert_eq!(resp.text(), "GET /dribbled 0");
    }
}
