//! Review of the head reader's per-line judging and its whole-read shortcut
//! (`conn::HeadRead::worth_parsing`): the answers a connection gets must not depend on how
//! its bytes were split into writes — pipelined heads with the last one unfinished, heads
//! behind a body (whose bytes may look like a head's end), `HTTP/1.2` heads (parsed from a
//! copy), bare-LF heads and heads after empty lines, at and over `max_headers`.
//!
//! Each request is sent whole, a line at a time, a byte at a time and in a few fixed
//! uneven pieces, each on its own connection; the statuses read until the server closes
//! (a short idle deadline closes a kept-alive connection, a short header deadline answers
//! an unfinished head 408) must be the same for every split, and the expected ones.

mod support;
use support::*;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use h1server::{Config, Request, Response};

const MAX_HEADERS: usize = 8;

fn config() -> Config {
    let mut c = test_config();
    c.max_headers = MAX_HEADERS;
    c.max_head_bytes = 2048;
    c.max_uri_bytes = 1024;
    c.header_read_timeout = Duration::from_millis(1000);
    c.idle_timeout = Duration::from_millis(500);
    c
}

fn app(req: &mut Request) -> Response {
    Response::text(format!("{} {}", req.path(), req.body().len()))
}

/// The status of every answer on the connection, in order, until the server closes it.
fn statuses(addr: SocketAddr, pieces: &[&[u8]], pause: Duration) -> Vec<u16> {
    let mut s = connect(addr);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for p in pieces {
        // The server may answer and close before the last piece: that is not an error.
        if s.write_all(p).is_err() {
            break;
        }
        std::thread::sleep(pause);
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    // The bodies here never hold "HTTP/1.1 " (they are a path and a length, or an error
    // text), so every occurrence starts an answer.
    got.windows(12)
        .filter(|w| w.starts_with(b"HTTP/1.1 ") || w.starts_with(b"HTTP/1.0 "))
        .map(|w| std::str::from_utf8(&w[9..12]).unwrap().parse().unwrap())
        .collect()
}

type Split = fn(&[u8]) -> Vec<&[u8]>;

const SPLITS: &[(&str, Split, u64)] = &[
    ("whole", |b| vec![b], 0),
    (
        "a line at a time",
        |b| b.split_inclusive(|&c| c == b'\n').collect(),
        3,
    ),
    ("a byte at a time", |b| b.chunks(1).collect(), 0),
    ("7 bytes at a time", |b| b.chunks(7).collect(), 1),
    (
        "in two, mid-line",
        |b| {
            let at = b.len() * 2 / 3;
            vec![&b[..at], &b[at..]]
        },
        20,
    ),
];

/// Runs every case under every split, all at once (each on its own connection), and
/// names every disagreement.
fn check(cases: &[(&str, Vec<u8>, &[u16])]) {
    let srv = TestServer::with_config(config(), app);
    let addr = srv.addr;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .flat_map(|(name, bytes, want)| {
                SPLITS.iter().map(move |&(how, split, pause_ms)| {
                    let pause = if pause_ms == 0 && how != "whole" {
                        Duration::from_micros(300)
                    } else {
                        Duration::from_millis(pause_ms)
                    };
                    let run = scope.spawn(move || statuses(addr, &split(bytes), pause));
                    (name, how, want, run)
                })
            })
            .collect();
        runs.into_iter()
            .filter_map(|(name, how, want, run)| {
                let got = run.join().unwrap();
                (got != *want).then(|| format!("[{name}, {how}] got {got:?}, want {want:?}"))
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `n` field lines, the first of them Host (an HTTP/1.1 request without one is 400).
fn fields(n: usize, eol: &str) -> String {
    (0..n)
        .map(|i| match i {
            0 => format!("Host: a{eol}"),
            _ => format!("X-F{i}: v{i}{eol}"),
        })
        .collect()
}

#[test]
fn pipelined_heads_and_heads_after_a_body_get_the_same_answers_however_split() {
    let get = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "a bad field line in the second head, unfinished",
            format!("{get}GET /b HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n").into(),
            &[200, 400],
        ),
        (
            "one field too many in the third head, unfinished",
            format!("{get}{get}GET /c HTTP/1.1\r\n{}", fields(MAX_HEADERS + 1, "\r\n")).into(),
            &[200, 200, 431],
        ),
        (
            "the second head unfinished and good",
            format!("{get}GET /b HTTP/1.1\r\n{}", fields(MAX_HEADERS, "\r\n")).into(),
            &[200, 408],
        ),
        (
            "the second head at the field limit, finished",
            format!("{get}GET /b HTTP/1.1\r\n{}\r\n", fields(MAX_HEADERS, "\r\n")).into(),
            &[200, 200],
        ),
        (
            "a body that looks like head ends, then one field too many",
            format!(
                "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n\n\n\r\n\nGET /b HTTP/1.1\r\n{}",
                fields(MAX_HEADERS + 1, "\r\n")
            )
            .into(),
            &[200, 431],
        ),
        (
            "a body holding a whole head, then a good head",
            format!("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{get}{get}", get.len()).into(),
            &[200, 200],
        ),
        (
            "a chunked body, then obs-fold",
            b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
              GET /b HTTP/1.1\r\nX-A: a\r\n folded\r\n"
                .to_vec(),
            &[200, 400],
        ),
        (
            "empty lines between heads, then whitespace before a colon",
            format!("{get}\r\n\n\r\nGET /b HTTP/1.1\r\nX-A : v\r\n").into(),
            &[200, 400],
        ),
    ];
    check(&cases);
}

#[test]
fn http_1_2_bare_lf_and_empty_line_heads_get_the_same_answers_however_split() {
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "HTTP/1.2 at the field limit",
            format!("GET / HTTP/1.2\r\n{}\r\n", fields(MAX_HEADERS, "\r\n")).into(),
            &[200],
        ),
        (
            "HTTP/1.2, one field too many, unfinished",
            format!("GET / HTTP/1.2\r\n{}", fields(MAX_HEADERS + 1, "\r\n")).into(),
            &[431],
        ),
        (
            "HTTP/1.2, a control byte in a value, unfinished",
            "GET / HTTP/1.2\r\nHost: a\r\nX-A: a\x01b\r\nX-B: b\r\n".into(),
            &[400],
        ),
        (
            "HTTP/1.9 after a served request, a bad line",
            "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.9\r\nHost: a\r\n(X): v\r\n".into(),
            &[200, 400],
        ),
        (
            "bare LFs at the field limit",
            format!("GET / HTTP/1.1\n{}\n", fields(MAX_HEADERS, "\n")).into(),
            &[200],
        ),
        (
            "bare LFs, one field too many, unfinished",
            format!("GET / HTTP/1.1\n{}", fields(MAX_HEADERS + 1, "\n")).into(),
            &[431],
        ),
        (
            "empty lines first, at the field limit",
            format!(
                "\r\n\n\r\nGET / HTTP/1.1\r\n{}\r\n",
                fields(MAX_HEADERS, "\r\n")
            )
            .into(),
            &[200],
        ),
        (
            "empty lines first, one field too many, unfinished",
            format!(
                "\r\n\r\nGET / HTTP/1.1\r\n{}",
                fields(MAX_HEADERS + 1, "\r\n")
            )
            .into(),
            &[431],
        ),
        (
            "empty lines first, a control byte in a name",
            "\n\nGET / HTTP/1.1\nHost: a\nX\x01: v\n".into(),
            &[400],
        ),
        (
            "a bare CR starting a field line",
            "GET / HTTP/1.1\r\nA: 1\r\n\rB: 2\r\n".into(),
            &[400],
        ),
        (
            "tabs, empty values and obs-text at the field limit",
            format!(
                "GET / HTTP/1.1\r\nA:\r\nB:\t\tb\t\r\nC: caf\u{e9}\r\n{}\r\n",
                fields(MAX_HEADERS - 3, "\n")
            )
            .into(),
            &[200],
        ),
    ];
    check(&cases);
}

/// A line that turns bad but has not ended gets its verdict at once however the bytes
/// were split. It was refused at once only when it came in the read that ended the
/// request line (`parse_head` runs on that read and httparse stops at the bad byte), and
/// waited for the header deadline (408), or ended silently at the client's FIN, when it
/// came in a later read. The head reader now looks at such a line's bytes one by one as
/// they arrive (`conn::HeadRead::lex`). The valid lines beside them (a tab, obs-text, a
/// name still followed by whitespace) must not be refused early.
#[test]
fn an_unfinished_bad_line_gets_its_verdict_however_it_was_split() {
    let long = "a".repeat(60);
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "a space in a name, no LF yet",
            "GET / HTTP/1.1\r\nHost: a\r\nBad Name: v".into(),
            &[400],
        ),
        (
            "whitespace before a colon, no LF yet",
            "GET / HTTP/1.1\r\nHost: a\r\nBad \t: v".into(),
            &[400],
        ),
        (
            "a control byte in a value, no LF yet",
            "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x01b".into(),
            &[400],
        ),
        (
            "DEL in a value, no LF yet",
            "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7fb".into(),
            &[400],
        ),
        (
            "obs-fold, no LF yet",
            "GET / HTTP/1.1\r\nHost: a\r\n folded".into(),
            &[400],
        ),
        (
            "a CR not followed by LF in a value",
            "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb".into(),
            &[400],
        ),
        (
            "a CR not followed by LF at a line's start",
            "GET / HTTP/1.1\r\nHost: a\r\n\rX".into(),
            &[400],
        ),
        (
            "a control byte in a long target, no LF yet",
            format!("GET /{long}\x01{long}").into(),
            &[400],
        ),
        (
            "a CR not followed by LF after the version",
            format!("GET /{long} HTTP/1.1\rX").into(),
            &[400],
        ),
        (
            "after a served request: a control byte in a value",
            "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nX-A: \x02".into(),
            &[200, 400],
        ),
        // Not refused early: a name followed by whitespace may still become a 400 or
        // not, and tabs and obs-text are valid in a value; each waits for its end and
        // is served when it comes.
        (
            "valid bytes that look odd, then the end",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-A:\tb\t\xe9\xff c \r\n\r\n".to_vec(),
            &[200],
        ),
    ];
    check(&cases);
}

/// Bytes that only look wrong while a line is unfinished are not refused early: a name
/// followed by whitespace (a colon after it would be `400`, and so is anything else, but
/// until then `parse_head` waits), and a head that ends there.
#[test]
fn a_name_followed_by_whitespace_waits_for_the_next_byte() {
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![(
        "a name, then spaces, then the colon",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A  : v\r\n\r\n".into(),
        &[400],
    )];
    check(&cases);
}

/// The request line's shape past its first 34 bytes (where the early parse of the line's
/// start stops): a bad version after a long target, with no LF yet, gets the verdict it
/// gets in one read however the line was split — not `408` at the header deadline when
/// the version came in later reads. A version that is good, or an `HTTP/1.x` the server
/// reads as HTTP/1.1, waits for its end as before.
#[test]
fn an_unfinished_request_line_with_a_bad_version_gets_its_verdict_however_it_was_split() {
    let long = "a".repeat(60);
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "another major version, then a CR",
            format!("GET /{long} HTTP/2.0\r").into(),
            &[505],
        ),
        (
            "another major version, then a byte that makes it no version",
            format!("GET /{long} HTTP/2.0x").into(),
            &[400],
        ),
        (
            "a wrong name",
            format!("GET /{long} HTTX/1.1").into(),
            &[400],
        ),
        (
            "a byte after the version",
            format!("GET /{long} HTTP/1.1x").into(),
            &[400],
        ),
        (
            "a space after the version",
            format!("GET /{long} HTTP/1.1 ").into(),
            &[400],
        ),
        (
            "two digits of minor version",
            format!("GET /{long} HTTP/1.10").into(),
            &[400],
        ),
        (
            "two spaces before the version",
            format!("GET /{long}  HTTP/1.1").into(),
            &[400],
        ),
        (
            "a lowercase name",
            format!("GET /{long} http/1.1").into(),
            &[400],
        ),
        // Not refused: waits for its end (a good line, and HTTP/1.2, read as HTTP/1.1),
        // or for the byte after the version (`HTTP/2.0` is 505 if a CR or LF comes next,
        // 400 if anything else does).
        (
            "another major version, nothing after it",
            format!("GET /{long} HTTP/2.0").into(),
            &[408],
        ),
        (
            "a good line, unfinished",
            format!("GET /{long} HTTP/1.1").into(),
            &[408],
        ),
        (
            "HTTP/1.2, unfinished",
            format!("GET /{long} HTTP/1.2").into(),
            &[408],
        ),
        (
            "HTTP/1.2, then the end",
            format!("GET /{long} HTTP/1.2\r\nHost: a\r\n\r\n").into(),
            &[200],
        ),
        (
            "a long good line, then the end",
            format!("GET /{long} HTTP/1.1\r\nHost: a\r\n\r\n").into(),
            &[200],
        ),
    ];
    check(&cases);
}

/// From the attack review of the version look: eight bytes of another major version
/// followed by a byte that makes them no version (`HTTP/2.0x`, `HTTP/2.00`, `HTTP/2.0 `,
/// `HTTP/3.1/`, `HTTP/0.9x`) are `400` in one write; they were `505` when a read ended
/// right after the eighth (`parse::version_error` answered on the unfinished token), which
/// the version look made every byte-at-a-time client's case.
#[test]
fn a_version_of_another_major_followed_by_a_byte_gets_one_verdict_however_split() {
    let long = "a".repeat(60);
    let get = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "HTTP/2.0x, then the end",
            format!("GET /{long} HTTP/2.0x\r\nHost: a\r\n\r\n").into(),
            &[400],
        ),
        (
            "HTTP/2.00, then the end",
            format!("GET /{long} HTTP/2.00\r\nHost: a\r\n\r\n").into(),
            &[400],
        ),
        (
            "HTTP/2.0 and a space, then the end",
            format!("GET /{long} HTTP/2.0 \r\nHost: a\r\n\r\n").into(),
            &[400],
        ),
        (
            "a short line: HTTP/2.0x, then the end",
            "GET / HTTP/2.0x\r\nHost: a\r\n\r\n".into(),
            &[400],
        ),
        (
            "HTTP/2.0, then the end",
            format!("GET /{long} HTTP/2.0\r\nHost: a\r\n\r\n").into(),
            &[505],
        ),
        (
            "HTTP/3.1/ in the second head",
            format!("{get}GET /{long} HTTP/3.1/\r\nHost: a\r\n\r\n").into(),
            &[200, 400],
        ),
        (
            "HTTP/0.9x behind a body",
            format!(
                "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
                 GET /{long} HTTP/0.9x\r\nHost: a\r\n\r\n"
            )
            .into(),
            &[200, 400],
        ),
    ];
    check(&cases);
}
