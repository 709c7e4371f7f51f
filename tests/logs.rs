//! The demo binary's log formats, read from its real stderr while curl talks to it:
//! `H1_LOG_FORMAT=json` (one JSON object per line), the text default, and a bad value.
#![cfg(feature = "cli")]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::{Map, Value};
use support::*;

/// The demo with its stderr lines arriving on a channel.
struct Demo {
    child: ChildGuard,
    addr: SocketAddr,
    log: Receiver<String>,
}

fn start_demo(env: &[(&str, &str)]) -> Demo {
    let port = free_port();
    let mut cmd = Command::new(built_binary("h1server", false));
    cmd.env("H1_ADDR", format!("127.0.0.1:{port}"))
        .env("DEMO_API_TOKEN", "logs-token")
        .env("DEMO_DB", ":memory:")
        .env_remove("H1_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = ChildGuard(cmd.spawn().expect("spawn the demo binary"));
    let rx = stderr_lines(&mut child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(
            addr
        )
        .is_ok()),
        "the demo did not start listening"
    );
    Demo {
        child,
        addr,
        log: rx,
    }
}

impl Demo {
    /// `GET /parcels/PX-9?token=secret` with curl and the given ids; returns the
    /// response head, lower-cased.
    fn request(&self, request_id: &str, correlation_id: &str) -> String {
        require_tool("curl");
        let out = Command::new("curl")
            .args(["-s", "-i", "--max-time", "10"])
            .args(["-H", &format!("X-Request-ID: {request_id}")])
            .args(["-H", &format!("X-Correlation-ID: {correlation_id}")])
            .arg(format!("http://{}/parcels/PX-9?token=secret", self.addr))
            .output()
            .expect("run curl");
        assert!(out.status.success(), "curl failed: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200"), "{text}");
        text
    }

    /// Lines until one satisfies `done` (included), failing after a generous wait.
    fn lines_until(&self, mut done: impl FnMut(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self
                .log
                .recv_timeout(IO_TIMEOUT)
                .unwrap_or_else(|_| panic!("the expected log line never came: {lines:#?}"));
            let found = done(&line);
            lines.push(line);
            if found {
                return lines;
            }
        }
    }

    /// SIGTERM, exit 0, and every line left up to stderr's end.
    fn stop(mut self) -> Vec<String> {
        let pid = self.child.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.0.wait().unwrap();
        assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
        let mut rest = Vec::new();
        while let Ok(line) = self.log.recv_timeout(IO_TIMEOUT) {
            rest.push(line);
        }
        rest
    }
}

/// `2025-01-31T12:00:00.123456Z`: RFC 3339, UTC.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && s.ends_with('Z')
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.' || c == b'Z',
            _ if i == b.len() - 1 => true,
            _ => c.is_ascii_digit(),
        })
}

/// Parses one stderr line as the JSON object it must be, with time, level, target, msg.
fn parse_json_line(line: &str) -> Map<String, Value> {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line) else {
        panic!("not one JSON object: {line:?}");
    };
    let time = obj["time"].as_str().unwrap_or_default();
    assert!(is_rfc3339_utc(time), "time is RFC 3339 UTC: {line}");
    assert!(
        ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&obj["level"].as_str().unwrap_or("")),
        "level: {line}"
    );
    assert!(obj["target"].is_string(), "target: {line}");
    assert!(obj["msg"].is_string(), "msg: {line}");
    obj
}

fn is_access_line_of(obj: &Map<String, Value>, request_id: &str) -> bool {
    obj["target"] == "h1server::access" && obj.get("request_id") == Some(&request_id.into())
}

#[test]
fn json_format_writes_every_line_as_an_object_and_the_access_line_with_its_fields() {
    let d = start_demo(&[("H1_LOG_FORMAT", "json"), ("RUST_LOG", "trace")]);
    let head = d.request("logs-req-1", "flow-logs-1");
    assert!(head.contains("x-request-id: logs-req-1"), "{head}");
    assert!(head.contains("x-correlation-id: flow-logs-1"), "{head}");

    let mut lines = d.lines_until(|l| {
        serde_json::from_str::<Map<String, Value>>(l)
            .is_ok_and(|obj| is_access_line_of(&obj, "logs-req-1"))
    });
    lines.extend(d.stop());
    let objs: Vec<_> = lines.iter().map(|l| parse_json_line(l)).collect();

    let access = objs
        .iter()
        .find(|o| is_access_line_of(o, "logs-req-1"))
        .unwrap();
    let line = Value::Object(access.clone());
    assert_eq!(access["level"], "INFO", "{line}");
    assert_eq!(access["msg"], "request", "{line}");
    assert_eq!(access["method"], "GET", "{line}");
    assert_eq!(access["path"], "/parcels/PX-9", "no query string: {line}");
    assert_eq!(access["status"], 200, "{line}");
    assert_eq!(
        access["bytes"],
        "parcel lookup accepted for PX-9\n".len(),
        "{line}"
    );
    assert!(
        access["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{line}"
    );
    assert_eq!(access["correlation_id"], "flow-logs-1", "{line}");
    assert_eq!(access["idempotency_key"], Value::Null, "{line}");
    assert_eq!(access["panicked"], false, "{line}");
    let remote: SocketAddr = access["remote"].as_str().unwrap().parse().unwrap();
    assert_eq!(remote.ip().to_string(), "127.0.0.1", "{line}");
    let conn = access["conn"].as_u64().expect("conn is a number");

    // The engine's lines about that connection carry it as a field, not in msg.
    let accepted = objs
        .iter()
        .find(|o| {
            o["target"] == "h1server::event_loop"
                && o["msg"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("accepted from {remote}"))
        })
        .unwrap_or_else(|| panic!("no accept line for {remote}: {lines:#?}"));
    assert_eq!(accepted["level"], "TRACE");
    assert_eq!(accepted["conn"], conn);
    assert!(
        objs.iter()
            .all(|o| !o["msg"].as_str().unwrap().starts_with("conn=")),
        "conn=N is read out of every message: {lines:#?}"
    );
    // Lifecycle lines without a connection have no conn field.
    let listening = objs
        .iter()
        .find(|o| o["msg"].as_str().unwrap().starts_with("listening on "))
        .expect("a listening line");
    assert!(!listening.contains_key("conn"), "{listening:?}");
    assert!(
        objs.iter().any(|o| o["msg"] == "stopped (Drained)"),
        "{lines:#?}"
    );
}

#[test]
fn text_format_is_the_default_and_its_lines_are_unchanged() {
    for format in [None, Some("text")] {
        let mut env = vec![("RUST_LOG", "h1server=trace")];
        env.extend(format.map(|f| ("H1_LOG_FORMAT", f)));
        let d = start_demo(&env);
        d.request("logs-req-2", "flow-logs-2");
        let mut lines = d.lines_until(|l| l.contains("request_id=logs-req-2"));
        lines.extend(d.stop());

        // `[2025-01-31T12:00:00Z INFO  h1server::access] method=GET …`
        let access = lines
            .iter()
            .find(|l| l.contains("h1server::access"))
            .unwrap();
        let (prefix, rest) = access.split_once("] ").unwrap();
        let time = prefix.strip_prefix('[').unwrap().split(' ').next().unwrap();
        assert!(is_rfc3339_utc(time), "{access}");
        assert!(prefix.ends_with(" INFO  h1server::access"), "{access}");
        let fields: Vec<&str> = rest.split(' ').collect();
        let keys: Vec<&str> = fields
            .iter()
            .map(|f| f.split('=').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "method",
                "path",
                "status",
                "bytes",
                "duration_ms",
                "request_id",
                "correlation_id",
                "idempotency_key",
                "peer"
            ],
            "{access}"
        );
        assert_eq!(
            fields[..4],
            ["method=GET", "path=/parcels/PX-9", "status=200", "bytes=32"],
            "{access}"
        );
        assert_eq!(
            fields[5..8],
            [
                "request_id=logs-req-2",
                "correlation_id=flow-logs-2",
                "idempotency_key=-"
            ],
            "{access}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("h1server::event_loop] conn=")
                    && l.contains("accepted from 127.0.0.1:")),
            "{lines:#?}"
        );
        assert!(
            lines.iter().all(|l| l.starts_with('[')),
            "every line is text ({format:?}): {lines:#?}"
        );
    }
}

#[test]
fn a_bad_log_format_exits_2_naming_the_variable_and_help_mentions_it() {
    let bin = built_binary("h1server", false);
    let out = Command::new(&bin)
        .env("H1_LOG_FORMAT", "yaml")
        .env("H1_ADDR", format!("127.0.0.1:{}", free_port()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("H1_LOG_FORMAT") && err.contains("\"yaml\"") && err.contains("json"),
        "{err}"
    );

    let help = Command::new(&bin)
        .env("H1_LOG_FORMAT", "yaml")
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        help.status.success(),
        "--help works whatever the variable says"
    );
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("H1_LOG_FORMAT") && l.contains("json")),
        "{text}"
    );
}

#[test]
fn examples_hello_ignores_the_demo_log_format() {
    let (mut hello, addr) = spawn_hello(&[("H1_LOG_FORMAT", "json"), ("RUST_LOG", "info")]);
    assert_eq!(
        roundtrip(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status,
        200
    );
    let mut first = String::new();
    BufReader::new(hello.0.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with('[') && first.contains("listening on"),
        "hello keeps env_logger's text line: {first:?}"
    );
}
