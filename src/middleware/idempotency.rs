//! Idempotent retries: the `Idempotency` middleware runs a request carrying an
//! `Idempotency-Key` once and answers retries of it with the stored response.
//!
//! It never runs the rest of the chain twice for one key while the first attempt runs or
//! after it succeeded, and never keeps more than `max_entries` keys or `max_bytes` of
//! stored responses.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::concurrency::WarnThrottle;
use super::{Middleware, Next};
use crate::http::Method;
use crate::request::Request;
use crate::response::Response;
use crate::status;

/// The request header naming the logical operation.
const KEY_HEADER: &str = "Idempotency-Key";
/// The response header marking a replayed response.
const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// The longest key accepted (Stripe's limit).
const MAX_KEY_LEN: usize = 255;

/// Chooses the client scope of a key from the request.
type ScopeFn = dyn Fn(&Request) -> Option<String> + Send + Sync;

/// Where a key lives: the hashed client scope and the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct StoreKey {
    /// Hash of the scope string (0 when there is none).
    scope: u64,
    /// The key as the client sent it (without quotes).
    key: Box<str>,
}

/// One key's record.
#[derive(Debug)]
struct Entry {
    /// Insertion number: the age order, and who owns a running entry.
    seq: u64,
    /// When the first request arrived; the entry expires `ttl` later.
    created: Instant,
    /// Hash of the request's method, target and body.
    fingerprint: u64,
    /// The response to replay; `None` while the first request is still running.
    response: Option<Stored>,
}

/// A stored response.
#[derive(Clone, Debug)]
struct Stored {
    /// The status code.
    status: u16,
    /// Every header the chain set, in order.
    headers: Vec<(String, String)>,
    /// The complete body.
    body: Vec<u8>,
}

impl Stored {
    /// A copy of `resp`, when it is final and complete enough to replay.
    fn of(resp: &Response) -> Option<Stored> {
        let status = resp.status();
        // A `read_body` answer is not the answer: its sink's, which comes later, is.
        let later = resp.sink.is_some();
        if resp.is_stream() || later || status >= 500 || matches!(status, 408 | 425 | 429) {
            return None;
        }
        Some(Stored {
            status,
            headers: resp
                .headers()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            body: resp.body_bytes().to_vec(),
        })
    }

    /// The bytes it holds, for the `max_bytes` budget.
    fn size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        self.body.len() + headers
    }

    /// The response to send to a retry.
    fn replay(&self) -> Response {
        let mut resp = Response::new(self.status);
        for (name, value) in &self.headers {
            resp = resp.with_header(name.clone(), value.clone());
        }
        resp = resp.with_header(REPLAYED_HEADER, "true");
        if !self.body.is_empty() {
            resp = resp.with_body(self.body.clone());
        }
        resp
    }
}

/// What to do with a request that carries a key.
#[derive(Debug)]
enum Begin {
    /// First of its key: run it; the number identifies the attempt.
    Run(u64),
    /// Answered before: send this.
    Replay(Response),
    /// The first request with this key is still running: `409`.
    InProgress,
    /// The key was used for another request: `422`.
    Mismatch,
}

/// The bounded key store. All times are passed in, so tests control the clock.
#[derive(Debug)]
struct Store {
    /// Every live key.
    entries: HashMap<StoreKey, Entry>,
    /// The same keys by `seq`, oldest first: for expiry and eviction.
    by_age: BTreeMap<u64, StoreKey>,
    /// The next `seq`.
    next_seq: u64,
    /// Sum of [`Stored::size`] over the stored responses.
    bytes: usize,
    /// How long an entry lives (`ttl`).
    ttl: Duration,
    /// Never more keys than this (`max_entries`).
    max_entries: usize,
    /// Never more stored bytes than this (`max_bytes`).
    max_bytes: usize,
    /// Keeps evictions under pressure from flooding the log.
    log: WarnThrottle,
}

impl Store {
    fn new() -> Self {
        Store {
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
            bytes: 0,
            ttl: Duration::from_secs(24 * 3600),
            max_entries: 10_000,
            max_bytes: 64 << 20,
            log: WarnThrottle::new(),
        }
    }

    /// Looks `key` up for a request with `fingerprint`; a new key is recorded as running.
    fn begin(&mut self, key: &StoreKey, fingerprint: u64, now: Instant) -> Begin {
        self.expire(now);
        if let Some(e) = self.entries.get(key) {
            return match &e.response {
                _ if e.fingerprint != fingerprint => Begin::Mismatch,
                None => Begin::InProgress,
                Some(stored) => Begin::Replay(stored.replay()),
            };
        }
        while self.entries.len() >= self.max_entries && self.evict_oldest(false, None) {}
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            seq,
            created: now,
            fingerprint,
            response: None,
        };
        self.entries.insert(key.clone(), entry);
        self.by_age.insert(seq, key.clone());
        Begin::Run(seq)
    }

    /// Attempt `seq` of `key` answered: keeps `stored` for replay, or releases the key when
    /// there is nothing to keep. Returns whether the response was stored.
    fn finish(&mut self, key: &StoreKey, seq: u64, stored: Option<Stored>) -> bool {
        if self.entries.get(key).is_none_or(|e| e.seq != seq) {
            return false; // expired or evicted meanwhile: the key is no longer ours
        }
        let Some(stored) = stored.filter(|s| s.size() <= self.max_bytes) else {
            self.remove(key);
            return false;
        };
        let size = stored.size();
        while self.bytes + size > self.max_bytes && self.evict_oldest(true, Some(seq)) {}
        if let Some(e) = self.entries.get_mut(key) {
            e.response = Some(stored);
            self.bytes += size;
        }
        true
    }

    /// Forgets `key`.
    fn remove(&mut self, key: &StoreKey) {
        if let Some(e) = self.entries.remove(key) {
            self.by_age.remove(&e.seq);
            if let Some(s) = &e.response {
                self.bytes -= s.size();
            }
        }
    }

    /// Drops the entries older than `ttl` (the oldest come first in `by_age`).
    fn expire(&mut self, now: Instant) {
        while let Some(oldest) = self.by_age.first_entry() {
            match self.entries.get(oldest.get()) {
                Some(e) if now.saturating_duration_since(e.created) < self.ttl => break,
                _ => {}
            }
            let key = oldest.remove();
            if let Some(s) = self.entries.remove(&key).and_then(|e| e.response) {
                self.bytes -= s.size();
            }
        }
    }

    /// Evicts the oldest answered entry (other than `skip`); unless `done_only`, the oldest
    /// running one when none has answered. Returns false when there was nothing to evict.
    fn evict_oldest(&mut self, done_only: bool, skip: Option<u64>) -> bool {
        let is_done = |k: &StoreKey| self.entries.get(k).is_some_and(|e| e.response.is_some());
        let mut candidates = self.by_age.iter().filter(|&(s, _)| Some(*s) != skip);
        let victim = candidates
            .clone()
            .find(|&(_, k)| is_done(k))
            .or_else(|| if done_only { None } else { candidates.next() })
            .map(|(_, k)| k.clone());
        let Some(key) = victim else {
            return false;
        };
        match self.log.should_warn() {
            Some(quiet) => warn!(
                "idempotency store full ({} keys, {} bytes): evicting the oldest key \
                 ({quiet} more evictions since the last warning)",
                self.entries.len(),
                self.bytes
            ),
            None => debug!("idempotency store full: evicting the oldest key"),
        }
        self.remove(&key);
        true
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
    store: Mutex<Store>,
    /// Per-process random keys for the fingerprint and scope hashes.
    hasher: RandomState,
    /// The client scope of a request's key.
    scope: Box<ScopeFn>,
}

impl Default for Idempotency {
    fn default() -> Self {
        Self::new()
    }
}

impl Idempotency {
    /// For `POST` and `PATCH`, keys kept 24 h, at most 10 000 keys and 64 MiB of
    /// responses, scoped by the `Authorization` header.
    pub fn new() -> Self {
        Idempotency {
            methods: vec![Method::Post, Method::Patch],
            store: Mutex::new(Store::new()),
            hasher: RandomState::new(),
            scope: Box::new(|req: &Request| req.header("authorization").map(str::to_owned)),
        }
    }

    fn store_mut(&mut self) -> &mut Store {
        self.store.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a key and its response are kept, from the first request (default 24 h).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.store_mut().ttl = ttl;
        self
    }

    /// At most this many keys (default 10 000, at least 1); when full the oldest answered
    /// key is evicted.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.store_mut().max_entries = max_entries.max(1);
        self
    }

    /// At most this many bytes of stored responses, bodies and headers (default 64 MiB);
    /// the oldest are evicted to make room, and a larger response is not stored (its key
    /// is released).
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.store_mut().max_bytes = max_bytes;
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
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

/// Releases the key if the attempt ends without [`Store::finish`] (the chain panicked).
struct Attempt<'a> {
    store: &'a Mutex<Store>,
    key: &'a StoreKey,
    seq: u64,
    finished: bool,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.finished {
            lock(self.store).finish(self.key, self.seq, None);
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
        let key = StoreKey {
            scope: (self.scope)(req).map_or(0, |s| self.hasher.hash_one(s)),
            key: key.into(),
        };
        let fingerprint = self
            .hasher
            .hash_one((req.method_str(), req.target(), req.body()));
        let begin = lock(&self.store).begin(&key, fingerprint, Instant::now());
        let conn = req.conn_id();
        let (resp, outcome) = match begin {
            Begin::Replay(resp) => (resp, "replayed"),
            Begin::InProgress => (
                Response::error(
                    status::CONFLICT,
                    "A request with this Idempotency-Key is still running.\n",
                )
                .with_header("Retry-After", "1"),
                "still running: 409",
            ),
            Begin::Mismatch => (
                Response::error(
                    status::UNPROCESSABLE_CONTENT,
                    "This Idempotency-Key was used for another request.\n",
                ),
                "used for another request: 422",
            ),
            Begin::Run(seq) => {
                let mut attempt = Attempt {
                    store: &self.store,
                    key: &key,
                    seq,
                    finished: false,
                };
                let resp = next.run(req);
                attempt.finished = true;
                let stored = Stored::of(&resp);
                let kept = lock(&self.store).finish(&key, seq, stored);
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
        let store = lock(&self.store);
        f.debug_struct("Idempotency")
            .field("methods", &self.methods)
            .field("ttl", &store.ttl)
            .field("max_entries", &store.max_entries)
            .field("max_bytes", &store.max_bytes)
            .field("keys", &store.entries.len())
            .field("bytes", &store.bytes)
            .finish()
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

    fn key(k: &str) -> StoreKey {
        StoreKey {
            scope: 0,
            key: k.into(),
        }
    }

    fn stored(body: &str) -> Option<Stored> {
        Stored::of(&Response::text(body.to_string()))
    }

    fn run(store: &mut Store, k: &str, now: Instant) -> u64 {
        match store.begin(&key(k), 7, now) {
            Begin::Run(seq) => seq,
            other => panic!("{k}: expected Run, got {other:?}"),
        }
    }

    #[test]
    fn stored_entries_expire_after_the_ttl() {
        let t0 = Instant::now();
        let mut s = Store::new();
        s.ttl = Duration::from_secs(60);
        let seq = run(&mut s, "k", t0);
        assert!(s.finish(&key("k"), seq, stored("one")));
        let at = |secs| t0 + Duration::from_secs(secs);
        assert!(matches!(s.begin(&key("k"), 7, at(59)), Begin::Replay(_)));
        run(&mut s, "k", at(60));
        assert_eq!(s.entries.len(), 1);
        assert_eq!(s.bytes, 0, "the expired response's bytes were released");
    }

    #[test]
    fn the_oldest_answered_key_is_evicted_when_full() {
        let t0 = Instant::now();
        let mut s = Store::new();
        s.max_entries = 3;
        let running = run(&mut s, "running", t0);
        for k in ["a", "b"] {
            let seq = run(&mut s, k, t0);
            s.finish(&key(k), seq, stored(k));
        }
        run(&mut s, "c", t0);
        assert_eq!(s.entries.len(), 3);
        // The oldest answered key went; the running one and the newer stay.
        assert!(!s.entries.contains_key(&key("a")));
        assert!(s.entries.contains_key(&key("running")));
        assert!(s.entries.contains_key(&key("b")));
        for i in 0..1000 {
            run(&mut s, &format!("k{i}"), t0);
            assert!(s.entries.len() <= 3);
        }
        // The running entry was evicted eventually; finishing it stores nothing.
        assert!(!s.finish(&key("running"), running, stored("late")));
        assert_eq!(s.by_age.len(), s.entries.len());
    }

    #[test]
    fn stored_bytes_stay_within_max_bytes() {
        let t0 = Instant::now();
        let mut s = Store::new();
        s.max_bytes = 300;
        let size = stored(&"x".repeat(30)).unwrap().size();
        for i in 0..10 {
            let k = format!("k{i}");
            let seq = run(&mut s, &k, t0);
            assert!(s.finish(&key(&k), seq, stored(&"x".repeat(30))));
            assert!(s.bytes <= 300);
        }
        assert_eq!(s.bytes, (300 / size) * size);
        let seq = run(&mut s, "huge", t0);
        assert!(!s.finish(&key("huge"), seq, stored(&"x".repeat(400))));
        assert!(!s.entries.contains_key(&key("huge")), "released");
    }
}
