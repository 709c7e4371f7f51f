//! Prometheus metrics end to end: the built demo binary answers real requests, then its
//! `/metrics` must count them (exact values, consistent histograms), pass `promtool check
//! metrics`, and be scraped by a real Prometheus from the separate listener
//! `H1_METRICS_ADDR` opens.
#![cfg(feature = "cli")]

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const TOKEN: &str = "metrics-test-token";

/// The demo binary on a free port (and its metrics listener, when asked for).
struct Demo {
    _child: ChildGuard,
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
}

fn start_demo(separate_metrics: bool) -> Demo {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut cmd = Command::new(built_binary("h1server", false));
    cmd.env("DEMO_DB", ":memory:"); // never the checkout's ./data
    cmd.env("H1_ADDR", addr.to_string())
        .env("H1_WORKERS", "2")
        .env("DEMO_API_TOKEN", TOKEN)
        .env_remove("H1_METRICS_ADDR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let metrics = separate_metrics.then(|| {
        let m: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        assert_ne!(m, addr, "two free ports, one number");
        cmd.env("H1_METRICS_ADDR", m.to_string());
        m
    });
    let child = ChildGuard(cmd.spawn().expect("spawn the demo binary"));
    for a in std::iter::once(addr).chain(metrics) {
        assert!(
            wait_until(Duration::from_secs(20), || TcpStream::connect(a).is_ok()),
            "the demo did not start listening on {a}"
        );
    }
    Demo {
        _child: child,
        addr,
        metrics,
    }
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    roundtrip(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The fetched exposition, and its samples by `name{labels}` as written.
struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn of(addr: SocketAddr) -> Scrape {
        let r = get(addr, "/metrics");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("Content-Type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let text = r.text();
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (key, value) = l.rsplit_once(' ').expect("`name value`");
                let value = value.parse().unwrap_or_else(|_| panic!("value in {l:?}"));
                (key.to_string(), value)
            })
            .collect();
        Scrape { text, samples }
    }

    fn value(&self, key: &str) -> Option<f64> {
        self.samples.get(key).copied()
    }

    /// One stage's histogram: its `(le, cumulative count)` in order, sum and count.
    fn histogram(&self, stage: &str) -> (Vec<(String, f64)>, f64, f64) {
        let prefix = format!("h1_stage_duration_seconds_bucket{{stage=\"{stage}\",le=\"");
        let buckets = self
            .text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|rest| {
                let (le, value) = rest.split_once("\"} ").unwrap();
                (le.to_string(), value.parse().unwrap())
            })
            .collect();
        let one = |part: &str| {
            self.value(&format!(
                "h1_stage_duration_seconds_{part}{{stage=\"{stage}\"}}"
            ))
            .unwrap_or_else(|| panic!("{stage} {part}"))
        };
        (buckets, one("sum"), one("count"))
    }
}

const PARCELS_2XX: &str = r#"h1_requests_total{method="GET",code="2xx",route="/parcels/{id}"}"#;
const UNROUTED_404: &str = r#"h1_requests_total{method="GET",code="4xx",route="(none)"}"#;
const USERS_POST_4XX: &str = r#"h1_requests_total{method="POST",code="4xx",route="/api/v1/users"}"#;

/// Two 200s, a 404 and a 401 (a POST without the bearer token).
fn make_requests(addr: SocketAddr) {
    assert_eq!(get(addr, "/parcels/PX-1").status, 200);
    assert_eq!(get(addr, "/parcels/PX-2").status, 200);
    assert_eq!(get(addr, "/nowhere").status, 404);
    let body = r#"{"name":"Ada","email":"ada@example.com"}"#;
    let post = format!(
        "POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(roundtrip(addr, post.as_bytes()).status, 401);
}

/// Scrapes until the four requests are counted (bounded: a counting bug fails here, with
/// the last scrape, rather than as a confusing mismatch later).
fn scrape_after_requests(addr: SocketAddr) -> Scrape {
    let mut last = None;
    let counted = wait_until(Duration::from_secs(10), || {
        let s = Scrape::of(addr);
        let done = s.value(PARCELS_2XX) == Some(2.0)
            && s.value(UNROUTED_404).is_some()
            && s.value(USERS_POST_4XX).is_some();
        last = Some(s);
        done
    });
    let s = last.unwrap();
    assert!(counted, "requests not counted:\n{}", s.text);
    s
}

#[test]
fn metrics_count_the_requests_the_demo_answered() {
    let d = start_demo(false);
    make_requests(d.addr);
    let s = scrape_after_requests(d.addr);

    assert_eq!(s.value(PARCELS_2XX), Some(2.0), "{}", s.text);
    assert_eq!(s.value(UNROUTED_404), Some(1.0), "{}", s.text);
    assert_eq!(s.value(USERS_POST_4XX), Some(1.0), "{}", s.text);
    // Four connections, plus the scrapes; every request used its own.
    let accepted = s.value("h1_connections_accepted_total").unwrap();
    assert!(accepted >= 5.0, "{accepted}");
    assert!(s.value("h1_connections_open").unwrap() >= 1.0); // the scrape's own
    assert_eq!(s.value("h1_workers"), Some(2.0));
    assert_eq!(s.value("h1_requests_shed_total"), Some(0.0));
    assert!(s.value("h1_bytes_received_total").unwrap() > 200.0);
    assert!(s.value("h1_bytes_sent_total").unwrap() > 200.0);
    assert!(s.value("h1_uptime_seconds").unwrap() > 0.0);
    assert!(
        s.value(r#"h1_connections_closed_total{reason="done"}"#)
            .is_some()
    );
    assert_eq!(
        s.value(r#"h1_deadlines_fired_total{kind="header"}"#),
        Some(0.0)
    );

    // Every stage's histogram is cumulative, ends with +Inf = _count, and the handler and
    // queue stages saw at least the four requests.
    for stage in ["queue", "handler", "write", "parse"] {
        let (buckets, sum, count) = s.histogram(stage);
        assert_eq!(buckets.len(), 21, "{stage}: {buckets:?}");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{stage} not cumulative: {buckets:?}"
        );
        assert_eq!(buckets.last().unwrap(), &("+Inf".to_string(), count));
        assert!(sum >= 0.0);
        if stage != "write" {
            // The write of the last answer may still be on its way.
            assert!(count >= 4.0, "{stage}: {count}");
        }
    }
    let (_, handler_sum, _) = s.histogram("handler");
    assert!(handler_sum > 0.0);
}

#[test]
fn promtool_accepts_the_exposition() {
    require_tool("promtool");
    let d = start_demo(false);
    make_requests(d.addr);
    let s = scrape_after_requests(d.addr);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(s.text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 0 and nothing said: no parse error (1) and no lint problem (3).
    assert!(out.status.success(), "promtool: {report}\n{}", s.text);
    assert_eq!(report.trim(), "", "promtool lint: {report}");
}

#[test]
fn metrics_addr_moves_metrics_to_their_own_listener() {
    let d = start_demo(true);
    let maddr = d.metrics.unwrap();
    assert_eq!(get(d.addr, "/metrics").status, 404);
    assert_eq!(get(maddr, "/parcels/1").status, 404, "only /metrics there");
    make_requests(d.addr);
    let s = scrape_after_requests(maddr);
    // The main server's numbers: its 404s are the two above, not the metrics listener's.
    assert_eq!(s.value(UNROUTED_404), Some(2.0), "{}", s.text);
    assert!(!s.text.contains("route=\"/metrics\""), "{}", s.text);
}

#[test]
fn a_bad_metrics_addr_is_a_start_up_error_naming_the_variable() {
    let out = Command::new(built_binary("h1server", false))
        .env("DEMO_DB", ":memory:")
        .env("H1_ADDR", "127.0.0.1:0")
        .env("H1_METRICS_ADDR", "localhost-9100")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("H1_METRICS_ADDR") && err.contains("localhost-9100"),
        "{err}"
    );
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("h1-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `GET path` on Prometheus' HTTP API, parsed as JSON (`None` if it does not answer yet).
fn prometheus_api(addr: SocketAddr, path: &str) -> Option<serde_json::Value> {
    let mut c = Reader::new(TcpStream::connect(addr).ok()?);
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    c.send(
        format!("GET {path} HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let r = c.read_response();
    (r.status == 200).then(|| serde_json::from_slice(&r.body).expect("JSON from the API"))
}

/// The instant vector a PromQL query returns: `(labels, value)` per series.
fn query(addr: SocketAddr, promql: &str) -> Vec<(serde_json::Value, String)> {
    let mut q = String::new();
    for b in promql.bytes() {
        if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
            q.push(b as char);
        } else {
            q.push_str(&format!("%{b:02X}"));
        }
    }
    let Some(v) = prometheus_api(addr, &format!("/api/v1/query?query={q}")) else {
        return Vec::new();
    };
    v["data"]["result"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .map(|s| {
                    (
                        s["metric"].clone(),
                        s["value"][1].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_real_prometheus_scrapes_the_metrics_listener() {
    require_tool("prometheus");
    let d = start_demo(true);
    make_requests(d.addr);
    scrape_after_requests(d.metrics.unwrap());

    let dir = TempDir::new("prometheus");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: h1demo\n    scrape_interval: 1s\n    \
             scrape_timeout: 1s\n    static_configs:\n      - targets: ['{}']\n",
            d.metrics.unwrap()
        ),
    )
    .unwrap();
    let web: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let prometheus = ChildGuard(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );

    let mut up = Vec::new();
    let mut requests = Vec::new();
    let scraped = wait_until(Duration::from_secs(30), || {
        up = query(web, r#"up{job="h1demo"}"#);
        requests = query(web, "h1_requests_total");
        up.iter().any(|(_, v)| v == "1") && !requests.is_empty()
    });
    let diagnose = || {
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        format!(
            "up={up:?} requests={requests:?}\nprometheus log (last lines, newest first):\n{}",
            tail.join("\n")
        )
    };
    assert!(
        scraped,
        "Prometheus did not scrape the demo within 30 s: {}",
        diagnose()
    );
    // The series Prometheus stored carry the exposition's labels and values.
    let parcels = requests
        .iter()
        .find(|(m, _)| m["route"] == "/parcels/{id}" && m["code"] == "2xx")
        .unwrap_or_else(|| panic!("no /parcels/{{id}} series: {}", diagnose()));
    assert_eq!(parcels.0["method"], "GET");
    assert_eq!(parcels.1, "2", "{}", diagnose());
    assert!(
        requests.iter().any(|(m, _)| m["route"] == "(none)"),
        "{}",
        diagnose()
    );
    let buckets = query(web, r#"h1_stage_duration_seconds_bucket{stage="handler"}"#);
    assert_eq!(buckets.len(), 21, "{buckets:?}");

    // Stopped by its PID (ChildGuard kills the child it spawned), then the dir goes.
    drop(prometheus);
    drop(dir);
}

/// `h1_queue_depth` was a gauge the loop set at the end of the turn that queued the scrape's
/// own job, so the worker rendering `/metrics` on an idle server read 1 most of the time
/// (17 of 20 scrapes). The snapshot now reads the queue's length when it is taken: the
/// scrape's job has left the queue by then.
#[test]
fn an_idle_server_reports_an_empty_job_queue() {
    let demo = start_demo(false);
    for i in 0..20 {
        let s = Scrape::of(demo.addr);
        assert_eq!(
            s.value("h1_queue_depth"),
            Some(0.0),
            "scrape {i} of an idle server:\n{}",
            s.text
        );
    }
}
