#![cfg(feature = "cli")] // the demo binary
//! Behind a real load balancer (issue #10): three demo instances sharing one SQLite file,
//! behind a real nginx (`upstream` with `keepalive 32`, `proxy_next_upstream error
//! timeout`), under wrk, restarted one at a time (SIGTERM, wait for the exit, start
//! again) while the load runs — once under a GET load and once under a POST-only load.
//! Every request must succeed: nginx retries a refused connect on the next instance, but
//! never a POST it has sent, so the drain must never close a connection under a request
//! (`drain_delay` retires pooled connections with `Connection: close` first; the drain
//! takes the listener's backlog and keeps a connection that has not sent its first
//! request yet).
//!
//! Also: idempotent POST retries sent to different instances create the user once, and a
//! user created before the restarts is read and listed after them.
//!
//! `make scale-test` runs this alone, with its output; `SCALE_SECS` sets each load's
//! length (default 20); `SCALE_DRAIN_DELAY` the instances' `H1_DRAIN_DELAY` (default 1s;
//! `0s` to see the path without it). Needs nginx and wrk (`.ci/deps.sh` installs them); it fails, not
//! skips, without them.

mod support;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{ChildGuard, built_binary, free_port, nginx, require_tool, wait_until};

const TOKEN: &str = "scale-token";
const INSTANCES: usize = 3;

/// A scratch directory for the database, the logs and nginx's files; removed on drop
/// unless the test failed (then its logs are what explain why).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("h1server-scale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("nginx-tmp")).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("scale test failed: logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One demo instance: its port, and the running process (if it runs).
struct Instance {
    index: usize,
    addr: SocketAddr,
    child: Option<ChildGuard>,
    starts: usize,
}

impl Instance {
    fn start(&mut self, dir: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("demo-{}.log", self.index)))
            .unwrap();
        let child = Command::new(demo_binary())
            .env("H1_ADDR", self.addr.to_string())
            .env("DEMO_API_TOKEN", TOKEN)
            .env("DEMO_DB", dir.join("users.db"))
            .env("DEMO_UPLOAD_DIR", dir.join("uploads"))
            // All traffic comes from nginx, one address: the limit belongs at the proxy.
            .env("DEMO_RATE_LIMIT", "off")
            // Long enough for nginx to use, and so retire, each pooled connection once.
            .env(
                "H1_DRAIN_DELAY",
                std::env::var("SCALE_DRAIN_DELAY").unwrap_or_else(|_| "1s".into()),
            )
            .env("H1_SHUTDOWN_TIMEOUT", "10s")
            .env("RUST_LOG", "warn,h1server::event_loop=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn the demo binary");
        self.child = Some(ChildGuard(child));
        self.starts += 1;
        let addr = self.addr;
        assert!(
            wait_until(Duration::from_secs(30), || get(addr, "/readyz").0 == 200),
            "instance {} did not become ready",
            self.index
        );
    }

    /// SIGTERM, then the exit: within the drain delay plus the drain, with status 0.
    fn stop(&mut self) -> Duration {
        let mut child = self.child.take().expect("running");
        let t0 = Instant::now();
        // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
        let rc = unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM instance {}", self.index);
        let limit = Duration::from_secs(15);
        let status = loop {
            if let Some(s) = child.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                t0.elapsed() < limit,
                "instance {} did not exit within {limit:?} of SIGTERM",
                self.index
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "instance {} exited with {status}",
            self.index
        );
        t0.elapsed()
    }
}

/// The demo binary: `SCALE_BIN` (`make scale-test` passes the release build, for a load
/// closer to production's rate), else the one cargo built for the tests.
fn demo_binary() -> PathBuf {
    match std::env::var_os("SCALE_BIN") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.exists(), "SCALE_BIN={} does not exist", p.display());
            p
        }
        None => built_binary("h1server", false),
    }
}

/// One request on a fresh connection: (status, body). Status 0 when nothing answered.
fn request(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{head}Host: scale\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, &format!("GET {path} HTTP/1.1\r\n"), "")
}

fn post_user(addr: SocketAddr, key: &str, name: &str) -> (u16, String) {
    let body = format!(r#"{{"name":"{name}","email":"{name}@example.com"}}"#);
    request(
        addr,
        &format!(
            "POST /api/v1/users HTTP/1.1\r\nContent-Type: application/json\r\nIdempotency-Key: {key}\r\n"
        ),
        &body,
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

/// nginx, run in the foreground (`daemon off`) as this test's child. Dropped, it gets
/// SIGTERM and is waited for: its master stops its workers before it exits (a SIGKILL to
/// the master would leave them running).
struct Nginx(std::process::Child);

impl Drop for Nginx {
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

/// nginx in front of the instances, as docs/DEPLOY.md configures it.
fn start_nginx(dir: &Path, port: u16, upstreams: &[SocketAddr]) -> Nginx {
    let d = dir.display();
    let mut servers = String::new();
    for a in upstreams {
        writeln!(servers, "        server {a} max_fails=1 fail_timeout=2s;").unwrap();
    }
    let http = format!(
        "    log_format scale '$status $request_method $upstream_addr $upstream_status';
    access_log {d}/nginx-access.log scale;
    upstream h1demo {{
{servers}        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://h1demo;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
        }}
    }}"
    );
    let child = nginx::spawn(
        dir,
        "master_process on;\nworker_processes 2;",
        "worker_connections 2048;",
        &http,
    );
    let guard = Nginx(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(Duration::from_secs(10), || get(addr, "/healthz").0 == 200),
        "nginx did not start proxying (see {d}/nginx-error.log)"
    );
    guard
}

/// What wrk reported.
#[derive(Debug, Default)]
struct WrkReport {
    requests: u64,
    non_2xx: u64,
    socket_errors: u64,
    output: String,
}

fn parse_wrk(output: &str) -> WrkReport {
    let mut r = WrkReport {
        output: output.to_string(),
        ..WrkReport::default()
    };
    for line in output.lines().map(str::trim) {
        // "12345 requests in 20.00s, 1.23MB read"
        if let Some((n, _)) = line.split_once(" requests in ") {
            r.requests = n.trim().parse().unwrap();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = rest.trim().parse().unwrap();
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            r.socket_errors = rest
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        }
    }
    assert!(r.requests > 0, "wrk sent nothing:\n{output}");
    r
}

/// Runs wrk against nginx for `secs` while `restart` runs on this thread; returns
/// wrk's report.
fn under_load(
    dir: &Path,
    nginx: SocketAddr,
    script: &str,
    secs: u64,
    restart: impl FnOnce(),
) -> WrkReport {
    require_tool("wrk");
    let lua = dir.join("load.lua");
    std::fs::write(&lua, script).unwrap();
    let wrk = Command::new("wrk")
        .args([
            "-t2",
            "-c32",
            &format!("-d{secs}s"),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(&lua)
        .arg(format!("http://{nginx}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wrk");
    let mut wrk = ChildGuard(wrk);
    restart();
    // wrk stops itself after `secs`; the bound is for a wrk that hangs.
    let t0 = Instant::now();
    while wrk.0.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs + 30),
            "wrk did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    wrk.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    wrk.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    parse_wrk(&format!("{out}{err}"))
}

/// Restarts every instance once, one at a time, from `start_after` into the load, with a
/// pause between them; checks each comes back ready. Returns how long each stop took.
fn rolling_restart(instances: &mut [Instance], dir: &Path, start_after: Duration) -> Vec<Duration> {
    std::thread::sleep(start_after);
    let mut stops = Vec::new();
    for inst in instances.iter_mut() {
        stops.push(inst.stop());
        inst.start(dir);
        std::thread::sleep(Duration::from_secs(2));
    }
    stops
}

/// The nginx access log's lines from byte `from` on whose status is not 2xx — but for
/// 499, nginx's mark for a request its client gave up on: wrk closes its connections with
/// requests in flight when its time is up (a timeout before that is a wrk socket error).
fn failed_in_access_log(dir: &Path, from: usize) -> Vec<String> {
    let log = access_log(dir);
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('2') && !l.starts_with("499 "))
        .map(str::to_string)
        .collect()
}

fn access_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("nginx-access.log")).unwrap_or_default()
}

fn total_users(addr: SocketAddr) -> u64 {
    let (status, body) = get(addr, "/api/v1/users?limit=1");
    assert_eq!(status, 200, "{body}");
    json(&body)["total"].as_u64().unwrap()
}

#[test]
fn rolling_restarts_behind_nginx_lose_no_request_under_get_or_post_load() {
    let secs: u64 = std::env::var("SCALE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let scratch = Scratch::new();
    let dir = scratch.0.as_path();
    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|index| Instance {
            index,
            addr: ([127, 0, 0, 1], free_port()).into(),
            child: None,
            starts: 0,
        })
        .collect();
    for inst in &mut instances {
        inst.start(dir);
    }
    let nginx_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let upstreams: Vec<SocketAddr> = instances.iter().map(|i| i.addr).collect();
    let _nginx = start_nginx(dir, nginx_addr.port(), &upstreams);

    // An idempotent POST retried on each instance in turn creates one user.
    let (a, b, c) = (instances[0].addr, instances[1].addr, instances[2].addr);
    let first = post_user(a, "scale-key-1", "before");
    assert_eq!(first.0, 201, "{first:?}");
    let user = json(&first.1);
    let id = user["id"].as_u64().unwrap();
    for (addr, which) in [(b, 1), (c, 2)] {
        let retry = post_user(addr, "scale-key-1", "before");
        assert_eq!(retry.0, 201, "the retry on instance {which}: {retry:?}");
        assert_eq!(
            json(&retry.1),
            user,
            "instance {which} replayed another answer"
        );
    }
    let (status, body) = get(nginx_addr, "/api/v1/users?limit=100");
    assert_eq!(status, 200, "{body}");
    let created = json(&body)["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["name"] == "before")
        .count();
    assert_eq!(
        created, 1,
        "retries on other instances created users: {body}"
    );
    let users_before = total_users(nginx_addr);

    // A GET load (a database read and a cheap route), restarting every instance.
    let get_script = format!(
        r#"local n = 0
request = function()
  n = n + 1
  local path = (n % 2 == 0) and "/api/v1/users/{id}" or "/healthz"
  return wrk.format("GET", path, {{ ["Authorization"] = "Bearer {TOKEN}" }})
end
"#
    );
    let stop_times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log_from = access_log(dir).len();
    let get_report = under_load(dir, nginx_addr, &get_script, secs, || {
        let s = rolling_restart(&mut instances, dir, Duration::from_secs(secs / 5));
        stop_times.lock().unwrap().extend(s);
    });
    eprintln!(
        "GET load: {} requests, {} non-2xx, {} socket errors; stops took {:?}",
        get_report.requests,
        get_report.non_2xx,
        get_report.socket_errors,
        stop_times.lock().unwrap()
    );
    let failed = failed_in_access_log(dir, log_from);
    assert!(
        get_report.non_2xx == 0 && get_report.socket_errors == 0 && failed.is_empty(),
        "GET load lost requests across rolling restarts: {} non-2xx, {} socket errors; nginx: {:?}\n{}",
        get_report.non_2xx,
        get_report.socket_errors,
        &failed[..failed.len().min(20)],
        get_report.output
    );

    // A POST-only load: each request creates a user; nginx never retries one it sent.
    let post_script = format!(
        r#"local n = 0
local tid = 0
setup = function(thread) tid = tid + 1; thread:set("tid", tid) end
request = function()
  n = n + 1
  local body = string.format('{{"name":"load %d-%d","email":"load%d-%d@example.com"}}', tid or 0, n, tid or 0, n)
  return wrk.format("POST", "/api/v1/users", {{
    ["Authorization"] = "Bearer {TOKEN}",
    ["Content-Type"] = "application/json",
  }}, body)
end
"#
    );
    let log_from = access_log(dir).len();
    let post_report = under_load(dir, nginx_addr, &post_script, secs, || {
        let s = rolling_restart(&mut instances, dir, Duration::from_secs(secs / 5));
        stop_times.lock().unwrap().extend(s);
    });
    eprintln!(
        "POST load: {} requests, {} non-2xx, {} socket errors; stops took {:?}",
        post_report.requests,
        post_report.non_2xx,
        post_report.socket_errors,
        stop_times.lock().unwrap()
    );
    let failed = failed_in_access_log(dir, log_from);
    assert!(
        post_report.non_2xx == 0 && post_report.socket_errors == 0 && failed.is_empty(),
        "POST load lost requests across rolling restarts: {} non-2xx, {} socket errors; nginx: {:?}\n{}",
        post_report.non_2xx,
        post_report.socket_errors,
        &failed[..failed.len().min(20)],
        post_report.output
    );
    // Every answered POST created its user, once: wrk counts the answers it read; the
    // requests in flight when it stopped may have created users it did not count (at
    // most one per connection).
    let created = total_users(nginx_addr) - users_before;
    assert!(
        created >= post_report.requests && created <= post_report.requests + 32,
        "{} POSTs answered, {created} users created",
        post_report.requests
    );

    // The user created before the six restarts is still there, on every instance.
    assert!(instances.iter().all(|i| i.starts == 3));
    for inst in &instances {
        let (status, body) = get(inst.addr, &format!("/api/v1/users/{id}"));
        assert_eq!(status, 200, "instance {}: {body}", inst.index);
        assert_eq!(json(&body), user);
        let (status, body) = get(inst.addr, "/api/v1/users?limit=5&offset=0");
        assert_eq!(status, 200, "{body}");
        assert!(
            json(&body)["users"].as_array().unwrap().contains(&user),
            "instance {} does not list user {id}: {body}",
            inst.index
        );
    }
    for inst in &mut instances {
        inst.stop();
    }
}
