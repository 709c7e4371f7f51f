//! The lifecycle inspector, seen from outside: requests over real sockets, then its JSON
//! history and its live event stream must tell what happened to each (stages in order,
//! route, status, secrets redacted, history bounded); and a real browser (headless
//! Chromium) must draw the demo's waterfall.
#![cfg(feature = "inspect")]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use h1server::inspect::Inspector;
use h1server::{Config, Request, Response, Router, Server};
use serde_json::Value;
use support::*;

const PREFIX: &str = "/debug/requests";

/// A server with the inspector mounted at `/debug/requests` and its ingest task running.
fn start(capacity: usize) -> (TestServer, Inspector) {
    let server = Server::bind(Config {
        record_stages: true,
        ..test_config()
    })
    .unwrap();
    let inspector = Inspector::new(server.telemetry(), capacity);
    let mut r = Router::new();
    r.get("/items/{id}", |_: &mut Request| {
        std::thread::sleep(Duration::from_millis(5));
        Response::text("item\n")
    });
    r.get("/stream", |_: &mut Request| {
        Response::stream((0..3).map(|i| format!("piece {i}\n").into_bytes()))
    });
    // Over the engine's large-body threshold (256 KiB): sent as a pulled stream.
    r.get("/large", |_: &mut Request| {
        Response::new(200).with_body(vec![b'x'; 1 << 20])
    });
    inspector.routes(&mut r, PREFIX);
    let ingest = inspector.clone();
    let server = server.spawn_task("inspector", move |token| ingest.run(token));
    (TestServer::with_server(server, r), inspector)
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    roundtrip(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// `/debug/requests/json`, parsed.
fn history(addr: SocketAddr) -> Value {
    let r = get(addr, &format!("{PREFIX}/json"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    serde_json::from_slice(&r.body).expect("the history is JSON")
}

fn requests(doc: &Value) -> &Vec<Value> {
    doc["requests"].as_array().expect("requests")
}

/// Polls the history until `cond` holds (records arrive once their answer is written).
fn history_until(addr: SocketAddr, mut cond: impl FnMut(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let doc = history(addr);
        if cond(&doc) {
            return doc;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "history never got there: {doc:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn find<'a>(doc: &'a Value, path: &str) -> &'a Value {
    requests(doc)
        .iter()
        .find(|r| r["path"] == path)
        .unwrap_or_else(|| panic!("no record of {path}: {doc:#}"))
}

/// A large fixed body leaves as a stream of pieces: its record says streamed, and shows
/// its writes (it said `streamed: false` beside several flushes before).
#[test]
fn a_large_fixed_body_is_recorded_as_streamed_with_its_writes() {
    let (srv, _inspector) = start(50);
    let r = get(srv.addr, "/large");
    assert_eq!((r.status, r.body.len()), (200, 1 << 20));
    let doc = history_until(srv.addr, |d| {
        requests(d).iter().any(|r| r["path"] == "/large")
    });
    let large = find(&doc, "/large");
    assert_eq!(large["streamed"], true, "{large:#}");
    assert!(large["flush_count"].as_u64().unwrap() >= 1, "{large:#}");
}

fn stamp(r: &Value, stage: &str) -> u64 {
    r["stamps"][stage].as_u64().unwrap()
}

#[test]
fn history_has_each_request_with_its_stages_in_order_route_status_and_no_secrets() {
    let (srv, inspector) = start(50);
    let mut c = Reader::new(srv.connect());
    c.send(
        b"GET /items/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\n\
          Cookie: session=s3cret-cookie\r\nProxy-Authorization: Basic s3cret-proxy\r\n\r\n",
    );
    assert_eq!(c.read_response().status, 200);
    c.send(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response().status, 404);
    c.send(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    assert!(c.is_closed());

    let doc = history_until(srv.addr, |d| {
        requests(d).len() >= 3 && d["closes"].as_array().is_some_and(|c| !c.is_empty())
    });
    let item = find(&doc, "/items/1");
    let conn = item["conn"].as_u64().unwrap();
    assert_eq!(
        (
            &item["method"],
            &item["route"],
            &item["status"],
            &item["seq"]
        ),
        (
            &Value::from("GET"),
            &Value::from("/items/{id}"),
            &Value::from(200),
            &Value::from(1)
        )
    );
    let missing = find(&doc, "/nope");
    assert_eq!(
        (&missing["route"], &missing["status"]),
        (&Value::Null, &Value::from(404))
    );
    let stream = find(&doc, "/stream");
    assert_eq!(stream["streamed"], true);
    assert!(stream["flush_count"].as_u64().unwrap() >= 1, "{stream:#}");
    for r in [item, missing, stream] {
        assert_eq!(r["conn"].as_u64(), Some(conn), "one connection: {r:#}");
        let order = [
            "first_byte",
            "head_parsed",
            "queued",
            "handler_start",
            "handler_end",
            "written",
        ];
        let stamps: Vec<u64> = order.iter().map(|s| stamp(r, s)).collect();
        assert!(stamps.iter().all(|&s| s > 0), "a stage is missing: {r:#}");
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "out of order: {r:#}"
        );
        // Only the connection's first request has the accept stamp.
        if r["seq"] == 1 {
            assert!(stamp(r, "accepted") > 0 && stamp(r, "accepted") <= stamps[0]);
        } else {
            assert_eq!(stamp(r, "accepted"), 0, "{r:#}");
        }
        let total = r["durations"]["total"].as_u64().unwrap();
        assert_eq!(total, stamp(r, "written") - stamp(r, "first_byte"));
    }
    // The handler slept 5 ms: its stage says so.
    assert!(
        item["durations"]["handler"].as_u64().unwrap() >= 5_000_000,
        "{item:#}"
    );

    // Secrets never leave the server; names stay, values are redacted.
    let body = get(srv.addr, &format!("{PREFIX}/json")).text();
    assert!(!body.contains("s3cret"), "a secret leaked: {body}");
    let headers: Vec<(String, String)> = serde_json::from_value(item["headers"].clone()).unwrap();
    for name in ["Authorization", "Cookie", "Proxy-Authorization"] {
        let v = headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|h| h.1.as_str());
        assert_eq!(v, Some("[redacted]"), "{name}: {headers:?}");
    }
    assert!(headers.iter().any(|(n, v)| n == "Host" && v == "x"));

    // The connection's end, with its reason (we asked for Connection: close).
    let close = doc["closes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conn"].as_u64() == Some(conn))
        .unwrap_or_else(|| panic!("no close of conn {conn}: {doc:#}"));
    assert_eq!(
        (&close["reason"], &close["requests"]),
        (&Value::from("done"), &Value::from(3))
    );
    assert_eq!(inspector.closed(conn).map(|c| c.reason), Some("done"));

    // The inspector's own requests (all these /json fetches) are not in the history.
    let doc = history(srv.addr);
    assert!(
        requests(&doc)
            .iter()
            .all(|r| !r["path"].as_str().unwrap().starts_with(PREFIX)),
        "{doc:#}"
    );
    assert_eq!(requests(&doc).len(), 3);

    // The page: one self-contained document, nothing fetched from elsewhere.
    let page = get(srv.addr, PREFIX);
    assert_eq!(page.status, 200);
    assert!(
        page.header("Content-Type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.header("Content-Security-Policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = page.text();
    assert!(
        html.contains("<title>") && html.contains("EventSource"),
        "{html}"
    );
    assert!(!html.contains("https://") && !html.contains("http://") && !html.contains(" src="));
}

/// Reads what a socket has until `want` appears in it, for at most `limit`.
fn read_until(s: &mut TcpStream, seen: &mut String, want: &str, limit: Duration) -> bool {
    let t0 = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 16384];
    while !seen.contains(want) {
        if t0.elapsed() > limit {
            return false;
        }
        match s.read(&mut buf) {
            Ok(0) => return seen.contains(want),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("reading the event stream: {e}"),
        }
    }
    true
}

#[test]
fn the_event_stream_pushes_each_request_and_close_then_ends_on_shutdown() {
    let (srv, _inspector) = start(50);
    let mut sse = connect(srv.addr);
    sse.write_all(format!("GET {PREFIX}/events HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut seen = String::new();
    assert!(
        read_until(&mut sse, &mut seen, ": connected", IO_TIMEOUT),
        "no stream: {seen}"
    );
    let head = seen.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{seen}");
    assert!(head.contains("content-type: text/event-stream"), "{seen}");
    assert!(head.contains("transfer-encoding: chunked"), "{seen}");

    let r = get(srv.addr, "/items/7");
    assert_eq!(r.status, 200);
    assert!(
        read_until(&mut sse, &mut seen, "\"kind\":\"close\"", IO_TIMEOUT),
        "the request and its close did not arrive: {seen}"
    );
    // One event per message: `id`, `event`, then the JSON on one `data` line.
    let data = seen
        .lines()
        .skip_while(|l| *l != "event: request")
        .nth(1)
        .and_then(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no request event: {seen}"));
    let ev: Value = serde_json::from_str(data).unwrap();
    assert_eq!(
        (&ev["path"], &ev["status"]),
        (&Value::from("/items/7"), &Value::from(200))
    );
    assert_eq!(ev["route"], "/items/{id}");
    assert!(stamp(&ev, "written") >= stamp(&ev, "handler_end"));
    assert!(seen.contains("\nid: 1\nevent: request\n"), "{seen}");
    assert!(seen.contains("\nid: 2\nevent: close\n"), "{seen}");

    // Stopping the server ends the page's stream (the ingest task drops it), so the
    // drain does not wait for it: the chunked body ends.
    let t0 = Instant::now();
    srv.stop().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "the drain waited on the stream"
    );
    assert!(
        read_until(&mut sse, &mut seen, "\r\n0\r\n\r\n", IO_TIMEOUT),
        "{seen:?}"
    );
}

#[test]
fn history_keeps_only_the_last_capacity_requests() {
    let (srv, inspector) = start(5);
    let mut c = Reader::new(srv.connect());
    for i in 0..12 {
        c.send(format!("GET /items/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        assert_eq!(c.read_response().status, 200);
    }
    let doc = history_until(srv.addr, |d| {
        requests(d).last().is_some_and(|r| r["path"] == "/items/11")
    });
    assert_eq!(doc["capacity"], 5);
    let paths: Vec<&str> = requests(&doc)
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/items/7", "/items/8", "/items/9", "/items/10", "/items/11"]
    );
    let seqs: Vec<u64> = requests(&doc)
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [8, 9, 10, 11, 12]);
    let evs: Vec<u64> = requests(&doc)
        .iter()
        .map(|r| r["ev"].as_u64().unwrap())
        .collect();
    assert!(evs.windows(2).all(|w| w[0] < w[1]), "{evs:?}");
    // `last_ev` is the newest event in the answer, a request's or a connection's close:
    // the close of a connection `history_until` polled with before the last request was
    // recorded may come after it (CI saw 12 against the last request's 11).
    let closes = doc["closes"].as_array().expect("closes");
    let newest = evs
        .iter()
        .copied()
        .chain(closes.iter().map(|c| c["ev"].as_u64().unwrap()))
        .max();
    assert_eq!(doc["last_ev"].as_u64(), newest);
    // The Rust side sees the same history.
    let kept: Vec<String> = inspector.history().into_iter().map(|r| r.path).collect();
    assert_eq!(kept, paths);

    // Connections beyond the capacity: the map of close reasons stays bounded too.
    for i in 0..8 {
        assert_eq!(get(srv.addr, &format!("/items/c{i}")).status, 200);
    }
    let doc = history_until(srv.addr, |d| {
        d["closes"].as_array().unwrap().len() == 5
            && requests(d).last().is_some_and(|r| r["path"] == "/items/c7")
    });
    assert_eq!(requests(&doc).len(), 5);
}

// ---- the demo binary, and a real browser -----------------------------------------------

/// The demo binary on a free port with `envs`; killed (by its PID) when dropped.
#[cfg(feature = "cli")]
fn start_demo(envs: &[(&str, &str)]) -> (ChildGuard, SocketAddr) {
    let port = free_port();
    let mut cmd = Command::new(built_binary("h1server", false));
    cmd.env("DEMO_DB", ":memory:"); // never the checkout's ./data
    cmd.env("H1_ADDR", format!("127.0.0.1:{port}"))
        .env("DEMO_API_TOKEN", "test-token")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = ChildGuard(cmd.spawn().expect("spawn the demo binary"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
        "the demo did not start listening"
    );
    (child, addr)
}

#[cfg(feature = "cli")]
#[test]
fn demo_serves_no_inspector_unless_asked() {
    let (_demo, addr) = start_demo(&[]);
    for path in [
        PREFIX.to_string(),
        format!("{PREFIX}/json"),
        format!("{PREFIX}/events"),
    ] {
        assert_eq!(get(addr, &path).status, 404, "{path}");
    }
    // A typo is an error, not a silent "off".
    let out = Command::new(built_binary("h1server", false))
        .env("DEMO_DB", ":memory:")
        .env("DEMO_INSPECT", "yes please")
        .env("H1_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DEMO_INSPECT"),
        "{out:?}"
    );
}

/// Where test artifacts go: `target/test-artifacts/` (next to `CARGO_TARGET_TMPDIR`,
/// which follows `CARGO_TARGET_DIR`).
fn artifacts_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh Chromium profile directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs headless Chromium on `url` with `extra` arguments (`--dump-dom`, `--screenshot`)
/// and returns its stdout; killed by its PID after 60 s.
fn chromium(url: &str, extra: &[&str]) -> String {
    let profile = TempDir::new("chromium-profile");
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.0.display()))
    .arg("--virtual-time-budget=5000")
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = ChildGuard(cmd.spawn().expect("run chromium"));
    let mut stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "chromium did not finish within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = reader.join().unwrap();
    assert!(status.success(), "chromium {extra:?} failed: {status}");
    out
}

#[cfg(feature = "cli")]
#[test]
fn chromium_draws_the_waterfall_of_a_demo_request() {
    require_tool("chromium");
    require_tool("curl");
    let (_demo, addr) = start_demo(&[("DEMO_INSPECT", "1")]);
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            &format!("http://{addr}/parcels/42"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "parcel lookup accepted for 42\n"
    );
    history_until(addr, |d| {
        requests(d).iter().any(|r| r["path"] == "/parcels/42")
    });

    let url = format!("http://{addr}{PREFIX}");
    let dom = chromium(&url, &["--dump-dom"]);
    // The request's row: its path, route, status and one segment per stage it went through.
    let row = dom
        .split("<tr class=\"req ")
        .skip(1)
        .find(|r| r.contains(">/parcels/42<"))
        .map(|r| r.split("</tr>").next().unwrap())
        .unwrap_or_else(|| panic!("no row for /parcels/42 in the page:\n{dom}"));
    for want in [
        ">/parcels/{id}<",
        "badge s2\">200<",
        "seg seg-queue",
        "seg seg-handler",
        "seg seg-write",
    ] {
        assert!(row.contains(want), "{want} missing from the row: {row}");
    }
    assert!(!row.contains("class=\"cut\""), "written, not cut: {row}");

    let png = artifacts_dir().join("inspector.png");
    let _ = std::fs::remove_file(&png);
    chromium(
        &url,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,900",
        ],
    );
    let bytes = std::fs::read(&png).expect("the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000);
    eprintln!("screenshot: {}", png.display());
}
