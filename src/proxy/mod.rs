//! # The reverse proxy (feature `proxy`)
//!
//! [`ReverseProxy`] forwards requests to upstream HTTP/1.1 servers chosen by path prefix
//! — seed 000's API gateway on Go's `httputil.ReverseProxy` — and is a [`Handler`], so it
//! mounts like any other: as the whole application, or under a router pattern.
//! This module owns the policy (the builder, the hooks, the error → status mapping) and
//! never does I/O itself: `headers.rs` rewrites heads, `upstreams.rs` chooses upstreams,
//! and `forward.rs` encodes each exchange for the event loop, which does all of its I/O
//! (`crate::forward`, `conn/forward.rs`; `docs/PROXY.md`).
//!
//! ```no_run
//! use std::time::Duration;
//! use h1server::proxy::ReverseProxy;
//! use h1server::{Config, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let proxy = ReverseProxy::builder()
//!     .route("/api/users", ["http://127.0.0.1:9001"])
//!     .route("/api/orders", ["http://127.0.0.1:9002", "http://127.0.0.1:9003"]) // round robin
//!     .response_header_timeout(Duration::from_secs(10))                     // then 504
//!     .modify_response(|resp| {
//!         resp.set_header("X-Proxy", "api-gateway");
//!         Ok(())
//!     })
//!     .build()?;
//! let config = Config { max_upload_bytes: 1 << 30, ..Config::from_env()? }; // stream big bodies
//! Server::bind(config)?.run(proxy)?;
//! # Ok(())
//! # }
//! ```

mod forward;
pub mod headers;
pub mod upstreams;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::warn;

use crate::client::{ClientError, TimeoutKind};
use crate::handler::Handler;
use crate::request::Request;
use crate::response::Response;

pub use self::upstreams::{Route, Table, Upstream, UpstreamStatus, parse_routes};

/// The request about to be sent upstream, as the [director](ProxyBuilder::director) sees
/// and may change it: hop-by-hop fields are already gone and `X-Forwarded-*` / `Via` set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// The method, as the client sent it.
    pub method: String,
    /// The origin-form target sent upstream: the upstream's base path joined with the
    /// client's `/path?query`.
    pub target: String,
    /// The `Host` sent upstream.
    pub host: String,
    /// Every other field, in order. `Content-Length` / `Transfer-Encoding` set here are
    /// ignored: the body decides the framing.
    pub headers: Vec<(String, String)>,
    /// `host:port` of the upstream chosen for this attempt (read-only: changing where a
    /// request goes is the route table's job).
    upstream: String,
}

impl OutgoingRequest {
    /// `host:port` of the upstream this attempt goes to.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// Replaces every field named `name` by one with `value`.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.remove_header(&name);
        self.headers.push((name, value.into()));
    }

    /// Removes every field named `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

/// The upstream's response head, as the [response modifier](ProxyBuilder::modify_response)
/// sees and may change it: hop-by-hop fields are already gone and `Via` added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamResponse {
    /// The upstream's status code.
    pub status: u16,
    /// Its fields, in order (UTF-8 values only; framing fields removed: the engine frames
    /// the body it sends).
    pub headers: Vec<(String, String)>,
    /// `host:port` of the upstream that answered.
    upstream: String,
}

impl UpstreamResponse {
    /// `host:port` of the upstream that answered.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// Replaces every field named `name` by one with `value`.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.remove_header(&name);
        self.headers.push((name, value.into()));
    }

    /// Removes every field named `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a request could not be proxied. [`status`](Self::status) is the one mapping from
/// failure to answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyError {
    /// No route's prefix matches the path.
    NoRoute {
        /// The request's path.
        path: String,
    },
    /// No upstream of the route accepted a connection (refused, unreachable); the
    /// request was never sent. `source` is the last attempt's error.
    Unreachable {
        /// `host:port` of the last upstream tried.
        upstream: String,
        /// What the last connection attempt said.
        source: ClientError,
    },
    /// An upstream did not answer in time: connect, write, the response head, or a body
    /// read.
    Timeout {
        /// `host:port` of the upstream.
        upstream: String,
        /// Which of the client's deadlines ran out.
        which: TimeoutKind,
    },
    /// The upstream failed after the connection was made: it closed or reset the
    /// connection, or sent something that is not a valid HTTP/1.1 response.
    Upstream {
        /// `host:port` of the upstream.
        upstream: String,
        /// What went wrong.
        source: ClientError,
    },
    /// The request could not be encoded for the upstream (a director set a header value
    /// with a control character, or a method that is not a token): a bug on our side.
    Invalid {
        /// `host:port` of the upstream.
        upstream: String,
        /// What the client refused.
        source: ClientError,
    },
}

impl ProxyError {
    /// Classifies a client error met while talking to `upstream`.
    pub fn from_client(upstream: &str, e: ClientError) -> ProxyError {
        let upstream = upstream.to_string();
        match e {
            ClientError::Timeout { which } => ProxyError::Timeout { upstream, which },
            e if e.is_connect() => ProxyError::Unreachable {
                upstream,
                source: e,
            },
            e @ (ClientError::InvalidRequest(_)
            | ClientError::InvalidUrl(_)
            | ClientError::TlsNotSupported) => ProxyError::Invalid {
                upstream,
                source: e,
            },
            e => ProxyError::Upstream {
                upstream,
                source: e,
            },
        }
    }

    /// The status the client gets (RFC 9110 §15.6.3, §15.6.5): `404` without a route,
    /// `504 Gateway Timeout` when an upstream was too slow (connecting included, as nginx
    /// answers), `500` for a request we could not encode, `502 Bad Gateway` for every
    /// other upstream failure.
    pub fn status(&self) -> u16 {
        match self {
            ProxyError::NoRoute { .. } => 404,
            ProxyError::Timeout { .. } => 504,
            ProxyError::Invalid { .. } => 500,
            ProxyError::Unreachable { .. } | ProxyError::Upstream { .. } => 502,
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::NoRoute { path } => write!(f, "no upstream route for {path}"),
            ProxyError::Unreachable { upstream, source } => {
                write!(f, "upstream {upstream} unreachable: {source}")
            }
            ProxyError::Timeout { upstream, which } => write!(
                f,
                "upstream {upstream} timed out: {}",
                ClientError::Timeout { which: *which }
            ),
            ProxyError::Upstream { upstream, source } => {
                write!(f, "upstream {upstream} failed: {source}")
            }
            ProxyError::Invalid { upstream, source } => {
                write!(f, "request for upstream {upstream} refused: {source}")
            }
        }
    }
}

impl std::error::Error for ProxyError {}

/// Changes the outgoing request (Go's `ReverseProxy.Director`, run after the standard
/// rewrite): add or remove headers, rewrite the target or `Host`.
pub type Director = dyn Fn(&mut OutgoingRequest) + Send + Sync;
/// Changes the upstream's response head before it goes out (Go's `ModifyResponse`);
/// `Err(response)` answers that instead (the upstream's body is discarded and its
/// connection closed).
pub type ModifyResponse = dyn Fn(&mut UpstreamResponse) -> Result<(), Response> + Send + Sync;
/// Answers a failure (Go's `ErrorHandler`). The default logs at `warn` and answers the
/// error's [`status`](ProxyError::status) with a one-line plain-text body.
pub type ErrorHandler = dyn Fn(&ProxyError) -> Response + Send + Sync;

/// Settings shared by every request (the `forward.rs` side reads them).
pub(crate) struct Inner {
    table: Table,
    director: Option<Box<Director>>,
    modify_response: Option<Box<ModifyResponse>>,
    /// Fields set on every upstream response after the standard rewrite, before
    /// `modify_response` (applied on the event loop when there is no hook).
    response_headers: Vec<(String, String)>,
    error_handler: Box<ErrorHandler>,
    /// How long a refused upstream is passed over.
    cooldown: Duration,
    /// Send the client's `Host` upstream instead of the upstream's authority.
    preserve_host: bool,
    /// This proxy's name in `Via` (`None`: no `Via` added).
    via: Option<String>,
    /// Longest wait for an upstream's `100 Continue` before a streamed body is sent anyway.
    expect_continue_timeout: Duration,
    /// The event loop's side of an exchange (`forward.rs`): its deadlines and pool size.
    connect_timeout: Duration,
    response_header_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    max_idle_per_host: usize,
}

/// A reverse proxy: a [`Handler`] forwarding each request to an upstream chosen by path
/// prefix. Build one with [`ReverseProxy::builder`]; cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct ReverseProxy {
    inner: Arc<Inner>,
}

impl fmt::Debug for ReverseProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReverseProxy")
            .field("routes", &self.inner.table.to_string())
            .finish_non_exhaustive()
    }
}

impl ReverseProxy {
    /// A builder with no route yet.
    pub fn builder() -> ProxyBuilder {
        ProxyBuilder::default()
    }

    /// A proxy sending every path to one upstream (Go's `NewSingleHostReverseProxy`).
    pub fn single(url: &str) -> Result<ReverseProxy, ProxyConfigError> {
        ReverseProxy::builder().route("/", [url]).build()
    }

    /// The health and counters of every upstream, route by route (longest prefix first).
    pub fn upstream_status(&self) -> Vec<(String, Vec<UpstreamStatus>)> {
        let now = Instant::now();
        self.inner
            .table
            .routes()
            .iter()
            .map(|r| {
                let ups = r.upstreams().iter().map(|u| u.status(now)).collect();
                (r.prefix().to_string(), ups)
            })
            .collect()
    }

    /// The route table, one line (`/api -> http://a/ | http://b/, ...`).
    pub fn routes(&self) -> String {
        self.inner.table.to_string()
    }
}

impl Handler for ReverseProxy {
    fn call(&self, req: &mut Request) -> Response {
        forward::serve(&self.inner, req)
    }
}

/// A configuration mistake, found by [`ProxyBuilder::build`]: the message names the
/// route or setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfigError(pub String);

impl fmt::Display for ProxyConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reverse proxy: {}", self.0)
    }
}

impl std::error::Error for ProxyConfigError {}

/// Settings of a [`ReverseProxy`]; each has a default.
#[must_use = "call build() to get the proxy"]
pub struct ProxyBuilder {
    routes: Vec<Result<Route, String>>,
    table: Option<Table>,
    connect_timeout: Duration,
    response_header_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    max_idle_per_host: usize,
    director: Option<Box<Director>>,
    modify_response: Option<Box<ModifyResponse>>,
    response_headers: Vec<(String, String)>,
    error_handler: Option<Box<ErrorHandler>>,
    cooldown: Duration,
    preserve_host: bool,
    via: Option<String>,
    expect_continue_timeout: Duration,
}

impl Default for ProxyBuilder {
    fn default() -> Self {
        ProxyBuilder {
            routes: Vec::new(),
            table: None,
            connect_timeout: Duration::from_secs(5),
            response_header_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_idle_per_host: 32,
            director: None,
            modify_response: None,
            response_headers: Vec::new(),
            error_handler: None,
            cooldown: Duration::from_secs(10),
            preserve_host: false,
            via: Some("h1server".to_string()),
            expect_continue_timeout: Duration::from_secs(1),
        }
    }
}

impl ProxyBuilder {
    /// Sends paths under `prefix` (at a segment boundary: `/api/users` serves
    /// `/api/users` and `/api/users/7`, not `/api/usersx`) to `urls`
    /// (`http://host[:port][/base]`), in round robin when there are several. The longest
    /// matching prefix wins; `/` catches the rest. Mistakes are reported by `build`.
    pub fn route<I, S>(mut self, prefix: &str, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let ups: Result<Vec<Upstream>, String> = urls
            .into_iter()
            .map(|u| Upstream::new(u.as_ref()))
            .collect();
        self.routes.push(ups.and_then(|u| Route::new(prefix, u)));
        self
    }

    /// Uses a ready table (e.g. from [`parse_routes`]) in place of `route` calls.
    pub fn table(mut self, table: Table) -> Self {
        self.table = Some(table);
        self
    }

    /// Longest wait for the TCP handshake with an upstream (default 5 s; then the next
    /// upstream is tried, and `504` when none is left).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Longest wait for the upstream's response head once the request is sent (default
    /// 30 s; Go: `Transport.ResponseHeaderTimeout`); then `504`.
    pub fn response_header_timeout(mut self, d: Duration) -> Self {
        self.response_header_timeout = d;
        self
    }

    /// Longest wait for each read of the upstream's body (default 30 s); then the body
    /// sent to the client is cut off (its connection closed: the client can tell).
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }

    /// Longest wait for the upstream to take each write of the request (default 30 s).
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.write_timeout = d;
        self
    }

    /// Idle keep-alive connections kept per upstream (default 32).
    pub fn max_idle_per_host(mut self, n: usize) -> Self {
        self.max_idle_per_host = n;
        self
    }

    /// How long an upstream that refused a connection is passed over (default 10 s,
    /// nginx's `fail_timeout`).
    pub fn health_cooldown(mut self, d: Duration) -> Self {
        self.cooldown = d;
        self
    }

    /// Sends the client's `Host` upstream (default false: the upstream's own
    /// `host[:port]`, as seed 000's director sets it).
    pub fn preserve_host(mut self, preserve: bool) -> Self {
        self.preserve_host = preserve;
        self
    }

    /// This proxy's pseudonym in `Via` (default `h1server`); `None` adds no `Via`.
    pub fn via(mut self, name: Option<&str>) -> Self {
        self.via = name.map(str::to_string);
        self
    }

    /// Longest wait for an upstream's `100 Continue` to a streamed body sent with
    /// `Expect: 100-continue` (default 1 s, Go's `ExpectContinueTimeout`); then the body
    /// goes anyway.
    pub fn expect_continue_timeout(mut self, d: Duration) -> Self {
        self.expect_continue_timeout = d;
        self
    }

    /// Changes each outgoing request after the standard rewrite (Go's `Director`).
    pub fn director(mut self, f: impl Fn(&mut OutgoingRequest) + Send + Sync + 'static) -> Self {
        self.director = Some(Box::new(f));
        self
    }

    /// Changes each upstream response head, or replaces the response (Go's
    /// `ModifyResponse`; an `Err` here is the answer, as Go's error goes to its
    /// `ErrorHandler`).
    pub fn modify_response(
        mut self,
        f: impl Fn(&mut UpstreamResponse) -> Result<(), Response> + Send + Sync + 'static,
    ) -> Self {
        self.modify_response = Some(Box::new(f));
        self
    }

    /// Sets the field `name` to `value` on every upstream response (replacing the
    /// upstream's), after the standard rewrite and before [`modify_response`]
    /// (Self::modify_response) — nginx's `add_header ... always`. A fixed field needs no
    /// hook: the event loop applies it, where a hook costs each response a worker's
    /// round trip. A name that is not a token or a value with a control character is
    /// refused by [`build`](Self::build).
    pub fn set_response_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.response_headers.push((name.into(), value.into()));
        self
    }

    /// Answers failures (Go's `ErrorHandler`; default: logged at `warn`, answered with
    /// [`ProxyError::status`] and a one-line text body).
    pub fn error_handler(
        mut self,
        f: impl Fn(&ProxyError) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.error_handler = Some(Box::new(f));
        self
    }

    /// The proxy, or the first configuration mistake.
    pub fn build(self) -> Result<ReverseProxy, ProxyConfigError> {
        let table = match self.table {
            Some(t) if self.routes.is_empty() => t,
            Some(_) => {
                return Err(ProxyConfigError(
                    "use either table() or route(), not both".to_string(),
                ));
            }
            None => {
                let routes = self
                    .routes
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(ProxyConfigError)?;
                if routes.is_empty() {
                    return Err(ProxyConfigError("no route configured".to_string()));
                }
                Table::new(routes).map_err(ProxyConfigError)?
            }
        };
        // A deadline is `now + timeout` on the event loop: one past `MAX_DURATION` could
        // overflow the `Instant` there (a panic), and 0 would fail every exchange.
        let timeouts = [
            ("connect_timeout", self.connect_timeout, false),
            (
                "response_header_timeout",
                self.response_header_timeout,
                false,
            ),
            ("read_timeout", self.read_timeout, false),
            ("write_timeout", self.write_timeout, false),
            (
                "expect_continue_timeout",
                self.expect_continue_timeout,
                true,
            ),
            ("health_cooldown", self.cooldown, true),
        ];
        for (name, d, zero_ok) in timeouts {
            if d > crate::config::MAX_DURATION {
                return Err(ProxyConfigError(format!("{name} {d:?}: at most 8760h")));
            }
            if d.is_zero() && !zero_ok {
                return Err(ProxyConfigError(format!("{name}: must be greater than 0")));
            }
        }
        for (name, value) in &self.response_headers {
            if name.is_empty() || !name.bytes().all(crate::http::parse::is_tchar) {
                return Err(ProxyConfigError(format!(
                    "set_response_header: {name:?} is not a field name (a token, RFC 9110 §5.1)"
                )));
            }
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(ProxyConfigError(format!(
                    "set_response_header: the value of {name} has a control character"
                )));
            }
        }
        Ok(ReverseProxy {
            inner: Arc::new(Inner {
                table,
                director: self.director,
                modify_response: self.modify_response,
                response_headers: self.response_headers,
                error_handler: self
                    .error_handler
                    .unwrap_or_else(|| Box::new(default_error)),
                cooldown: self.cooldown,
                preserve_host: self.preserve_host,
                via: self.via,
                expect_continue_timeout: self.expect_continue_timeout,
                connect_timeout: self.connect_timeout,
                response_header_timeout: self.response_header_timeout,
                read_timeout: self.read_timeout,
                write_timeout: self.write_timeout,
                max_idle_per_host: self.max_idle_per_host,
            }),
        })
    }
}

/// The default [`ErrorHandler`]: `warn` with the cause, then the status and its reason.
fn default_error(e: &ProxyError) -> Response {
    match e {
        ProxyError::NoRoute { .. } => log::debug!("proxy: {e}"),
        _ => warn!("proxy: {e}"),
    }
    Response::error(e.status(), "")
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
