//! # The HTTP/1.1 client (feature `client`)
//!
//! The project's own client, on the same protocol core as the server (`http/`): requests
//! are encoded by `http::encode_request::write_request_head`, responses parsed by httparse and
//! decoded by the server's chunked decoder, in a sans-I/O state machine
//! ([`ClientConn`]) that a blocking driver runs here and an event loop can run later. No
//! other HTTP crate, no dependency beyond the engine's.
//!
//! This module never spawns a thread behind the caller's back (only [`fan_out`] does, and
//! says so) and never waits past a deadline it was given.
//!
//! ```no_run
//! use std::time::Duration;
//! use h1server::client::{BreakerPolicy, Client, RetryPolicy};
//!
//! # fn main() -> Result<(), h1server::client::ClientError> {
//! let client = Client::builder()
//!     .connect_timeout(Duration::from_secs(1))
//!     .response_header_timeout(Duration::from_secs(2))
//!     .timeout(Duration::from_secs(5))                 // the whole call, retries included
//!     .retry(RetryPolicy::exponential(3))               // idempotent requests only
//!     .breaker(BreakerPolicy::new(5, Duration::from_secs(10)))
//!     .build();
//! let resp = client.get("http://127.0.0.1:8080/healthz").send()?;
//! assert_eq!(resp.status(), 200);
//! println!("{}", resp.text()?);
//! # Ok(())
//! # }
//! ```
//!
//! Inside a handler, [`RequestBuilder::propagate`] carries the incoming request's ids to
//! the next service (seed 002). `docs/CLIENT.md` covers the timeouts, pooling, retries,
//! the breaker and what each [`ClientError`] means.
//!
//! Files, in the order a call runs through them: `request.rs` (the builder) → `call.rs`
//! (breaker, attempts, retries; `retry.rs`, `breaker.rs`) → `pool.rs` / `driver.rs` (a
//! connection, its socket and deadlines) → `conn.rs` (the protocol, sans-I/O) →
//! `response.rs` (the head and the body, back to the pool). `url.rs` parses URLs;
//! `fan_out.rs` runs several calls at once; `streamed.rs` sends a body piece by piece
//! ([`RequestBuilder::send_streamed`], for the reverse proxy's uploads).

mod breaker;
mod call;
mod conn;
mod driver;
mod error;
mod fan_out;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod pool;
mod request;
mod response;
pub(crate) mod retry;
mod streamed;
mod url;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use self::breaker::{Breaker, BreakerPolicy, BreakerState, Permit};
pub use self::conn::{BodyLength, ClientConn, Event, Limits, ResponseHead};
pub use self::error::{ClientError, TimeoutKind};
pub use self::fan_out::fan_out;
pub use self::request::RequestBuilder;
pub use self::response::{BodyReader, ClientResponse};
pub use self::retry::RetryPolicy;
pub use self::streamed::{Continue, StreamedRequest};
pub use self::url::Url;

use self::pool::Pool;

/// An HTTP/1.1 client with a keep-alive pool. Cheap to clone (the clones share the pool
/// and the breakers); make one per process or per upstream family and keep it.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<ClientInner>,
}

/// What every clone of a client shares.
#[derive(Debug)]
pub(crate) struct ClientInner {
    settings: Settings,
    /// Idle connections, shared with every response being read (to give theirs back).
    pool: Arc<Pool>,
    /// One breaker per `host:port`, made on first use when `settings.breaker` is set.
    breakers: Mutex<HashMap<String, Arc<Breaker>>>,
}

/// The builder's values.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    connect_timeout: Duration,
    response_header_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    timeout: Option<Duration>,
    idle_timeout: Duration,
    max_idle_per_host: usize,
    max_idle_total: usize,
    limits: Limits,
    retry: RetryPolicy,
    breaker: Option<BreakerPolicy>,
    user_agent: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connect_timeout: Duration::from_secs(10),
            response_header_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            timeout: None,
            idle_timeout: Duration::from_secs(30),
            max_idle_per_host: 8,
            max_idle_total: 64,
            limits: Limits::default(),
            retry: RetryPolicy::never(),
            breaker: None,
            user_agent: Some(concat!("h1server/", env!("CARGO_PKG_VERSION")).to_string()),
        }
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with the defaults of [`ClientBuilder`].
    pub fn new() -> Client {
        ClientBuilder::default().build()
    }

    /// A builder to set timeouts, pool sizes, limits, retries and the breaker.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A `GET` request.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request("GET", url)
    }

    /// A `HEAD` request.
    pub fn head(&self, url: &str) -> RequestBuilder {
        self.request("HEAD", url)
    }

    /// A `POST` request (not retried unless it carries an `Idempotency-Key`).
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request("POST", url)
    }

    /// A `PUT` request.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request("PUT", url)
    }

    /// A `PATCH` request (not retried unless it carries an `Idempotency-Key`).
    pub fn patch(&self, url: &str) -> RequestBuilder {
        self.request("PATCH", url)
    }

    /// A `DELETE` request.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request("DELETE", url)
    }

    /// A request with any method token (case-sensitive, RFC 9110 §9.1: `get` is not
    /// `GET`). An invalid URL or method is reported by `send`.
    pub fn request(&self, method: &str, url: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url)
    }

    /// Idle connections in the pool now, all upstreams together.
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.idle_count()
    }

    /// The breaker guarding `upstream` (`host:port`, as in [`Url::upstream`]), once a
    /// call to it has been made with breakers on.
    pub fn breaker(&self, upstream: &str) -> Option<Arc<Breaker>> {
        let map = self
            .inner
            .breakers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(upstream).cloned()
    }
}

impl ClientInner {
    /// The breaker for the URL's upstream, made on first use; None with breakers off.
    fn breaker_for(&self, url: &Url) -> Option<Arc<Breaker>> {
        let policy = self.settings.breaker?;
        let upstream = url.upstream();
        let mut map = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        let b = map
            .entry(upstream.clone())
            .or_insert_with(|| Arc::new(Breaker::new(upstream, policy)));
        Some(Arc::clone(b))
    }
}

/// Settings of a [`Client`]. Each has a default; the names follow Go's `http.Transport`
/// where it has the same knob (given in each method's docs).
#[derive(Clone, Debug, Default)]
#[must_use = "call build() to get the client"]
pub struct ClientBuilder {
    settings: Settings,
}

impl ClientBuilder {
    /// Longest wait for the TCP handshake, per address tried (default 10 s; Go:
    /// `net.Dialer.Timeout`). Name resolution is not covered (see `docs/CLIENT.md`).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.settings.connect_timeout = d;
        self
    }

    /// Longest wait for the response head once the request is written (default 30 s;
    /// Go: `Transport.ResponseHeaderTimeout`).
    pub fn response_header_timeout(mut self, d: Duration) -> Self {
        self.settings.response_header_timeout = d;
        self
    }

    /// Longest wait for any one read of the response body (default 30 s; Go has no
    /// equivalent: its body reads are bounded only by `Client.Timeout`).
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.settings.read_timeout = d;
        self
    }

    /// Longest wait for the socket to take the request (default 30 s).
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.settings.write_timeout = d;
        self
    }

    /// The total time of a call — connect, write, head, every retry and its wait, and
    /// reading the body — never exceeded (default none; Go: `Client.Timeout`).
    /// `RequestBuilder::timeout` overrides it per call.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.settings.timeout = Some(d);
        self
    }

    /// How long an idle pooled connection is kept (default 30 s; Go:
    /// `Transport.IdleConnTimeout`). Keep it below the servers' own keep-alive timeout
    /// (h1server's `idle_timeout` is 60 s, nginx's `keepalive_timeout` 75 s).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.settings.idle_timeout = d;
        self
    }

    /// Most idle connections kept per `host:port` (default 8; Go:
    /// `Transport.MaxIdleConnsPerHost`). 0 turns pooling off.
    pub fn max_idle_per_host(mut self, n: usize) -> Self {
        self.settings.max_idle_per_host = n;
        self
    }

    /// Most idle connections kept in all (default 64; Go: `Transport.MaxIdleConns`); past
    /// it the one idle longest is closed. 0 turns pooling off.
    pub fn max_idle_total(mut self, n: usize) -> Self {
        self.settings.max_idle_total = n;
        self
    }

    /// Longest response head accepted (default 64 KiB; Go:
    /// `Transport.MaxResponseHeaderBytes`), interim (1xx) heads before it included. The
    /// client never buffers more than this plus one 16 KiB read.
    pub fn max_response_head_bytes(mut self, n: usize) -> Self {
        self.settings.limits.max_head_bytes = n;
        self
    }

    /// Most header fields in a response head (default 100, at most 256).
    pub fn max_response_headers(mut self, n: usize) -> Self {
        self.settings.limits.max_headers = n;
        self
    }

    /// Largest response body, read whole or streamed (default 16 MiB; `u64::MAX` for
    /// none). A `Content-Length` above it fails at the head.
    pub fn max_response_body_bytes(mut self, n: u64) -> Self {
        self.settings.limits.max_body_bytes = n;
        self
    }

    /// The retry policy of every call (default [`RetryPolicy::never`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.settings.retry = policy;
        self
    }

    /// A circuit breaker per `host:port` with this policy (default: none).
    pub fn breaker(mut self, policy: BreakerPolicy) -> Self {
        self.settings.breaker = Some(policy);
        self
    }

    /// The `User-Agent` sent when a request sets none (default `h1server/<version>`);
    /// `None` sends none.
    pub fn user_agent(mut self, agent: Option<&str>) -> Self {
        self.settings.user_agent = agent.map(str::to_string);
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        let s = self.settings;
        let pool = Pool::new(s.max_idle_per_host, s.max_idle_total, s.idle_timeout);
        Client {
            inner: Arc::new(ClientInner {
                settings: s,
                pool: Arc::new(pool),
                breakers: Mutex::new(HashMap::new()),
            }),
        }
    }
}
