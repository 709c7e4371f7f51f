//! Access log: one structured (logfmt-style) line per request through
//! `log::info!(target: "h1server::access", ...)`, after the rest of the chain answered.
//!
//! It never logs what may hold secrets — no query string, no header other than the
//! validated ids — and never lets a value break the line: anything that is not plain
//! visible ASCII is quoted and escaped.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{Level, info, log_enabled};

use crate::middleware::request_id::{CORRELATION_ID, REQUEST_ID, RequestMeta};
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;

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
/// `-` stands for an absent id. The path is logged still percent-encoded and without the
/// query, which may carry tokens. The ids come from [`RequestMeta`] (or, when the request
/// was taken away by a timeout, from the response's `X-Request-ID`/`X-Correlation-ID`),
/// so `AccessLog` may sit either side of [`RequestId`](crate::middleware::RequestId).
///
/// Nothing is formatted when the `h1server::access` target is disabled at `info`.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccessLog;

impl Middleware for AccessLog {
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        if !log_enabled!(target: TARGET, Level::Info) {
            return next.run(req);
        }
        // Taken before the chain runs: a timeout layer may swap the request away.
        let method = req.method_str().to_string();
        let path = req.path().to_string();
        let peer = req.peer_addr();
        let t0 = Instant::now();
        let resp = next.run(req);
        let duration = t0.elapsed();
        let meta = RequestMeta::of(req);
        let line = format_line(&AccessRecord {
            method: &method,
            path: &path,
            status: resp.status(),
            bytes: (!resp.is_stream()).then(|| resp.body_bytes().len()),
            duration,
            request_id: meta
                .map(|m| m.request_id.as_str())
                .or_else(|| resp.header(REQUEST_ID)),
            correlation_id: meta
                .map(|m| m.correlation_id.as_str())
                .or_else(|| resp.header(CORRELATION_ID)),
            idempotency_key: meta.and_then(|m| m.idempotency_key.as_deref()),
            peer,
        });
        info!(target: TARGET, "{line}");
        resp
    }
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
    let _ = write!(
        out,
        " duration_ms={:.2}",
        r.duration.as_secs_f64() * 1000.0
    );
    push_pair(&mut out, "request_id", r.request_id.unwrap_or("-"));
    push_pair(&mut out, "correlation_id", r.correlation_id.unwrap_or("-"));
    push_pair(&mut out, "idempotency_key", r.idempotency_key.unwrap_or("-"));
    let _ = write!(out, " peer={}", r.peer);
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
    fn middleware_passes_the_response_through() {
        let app = Stack::new(|_: &mut Request| Response::text("hello"))
            .with(AccessLog)
            .with(RequestId);
        let resp = TestRequest::get("/x?token=secret").run(&app);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body_bytes(), b"hello");
    }
}
