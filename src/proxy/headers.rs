//! Header policy of the reverse proxy: this stage owns how a request head is rewritten on
//! its way to an upstream (hop-by-hop fields removed, `X-Forwarded-*` and `Via` set, the
//! `Host` chosen) and how a response head is rewritten on its way back.
//! It never touches a socket, a clock or an engine type: plain strings in, plain strings
//! out, so every rule is a table-driven unit test.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::http::Version;
use crate::http::parse::list;

/// The hop-by-hop fields (RFC 9110 §7.6.1), as Go's `httputil.ReverseProxy` lists them:
/// meaningful for one connection only, never forwarded. `Proxy-Connection` and
/// `Keep-Alive` are the non-standard ones the RFC names; `Proxy-Authorization` /
/// `Proxy-Authenticate` belong to the proxy they were addressed to (RFC 9110 §11.7).
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// True when `name` is one of [`HOP_BY_HOP`] (case-insensitive).
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// The field names listed in every `Connection` field (RFC 9110 §7.6.1: "a proxy or
/// gateway MUST ... remove any header or trailer field ... whose name matches one of the
/// connection options"), lower-cased.
pub fn connection_options<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") {
            for opt in list(value) {
                if let Ok(s) = std::str::from_utf8(opt) {
                    out.push(s.to_ascii_lowercase());
                }
            }
        }
    }
    out
}

/// What the proxy knows about the hop a request came in on.
#[derive(Clone, Copy, Debug)]
pub struct Forwarding<'a> {
    /// The client's address (the TCP peer), appended to `X-Forwarded-For`.
    pub client_ip: IpAddr,
    /// The `Host` the client sent, if any: becomes `X-Forwarded-Host`.
    pub host: Option<&'a str>,
    /// The scheme the client used: becomes `X-Forwarded-Proto` (`https` over the
    /// server's own TLS, `Request::is_tls`).
    pub proto: &'a str,
    /// The client's protocol version, for the `Via` entry (`1.0` or `1.1`).
    pub version: Version,
    /// This proxy's pseudonym in `Via` (RFC 9110 §7.6.3 allows one in place of the
    /// host); `None` adds no `Via`.
    pub via: Option<&'a str>,
}

/// The request fields to send upstream, from the client's `incoming` ones, in order:
///
/// * hop-by-hop fields and every field the `Connection` field names are removed, and so
///   is every name that reads as one of the fields below or a hop-by-hop one when `_` is
///   taken for `-` (`Transfer_Encoding`: upstreams that fold names would see two framings);
/// * `Host`, `Content-Length` and `Expect` are removed (the caller sets the upstream's
///   `Host`, the client frames the body, and the engine already answered `100 Continue`
///   for a body it read — a streamed body's expectation is the caller's to forward);
/// * `X-Forwarded-For`: the client's address appended to what earlier proxies wrote
///   (Go's `ReverseProxy`: `prior + ", " + ip`, every earlier line joined into one);
/// * `X-Forwarded-Host` and `X-Forwarded-Proto` replaced by this hop's values (Go's
///   `ProxyRequest.SetXForwarded`); no `Host` from the client, no `X-Forwarded-Host`;
/// * `Via` gets this hop's entry appended (RFC 9110 §7.6.3: a proxy "MUST send an
///   appropriate Via header field ... in each message that it forwards").
pub fn request_headers(incoming: &[(&str, &str)], fwd: &Forwarding<'_>) -> Vec<(String, String)> {
    request_fields(incoming, fwd)
        .into_iter()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

/// [`request_headers`], borrowing the fields that pass through unchanged (the proxy's
/// own path: the head is encoded at once, so only the fields this hop writes are new
/// strings).
pub(crate) fn request_fields<'a>(
    incoming: &[(&'a str, &'a str)],
    fwd: &Forwarding<'a>,
) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    let named = connection_options(incoming.iter().map(|&(n, v)| (n, v.as_bytes())));
    let dropped = |name: &str| {
        is_hop_by_hop(name)
            || named.iter().any(|n| n.eq_ignore_ascii_case(name))
            || ["host", "content-length", "expect"]
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
            || folds_onto_owned(name)
    };
    let mut out: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(incoming.len() + 4);
    let mut prior_xff: Vec<&str> = Vec::new();
    let mut prior_via: Vec<&str> = Vec::new();
    for &(name, value) in incoming {
        if dropped(name) {
            continue;
        }
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            prior_xff.push(value);
        } else if name.eq_ignore_ascii_case("via") {
            prior_via.push(value);
        } else if name.eq_ignore_ascii_case("x-forwarded-host")
            || name.eq_ignore_ascii_case("x-forwarded-proto")
        {
            // Replaced below by this hop's values.
        } else {
            out.push((Cow::Borrowed(name), Cow::Borrowed(value)));
        }
    }
    let ip = fwd.client_ip.to_string();
    out.push((
        Cow::Borrowed("X-Forwarded-For"),
        Cow::Owned(append_owned(&prior_xff, ip)),
    ));
    if let Some(host) = fwd.host {
        out.push((Cow::Borrowed("X-Forwarded-Host"), Cow::Borrowed(host)));
    }
    out.push((Cow::Borrowed("X-Forwarded-Proto"), Cow::Borrowed(fwd.proto)));
    match fwd.via {
        Some(name) => out.push((
            Cow::Borrowed("Via"),
            Cow::Owned(append_owned(&prior_via, via_entry(fwd.version, name))),
        )),
        None if !prior_via.is_empty() => {
            out.push((Cow::Borrowed("Via"), Cow::Owned(prior_via.join(", "))))
        }
        None => {}
    }
    out
}

/// The fields this proxy writes or removes itself, as [`folds_onto_owned`] compares them.
const OWNED: &[&str] = &[
    "host",
    "content-length",
    "expect",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "via",
];

/// True for a field name with `_` that reads as one this proxy owns ([`HOP_BY_HOP`],
/// `Host`, `Content-Length`, `Expect`, `X-Forwarded-*`, `Via`) when `_` is taken for `-`.
/// Upstreams often do: CGI and the servers built on its conventions map both to one
/// `HTTP_CONTENT_LENGTH`, so `Transfer_Encoding: chunked` beside the `Content-Length` the
/// proxy writes would frame the request two ways there (request smuggling), and
/// `X_Forwarded_For` would forge the client's address. nginx drops every name with an
/// underscore by default (`underscores_in_headers off`); only these are dropped here.
fn folds_onto_owned(name: &str) -> bool {
    name.contains('_')
        && (HOP_BY_HOP.iter().any(|o| folds_onto(name, o))
            || OWNED.iter().any(|o| folds_onto(name, o)))
}

/// True when `name` reads as `owned` (lower case, with `-`) once `_` is taken for `-`.
fn folds_onto(name: &str, owned: &str) -> bool {
    owned.len() == name.len()
        && owned
            .bytes()
            .zip(name.bytes())
            .all(|(o, n)| o == n.to_ascii_lowercase() || (o == b'-' && n == b'_'))
}

/// The response fields to send to the client, from the upstream's, in order: hop-by-hop
/// fields and those the `Connection` field names removed, `Content-Length` removed (the
/// engine frames every response it sends, RFC 9112 §6), and so is a name with `_` that
/// reads as one of those once `_` is taken for `-` (`Transfer_Encoding: chunked` beside
/// the engine's `Content-Length` would frame the answer two ways for a client or cache
/// that folds names, as it would a request upstream), values that are not UTF-8
/// dropped (the engine's headers are text), and this hop's `Via` entry appended with the
/// upstream's protocol `version` (RFC 9110 §7.6.3: the received protocol).
pub fn response_headers(
    upstream: &[(&str, &[u8])],
    version: Version,
    via: Option<&str>,
) -> Vec<(String, String)> {
    response_fields(upstream, version, via)
        .into_iter()
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect()
}

/// [`response_headers`], borrowing the fields that pass through unchanged (the event
/// loop encodes them at once).
pub(crate) fn response_fields<'a>(
    upstream: &[(&'a str, &'a [u8])],
    version: Version,
    via: Option<&'a str>,
) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    let named = connection_options(upstream.iter().copied());
    let mut out: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(upstream.len() + 1);
    let mut prior_via: Vec<&str> = Vec::new();
    for &(name, value) in upstream {
        if is_hop_by_hop(name)
            || name.eq_ignore_ascii_case("content-length")
            || named.iter().any(|n| n.eq_ignore_ascii_case(name))
            || (name.contains('_')
                && (HOP_BY_HOP.iter().any(|h| folds_onto(name, h))
                    || folds_onto(name, "content-length")))
        {
            continue;
        }
        let Ok(value) = std::str::from_utf8(value) else {
            log::debug!("proxy: upstream header {name} is not UTF-8; dropped");
            continue;
        };
        if name.eq_ignore_ascii_case("via") {
            prior_via.push(value);
        } else {
            out.push((Cow::Borrowed(name), Cow::Borrowed(value)));
        }
    }
    match via {
        Some(name) => out.push((
            Cow::Borrowed("Via"),
            Cow::Owned(append_owned(&prior_via, via_entry(version, name))),
        )),
        None if !prior_via.is_empty() => {
            out.push((Cow::Borrowed("Via"), Cow::Owned(prior_via.join(", "))))
        }
        None => {}
    }
    out
}

/// `1.1 name` (RFC 9110 §7.6.3: `received-protocol RWS received-by`; the protocol name is
/// omitted for HTTP).
pub fn via_entry(version: Version, name: &str) -> String {
    match version {
        Version::Http10 => format!("1.0 {name}"),
        Version::Http11 => format!("1.1 {name}"),
    }
}

/// Earlier field lines joined as one list, with `last` appended (`last` itself when there
/// is nothing before it).
fn append_owned(prior: &[&str], last: String) -> String {
    if prior.iter().all(|p| p.trim().is_empty()) {
        return last;
    }
    let last = last.as_str();
    let mut out =
        String::with_capacity(prior.iter().map(|p| p.len() + 2).sum::<usize>() + last.len());
    for p in prior.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        out.push_str(p);
        out.push_str(", ");
    }
    out.push_str(last);
    out
}

/// The `Host` to send upstream: the client's with `preserve_host` (Go's
/// `ProxyRequest.Out.Host = In.Host`, nginx's `proxy_set_header Host $host`), else the
/// upstream's own authority (what seed 000's director does, and nginx's default
/// `$proxy_host`). A client without `Host` (HTTP/1.0) gets the upstream's either way.
pub fn outgoing_host(
    incoming: Option<&str>,
    upstream_authority: &str,
    preserve_host: bool,
) -> String {
    match incoming {
        Some(h) if preserve_host && !h.is_empty() => h.to_string(),
        _ => upstream_authority.to_string(),
    }
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
