//! Running handlers and middleware without a socket: [`TestRequest`] builds a request
//! exactly as the engine would (its bytes go through the same parser), and
//! [`body_of`] collects a response body, streamed or not.
//!
//! Nothing here opens a socket or starts a server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::handler::Handler;
use crate::http::Span;
use crate::http::parse::{self, Framing, Limits};
use crate::request::{Batch, BodyRef, CancelFlag, Request};
use crate::response::{Body, Response, StreamBody};

/// Builds a [`Request`] for unit tests of handlers and middleware.
///
/// ```
/// use h1server::{testing::TestRequest, Request, Response};
/// let resp = TestRequest::get("/hello?name=ada")
///     .header("X-Request-ID", "t-1")
///     .run(&|req: &mut Request| {
///         Response::text(format!("hi {}", req.query_param("name").unwrap_or_default()))
///     });
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.body_bytes(), b"hi ada");
/// ```
#[derive(Clone, Debug)]
pub struct TestRequest {
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    peer: SocketAddr,
    tls: bool,
}

impl TestRequest {
    /// A request with this method and target (`/path?query`).
    pub fn new(method: &str, target: &str) -> Self {
        TestRequest {
            method: method.to_string(),
            target: target.to_string(),
            http10: false,
            headers: Vec::new(),
            body: Vec::new(),
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
            tls: false,
        }
    }
    /// `GET target`.
    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }
    /// `POST target`.
    pub fn post(target: &str) -> Self {
        Self::new("POST", target)
    }
    /// `PUT target`.
    pub fn put(target: &str) -> Self {
        Self::new("PUT", target)
    }
    /// `DELETE target`.
    pub fn delete(target: &str) -> Self {
        Self::new("DELETE", target)
    }
    /// `HEAD target`.
    pub fn head(target: &str) -> Self {
        Self::new("HEAD", target)
    }
    /// `OPTIONS target`.
    pub fn options(target: &str) -> Self {
        Self::new("OPTIONS", target)
    }
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    /// Sets the body (a `Content-Length` is added).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, text: &str) -> Self {
        self.header("Content-Type", "application/json").body(text)
    }
    /// A form body with `Content-Type: application/x-www-form-urlencoded`.
    pub fn form(self, text: &str) -> Self {
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(text)
    }
    /// The client address the request appears to come from.
    pub fn peer(mut self, addr: SocketAddr) -> Self {
        self.peer = addr;
        self
    }
    /// Makes it a request that arrived over TLS ([`Request::is_tls`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }
    /// Makes it an HTTP/1.0 request.
    pub fn http10(mut self) -> Self {
        self.http10 = true;
        self
    }

    /// The request, parsed by the engine's own parser.
    ///
    /// # Panics
    /// When the parts do not make a valid request (the panic message says why).
    pub fn build(self) -> Request {
        let mut raw = format!(
            "{} {} HTTP/1.{}\r\n",
            self.method,
            self.target,
            if self.http10 { 0 } else { 1 }
        );
        let has = |n: &str| self.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
        if !self.http10 && !has("host") {
            raw.push_str("Host: test.local\r\n");
        }
        for (n, v) in &self.headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        if !self.body.is_empty() && !has("content-length") {
            raw.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        raw.push_str("\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(&self.body);
        let limits = Limits {
            max_head_bytes: bytes.len().max(1024),
            max_headers: parse::MAX_HEADERS_CAP,
            max_uri_bytes: bytes.len().max(1024),
            max_body_bytes: u64::MAX,
        };
        let mut fields = Vec::new();
        let head = match parse::parse_head(&bytes, 0, &limits, &mut fields) {
            Ok(Some(h)) => h,
            Ok(None) => panic!("TestRequest: incomplete request"),
            Err(e) => panic!("TestRequest: invalid request: {e}"),
        };
        let body = match head.framing {
            Framing::Length(n) if n > 0 => BodyRef::Span(Span {
                start: head.len,
                end: head.len + n as u32,
            }),
            Framing::Chunked => panic!("TestRequest: chunked bodies are not supported"),
            _ => BodyRef::Empty,
        };
        let len = bytes.len();
        let batch = Arc::new(Batch { bytes, len, fields });
        let mut req = Request::new(batch, head, body, CancelFlag::new(), self.peer, 0);
        req.set_tls(self.tls);
        req
    }

    /// Builds the request and runs `handler` on it (a handler, a router or a stack).
    pub fn run(self, handler: &impl Handler) -> Response {
        let mut req = self.build();
        handler.call(&mut req)
    }
}

/// The whole body of a response. A streamed body is produced to its end (a pulled body
/// is pulled here; a channel is read until its sender is dropped, waiting at most
/// `timeout` for it to finish).
///
/// # Panics
/// When a streamed body does not end within `timeout`.
pub fn body_of(resp: Response, timeout: Duration) -> Vec<u8> {
    let shared = match resp.body {
        Body::Empty => return Vec::new(),
        Body::Static(b) => return b.to_vec(),
        Body::Bytes(v) => return v,
        Body::Stream(StreamBody::Channel(s)) => s,
        Body::Stream(StreamBody::Pull(mut pull)) => {
            let mut out = Vec::new();
            while let Some(piece) = pull() {
                match piece {
                    Ok(p) => out.extend_from_slice(&p),
                    Err(e) => panic!("the streamed body failed: {e}"),
                }
            }
            return out;
        }
    };
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    loop {
        let mut st = shared.lock();
        while let Some(c) = st.chunks.pop_front() {
            st.queued -= c.len();
            out.extend_from_slice(&c);
        }
        let done = st.finished;
        drop(st);
        shared.wake_producers();
        if done {
            return out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "streamed body did not end within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
