//! Access log: one structured (logfmt-style) line per request through
//! `log::info!(target: "h1server::access", ...)`, after the rest of the chain answered.
//! The same fields ride on the record as `log` key-values, so a structured logger (the
//! demo's `H1_LOG_FORMAT=json`) writes them as typed fields instead of parsing the line.
//!
//! It never logs what may hold secrets — no query string, no header other than the
//! validated ids — and never lets a value break the line: anything that is not plain
//! visible ASCII is quoted and escaped.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use log::{Level, info, log_enabled};

use crate::middleware::request_id::{CORRELATION_ID, REQUEST_ID, RequestMeta};
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;
use crate::status;

/// The `log` target of access lines, so they can be routed or filtered on their own
/// (`RUST_LOG=h1server::access=info`).
pub(crate) const TARGET: &str = "h1server::access";

/// Middleware that logs one line per request:
///
/// ```text
/// method=GET path=/x status=200 bytes=13 duration_ms=0.42 request_id=… correlation_id=… idempotency_key=- peer=127.0.0.1:5555
/// ```
///
/// `bytes` is the body length (`-` for a streamed body), `duration_ms` the time until the
/// rest of the chain returned its response (for a stream: until its head was ready), and
/// `-` stands for an absent id. When the rest of the chain panics the line says
/// `status=500 bytes=-` and ends with `panicked=true`, and the panic goes on unwinding
/// to [`Recovery`](crate::middleware::Recovery) (or the engine's guard), which answer 500.
/// The path is logged still percent-encoded and without the query, which may carry tokens. The ids come from [`RequestMeta`] (or, when the request
/// was taken away by a timeout, from the response's `X-Request-ID`/`X-Correlation-ID`),
/// so `AccessLog` may sit either side of [`RequestId`](crate::middleware::RequestId).
///
/// The record also carries every field as a `log` key-value, for loggers that write
/// structured output (the text line above stays the message): `method`, `path`,
/// `status` (number), `bytes` (number, null for a stream), `duration_ms` (number of
/// milliseconds, microsecond resolution), `request_id`, `correlation_id`,
/// `idempotency_key` (null when absent), `remote` (the peer address), `conn` (the
/// connection id) and `panicked` (bool).
///
/// Nothing is formatted when the `h1server::access` target is disabled at `info`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccessLog;

impl Middleware for AccessLog {
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        if !log_enabled!(target: TARGET, Level::Info) {
            return next.run(req);
        }
        run_logged(req, next, |r| {
            info!(
                target: TARGET,
                method = r.method,
                path = r.path,
                status = r.status,
                bytes = r.bytes,
                duration_ms = r.duration_ms(),
                request_id = r.request_id,
                correlation_id = r.correlation_id,
                idempotency_key = r.idempotency_key,
                remote:% = r.peer,
                conn = r.conn,
                panicked = r.panicked;
                "{}",
                format_line(r)
            )
        })
    }
}

/// Runs the rest of the chain and hands its access record to `emit` (also when it
/// panics, before the panic goes on unwinding).
fn run_logged(
    req: &mut Request,
    next: Next<'_>,
    emit: impl FnOnce(&AccessRecord<'_>) + Send + 'static,
) -> Response {
    // Taken before the chain runs: a timeout layer may swap the request away.
    let method = req.method_str().to_string();
    let path = req.path().to_string();
    let peer = req.peer_addr();
    let conn = req.conn_id();
    // The ids too, when an outer RequestId set them; inner layers may still set them.
    let before = RequestMeta::of(req).cloned();
    let t0 = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| next.run(req)));
    let duration = t0.elapsed();
    let meta = RequestMeta::of(req).or(before.as_ref());
    #[cfg(feature = "proxy")]
    let mut outcome = outcome;
    #[cfg(feature = "proxy")]
    if let Ok(resp) = outcome.as_mut()
        && resp.is_forward()
    {
        // The status comes from the upstream, later: the line waits for it (its duration
        // then includes the wait for the upstream's head).
        let owned = (
            method,
            path,
            meta.map(|m| m.request_id.clone()),
            meta.map(|m| m.correlation_id.clone()),
            meta.and_then(|m| m.idempotency_key.clone()),
        );
        let hook = Box::new(move |status: u16| {
            let (method, path, rid, cid, key) = owned;
            emit(&AccessRecord {
                method: &method,
                path: &path,
                status,
                bytes: None,
                duration: t0.elapsed(),
                request_id: rid.as_deref(),
                correlation_id: cid.as_deref(),
                idempotency_key: key.as_deref(),
                peer,
                conn,
                panicked: false,
            })
        });
        if resp.when_answered(hook).is_err() {
            unreachable!("a forwarded answer takes the hook");
        }
        return outcome.unwrap_or_else(|payload| resume_unwind(payload));
    }
    let resp = outcome.as_ref().ok();
    emit(&AccessRecord {
        method: &method,
        path: &path,
        // A panic goes on to Recovery (or the engine's guard), which answer 500.
        status: resp.map_or(status::INTERNAL_SERVER_ERROR, Response::status),
        bytes: resp.and_then(|r| (!r.is_stream()).then(|| r.body_bytes().len())),
        duration,
        request_id: meta
            .map(|m| m.request_id.as_str())
            .or_else(|| resp.and_then(|r| r.header(REQUEST_ID))),
        correlation_id: meta
            .map(|m| m.correlation_id.as_str())
            .or_else(|| resp.and_then(|r| r.header(CORRELATION_ID))),
        idempotency_key: meta.and_then(|m| m.idempotency_key.as_deref()),
        peer,
        conn,
        panicked: resp.is_none(),
    });
    outcome.unwrap_or_else(|payload| resume_unwind(payload))
}

/// Everything one access line says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AccessRecord<'a> {
    /// The method as sent.
    pub method: &'a str,
    /// The path, still percent-encoded, without the query.
    pub path: &'a str,
    /// The response status.
    pub status: u16,
    /// The body length; `None` for a streamed body.
    pub bytes: Option<usize>,
    /// How long the rest of the chain took.
    pub duration: Duration,
    /// `X-Request-ID`, when known.
    pub request_id: Option<&'a str>,
    /// `X-Correlation-ID`, when known.
    pub correlation_id: Option<&'a str>,
    /// `Idempotency-Key`, when the client sent one.
    pub idempotency_key: Option<&'a str>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The connection's id (not in the text line; a key-value for structured loggers).
    pub conn: u64,
    /// The rest of the chain panicked (the line then ends with `panicked=true`).
    pub panicked: bool,
}

impl AccessRecord<'_> {
    /// The duration in milliseconds, to the microsecond (the `duration_ms` key-value).
    fn duration_ms(&self) -> f64 {
        self.duration.as_micros() as f64 / 1000.0
    }
}

/// Formats one access line (`key=value` pairs separated by single spaces).
pub(crate) fn format_line(r: &AccessRecord<'_>) -> String {
    let mut out = String::with_capacity(160);
    push_pair(&mut out, "method", r.method);
    push_pair(&mut out, "path", r.path);
    let _ = write!(out, " status={}", r.status);
    match r.bytes {
        Some(n) => {
            let _ = write!(out, " bytes={n}");
        }
        None => out.push_str(" bytes=-"),
    }
    let _ = write!(out, " duration_ms={:.2}", r.duration.as_secs_f64() * 1000.0);
    push_pair(&mut out, "request_id", r.request_id.unwrap_or("-"));
    push_pair(&mut out, "correlation_id", r.correlation_id.unwrap_or("-"));
    push_pair(
        &mut out,
        "idempotency_key",
        r.idempotency_key.unwrap_or("-"),
    );
    let _ = write!(out, " peer={}", r.peer);
    if r.panicked {
        out.push_str(" panicked=true");
    }
    out
}

/// Appends ` key=value`, quoting the value unless it is plain.
fn push_pair(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(key);
    out.push('=');
    if is_plain(value) {
        out.push_str(value);
    } else {
        // Debug quotes the string and escapes `"`, `\` and every control character
        // (`\n`, `\r`, `\u{1b}`), so a value can never forge a second line.
        let _ = write!(out, "{value:?}");
    }
}

/// A value that needs no quoting: non-empty visible ASCII without `"`, `\` or `=`.
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::{RequestId, Stack};
    use crate::testing::TestRequest;

    fn record<'a>() -> AccessRecord<'a> {
        AccessRecord {
            method: "GET",
            path: "/x",
            status: 200,
            bytes: Some(13),
            duration: Duration::from_micros(420),
            request_id: Some("req-1"),
            correlation_id: Some("flow-1"),
            idempotency_key: None,
            peer: "127.0.0.1:5555".parse().unwrap(),
            conn: 7,
            panicked: false,
        }
    }

    #[test]
    fn line_has_every_field_in_order() {
        assert_eq!(
            format_line(&record()),
            "method=GET path=/x status=200 bytes=13 duration_ms=0.42 request_id=req-1 \
             correlation_id=flow-1 idempotency_key=- peer=127.0.0.1:5555"
        );
    }

    #[test]
    fn duration_key_value_is_milliseconds_to_the_microsecond() {
        assert_eq!(record().duration_ms(), 0.42);
        let r = AccessRecord {
            duration: Duration::from_nanos(1_234_567_890),
            ..record()
        };
        assert_eq!(r.duration_ms(), 1234.567);
    }

    #[test]
    fn streamed_bodies_and_absent_ids_read_as_dash() {
        let r = AccessRecord {
            bytes: None,
            request_id: None,
            correlation_id: None,
            ..record()
        };
        let line = format_line(&r);
        assert!(line.contains(" bytes=- "), "{line}");
        assert!(
            line.contains(" request_id=- correlation_id=- idempotency_key=- "),
            "{line}"
        );
    }

    #[test]
    fn values_with_spaces_quotes_or_newlines_are_quoted_and_escaped() {
        let r = AccessRecord {
            idempotency_key: Some("a b\"c\\d\nstatus=999"),
            path: "/a=b",
            ..record()
        };
        let line = format_line(&r);
        assert!(line.contains(r#" path="/a=b" "#), "{line}");
        assert!(
            line.contains(r#" idempotency_key="a b\"c\\d\nstatus=999" "#),
            "{line}"
        );
        assert!(!line.contains('\n'), "one line, always");
        let empty = AccessRecord {
            request_id: Some(""),
            ..record()
        };
        assert!(format_line(&empty).contains(r#" request_id="" "#));
    }

    #[test]
    fn ipv6_peers_and_extension_methods_are_logged_as_is() {
        let r = AccessRecord {
            method: "PROPFIND",
            peer: "[::1]:8080".parse().unwrap(),
            ..record()
        };
        let line = format_line(&r);
        assert!(line.starts_with("method=PROPFIND "), "{line}");
        assert!(line.ends_with(" peer=[::1]:8080"), "{line}");
    }

    #[test]
    fn a_panicked_request_is_logged_as_500_with_a_marker() {
        let r = AccessRecord {
            status: 500,
            bytes: None,
            panicked: true,
            ..record()
        };
        let line = format_line(&r);
        assert!(line.contains(" status=500 bytes=- "), "{line}");
        assert!(
            line.ends_with(" peer=127.0.0.1:5555 panicked=true"),
            "{line}"
        );
    }

    /// A stack whose logging layer hands its lines to the returned vector.
    fn captured(
        app: impl crate::Handler,
        outer_recovery: bool,
    ) -> (Stack, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let mut stack = Stack::new(app);
        if outer_recovery {
            stack = stack.with(crate::middleware::Recovery);
        }
        let stack = stack
            .with(move |req: &mut Request, next: Next<'_>| {
                let sink = sink.clone();
                run_logged(req, next, move |r| {
                    sink.lock().unwrap().push(format_line(r))
                })
            })
            .with(RequestId::default());
        (stack, lines)
    }

    #[test]
    fn the_middleware_logs_status_bytes_and_the_ids_set_by_an_inner_request_id() {
        let (app, lines) = captured(|_: &mut Request| Response::text("hello"), false);
        let resp = TestRequest::get("/x?token=secret")
            .header("X-Request-ID", "r-5")
            .header("Idempotency-Key", "k 1")
            .run(&app);
        assert_eq!(resp.body_bytes(), b"hello");
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert!(
            line.starts_with("method=GET path=/x status=200 bytes=5 duration_ms="),
            "{line}"
        );
        assert!(
            line.ends_with(
                " request_id=r-5 correlation_id=r-5 idempotency_key=\"k 1\" peer=127.0.0.1:40000"
            ),
            "{line}"
        );
        assert!(!line.contains("secret"), "no query string");
    }

    #[test]
    fn a_panicking_handler_is_logged_then_answered_500_by_the_outer_recovery() {
        let (app, lines) = captured(|_: &mut Request| -> Response { panic!("inner bug") }, true);
        assert_eq!(TestRequest::get("/p").run(&app).status(), 500);
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains(" status=500 bytes=- "), "{}", lines[0]);
        assert!(lines[0].ends_with(" panicked=true"), "{}", lines[0]);
    }

    #[test]
    fn middleware_passes_the_response_through() {
        let app = Stack::new(|_: &mut Request| Response::text("hello"))
            .with(AccessLog)
            .with(RequestId::default());
        let resp = TestRequest::get("/x?token=secret").run(&app);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body_bytes(), b"hello");
    }
}
