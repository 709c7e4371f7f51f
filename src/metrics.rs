//! Prometheus metrics: a [`Snapshot`] of the server's counters rendered in the text
//! exposition format 0.0.4, and a handler that serves it.
//!
//! It only formats what [`Telemetry::snapshot`] summed; it never touches the engine's
//! counters, a socket or a clock. docs/METRICS.md lists every metric, its labels and how to
//! scrape it.
//!
//! ```no_run
//! use h1server::{Config, Router, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(Config::from_env()?)?;
//! let mut app = Router::new();
//! app.get("/metrics", h1server::metrics::handler(server.telemetry()));
//! server.run(app)?;
//! # Ok(())
//! # }
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use crate::telemetry::{BUCKETS_NS, HistogramSnapshot, Snapshot};
use crate::{Handler, Request, Response, Telemetry};

/// The `Content-Type` of the text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `route` label of requests no route matched: answers the router made itself (404,
/// 405, a trailing-slash redirect), requests refused before any handler ran (400s, 503s
/// when shedding load) and servers without a router. A real pattern always begins with
/// `/`, so it cannot be mistaken for one.
pub const NO_ROUTE: &str = "(none)";

/// Writes `snapshot` to `out` in the Prometheus text format 0.0.4: every family with its
/// `# HELP` and `# TYPE` lines, counters named `…_total`, histograms as cumulative
/// `_bucket{le="…"}` series ending with `+Inf`, then `_sum` (seconds) and `_count`.
/// Appends to `out` (a scrape can reuse its buffer).
pub fn render(snapshot: &Snapshot, out: &mut String) {
    let s = snapshot;
    let mut w = Writer(out);

    w.family(
        "h1_uptime_seconds",
        "gauge",
        "Seconds since the server was bound.",
    );
    w.sample("h1_uptime_seconds", &[], Seconds(s.uptime));

    w.family(
        "h1_connections_accepted_total",
        "counter",
        "Connections accepted.",
    );
    w.sample("h1_connections_accepted_total", &[], s.accepted);
    w.family("h1_connections_open", "gauge", "Connections open now.");
    w.sample("h1_connections_open", &[], s.open);
    w.family(
        "h1_connections_closed_total",
        "counter",
        "Connections closed, by reason.",
    );
    for (reason, n) in &s.closed {
        w.sample("h1_connections_closed_total", &[("reason", reason)], n);
    }

    w.family(
        "h1_requests_total",
        "counter",
        "Requests answered, by method, status class and matched route pattern.",
    );
    let mut code = String::with_capacity(3);
    for r in &s.requests {
        code.clear();
        let _ = write!(code, "{}xx", r.class);
        let route = r.route.as_deref().unwrap_or(NO_ROUTE);
        let labels = [("method", r.method), ("code", &code), ("route", route)];
        w.sample("h1_requests_total", &labels, r.count);
    }
    w.family(
        "h1_requests_shed_total",
        "counter",
        "Requests refused with 503 because the job queue was full or the memory budget spent.",
    );
    w.sample("h1_requests_shed_total", &[], s.shed);

    w.family(
        "h1_stage_duration_seconds",
        "histogram",
        "Time each request spent in a stage: parse, queue (waiting for a worker), handler, write.",
    );
    for (stage, h) in &s.stages {
        w.histogram("h1_stage_duration_seconds", ("stage", stage), h);
    }

    w.family(
        "h1_bytes_received_total",
        "counter",
        "Request bytes read from sockets.",
    );
    w.sample("h1_bytes_received_total", &[], s.bytes_in);
    w.family(
        "h1_bytes_sent_total",
        "counter",
        "Response bytes written to sockets.",
    );
    w.sample("h1_bytes_sent_total", &[], s.bytes_out);

    w.family(
        "h1_deadlines_fired_total",
        "counter",
        "Connection deadlines that expired, by kind.",
    );
    for (kind, n) in &s.deadlines {
        w.sample("h1_deadlines_fired_total", &[("kind", kind)], n);
    }

    w.family("h1_queue_depth", "gauge", "Jobs waiting for a worker.");
    w.sample("h1_queue_depth", &[], s.queue_depth);
    w.family("h1_workers_busy", "gauge", "Workers running a job now.");
    w.sample("h1_workers_busy", &[], s.busy_workers);
    w.family("h1_workers", "gauge", "Worker threads configured.");
    w.sample("h1_workers", &[], s.workers);

    w.family(
        "h1_streams_open",
        "gauge",
        "Streamed responses in progress.",
    );
    let open = s.streams_started.saturating_sub(s.streams_ended);
    w.sample("h1_streams_open", &[], open);
    w.family("h1_streams_total", "counter", "Streamed responses started.");
    w.sample("h1_streams_total", &[], s.streams_started);
    w.family(
        "h1_upgrades_total",
        "counter",
        "Connections that switched protocols (an upgrade callback, or a WebSocket served by the loop).",
    );
    w.sample("h1_upgrades_total", &[], s.upgrades);
    w.family(
        "h1_websockets_open",
        "gauge",
        "WebSocket connections the event loops serve now.",
    );
    w.sample("h1_websockets_open", &[], s.websockets_open);
    w.family(
        "h1_websocket_messages_received_total",
        "counter",
        "WebSocket messages (text and binary) read from clients.",
    );
    w.sample(
        "h1_websocket_messages_received_total",
        &[],
        s.websocket_messages_in,
    );
    w.family(
        "h1_events_dropped_total",
        "counter",
        "Recorded request events dropped because nobody read them in time.",
    );
    w.sample("h1_events_dropped_total", &[], s.events_dropped);
}

/// The metrics of `tel` now, as a `200` answer in the text format.
pub fn response(tel: &Telemetry) -> Response {
    let mut body = String::with_capacity(8 * 1024);
    render(&tel.snapshot(), &mut body);
    Response::new(200)
        .with_header("Content-Type", CONTENT_TYPE)
        .with_header("Cache-Control", "no-store")
        .with_body(body.into_bytes())
}

/// A handler answering every request with the metrics of `tel` (mount it on a route:
/// `router.get("/metrics", metrics::handler(server.telemetry()))`).
pub fn handler(tel: Telemetry) -> impl Handler {
    move |_: &mut Request| response(&tel)
}

/// A duration written in seconds, exactly (`0.000005`, `2.5`, `10`): a decimal, so a
/// bucket's `le` is the same string on every scrape.
struct Seconds(Duration);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        if nanos == 0 {
            return write!(f, "{secs}");
        }
        let frac = format!("{nanos:09}");
        write!(f, "{secs}.{}", frac.trim_end_matches('0'))
    }
}

struct Writer<'a>(&'a mut String);

impl Writer<'_> {
    /// `# HELP` and `# TYPE` of one family (written once, before its samples).
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let out = &mut *self.0;
        let _ = write!(out, "# HELP {name} ");
        for c in help.chars() {
            // Text format: in HELP, `\` and line feed are escaped.
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        let _ = writeln!(out, "\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let out = &mut *self.0;
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label(out, v);
                out.push('"');
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }

    /// One labelled histogram: cumulative buckets, `+Inf` (the total), sum, count.
    fn histogram(&mut self, name: &str, label: (&str, &str), h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        let mut le = String::new();
        let mut cumulative = 0u64;
        for (i, bound) in BUCKETS_NS.iter().enumerate() {
            cumulative += h.counts.get(i).copied().unwrap_or(0);
            le.clear();
            let _ = write!(le, "{}", Seconds(Duration::from_nanos(*bound)));
            self.sample(&bucket, &[label, ("le", &le)], cumulative);
        }
        let count = h.count();
        self.sample(&bucket, &[label, ("le", "+Inf")], count);
        self.sample(&format!("{name}_sum"), &[label], Seconds(h.sum));
        self.sample(&format!("{name}_count"), &[label], count);
    }
}

/// Text format: in a label value, `\`, `"` and line feed are escaped.
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::RequestCount;
    use std::sync::Arc;

    fn rendered(s: &Snapshot) -> String {
        let mut out = String::new();
        render(s, &mut out);
        out
    }

    fn lines_of<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn seconds_are_exact_decimals() {
        let cases: [(u64, &str); 7] = [
            (0, "0"),
            (5_000, "0.000005"),
            (25_000, "0.000025"),
            (1_000_000, "0.001"),
            (2_500_000_000, "2.5"),
            (10_000_000_000, "10"),
            (1_234_567_891, "1.234567891"),
        ];
        for (ns, want) in cases {
            assert_eq!(Seconds(Duration::from_nanos(ns)).to_string(), want, "{ns}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let snap = Snapshot {
            requests: vec![RequestCount {
                method: "GET",
                class: 2,
                route: Some(Arc::from("/a\\b/\"q\"/\nx")),
                count: 3,
            }],
            ..Snapshot::default()
        };
        let text = rendered(&snap);
        assert!(
            text.contains(
                "h1_requests_total{method=\"GET\",code=\"2xx\",route=\"/a\\\\b/\\\"q\\\"/\\nx\"} 3\n"
            ),
            "{text}"
        );
        let mut help = String::new();
        Writer(&mut help).family("x", "gauge", "a\\b\nc \"q\"");
        assert_eq!(help, "# HELP x a\\\\b\\nc \"q\"\n# TYPE x gauge\n");
    }

    #[test]
    fn requests_without_a_route_get_the_placeholder() {
        let snap = Snapshot {
            requests: vec![RequestCount {
                method: "OTHER",
                class: 5,
                route: None,
                count: 1,
            }],
            ..Snapshot::default()
        };
        assert!(
            rendered(&snap)
                .contains("h1_requests_total{method=\"OTHER\",code=\"5xx\",route=\"(none)\"} 1\n")
        );
    }

    #[test]
    fn buckets_are_cumulative_and_end_with_inf_sum_and_count() {
        let mut counts = vec![0u64; BUCKETS_NS.len() + 1];
        counts[0] = 2; // ≤ 5 µs
        counts[3] = 1; // ≤ 50 µs
        counts[BUCKETS_NS.len() - 1] = 4; // ≤ 10 s
        counts[BUCKETS_NS.len()] = 3; // > 10 s
        let snap = Snapshot {
            stages: vec![(
                "handler",
                HistogramSnapshot {
                    counts,
                    sum: Duration::from_millis(61_500),
                },
            )],
            ..Snapshot::default()
        };
        let text = rendered(&snap);
        let buckets = lines_of(&text, "h1_stage_duration_seconds_bucket{stage=\"handler\"");
        assert_eq!(buckets.len(), BUCKETS_NS.len() + 1);
        assert_eq!(
            buckets[0],
            "h1_stage_duration_seconds_bucket{stage=\"handler\",le=\"0.000005\"} 2"
        );
        assert!(buckets[2].ends_with("le=\"0.000025\"} 2"), "{}", buckets[2]);
        assert!(buckets[3].ends_with("le=\"0.00005\"} 3"), "{}", buckets[3]);
        assert!(buckets[18].ends_with("le=\"5\"} 3"), "{}", buckets[18]);
        assert!(buckets[19].ends_with("le=\"10\"} 7"), "{}", buckets[19]);
        assert!(buckets[20].ends_with("le=\"+Inf\"} 10"), "{}", buckets[20]);
        // Never decreasing.
        let values: Vec<u64> = buckets
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
        assert!(text.contains("h1_stage_duration_seconds_sum{stage=\"handler\"} 61.5\n"));
        assert!(text.contains("h1_stage_duration_seconds_count{stage=\"handler\"} 10\n"));
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples_and_appears_once() {
        let snap = Snapshot {
            closed: vec![("done", 4), ("idle_timeout", 1)],
            deadlines: vec![("header", 2)],
            stages: vec![("queue", HistogramSnapshot::default())],
            accepted: 5,
            streams_started: 3,
            streams_ended: 1,
            ..Snapshot::default()
        };
        let text = rendered(&snap);
        let mut seen: Vec<String> = Vec::new();
        let mut current: Option<(String, String)> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_string();
                assert!(!seen.contains(&name), "{name} twice");
                seen.push(name);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(Some(name), seen.last().map(String::as_str));
                current = Some((name.to_string(), kind.to_string()));
            } else {
                let (family, kind) = current.clone().expect("a sample before any TYPE");
                let name = line.split(['{', ' ']).next().unwrap();
                let ok = match kind.as_str() {
                    "histogram" => ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| name == format!("{family}{s}")),
                    "counter" => name == family && name.ends_with("_total"),
                    _ => name == family,
                };
                assert!(ok, "{line} under {family} {kind}");
            }
        }
        for name in [
            "h1_uptime_seconds",
            "h1_connections_accepted_total",
            "h1_connections_open",
            "h1_connections_closed_total",
            "h1_requests_total",
            "h1_requests_shed_total",
            "h1_stage_duration_seconds",
            "h1_bytes_received_total",
            "h1_bytes_sent_total",
            "h1_deadlines_fired_total",
            "h1_queue_depth",
            "h1_workers_busy",
            "h1_workers",
            "h1_streams_open",
            "h1_streams_total",
            "h1_upgrades_total",
            "h1_websockets_open",
            "h1_websocket_messages_received_total",
            "h1_events_dropped_total",
        ] {
            assert!(seen.iter().any(|s| s == name), "{name} missing");
        }
        assert!(text.contains("h1_connections_closed_total{reason=\"idle_timeout\"} 1\n"));
        assert!(text.contains("h1_deadlines_fired_total{kind=\"header\"} 2\n"));
        assert!(text.contains("h1_streams_open 2\n"));
        // An empty histogram still has every bucket, at 0.
        assert!(text.contains("h1_stage_duration_seconds_bucket{stage=\"queue\",le=\"+Inf\"} 0\n"));
        assert!(text.ends_with('\n'));
    }
}
