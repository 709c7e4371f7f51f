//! The lifecycle inspector: a page that draws every recent request as a waterfall of its
//! stages (parse, queue wait, handler, write), live.
//!
//! It reads the server's [`Telemetry`] event ring (turned on by [`Inspector::new`]) from
//! one background thread, keeps a bounded history, and pushes each new event to the open
//! pages over server-sent events; it never touches a socket or the event loop, and no
//! handler of it waits: the page, the JSON and the SSE subscription all return at once.
//!
//! ```no_run
//! use h1server::inspect::Inspector;
//! use h1server::{Config, Request, Response, Router, Server};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(Config::from_env()?)?;
//! let inspector = Inspector::new(server.telemetry(), 500);
//! let mut app = Router::new();
//! app.get("/hello", |_: &mut Request| Response::text("hi\n"));
//! inspector.routes(&mut app, "/debug/requests"); // the page, /json and /events
//! let ingest = inspector.clone();
//! server
//!     .spawn_task("inspector", move |token| ingest.run(token))
//!     .run(app)?;
//! # Ok(())
//! # }
//! ```
//!
//! What it shows is safe to show to whoever may see the server's access log: never a
//! body, and the values of `Authorization`, `Proxy-Authorization` and `Cookie` are
//! redacted before a record leaves the worker. It is off unless mounted; to put it behind
//! authentication, mount it in a router group with [`BearerAuth`](crate::middleware::BearerAuth):
//!
//! ```no_run
//! # use h1server::inspect::Inspector;
//! # use h1server::middleware::BearerAuth;
//! # fn f(inspector: Inspector, app: &mut h1server::Router) {
//! let mut debug = app.group("/debug/requests");
//! debug.with(BearerAuth::static_token("s3cret", "operator"));
//! inspector.mount(&mut debug);
//! # }
//! ```
//!
//! The inspector's own requests (the page, its JSON, its event stream) are left out of
//! the history, so watching does not fill it. (It learns its routes from the requests its
//! handlers answer: requests refused before any reached them, e.g. a `401` from the auth
//! middleware, are shown until then.) Each record holds its request's header fields, so
//! the history takes at most `capacity` × `max_head_bytes`, and typically about a
//! kilobyte per request.

mod json;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::router::Group;
use crate::telemetry::{Event, RequestRecord, Stamp, Telemetry};
use crate::{Request, Response, Router, ShutdownToken, StreamSender, TrySendError, status};

/// The page: HTML, CSS and JavaScript in one file, nothing fetched from elsewhere.
const PAGE: &str = concat!(
    include_str!("page_head.html"),
    "<style>\n",
    include_str!("page.css"),
    "</style>\n",
    include_str!("page_body.html"),
    "<script>\n",
    include_str!("page.js"),
    "</script>\n</body>\n</html>\n"
);

/// How often the background thread drains the event ring and pushes to the pages.
const INGEST_EVERY: Duration = Duration::from_millis(150);

/// An SSE comment this often, so a page whose client left is noticed and dropped.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

/// Events taken from the ring in one pass (the ring holds at most twice the capacity).
const TAKE_MAX: usize = 4096;

/// Open pages at most; one more is refused with 503 (each holds a connection and a
/// stream buffer, and the broadcast is one `try_send` per page).
const MAX_SUBSCRIBERS: usize = 64;

/// The lifecycle inspector: a bounded history of finished requests and connection ends,
/// and the handlers that serve it (see the [module docs](self)). Cheap to clone.
#[derive(Clone)]
pub struct Inspector {
    inner: Arc<Inner>,
}

struct Inner {
    tel: Telemetry,
    /// Requests kept (and connection ends).
    capacity: usize,
    /// Updated by `ingest` only, which holds the lock while it takes events from the
    /// ring and broadcasts them, so every page sees events in `ev` order.
    history: Mutex<History>,
    /// Open SSE streams; `stopped` once `run` has returned (no new subscribers then:
    /// nobody would feed them).
    subscribers: Mutex<Subscribers>,
    /// The route patterns the inspector's handlers answered on: their records are left
    /// out of the history. Learned from the requests themselves, so a mount under any
    /// group or prefix is recognised (at most three patterns per mount).
    own_routes: Mutex<Vec<Arc<str>>>,
}

#[derive(Default)]
struct Subscribers {
    streams: Vec<StreamSender>,
    stopped: bool,
}

/// What the inspector remembers; both rings are bounded by the capacity.
#[derive(Default)]
struct History {
    /// The number the next event gets (events are numbered from 1 across both kinds, so
    /// a page can tell that it missed some and reload).
    next_ev: u64,
    /// Finished requests, oldest first.
    requests: VecDeque<Stored>,
    /// Recent connection ends, oldest first.
    closes: VecDeque<Closed>,
}

struct Stored {
    ev: u64,
    rec: RequestRecord,
}

/// One connection's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed {
    /// The connection's id.
    pub conn_id: u64,
    /// When it closed.
    pub at: Stamp,
    /// Why (as in the `h1_connections_closed_total` metric: `peer_closed`, `idle_timeout`…).
    pub reason: &'static str,
    /// Requests it served.
    pub requests: u64,
    /// The event's number.
    ev: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inspector {
    /// An inspector keeping the last `capacity` requests (at least 1) of the server
    /// `tel` belongs to. Turns on the telemetry's request recording (a ring twice as
    /// large, for the connection ends; if recording was already on, its capacity stands),
    /// and with it the workers' stage stamps (`record_stages`).
    pub fn new(tel: Telemetry, capacity: usize) -> Inspector {
        let capacity = capacity.max(1);
        tel.record_requests(capacity.saturating_mul(2));
        // The waterfall needs the workers' stamps too (off by default in the library).
        tel.record_stages();
        Inspector {
            inner: Arc::new(Inner {
                tel,
                capacity,
                history: Mutex::new(History {
                    next_ev: 1,
                    ..History::default()
                }),
                subscribers: Mutex::default(),
                own_routes: Mutex::default(),
            }),
        }
    }

    /// How many requests the history keeps.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Registers the page at `prefix` (`GET`), the history as JSON at `{prefix}/json` and
    /// the live events at `{prefix}/events` on `router`.
    ///
    /// # Panics
    /// When one of the three patterns conflicts with a route already registered.
    #[track_caller]
    pub fn routes(&self, router: &mut Router, prefix: &str) {
        let p = prefix.trim_end_matches('/');
        router.get(if p.is_empty() { "/{$}" } else { p }, self.page());
        router.get(&format!("{p}/json"), self.json());
        router.get(&format!("{p}/events"), self.events());
    }

    /// The same three routes under a router group's prefix, with the group's middleware
    /// (e.g. [`BearerAuth`](crate::middleware::BearerAuth)) around them.
    ///
    /// # Panics
    /// When one of the three patterns conflicts with a route already registered.
    #[track_caller]
    pub fn mount(&self, group: &mut Group<'_>) {
        group.get("", self.page());
        group.get("/json", self.json());
        group.get("/events", self.events());
    }

    /// The ingest loop, for [`Server::spawn_task`](crate::Server::spawn_task): every
    /// 150 ms it moves new events from the telemetry ring into the history and pushes
    /// them to the open pages. When `token` fires (the server drains) it ends every page's
    /// stream, so the drain does not wait on them, and returns. Outside a server, run it
    /// on a thread of your own with a [`ShutdownToken::new`] you trigger to stop it.
    pub fn run(&self, token: ShutdownToken) {
        let mut beat = Instant::now();
        while !token.wait_timeout(INGEST_EVERY) {
            self.ingest();
            if beat.elapsed() >= HEARTBEAT_EVERY {
                beat = Instant::now();
                self.broadcast(": ping\n\n");
            }
        }
        self.ingest();
        let mut subs = lock(&self.inner.subscribers);
        log::info!("inspector: ending {} page stream(s)", subs.streams.len());
        subs.streams.clear();
        subs.stopped = true;
    }

    /// The requests in the history, oldest first (after taking what the ring holds).
    pub fn history(&self) -> Vec<RequestRecord> {
        self.ingest();
        let h = lock(&self.inner.history);
        h.requests.iter().map(|s| s.rec.clone()).collect()
    }

    /// How the connection `conn_id` ended, if it has and the history still knows.
    pub fn closed(&self, conn_id: u64) -> Option<Closed> {
        self.ingest();
        let h = lock(&self.inner.history);
        h.closes
            .iter()
            .rev()
            .find(|c| c.conn_id == conn_id)
            .copied()
    }

    /// Moves the ring's events into the history and sends them to every page, in one
    /// chunk per page.
    fn ingest(&self) {
        let inner = &*self.inner;
        let mut h = lock(&inner.history);
        let mut out = String::new();
        loop {
            let events = inner.tel.take_events(TAKE_MAX);
            if events.is_empty() {
                break;
            }
            let own = lock(&inner.own_routes).clone();
            for e in events {
                match e {
                    Event::Request(rec) => {
                        let mine = rec
                            .route
                            .as_ref()
                            .is_some_and(|r| own.iter().any(|o| o == r));
                        if mine {
                            continue;
                        }
                        let ev = h.next_ev;
                        h.next_ev += 1;
                        json::sse_request(&mut out, &inner.tel, ev, &rec);
                        h.requests.push_back(Stored { ev, rec: *rec });
                        if h.requests.len() > inner.capacity {
                            h.requests.pop_front();
                        }
                    }
                    Event::Closed {
                        conn_id,
                        at,
                        reason,
                        requests,
                    } => {
                        let ev = h.next_ev;
                        h.next_ev += 1;
                        let c = Closed {
                            conn_id,
                            at,
                            reason,
                            requests,
                            ev,
                        };
                        json::sse_close(&mut out, &inner.tel, &c);
                        h.closes.push_back(c);
                        if h.closes.len() > inner.capacity {
                            h.closes.pop_front();
                        }
                    }
                }
            }
        }
        if !out.is_empty() {
            // Under the history lock: pages get the events in the order they are numbered.
            self.broadcast(&out);
        }
    }

    /// Sends `msg` to every page; a page whose buffer is full misses it (and reloads when
    /// it sees the gap in the event numbers), a closed one is dropped.
    fn broadcast(&self, msg: &str) {
        let mut subs = lock(&self.inner.subscribers);
        subs.streams
            .retain(|s| !matches!(s.try_send(msg.as_bytes()), Err(TrySendError::Closed)));
    }

    /// Marks the route `req` came through as the inspector's own.
    fn note_own(&self, req: &Request) {
        let Some(route) = req.route() else { return };
        let mut own = lock(&self.inner.own_routes);
        if !own.iter().any(|o| &**o == route) {
            own.push(Arc::from(route));
        }
    }

    /// The page.
    fn page(&self) -> impl Fn(&mut Request) -> Response + Send + Sync + 'static {
        let me = self.clone();
        move |req: &mut Request| {
            me.note_own(req);
            secure(Response::html(PAGE)).with_header(
                "Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
            )
        }
    }

    /// The history as JSON.
    fn json(&self) -> impl Fn(&mut Request) -> Response + Send + Sync + 'static {
        let me = self.clone();
        move |req: &mut Request| {
            me.note_own(req);
            me.ingest();
            let body = {
                let h = lock(&me.inner.history);
                json::history(&me.inner.tel, me.inner.capacity, &h)
            };
            secure(Response::json_text(body))
        }
    }

    /// A page's live stream: returns at once; the ingest thread feeds it.
    fn events(&self) -> impl Fn(&mut Request) -> Response + Send + Sync + 'static {
        let me = self.clone();
        move |req: &mut Request| {
            me.note_own(req);
            let mut subs = lock(&me.inner.subscribers);
            if subs.stopped || subs.streams.len() >= MAX_SUBSCRIBERS {
                return Response::error(status::SERVICE_UNAVAILABLE, "inspector unavailable\n")
                    .with_header("Retry-After", "5");
            }
            let (resp, tx) = Response::sse();
            let _ = tx.try_send("retry: 2000\n: connected\n\n");
            subs.streams.push(tx);
            secure(resp)
        }
    }
}

/// Headers every answer of the inspector carries: nothing cached, nothing sniffed, no
/// referrer leaves the page.
fn secure(mut resp: Response) -> Response {
    resp.set_header("Cache-Control", "no-store");
    resp.with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = lock(&self.inner.history);
        f.debug_struct("Inspector")
            .field("capacity", &self.inner.capacity)
            .field("requests", &h.requests.len())
            .field("closes", &h.closes.len())
            .field("pages", &lock(&self.inner.subscribers).streams.len())
            .finish()
    }
}
