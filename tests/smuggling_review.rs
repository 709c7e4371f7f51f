//! Request smuggling and message-framing desyncs, reviewed as a third-party suite would
//! (http-garden, smuggler.py, PortSwigger's desync techniques, RFC 9112 §6's
//! message-body-length rules), in both roles:
//!
//! * server: each ambiguous or odd message is sent on a connection followed by a closing
//!   request; the sequence of answers (a transcript) must be the one the RFC asks for, and
//!   the same whether the bytes arrive at once or one by one — an answer that depends on
//!   how the bytes were split is a desync of its own;
//! * proxy: what goes upstream is framed once and unambiguously, and what a broken
//!   upstream sends (two framings, a body where none may be, more than it announced) never
//!   reaches the client as the answer to another request.
//!
//! Every test speaks raw bytes over real sockets on 127.0.0.1 (see `support`).

mod support;
use support::*;
#[cfg(feature = "proxy")]
#[path = "support/upstream.rs"]
mod upstream;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use h1server::{Config, Request, Response};

/// Echoes what the server understood, in a header (`X-Echo: METHOD path "body"`), with an
/// empty body, so that answers to GET and HEAD read the same; `/stream` answers the same
/// with a streamed (chunked) body, `ab`.
fn echo(req: &mut Request) -> Response {
    let echo = format!(
        "{} {} {:?}",
        req.method_str(),
        req.path(),
        String::from_utf8_lossy(req.body())
    );
    if req.path() == "/stream" {
        return Response::stream(["a", "b"]).with_header("X-Echo", echo);
    }
    Response::new(200).with_header("X-Echo", echo)
}

fn echo_server() -> TestServer {
    let cfg = Config {
        max_body_bytes: 1024,
        ..test_config()
    };
    TestServer::with_config(cfg, echo)
}

/// The request that ends every case's connection, if the case left it open.
const END: &str = "GET /end HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// How the bytes of a case go out.
#[derive(Clone, Copy, Debug)]
enum Split {
    /// One write.
    Whole,
    /// One read per byte (`send_paced`).
    Bytes,
}

/// Bytes the server has read, on all its connections.
fn bytes_read(srv: &TestServer) -> u64 {
    srv.handle().telemetry().snapshot().bytes_in
}

/// True once the server has sent something (or closed): a peek that does not block.
fn answered(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let got = s.peek(&mut [0u8; 1]);
    s.set_nonblocking(false).unwrap();
    !matches!(got, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Sends `bytes` one at a time, each only once the server has read the one before (its
/// byte count says so), so that every byte is a read of its own. Once the server answers
/// (an error it closes after, or a request answered) the rest goes in one write: the
/// server may stop reading.
fn send_paced(srv: &TestServer, s: &mut TcpStream, bytes: &[u8]) {
    let base = bytes_read(srv);
    for (i, b) in bytes.iter().enumerate() {
        if answered(s) {
            let _ = s.write_all(&bytes[i..]);
            return;
        }
        if s.write_all(std::slice::from_ref(b)).is_err() {
            return;
        }
        let sent = base + i as u64 + 1;
        let t0 = Instant::now();
        while bytes_read(srv) < sent && !answered(s) {
            assert!(t0.elapsed() < IO_TIMEOUT, "the server read nothing more");
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// The answers to `bytes` on one connection, in order, until the server closes it: each
/// final answer as `STATUS X-Echo` (`STATUS message` for the server's own errors), interim
/// answers as `1xx`. Write errors after the server's close are ignored (the rest of a
/// rejected message may not be taken).
fn transcript(srv: &TestServer, bytes: &[u8], split: Split) -> Vec<String> {
    let mut r = Reader::new(srv.connect());
    match split {
        Split::Whole => {
            let _ = r.stream.write_all(bytes);
        }
        Split::Bytes => send_paced(srv, &mut r.stream, bytes),
    }
    let mut out = Vec::new();
    for _ in 0..32 {
        // Read as answers to HEAD: the echo's answers have no body (`Content-Length: 0`,
        // none at all to HEAD), and the server's own errors end the connection, so their
        // body is the last thing on it.
        let Some(resp) = r.read_response_to("HEAD") else {
            return out;
        };
        match resp.header("x-echo") {
            Some(e) => out.push(format!("{} {e}", resp.status)),
            None if resp.status < 200 => out.push(resp.status.to_string()),
            None => {
                let closed = r.is_closed();
                // The error's body (not read as an answer to HEAD) is what is left.
                let why = String::from_utf8_lossy(r.leftover()).trim().to_string();
                out.push(format!("{} {why}", resp.status));
                if !closed {
                    out.push("not closed after the error".into());
                }
                return out;
            }
        }
    }
    panic!("more than 32 answers: {out:?}");
}

/// A case: the bytes, and the final answers they must get (interim ones aside).
struct Case {
    name: &'static str,
    bytes: String,
    want: Vec<&'static str>,
}

fn case(name: &'static str, bytes: impl Into<String>, want: &[&'static str]) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        want: want.to_vec(),
    }
}

/// Runs every case whole and byte by byte; fails once, listing every case whose answers
/// are not the wanted ones.
fn run(cases: &[Case]) {
    let srv = echo_server();
    let mut failures = Vec::new();
    for c in cases {
        let mut runs = Vec::new();
        for split in [Split::Whole, Split::Bytes] {
            let got = finals(transcript(&srv, c.bytes.as_bytes(), split));
            let statuses: Vec<&str> = got.iter().map(|a| status_of(a)).collect();
            if statuses != c.want {
                failures.push(format!(
                    "[{}] sent {split:?}: {:?}\n    got  {got:?}\n    want {:?}",
                    c.name, c.bytes, c.want
                ));
            }
            runs.push(got);
        }
        if runs[0] != runs[1] {
            failures.push(format!(
                "[{}] whole {:?}, byte by byte {:?}",
                c.name, runs[0], runs[1]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        cases.len() * 2,
        failures.join("\n")
    );
}

/// The final answers of a transcript (interim ones may come or not: RFC 9110 §10.1.1
/// lets a server that has the body already skip `100 Continue`).
fn finals(t: Vec<String>) -> Vec<String> {
    t.into_iter().filter(|a| !a.starts_with('1')).collect()
}

/// An answer as the cases state it: `STATUS X-Echo`, or `STATUS` alone for an error.
fn status_of(answer: &str) -> &str {
    if answer.starts_with("200 ") {
        answer
    } else {
        &answer[..answer.len().min(3)]
    }
}

fn post(fields: &str, body: &str) -> String {
    format!("POST /p HTTP/1.1\r\nHost: t\r\n{fields}\r\n{body}{END}")
}

const CHUNKED_HELLO: &str = "5\r\nhello\r\n0\r\n\r\n";

// ---------------------------------------------------------------- Transfer-Encoding

/// RFC 9112 §6.1, §6.3 item 4, §7: what counts as `chunked` last, and what does not.
#[test]
fn transfer_encoding_values_are_read_one_way_whatever_the_split() {
    let ok = ["200 POST /p \"hello\"", "200 GET /end \"\""];
    let cases = [
        // RFC 9110 §5.6.1: empty list elements are ignored.
        case(
            "empty element before chunked",
            post("Transfer-Encoding: , chunked\r\n", CHUNKED_HELLO),
            &ok,
        ),
        case(
            "empty element after chunked",
            post("Transfer-Encoding: chunked,\r\n", CHUNKED_HELLO),
            &ok,
        ),
        // RFC 9112 §7: "All transfer-coding names are case-insensitive".
        case(
            "upper case",
            post("Transfer-Encoding: CHUNKED\r\n", CHUNKED_HELLO),
            &ok,
        ),
        case(
            "tabs around the value",
            post("Transfer-Encoding:\tchunked\t\r\n", CHUNKED_HELLO),
            &ok,
        ),
        case(
            "GET with a chunked body",
            format!(
                "GET /g HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{CHUNKED_HELLO}{END}"
            ),
            &["200 GET /g \"hello\"", "200 GET /end \"\""],
        ),
        // Not chunked last: RFC 9112 §6.3 item 4, 400 and close.
        case(
            "identity",
            post("Transfer-Encoding: identity\r\n", "hello"),
            &["400"],
        ),
        case(
            "chunked, identity",
            post("Transfer-Encoding: chunked, identity\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "xchunked",
            post("Transfer-Encoding: xchunked\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "quoted chunked",
            post("Transfer-Encoding: \"chunked\"\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "chunked with a parameter",
            post("Transfer-Encoding: chunked;q=1\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "empty Transfer-Encoding with a Content-Length",
            post("Transfer-Encoding:\r\nContent-Length: 5\r\n", "hello"),
            &["400"],
        ),
        case(
            "identity with a Content-Length",
            post(
                "Transfer-Encoding: identity\r\nContent-Length: 5\r\n",
                "hello",
            ),
            &["400"],
        ),
        case(
            "chunked with Content-Length: 0",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
                CHUNKED_HELLO,
            ),
            &["400"],
        ),
        // A coding the server does not implement, chunked last: 501 (RFC 9112 §6.1), close.
        case(
            "identity, chunked",
            post("Transfer-Encoding: identity, chunked\r\n", CHUNKED_HELLO),
            &["501"],
        ),
        // Field names are tokens: a name that only looks like Transfer-Encoding is
        // another field, or a malformed line.
        case(
            "vertical tab before the value",
            post("Transfer-Encoding:\x0bchunked\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "NUL in the name",
            post("Transfer-Encoding\0: chunked\r\n", CHUNKED_HELLO),
            &["400"],
        ),
        case(
            "whitespace line before the first field (RFC 9112 §2.2)",
            format!(
                "POST /p HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: t\r\n\r\n{CHUNKED_HELLO}{END}"
            ),
            &["400"],
        ),
    ];
    run(&cases);
}

// ---------------------------------------------------------------- Content-Length

/// RFC 9110 §8.6 (`Content-Length = 1*DIGIT`), RFC 9112 §6.3 item 5.
#[test]
fn content_length_values_are_read_one_way_whatever_the_split() {
    let ok = ["200 POST /p \"hello\"", "200 GET /end \"\""];
    let cases = [
        case(
            "leading zeros",
            post("Content-Length: 0005\r\n", "hello"),
            &ok,
        ),
        case("OWS around", post("Content-Length: \t5 \r\n", "hello"), &ok),
        case(
            "zero, then a request where a body would be",
            post("Content-Length: 0\r\n", ""),
            &["200 POST /p \"\"", "200 GET /end \"\""],
        ),
        case(
            "GET with a body, then a request",
            format!("GET /g HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello{END}"),
            &["200 GET /g \"hello\"", "200 GET /end \"\""],
        ),
        case(
            "HEAD with a body, then a request",
            format!("HEAD /h HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello{END}"),
            &["200 HEAD /h \"hello\"", "200 GET /end \"\""],
        ),
        case(
            "HTTP/1.0 keep-alive with a body, then a request",
            format!(
                "POST /o HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello{END}"
            ),
            &["200 POST /o \"hello\"", "200 GET /end \"\""],
        ),
        case(
            "a body that holds a request",
            post(
                "Content-Length: 35\r\n",
                "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
            ),
            &[
                "200 POST /p \"GET /smuggled HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n\"",
                "200 GET /end \"\"",
            ],
        ),
        case(
            "same value twice, two spellings of the name",
            post("content-length: 5\r\nContent-Length: 5\r\n", "hello"),
            &["400"],
        ),
        case(
            "list with an empty element",
            post("Content-Length: 5,\r\n", "hello"),
            &["400"],
        ),
        case(
            "u64::MAX + 1",
            post("Content-Length: 18446744073709551616\r\n", "hello"),
            &["400"],
        ),
        case(
            "u64::MAX",
            post("Content-Length: 18446744073709551615\r\n", "hello"),
            &["413"],
        ),
        case(
            "underscore",
            post("Content-Length: 1_0\r\n", "hello"),
            &["400"],
        ),
        case(
            "Content-Length in an HTTP/1.0 request with Transfer-Encoding",
            format!(
                "POST /o HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello{END}"
            ),
            &["400"],
        ),
    ];
    run(&cases);
}

// ---------------------------------------------------------------- chunked framing

/// RFC 9112 §7.1: chunk sizes, extensions, data CRLF, trailers.
#[test]
fn chunked_framing_is_read_one_way_whatever_the_split() {
    let te = "Transfer-Encoding: chunked\r\n";
    let ok = ["200 POST /p \"hello\"", "200 GET /end \"\""];
    let cases = [
        case(
            "leading zeros in the size",
            post(te, "0005\r\nhello\r\n0\r\n\r\n"),
            &ok,
        ),
        case(
            "upper-case hex",
            post(te, "A\r\nhellohello\r\n0\r\n\r\n"),
            &["200 POST /p \"hellohello\"", "200 GET /end \"\""],
        ),
        case(
            "quoted extension with ; and an escaped quote",
            post(te, "5;a=\"x;y\\\"z\"\r\nhello\r\n0;b\r\n\r\n"),
            &ok,
        ),
        case(
            "trailers naming framing fields do not frame anything",
            post(
                te,
                "5\r\nhello\r\n0\r\nContent-Length: 50\r\nTransfer-Encoding: gzip\r\n\r\n",
            ),
            &ok,
        ),
        case(
            "a request right after the last chunk",
            post(
                te,
                "5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n",
            ),
            &[
                "200 POST /p \"hello\"",
                "200 GET /next \"\"",
                "200 GET /end \"\"",
            ],
        ),
        case(
            "CRLF inside a quoted extension",
            post(te, "5;a=\"x\r\nGET /s HTTP/1.1\"\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case(
            "unterminated quoted extension",
            post(te, "5;a=\"x\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case(
            "17 digits of size",
            post(te, "00000000000000005\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case("plus sign", post(te, "+5\r\nhello\r\n0\r\n\r\n"), &["400"]),
        case(
            "leading space",
            post(te, " 5\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case(
            "NUL after the size",
            post(te, "5\0\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case(
            "no empty line after the last chunk: a request read as a trailer",
            post(te, "0\r\nGET /s HTTP/1.1\r\nHost: t\r\n\r\n"),
            &["400"],
        ),
        case(
            "data shorter than its size",
            post(te, "6\r\nhello\r\n0\r\n\r\n"),
            &["400"],
        ),
        case(
            "obs-fold in a trailer",
            post(te, "0\r\nX-A: a\r\n b\r\n\r\n"),
            &["400"],
        ),
        case(
            "space before a trailer's colon",
            post(te, "0\r\nX-A : b\r\n\r\n"),
            &["400"],
        ),
        case(
            "trailer without a colon",
            post(te, "0\r\nX-A\r\n\r\n"),
            &["400"],
        ),
        case(
            "DEL in a trailer value",
            post(te, "0\r\nX-A: a\x7fb\r\n\r\n"),
            &["400"],
        ),
    ];
    run(&cases);
}

// ---------------------------------------------------------------- heads

/// RFC 9112 §2.2, §3, §5: request lines and field lines.
#[test]
fn odd_heads_are_read_one_way_whatever_the_split() {
    let cases = [
        case(
            "trailing space after the version",
            format!("GET / HTTP/1.1 \r\nHost: t\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "HTTP/1.10",
            format!("GET / HTTP/1.10\r\nHost: t\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "HTTP/01.1",
            format!("GET / HTTP/01.1\r\nHost: t\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "tab between method and target",
            format!("GET\t/ HTTP/1.1\r\nHost: t\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "absolute-form with another Host",
            format!("GET http://t/abs HTTP/1.1\r\nHost: other\r\n\r\n{END}"),
            &["200 GET /abs \"\"", "200 GET /end \"\""],
        ),
        case(
            "DEL in a field value",
            format!("GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x7fb\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "a line of spaces among the fields",
            format!("GET / HTTP/1.1\r\nHost: t\r\n   \r\nX-A: b\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "bare CR starting a line",
            format!("GET / HTTP/1.1\r\nHost: t\r\n\rX-A: b\r\n\r\n{END}"),
            &["400"],
        ),
        // Refused heads whose body framing the server never learnt: it must close, or
        // the body would be read as the next request.
        case(
            "HTTP/2.0 with a body that holds a request",
            format!(
                "POST /p HTTP/2.0\r\nHost: t\r\nContent-Length: 35\r\n\r\n\
                 GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n{END}"
            ),
            &["505"],
        ),
        case(
            "a 33-byte method with a body that holds a request",
            format!(
                "{} /p HTTP/1.1\r\nHost: t\r\nContent-Length: 35\r\n\r\n\
                 GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n{END}",
                "M".repeat(33)
            ),
            &["501"],
        ),
        case(
            "a target past max_uri_bytes with a body that holds a request",
            format!(
                "POST /{} HTTP/1.1\r\nHost: t\r\nContent-Length: 35\r\n\r\n\
                 GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n{END}",
                "a".repeat(9000)
            ),
            &["414"],
        ),
        case(
            "leading space before the method",
            format!(" GET / HTTP/1.1\r\nHost: t\r\n\r\n{END}"),
            &["400"],
        ),
        case(
            "Expect: 100-continue, body sent at once, then a request",
            post("Expect: 100-continue\r\nContent-Length: 5\r\n", "hello"),
            &["200 POST /p \"hello\"", "200 GET /end \"\""],
        ),
        case(
            "Expect: 100-continue on a chunked body, then a request",
            post(
                "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n",
                CHUNKED_HELLO,
            ),
            &["200 POST /p \"hello\"", "200 GET /end \"\""],
        ),
    ];
    run(&cases);
}

/// RFC 9112 §2.2 lets a server skip empty lines before the request line, and the engine
/// does; an unfinished request line after them is judged as early as one without them —
/// a 33-byte method `501`, a line past any target of `max_uri_bytes` `414`, as soon as
/// the byte that decides it arrives — not left to the header deadline (`408`) because
/// the empty line's LF was taken for the request line's end.
#[test]
fn an_empty_line_before_an_unfinished_request_line_does_not_delay_its_verdict() {
    let srv = echo_server();
    let cases = [
        (format!("\r\n{}", "M".repeat(33)), "501"),
        (format!("\n\r\nGET /{}", "a".repeat(9000)), "414"),
    ];
    for (bytes, want) in &cases {
        for split in [Split::Whole, Split::Bytes] {
            let t0 = Instant::now();
            let got = transcript(&srv, bytes.as_bytes(), split);
            let statuses: Vec<&str> = got.iter().map(|a| status_of(a)).collect();
            assert_eq!(
                statuses,
                [*want],
                "{split:?}, {} bytes starting {:?}: {got:?} after {:?}",
                bytes.len(),
                &bytes[..4],
                t0.elapsed()
            );
        }
    }
}

/// RFC 9110 §15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client", and
/// §10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0 request.
#[test]
fn no_100_continue_goes_to_an_http10_client_however_its_body_arrives() {
    let srv = echo_server();
    let req = format!(
        "POST /o HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\
         Content-Length: 5\r\n\r\nhello{END}"
    );
    for split in [Split::Whole, Split::Bytes] {
        let got = transcript(&srv, req.as_bytes(), split);
        assert_eq!(
            got,
            ["200 POST /o \"hello\"", "200 GET /end \"\""],
            "{split:?}"
        );
    }
}

/// A chunked body read over many reads has its framing dropped from the read buffer as
/// it is decoded (`conn/read.rs`, `drop_chunk_framing`); the requests pipelined behind
/// it, handed back by the worker after a streamed answer (RFC 9112 §9.3.2: they wait for
/// its last chunk), must still start where they start.
#[test]
fn requests_behind_a_chunked_body_and_a_streamed_answer_start_where_they_start() {
    let srv = echo_server();
    let req = format!(
        "POST /stream HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
         3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nT: v\r\n\r\n\
         POST /after HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc\
         GET /also HTTP/1.1\r\nHost: t\r\n\r\n{END}"
    );
    for split in [Split::Whole, Split::Bytes] {
        let mut r = Reader::new(srv.connect());
        match split {
            Split::Whole => r.send(req.as_bytes()),
            Split::Bytes => send_paced(&srv, &mut r.stream, req.as_bytes()),
        }
        let mut got = Vec::new();
        while let Some(resp) = r.read_response_to("GET") {
            got.push(format!(
                "{} {} {}",
                resp.status,
                resp.header("x-echo").unwrap_or("-"),
                resp.text()
            ));
        }
        assert_eq!(
            got,
            [
                "200 POST /stream \"hello\" ab",
                "200 POST /after \"abc\" ",
                "200 GET /also \"\" ",
                "200 GET /end \"\" ",
            ],
            "{split:?}"
        );
    }
}

// ---------------------------------------------------------------- early verdicts

/// A server with small head limits, for the verdicts given before a head is complete.
fn small_head_server() -> TestServer {
    let cfg = Config {
        max_uri_bytes: 1024,
        max_head_bytes: 4096,
        max_body_bytes: 1024,
        ..test_config()
    };
    TestServer::with_config(cfg, echo)
}

/// The answer to the first request of `bytes`, sent whole and byte by byte, on `srv`.
fn both_ways(srv: &TestServer, bytes: &[u8]) -> [Vec<String>; 2] {
    [
        transcript(srv, bytes, Split::Whole),
        transcript(srv, bytes, Split::Bytes),
    ]
}

/// The verdict on a head that is still arriving (414, 431) is given as soon as a limit
/// is passed; the verdict on the same head arriving in one read must be the same, or an
/// answer depends on how the bytes were split (a request served or refused by chance).
///
/// A 30-byte extension method (RFC 9110 §9.1: `method = token`; up to 32 bytes are
/// routed) with a target exactly at `max_uri_bytes` is a valid request: served whole. Sent
/// byte by byte it got `414`, since the unfinished request line was cut off at
/// `max_uri_bytes + 32` bytes, which leaves no room for a long method.
#[test]
fn a_long_method_with_a_target_at_the_limit_is_served_however_it_arrives() {
    let srv = small_head_server();
    let method = "M".repeat(30);
    let target = format!("/{}", "t".repeat(1023));
    let req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n\r\n{END}");
    let want = [
        format!("200 {method} {target} \"\""),
        "200 GET /end \"\"".into(),
    ];
    for (split, got) in ["whole", "byte by byte"]
        .iter()
        .zip(both_ways(&srv, req.as_bytes()))
    {
        assert_eq!(got, want, "sent {split}");
    }
}

/// Heads that break a limit and have another fault further on, or whose fault shows only
/// once a line is complete: the answer (status and message) is the same whichever way the
/// bytes arrive — the fault met first in the byte stream decides, as it does for a head
/// that trickles in.
#[test]
fn a_head_past_a_limit_gets_one_verdict_however_it_arrives() {
    let srv = small_head_server();
    let long_target = format!("/{}", "t".repeat(1200));
    let pad = "p".repeat(1000);
    let big = format!("X-A: {pad}\r\nX-B: {pad}\r\nX-C: {pad}\r\nX-D: {pad}\r\nX-E: {pad}\r\n");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "target past the limit, then an unsupported version",
            format!("GET {long_target} HTTP/2.0\r\nHost: t\r\n\r\n"),
            "414",
        ),
        (
            "target past the limit, then a bad field line",
            format!("GET {long_target} HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n"),
            "414",
        ),
        (
            "head past the limit, then a bad field line",
            format!("GET / HTTP/1.1\r\nHost: t\r\n{big}Bad Name: x\r\n\r\n"),
            "431",
        ),
        (
            "whitespace before a colon (RFC 9112 §5.1)",
            "GET / HTTP/1.1\r\nHost : t\r\n\r\n".into(),
            "400",
        ),
        (
            "tab before a colon",
            "GET / HTTP/1.1\r\nHost: t\r\nX-A\t: b\r\n\r\n".into(),
            "400",
        ),
        (
            "head past the limit, then whitespace before a colon",
            format!("GET / HTTP/1.1\r\nHost: t\r\n{big}X-F : x\r\n\r\n"),
            "431",
        ),
    ];
    let mut failures = Vec::new();
    for (name, req, want) in cases {
        let [whole, bytes] = both_ways(&srv, req.as_bytes());
        let statuses = |t: &[String]| {
            t.iter()
                .map(|a| status_of(a).to_string())
                .collect::<Vec<_>>()
        };
        if statuses(&whole) != [want] || statuses(&bytes) != [want] || whole != bytes {
            failures.push(format!(
                "[{name}] want [{want}]: whole {whole:?}, byte by byte {bytes:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ================================================================ proxy role

#[cfg(feature = "proxy")]
mod proxy {
    use super::*;
    use crate::upstream::{Reply, Upstream, ok};
    use h1server::proxy::{ProxyBuilder, ReverseProxy};

    fn gateway(b: ProxyBuilder) -> TestServer {
        let cfg = Config {
            max_body_bytes: 64 * 1024,
            ..test_config()
        };
        TestServer::with_config(cfg, b.build().unwrap())
    }

    /// A field line: name (lower-cased) and value.
    type Field = (String, String);

    /// The framing lines of a head as the upstream saw it: `(name lower-cased, value)`
    /// for every Content-Length, Transfer-Encoding and Host line.
    fn framing_lines(head: &str) -> Vec<Field> {
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .filter(|(n, _)| {
                matches!(
                    n.as_str(),
                    "content-length" | "transfer-encoding" | "host" | "trailer" | "expect"
                )
            })
            .collect()
    }

    /// What goes upstream is framed once, by the body the engine read: exactly one
    /// Content-Length (never with Transfer-Encoding, RFC 9112 §6.1: "A sender MUST NOT
    /// send a Content-Length header field in any message that contains a
    /// Transfer-Encoding header field"), one Host, and nothing a trailer or a
    /// `Connection` option said; a request pipelined behind a body arrives as its own.
    #[test]
    fn what_goes_upstream_is_framed_once_by_the_body_read() {
        let up = Upstream::start(vec![]);
        let gw = gateway(ReverseProxy::builder().route("/", [up.url("")]));
        let mut r = Reader::new(connect(gw.addr));
        r.send(
            b"POST /chunked HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\
              Trailer: Content-Length\r\nExpect: 100-continue\r\n\r\n\
              5\r\nhello\r\n0\r\nContent-Length: 50\r\nTransfer-Encoding: gzip\r\n\r\n\
              GET /get-with-body HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\
              Connection: content-length, host\r\n\r\nhello\
              GET /plain HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        );
        for i in 0..3 {
            let resp = r.read_response();
            assert_eq!(resp.status, 200, "answer {i}: {resp:?}");
        }
        assert!(r.is_closed());
        let seen = up.requests();
        let heads: Vec<(&str, Vec<Field>, &[u8])> = seen
            .iter()
            .map(|s| (s.line(), framing_lines(&s.head), &s.body[..]))
            .collect();
        let host = ("host".to_string(), up.addr.to_string());
        let cl5 = ("content-length".to_string(), "5".to_string());
        assert_eq!(
            heads,
            [
                (
                    "POST /chunked HTTP/1.1",
                    vec![host.clone(), cl5.clone()],
                    &b"hello"[..]
                ),
                (
                    "GET /get-with-body HTTP/1.1",
                    vec![host.clone(), cl5],
                    &b"hello"[..]
                ),
                ("GET /plain HTTP/1.1", vec![host], &b""[..]),
            ]
        );
    }

    /// A director that sets framing fields or a second Host cannot make the upstream's
    /// request ambiguous: they are dropped, the engine frames the body.
    #[test]
    fn a_director_cannot_add_framing_fields_or_a_second_host() {
        let up = Upstream::start(vec![]);
        let gw = gateway(
            ReverseProxy::builder()
                .route("/", [up.url("")])
                .director(|out| {
                    out.headers
                        .push(("Transfer-Encoding".into(), "chunked".into()));
                    out.headers.push(("Content-Length".into(), "99".into()));
                    out.headers.push(("Host".into(), "evil".into()));
                }),
        );
        let resp = roundtrip(
            gw.addr,
            b"POST /d HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello",
        );
        assert_eq!(resp.status, 200);
        let seen = &up.requests()[0];
        assert_eq!(
            framing_lines(&seen.head),
            [
                ("host".to_string(), up.addr.to_string()),
                ("content-length".to_string(), "5".to_string())
            ],
            "{}",
            seen.head
        );
        assert_eq!(seen.body, b"hello");
    }

    /// One broken answer from the upstream, to a request of `method`: what the client
    /// must get (its status, and its body when it is relayed).
    struct Broken {
        name: &'static str,
        method: &'static str,
        answer: &'static str,
        status: u16,
        body: Option<&'static str>,
        /// The answer was a good one: its connection may carry the next request.
        reusable: bool,
    }

    /// Each broken answer goes to a client as the answer to its first request, and the
    /// client's second request — on the same connection unless the first answer closed
    /// it — must get its own answer (`second`), never bytes the broken one left behind;
    /// the upstream connection that carried the broken answer is never reused for it.
    #[test]
    fn a_broken_upstream_answer_never_leaks_into_the_next_answer() {
        let cases = [
            Broken {
                name: "Content-Length and Transfer-Encoding (RFC 9112 §6.3 item 3)",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
                         5\r\nhello\r\n0\r\n\r\n",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "Transfer-Encoding then Content-Length",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n\
                         5\r\nhello\r\n0\r\n\r\n",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "two different Content-Lengths (§6.3 item 5)",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nhello",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "a Content-Length list of different values",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nContent-Length: 3, 5\r\n\r\nhello",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "a Content-Length list of one value (RFC 9110 §8.6 allows it)",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
                status: 200,
                body: Some("hello"),
                reusable: true,
            },
            Broken {
                name: "Content-Length: +5",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "space before the colon of Content-Length",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nhello",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "obs-fold in the head",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 5\r\n\r\nhello",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "Transfer-Encoding in an HTTP/1.0 answer",
                method: "GET",
                answer: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "chunked not last",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "a bad chunk size after a good chunk",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "chunk data longer than its size",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "a bare LF ending a chunk line",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
                status: 502,
                body: None,
                reusable: false,
            },
            Broken {
                name: "trailers naming framing fields",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\
                         Content-Length: 50\r\nTransfer-Encoding: gzip\r\n\r\n",
                status: 200,
                body: Some("hello"),
                reusable: true,
            },
            Broken {
                name: "a body after the head of an answer to HEAD",
                method: "HEAD",
                answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                status: 200,
                body: None,
                reusable: false,
            },
            Broken {
                name: "a response in the body of an answer to HEAD",
                method: "HEAD",
                answer: "HTTP/1.1 200 OK\r\nContent-Length: 38\r\n\r\n\
                         HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                status: 200,
                body: None,
                reusable: false,
            },
            Broken {
                name: "a body after a 204",
                method: "GET",
                answer: "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
                status: 204,
                body: None,
                reusable: false,
            },
            Broken {
                name: "a body after a 304",
                method: "GET",
                answer: "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello",
                status: 304,
                body: None,
                reusable: false,
            },
            Broken {
                name: "more body than Content-Length, a response in the excess",
                method: "GET",
                answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
                         HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
                status: 200,
                body: Some("hello"),
                reusable: false,
            },
            Broken {
                name: "a 1xx with a body",
                method: "GET",
                answer: "HTTP/1.1 102 Processing\r\nContent-Length: 5\r\n\r\nhello\
                         HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                status: 502,
                body: None,
                reusable: false,
            },
        ];
        let mut failures = Vec::new();
        for c in &cases {
            if let Err(e) = broken_case(c) {
                failures.push(format!("[{}] {e}", c.name));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    fn broken_case(c: &Broken) -> Result<(), String> {
        let up = Upstream::start(vec![Reply::Raw(c.answer.into()), Reply::Raw(ok("second"))]);
        let gw = gateway(ReverseProxy::builder().route("/", [up.url("")]));
        let mut r = Reader::new(connect(gw.addr));
        r.send(format!("{} /first HTTP/1.1\r\nHost: gw\r\n\r\n", c.method).as_bytes());
        let mut first = r
            .read_response_to(c.method)
            .ok_or("no answer to the first request")?;
        while first.status < 200 && c.status >= 200 {
            // An interim answer relayed before the final one.
            first = r
                .read_response_to(c.method)
                .ok_or("no final answer to the first request")?;
        }
        if first.status != c.status {
            return Err(format!("first answer {first:?}, want {}", c.status));
        }
        if let Some(body) = c.body
            && first.body != body.as_bytes()
        {
            return Err(format!("first body {:?}, want {body:?}", first.text()));
        }
        let closes = first
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if closes {
            if !r.is_closed() {
                return Err("Connection: close, but the connection stayed open".into());
            }
            if !r.leftover().is_empty() {
                return Err(format!("bytes after a closing answer: {:?}", r.leftover()));
            }
            r = Reader::new(connect(gw.addr));
        }
        r.send(b"GET /second HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
        let second = r.read_response();
        if (second.status, second.text().as_str()) != (200, "second") {
            return Err(format!(
                "the second request got {} {:?} (upstream saw {:?})",
                second.status,
                second.text(),
                up.requests()
                    .iter()
                    .map(|s| (s.conn, s.line().to_string()))
                    .collect::<Vec<_>>()
            ));
        }
        if !r.is_closed() || !r.leftover().is_empty() {
            return Err(format!("after the second answer: {:?}", r.leftover()));
        }
        let seen = up.requests();
        if seen.len() == 2 && seen[0].conn == seen[1].conn && !c.reusable {
            return Err("the broken answer's connection carried the next request".into());
        }
        Ok(())
    }

    /// Bytes the upstream sends after a complete answer, once the client has it — the
    /// rest of a body longer than its Content-Length, or a body after the head of an
    /// answer to HEAD, with a whole response in them — arrive while the upstream
    /// connection is idle in the pool. They answer nothing (RFC 9112 §6.3): the next
    /// request must not go on that connection and be answered with them.
    #[test]
    fn bytes_an_upstream_sends_after_an_answer_never_answer_the_next_request() {
        use std::net::TcpListener;
        use std::sync::mpsc;
        let excess = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled";
        for (method, answer, late) in [
            (
                "GET",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                excess.to_string(),
            ),
            (
                "HEAD",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                format!("hello{excess}"),
            ),
        ] {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let up = l.local_addr().unwrap();
            let client_has_it = Gate::default();
            let (sent_tx, sent_rx) = mpsc::channel();
            let gate = client_has_it.clone();
            std::thread::spawn(move || {
                for (conn, s) in l.incoming().enumerate().take(4) {
                    let Ok(mut s) = s else { return };
                    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    let (gate, sent_tx, late) = (gate.clone(), sent_tx.clone(), late.clone());
                    std::thread::spawn(move || {
                        let mut buf = Vec::new();
                        while read_request_head(&mut s, &mut buf).is_some() {
                            if conn > 0 {
                                let _ = s.write_all(ok("second").as_bytes());
                                continue;
                            }
                            let _ = s.write_all(answer.as_bytes());
                            gate.wait(IO_TIMEOUT);
                            let _ = s.write_all(late.as_bytes());
                            let _ = sent_tx.send(());
                        }
                    });
                }
            });
            let gw = gateway(ReverseProxy::builder().route("/", [format!("http://{up}")]));
            let mut r = Reader::new(connect(gw.addr));
            r.send(format!("{method} /first HTTP/1.1\r\nHost: gw\r\n\r\n").as_bytes());
            let first = r.read_response_to(method).expect("an answer");
            assert_eq!(first.status, 200, "{method}");
            client_has_it.open();
            sent_rx
                .recv_timeout(IO_TIMEOUT)
                .expect("the upstream sent the rest");
            r.send(b"GET /second HTTP/1.1\r\nHost: gw\r\n\r\n");
            let second = r.read_response();
            assert_eq!(
                (second.status, second.text().as_str()),
                (200, "second"),
                "{method}: the second request was answered with what followed the first answer"
            );
        }
    }

    /// RFC 9110 §8.6 and RFC 9112 §6.1: a 1xx or a 204 carries no Content-Length and no
    /// Transfer-Encoding, and RFC 9112 §6.3 item 1 ends it at its empty line. An upstream
    /// that frames one anyway believes a body follows, and sends it: when it comes in the
    /// read of the head, the gateway sees bytes left over and drops the connection
    /// (`a_broken_upstream_answer_never_leaks_into_the_next_answer`); when the upstream
    /// wrote head and body apart, the connection looks clean, goes back to the pool, and
    /// the body — a whole response, here — answers the next request sent on it, which
    /// may be another client's. The head alone says the connection is out of step.
    #[test]
    fn a_body_framed_on_a_204_or_a_1xx_never_answers_the_next_request() {
        let smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled";
        let cases = [
            (
                "204 with Content-Length",
                format!(
                    "HTTP/1.1 204 No Content\r\nContent-Length: {}\r\n\r\n",
                    smuggled.len()
                ),
                smuggled.to_string(),
            ),
            (
                "204 with Transfer-Encoding",
                "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n".to_string(),
                format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len()),
            ),
            (
                // The upstream reads its 103's Content-Length as a body: the 38 bytes it
                // sends are a final answer to the gateway, and its real final answer
                // comes after, to whatever request is sent next.
                "103 with Content-Length",
                "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\nContent-Length: 38\r\n\r\n\
                 HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                    .to_string(),
                smuggled.to_string(),
            ),
        ];
        let mut failures = Vec::new();
        for (name, head, late) in cases {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let up = l.local_addr().unwrap();
            std::thread::spawn(move || {
                for (conn, s) in l.incoming().enumerate().take(4) {
                    let Ok(mut s) = s else { return };
                    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    let (head, late) = (head.clone(), late.clone());
                    std::thread::spawn(move || {
                        let mut buf = Vec::new();
                        let mut answers = [head.as_str(), late.as_str()].into_iter();
                        while read_request_head(&mut s, &mut buf).is_some() {
                            // The first connection answers its first request with the
                            // head, and sends what it took for that answer's body once
                            // the next request is on its way; every other connection
                            // answers as it should.
                            let answer = match conn {
                                0 => answers.next().unwrap_or_default().to_string(),
                                _ => ok("second"),
                            };
                            let _ = s.write_all(answer.as_bytes());
                        }
                    });
                }
            });
            let gw = gateway(ReverseProxy::builder().route("/", [format!("http://{up}")]));
            let mut r = Reader::new(connect(gw.addr));
            r.send(b"GET /first HTTP/1.1\r\nHost: gw\r\n\r\n");
            let mut first = r.read_response();
            while first.status < 200 {
                first = r.read_response();
            }
            assert!(matches!(first.status, 200 | 204), "{name}: {first:?}");
            r.send(b"GET /second HTTP/1.1\r\nHost: gw\r\n\r\n");
            let second = r.read_response();
            if (second.status, second.text().as_str()) != (200, "second") {
                failures.push(format!(
                    "[{name}] the second request got {} {:?}",
                    second.status,
                    second.text()
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// RFC 9112 §6.3 item 2: "Any 2xx (Successful) response to a CONNECT request implies
    /// that the connection will become a tunnel immediately after the empty line that
    /// concludes the header fields", and RFC 9110 §8.6 / RFC 9112 §6.1: such a response
    /// carries no Content-Length or Transfer-Encoding. A client (or a proxy in front) that
    /// sent CONNECT and reads a 2xx sends tunnel bytes next: were the gateway to answer a
    /// CONNECT with a framed 2xx and go on reading HTTP, those bytes would be forwarded
    /// upstream as requests nobody in front of the gateway saw (the engine already refuses
    /// this for a handler's own 2xx to CONNECT: `conformance_review.rs`).
    #[test]
    fn a_connect_through_the_gateway_never_turns_tunnel_bytes_into_requests() {
        for target in ["up.example:443", "/x"] {
            let up = Upstream::start(vec![Reply::Raw(ok("tunnel?"))]);
            let gw = gateway(ReverseProxy::builder().route("/", [up.url("")]));
            let mut r = Reader::new(connect(gw.addr));
            r.send(
                format!(
                    "CONNECT {target} HTTP/1.1\r\nHost: up.example:443\r\n\r\n\
                     GET /inside-the-tunnel HTTP/1.1\r\nHost: gw\r\n\r\n"
                )
                .as_bytes(),
            );
            let resp = r.read_response_to("HEAD").expect("an answer to CONNECT");
            if !(200..300).contains(&resp.status) {
                // No tunnel (RFC 9110 §9.3.6): what follows is the next request.
                continue;
            }
            let framed = resp.header("content-length").is_some()
                || resp.header("transfer-encoding").is_some();
            let closed = r.is_closed();
            let seen: Vec<String> = up.requests().iter().map(|s| s.line().to_string()).collect();
            assert!(
                !framed && !seen.iter().any(|l| l.contains("inside-the-tunnel")),
                "CONNECT {target} answered {resp:?} (closed after: {closed}); the upstream saw \
                 {seen:?}; the client saw after the answer {:?}",
                String::from_utf8_lossy(r.leftover()),
            );
        }
    }

    /// Servers behind a proxy often read `_` in a field name as `-` (CGI and its heirs map
    /// both to `HTTP_CONTENT_LENGTH`; some Python and Ruby servers fold them): a request
    /// that reaches such an upstream with `Transfer_Encoding: chunked` beside the
    /// gateway's own `Content-Length` is framed two ways there — the desync the gateway
    /// exists to prevent. nginx drops field names with underscores by default
    /// (`underscores_in_headers off`). Names that fold onto the fields the gateway owns
    /// (framing, hop-by-hop, Host, Expect, X-Forwarded-*, Via) must not go upstream.
    #[test]
    fn fields_that_fold_onto_framing_or_forwarding_fields_never_reach_the_upstream() {
        let up = Upstream::start(vec![]);
        let gw = gateway(ReverseProxy::builder().route("/", [up.url("")]));
        let resp = roundtrip(
            gw.addr,
            b"POST /u HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\
              Transfer_Encoding: chunked\r\nContent_Length: 0\r\nCONTENT_length: 0\r\n\
              Keep_Alive: 1\r\nProxy_Connection: keep-alive\r\nHost_: evil\r\n\
              X_Forwarded_For: 10.0.0.1\r\nX_Forwarded_Host: evil\r\nX_Forwarded_Proto: https\r\n\
              X_Custom_Ok: kept\r\n\r\nhello",
        );
        assert_eq!(resp.status, 200);
        let seen = &up.requests()[0];
        let names: Vec<String> = seen
            .head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, _)| n.to_string())
            .collect();
        let folded = |n: &str| n.to_ascii_lowercase().replace('_', "-");
        let owned = [
            "transfer-encoding",
            "content-length",
            "keep-alive",
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "proxy-connection",
        ];
        let smuggled: Vec<&String> = names
            .iter()
            .filter(|n| n.contains('_') && owned.contains(&folded(n).as_str()))
            .collect();
        assert!(
            smuggled.is_empty(),
            "forwarded upstream: {smuggled:?}\n{}",
            seen.head
        );
        assert_eq!(seen.header("x_custom_ok").as_deref(), Some("kept"));
        assert_eq!(seen.body, b"hello");
    }

    /// The same fold on the way back: an upstream's `Transfer_Encoding: chunked` (or
    /// `Content_Length`) relayed beside the gateway's own `Content-Length` would frame the
    /// answer two ways for a client or cache in front that folds `_` onto `-`.
    #[test]
    fn an_upstreams_fields_that_fold_onto_framing_fields_never_reach_the_client() {
        let up = Upstream::start(vec![Reply::Raw(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer_Encoding: chunked\r\n\
             Content_Length: 0\r\nKeep_Alive: timeout=1\r\nX_Custom_Ok: kept\r\n\r\nhello"
                .into(),
        )]);
        let gw = gateway(ReverseProxy::builder().route("/", [up.url("")]));
        let resp = roundtrip(gw.addr, b"GET /u HTTP/1.1\r\nHost: gw\r\n\r\n");
        assert_eq!((resp.status, resp.text().as_str()), (200, "hello"));
        let folded: Vec<&(String, String)> = resp
            .headers
            .iter()
            .filter(|(n, _)| {
                let f = n.to_ascii_lowercase().replace('_', "-");
                n.contains('_')
                    && ["transfer-encoding", "content-length", "keep-alive"].contains(&f.as_str())
            })
            .collect();
        assert!(folded.is_empty(), "relayed to the client: {folded:?}");
        assert_eq!(resp.header("x_custom_ok"), Some("kept"));
    }

    /// The answer to what went upstream is framed by the method that went upstream: a
    /// director may change it (`OutgoingRequest::method` is the director's to set), and
    /// an answer to HEAD has no body whatever its Content-Length says (RFC 9112 §6.3
    /// item 1). Read as an answer to the client's GET, it would be waited on for a body
    /// that never comes, the client's answer cut off.
    #[test]
    fn an_answer_is_framed_by_the_method_the_director_sent_upstream() {
        let up = Upstream::start(vec![Reply::Raw(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".into(),
        )]);
        let gw = gateway(
            ReverseProxy::builder()
                .route("/", [up.url("")])
                .read_timeout(Duration::from_millis(500))
                .director(|out| {
                    if out.target == "/h" {
                        out.method = "HEAD".into();
                    }
                }),
        );
        let mut r = Reader::new(connect(gw.addr));
        r.send(b"GET /h HTTP/1.1\r\nHost: gw\r\n\r\nGET /next HTTP/1.1\r\nHost: gw\r\n\r\n");
        let first = r.read_response();
        assert_eq!((first.status, first.body.len()), (200, 0), "{first:?}");
        let next = r.read_response();
        assert_eq!((next.status, next.text().as_str()), (200, "ok"), "{next:?}");
        assert_eq!(up.requests()[0].line(), "HEAD /h HTTP/1.1");

        // The other way round: the client's HEAD goes upstream as GET, whose body is read
        // (not relayed) to its end, so the connection stays in step.
        let up = Upstream::start(vec![Reply::Raw(ok("hello"))]);
        let gw = gateway(
            ReverseProxy::builder()
                .route("/", [up.url("")])
                .director(|out| out.method = "GET".into()),
        );
        let mut r = Reader::new(connect(gw.addr));
        r.send(b"HEAD /g HTTP/1.1\r\nHost: gw\r\n\r\nGET /next HTTP/1.1\r\nHost: gw\r\n\r\n");
        let first = r.read_response_to("HEAD").expect("an answer to HEAD");
        assert_eq!(
            (first.status, first.header("content-length")),
            (200, Some("5"))
        );
        let next = r.read_response();
        assert_eq!((next.status, next.text().as_str()), (200, "ok"), "{next:?}");
        let seen = up.requests();
        assert_eq!(seen[0].line(), "GET /g HTTP/1.1");
        assert_eq!(
            seen[0].conn, seen[1].conn,
            "the connection was not kept in step"
        );
    }
}
