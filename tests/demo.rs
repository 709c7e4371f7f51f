//! End to end: the built demo binary (`make run`'s service) driven by real clients —
//! curl and Python's `http.client` — over real sockets, plus its configuration surface.
#![cfg(feature = "cli")]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;

const TOKEN: &str = "test-token-123";

struct Demo {
    child: ChildGuard,
    addr: SocketAddr,
    log: std::sync::mpsc::Receiver<String>,
}

fn start_demo(extra_env: &[(&str, &str)]) -> Demo {
    let port = free_port();
    let mut cmd = demo_command(port, TOKEN, "info", true);
    cmd.envs(extra_env.iter().copied());
    let (mut child, addr) = spawn_listening(&mut cmd, port);
    let log = stderr_lines(&mut child);
    Demo { child, addr, log }
}

fn curl(args: &[&str]) -> Output {
    require_tool("curl");
    Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl")
}

fn curl_text(args: &[&str]) -> String {
    let out = curl(args);
    assert!(out.status.success(), "curl {args:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn url(d: &Demo, path: &str) -> String {
    format!("http://{}{path}", d.addr)
}

/// `curl -i`: (status, lowercased head, body).
fn curl_full(args: &[&str]) -> (u16, String, String) {
    let text = curl_text(&[&["-i"], args].concat());
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn demo_routes_answer_curl() {
    let d = start_demo(&[]);
    let (s, _, body) = curl_full(&[&url(&d, "/")]);
    assert_eq!((s, body.as_str()), (200, "parcel service is reachable\n"));

    let (s, head, body) = curl_full(&[&url(&d, "/healthz")]);
    assert_eq!(s, 200);
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        body.contains("\"status\":\"alive\"") && body.contains("\"version\""),
        "{body}"
    );

    let (s, _, body) = curl_full(&[&url(&d, "/readyz")]);
    assert_eq!((s, body.trim()), (200, "{\"status\":\"ready\"}"));

    let (s, _, body) = curl_full(&[&url(&d, "/parcels/PX-42")]);
    assert_eq!(
        (s, body.as_str()),
        (200, "parcel lookup accepted for PX-42\n")
    );

    let (s, _, _) = curl_full(&[&url(&d, "/nowhere")]);
    assert_eq!(s, 404);
    let (s, head, _) = curl_full(&["-X", "DELETE", &url(&d, "/parcels/1")]);
    assert_eq!(s, 405);
    assert!(head.contains("allow: get, head"), "{head}");
}

#[test]
fn request_ids_are_echoed_or_generated() {
    let d = start_demo(&[]);
    let (_, head, _) = curl_full(&[
        "-H",
        "X-Request-ID: req-local-001",
        "-H",
        "X-Correlation-ID: checkout-flow-001",
        &url(&d, "/healthz"),
    ]);
    assert!(head.contains("x-request-id: req-local-001"), "{head}");
    let (_, h1, _) = curl_full(&[&url(&d, "/healthz")]);
    let (_, h2, _) = curl_full(&[&url(&d, "/healthz")]);
    let id = |h: &str| {
        h.lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .map(str::to_string)
            .expect("generated X-Request-ID")
    };
    assert_ne!(id(&h1), id(&h2), "ids must differ per request");
}

#[test]
fn users_api_needs_the_token_and_replays_idempotent_retries() {
    let d = start_demo(&[]);
    let users = url(&d, "/api/v1/users");
    let auth = format!("Authorization: Bearer {TOKEN}");

    let (s, head, _) = curl_full(&[&users]);
    assert_eq!(s, 401);
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    let (s, _, _) = curl_full(&["-H", "Authorization: Bearer wrong", &users]);
    assert_eq!(s, 401);

    let create = |key: &str, body: &str| {
        curl_full(&[
            "-X",
            "POST",
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "-H",
            &format!("Idempotency-Key: {key}"),
            "-d",
            body,
            &users,
        ])
    };
    let (s1, h1, b1) = create("k-1", r#"{"name":"Ada","email":"ada@example.com"}"#);
    assert_eq!(s1, 201, "{h1}{b1}");
    let (s2, h2, b2) = create("k-1", r#"{"name":"Ada","email":"ada@example.com"}"#);
    assert_eq!((s2, &b2), (201, &b1), "a retry replays the first answer");
    assert!(h2.contains("idempotent-replayed: true"), "{h2}");

    let list = curl_text(&["-H", &auth, &users]);
    assert!(list.contains("\"count\":1"), "created once: {list}");
    let (s, _, b) = curl_full(&["-H", &auth, &format!("{users}/1")]);
    assert_eq!(s, 200);
    assert!(b.contains("\"name\":\"Ada\""), "{b}");
    let (s, _, b) = curl_full(&[
        "-X",
        "PUT",
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"name":"Ada L.","email":"ada@example.com"}"#,
        &format!("{users}/1"),
    ]);
    assert_eq!(s, 200);
    assert!(b.contains("Ada L."), "{b}");

    let (s, _, _) = create("k-2", "{not json");
    assert_eq!(s, 400);
    let (s, _, b) = create("k-3", r#"{"name":"","email":"nope"}"#);
    assert_eq!(s, 422, "{b}");
    let (s, _, _) = curl_full(&["-X", "POST", "-H", &auth, "-d", "a=b", &users]);
    assert_eq!(s, 415, "form body to a JSON endpoint");
    let (s, _, _) = curl_full(&["-H", &auth, &format!("{users}/999")]);
    assert_eq!(s, 404);
}

#[test]
fn python_http_client_keeps_one_connection_for_several_requests() {
    require_tool("python3");
    let d = start_demo(&[]);
    let script = format!(
        r#"
import http.client, json
c = http.client.HTTPConnection("127.0.0.1", {port}, timeout=10)
c.request("GET", "/healthz"); r = c.getresponse(); b = r.read()
assert r.status == 200 and json.loads(b)["status"] == "alive", (r.status, b)
sock = c.sock
c.request("POST", "/api/v1/users", body=json.dumps({{"name": "Grace", "email": "grace@example.com"}}),
          headers={{"Authorization": "Bearer {TOKEN}", "Content-Type": "application/json"}})
r = c.getresponse(); b = r.read()
assert r.status == 201 and json.loads(b)["name"] == "Grace", (r.status, b)
assert c.sock is sock, "the connection was kept alive"
c.request("HEAD", "/parcels/7"); r = c.getresponse(); b = r.read()
assert r.status == 200 and b == b"" and r.getheader("Content-Length") == "29", (r.status, b, r.getheaders())
c.request("GET", "/parcels/7"); r = c.getresponse(); b = r.read()
assert b == b"parcel lookup accepted for 7\n", b
print("python ok")
"#,
        port = d.addr.port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python http.client: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn events_stream_server_sent_events_and_sigterm_drains_to_exit_0() {
    let mut d = start_demo(&[("H1_SHUTDOWN_TIMEOUT", "10s")]);
    let mut r = Reader::new(connect(d.addr));
    r.send(b"GET /events HTTP/1.1\r\nHost: demo\r\n\r\n");
    // Read the head and the first tick (the hub ticks every second).
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains("event: tick") {
        let n = match r.stream.read(&mut buf) {
            // A signal delivered to this test process may interrupt the read (EINTR, seen
            // once in a full run): read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => other.expect("an SSE event within the timeout"),
        };
        assert!(n > 0, "stream closed early: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let lower = got.to_ascii_lowercase();
    assert!(lower.contains("content-type: text/event-stream"), "{got}");
    assert!(lower.contains("transfer-encoding: chunked"), "{got}");

    let pid = d.child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The hub ends the stream on drain: the chunked body terminates, then the socket closes.
    let mut rest = Vec::new();
    let _ = r.stream.read_to_end(&mut rest);
    assert!(
        String::from_utf8_lossy(&rest).contains("0\r\n\r\n"),
        "the stream ended cleanly on drain"
    );
    let status = d.child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    // Every line, up to the reader thread's end (stderr's EOF once the process exited).
    let mut log = Vec::new();
    while let Ok(line) = d.log.recv_timeout(Duration::from_secs(10)) {
        log.push(line);
    }
    assert!(
        log.iter().any(|l| l.contains("shutdown hook")),
        "the shutdown hook ran: {log:?}"
    );
}

#[test]
fn flags_override_env_and_bad_values_name_their_source() {
    let bin = built_binary("h1server", false);
    let help = Command::new(&bin).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--addr",
        "--workers",
        "--idle-timeout",
        "--max-body-bytes",
        "--routes",
    ] {
        assert!(text.contains(flag), "--help lists {flag}: {text}");
    }
    assert!(
        text.contains("H1_IDLE_TIMEOUT") && text.contains("60s"),
        "{text}"
    );

    let bad_flag = Command::new(&bin)
        .args(["--idle-timeout", "5x"])
        .output()
        .unwrap();
    assert!(!bad_flag.status.success());
    let err = String::from_utf8_lossy(&bad_flag.stderr);
    assert!(
        err.contains("--idle-timeout") && err.contains("5x"),
        "{err}"
    );

    let bad_env = Command::new(&bin)
        .env("H1_WORKERS", "many")
        .output()
        .unwrap();
    assert!(!bad_env.status.success());
    let err = String::from_utf8_lossy(&bad_env.stderr);
    assert!(err.contains("H1_WORKERS") && err.contains("many"), "{err}");

    let range = Command::new(&bin)
        .args(["--max-headers", "1000"])
        .output()
        .unwrap();
    assert!(!range.status.success());
    let err = String::from_utf8_lossy(&range.stderr);
    assert!(
        err.contains("--max-headers") && err.contains("1000"),
        "{err}"
    );

    // A flag beats the environment, even a bad value there; the env address is taken,
    // the flag's is free.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free_port();
    let mut child = ChildGuard(
        Command::new(&bin)
            .env("H1_ADDR", taken.local_addr().unwrap().to_string())
            .env("H1_MAX_HEADERS", "1000")
            .env("DEMO_DB", ":memory:")
            .args(["--max-headers", "100"])
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(addr).is_ok()
    }));
    assert_eq!(
        roundtrip(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").status,
        200
    );
    let _ = child.0.kill();
}

/// `h1server --routes`, with the configured address already taken (binding it would
/// fail with exit 1): its stdout, one line per route, split into columns.
fn routes_flag_table() -> Vec<Vec<String>> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Command::new(built_binary("h1server", false))
        .env("H1_ADDR", taken.local_addr().unwrap().to_string())
        .arg("--routes")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "--routes must exit 0 without binding: {out:?}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn routes_flag_prints_methods_pattern_and_group_sorted_by_pattern() {
    let table = routes_flag_table();
    for want in [
        ["GET,POST", "/api/v1/users", "/api/v1"],
        ["GET,PUT", "/api/v1/users/{id}", "/api/v1"],
        ["GET", "/parcels/{id}", "-"],
        ["GET", "/debug/routes", "-"],
        ["GET", "/{$}", "-"],
    ] {
        assert!(
            table.iter().any(|row| row == &want),
            "{want:?} in {table:?}"
        );
    }
    assert!(table.iter().all(|row| row.len() == 3), "{table:?}");
    let patterns: Vec<&str> = table.iter().map(|row| row[1].as_str()).collect();
    assert!(patterns.is_sorted(), "{patterns:?}");
}

#[test]
fn debug_routes_serves_the_same_table_as_json() {
    let d = start_demo(&[]);
    let resp = roundtrip(d.addr, b"GET /debug/routes HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&resp.body).expect("a JSON body");
    let routes = json.as_array().expect("a JSON array");
    assert!(
        routes.contains(&serde_json::json!({
            "pattern": "/api/v1/users",
            "methods": ["GET", "POST"],
            "group": "/api/v1",
        })),
        "{json}"
    );
    assert!(
        routes.contains(&serde_json::json!({
            "pattern": "/parcels/{id}", "methods": ["GET"], "group": null,
        })),
        "{json}"
    );
    // Row for row what `--routes` prints.
    let as_rows: Vec<Vec<String>> = routes
        .iter()
        .map(|r| {
            let methods: Vec<&str> = r["methods"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap())
                .collect();
            let group = r["group"].as_str().unwrap_or("-");
            vec![
                methods.join(","),
                r["pattern"].as_str().unwrap().to_string(),
                group.to_string(),
            ]
        })
        .collect();
    assert_eq!(as_rows, routes_flag_table());
}

/// systemd socket activation (`ListenStream=` + `Server::from_listener`): a supervisor
/// binds the port and passes it as descriptor 3 with `LISTEN_PID`/`LISTEN_FDS`. Python
/// plays the supervisor: it binds, moves the socket to fd 3, sets the variables for its
/// own pid and execs the demo, which must serve on that socket (not on `H1_ADDR`).
#[test]
fn the_demo_serves_a_socket_passed_by_its_supervisor() {
    require_tool("python3");
    let launcher = r#"
import os, socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
os.dup2(s.fileno(), 3); os.set_inheritable(3, True)
os.environ["LISTEN_PID"] = str(os.getpid()); os.environ["LISTEN_FDS"] = "1"
os.execv(sys.argv[1], [sys.argv[1]])
"#;
    let unused = free_port();
    let mut child = ChildGuard(
        Command::new("python3")
            .args(["-c", launcher])
            .arg(built_binary("h1server", false))
            .env("H1_ADDR", format!("127.0.0.1:{unused}"))
            .env("DEMO_DB", ":memory:")
            .env("DEMO_API_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3"),
    );
    let mut port = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port.trim().parse().unwrap()).into();
    let mut log = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let started = log
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("listening on"))
        .expect("the demo logged where it listens");
    assert!(started.contains(&addr.to_string()), "{started}");
    let resp = roundtrip(addr, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", unused)).is_err(),
        "H1_ADDR was bound too"
    );
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut status = None;
    wait_until(IO_TIMEOUT, || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
}
