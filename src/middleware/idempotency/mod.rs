//! Idempotent retries: the `Idempotency` middleware runs a request carrying an
//! `Idempotency-Key` once and answers retries of it with the stored response.
//!
//! It never runs the rest of the chain twice for one key while the first attempt runs or
//! after it succeeded. Where the keys live is an [`IdempotencyStore`]: this process's
//! memory by default ([`memory`], bounded), or a database shared by several processes.

mod memory;

use std::hash::Hasher;
use std::sync::Arc;
use std::time::Duration;

use log::{debug, error, warn};

use super::{Middleware, Next};
use crate::http::Method;
use crate::request::Request;
use crate::response::Response;
use crate::status;

use memory::MemoryStore;

/// The request header naming the logical operation.
const KEY_HEADER: &str = "Idempotency-Key";
/// The response header marking a replayed response.
const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// The longest key accepted (Stripe's limit).
const MAX_KEY_LEN: usize = 255;

/// Chooses the client scope of a key from the request.
type ScopeFn = dyn Fn(&Request) -> Option<String> + Send + Sync;

/// Why a store could not answer (a database down, a pool exhausted): the middleware
/// answers `503` and logs it.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// Where a key lives: the client's scope and the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// Keyed hash of the client scope (0 when there is none), never the scope itself: the
    /// default scope is the `Authorization` header, which no store should keep.
    pub scope: u64,
    /// The key as the client sent it (without quotes): 1 to 255 printable ASCII bytes.
    pub key: String,
}

/// A response kept for replay: final, complete, and not a "try again" status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// The status code.
    pub status: u16,
    /// Every header the chain set, in order.
    pub headers: Vec<(String, String)>,
    /// The complete body.
    pub body: Vec<u8>,
}

impl StoredResponse {
    /// A copy of `resp`, when it is final and complete enough to replay: not streamed, not
    /// `5xx`, `408`, `425` or `429` (statuses that say "try again").
    fn of(resp: &Response) -> Option<StoredResponse> {
        let status = resp.status();
        // A `read_body` answer is not the answer: its sink's, which comes later, is.
        let later = resp.sink.is_some();
        if resp.is_stream() || later || status >= 500 || matches!(status, 408 | 425 | 429) {
            return None;
        }
        Some(StoredResponse {
            status,
            headers: resp
                .headers()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            body: resp.body_bytes().to_vec(),
        })
    }

    /// The response to send to a retry.
    fn replay(self) -> Response {
        let mut resp = Response::new(self.status);
        for (name, value) in self.headers {
            resp = resp.with_header(name, value);
        }
        resp = resp.with_header(REPLAYED_HEADER, "true");
        if !self.body.is_empty() {
            resp = resp.with_body(self.body);
        }
        resp
    }
}

/// What a store says about a request that carries a key.
#[derive(Debug)]
#[non_exhaustive]
pub enum Claim {
    /// First of its key (or the key had expired): it is now recorded as running, and the
    /// request runs. The number names this attempt for [`IdempotencyStore::finish`].
    Run(u64),
    /// Answered before with the same fingerprint: send this again.
    Replay(StoredResponse),
    /// The first request with this key, same fingerprint, is still running: `409`.
    InProgress,
    /// The key was used for a request with another fingerprint: `422`.
    Mismatch,
    /// An attempt with this key ran, but its response could not be kept
    /// ([`IdempotencyStore::mark_unknown`]): its effect may have happened, so the key never
    /// runs again (until it expires): `409`, without `Retry-After`.
    Unknown,
}

/// Where the [`Idempotency`] middleware keeps its keys. The default is this process's
/// memory; a store in a database lets several processes (and restarts) share keys.
///
/// The middleware decides everything about HTTP (which requests, the key's syntax, the
/// scope, the fingerprint, which responses may be stored, the statuses); a store only
/// keeps records, so every store behaves alike. Its methods may block (a database call):
/// the middleware runs on a worker thread.
///
/// # Warning
///
/// [`begin`](Self::begin) must be atomic across every process sharing the store: of two
/// concurrent first requests with one key, exactly one gets [`Claim::Run`]. A store that
/// outlives a process should let a later attempt take over a record left running by a
/// process that died (after a lease), or the key stays `409` until it expires — but never
/// one marked by [`mark_unknown`](Self::mark_unknown): that attempt did run.
pub trait IdempotencyStore: Send + Sync {
    /// Looks `key` up for a request whose method, target and body hash to `fingerprint`.
    /// An unknown or expired key is recorded as running and answered with
    /// [`Claim::Run`]; a known key with another fingerprint is [`Claim::Mismatch`]; one
    /// still running is [`Claim::InProgress`]; one answered is [`Claim::Replay`].
    fn begin(&self, key: &IdempotencyKey, fingerprint: u64) -> Result<Claim, StoreError>;

    /// Attempt `attempt` of `key` has answered: keep `response` for replay, or, when it
    /// is `None` (a failed attempt, a panic, a streamed or too large response), forget the
    /// key so a retry runs again. When the key no longer belongs to this attempt (expired,
    /// evicted, taken over) nothing changes. Returns whether the response was kept.
    fn finish(
        &self,
        key: &IdempotencyKey,
        attempt: u64,
        response: Option<StoredResponse>,
    ) -> Result<bool, StoreError>;

    /// Attempt `attempt` of `key` ran to a response worth keeping, but
    /// [`finish`](Self::finish) failed to keep it: whatever the request did may have been
    /// done. Mark the key so that no later attempt runs it again — neither now nor by
    /// taking it over after a lease — and [`begin`](Self::begin) answers [`Claim::Unknown`]
    /// for it until it expires. When the key no longer belongs to this attempt nothing
    /// changes. A store whose running keys are never taken over may leave the key running.
    ///
    /// An error (the store still cannot write) is logged by the middleware: a store with a
    /// lease may then let a retry take the key over and run the request a second time.
    fn mark_unknown(&self, key: &IdempotencyKey, attempt: u64) -> Result<(), StoreError>;

    /// The SipHash key for the scope and fingerprint hashes. Processes sharing a store
    /// must get the same key from it (keep it in the store); it must be secret and
    /// random, so that no client can make its scope hash equal another's.
    fn hash_key(&self) -> [u64; 2];
}

/// SipHash-2-4 under `key` of length-prefixed `parts` (so `("ab", "c")` and `("a",
/// "bc")` differ). The algorithm is fixed, unlike `DefaultHasher`'s, so a hash written
/// by one process (or release) means the same to the next.
fn keyed_hash(key: [u64; 2], parts: &[&[u8]]) -> u64 {
    // Deprecated only in favour of DefaultHasher, whose algorithm may change: this one
    // is SipHash-2-4 for good, which hashes kept in a shared store need.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(key[0], key[1]);
    for part in parts {
        h.write(&(part.len() as u64).to_le_bytes());
        h.write(part);
    }
    h.finish()
}

/// The store behind a middleware: the built-in one (whose limits the builder sets), or
/// one given to [`Idempotency::with_store`].
enum Backend {
    Memory(MemoryStore),
    Shared(Arc<dyn IdempotencyStore>),
}

impl Backend {
    fn get(&self) -> &dyn IdempotencyStore {
        match self {
            Backend::Memory(m) => m,
            Backend::Shared(s) => &**s,
        }
    }
}

/// Middleware that makes retries of `POST` and `PATCH` requests with an `Idempotency-Key`
/// safe: the first runs, retries get its stored response. Requests without the header,
/// or with other methods, pass through.
///
/// # Semantics (draft-ietf-httpapi-idempotency-key-header, as Stripe implements it)
///
/// * A key is 1 to 255 printable ASCII characters, bare or as a quoted string
///   (`Idempotency-Key: "8e03978e"`); anything else is `400`.
/// * A key names one request: its method, target (path and query) and body. The same key
///   with another request is `422 Unprocessable Content`, and a duplicate arriving while
///   the first request with the key runs gets `409 Conflict` (the draft's "Error
///   Scenarios").
/// * When the first request has answered with a complete body and a final status, the
///   response (status, headers, body) is stored for `ttl` and replayed to retries with
///   `Idempotent-Replayed: true`, without running the handler again.
/// * When the store fails to keep a response that should have been kept, the key is marked
///   "outcome unknown" ([`IdempotencyStore::mark_unknown`]): the first client still gets its
///   response, and retries get `409 Conflict` (without `Retry-After`) until the key
///   expires — never a second run of a request whose effect may have happened.
/// * A failed attempt — `5xx`, `408`, `425`, `429` (statuses that say "try again"), a
///   panic — releases the key, so a retry runs again. So does a streamed response, which
///   cannot be stored, and [`Response::read_body`] (an upload), whose answer comes from its
///   sink after the middleware has returned.
/// * Keys are scoped by client: by default the `Authorization` header (hashed), so one
///   client can never be answered with another's stored response; see
///   [`scope_by`](Idempotency::scope_by).
///
/// Add it to a [`Stack`](super::Stack) after (inside) authentication and rate limiting, so
/// refused requests are not stored, and after any [`Timeout`](super::Timeout), so the key
/// stays taken while a handler that missed its deadline still runs.
///
/// ```
/// use h1server::middleware::{Idempotency, Stack};
/// use h1server::{testing::TestRequest, Request, Response};
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// static ORDERS: AtomicU32 = AtomicU32::new(0);
/// let app = Stack::new(|_: &mut Request| {
///     let n = ORDERS.fetch_add(1, Ordering::SeqCst) + 1;
///     Response::text(format!("order {n}")).with_status(201)
/// })
/// .with(Idempotency::new());
/// let post = || TestRequest::post("/orders").header("Idempotency-Key", "k-1").run(&app);
/// let first = post();
/// let retry = post();
/// assert_eq!(retry.status(), 201);
/// assert_eq!(retry.body_bytes(), first.body_bytes());
/// assert_eq!(retry.header("Idempotent-Replayed"), Some("true"));
/// assert_eq!(ORDERS.load(Ordering::SeqCst), 1);
/// ```
pub struct Idempotency {
    /// The methods whose requests are made idempotent.
    methods: Vec<Method>,
    /// The keys.
    store: Backend,
    /// The store's key for the fingerprint and scope hashes.
    hash_key: [u64; 2],
    /// The client scope of a request's key.
    scope: Box<ScopeFn>,
}

impl Default for Idempotency {
    fn default() -> Self {
        Self::new()
    }
}

impl Idempotency {
    /// For `POST` and `PATCH`, keys kept in memory 24 h, at most 10 000 keys and 64 MiB
    /// of responses, scoped by the `Authorization` header.
    pub fn new() -> Self {
        let memory = MemoryStore::new();
        Idempotency {
            methods: vec![Method::Post, Method::Patch],
            hash_key: memory.hash_key(),
            store: Backend::Memory(memory),
            scope: Box::new(|req: &Request| req.header("authorization").map(str::to_owned)),
        }
    }

    /// Keeps the keys in `store` instead of this process's memory (a database shared by
    /// several instances, say). The store's own settings then apply: [`ttl`](Self::ttl),
    /// [`max_entries`](Self::max_entries) and [`max_bytes`](Self::max_bytes) set the
    /// built-in store only.
    pub fn with_store(mut self, store: Arc<dyn IdempotencyStore>) -> Self {
        self.hash_key = store.hash_key();
        self.store = Backend::Shared(store);
        self
    }

    /// The built-in store's settings, or `None` (and a warning) with another store.
    fn memory_settings(&mut self, what: &str) -> Option<&mut memory::Store> {
        match &mut self.store {
            Backend::Memory(m) => Some(m.settings()),
            Backend::Shared(_) => {
                warn!("Idempotency::{what} ignored: the store given to with_store has its own");
                None
            }
        }
    }

    /// How long a key and its response are kept, from the first request (default 24 h).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        if let Some(s) = self.memory_settings("ttl") {
            s.ttl = ttl;
        }
        self
    }

    /// At most this many keys (default 10 000, at least 1); when full the oldest answered
    /// key is evicted.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        if let Some(s) = self.memory_settings("max_entries") {
            s.max_entries = max_entries.max(1);
        }
        self
    }

    /// At most this many bytes of stored responses, bodies and headers (default 64 MiB);
    /// the oldest are evicted to make room, and a larger response is not stored (its key
    /// is released).
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        if let Some(s) = self.memory_settings("max_bytes") {
            s.max_bytes = max_bytes;
        }
        self
    }

    /// The methods to handle (default `POST` and `PATCH`).
    pub fn methods(mut self, methods: &[Method]) -> Self {
        self.methods = methods.to_vec();
        self
    }

    /// How keys are scoped by client: requests for which `scope` returns different values
    /// never share a key (default: the `Authorization` header; `None` is one shared scope).
    /// Scope by whatever identifies a tenant, e.g. the authenticated principal.
    pub fn scope_by(
        mut self,
        scope: impl Fn(&Request) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.scope = Box::new(scope);
        self
    }
}

/// The key in an `Idempotency-Key` value: bare or a quoted string, 1 to 255 printable
/// ASCII characters.
pub(super) fn parse_key(value: &str) -> Option<&str> {
    let v = value.trim();
    let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner,
        None => v,
    };
    let printable = v.bytes().all(|b| (0x20..0x7f).contains(&b));
    (!v.is_empty() && v.len() <= MAX_KEY_LEN && printable).then_some(v)
}

/// Releases the key if the attempt ends without [`IdempotencyStore::finish`] (the chain
/// panicked).
struct Attempt<'a> {
    store: &'a dyn IdempotencyStore,
    key: &'a IdempotencyKey,
    attempt: u64,
    finished: bool,
}

impl Attempt<'_> {
    /// Hands the outcome to the store; a store error is logged (the client still gets
    /// its response) and counts as not stored. When a response to keep could not be kept,
    /// the key is marked "outcome unknown", so no retry runs the request again.
    fn finish(mut self, response: Option<StoredResponse>, conn: u64) -> bool {
        self.finished = true;
        let to_keep = response.is_some();
        let e = match self.store.finish(self.key, self.attempt, response) {
            Ok(kept) => return kept,
            Err(e) => e,
        };
        let key = &self.key.key;
        error!("conn={conn} idempotency store failed to record key {key:?}: {e}");
        if to_keep {
            match self.store.mark_unknown(self.key, self.attempt) {
                Ok(()) => warn!(
                    "conn={conn} idempotency key {key:?} marked outcome unknown: \
                     retries get 409, the request is not run again"
                ),
                Err(e) => error!(
                    "conn={conn} idempotency store failed to mark key {key:?} outcome \
                     unknown either: {e}: a retry after the store's lease may run the \
                     request again"
                ),
            }
        }
        false
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.store.finish(self.key, self.attempt, None);
        }
    }
}

impl Middleware for Idempotency {
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        if !self.methods.contains(&req.method()) {
            return next.run(req);
        }
        let Some(value) = req.header(KEY_HEADER) else {
            return next.run(req);
        };
        let Some(key) = parse_key(value) else {
            debug!("conn={} invalid Idempotency-Key: 400", req.conn_id());
            return Response::error(
                status::BAD_REQUEST,
                "Invalid Idempotency-Key: expected 1 to 255 printable ASCII characters.\n",
            );
        };
        let key = IdempotencyKey {
            scope: (self.scope)(req).map_or(0, |s| keyed_hash(self.hash_key, &[s.as_bytes()])),
            key: key.into(),
        };
        let fingerprint = keyed_hash(
            self.hash_key,
            &[
                req.method_str().as_bytes(),
                req.target().as_bytes(),
                req.body(),
            ],
        );
        let store = self.store.get();
        let conn = req.conn_id();
        let claim = match store.begin(&key, fingerprint) {
            Ok(claim) => claim,
            Err(e) => {
                // Without the store, running the request could run it twice: refuse.
                error!("conn={conn} idempotency store failed: {e}: 503");
                return Response::error(
                    status::SERVICE_UNAVAILABLE,
                    "The Idempotency-Key store is unavailable; retry later.\n",
                )
                .with_header("Retry-After", "1");
            }
        };
        let (resp, outcome) = match claim {
            Claim::Replay(stored) => (stored.replay(), "replayed"),
            Claim::InProgress => (
                Response::error(
                    status::CONFLICT,
                    "A request with this Idempotency-Key is still running.\n",
                )
                .with_header("Retry-After", "1"),
                "still running: 409",
            ),
            Claim::Mismatch => (
                Response::error(
                    status::UNPROCESSABLE_CONTENT,
                    "This Idempotency-Key was used for another request.\n",
                ),
                "used for another request: 422",
            ),
            Claim::Unknown => (
                Response::error(
                    status::CONFLICT,
                    "A request with this Idempotency-Key ran, but its response could not be \
                     stored: it is not run again. Check its effect; use a new key to retry.\n",
                ),
                "outcome unknown: 409",
            ),
            Claim::Run(attempt) => {
                let guard = Attempt {
                    store,
                    key: &key,
                    attempt,
                    finished: false,
                };
                let resp = next.run(req);
                let kept = guard.finish(StoredResponse::of(&resp), conn);
                (
                    resp,
                    ["ran, key released", "ran, response stored"][usize::from(kept)],
                )
            }
        };
        debug!("conn={conn} Idempotency-Key {:?}: {outcome}", key.key);
        resp
    }
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Idempotency");
        d.field("methods", &self.methods);
        match &self.store {
            Backend::Memory(m) => {
                let (keys, bytes) = m.usage();
                let s = m.lock();
                d.field("ttl", &s.ttl)
                    .field("max_entries", &s.max_entries)
                    .field("max_bytes", &s.max_bytes);
                drop(s);
                d.field("keys", &keys).field("bytes", &bytes)
            }
            Backend::Shared(_) => d.field("store", &"shared"),
        };
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::Stack;
    use crate::testing::TestRequest;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A stack whose handler counts its calls and answers `201 order <n>`, or what the
    /// request asks for (`/fail` or `/panic` with `X-Fail`, `/busy` → 429, `/stream`).
    /// A body sink that drops what it receives.
    struct Discard;
    impl crate::BodySink for Discard {
        fn data(&mut self, _: &[u8]) -> Result<(), Response> {
            Ok(())
        }
        fn finish(self: Box<Self>) -> Response {
            Response::text("stored")
        }
    }

    fn counting(mw: Idempotency) -> (Stack, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let app = Stack::new(move |req: &mut Request| {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            match req.path() {
                "/fail" if req.header("X-Fail").is_some() => Response::error(500, ""),
                "/panic" if req.header("X-Fail").is_some() => panic!("handler bug"),
                "/busy" => Response::error(429, ""),
                "/stream" => Response::stream(std::iter::empty::<Vec<u8>>()),
                "/upload" => Response::read_body(Discard),
                _ => Response::text(format!("order {n}"))
                    .with_status(201)
                    .with_header("Location", format!("/orders/{n}")),
            }
        })
        .with(mw);
        (app, calls)
    }

    fn post(path: &str, key: &str) -> TestRequest {
        TestRequest::post(path)
            .header("Idempotency-Key", key)
            .body("{}")
    }

    #[test]
    fn a_retry_gets_the_stored_response_and_the_handler_runs_once() {
        let (app, calls) = counting(Idempotency::new());
        let first = post("/orders", "k1").run(&app);
        assert_eq!(first.header(REPLAYED_HEADER), None);
        let retry = post("/orders", "\"k1\"").run(&app);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(retry.status(), 201);
        assert_eq!(retry.body_bytes(), b"order 1");
        assert_eq!(retry.header("Location"), Some("/orders/1"));
        assert_eq!(retry.header(REPLAYED_HEADER), Some("true"));
    }

    #[test]
    fn requests_without_a_key_or_with_other_methods_pass_through() {
        let (app, calls) = counting(Idempotency::new());
        let put = || TestRequest::put("/orders").header("Idempotency-Key", "k");
        for _ in 0..2 {
            TestRequest::post("/orders").run(&app);
            put().run(&app);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        let (app, calls) = counting(Idempotency::new().methods(&[Method::Put]));
        for _ in 0..2 {
            put().run(&app);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_key_reused_for_another_request_is_422() {
        let (app, calls) = counting(Idempotency::new());
        post("/orders", "k").run(&app);
        assert_eq!(post("/other", "k").run(&app).status(), 422);
        assert_eq!(post("/orders?x=1", "k").run(&app).status(), 422);
        let other_body = post("/orders", "k").body("[]");
        assert_eq!(other_body.run(&app).status(), 422);
        let patch = TestRequest::new("PATCH", "/orders").header("Idempotency-Key", "k");
        assert_eq!(patch.body("{}").run(&app).status(), 422);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn failed_attempts_release_the_key() {
        let (app, calls) = counting(Idempotency::new());
        let fail = post("/fail", "a").header("X-Fail", "1");
        assert_eq!(fail.run(&app).status(), 500);
        assert_eq!(post("/fail", "a").run(&app).status(), 201, "the retry ran");
        let replay = post("/fail", "a").run(&app);
        assert_eq!(replay.header(REPLAYED_HEADER), Some("true"));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            post("/panic", "b").header("X-Fail", "1").run(&app)
        }));
        assert!(caught.is_err());
        assert_eq!(post("/panic", "b").run(&app).status(), 201, "the retry ran");
        assert_eq!(post("/busy", "c").run(&app).status(), 429);
        assert_eq!(post("/busy", "c").run(&app).header(REPLAYED_HEADER), None);
        assert!(post("/stream", "d").run(&app).is_stream());
        assert!(post("/stream", "d").run(&app).is_stream());
        // An upload's answer comes later, from its sink: nothing to store or replay.
        assert!(post("/upload", "e").run(&app).sink.is_some());
        assert!(
            post("/upload", "e").run(&app).sink.is_some(),
            "not replayed"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn keys_are_scoped_by_authorization_and_validated() {
        let (app, calls) = counting(Idempotency::new());
        let as_user = |who: &str| post("/orders", "k").header("Authorization", who).run(&app);
        as_user("Bearer alice");
        let bob = as_user("Bearer bob");
        assert_eq!(bob.body_bytes(), b"order 2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(post("/orders", "").run(&app).status(), 400);
        assert_eq!(post("/orders", &"x".repeat(256)).run(&app).status(), 400);
        assert_eq!(parse_key(" \"abc\" "), Some("abc"));
        assert_eq!(parse_key(&"x".repeat(255)).map(str::len), Some(255));
    }

    /// Two middlewares on one store (two processes on one database): the second
    /// replays what the first stored, and a key cannot be reused across them.
    #[test]
    fn a_shared_store_replays_across_middlewares() {
        let shared: Arc<dyn IdempotencyStore> = Arc::new(MemoryStore::new());
        let (a, calls_a) = counting(Idempotency::new().with_store(shared.clone()));
        let (b, calls_b) = counting(Idempotency::new().with_store(shared));
        let first = post("/orders", "k").run(&a);
        let retry = post("/orders", "k").run(&b);
        assert_eq!(retry.body_bytes(), first.body_bytes());
        assert_eq!(retry.header(REPLAYED_HEADER), Some("true"));
        assert_eq!(post("/other", "k").run(&b).status(), 422);
        assert_eq!(
            calls_a.load(Ordering::SeqCst) + calls_b.load(Ordering::SeqCst),
            1
        );
    }

    /// A store that fails every call, like a database that went away.
    struct Down;

    impl IdempotencyStore for Down {
        fn begin(&self, _: &IdempotencyKey, _: u64) -> Result<Claim, StoreError> {
            Err("connection refused".into())
        }
        fn finish(
            &self,
            _: &IdempotencyKey,
            _: u64,
            _: Option<StoredResponse>,
        ) -> Result<bool, StoreError> {
            Err("connection refused".into())
        }
        fn mark_unknown(&self, _: &IdempotencyKey, _: u64) -> Result<(), StoreError> {
            Err("connection refused".into())
        }
        fn hash_key(&self) -> [u64; 2] {
            [1, 2]
        }
    }

    /// A memory store whose `finish` fails while `refuse` is set (a full disk, a lock
    /// held past its timeout), with a lease of zero: any running key not marked unknown
    /// is taken over by the next attempt.
    struct RefusesToKeep {
        inner: MemoryStore,
        refuse: std::sync::atomic::AtomicBool,
        unknown: std::sync::Mutex<Vec<IdempotencyKey>>,
    }

    impl IdempotencyStore for RefusesToKeep {
        fn begin(&self, key: &IdempotencyKey, fingerprint: u64) -> Result<Claim, StoreError> {
            if self.unknown.lock().unwrap().contains(key) {
                return Ok(Claim::Unknown);
            }
            match self.inner.begin(key, fingerprint)? {
                // The lease has passed: take the key over.
                Claim::InProgress => Ok(Claim::Run(u64::MAX)),
                claim => Ok(claim),
            }
        }
        fn finish(
            &self,
            key: &IdempotencyKey,
            attempt: u64,
            response: Option<StoredResponse>,
        ) -> Result<bool, StoreError> {
            if self.refuse.load(Ordering::SeqCst) {
                return Err("injected: disk I/O".into());
            }
            self.inner.finish(key, attempt, response)
        }
        fn mark_unknown(&self, key: &IdempotencyKey, _: u64) -> Result<(), StoreError> {
            self.unknown.lock().unwrap().push(key.clone());
            Ok(())
        }
        fn hash_key(&self) -> [u64; 2] {
            [3, 4]
        }
    }

    #[test]
    fn a_response_the_store_failed_to_keep_is_never_run_again() {
        let store = Arc::new(RefusesToKeep {
            inner: MemoryStore::new(),
            refuse: true.into(),
            unknown: Default::default(),
        });
        let (app, calls) = counting(Idempotency::new().with_store(store.clone()));
        let first = post("/orders", "k").run(&app);
        assert_eq!(first.status(), 201, "the client still gets its answer");
        store.refuse.store(false, Ordering::SeqCst);
        let retry = post("/orders", "k").run(&app);
        assert_eq!(retry.status(), 409);
        assert_eq!(retry.header("Retry-After"), None, "retrying will not help");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "run once");
        // A failed attempt whose release failed is not marked: a retry may run it.
        store.refuse.store(true, Ordering::SeqCst);
        let fail = post("/fail", "f").header("X-Fail", "1").run(&app);
        assert_eq!(fail.status(), 500);
        assert_eq!(store.unknown.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_failing_store_refuses_keyed_requests_with_503_without_running_them() {
        let (app, calls) = counting(Idempotency::new().with_store(Arc::new(Down)));
        let resp = post("/orders", "k").run(&app);
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.header("Retry-After"), Some("1"));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(
            TestRequest::post("/orders").run(&app).status(),
            201,
            "no key: runs"
        );
    }

    #[test]
    fn hashes_are_siphash_2_4_and_length_prefixed() {
        // The reference vectors of the SipHash paper (key 00..0f), which pin the algorithm
        // that shared stores rely on.
        let key = [0x0706050403020100, 0x0f0e0d0c0b0a0908];
        #[allow(deprecated)]
        let raw = |msg: &[u8]| {
            let mut h = std::hash::SipHasher::new_with_keys(key[0], key[1]);
            h.write(msg);
            h.finish()
        };
        assert_eq!(raw(b""), 0x726fdb47dd0e0e31);
        assert_eq!(raw(&(0u8..15).collect::<Vec<_>>()), 0xa129ca6149be45e5);
        assert_ne!(
            keyed_hash(key, &[b"ab", b"c"]),
            keyed_hash(key, &[b"a", b"bc"])
        );
        assert_eq!(keyed_hash(key, &[b"x"]), keyed_hash(key, &[b"x"]));
    }
}
