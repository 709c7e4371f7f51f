//! Health endpoints for orchestrators: liveness (`/healthz`), readiness (`/readyz`) and
//! startup (`/startupz`), as in the Go seeds' `HealthHandler`.
//!
//! Readiness is false until the application says it is ready, and false again from the
//! moment the server starts draining, so a load balancer stops sending traffic before the
//! listener closes. Readiness can also depend on checks the application registers (a
//! database ping). These handlers never block, except for as long as such a check does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use crate::handler::Handler;
use crate::request::Request;
use crate::response::Response;
use crate::server::ServerState;
use crate::status;

/// Shared health state; cheap to clone.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    /// Reported by `/healthz`.
    version: String,
    /// For the uptime in `/healthz`.
    started_at: Instant,
    /// Set by the application once its dependencies are usable.
    ready: AtomicBool,
    /// Set by the application once its start-up work is done.
    started: AtomicBool,
    /// The server whose drain turns readiness off.
    server: OnceLock<ServerState>,
    /// Named dependency checks `/readyz` runs while otherwise ready (a database ping).
    checks: Mutex<Vec<(String, Arc<ReadinessCheck>)>>,
}

/// A readiness check: `Err` says why the dependency is not usable.
type ReadinessCheck = dyn Fn() -> Result<(), String> + Send + Sync;

impl Health {
    /// Health for an application of this version: not ready, not started.
    pub fn new(version: impl Into<String>) -> Self {
        Health {
            inner: Arc::new(Inner {
                version: version.into(),
                started_at: Instant::now(),
                ready: AtomicBool::new(false),
                started: AtomicBool::new(false),
                server: OnceLock::new(),
                checks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Marks the application ready (or not) to receive traffic.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    /// Marks start-up as finished (or not).
    pub fn set_started(&self, started: bool) {
        self.inner.started.store(started, Ordering::Release);
    }

    /// Makes readiness follow the server's drain: not ready once draining starts.
    pub fn watch(&self, state: ServerState) {
        let _ = self.inner.server.set(state);
    }

    /// Makes readiness depend on `check` too: `/readyz` runs it (on the worker that
    /// answers the probe) when the application is ready and not draining, and answers
    /// `503` with `name` and the error while it fails. Keep it short and bounded (a
    /// `SELECT 1` with a timeout): a probe waits for it.
    pub fn add_readiness_check(
        &self,
        name: impl Into<String>,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        let mut checks = self
            .inner
            .checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        checks.push((name.into(), Arc::new(check)));
    }

    /// True when ready and not draining (the registered checks are not run).
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire) && !self.is_draining()
    }

    /// The first registered check that fails: (its name, its error).
    fn failed_check(&self) -> Option<(String, String)> {
        // Run outside the lock: a slow check must not hold up registration or a probe.
        let checks = self
            .inner
            .checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        checks
            .into_iter()
            .find_map(|(name, check)| check().err().map(|e| (name, e)))
    }

    fn is_draining(&self) -> bool {
        self.inner.server.get().is_some_and(|s| s.is_draining())
    }

    /// `GET /healthz`: `200 {"status":"alive","version":…,"uptime":…,"uptime_seconds":…}`
    /// while the process can answer at all (seed 000's `LivenessHandler`, plus the uptime
    /// in whole seconds for machines).
    pub fn liveness(&self) -> impl Handler + use<> {
        let h = self.clone();
        move |_: &mut Request| {
            let up = h.inner.started_at.elapsed().as_secs();
            Response::json_text(format!(
                "{{\"status\":\"alive\",\"version\":{},\"uptime\":\"{}\",\"uptime_seconds\":{up}}}\n",
                json_string(&h.inner.version),
                human_duration(up)
            ))
            .with_header("Cache-Control", "no-store")
        }
    }

    /// `GET /readyz`: `200 {"status":"ready"}`, or `503 {"status":"not_ready"}` — the two
    /// answers of seed 000's `ReadinessHandler` — with the reason beside it while the
    /// server drains (`{"status":"not_ready","reason":"draining"}`), or a failing
    /// readiness check's name and error:
    /// `{"status":"not_ready","check":"database","error":"…"}`.
    pub fn readiness(&self) -> impl Handler + use<> {
        let h = self.clone();
        move |_: &mut Request| {
            let mut failed = None;
            let draining = h.is_draining();
            let status = if draining || !h.inner.ready.load(Ordering::Acquire) {
                "not_ready"
            } else {
                failed = h.failed_check();
                if failed.is_some() {
                    "not_ready"
                } else {
                    "ready"
                }
            };
            let code = if status == "ready" {
                status::OK
            } else {
                status::SERVICE_UNAVAILABLE
            };
            let detail = match failed {
                Some((name, error)) => format!(
                    ",\"check\":{},\"error\":{}",
                    json_string(&name),
                    json_string(&error)
                ),
                None if draining => ",\"reason\":\"draining\"".to_string(),
                None => String::new(),
            };
            Response::json_text(format!("{{\"status\":\"{status}\"{detail}}}\n"))
                .with_status(code)
                .with_header("Cache-Control", "no-store")
        }
    }

    /// `GET /startupz`: `200 {"status":"started"}` once start-up finished, else `503`.
    pub fn startup(&self) -> impl Handler + use<> {
        let h = self.clone();
        move |_: &mut Request| {
            let started = h.inner.started.load(Ordering::Acquire);
            let (code, status) = if started {
                (status::OK, "started")
            } else {
                (status::SERVICE_UNAVAILABLE, "starting")
            };
            Response::json_text(format!("{{\"status\":\"{status}\"}}\n"))
                .with_status(code)
                .with_header("Cache-Control", "no-store")
        }
    }
}

/// `3725` → `1h2m5s` (Go's `Duration.String` for whole seconds).
fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// A JSON string literal for `s`.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestRequest;

    #[test]
    fn readiness_follows_the_application_flag() {
        let h = Health::new("1.2.3");
        let ready = h.readiness();
        assert_eq!(TestRequest::get("/readyz").run(&ready).status(), 503);
        h.set_ready(true);
        let r = TestRequest::get("/readyz").run(&ready);
        assert_eq!(r.status(), 200);
        assert_eq!(r.body_bytes(), b"{\"status\":\"ready\"}\n");
    }

    #[test]
    fn a_failing_readiness_check_makes_readyz_503_and_names_it() {
        let h = Health::new("1");
        h.set_ready(true);
        let db_up = Arc::new(AtomicBool::new(true));
        let up = db_up.clone();
        h.add_readiness_check("database", move || {
            if up.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("ping failed: \"connection refused\"".into())
            }
        });
        let ready = h.readiness();
        assert_eq!(TestRequest::get("/readyz").run(&ready).status(), 200);
        db_up.store(false, Ordering::SeqCst);
        let r = TestRequest::get("/readyz").run(&ready);
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.body_bytes(),
            br#"{"status":"not_ready","check":"database","error":"ping failed: \"connection refused\""}"#
                .iter()
                .chain(b"\n")
                .copied()
                .collect::<Vec<_>>()
        );
        assert!(h.is_ready(), "is_ready reports the flags only");
    }

    #[test]
    fn liveness_reports_version_and_uptime() {
        let h = Health::new("v\"1");
        let r = TestRequest::get("/healthz").run(&h.liveness());
        assert_eq!(r.status(), 200);
        let body = String::from_utf8(r.body_bytes().to_vec()).unwrap();
        assert!(body.contains("\"version\":\"v\\\"1\""), "{body}");
        assert!(body.contains("\"uptime\":\"0s\""), "{body}");
        assert!(body.starts_with("{\"status\":\"alive\","), "{body}");
    }

    #[test]
    fn startup_turns_200_when_started() {
        let h = Health::new("1");
        assert_eq!(TestRequest::get("/").run(&h.startup()).status(), 503);
        h.set_started(true);
        assert_eq!(TestRequest::get("/").run(&h.startup()).status(), 200);
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(65), "1m5s");
        assert_eq!(human_duration(3725), "1h2m5s");
    }
}
