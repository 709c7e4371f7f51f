//! Byte-script tests of the client core: every response is fed at every split point
//! (one byte at a time up to all at once), then EOF.

use super::*;

/// What a run saw, flattened for comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    events: Vec<String>,
    body: Vec<u8>,
    /// Bytes the core did not consume when it stopped.
    leftover: usize,
}

fn limits() -> Limits {
    Limits {
        max_head_bytes: 1024,
        max_headers: 16,
        max_body_bytes: 64,
    }
}

fn started(method: &str, headers: &[(&str, &[u8])]) -> ClientConn {
    let mut c = ClientConn::new(limits());
    let mut out = Vec::new();
    c.write_request(method, "/", "h", headers, BodyFraming::None, &mut out)
        .unwrap();
    assert!(out.starts_with(format!("{method} / HTTP/1.1\r\nHost: h\r\n").as_bytes()));
    c
}

/// Feeds `wire` `step` bytes at a time (then EOF) until the response ends, it upgrades,
/// or the core fails. The buffer never exceeds what the core was shown plus one step.
fn drive(c: &mut ClientConn, wire: &[u8], step: usize) -> Result<Seen, ClientError> {
    let mut buf = Vec::new();
    let mut pos = 0;
    let mut eof = false;
    let mut seen = Seen {
        events: Vec::new(),
        body: Vec::new(),
        leftover: 0,
    };
    let mut spins = 0;
    loop {
        spins += 1;
        assert!(spins < 100_000, "no progress");
        let (used, ev) = c.poll(&buf, eof, &mut seen.body)?;
        buf.drain(..used);
        match ev {
            Event::NeedMore => {
                if pos < wire.len() {
                    let n = step.min(wire.len() - pos);
                    buf.extend_from_slice(&wire[pos..pos + n]);
                    pos += n;
                } else {
                    assert!(!eof, "NeedMore after EOF");
                    eof = true;
                }
            }
            Event::Informational(h) => seen.events.push(format!("info {}", h.status)),
            Event::Head(h) => {
                seen.events.push(format!("head {} {:?}", h.status, h.body));
                if c.is_upgraded() {
                    break;
                }
            }
            Event::Data(n) => assert!(n > 0 && n <= seen.body.len()),
            Event::End { reusable } => {
                seen.events.push(format!("end {reusable}"));
                break;
            }
        }
    }
    seen.leftover = buf.len() + wire.len() - pos;
    Ok(seen)
}

/// Runs one response at every split point and checks they all agree; returns the result
/// of the last (all at once).
fn each_split(method: &str, headers: &[(&str, &[u8])], wire: &[u8]) -> Result<Seen, ClientError> {
    let mut reference: Option<Result<Seen, String>> = None;
    let mut last = None;
    for step in 1..=wire.len().max(1) {
        let mut c = started(method, headers);
        let got = drive(&mut c, wire, step);
        if got.is_err() {
            assert!(!c.is_idle(), "an error leaves the connection unusable");
        }
        let cmp = got.as_ref().map(Clone::clone).map_err(|e| e.to_string());
        match &reference {
            None => reference = Some(cmp),
            Some(r) => assert_eq!(&cmp, r, "step {step} of {wire:?}"),
        }
        last = Some(got);
    }
    last.expect("at least one step")
}

fn ok(method: &str, wire: &str) -> (Vec<String>, String, usize) {
    let s = each_split(method, &[], wire.as_bytes()).unwrap_or_else(|e| panic!("{wire:?}: {e}"));
    (s.events, String::from_utf8(s.body).unwrap(), s.leftover)
}

#[test]
fn framings_and_persistence() {
    // (method, response, events, body, leftover)
    let table: &[(&str, &str, &[&str], &str, usize)] = &[
        (
            "GET",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            &["head 200 Length(5)", "end true"],
            "hello",
            0,
        ),
        // RFC 9110 §2.5: a higher HTTP/1 minor version is processed as HTTP/1.1 (so it
        // persists, and may be chunked).
        (
            "GET",
            "HTTP/1.2 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            &["head 200 Length(5)", "end true"],
            "hello",
            0,
        ),
        (
            "GET",
            "\r\nHTTP/1.9 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            &["head 200 Chunked", "end true"],
            "hi",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n",
            &["head 200 Chunked", "end true"],
            "hello world",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
            &["head 200 Chunked", "end true"],
            "",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 200 OK\r\n\r\nuntil the end",
            &["head 200 CloseDelimited", "end false"],
            "until the end",
            0,
        ),
        (
            "GET",
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            &["head 200 Length(2)", "end false"],
            "hi",
            0,
        ),
        (
            "GET",
            "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi",
            &["head 200 Length(2)", "end true"],
            "hi",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nhi",
            &["head 200 Length(2)", "end false"],
            "hi",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
            &["head 200 Length(3)", "end true"],
            "abc",
            0,
        ),
        (
            "HEAD",
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n",
            &["head 200 None", "end true"],
            "",
            0,
        ),
        // A 204 or a 1xx that frames a body (RFC 9110 §8.6, RFC 9112 §6.1 forbid it) has
        // none (§6.3 item 1), but its sender means to send one: the connection is out of
        // step and not reused (`frames_a_body`). `Content-Length: 0` frames nothing.
        (
            "GET",
            "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
            &["head 204 None", "end false"],
            "",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
            &["head 204 None", "end false"],
            "",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
            &["head 204 None", "end true"],
            "",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 103 Early Hints\r\nContent-Length: 3\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
            &["info 103", "head 200 Length(1)", "end false"],
            "x",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
            &["head 304 None", "end true"],
            "",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
            &["head 200 Length(1)", "end true"],
            "x",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
            &["info 103", "head 200 Length(1)", "end true"],
            "x",
            0,
        ),
        (
            "GET",
            "\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            &["head 200 Length(0)", "end true"],
            "",
            0,
        ),
        (
            "GET",
            "HTTP/1.1 299 Whatever\r\nContent-Length: 0\r\n\r\n",
            &["head 299 Length(0)", "end true"],
            "",
            0,
        ),
        (
            "CONNECT",
            "HTTP/1.1 200 Connection Established\r\n\r\ntunnel bytes",
            &["head 200 None"],
            "",
            12,
        ),
    ];
    for (method, wire, events, body, leftover) in table {
        let (ev, b, left) = ok(method, wire);
        assert_eq!(ev, *events, "{wire:?}");
        assert_eq!(b, *body, "{wire:?}");
        assert_eq!(left, *leftover, "{wire:?}");
    }
}

#[test]
fn expected_interim_responses_are_surfaced() {
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    let s = each_split("POST", &[("Expect", b"100-continue")], wire).unwrap();
    assert_eq!(s.events, ["info 100", "head 201 Length(0)", "end true"]);

    let up: &[(&str, &[u8])] = &[("Connection", b"Upgrade"), ("Upgrade", b"websocket")];
    let wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi";
    let s = each_split("GET", up, wire).unwrap();
    assert_eq!(s.events, ["head 101 None"]);
    // The frame after the head is left for the new protocol, at every split point.
    assert!(s.leftover == 4, "{}", s.leftover);
}

#[test]
fn requests_close_connections() {
    let s = each_split(
        "GET",
        &[("Connection", b"close")],
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(s.events, ["head 200 Length(0)", "end false"]);
}

#[test]
fn bad_responses_are_errors() {
    let long_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(1100));
    let many = format!(
        "HTTP/1.1 200 OK\r\n{}Content-Length: 0\r\n\r\n",
        "X: 1\r\n".repeat(17)
    );
    let big_chunks = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n{}\r\n1\r\nx\r\n0\r\n\r\n",
        "a".repeat(64)
    );
    let big_close = format!("HTTP/1.1 200 OK\r\n\r\n{}", "a".repeat(65));
    // (response, Display of the error)
    let table: &[(&str, &str)] = &[
        ("", "the server closed the connection before answering"),
        (
            "HTTP/1.1 200 OK\r\n",
            "invalid response: the connection closed inside the response head",
        ),
        (
            "SSH-2.0-OpenSSH\r\n\r\n",
            "invalid response: not an HTTP/1.x response",
        ),
        (
            "HTTP/2 200\r\n\r\n",
            "invalid response: not an HTTP/1.x response",
        ),
        (
            "HTTP/1.1 20 OK\r\n\r\n",
            "invalid response: malformed status line",
        ),
        (
            "HTTP/1.1 099 Low\r\n\r\n",
            "invalid response: status code below 100",
        ),
        (
            "HTTP/1.1 200 OK\r\nX : 1\r\n\r\n",
            "invalid response: malformed response head",
        ),
        (
            "HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n",
            "invalid response: malformed response head",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "invalid response: both Transfer-Encoding and Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n",
            "invalid response: both Transfer-Encoding and Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "invalid response: a transfer coding other than chunked",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "invalid response: a transfer coding other than chunked",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            "invalid response: a transfer coding other than chunked",
        ),
        (
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "invalid response: Transfer-Encoding in an HTTP/1.0 response",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n",
            "invalid response: invalid Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "invalid response: invalid Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
            "invalid response: invalid Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "invalid response: invalid Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "invalid response: invalid Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "invalid response: invalid Content-Length",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n",
            "response body larger than 64 bytes",
        ),
        (&big_chunks, "response body larger than 64 bytes"),
        (&big_close, "response body larger than 64 bytes"),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
            "invalid response: the connection closed before the end of the body",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            "invalid response: the connection closed before the last chunk",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
            "invalid response: invalid chunked body",
        ),
        (
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "invalid response: invalid chunked body",
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
            "invalid response: 101 Switching Protocols to a request that asked for no upgrade",
        ),
        (
            "HTTP/1.1 100 Continue\r\n\r\n",
            "invalid response: the connection closed inside the response head",
        ),
        (&long_head, "response head larger than 1024 bytes"),
        (
            &many,
            "invalid response: more header fields than max_response_headers",
        ),
    ];
    for (wire, want) in table {
        match each_split("GET", &[], wire.as_bytes()) {
            Ok(s) => panic!("{wire:?} was accepted: {s:?}"),
            Err(e) => assert_eq!(e.to_string(), *want, "{wire:?}"),
        }
    }
}

#[test]
fn an_endless_head_is_refused_at_the_limit() {
    // One byte at a time: refused as soon as the buffer passes the limit, never later.
    let mut c = started("GET", &[]);
    let mut buf = b"HTTP/1.1 200 OK\r\n".to_vec();
    let mut body = Vec::new();
    loop {
        match c.poll(&buf, false, &mut body) {
            Ok((0, Event::NeedMore)) => buf.push(b'x'),
            Err(ClientError::HeadTooLarge { limit: 1024 }) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(buf.len(), 1025);
    assert!(matches!(
        c.poll(&buf, false, &mut body),
        Err(ClientError::Protocol(_))
    ));
}

#[test]
fn a_wrong_start_past_what_the_limit_leaves_is_the_limit_s_verdict_however_it_is_split() {
    // Interim heads use all but 2 bytes of the 1024-byte head limit; the final head starts
    // `HTTX`. A byte at a time, the limit is passed at `HTT`, before the wrong byte; in one
    // piece the wrong byte was seen first ("not an HTTP/1.x response"). Now each split
    // gets the limit's verdict: the start is judged on the bytes the limit lets in.
    let interim = |len: usize| {
        let fixed = "HTTP/1.1 100 Continue\r\nX: \r\n\r\n".len();
        format!(
            "HTTP/1.1 100 Continue\r\nX: {}\r\n\r\n",
            "a".repeat(len - fixed)
        )
    };
    let wire = format!("{}HTTX/1.1 200 OK\r\n\r\n", interim(1022));
    match each_split("GET", &[], wire.as_bytes()) {
        Err(ClientError::HeadTooLarge { limit: 1024 }) => {}
        other => panic!("{other:?}"),
    }
    // With one byte more room the wrong byte is inside the limit: refused as not HTTP.
    let wire = format!("{}HTTX/1.1 200 OK\r\n\r\n", interim(1021));
    match each_split("GET", &[], wire.as_bytes()) {
        Err(ClientError::Protocol("not an HTTP/1.x response")) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn keep_alive_carries_the_next_request_and_its_pipelined_bytes() {
    let mut c = started("GET", &[]);
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
    let mut body = Vec::new();
    let (n, ev) = c.poll(wire, false, &mut body).unwrap();
    assert!(
        matches!(ev, Event::Head(ref h) if h.status == 200 && h.header("content-length") == Some("1"))
    );
    let (m, ev) = c.poll(&wire[n..], false, &mut body).unwrap();
    assert_eq!(ev, Event::Data(1));
    let (z, ev) = c.poll(&wire[n + m..], false, &mut body).unwrap();
    assert_eq!((z, ev), (0, Event::End { reusable: true }));
    assert!(c.is_idle());
    // Bytes before the next request are unsolicited.
    let rest = &wire[n + m..];
    let mut probe = ClientConn::new(limits());
    assert!(matches!(
        probe.poll(rest, false, &mut body),
        Err(ClientError::Protocol(_))
    ));
    let mut out = Vec::new();
    c.write_request("GET", "/2", "h", &[], BodyFraming::None, &mut out)
        .unwrap();
    assert!(!c.is_idle());
    assert!(matches!(
        c.write_request("GET", "/3", "h", &[], BodyFraming::None, &mut out),
        Err(ClientError::InvalidRequest(_))
    ));
    body.clear();
    let (n2, ev) = c.poll(rest, false, &mut body).unwrap();
    assert!(matches!(ev, Event::Head(ref h) if h.status == 404 && h.reason == "Not Found"));
    let (_, ev) = c.poll(&rest[n2..], false, &mut body).unwrap();
    assert_eq!(ev, Event::Data(2));
    assert_eq!(body, b"no");
}

#[test]
fn an_invalid_request_leaves_the_connection_idle() {
    let mut c = ClientConn::new(limits());
    let mut out = Vec::new();
    let bad = c.write_request(
        "GET",
        "/",
        "h",
        &[("X", b"a\r\nb")],
        BodyFraming::None,
        &mut out,
    );
    assert!(matches!(bad, Err(ClientError::InvalidRequest(_))));
    assert!(out.is_empty() && c.is_idle());
}

#[test]
fn head_accessors() {
    let mut c = started("GET", &[]);
    let wire = b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Bin: \xff\r\nContent-Length: 0\r\n\r\n";
    let mut body = Vec::new();
    let (_, ev) = c.poll(wire, false, &mut body).unwrap();
    let Event::Head(h) = ev else { panic!() };
    assert_eq!(h.version, Version::Http11);
    assert_eq!(
        h.header_values("SET-COOKIE").collect::<Vec<_>>(),
        ["a=1", "b=2"]
    );
    assert_eq!(h.header("x-bin"), None);
    assert_eq!(h.header_bytes("x-bin"), Some(&b"\xff"[..]));
    assert_eq!(h.header("missing"), None);
}
