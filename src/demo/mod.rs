//! The demo service's routes: the Go seeds' service, route for route.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the demo page for browsers (`Accept: text/html`), a reachable line for others |
//! | `GET /assets/page.css`, `/assets/page.js` | the page's stylesheet and script |
//! | `GET /healthz`, `/readyz`, `/startupz` | health probes |
//! | `GET /parcels/{id}` | parcel lookup (a path parameter) |
//! | `GET`/`POST /api/v1/users`, `GET`/`PUT /api/v1/users/{id}` | users API: bearer auth, rate limit, idempotency |
//! | `GET /events` | server-sent events from a broadcast hub |
//! | `GET /debug/routes` | this table as JSON (`Router::routes`); `h1server --routes` prints it |
//!
//! Everything runs under recovery, request metadata, access log and a handler timeout.
//! [`logging`] is the binary's logger (text or JSON lines).

mod events;
pub mod logging;
mod page;
mod users;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use h1server::health::Health;
use h1server::middleware::{
    AccessLog, BearerAuth, Idempotency, RateLimit, Recovery, RequestId, Timeout,
};
use h1server::router::RouteInfo;
use h1server::{Handler, Request, Response, Router, Stack};

pub use events::Hub;

/// The token the users API accepts when none is configured. Public (the README prints
/// it), so the page may prefill it; any other token is a secret.
pub const DEV_TOKEN: &str = "dev-token";

/// The demo application's shared state.
pub struct App {
    pub health: Health,
    pub events: Arc<Hub>,
    users: Arc<users::Users>,
    page: Arc<page::Page>,
    token: String,
}

impl App {
    pub fn new(version: &str, token: String) -> Self {
        App {
            health: Health::new(version),
            events: Arc::new(Hub::default()),
            users: Arc::new(users::Users::default()),
            page: Arc::new(page::Page::new(version, &token)),
            token,
        }
    }

    /// The routes wrapped in the base middleware stack.
    pub fn handler(&self) -> impl Handler + use<> {
        Stack::new(self.router())
            .with(Recovery)
            .with(RequestId::default())
            .with(AccessLog)
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
            api.with(RateLimit::per_ip(20.0, 40))
                .with(BearerAuth::static_token(&self.token, "demo-user"))
                .with(Idempotency::new());
            users::routes(&mut api, &self.users);
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
