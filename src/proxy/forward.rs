//! The proxy's I/O, for now on a worker: this stage owns one forwarded exchange — pick an
//! upstream (`upstreams.rs`), send the rewritten head (`headers.rs`) and the body with the
//! project's blocking [`client`](crate::client), and hand the response back as a
//! [`Response`] whose body is pulled from the upstream piece by piece.
//! It never buffers a body it does not have to: a request body over `max_body_bytes` is
//! streamed through a [`BodySink`], a long response body through a pulled stream. It is
//! the thin layer issue #7 point 6 replaces with upstream connections driven by the event
//! loop; everything it decides comes from the pure modules.
//!
//! # Warning
//!
//! While it connects, writes and waits for the response head, a proxied request holds
//! its worker (bounded by the client's timeouts), and each piece of a streamed body holds
//! one for one upstream read or write (`docs/PROXY.md`, "Limits").

use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::debug;

use super::headers::{self, Forwarding};
use super::upstreams::Upstream;
use super::{Inner, OutgoingRequest, ProxyError, UpstreamResponse};
use crate::client::{
    BodyLength, ClientError, ClientResponse, Continue, Limits, ResponseHead, StreamedRequest,
    TimeoutKind,
};
use crate::forward::{Exchange, ExchangeError, Respond};
use crate::http::encode::BodyFraming;
use crate::http::encode_request::write_request_head;
use crate::http::{Method, Version};
use crate::request::Request;
use crate::response::Response;
use crate::upload::BodySink;

/// How much one pull of a streamed response asks the upstream for.
const PIECE: usize = 64 * 1024;

/// How long a failed upload write waits for the answer the upstream may have sent before
/// closing (it is normally already in the socket buffer).
const EARLY_ANSWER_WAIT: Duration = Duration::from_millis(500);

/// Forwards one request and returns the answer.
pub(super) fn serve(inner: &Arc<Inner>, req: &mut Request) -> Response {
    let Some(route) = inner.table.route(req.path()) else {
        return (inner.error_handler)(&ProxyError::NoRoute {
            path: req.path().to_string(),
        });
    };
    let candidates = route.candidates(Instant::now());
    let streamed = req.streamed_body_len();
    if streamed.is_none() {
        // The body (if any) is here: the event loop sends it and waits for the answer,
        // holding no worker (`crate::forward`).
        return on_loop(inner, req, candidates);
    }
    let expects_continue = streamed.is_some()
        && req.version() == Version::Http11
        && req
            .header_values("expect")
            .any(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    let mut last: Option<ProxyError> = None;
    for upstream in candidates {
        upstream.count_attempt();
        let out = outgoing(inner, req, &upstream);
        let attempt = match streamed {
            None => send_buffered(inner, req, &upstream, out).map(Sent::Answer),
            Some(len) => send_streamed(inner, &upstream, out, len, expects_continue),
        };
        match attempt {
            Ok(sent) => {
                upstream.mark_ok();
                let method = req.method();
                return match sent {
                    Sent::Answer(resp) => respond(inner, &upstream, resp, method),
                    Sent::Upload(body) => Response::read_body(Upload {
                        inner: Arc::clone(inner),
                        upstream,
                        body: Some(body),
                        method,
                    }),
                };
            }
            Err(e) if e.is_connect() => {
                debug!(
                    "proxy: {} refused ({e}); passed over for {} ms",
                    upstream.name(),
                    inner.cooldown.as_millis()
                );
                upstream.mark_refused(Instant::now(), inner.cooldown);
                last = Some(ProxyError::from_client(&upstream.name(), e));
            }
            Err(e) => return (inner.error_handler)(&ProxyError::from_client(&upstream.name(), e)),
        }
    }
    let e = last.unwrap_or(ProxyError::NoRoute {
        path: req.path().to_string(),
    });
    (inner.error_handler)(&e)
}

/// What a successful send gave.
enum Sent {
    /// The upstream's response head (its body still to read).
    Answer(ClientResponse),
    /// A streamed request whose body the client is still to send.
    Upload(StreamedRequest),
}

/// An upstream's address: an IP literal is parsed (no lookup, no allocation); a name is
/// resolved, and its first address taken.
fn socket_addr(authority: &str) -> Option<std::net::SocketAddr> {
    if let Ok(a) = authority.parse() {
        return Some(a);
    }
    std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()?
        .next()
}

/// The fields of the request sent upstream (no director): [`headers::request_fields`]
/// and the ids the RequestId middleware settled on (seed 002), borrowed where they
/// pass through.
fn outgoing_fields<'a>(
    inner: &'a Inner,
    req: &'a Request,
    host: Option<&'a str>,
) -> Vec<(std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)> {
    let fwd = Forwarding {
        client_ip: client_ip(req),
        host,
        proto: "http",
        version: req.version(),
        via: inner.via.as_deref(),
    };
    let incoming: Vec<(&str, &str)> = req.headers().collect();
    let mut fields = headers::request_fields(&incoming, &fwd);
    if let Some(meta) = crate::middleware::RequestMeta::of(req) {
        for (name, value) in meta.outgoing_fields() {
            fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            fields.push((name.into(), value.into()));
        }
    }
    fields
}

/// The rewritten request for one upstream, after the director.
fn outgoing(inner: &Inner, req: &Request, upstream: &Upstream) -> OutgoingRequest {
    let host = req.header("host");
    let fwd = Forwarding {
        client_ip: client_ip(req),
        host,
        proto: "http",
        version: req.version(),
        via: inner.via.as_deref(),
    };
    let incoming: Vec<(&str, &str)> = req.headers().collect();
    let mut headers = headers::request_headers(&incoming, &fwd);
    // The ids the RequestId middleware settled on (seed 002), if it runs.
    crate::middleware::propagate(req, &mut headers);
    let mut out = OutgoingRequest {
        method: req.method_str().to_string(),
        target: upstream.target_for(&origin_form(req)),
        host: headers::outgoing_host(host, upstream.authority(), inner.preserve_host),
        headers,
        upstream: upstream.name(),
    };
    if let Some(director) = &inner.director {
        director(&mut out);
    }
    out
}

/// The client's target in origin-form (`/path?query`): an absolute-form target
/// (`GET http://gw/x HTTP/1.1`, RFC 9112 §3.2.2) loses its scheme and authority.
fn origin_form(req: &Request) -> String {
    match req.query() {
        Some(q) => format!("{}?{q}", req.path()),
        None => req.path().to_string(),
    }
}

fn client_ip(req: &Request) -> IpAddr {
    req.peer_addr().ip()
}

/// The client's builder for `out`.
fn builder(
    inner: &Inner,
    upstream: &Upstream,
    out: OutgoingRequest,
) -> crate::client::RequestBuilder {
    let url = format!("http://{}{}", upstream.authority(), out.target);
    let mut b = inner
        .client
        .request(&out.method, &url)
        .header("Host", out.host);
    for (name, value) in out.headers {
        b = b.header(name, value);
    }
    b
}

/// A request whose body (if any) the engine read whole: one call.
fn send_buffered(
    inner: &Inner,
    req: &Request,
    upstream: &Upstream,
    out: OutgoingRequest,
) -> Result<ClientResponse, ClientError> {
    // A body is sent when the client framed one (even empty), never invented for a GET.
    let framed =
        req.header("content-length").is_some() || req.header("transfer-encoding").is_some();
    let mut b = builder(inner, upstream, out);
    if framed {
        b = b.body(req.body().to_vec());
    }
    b.send()
}

/// A request whose body is streamed: the head now, then (after the upstream's go-ahead
/// when the client expects `100 Continue`) the body through the engine's `BodySink`.
fn send_streamed(
    inner: &Inner,
    upstream: &Upstream,
    mut out: OutgoingRequest,
    len: u64,
    expects_continue: bool,
) -> Result<Sent, ClientError> {
    if expects_continue {
        // Forwarded, so the upstream can refuse the body before it is sent (RFC 9110
        // §10.1.1); the engine says 100 to the client only once `read_body` is answered.
        out.set_header("Expect", "100-continue");
    }
    let started = builder(inner, upstream, out).send_streamed(len)?;
    if !expects_continue {
        return Ok(Sent::Upload(started));
    }
    match started.await_continue(inner.expect_continue_timeout)? {
        Continue::SendBody(r) => Ok(Sent::Upload(r)),
        Continue::Answered(resp) => {
            debug!(
                "proxy: {} answered {} before the body; the client's body is not read",
                upstream.name(),
                resp.status()
            );
            Ok(Sent::Answer(resp))
        }
    }
}

/// The client's answer from the upstream's response: head rewritten, the hook run, the
/// body read whole when short and known, streamed otherwise.
fn respond(inner: &Inner, upstream: &Upstream, resp: ClientResponse, method: Method) -> Response {
    let head = resp.head();
    let fields: Vec<(&str, &[u8])> = resp.headers().collect();
    let mut up = UpstreamResponse {
        status: head.status,
        headers: headers::response_headers(&fields, head.version, inner.via.as_deref()),
        upstream: upstream.name(),
    };
    set_fixed(inner, &mut up);
    if let Some(hook) = &inner.modify_response
        && let Err(answer) = hook(&mut up)
    {
        return answer;
    }
    let status = up.status;
    let with_head = |r: Response| {
        let mut r = r.with_status(status);
        for (n, v) in up.headers.iter() {
            r = r.with_header(n.clone(), v.clone());
        }
        r
    };
    match resp.head().body {
        _ if method == Method::Head && !matches!(status, 204 | 304) => {
            // The engine frames a HEAD answer from its (absent) body; an empty stream
            // keeps it from claiming `Content-Length: 0` for what GET would send (it
            // says `Transfer-Encoding: chunked` instead; the upstream's length is lost).
            drop(resp);
            with_head(Response::stream(std::iter::empty::<Vec<u8>>()))
        }
        BodyLength::None => with_head(Response::new(status)),
        BodyLength::Length(n) if n <= inner.buffer_response_bytes => match resp.bytes() {
            Ok(body) => with_head(Response::new(status).with_body(body)),
            Err(e) => (inner.error_handler)(&ProxyError::from_client(&upstream.name(), e)),
        },
        _ => {
            let name = upstream.name();
            let mut reader = resp.into_reader();
            let pieces = std::iter::from_fn(move || {
                let mut buf = vec![0u8; PIECE];
                match reader.read(&mut buf) {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some(Ok(buf))
                    }
                    Err(e) => Some(Err(format!("proxy: upstream {name} body: {e}"))),
                }
            });
            with_head(Response::try_stream(pieces))
        }
    }
}

/// The body of a streamed request, on its way upstream piece by piece.
struct Upload {
    inner: Arc<Inner>,
    upstream: Arc<Upstream>,
    /// The upstream request, until `finish` or `abort` takes it.
    body: Option<StreamedRequest>,
    method: Method,
}

impl Upload {
    fn fail(&self, e: ClientError) -> Response {
        (self.inner.error_handler)(&ProxyError::from_client(&self.upstream.name(), e))
    }
}

impl BodySink for Upload {
    fn data(&mut self, piece: &[u8]) -> Result<(), Response> {
        let Some(body) = self.body.as_mut() else {
            return Err(self.fail(ClientError::Protocol("the upload already failed")));
        };
        match body.write(piece) {
            Ok(()) => Ok(()),
            Err(e) => {
                let Some(body) = self.body.take() else {
                    return Err(self.fail(e));
                };
                // An upstream that refuses the body answers (a 413) and closes: that
                // answer, when it came, is the client's; else the write error is.
                match body.early_response(EARLY_ANSWER_WAIT) {
                    Ok(resp) => {
                        debug!(
                            "proxy: {} answered {} before the end of the body ({e})",
                            self.upstream.name(),
                            resp.status()
                        );
                        Err(respond(&self.inner, &self.upstream, resp, self.method))
                    }
                    Err(_) => Err(self.fail(e)),
                }
            }
        }
    }

    fn finish(mut self: Box<Self>) -> Response {
        let Some(body) = self.body.take() else {
            return self.fail(ClientError::Protocol("the upload already failed"));
        };
        match body.finish() {
            Ok(resp) => respond(&self.inner, &self.upstream, resp, self.method),
            Err(e) => self.fail(e),
        }
    }

    fn abort(self: Box<Self>) {
        debug!(
            "proxy: the client's upload to {} ended early; upstream connection closed",
            self.upstream.name()
        );
    }
}

/// Hands the exchange to the event loop: one encoded request per candidate upstream (a
/// refused connection moves to the next), answered by [`OnLoop`] on a worker once the
/// upstream's head (or failure) is in.
fn on_loop(inner: &Arc<Inner>, req: &Request, candidates: Vec<Arc<Upstream>>) -> Response {
    let framed =
        req.header("content-length").is_some() || req.header("transfer-encoding").is_some();
    let body = req.body();
    let mut attempts = Vec::with_capacity(candidates.len());
    let mut upstreams = Vec::with_capacity(candidates.len());
    let mut last = None;
    for upstream in candidates {
        let addr = match socket_addr(upstream.authority()) {
            Some(a) => a,
            None => {
                last = Some(ProxyError::Unreachable {
                    upstream: upstream.name(),
                    source: ClientError::Connect {
                        upstream: upstream.authority().to_string(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "the name did not resolve",
                        ),
                    },
                });
                continue;
            }
        };
        let framing = if framed {
            BodyFraming::Length(body.len() as u64)
        } else {
            BodyFraming::None
        };
        let mut wire = Vec::with_capacity(512);
        let encoded = if inner.director.is_some() {
            let out = outgoing(inner, req, &upstream);
            let headers = out.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
            write_request_head(
                &mut wire,
                &out.method,
                &out.target,
                &out.host,
                headers,
                framing,
            )
        } else {
            // No director to show the request to: the rewritten fields are encoded as
            // they are decided, borrowing what passes through unchanged.
            let host = req.header("host");
            let fields = outgoing_fields(inner, req, host);
            let headers = fields.iter().map(|(n, v)| (&**n, v.as_bytes()));
            write_request_head(
                &mut wire,
                req.method_str(),
                &upstream.target_for(&origin_form(req)),
                &headers::outgoing_host(host, upstream.authority(), inner.preserve_host),
                headers,
                framing,
            )
        };
        if let Err(e) = encoded {
            return (inner.error_handler)(&ProxyError::Invalid {
                upstream: upstream.name(),
                source: ClientError::InvalidRequest(e.as_str()),
            });
        }
        attempts.push((addr, wire));
        upstreams.push(upstream);
    }
    if attempts.is_empty() {
        let e = last.unwrap_or(ProxyError::NoRoute {
            path: req.path().to_string(),
        });
        return (inner.error_handler)(&e);
    }
    let method = req.method();
    Response::forward(Exchange {
        attempts,
        body: if framed { body.to_vec() } else { Vec::new() },
        head_request: method == Method::Head,
        idempotent: crate::client::retry::is_idempotent_method(req.method_str())
            || req.header("idempotency-key").is_some(),
        connect_timeout: inner.connect_timeout,
        header_timeout: inner.response_header_timeout,
        read_timeout: inner.read_timeout,
        max_idle: inner.max_idle_per_host,
        limits: Limits {
            max_body_bytes: u64::MAX,
            ..Limits::default()
        },
        respond: Box::new(OnLoop {
            inner: Arc::clone(inner),
            upstreams,
        }),
        extra_headers: Vec::new(),
        on_status: Vec::new(),
    })
}

/// Decides the client's answer for an exchange the loop ran.
struct OnLoop {
    inner: Arc<Inner>,
    /// The candidates, in the order of the exchange's attempts.
    upstreams: Vec<Arc<Upstream>>,
}

impl OnLoop {
    /// The upstream's head with the response rules applied (hop-by-hop fields out, `Via`).
    fn rewritten(&self, attempt: usize, head: &ResponseHead) -> UpstreamResponse {
        let upstream = &self.upstreams[attempt];
        upstream.count_attempt();
        upstream.mark_ok();
        let fields: Vec<(&str, &[u8])> = head
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let mut up = UpstreamResponse {
            status: head.status,
            headers: headers::response_headers(&fields, head.version, self.inner.via.as_deref()),
            upstream: upstream.name(),
        };
        set_fixed(&self.inner, &mut up);
        up
    }
}

/// The builder's [`set_response_header`](super::ProxyBuilder::set_response_header) fields.
fn set_fixed(inner: &Inner, up: &mut UpstreamResponse) {
    for (name, value) in &inner.response_headers {
        up.set_header(name.as_str(), value.as_str());
    }
}

fn into_response(up: UpstreamResponse) -> Response {
    let mut r = Response::new(up.status);
    for (n, v) in up.headers {
        r = r.with_header(n, v);
    }
    r
}

impl Respond for OnLoop {
    fn head(self: Box<Self>, attempt: usize, head: &ResponseHead) -> Result<Response, Response> {
        let mut up = self.rewritten(attempt, head);
        if let Some(hook) = &self.inner.modify_response {
            hook(&mut up)?;
        }
        Ok(into_response(up))
    }

    fn head_on_loop(&self, attempt: usize, head: &ResponseHead) -> Option<Response> {
        // The response hook is user code: with one, the head goes to a worker.
        if self.inner.modify_response.is_some() {
            return None;
        }
        Some(into_response(self.rewritten(attempt, head)))
    }

    fn error(self: Box<Self>, attempt: usize, err: ExchangeError) -> Response {
        let upstream = &self.upstreams[attempt];
        let name = upstream.name();
        let e = match err {
            ExchangeError::ConnectTimeout => ProxyError::Timeout {
                upstream: name,
                which: TimeoutKind::Connect,
            },
            ExchangeError::HeaderTimeout => {
                upstream.count_attempt();
                ProxyError::Timeout {
                    upstream: name,
                    which: TimeoutKind::ResponseHeader,
                }
            }
            ExchangeError::Connect(source) => ProxyError::Unreachable {
                source: ClientError::Connect {
                    upstream: upstream.authority().to_string(),
                    source,
                },
                upstream: name,
            },
            ExchangeError::Io(e) => {
                upstream.count_attempt();
                ProxyError::Upstream {
                    upstream: name,
                    source: if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        ClientError::ConnectionClosed
                    } else {
                        ClientError::Io(e)
                    },
                }
            }
            ExchangeError::Protocol(source) => {
                upstream.count_attempt();
                ProxyError::Upstream {
                    upstream: name,
                    source,
                }
            }
        };
        (self.inner.error_handler)(&e)
    }

    fn refused(&self, attempt: usize) {
        let upstream = &self.upstreams[attempt];
        upstream.count_attempt();
        debug!(
            "proxy: {} refused; passed over for {} ms",
            upstream.name(),
            self.inner.cooldown.as_millis()
        );
        upstream.mark_refused(Instant::now(), self.inner.cooldown);
    }
}
