//! The response a handler returns: status, headers and a body that is either complete
//! bytes or a stream produced piece by piece.
//!
//! Building a response never writes to a socket; the worker encodes it
//! (`http/encode.rs`) and the event loop writes it.

use std::borrow::Cow;
use std::fmt;

use crate::stream::{StreamSender, StreamShared};
use crate::upgrade::{Takeover, Upgraded};
use crate::upload::{BodySink, Sink};

/// What a handler answers.
pub struct Response {
    /// The status code (100–999).
    status: u16,
    /// Headers in the order they will be written. `Content-Length`, `Transfer-Encoding`,
    /// `Connection` and `Date` are owned by the engine and skipped if set here, except that
    /// `Connection: close` asks the engine to close after this response.
    headers: Fields,
    /// The body.
    pub(crate) body: Body,
    /// Takes the connection over once this response is written.
    pub(crate) upgrade: Option<Takeover>,
    /// Receives the request's streamed body; the answer comes from it.
    pub(crate) sink: Option<Sink>,
    /// The answer comes from an upstream the event loop asks (the reverse proxy).
    #[cfg(feature = "proxy")]
    pub(crate) forward: Option<Box<crate::forward::Exchange>>,
}

/// A response body.
pub(crate) enum Body {
    /// No content.
    Empty,
    /// Borrowed bytes that live forever (no allocation for fixed answers).
    Static(&'static [u8]),
    /// Owned bytes.
    Bytes(Vec<u8>),
    /// Sent piece by piece with chunked transfer-encoding.
    Stream(StreamBody),
}

/// How a streamed body is produced.
pub(crate) enum StreamBody {
    /// Pulled piece by piece: the event loop asks for more (a short job on the pool) only
    /// when the socket has room, so a client that stops reading holds no thread.
    Pull(Pull),
    /// A channel whose sender the handler already handed to another thread.
    Channel(std::sync::Arc<StreamShared>),
}

/// The next piece of a pulled body: `None` at the end, `Some(Err(why))` when producing it
/// failed (the body is then cut off without its last chunk).
pub(crate) type Pull = Box<dyn FnMut() -> Option<Result<Vec<u8>, String>> + Send + 'static>;

impl Response {
    /// An empty response with this status: a [`status`](crate::status) constant, or any
    /// code in 100–999.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Fields::default(),
            body: Body::Empty,
            upgrade: None,
            sink: None,
            #[cfg(feature = "proxy")]
            forward: None,
        }
    }

    /// When this answer's status is decided later (an upstream exchange run by the event
    /// loop), `f` is kept and called with it then, on a worker; otherwise `f` is given
    /// back.
    #[cfg(feature = "proxy")]
    pub(crate) fn when_answered(
        &mut self,
        f: Box<dyn FnOnce(u16) + Send>,
    ) -> Result<(), Box<dyn FnOnce(u16) + Send>> {
        match self.forward.as_mut() {
            Some(ex) => {
                ex.on_status.push(f);
                Ok(())
            }
            None => Err(f),
        }
    }

    /// True when the answer comes later from an upstream (its status here is a stand-in).
    #[cfg(feature = "proxy")]
    pub(crate) fn is_forward(&self) -> bool {
        self.forward.is_some()
    }

    /// Moves the headers out (the forwarded answer's, which middleware may have set).
    #[cfg(feature = "proxy")]
    pub(crate) fn take_headers(&mut self) -> Vec<(Cow<'static, str>, Cow<'static, str>)> {
        std::mem::take(&mut self.headers).into_vec()
    }

    /// An answer the event loop gets from an upstream: it sends `ex.request` there and
    /// relays what comes back, holding no worker meanwhile (`forward.rs`).
    #[cfg(feature = "proxy")]
    pub(crate) fn forward(ex: crate::forward::Exchange) -> Self {
        let mut r = Response::new(502);
        r.forward = Some(Box::new(ex));
        r
    }

    /// [`OK`](crate::status::OK) with a `text/plain; charset=utf-8` body. A `&'static str`
    /// is not copied.
    pub fn text(body: impl Into<Cow<'static, str>>) -> Self {
        Response::new(200)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(cow_bytes(body.into()))
    }

    /// [`OK`](crate::status::OK) with a `text/html; charset=utf-8` body.
    pub fn html(body: impl Into<Cow<'static, str>>) -> Self {
        Response::new(200)
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_body(cow_bytes(body.into()))
    }

    /// [`OK`](crate::status::OK) with an `application/json` body that is already
    /// serialised JSON text.
    pub fn json_text(body: impl Into<Cow<'static, str>>) -> Self {
        Response::new(200)
            .with_header("Content-Type", "application/json")
            .with_body(cow_bytes(body.into()))
    }

    /// [`OK`](crate::status::OK) with `value` serialised as JSON
    /// ([`INTERNAL_SERVER_ERROR`](crate::status::INTERNAL_SERVER_ERROR) if it cannot be
    /// serialised).
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(mut body) => {
                body.push(b'\n');
                Response::new(200)
                    .with_header("Content-Type", "application/json")
                    .with_body(body)
            }
            Err(e) => {
                log::error!("response JSON serialisation failed: {e}");
                Response::error(500, "")
            }
        }
    }

    /// A redirect to `location`: [`FOUND`](crate::status::FOUND) (302), unless another 3xx
    /// is given later (`.with_status(status::SEE_OTHER)`).
    pub fn redirect(location: impl Into<Cow<'static, str>>) -> Self {
        Response::new(302).with_header("Location", location)
    }

    /// An error response: `status` with a short plain-text body (the reason phrase when
    /// `message` is empty).
    ///
    /// ```
    /// use h1server::{status, Response};
    /// let r = Response::error(status::NOT_FOUND, "");
    /// assert_eq!((r.status(), r.body_bytes()), (404, &b"Not Found\n"[..]));
    /// ```
    pub fn error(status: u16, message: impl Into<Cow<'static, str>>) -> Self {
        let mut message = message.into();
        if message.is_empty() {
            message = Cow::Owned(format!("{}\n", crate::http::encode::reason(status)));
        }
        Response::text(message).with_status(status)
    }

    /// A body produced piece by piece by `pieces`, pulled when the client can take more:
    /// each piece becomes one chunk on the wire, and the body ends with the iterator.
    ///
    /// The event loop asks for the next pieces only when the connection's buffer has
    /// room, as a short job on the worker pool, so a client that stops reading costs a
    /// bounded buffer and no thread (it is closed at `write_timeout`).
    ///
    /// # Warning
    /// Each `next()` runs on a worker: it should produce a piece promptly (read a file
    /// block, render a row). A stream paced by time or by events (SSE, a ticker) should use
    /// [`Response::channel`] fed from the application's own thread instead.
    pub fn stream<I, B>(pieces: I) -> Self
    where
        I: IntoIterator<Item = B>,
        I::IntoIter: Send + 'static,
        B: Into<Vec<u8>>,
    {
        let mut it = pieces.into_iter();
        Self::pulled(Box::new(move || it.next().map(|b| Ok(b.into()))))
    }

    /// Like [`Response::stream`], for producers that can fail: at the first `Err` the
    /// body is cut off without its last chunk (and the connection closed), so the client
    /// cannot mistake a truncated body for a complete one. The error is logged.
    pub fn try_stream<I, B, E>(pieces: I) -> Self
    where
        I: IntoIterator<Item = Result<B, E>>,
        I::IntoIter: Send + 'static,
        B: Into<Vec<u8>>,
        E: fmt::Display,
    {
        let mut it = pieces.into_iter();
        Self::pulled(Box::new(move || {
            it.next()
                .map(|r| r.map(Into::into).map_err(|e| e.to_string()))
        }))
    }

    fn pulled(pull: Pull) -> Self {
        let mut r = Response::new(200);
        r.body = Body::Stream(StreamBody::Pull(pull));
        r
    }

    /// Receives the body of a request that came without it
    /// ([`Request::streamed_body_len`](crate::Request::streamed_body_len) is `Some`): the
    /// event loop reads the body and hands it to `sink` piece by piece, each piece a short
    /// job on the pool, and the answer is what [`BodySink::finish`] returns. A slow
    /// uploader holds no worker. Answering anything else to such a request sends that
    /// answer and closes the connection (the body is not read).
    pub fn read_body(sink: impl BodySink) -> Self {
        let mut r = Response::new(200);
        r.sink = Some(Box::new(sink));
        r
    }

    /// Switches protocols after this response (RFC 9110 §7.8): once it is written, the
    /// connection — its socket and any bytes already read past the request head — is
    /// handed to `on_upgrade` and the server forgets it. Usually on a `101` with an
    /// `Upgrade` header; the engine adds `Connection: Upgrade`. Requests pipelined behind
    /// this one are not answered: their bytes belong to the new protocol
    /// ([`Upgraded::read_ahead`](crate::Upgraded)).
    ///
    /// # Warning
    /// `on_upgrade` runs on a worker: hand the connection to a thread or event loop of
    /// your own and return, or the worker stays held for as long as the connection lives.
    pub fn upgrade(mut self, on_upgrade: impl FnOnce(Upgraded) + Send + 'static) -> Self {
        self.upgrade = Some(Takeover::Callback(Box::new(on_upgrade)));
        self
    }

    /// A streamed body fed through the returned sender, which may be moved to any thread
    /// (a ticker, a broadcast hub). The handler returns at once and frees its worker.
    /// Dropping the sender ends the body.
    pub fn channel() -> (Self, StreamSender) {
        let shared = StreamShared::new();
        let mut r = Response::new(200);
        r.body = Body::Stream(StreamBody::Channel(shared.clone()));
        (r, StreamSender::new(shared))
    }

    /// Server-sent events: a streamed `text/event-stream` body through a channel, with
    /// `Cache-Control: no-cache`.
    pub fn sse() -> (Self, StreamSender) {
        let (r, tx) = Response::channel();
        (
            r.with_header("Content-Type", "text/event-stream")
                .with_header("Cache-Control", "no-cache"),
            tx,
        )
    }

    /// Replaces the status, e.g. with [`status::CREATED`](crate::status::CREATED).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header (repeatable names are kept in order).
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a header, replacing any previous value of the same name.
    pub fn set_header(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) {
        let name = name.into();
        self.headers.retain(|n| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
    }

    /// Removes every header of this name.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|n| !n.eq_ignore_ascii_case(name));
    }

    /// Replaces the body with complete bytes.
    pub fn with_body(mut self, body: impl Into<Cow<'static, [u8]>>) -> Self {
        self.body = match body.into() {
            Cow::Borrowed(b) => Body::Static(b),
            Cow::Owned(v) => Body::Bytes(v),
        };
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Sets the status code.
    pub fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    /// The first value of a header set on this response (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of header `name`, in order (case-insensitive).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header as (name, value), in the order they will be written.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter()
    }

    /// The complete body bytes (empty for a streamed body).
    pub fn body_bytes(&self) -> &[u8] {
        match &self.body {
            Body::Empty | Body::Stream(_) => &[],
            Body::Static(b) => b,
            Body::Bytes(v) => v,
        }
    }

    /// True when the body is streamed.
    pub fn is_stream(&self) -> bool {
        matches!(self.body, Body::Stream(_))
    }

    /// True when the handler asked for the connection to close after this response.
    pub fn wants_close(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("connection")
                && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))
        })
    }
}

type Field = (Cow<'static, str>, Cow<'static, str>);

/// A response's header fields, in order: a first `Content-Type` field with a
/// `&'static str` value inline, the rest in a `Vec`. Most answers carry just that field
/// (`Response::text`, `html`, `json`), so building them allocates nothing: the `Vec` was
/// the one allocation per request left on the request path (docs/BENCHMARKS.md, "The bare
/// loop's cost"). Only the value is kept inline, so `Response` grows by 16 bytes, not by a
/// whole field's 48: it stays under clippy's `result_large_err` bound (128 bytes) for
/// users' `Result<_, Response>`.
///
/// `content_type` comes before `rest`: a field goes inline only while there is no other.
#[derive(Default)]
struct Fields {
    content_type: Option<&'static str>,
    rest: Vec<Field>,
}

const CONTENT_TYPE: &str = "Content-Type";

impl Fields {
    fn push(&mut self, (name, value): Field) {
        match (name, value) {
            (Cow::Borrowed(CONTENT_TYPE), Cow::Borrowed(v))
                if self.content_type.is_none() && self.rest.is_empty() =>
            {
                self.content_type = Some(v);
            }
            (name, value) => self.rest.push((name, value)),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let first = self.content_type.map(|v| (CONTENT_TYPE, v));
        first
            .into_iter()
            .chain(self.rest.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
    }

    fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        if self.content_type.is_some() && !keep(CONTENT_TYPE) {
            self.content_type = None;
        }
        self.rest.retain(|(n, _)| keep(n));
    }

    #[cfg(feature = "proxy")]
    fn into_vec(self) -> Vec<Field> {
        let mut v = self.rest;
        if let Some(val) = self.content_type {
            v.insert(0, (Cow::Borrowed(CONTENT_TYPE), Cow::Borrowed(val)));
        }
        v
    }
}

fn cow_bytes(s: Cow<'static, str>) -> Cow<'static, [u8]> {
    match s {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers.iter().collect::<Vec<_>>())
            .field("body_len", &self.body_bytes().len())
            .field("stream", &self.is_stream())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Response;

    fn names(r: &Response) -> Vec<String> {
        r.headers().map(|(n, v)| format!("{n}={v}")).collect()
    }

    #[test]
    fn fields_keep_their_order_through_set_and_remove() {
        let mut r = Response::text("x")
            .with_header("A", "1")
            .with_header("B", "2");
        assert_eq!(
            names(&r),
            ["Content-Type=text/plain; charset=utf-8", "A=1", "B=2"]
        );
        // Removing the first (inline) field moves the next one up, in order.
        r.remove_header("content-type");
        assert_eq!(names(&r), ["A=1", "B=2"]);
        r.set_header("a", "3");
        assert_eq!(names(&r), ["B=2", "a=3"]);
        r.remove_header("B");
        r.remove_header("A");
        assert_eq!(names(&r), Vec::<String>::new());
        let r = r.with_header("C", "4").with_header("c", "5");
        assert_eq!(r.header("C"), Some("4"));
        assert_eq!(r.header_values("c").collect::<Vec<_>>(), ["4", "5"]);
        assert!(!r.wants_close());
        // An owned field first: the static one after it keeps its place behind.
        let r = Response::new(200)
            .with_header(String::from("X"), "1")
            .with_header("Y", "2");
        assert_eq!(names(&r), ["X=1", "Y=2"]);
        // A static Content-Type after another field is not put in front of it.
        let r = Response::new(200)
            .with_header("A", "1")
            .with_header("Content-Type", "t");
        assert_eq!(names(&r), ["A=1", "Content-Type=t"]);
        assert!(
            Response::new(200)
                .with_header("x", "y")
                .with_header("Connection", "close")
                .wants_close()
        );
    }
}
