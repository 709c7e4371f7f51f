//! Request metadata: the `RequestId` middleware gives every request a request id, a
//! correlation id and its idempotency key ([`RequestMeta`]), and [`propagate`] copies them
//! onto outgoing calls (the Go seed's `attachMetadata` and `copyMetadataToRequest`).
//!
//! It never trusts an incoming id it has not validated (at most 128 visible ASCII
//! characters), so ids are safe to log and to echo in a response header.
//!
//! # Why generated ids look like UUID v4 and are not timestamps
//!
//! The seed's `temporaryID` uses `time.Now().UnixNano()`: two workers (or two replicas)
//! answering in the same nanosecond tick — or a clock that steps back — hand out the same
//! id, and the id leaks when the server ran. Here an id is a per-process random 64-bit seed
//! (from [`RandomState`], whose keys the standard library draws from the OS at random for
//! every process, hashed with the pid and the start time) combined with an atomic counter:
//!
//! * within one process every id is different, whatever the thread: the counter is taken
//!   with one `fetch_add` and goes through a bijective mix, so different counters always
//!   give different ids (for 2^64 requests);
//! * across restarts and replicas ids differ because the seeds do (58 of its bits are kept;
//!   two processes collide with probability 2^-58);
//! * they are laid out as a UUID version 4 (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`) so log
//!   pipelines and databases that expect UUIDs accept them.
//!
//! They are *not* secrets: never use a request id as a token or a nonce.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use log::debug;

use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;

/// The request header carrying the id of this one request attempt.
pub(crate) const REQUEST_ID: &str = "X-Request-ID";
/// The request header tying related requests of one workflow together.
pub(crate) const CORRELATION_ID: &str = "X-Correlation-ID";
/// The request header naming one logical operation, so a retry is not applied twice.
pub(crate) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The longest incoming request or correlation id that is kept (longer ones are replaced).
const MAX_ID_LEN: usize = 128;

/// The metadata of one request, stored in its extensions by [`RequestId`].
///
/// ```
/// use h1server::middleware::{RequestId, RequestMeta, Stack};
/// use h1server::{testing::TestRequest, Request, Response};
///
/// let app = Stack::new(|req: &mut Request| {
///     let meta = RequestMeta::of(req).expect("RequestId ran");
///     Response::text(format!("{} {}", meta.request_id, meta.correlation_id))
/// })
/// .with(RequestId::default());
/// let resp = TestRequest::get("/").header("X-Request-ID", "req-1").run(&app);
/// assert_eq!(resp.body_bytes(), b"req-1 req-1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMeta {
    /// `X-Request-ID`: this request attempt (a retry may get a new one). The client's
    /// value when valid, a generated UUID-shaped id otherwise.
    pub request_id: String,
    /// `X-Correlation-ID`: the workflow this request belongs to; the request id when the
    /// client sent none (or an invalid one).
    pub correlation_id: String,
    /// `Idempotency-Key`: the logical operation, when the client named one.
    pub idempotency_key: Option<String>,
}

impl RequestMeta {
    /// The metadata [`RequestId`] stored on this request, if that middleware ran.
    pub fn of(req: &Request) -> Option<&RequestMeta> {
        req.extensions().get::<RequestMeta>()
    }

    /// The headers to copy onto an outgoing request so the next service logs the same
    /// ids: `X-Request-ID`, `X-Correlation-ID`, and `Idempotency-Key` when set.
    pub fn outgoing_headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (REQUEST_ID, self.request_id.clone()),
            (CORRELATION_ID, self.correlation_id.clone()),
        ];
        if let Some(key) = &self.idempotency_key {
            out.push((IDEMPOTENCY_KEY, key.clone()));
        }
        out
    }

    /// [`outgoing_headers`](Self::outgoing_headers), borrowed.
    #[cfg(feature = "proxy")]
    pub(crate) fn outgoing_fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some((REQUEST_ID, self.request_id.as_str())),
            Some((CORRELATION_ID, self.correlation_id.as_str())),
            self.idempotency_key
                .as_deref()
                .map(|k| (IDEMPOTENCY_KEY, k)),
        ]
        .into_iter()
        .flatten()
    }

    /// Reads (and validates) the metadata the client sent, generating what is missing.
    pub(crate) fn from_request(req: &Request, trust_incoming: bool) -> RequestMeta {
        let incoming = req.header(REQUEST_ID).filter(|_| trust_incoming);
        let request_id = match incoming {
            Some(id) if is_valid_id(id) => id.to_string(),
            other => {
                if other.is_some() {
                    debug!("conn={} invalid X-Request-ID replaced", req.conn_id());
                }
                generate_id()
            }
        };
        let correlation_id = match req.header(CORRELATION_ID) {
            Some(id) if is_valid_id(id) => id.to_string(),
            _ => request_id.clone(),
        };
        // The same rules as the idempotency store (unquoted, printable, at most 255
        // bytes): a malformed key is not echoed into logs or outgoing requests.
        let idempotency_key = req
            .header(IDEMPOTENCY_KEY)
            .and_then(super::idempotency::parse_key)
            .map(str::to_string);
        RequestMeta {
            request_id,
            correlation_id,
            idempotency_key,
        }
    }
}

/// Copies the request's metadata onto the headers of an outgoing request (replacing any
/// header of the same name, like Go's `Header.Set`). Does nothing when [`RequestId`] did
/// not run on `req`.
///
/// ```
/// use h1server::middleware::{propagate, RequestId, Stack};
/// use h1server::{testing::TestRequest, Request, Response};
///
/// let app = Stack::new(|req: &mut Request| {
///     let mut outgoing = vec![("Accept".to_string(), "application/json".to_string())];
///     propagate(req, &mut outgoing);
///     Response::text(format!("{outgoing:?}"))
/// })
/// .with(RequestId::default());
/// let resp = TestRequest::get("/").header("X-Request-ID", "r-9").run(&app);
/// let body = String::from_utf8(resp.body_bytes().to_vec()).unwrap();
/// assert!(body.contains(r#"("X-Request-ID", "r-9")"#));
/// ```
pub fn propagate(req: &Request, headers: &mut Vec<(String, String)>) {
    let Some(meta) = RequestMeta::of(req) else {
        return;
    };
    for (name, value) in meta.outgoing_headers() {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.to_string(), value));
    }
}

/// Middleware that attaches a [`RequestMeta`] to every request.
///
/// Before the rest of the chain: takes `X-Request-ID` from the request when it is present,
/// non-empty and at most 128 visible ASCII characters (otherwise generates one),
/// `X-Correlation-ID` likewise (defaulting to the request id), and `Idempotency-Key` when
/// present; stores them in the request's extensions and sets the request headers to the
/// final values. After it: echoes `X-Request-ID` and `X-Correlation-ID` in the response.
///
/// At an edge facing untrusted clients, [`trust_incoming(false)`](RequestId::trust_incoming)
/// generates every request id (a client's correlation id is still kept).
#[derive(Clone, Copy, Debug)]
pub struct RequestId {
    /// Whether a valid incoming `X-Request-ID` is kept (true) or always replaced.
    trust_incoming: bool,
}

impl Default for RequestId {
    /// Keeps valid incoming request ids.
    fn default() -> Self {
        RequestId {
            trust_incoming: true,
        }
    }
}

impl RequestId {
    /// Whether a valid incoming `X-Request-ID` is kept (default `true`); with `false`
    /// every request gets a generated id.
    pub fn trust_incoming(mut self, trust: bool) -> Self {
        self.trust_incoming = trust;
        self
    }
}

impl Middleware for RequestId {
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        let meta = RequestMeta::from_request(req, self.trust_incoming);
        let request_id = meta.request_id.clone();
        let correlation_id = meta.correlation_id.clone();
        req.set_header(REQUEST_ID, request_id.clone());
        req.set_header(CORRELATION_ID, correlation_id.clone());
        req.extensions_mut().insert(meta);
        let mut resp = next.run(req);
        resp.set_header(REQUEST_ID, request_id);
        resp.set_header(CORRELATION_ID, correlation_id);
        resp
    }
}

/// True for an id worth keeping: 1 to 128 visible ASCII characters (RFC 9110 `VCHAR`
/// without obs-text), so it needs no escaping in a header or a log line.
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The per-process state of the id generator.
struct IdSource {
    /// Random per process; its top 58 bits go into every id.
    seed: u64,
    /// Random per process; XORed into the counter before mixing, so two processes do
    /// not walk the same sequence of low halves.
    key: u64,
    /// How many ids this process generated.
    counter: AtomicU64,
}

fn id_source() -> &'static IdSource {
    static SOURCE: OnceLock<IdSource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        // RandomState::new() draws its SipHash keys from the OS once per process (then
        // per thread); hashing the pid and the start time on top separates forks.
        let mut h = RandomState::new().build_hasher();
        std::process::id().hash(&mut h);
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .hash(&mut h);
        let seed = h.finish();
        seed.hash(&mut h);
        let key = h.finish();
        IdSource {
            seed,
            key,
            counter: AtomicU64::new(0),
        }
    })
}

/// A new request id, unique in this process and (with overwhelming probability) across
/// processes; see the module docs.
pub(crate) fn generate_id() -> String {
    let src = id_source();
    let n = src.counter.fetch_add(1, Ordering::Relaxed);
    format_uuid(src.seed, mix(n ^ src.key))
}

/// The splitmix64 finaliser: a bijection on `u64` (each step is invertible), so distinct
/// counters stay distinct while consecutive ids do not look consecutive.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Lays the top 58 bits of `seed` and all 64 bits of `low` into the 122 free bits of a
/// UUID version 4 (RFC 9562 §5.4): version nibble `4`, variant bits `10`. Injective in
/// (`seed >> 6`, `low`).
fn format_uuid(seed: u64, low: u64) -> String {
    let payload: u128 = (u128::from(seed >> 6) << 64) | u128::from(low); // 122 bits
    let a = (payload >> 74) as u64 & 0xffff_ffff_ffff; // 48 bits: time_low, time_mid
    let b = (payload >> 62) as u64 & 0xfff; // 12 bits after the version nibble
    let c = payload as u64 & ((1 << 62) - 1); // 62 bits after the variant
    let hi = (a << 16) | (0x4 << 12) | b;
    let lo = (0b10 << 62) | c;
    // `{:08x}-{:04x}-{:04x}-{:04x}-{:012x}` of (hi >> 32, hi >> 16, hi, lo >> 48, lo), written
    // straight into one string (the formatter grew it four times per id).
    let mut out = String::with_capacity(36);
    for (value, digits) in [
        (hi >> 32, 8),
        ((hi >> 16) & 0xffff, 4),
        (hi & 0xffff, 4),
        (lo >> 48, 4),
        (lo & 0xffff_ffff_ffff, 12),
    ] {
        if !out.is_empty() {
            out.push('-');
        }
        for i in (0..digits).rev() {
            let nibble = ((value >> (4 * i)) & 0xf) as u32;
            out.push(char::from_digit(nibble, 16).expect("a nibble is a hex digit"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::Stack;
    use crate::testing::TestRequest;
    use std::collections::HashSet;

    /// `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`, y in 8..b, lowercase hex.
    fn is_uuid_v4(s: &str) -> bool {
        let groups: Vec<&str> = s.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        lens == [8, 4, 4, 4, 12]
            && groups
                .iter()
                .all(|g| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            && groups[2].starts_with('4')
            && matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
    }

    fn echo_meta() -> Stack {
        Stack::new(|req: &mut Request| {
            let m = RequestMeta::of(req).cloned().expect("meta set");
            Response::text(format!(
                "{}|{}|{}|{}",
                m.request_id,
                m.correlation_id,
                m.idempotency_key.as_deref().unwrap_or("-"),
                req.header("x-request-id").unwrap_or("?")
            ))
        })
        .with(RequestId::default())
    }

    fn body(resp: &Response) -> String {
        String::from_utf8(resp.body_bytes().to_vec()).unwrap()
    }

    #[test]
    fn generated_ids_are_uuid_v4_shaped_and_distinct_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..2000).map(|_| generate_id()).collect::<Vec<_>>()))
            .collect();
        let mut seen = HashSet::new();
        for t in threads {
            for id in t.join().unwrap() {
                assert!(is_uuid_v4(&id), "{id}");
                assert!(seen.insert(id), "duplicate id");
            }
        }
    }

    #[test]
    fn uuid_layout_keeps_every_counter_bit() {
        let ids: HashSet<String> = (0..64).map(|i| format_uuid(7 << 6, 1 << i)).collect();
        assert_eq!(ids.len(), 64);
        assert!(ids.iter().all(|id| is_uuid_v4(id)));
        assert_ne!(format_uuid(1 << 6, 0), format_uuid(2 << 6, 0));
        assert_eq!(
            format_uuid(0, 0),
            "00000000-0000-4000-8000-000000000000",
            "version nibble and variant bits"
        );
    }

    #[test]
    fn uuid_digits_are_the_formatters() {
        for (seed, low) in [
            (0u64, 0u64),
            (u64::MAX, u64::MAX),
            (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
            (mix(1), mix(2)),
            (mix(3), mix(4)),
        ] {
            let payload: u128 = (u128::from(seed >> 6) << 64) | u128::from(low);
            let a = (payload >> 74) as u64 & 0xffff_ffff_ffff;
            let b = (payload >> 62) as u64 & 0xfff;
            let c = payload as u64 & ((1 << 62) - 1);
            let (hi, lo) = ((a << 16) | (0x4 << 12) | b, (0b10 << 62) | c);
            let want = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                hi >> 32,
                (hi >> 16) & 0xffff,
                hi & 0xffff,
                lo >> 48,
                lo & 0xffff_ffff_ffff
            );
            assert_eq!(format_uuid(seed, low), want);
        }
    }

    #[test]
    fn mix_is_a_bijection_on_a_sample() {
        let out: HashSet<u64> = (0..10_000u64).map(mix).collect();
        assert_eq!(out.len(), 10_000);
    }

    #[test]
    fn valid_incoming_id_is_kept_and_correlation_defaults_to_it() {
        let resp = TestRequest::get("/")
            .header("X-Request-ID", "abc-123")
            .run(&echo_meta());
        assert_eq!(body(&resp), "abc-123|abc-123|-|abc-123");
        assert_eq!(resp.header("x-request-id"), Some("abc-123"));
        assert_eq!(resp.header("x-correlation-id"), Some("abc-123"));
    }

    #[test]
    fn invalid_incoming_ids_are_replaced() {
        let long = "a".repeat(129);
        for bad in [long.as_str(), "has space", "caf\u{e9}"] {
            let resp = TestRequest::get("/")
                .header("X-Request-ID", bad)
                .header("X-Correlation-ID", bad)
                .run(&echo_meta());
            let b = body(&resp);
            let parts: Vec<&str> = b.split('|').collect();
            assert!(is_uuid_v4(parts[0]), "{bad:?} -> {b}");
            assert_eq!(
                parts[1], parts[0],
                "correlation falls back to the request id"
            );
            assert_eq!(parts[3], parts[0], "request header overridden");
        }
        assert!(is_valid_id(&"a".repeat(128)));
    }

    #[test]
    fn untrusted_incoming_request_ids_are_always_replaced() {
        let app = Stack::new(|req: &mut Request| {
            Response::text(RequestMeta::of(req).unwrap().correlation_id.clone())
        })
        .with(RequestId::default().trust_incoming(false));
        let resp = TestRequest::get("/")
            .header("X-Request-ID", "client-chosen")
            .header("X-Correlation-ID", "flow-1")
            .run(&app);
        let id = resp.header("x-request-id").unwrap();
        assert!(is_uuid_v4(id), "{id}");
        assert_eq!(resp.body_bytes(), b"flow-1", "correlation id still kept");
    }

    #[test]
    fn correlation_and_idempotency_key_are_captured() {
        let resp = TestRequest::post("/")
            .header("X-Correlation-ID", "flow-7")
            .header("Idempotency-Key", "op-42")
            .run(&echo_meta());
        let b = body(&resp);
        let parts: Vec<&str> = b.split('|').collect();
        assert!(is_uuid_v4(parts[0]));
        assert_eq!(&parts[1..3], ["flow-7", "op-42"]);
        assert_eq!(resp.header("x-correlation-id"), Some("flow-7"));
    }

    #[test]
    fn outgoing_headers_and_propagate_replace_existing_values() {
        let meta = RequestMeta {
            request_id: "r".into(),
            correlation_id: "c".into(),
            idempotency_key: None,
        };
        assert_eq!(
            meta.outgoing_headers(),
            vec![
                (REQUEST_ID, "r".to_string()),
                (CORRELATION_ID, "c".to_string())
            ]
        );
        let mut req = TestRequest::get("/").build();
        let mut headers = vec![("x-request-id".to_string(), "old".to_string())];
        propagate(&req, &mut headers);
        assert_eq!(headers.len(), 1, "nothing to propagate without RequestId");
        req.extensions_mut().insert(RequestMeta {
            idempotency_key: Some("k".into()),
            ..meta
        });
        propagate(&req, &mut headers);
        assert_eq!(
            headers,
            vec![
                ("X-Request-ID".to_string(), "r".to_string()),
                ("X-Correlation-ID".to_string(), "c".to_string()),
                ("Idempotency-Key".to_string(), "k".to_string()),
            ]
        );
    }
}
