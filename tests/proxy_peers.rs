//! The gateway (`examples/gateway`, a process of its own) with real peers: in front of the
//! demo service and of nginx, with curl and Python's `http.client` as clients; a large
//! upload and a large download streamed through it while its resident memory (VmRSS in
//! /proc/PID/status) stays flat; its configuration errors. A missing curl, python3 or
//! nginx fails the test, never skips. Only 127.0.0.1; every process started here is ended
//! by its PID.
#![cfg(all(feature = "proxy", feature = "json", target_os = "linux"))]
mod support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::*;

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "h1-proxy-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child that gets SIGTERM on drop and is waited for (nginx's master stops its
/// workers; the gateway drains), SIGKILL after 10 s.
struct Terminated(Child);

impl Drop for Terminated {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
            unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_listening(addr: SocketAddr, what: &str) {
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
        "{what} did not start listening on {addr}"
    );
}

// ---------------------------------------------------------------------------------------
// The processes

/// The gateway with these routes, its stderr (the access log) in `dir/gateway.log`.
fn gateway(routes: &str, dir: &Path, extra: &[(&str, &str)]) -> (Terminated, SocketAddr) {
    let port = free_port();
    let log = std::fs::File::create(dir.join("gateway.log")).unwrap();
    let mut cmd = Command::new(built_binary("gateway", true));
    cmd.env("GATEWAY_UPSTREAMS", routes)
        .env("GATEWAY_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .env_remove("H1_ADDR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = Terminated(cmd.spawn().expect("spawn examples/gateway"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr, "the gateway");
    (child, addr)
}

/// The demo service (`DEMO_DB=:memory:`), its stderr in `dir/demo.log`.
fn demo(dir: &Path) -> (Terminated, SocketAddr) {
    let port = free_port();
    let log = std::fs::File::create(dir.join("demo.log")).unwrap();
    let child = Command::new(built_binary("h1server", false))
        .env("H1_ADDR", format!("127.0.0.1:{port}"))
        .env("DEMO_DB", ":memory:")
        .env("DEMO_API_TOKEN", "proxy-test-token")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn the demo binary");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let guard = Terminated(child);
    wait_listening(addr, "the demo");
    (guard, addr)
}

/// nginx serving `dir/www` (a 200 000-byte `big.txt`, a sparse `huge.bin` of
/// [`big_bytes`], an
/// SSI page chunked and one close-delimited), logging each request's connection, the
/// fields a proxy must strip or set, and the status to `dir/access.log`.
fn nginx(dir: &Path) -> (Terminated, SocketAddr) {
    let d = dir.display().to_string();
    let www = dir.join("www");
    for sub in ["", "ssi", "ssi-close"] {
        std::fs::create_dir_all(www.join(sub)).unwrap();
    }
    std::fs::write(www.join("big.txt"), "n".repeat(200_000)).unwrap();
    // Sparse: zeros that take no disk.
    std::fs::File::create(www.join("huge.bin"))
        .unwrap()
        .set_len(big_bytes())
        .unwrap();
    let page = "<p>one</p><p><!--# echo var=\"h1_word\" --></p><p>three</p>";
    for sub in ["ssi", "ssi-close"] {
        std::fs::write(www.join(sub).join("page.html"), page).unwrap();
    }
    let port = free_port();
    let http = format!(
        "    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    log_format peer '$connection $connection_requests $request_method $uri $status \"$http_foo\" \"$http_x_forwarded_for\" \"$http_via\" \"$http_x_request_id\"';
    access_log {d}/access.log peer;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        set $h1_word 'two';
        location /ssi/ {{ ssi on; }}
        location /ssi-close/ {{ ssi on; chunked_transfer_encoding off; }}
    }}"
    );
    let child = support::nginx::spawn(
        dir,
        "master_process on;\nworker_processes 1;",
        "worker_connections 64;",
        &http,
    );
    let guard = Terminated(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_listening(addr, "nginx");
    (guard, addr)
}

/// nginx's access log lines, split on spaces outside quotes.
fn nginx_log(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut fields = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            for c in l.chars() {
                match c {
                    '"' => quoted = !quoted,
                    ' ' if !quoted => fields.push(std::mem::take(&mut cur)),
                    c => cur.push(c),
                }
            }
            fields.push(cur);
            fields
        })
        .collect()
}

/// A Python upstream: `PUT`/`POST` read the body in 1 MiB pieces and answer its length
/// and a checksum-free count; `GET /zeros?n=N` sends N zero bytes with a Content-Length.
const PY_UPSTREAM: &str = r#"
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_PUT(self):
        left = int(self.headers.get("Content-Length", "0"))
        got = 0
        while left > 0:
            piece = self.rfile.read(min(left, 1 << 20))
            if not piece:
                break
            got += len(piece)
            left -= len(piece)
        self.answer(str(got).encode())
    do_POST = do_PUT
    def do_GET(self):
        n = int(self.path.split("n=")[1]) if "n=" in self.path else 0
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        block = b"\0" * (1 << 20)
        while n > 0:
            k = min(n, len(block))
            self.wfile.write(block[:k])
            n -= k

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

fn python_upstream(dir: &Path) -> (Terminated, SocketAddr) {
    require_tool("python3");
    let script = dir.join("upstream.py");
    std::fs::write(&script, PY_UPSTREAM).unwrap();
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn python3");
    let stdout = child.stdout.take().unwrap();
    let guard = Terminated(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().expect("python printed its port");
    (guard, ([127, 0, 0, 1], port).into())
}

fn curl(args: &[&str]) -> Output {
    require_tool("curl");
    Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .output()
        .expect("run curl")
}

/// `curl -i`: (status, lower-cased head, body).
fn curl_i(args: &[&str]) -> (u16, String, String) {
    let out = curl(&[&["-i"], args].concat());
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

// ---------------------------------------------------------------------------------------
// In front of the demo service

#[test]
fn gateway_in_front_of_the_demo_with_curl_propagates_ids_and_marks_responses() {
    let dir = TempDir::new("demo");
    let (_demo, demo_addr) = demo(&dir.0);
    let (_gw, gw) = gateway(
        &format!("/api=http://{demo_addr},/healthz=http://{demo_addr}"),
        &dir.0,
        &[],
    );
    let (status, head, body) = curl_i(&[
        "-H",
        "X-Request-ID: proxy-rid-1",
        "-H",
        "X-Correlation-ID: proxy-cid-1",
        &format!("http://{gw}/healthz"),
    ]);
    assert_eq!(status, 200, "{head}");
    assert!(body.contains("\"status\":\"alive\""), "{body}");
    assert!(head.contains("x-proxy: api-gateway"), "{head}");
    assert!(head.contains("via: 1.1 h1server"), "{head}");
    assert!(head.contains("x-request-id: proxy-rid-1"), "{head}");
    // The demo saw the same ids (its access log line names them).
    assert!(
        wait_until(Duration::from_secs(5), || {
            let log = std::fs::read_to_string(dir.0.join("demo.log")).unwrap_or_default();
            log.lines().any(|l| {
                l.contains("path=/healthz")
                    && l.contains("request_id=proxy-rid-1")
                    && l.contains("correlation_id=proxy-cid-1")
            })
        }),
        "the upstream did not get the ids:\n{}",
        std::fs::read_to_string(dir.0.join("demo.log")).unwrap_or_default()
    );
    // The gateway's own access log line.
    let gw_log = std::fs::read_to_string(dir.0.join("gateway.log")).unwrap_or_default();
    assert!(
        gw_log.contains("path=/healthz status=200") && gw_log.contains("request_id=proxy-rid-1"),
        "{gw_log}"
    );
    // No route → 404 from the gateway itself.
    let (status, _, _) = curl_i(&[&format!("http://{gw}/nowhere")]);
    assert_eq!(status, 404);
}

const PY_CLIENT: &str = r#"
import http.client, json, sys
host, port = sys.argv[1], int(sys.argv[2])
c = http.client.HTTPConnection(host, port, timeout=10)
out = []
socks = set()
def call(method, path, body=None, headers={}):
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    socks.add(id(c.sock))
    out.append({"status": r.status, "body": data.decode("utf-8", "replace"),
                "via": r.getheader("Via"), "proxy": r.getheader("X-Proxy")})
auth = {"Authorization": "Bearer proxy-test-token", "Content-Type": "application/json"}
call("GET", "/healthz")
call("POST", "/api/v1/users", json.dumps({"name": "Ada", "email": "ada@example.com"}), auth)
uid = json.loads(out[-1]["body"]).get("id")
call("GET", "/api/v1/users/%s" % uid, None, auth)
call("GET", "/api/v1/users/%s" % uid, None, {})
print(json.dumps({"calls": out, "connections": len(socks)}))
"#;

#[test]
fn gateway_in_front_of_the_demo_with_python_http_client_on_one_connection() {
    require_tool("python3");
    let dir = TempDir::new("demo-py");
    let (_demo, demo_addr) = demo(&dir.0);
    let (_gw, gw) = gateway(&format!("/=http://{demo_addr}"), &dir.0, &[]);
    let script = dir.0.join("client.py");
    std::fs::write(&script, PY_CLIENT).unwrap();
    let out = Command::new("python3")
        .arg(&script)
        .arg("127.0.0.1")
        .arg(gw.port().to_string())
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python printed JSON");
    let calls = v["calls"].as_array().unwrap();
    let statuses: Vec<u64> = calls
        .iter()
        .map(|c| c["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 201, 200, 401], "{v}");
    assert!(
        calls[2]["body"]
            .as_str()
            .unwrap()
            .contains("ada@example.com")
    );
    assert!(
        calls
            .iter()
            .all(|c| c["proxy"] == "api-gateway" && c["via"] == "1.1 h1server")
    );
    assert_eq!(v["connections"], 1, "http.client kept its connection: {v}");
}

// ---------------------------------------------------------------------------------------
// In front of nginx

#[test]
fn gateway_in_front_of_nginx_strips_hop_by_hop_sets_forwarding_and_pools() {
    let dir = TempDir::new("nginx");
    let (_nginx, nginx_addr) = nginx(&dir.0);
    let (_gw, gw) = gateway(&format!("/=http://{nginx_addr}"), &dir.0, &[]);
    let url = |p: &str| format!("http://{gw}{p}");

    let (status, _, body) = curl_i(&[
        "-H",
        "Connection: foo",
        "-H",
        "Foo: must-not-pass",
        "-H",
        "X-Forwarded-For: 198.51.100.1",
        "-H",
        "X-Request-ID: nginx-rid",
        &url("/big.txt"),
    ]);
    assert_eq!((status, body.len()), (200, 200_000));
    let (status, head, body) = curl_i(&[&url("/ssi/page.html")]);
    assert_eq!(status, 200);
    assert_eq!(body, "<p>one</p><p>two</p><p>three</p>");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let (status, _, body) = curl_i(&[&url("/ssi-close/page.html")]);
    assert_eq!(
        (status, body.as_str()),
        (200, "<p>one</p><p>two</p><p>three</p>")
    );
    let (status, head, _) = curl_i(&["-I", &url("/big.txt")]);
    assert_eq!(status, 200);
    assert!(!head.contains("content-length: 0"), "{head}");
    let (status, _, _) = curl_i(&[&url("/missing")]);
    assert_eq!(status, 404);

    assert!(wait_until(Duration::from_secs(5), || nginx_log(&dir.0)
        .len()
        >= 5));
    let log = nginx_log(&dir.0);
    // $connection $connection_requests $method $uri $status "$http_foo" "$xff" "$via" "$rid"
    let first = &log[0];
    assert_eq!(first[3], "/big.txt");
    assert_eq!(
        first[5], "-",
        "Foo (named by Connection) reached nginx: {first:?}"
    );
    assert_eq!(first[6], "198.51.100.1, 127.0.0.1");
    assert_eq!(first[7], "1.1 h1server");
    assert_eq!(first[8], "nginx-rid");
    // The upstream connection is pooled: the keep-alive requests share one (the
    // close-delimited SSI answer ends its connection, so at most two are used).
    let conns: std::collections::BTreeSet<&str> = log.iter().map(|l| l[0].as_str()).collect();
    assert!(conns.len() <= 2, "upstream connections: {log:?}");
    assert!(
        log.iter().any(|l| l[1] != "1"),
        "no request reused a connection: {log:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Large bodies in constant memory

/// The streamed sizes: 256 MiB per direction here; `PROXY_BIG_MIB=1024` for the 1 GiB
/// manual run (docs/PROXY.md).
const HUGE: u64 = 256 << 20;

fn big_bytes() -> u64 {
    std::env::var("PROXY_BIG_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(HUGE, |m| m << 20)
}

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Samples the process's VmRSS every 20 ms until stopped; returns the peak.
struct RssWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(vm_rss_kb(pid)));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                p.fetch_max(vm_rss_kb(pid), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssWatch {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn peak_kb(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::SeqCst)
    }
}

/// Growth of the gateway's VmRSS allowed while a large body passes: its windows, the
/// engine's buffers and a worker's stack, far below the body itself.
const MAX_GROWTH_KB: u64 = 48 * 1024;

#[test]
fn a_large_upload_and_download_stream_through_in_flat_memory() {
    let dir = TempDir::new("big");
    let (_py, py) = python_upstream(&dir.0);
    let (nginx_guard, nginx_addr) = nginx(&dir.0);
    let (gw_child, gw) = gateway(
        &format!("/up=http://{py},/zeros=http://{py},/=http://{nginx_addr}"),
        &dir.0,
        &[],
    );
    let pid = gw_child.0.id();
    let big = big_bytes();
    let upload = dir.0.join("upload.bin");
    std::fs::File::create(&upload)
        .unwrap()
        .set_len(big)
        .unwrap();
    // Warm up: threads, buffers and pools reach their steady size.
    for _ in 0..2 {
        let out = curl(&[
            "-o",
            "/dev/null",
            &format!("http://{gw}/zeros?n={}", 8 << 20),
        ]);
        assert!(out.status.success());
        let small = dir.0.join("small.bin");
        std::fs::File::create(&small)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let out = curl(&["-T", small.to_str().unwrap(), &format!("http://{gw}/up")]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            (8u64 << 20).to_string()
        );
    }
    let base = vm_rss_kb(pid);

    // Download from nginx (a sparse file, sendfile) through the gateway.
    let watch = RssWatch::start(pid);
    let t0 = Instant::now();
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{size_download} %{http_code}",
        &format!("http://{gw}/huge.bin"),
    ]);
    let down = t0.elapsed();
    let peak_down = watch.peak_kb();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{big} 200"));

    // Upload to Python through the gateway (streamed: above max_body_bytes).
    let watch = RssWatch::start(pid);
    let t0 = Instant::now();
    let out = curl(&["-T", upload.to_str().unwrap(), &format!("http://{gw}/up")]);
    let up = t0.elapsed();
    let peak_up = watch.peak_kb();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), big.to_string());

    eprintln!(
        "proxy_peers: {} MiB down in {:.2} s, up in {:.2} s; gateway VmRSS {base} kB before, \
         peak {peak_down} kB during the download, {peak_up} kB during the upload",
        big >> 20,
        down.as_secs_f64(),
        up.as_secs_f64()
    );
    assert!(
        peak_down <= base + MAX_GROWTH_KB,
        "VmRSS grew from {base} to {peak_down} kB during a {big}-byte download"
    );
    assert!(
        peak_up <= base + MAX_GROWTH_KB,
        "VmRSS grew from {base} to {peak_up} kB during a {big}-byte upload"
    );
    drop(nginx_guard);
}

// ---------------------------------------------------------------------------------------
// Configuration errors

#[test]
fn bad_gateway_configuration_names_the_variable_and_exits_2() {
    let bin = built_binary("gateway", true);
    // (variables, text the error must contain)
    let table: &[(&[(&str, &str)], &str)] = &[
        (&[], "GATEWAY_UPSTREAMS is not set"),
        (&[("GATEWAY_UPSTREAMS", "/api")], "GATEWAY_UPSTREAMS"),
        (&[("GATEWAY_UPSTREAMS", "/api=https://x")], "TLS"),
        (
            &[
                ("GATEWAY_UPSTREAMS", "/api=http://127.0.0.1:9"),
                ("GATEWAY_ADDR", "nowhere"),
            ],
            "GATEWAY_ADDR",
        ),
        (
            &[
                ("GATEWAY_UPSTREAMS", "/api=http://127.0.0.1:9"),
                ("GATEWAY_UPSTREAM_TIMEOUT", "soon"),
            ],
            "GATEWAY_UPSTREAM_TIMEOUT",
        ),
        (
            &[
                ("GATEWAY_UPSTREAMS", "/api=http://127.0.0.1:9"),
                ("H1_WORKERS", "many"),
            ],
            "H1_WORKERS",
        ),
    ];
    for (vars, want) in table {
        let mut cmd = Command::new(&bin);
        cmd.env_remove("GATEWAY_UPSTREAMS")
            .env_remove("GATEWAY_ADDR")
            .env_remove("H1_ADDR")
            .stdin(Stdio::null());
        for (k, v) in *vars {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run the gateway");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{vars:?}: {err}");
        assert!(err.contains(want), "{vars:?}: {err}");
    }
}

#[test]
fn curl_expect_continue_gets_the_upstreams_go_ahead_through_the_gateway() {
    let dir = TempDir::new("expect");
    let (_py, py) = python_upstream(&dir.0);
    let (_gw, gw) = gateway(&format!("/=http://{py}"), &dir.0, &[]);
    let file = dir.0.join("body.bin");
    let len: u64 = 3 << 20; // above max_body_bytes (1 MiB): streamed
    std::fs::File::create(&file).unwrap().set_len(len).unwrap();
    let t0 = Instant::now();
    let out = curl(&[
        "-v",
        "-H",
        "Expect: 100-continue",
        "--expect100-timeout",
        "5",
        "-T",
        file.to_str().unwrap(),
        &format!("http://{gw}/up"),
    ]);
    let took = t0.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), len.to_string());
    assert!(err.contains("< HTTP/1.1 100 Continue"), "{err}");
    eprintln!("proxy_peers: the 3 MiB upload with Expect took {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "curl waited out its expect100 timeout: the 100 did not come through ({took:?})"
    );
}

// ---------------------------------------------------------------------------------------
// Round robin and passive health with real upstreams

/// Requests the demo at `log` has logged for `path`.
fn served(log: &Path, path: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("path={path} ")))
        .count()
}

#[test]
fn round_robin_over_two_demos_then_a_stopped_one_is_skipped_and_a_lone_one_is_502() {
    let (da, db) = (TempDir::new("rr-a"), TempDir::new("rr-b"));
    let (demo_a, a) = demo(&da.0);
    let (_demo_b, b) = demo(&db.0);
    let dir = TempDir::new("rr");
    let (_gw, gw) = gateway(
        &format!("/healthz=http://{a}|http://{b},/solo=http://{a}"),
        &dir.0,
        &[("GATEWAY_HEALTH_COOLDOWN", "60s")],
    );
    for _ in 0..6 {
        let (status, _, _) = curl_i(&[&format!("http://{gw}/healthz")]);
        assert_eq!(status, 200);
    }
    assert!(wait_until(Duration::from_secs(5), || {
        served(&da.0.join("demo.log"), "/healthz") == 3
            && served(&db.0.join("demo.log"), "/healthz") == 3
    }));

    drop(demo_a); // SIGTERM to A's PID, waited for: A now refuses connections
    for i in 0..4 {
        let (status, _, _) = curl_i(&[&format!("http://{gw}/healthz")]);
        assert_eq!(status, 200, "request {i} after A stopped: retried on B");
    }
    assert!(wait_until(Duration::from_secs(5), || served(
        &db.0.join("demo.log"),
        "/healthz"
    ) == 7));
    let (status, _, table) = curl_i(&[&format!("http://{gw}/gateway/upstreams")]);
    assert_eq!(status, 200);
    let line_a = table
        .lines()
        .find(|l| l.starts_with("/healthz") && l.contains(&a.to_string()))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(line_a.contains(" down "), "{table}");
    assert!(
        line_a.contains("refusals=1"),
        "A is tried once, then skipped during its cool-down: {table}"
    );

    let (status, _, body) = curl_i(&[&format!("http://{gw}/solo")]);
    assert_eq!((status, body.as_str()), (502, "Bad Gateway\n"));
}
