//! The request a handler sees: a view over bytes the event loop already read and parsed.
//!
//! Building a `Request` never copies the head: it shares the connection's read buffer
//! (an `Arc`) with the other requests of the same pipelined batch and keeps only spans.
//! It never touches a socket.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::http::parse::Head;
use crate::http::urlencoded;
use crate::http::{Method, Span, Version};
use crate::response::Response;
use crate::status;

/// The bytes of one batch of pipelined requests, shared by their `Request`s.
///
/// `bytes` is the connection's read buffer, moved (not copied) out of the connection when
/// the batch was dispatched; `len` is how much of it holds data (the rest is spare,
/// already-zeroed capacity kept so the buffer can be reused without a memset).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The read buffer (its whole length is usable; zeroed once when allocated).
    pub bytes: Vec<u8>,
    /// How many bytes of `bytes` hold data.
    pub len: usize,
    /// Header fields of every request in the batch, as (name, value) spans into `bytes`.
    pub fields: Vec<(Span, Span)>,
}

/// The body of a request as it was read by the loop.
#[derive(Debug)]
pub(crate) enum BodyRef {
    /// No body (no framing, or `Content-Length: 0`).
    Empty,
    /// A body lying in the batch buffer: a `Content-Length` body as it came, a chunked
    /// one decoded in place (its data moved down over its framing).
    Span(Span),
    /// A `Content-Length` body of this many bytes, too large to buffer: not read with
    /// the head, delivered to a [`BodySink`](crate::BodySink) if the handler asks.
    Streamed(u64),
}

/// A flag the event loop sets when the client went away while its request was running
/// (the equivalent of Go's `r.Context().Done()`). Cheap to clone; poll it in long work.
///
/// A request's flag has two parts: the connection's (set by the loop when the client
/// leaves; shared by every pipelined request of the batch) and, once someone asked for
/// [`Request::cancel_flag`], the request's own (set by e.g. the timeout middleware, so
/// cancelling one request leaves the others of its batch alone).
#[derive(Clone, Debug, Default)]
pub struct CancelFlag {
    conn: Arc<AtomicBool>,
    own: Option<Arc<AtomicBool>>,
}

impl CancelFlag {
    /// A new, unset flag.
    pub fn new() -> Self {
        Self::default()
    }
    /// True once the client disconnected (or a timeout middleware gave up on the request).
    pub fn is_cancelled(&self) -> bool {
        self.conn.load(Ordering::Acquire)
            || self.own.as_ref().is_some_and(|o| o.load(Ordering::Acquire))
    }
    /// Sets the flag: the request's own part when it has one, else the whole flag.
    pub fn cancel(&self) {
        match &self.own {
            Some(o) => o.store(true, Ordering::Release),
            None => self.conn.store(true, Ordering::Release),
        }
    }
    /// Clears the flag for reuse when nobody else holds it (the loop pools them, so a
    /// batch costs no allocation); `false` when it is still shared.
    pub(crate) fn try_reset(&mut self) -> bool {
        self.own = None;
        match Arc::get_mut(&mut self.conn) {
            Some(bit) => {
                *bit.get_mut() = false;
                true
            }
            None => false,
        }
    }
}

/// One HTTP request, as handed to a [`Handler`](crate::Handler).
#[derive(Debug)]
pub struct Request {
    /// The shared batch bytes the spans below point into.
    batch: Arc<Batch>,
    /// Parsed head: spans for method, target, path, query, and the range of its fields.
    head: Head,
    /// Where the body is.
    body: BodyRef,
    /// Headers added by middleware (e.g. a generated request id); looked up before the
    /// parsed ones, so setting a header overrides what the client sent.
    extra_headers: Vec<(String, String)>,
    /// Set by the loop when the client disconnects.
    cancel: CancelFlag,
    /// This request's own cancel bit, created when someone asks for the flag.
    own_cancel: OnceLock<Arc<AtomicBool>>,
    /// The client's address.
    peer: SocketAddr,
    /// The connection id used in every log line about this connection.
    conn_id: u64,
    /// It arrived over TLS.
    tls: bool,
    /// Path parameters captured by the router (`/parcels/{id}` → `id`).
    params: Vec<(Arc<str>, String)>,
    /// The pattern of the route the router picked (`/parcels/{id}`), for metrics labels
    /// and logs: a clone of the route's own `Arc`, so setting it never allocates.
    route: Option<Arc<str>>,
    /// Typed values middleware leaves for handlers (the principal, the request id…).
    extensions: Extensions,
}

/// A typed map: at most one value per type, set by middleware and read by handlers.
#[derive(Default)]
pub struct Extensions {
    /// Allocated on first insert, so requests that use none pay nothing.
    map: Option<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl Extensions {
    /// Stores `value`, returning the previous value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.map
            .get_or_insert_with(HashMap::new)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast().ok().map(|b| *b))
    }
    /// The value of type `T`, if set.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map.as_ref()?.get(&TypeId::of::<T>())?.downcast_ref()
    }
    /// The value of type `T`, mutably.
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.map
            .as_mut()?
            .get_mut(&TypeId::of::<T>())?
            .downcast_mut()
    }
    /// Removes and returns the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        self.map
            .as_mut()?
            .remove(&TypeId::of::<T>())
            .and_then(|b| b.downcast().ok().map(|b| *b))
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.map.as_ref().map_or(0, |m| m.len()))
            .finish()
    }
}

impl Request {
    pub(crate) fn new(
        batch: Arc<Batch>,
        head: Head,
        body: BodyRef,
        cancel: CancelFlag,
        peer: SocketAddr,
        conn_id: u64,
    ) -> Self {
        Request {
            batch,
            head,
            body,
            extra_headers: Vec::new(),
            cancel,
            own_cancel: OnceLock::new(),
            peer,
            conn_id,
            tls: false,
            params: Vec::new(),
            route: None,
            extensions: Extensions::default(),
        }
    }

    /// A request with no content, used as a placeholder while the real one is away on
    /// another thread (see the timeout middleware).
    pub fn placeholder() -> Request {
        let head = Head {
            method: Method::Get,
            method_span: Span::default(),
            target: Span::default(),
            path: Span::default(),
            query: None,
            version: Version::Http11,
            fields: 0..0,
            framing: crate::http::parse::Framing::None,
            keep_alive: true,
            expect_continue: false,
            len: 0,
        };
        Request::new(
            Arc::new(Batch::default()),
            head,
            BodyRef::Empty,
            CancelFlag::new(),
            SocketAddr::from(([0, 0, 0, 0], 0)),
            0,
        )
    }

    fn text(&self, span: Span) -> &str {
        // httparse admits only visible ASCII in the method and target, and field values
        // are checked to be UTF-8 by `header`; anything else reads as empty.
        std::str::from_utf8(span.get(&self.batch.bytes)).unwrap_or("")
    }

    /// The method, as an enum; [`Method::Other`] for extension methods (see `method_str`).
    pub fn method(&self) -> Method {
        self.head.method
    }

    /// The method as sent ("GET", "PROPFIND", …).
    pub fn method_str(&self) -> &str {
        self.text(self.head.method_span)
    }

    /// The request-target as sent, e.g. `/parcels/7?verbose=1`.
    pub fn target(&self) -> &str {
        self.text(self.head.target)
    }

    /// The authority the request is for (`host[:port]`): the target's own for an
    /// absolute-form target (`GET http://example.com/x`), where RFC 9112 §3.2.2 says an
    /// origin server MUST ignore the Host field; otherwise the Host field's value (checked
    /// by the parser: `uri-host [":" port]`). `None` for an HTTP/1.0 request without Host.
    pub fn host(&self) -> Option<&str> {
        let target = self.target();
        if !target.starts_with('/')
            && let Some(a) = crate::http::parse::absolute_authority(target.as_bytes())
        {
            // A sub-slice of the target, which the parser checked is ASCII.
            let at = a.as_ptr() as usize - target.as_ptr() as usize;
            return Some(&target[at..at + a.len()]);
        }
        self.header("host").map(str::trim)
    }

    /// The path part of the target (before `?`), still percent-encoded.
    pub fn path(&self) -> &str {
        self.text(self.head.path)
    }

    /// The raw query string (after `?`), if any, still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        self.head.query.map(|q| self.text(q))
    }

    /// The protocol version of the request.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The first value of header `name` (case-insensitive); headers set by middleware
    /// come first. Values that are not UTF-8 read as absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        if let Some((_, v)) = self
            .extra_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            return Some(v);
        }
        let bytes = &self.batch.bytes;
        self.fields()
            .iter()
            .filter(|(n, _)| n.get(bytes).eq_ignore_ascii_case(name.as_bytes()))
            .find_map(|(_, v)| std::str::from_utf8(v.get(bytes)).ok())
    }

    /// Every value of header `name`, in order (case-insensitive): the field lines of a
    /// repeatable header such as `X-Forwarded-For`. A header set by middleware replaces
    /// the values the client sent.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let extra = self
            .extra_headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let overridden = self
            .extra_headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name));
        let bytes = &self.batch.bytes;
        let parsed = self.fields().iter().filter_map(move |(n, v)| {
            if overridden || !n.get(bytes).eq_ignore_ascii_case(name.as_bytes()) {
                return None;
            }
            std::str::from_utf8(v.get(bytes)).ok()
        });
        extra.chain(parsed)
    }

    /// How many field lines header `name` has (case-insensitive), UTF-8 or not; set ones
    /// replace the client's, as in [`header_values`](Request::header_values).
    #[cfg(feature = "multipart")]
    pub(crate) fn header_lines(&self, name: &str) -> usize {
        let extra = self
            .extra_headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count();
        if extra > 0 {
            return extra;
        }
        let bytes = &self.batch.bytes;
        self.fields()
            .iter()
            .filter(|(n, _)| n.get(bytes).eq_ignore_ascii_case(name.as_bytes()))
            .count()
    }

    /// Every header as (name, value), in the order received (set ones first).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let bytes = &self.batch.bytes;
        let extra = self
            .extra_headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()));
        let parsed = self.fields().iter().filter_map(move |(n, v)| {
            let name = std::str::from_utf8(n.get(bytes)).ok()?;
            if self
                .extra_headers
                .iter()
                .any(|(e, _)| e.eq_ignore_ascii_case(name))
            {
                return None;
            }
            Some((name, std::str::from_utf8(v.get(bytes)).ok()?))
        });
        extra.chain(parsed)
    }

    /// Sets (replaces) a request header, e.g. a request id generated by middleware.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.extra_headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.extra_headers.push((name, value.into()));
    }

    fn fields(&self) -> &[(Span, Span)] {
        let r = &self.head.fields;
        &self.batch.fields[r.start as usize..r.end as usize]
    }

    /// The request body (empty when there is none). It was read completely, within
    /// `max_body_bytes`, before the handler was called.
    pub fn body(&self) -> &[u8] {
        match &self.body {
            BodyRef::Empty => &[],
            BodyRef::Span(s) => s.get(&self.batch.bytes),
            BodyRef::Streamed(_) => &[],
        }
    }

    /// `Some(length)` when the body is larger than `max_body_bytes` (and at most
    /// `max_upload_bytes`) and so was not read with the head: [`Request::body`] is empty,
    /// and answering [`Response::read_body`] receives it piece by piece.
    pub fn streamed_body_len(&self) -> Option<u64> {
        match self.body {
            BodyRef::Streamed(n) => Some(n),
            _ => None,
        }
    }

    /// The body as UTF-8 text, or `None` when it is not valid UTF-8.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(self.body()).ok()
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Same as [`peer_addr`](Request::peer_addr) (Go's `r.RemoteAddr`).
    pub fn remote_addr(&self) -> SocketAddr {
        self.peer
    }

    /// A path parameter captured by the router, percent-decoded (`/parcels/{id}`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every path parameter, in pattern order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (&**n, v.as_str()))
    }

    /// Sets a path parameter (the router does this before calling the handler).
    pub fn set_param(&mut self, name: Arc<str>, value: String) {
        self.params.push((name, value));
    }

    /// Removes every path parameter (the router, before matching).
    pub fn clear_params(&mut self) {
        self.params.clear();
    }

    /// The path pattern of the route that matched this request, group prefix included
    /// (`"/parcels/{id}"`, `"/api/v1/users/{id}"`): a label with few values, for metrics
    /// and logs, where the path itself would make one series per id. The method is not
    /// part of it (see [`method_str`](Request::method_str)).
    ///
    /// Set by the [`Router`](crate::Router) before it calls the route's handler, so
    /// middleware around the router sees it once `next.run(req)` returns, and the
    /// handler and the group's middleware see it at once. `None` before routing, and
    /// when the router answered itself: `404` (also through its `not_found` handler),
    /// `405`, or a `301` redirect. With a router inside another, the inner one's pattern.
    ///
    /// ```
    /// use h1server::{testing::TestRequest, Request, Response, Router};
    ///
    /// let mut r = Router::new();
    /// r.get("/parcels/{id}", |req: &mut Request| {
    ///     Response::text(req.route().unwrap_or("?").to_string())
    /// });
    /// assert_eq!(TestRequest::get("/parcels/7").run(&r).body_bytes(), b"/parcels/{id}");
    /// ```
    pub fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }

    /// The matched route's pattern as the router shares it (for metrics labels: a clone is
    /// a reference count, not a copy).
    pub(crate) fn route_arc(&self) -> Option<&Arc<str>> {
        self.route.as_ref()
    }

    /// Records the matched route's pattern (the router, when it picks a route; `None`
    /// before matching).
    pub(crate) fn set_route(&mut self, pattern: Option<Arc<str>>) {
        self.route = pattern;
    }

    /// The first value of query parameter `name`, percent-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        urlencoded::pairs(self.query()?)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Every value of query parameter `name` (`?tag=a&tag=b`), in order.
    pub fn query_params(&self, name: &str) -> Vec<Cow<'_, str>> {
        self.query()
            .map(|q| {
                urlencoded::pairs(q)
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every query parameter as decoded (name, value) pairs, in order.
    pub fn query_pairs(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        self.query()
            .map(|q| urlencoded::pairs(q).collect())
            .unwrap_or_default()
    }

    /// The body as an `application/x-www-form-urlencoded` form: decoded pairs in order.
    /// `415` when the content type is another one, `400` when the body is not UTF-8.
    pub fn form(&self) -> Result<Vec<(String, String)>, Response> {
        let ct = self.header("content-type").unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(Response::error(
                status::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: application/x-www-form-urlencoded\n",
            ));
        }
        let text = self
            .body_text()
            .ok_or_else(|| Response::error(status::BAD_REQUEST, "form body is not UTF-8\n"))?;
        Ok(urlencoded::pairs(text)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect())
    }

    /// The body parsed as JSON into `T`: `415` unless the content type is JSON
    /// (`application/json` or `*/*+json`), `400` naming the error when it does not parse.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Response> {
        let ct = self.header("content-type").unwrap_or("");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(Response::error(
                status::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: application/json\n",
            ));
        }
        serde_json::from_slice(self.body())
            .map_err(|e| Response::error(status::BAD_REQUEST, format!("invalid JSON body: {e}\n")))
    }

    /// Typed values set by middleware.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Typed values, to set or change.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// The id of the connection this request arrived on (as in the trace log).
    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// Whether the request arrived over TLS (the server has `tls_cert` and `tls_key`; Go's
    /// `r.TLS != nil`): its scheme is `https`, as the reverse proxy tells the upstream in
    /// `X-Forwarded-Proto`.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Marks the request as arrived over TLS (the pool, for a TLS server's connections;
    /// `TestRequest::tls`).
    pub(crate) fn set_tls(&mut self, tls: bool) {
        self.tls = tls;
    }

    /// True once the client has disconnected: stop early, the answer will not be read.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
            || self
                .own_cancel
                .get()
                .is_some_and(|o| o.load(Ordering::Acquire))
    }

    /// The cancellation flag itself, to hand to other threads doing work for this request.
    /// Cancelling through it cancels this request only; the client leaving cancels it too.
    pub fn cancel_flag(&self) -> CancelFlag {
        CancelFlag {
            conn: self.cancel.conn.clone(),
            own: Some(self.own_cancel.get_or_init(Arc::default).clone()),
        }
    }

    /// True when the client asked to keep the connection open after this request.
    pub fn wants_keep_alive(&self) -> bool {
        self.head.keep_alive
    }
}

#[cfg(test)]
mod tests {
    use crate::Response;
    use crate::testing::TestRequest;

    #[test]
    fn query_parameters_are_decoded_and_repeatable() {
        let req = TestRequest::get("/s?q=caf%C3%A9+au+lait&tag=a&tag=b&empty&x=%zz").build();
        assert_eq!(req.query_param("q").as_deref(), Some("café au lait"));
        assert_eq!(req.query_params("tag"), ["a", "b"]);
        assert_eq!(req.query_param("empty").as_deref(), Some(""));
        assert_eq!(req.query_param("x").as_deref(), Some("%zz"));
        assert_eq!(req.query_param("missing"), None);
        assert_eq!(req.query_pairs().len(), 5);
        assert_eq!(req.path(), "/s");
    }

    #[test]
    fn host_is_the_absolute_form_authority_or_the_host_field() {
        let req = TestRequest::get("/x")
            .header("Host", "a.example:8080")
            .build();
        assert_eq!(req.host(), Some("a.example:8080"));
        // RFC 9112 §3.2.2: an absolute-form target's authority overrides Host.
        let req = TestRequest::get("http://b.example/x?y")
            .header("Host", "a.example")
            .build();
        assert_eq!(req.host(), Some("b.example"));
        let req = TestRequest::get("http://b.example:81?y")
            .header("Host", "a")
            .build();
        assert_eq!(req.host(), Some("b.example:81"));
        assert_eq!(TestRequest::get("/").http10().build().host(), None);
    }

    #[test]
    fn headers_are_case_insensitive_repeatable_and_overridable() {
        let mut req = TestRequest::get("/")
            .header("Accept", "text/html")
            .header("accept", "application/json")
            .build();
        assert_eq!(req.header("ACCEPT"), Some("text/html"));
        assert_eq!(
            req.header_values("accept").collect::<Vec<_>>(),
            ["text/html", "application/json"]
        );
        req.set_header("Accept", "text/plain");
        assert_eq!(
            req.header_values("accept").collect::<Vec<_>>(),
            ["text/plain"]
        );
        assert_eq!(
            req.headers().collect::<Vec<_>>(),
            [("Accept", "text/plain"), ("Host", "test.local")]
        );
    }

    #[test]
    fn forms_need_their_content_type() {
        let ok = TestRequest::post("/")
            .form("name=Ada+L&tags=a&tags=b%2Cc")
            .build();
        let pairs = ok.form().unwrap();
        assert_eq!(pairs[0], ("name".to_string(), "Ada L".to_string()));
        assert_eq!(pairs[2].1, "b,c");
        let wrong = TestRequest::post("/").body("name=Ada").build();
        assert_eq!(wrong.form().unwrap_err().status(), 415);
        let bad = TestRequest::post("/")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(vec![0xff, 0xfe])
            .build();
        assert_eq!(bad.form().unwrap_err().status(), 400);
        assert_eq!(bad.body_text(), None);
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_bodies_give_400_or_415_on_bad_input() {
        #[derive(serde::Deserialize, Debug)]
        struct In {
            n: u32,
        }
        let ok = TestRequest::post("/").json(r#"{"n": 7}"#).build();
        assert_eq!(ok.json::<In>().unwrap().n, 7);
        let typed = TestRequest::post("/")
            .header("Content-Type", "application/problem+json; charset=utf-8")
            .body(r#"{"n": 1}"#)
            .build();
        assert_eq!(typed.json::<In>().unwrap().n, 1);
        let broken = TestRequest::post("/").json("{n:").build();
        assert_eq!(broken.json::<In>().unwrap_err().status(), 400);
        let wrong_type = TestRequest::post("/").json(r#"{"n": "x"}"#).build();
        assert_eq!(wrong_type.json::<In>().unwrap_err().status(), 400);
        let not_json = TestRequest::post("/").body(r#"{"n": 7}"#).build();
        assert_eq!(not_json.json::<In>().unwrap_err().status(), 415);
    }

    #[test]
    fn response_helpers_set_status_type_and_location() {
        let r = Response::redirect("/next");
        assert_eq!((r.status(), r.header("location")), (302, Some("/next")));
        let r = Response::html("<p>hi</p>");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let r = Response::error(404, "");
        assert_eq!((r.status(), r.body_bytes()), (404, &b"Not Found\n"[..]));
        let mut r = Response::text("x").with_header("X-A", "1");
        r.set_header("x-a", "2");
        assert_eq!(r.header_values("X-A").collect::<Vec<_>>(), ["2"]);
        assert_eq!(r.headers().filter(|(n, _)| *n == "x-a").count(), 1);
        assert!(
            Response::text("x")
                .with_header("Connection", "close")
                .wants_close()
        );
    }
}
