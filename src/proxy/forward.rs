//! The proxy's side of one forwarded exchange: pick the upstreams (`upstreams.rs`),
//! rewrite and encode the request head for each (`headers.rs`), and hand the exchange to
//! the event loop (`crate::forward`, `conn/forward.rs`), which connects, writes the head,
//! relays the client's body — buffered, or streamed from the client's socket as it
//! arrives, a window at a time — reads the answer and relays its body. No worker waits
//! on an upstream: the worker's part ends when the head is encoded, and comes back only
//! for a response hook or an error page ([`OnLoop`]). Nothing here touches a socket.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use log::debug;

use super::headers::{self, Forwarding};
use super::upstreams::Upstream;
use super::{Inner, OutgoingRequest, ProxyError, UpstreamResponse};
use crate::client::{ClientError, Limits, ResponseHead, TimeoutKind};
use crate::forward::{Exchange, ExchangeError, LoopHead, Respond, UploadBody};
use crate::http::Version;
use crate::http::encode::BodyFraming;
use crate::http::encode_request::write_request_head;
use crate::request::Request;
use crate::response::Response;

/// Forwards one request: the exchange is handed to the event loop (`crate::forward`),
/// which relays the client's body (buffered, or streamed as it arrives) and the answer.
pub(super) fn serve(inner: &Arc<Inner>, req: &mut Request) -> Response {
    // The route is chosen on the path as the upstream will read it: dot segments
    // resolved (RFC 3986 §5.2.4, `%2e` too), so `/public/../secret` is not sent to the
    // `/public` upstream (which would serve `/secret`). nginx matches its locations on
    // the normalised path, and Go's `ServeMux` cleans it first. The target goes upstream
    // as the client sent it.
    let raw = req.path();
    let cleaned = route_path(raw);
    let Some(route) = inner.table.route(cleaned.as_deref().unwrap_or(raw)) else {
        return (inner.error_handler)(&ProxyError::NoRoute {
            path: req.path().to_string(),
        });
    };
    let candidates = route.candidates(Instant::now());
    on_loop(inner, req, candidates)
}

/// The path a route is chosen on, when it is not `raw` itself: its dot segments resolved,
/// with `%2F` read as `/` for that (an upstream that decodes it before resolving them,
/// as nginx does, reads `/public/..%2Fsecret` as `/secret`; Go's `ServeMux` cleans the
/// decoded path and never hands that one to `/public`). A path without dot segments is
/// routed as it is.
fn route_path(raw: &str) -> Option<String> {
    use crate::router::pattern::{clean, is_clean};
    if !raw.starts_with('/') {
        return None;
    }
    let slashed = if raw
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"%2f"))
    {
        std::borrow::Cow::Owned(raw.replace("%2F", "/").replace("%2f", "/"))
    } else {
        std::borrow::Cow::Borrowed(raw)
    };
    (!is_clean(&slashed)).then(|| clean(&slashed))
}

/// An upstream's address: an IP literal is parsed (no lookup, no allocation); a name is
/// resolved the first time (its first address taken) and kept, so a worker waits on the
/// resolver once per upstream, not once per request.
pub(super) fn socket_addr(upstream: &Upstream) -> Option<std::net::SocketAddr> {
    let authority = upstream.authority();
    if let Ok(a) = authority.parse() {
        return Some(a);
    }
    if let Some(a) = upstream.resolved() {
        return Some(a);
    }
    let a = std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()?
        .next()?;
    upstream.remember(a);
    Some(a)
}

/// The fields of the request sent upstream (no director): [`headers::request_fields`]
/// and the ids the RequestId middleware settled on (seed 002), borrowed where they
/// pass through.
fn outgoing_fields<'a>(
    inner: &'a Inner,
    req: &'a Request,
    host: Option<&'a str>,
) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    let fwd = Forwarding {
        client_ip: client_ip(req),
        host,
        proto: if req.is_tls() { "https" } else { "http" },
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
    // The authority the client asked for: an absolute-form target's, else Host (RFC 9112
    // §3.2.2), for preserve_host and X-Forwarded-Host.
    let host = req.host();
    // The same fields as without a director, owned so that it may change them.
    let headers = outgoing_fields(inner, req, host)
        .into_iter()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
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

/// Hands the exchange to the event loop: one encoded request per candidate upstream (a
/// refused connection moves to the next), answered by [`OnLoop`] on a worker once the
/// upstream's head (or failure) is in.
fn on_loop(inner: &Arc<Inner>, req: &Request, candidates: Vec<Arc<Upstream>>) -> Response {
    let framed =
        req.header("content-length").is_some() || req.header("transfer-encoding").is_some();
    let body = req.body();
    // A body over `max_body_bytes` is still to come: the loop relays it as it arrives.
    let streamed = req.streamed_body_len();
    // Forwarded, so the upstream can refuse the body before it is sent (RFC 9110
    // §10.1.1); the client hears `100 Continue` once the upstream wants the body. (A
    // buffered body is here already: the engine said 100 itself, and `Expect` is dropped.)
    let expects_continue = streamed.is_some()
        && req.version() == Version::Http11
        && req
            .header_values("expect")
            .any(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    let mut attempts = Vec::with_capacity(candidates.len());
    let mut upstreams = Vec::with_capacity(candidates.len());
    let mut last = None;
    for upstream in candidates {
        let addr = match socket_addr(&upstream) {
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
        let framing = match streamed {
            Some(len) => BodyFraming::Length(len),
            None if framed => BodyFraming::Length(body.len() as u64),
            None => BodyFraming::None,
        };
        let mut wire = Vec::with_capacity(512);
        let encoded = if inner.director.is_some() {
            let mut out = outgoing(inner, req, &upstream);
            if expects_continue {
                out.set_header("Expect", "100-continue");
            }
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
            let host = req.host();
            let mut fields = outgoing_fields(inner, req, host);
            if expects_continue {
                fields.push(("Expect".into(), "100-continue".into()));
            }
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
    Response::forward(Exchange {
        attempts,
        body: if framed && streamed.is_none() {
            body.to_vec()
        } else {
            Vec::new()
        },
        upload: streamed.map(|len| UploadBody {
            len,
            expect_continue: expects_continue,
            continue_timeout: inner.expect_continue_timeout,
        }),
        idempotent: crate::client::retry::is_idempotent_method(req.method_str())
            || req.header("idempotency-key").is_some(),
        connect_timeout: inner.connect_timeout,
        header_timeout: inner.response_header_timeout,
        read_timeout: inner.read_timeout,
        write_timeout: inner.write_timeout,
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
    /// The upstream's head fields with the response rules applied (hop-by-hop fields out,
    /// `Via`, the fixed `set_response_header` fields), borrowing what passes through; the
    /// attempt counts as a success for the upstream's health.
    fn rewritten_fields<'h>(
        &'h self,
        attempt: usize,
        head: &'h ResponseHead,
    ) -> Vec<(Cow<'h, str>, Cow<'h, str>)> {
        let upstream = &self.upstreams[attempt];
        upstream.count_attempt();
        upstream.mark_ok();
        let upstream_fields: Vec<(&str, &[u8])> = head
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let mut fields =
            headers::response_fields(&upstream_fields, head.version, self.inner.via.as_deref());
        for (name, value) in &self.inner.response_headers {
            fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            fields.push((name.as_str().into(), value.as_str().into()));
        }
        fields
    }

    /// [`rewritten_fields`](Self::rewritten_fields), owned, as the response hook sees it.
    fn rewritten(&self, attempt: usize, head: &ResponseHead) -> UpstreamResponse {
        UpstreamResponse {
            status: head.status,
            headers: self
                .rewritten_fields(attempt, head)
                .into_iter()
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect(),
            upstream: self.upstreams[attempt].name(),
        }
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

    fn head_on_loop<'h>(&'h self, attempt: usize, head: &'h ResponseHead) -> Option<LoopHead<'h>> {
        // The response hook is user code: with one, the head goes to a worker.
        if self.inner.modify_response.is_some() {
            return None;
        }
        Some(LoopHead {
            status: head.status,
            fields: self.rewritten_fields(attempt, head),
        })
    }

    fn interim_fields<'h>(
        &'h self,
        _attempt: usize,
        head: &'h ResponseHead,
    ) -> Option<Vec<(Cow<'h, str>, Cow<'h, str>)>> {
        // The same rewrite as a final head's (hop-by-hop fields out, `Via` in), without the
        // fixed fields of `set_response_header`, which are for the final answer.
        let upstream_fields: Vec<(&str, &[u8])> = head
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        Some(headers::response_fields(
            &upstream_fields,
            head.version,
            self.inner.via.as_deref(),
        ))
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
