//! The demo service's routes: the Go seeds' service, route for route.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the demo page for browsers (`Accept: text/html`), a reachable line for others |
//! | `GET /assets/page.css`, `/assets/page.js` | the page's stylesheet and script |
//! | `GET /healthz`, `/readyz`, `/startupz` | health probes (seeds 000, 002) |
//! | `GET /health`, `/ready` | the same liveness and readiness, under seeds 001 and 003's names |
//! | `GET /parcels/{id}` | parcel lookup (a path parameter) |
//! | `GET`/`POST /api/v1/users`, `GET`/`PUT /api/v1/users/{id}` | users API: bearer auth, rate limit, idempotency |
//! | `POST /api/v1/uploads` | a multipart form; files streamed to `DEMO_UPLOAD_DIR` ([`uploads`]) |
//! | `GET /events` | server-sent events from a broadcast hub |
//! | `GET /debug/routes` | this table as JSON (`Router::routes`); `h1server --routes` prints it |
//! | `GET /metrics` | Prometheus metrics (`h1server::metrics`); absent when `H1_METRICS_ADDR` serves them on their own listener |
//! | `GET /debug/requests` (+ `/json`, `/events`) | the lifecycle inspector, only with `DEMO_INSPECT=1` |
//!
//! Everything runs under recovery, request metadata, access log, CORS (seed 000's
//! `CORS([]string{"https://example.com"})`; `DEMO_CORS_ORIGINS`) and a handler timeout.
//! [`logging`] is the binary's logger (text or JSON lines); [`store`] holds the users and
//! the idempotency keys (SQLite or PostgreSQL), which handlers reach only through traits.

mod events;
pub mod logging;
mod page;
pub mod store;
pub mod uploads;
mod users;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use h1server::health::Health;
use h1server::inspect::Inspector;
use h1server::middleware::{
    AccessLog, BearerAuth, Cors, Idempotency, RateLimit, Recovery, RequestId, Timeout,
};
use h1server::router::RouteInfo;
use h1server::{Handler, Request, Response, Router, Stack, Telemetry};

pub use events::Hub;
pub use store::Stores;

/// The token the users API accepts when none is configured. Public (the README prints
/// it), so the page may prefill it; any other token is a secret.
pub const DEV_TOKEN: &str = "dev-token";

/// The origins browsers may call the service from when none are configured: seed 000's
/// `middleware.CORS([]string{"https://example.com"})`.
pub const DEFAULT_CORS_ORIGINS: &[&str] = &["https://example.com"];

/// Response headers cross-origin scripts may read beyond the safelisted ones: the ids to
/// quote in a bug report, where a created user is, when to retry, whether it was a replay.
const CORS_EXPOSE: &[&str] = &[
    "X-Request-ID",
    "X-Correlation-ID",
    "Location",
    "Retry-After",
    "Idempotent-Replayed",
];

/// The demo application's shared state.
pub struct App {
    pub health: Health,
    pub events: Arc<Hub>,
    stores: Stores,
    page: Arc<page::Page>,
    token: String,
    /// The server whose numbers `GET /metrics` serves: filled in once the server is bound
    /// (the routes exist before it, for `--routes`). `None` when the metrics have their
    /// own listener, and the route is left out (404 on the main port).
    metrics: Option<Arc<OnceLock<Telemetry>>>,
    /// The lifecycle inspector, when `DEMO_INSPECT=1` asked for it.
    inspector: Option<Inspector>,
    /// Where the upload route stores files (`DEMO_UPLOAD_DIR`).
    upload_dir: PathBuf,
    /// The users API's limit per client, (per second, burst); `None`: off.
    rate_limit: Option<(f64, u32)>,
    /// The limit keys clients by `X-Forwarded-For` (behind a proxy).
    trust_forwarded_for: bool,
    /// Origins allowed to call the service from a browser; empty: no CORS at all.
    cors_origins: Vec<String>,
}

impl App {
    /// The service on `stores`; `/readyz` fails while their database does not answer.
    pub fn new(version: &str, token: String, stores: Stores) -> Self {
        let health = Health::new(version);
        let users = stores.users.clone();
        health.add_readiness_check("database", move || {
            users.ping().map_err(|e| {
                log::warn!("readiness: {e}");
                e.public().to_string()
            })
        });
        App {
            health,
            events: Arc::new(Hub::default()),
            stores,
            page: Arc::new(page::Page::new(version, &token)),
            token,
            metrics: Some(Arc::default()),
            inspector: None,
            upload_dir: uploads::dir_from_env(),
            rate_limit: Some((20.0, 40)),
            trust_forwarded_for: false,
            cors_origins: DEFAULT_CORS_ORIGINS.iter().map(|o| o.to_string()).collect(),
        }
    }

    /// The origins allowed cross-origin (`"*"`: any); empty turns CORS off, so preflights
    /// reach the router (405) and no answer carries `Access-Control-*`.
    pub fn with_cors_origins(mut self, origins: Vec<String>) -> Self {
        self.cors_origins = origins;
        self
    }

    /// The users API's rate limit per client: `rate` per second, `burst` at once; `None`
    /// turns it off (behind a proxy every client has the proxy's address: limit there, or
    /// key by `X-Forwarded-For` with [`trust_forwarded_for`](App::trust_forwarded_for)).
    pub fn with_rate_limit(mut self, limit: Option<(f64, u32)>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Keys the rate limit's clients by `X-Forwarded-For`'s first address.
    pub fn trust_forwarded_for(mut self, trust: bool) -> Self {
        self.trust_forwarded_for = trust;
        self
    }

    /// Serves `GET /metrics` with `tel`'s numbers, or (`None`) leaves the route out
    /// because the metrics are served elsewhere.
    pub fn with_metrics(mut self, tel: Option<Telemetry>) -> Self {
        self.metrics = tel.map(|t| Arc::new(OnceLock::from(t)));
        self
    }

    /// Stores uploads in `dir` instead of the default directory.
    pub fn with_upload_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.upload_dir = dir;
        self
    }

    /// Serves `inspector` at `/debug/requests` (its ingest task is the caller's to start).
    pub fn with_inspector(mut self, inspector: Inspector) -> Self {
        self.inspector = Some(inspector);
        self
    }

    /// The routes wrapped in the base middleware stack, in seed 000's order (recovery,
    /// request id, logging, CORS), then the handler timeout of seed 003's base stack.
    pub fn handler(&self) -> impl Handler + use<> {
        let mut stack = Stack::new(self.router())
            .with(Recovery)
            .with(RequestId::default())
            .with(AccessLog);
        if !self.cors_origins.is_empty() {
            // Before the router, so a preflight (no credentials) is answered here and
            // never meets the users API's bearer auth or a 405.
            stack = stack.with(Cors::new(self.cors_origins.clone()).expose_headers(CORS_EXPOSE));
        }
        stack
            .with(uploads::refuse_streamed_elsewhere)
            .with(Timeout::new(Duration::from_secs(10)))
    }

    /// The routes alone (what `--routes` lists).
    pub fn router(&self) -> Router {
        let mut r = Router::new();
        let home = self.page.clone();
        r.get("/{$}", move |req: &mut Request| home.index(req));
        r.get("/assets/page.css", page::Page::css);
        r.get("/assets/page.js", page::Page::js);
        r.get("/healthz", self.health.liveness());
        r.get("/readyz", self.health.readiness());
        // Seeds 001 and 003 name the same probes `GET /health` and `GET /ready`.
        r.get("/health", self.health.liveness());
        r.get("/ready", self.health.readiness());
        r.get("/startupz", self.health.startup());
        r.get("/parcels/{id}", |req: &mut Request| {
            let id = req.param("id").unwrap_or_default();
            Response::text(format!("parcel lookup accepted for {id}\n"))
        });
        let hub = self.events.clone();
        r.get("/events", move |_: &mut Request| hub.subscribe());
        {
            let mut api = r.group("/api/v1");
            // Rate limit before auth, so failed logins are throttled too (token guessing).
            if let Some((rate, burst)) = self.rate_limit {
                api.with(
                    RateLimit::per_ip(rate, burst).trust_forwarded_for(self.trust_forwarded_for),
                );
            }
            api.with(BearerAuth::static_token(&self.token, "demo-user"))
                .with(Idempotency::new().with_store(self.stores.idempotency.clone()));
            users::routes(&mut api, &self.stores.users);
            api.post("/uploads", uploads::handler(self.upload_dir.clone()));
        }
        if let Some(tel) = &self.metrics {
            let tel = tel.clone();
            r.get("/metrics", move |_: &mut Request| match tel.get() {
                Some(tel) => h1server::metrics::response(tel),
                None => Response::error(503, "metrics are not wired to a server\n"),
            });
        }
        if let Some(inspector) = &self.inspector {
            inspector.routes(&mut r, "/debug/requests");
        }
        // The table is known only once every route (this one included) is registered.
        let table: Arc<OnceLock<Vec<RouteInfo>>> = Arc::default();
        let served = table.clone();
        r.get("/debug/routes", move |_: &mut Request| {
            Response::json(served.get().map_or(&[][..], Vec::as_slice))
        });
        let _ = table.set(r.routes());
        r
    }
}
