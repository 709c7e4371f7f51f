//! URLs: this module owns turning `http://host[:port][/path][?query]` into the parts a
//! request needs — where to connect, the `Host` field, the request-target — and nothing
//! more (no relative references, no normalisation, no percent-decoding).
//! It never resolves names or touches a socket; what it accepts can be written on the
//! request line and in `Host` without escaping.

use std::fmt;
use std::net::Ipv6Addr;

use super::error::ClientError;

/// A parsed `http://` URL.
///
/// Strict on purpose: the scheme is `http` (`https` is [`ClientError::TlsNotSupported`]),
/// the host a DNS name (letters, digits, `-`, `.`, `_`), an IPv4 address or a bracketed
/// IPv6 address, the port 1–65535, and the path and query visible ASCII (percent-encode
/// anything else). User information (`user@host`) is refused; a `#fragment` is dropped
/// (RFC 9110 §4.2.4: it is never sent).
///
/// ```
/// use h1server::client::Url;
///
/// let url = Url::parse("http://Example.com:8080/a/b?x=1#top").unwrap();
/// assert_eq!(url.host(), "example.com");
/// assert_eq!(url.port(), 8080);
/// assert_eq!(url.authority(), "example.com:8080");
/// assert_eq!(url.target(), "/a/b?x=1");
/// assert_eq!(url.to_string(), "http://example.com:8080/a/b?x=1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Url {
    /// Lower-cased name or address; IPv6 without its brackets.
    host: String,
    port: u16,
    /// `host[:port]` as the `Host` field carries it: brackets around IPv6, the port only
    /// when it is not 80 (RFC 9110 §7.2, §4.2.1).
    authority: String,
    /// The origin-form request-target: `/path[?query]`, at least `/`.
    target: String,
}

impl Url {
    /// Parses an absolute `http://` URL.
    pub fn parse(s: &str) -> Result<Url, ClientError> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(ClientError::InvalidUrl("expected http://host/..."));
        };
        if scheme.eq_ignore_ascii_case("https") {
            return Err(ClientError::TlsNotSupported);
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(ClientError::InvalidUrl("only http:// URLs are supported"));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        let (host, port) = parse_authority(authority)?;
        // RFC 3986 §3.5: the fragment ends the URI and is not part of the request.
        let rest = rest.split('#').next().unwrap_or_default();
        if !rest.bytes().all(|c| (0x21..=0x7e).contains(&c)) {
            return Err(ClientError::InvalidUrl(
                "the path or query has a space, a control or a non-ASCII byte (percent-encode it)",
            ));
        }
        let target = match rest.as_bytes().first() {
            None => "/".to_string(),
            Some(b'?') => format!("/{rest}"),
            Some(_) => rest.to_string(),
        };
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let authority = if port == 80 {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(Url {
            host,
            port,
            authority,
            target,
        })
    }

    /// The host to connect to: a lower-cased name, an IPv4 address, or an IPv6 address
    /// without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (80 when the URL has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host[:port]`, as sent in the `Host` field (the port only when it is not 80).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The request-target, `/path[?query]` (at least `/`).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// `host:port` with the port always present: how errors, logs and the circuit
    /// breaker name the upstream.
    pub fn upstream(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.target)
    }
}

/// `host [ ":" port ]` (RFC 3986 §3.2), strictly.
fn parse_authority(a: &str) -> Result<(String, u16), ClientError> {
    if a.contains('@') {
        return Err(ClientError::InvalidUrl(
            "user information (user@host) is not supported",
        ));
    }
    let (host, port) = if let Some(v6) = a.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(ClientError::InvalidUrl("unclosed [ in the host"));
        };
        // RFC 3986 §3.2.2: IP-literal; no zone identifiers.
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| ClientError::InvalidUrl("invalid IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or(ClientError::InvalidUrl("junk after the IPv6 address"))?,
            ),
        };
        (ip.to_string(), port)
    } else {
        let (host, port) = match a.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        };
        if host.is_empty() {
            return Err(ClientError::InvalidUrl("no host"));
        }
        let ok = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_');
        if !host.bytes().all(ok) {
            return Err(ClientError::InvalidUrl(
                "the host may hold only letters, digits, '-', '.' and '_'",
            ));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => 80,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(ClientError::InvalidUrl("the port is not a number"));
            }
            match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(ClientError::InvalidUrl("the port is not in 1..=65535")),
            }
        }
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        // (input, host, port, authority, target)
        let table: &[(&str, &str, u16, &str, &str)] = &[
            ("http://h", "h", 80, "h", "/"),
            ("http://h/", "h", 80, "h", "/"),
            (
                "HTTP://H.Example.COM:80/x",
                "h.example.com",
                80,
                "h.example.com",
                "/x",
            ),
            (
                "http://127.0.0.1:8080/a?b=c",
                "127.0.0.1",
                8080,
                "127.0.0.1:8080",
                "/a?b=c",
            ),
            ("http://h?q=1", "h", 80, "h", "/?q=1"),
            ("http://h/p#frag", "h", 80, "h", "/p"),
            ("http://h#frag", "h", 80, "h", "/"),
            ("http://[::1]:9000/x", "::1", 9000, "[::1]:9000", "/x"),
            ("http://[::1]/", "::1", 80, "[::1]", "/"),
            (
                "http://a_b-c.d:65535/%20?x=%C3%A9",
                "a_b-c.d",
                65535,
                "a_b-c.d:65535",
                "/%20?x=%C3%A9",
            ),
        ];
        for &(s, host, port, authority, target) in table {
            let u = Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(
                (u.host(), u.port(), u.authority(), u.target()),
                (host, port, authority, target),
                "{s}"
            );
        }
        assert_eq!(Url::parse("http://[::1]:9/").unwrap().upstream(), "[::1]:9");
        assert_eq!(Url::parse("http://h/").unwrap().upstream(), "h:80");
    }

    #[test]
    fn bad_urls() {
        let table: &[&str] = &[
            "",
            "h/x",
            "ftp://h/",
            "http:/h",
            "http://",
            "http:///x",
            "http://:80/",
            "http://h:/",
            "http://h:0/",
            "http://h:65536/",
            "http://h:8x/",
            "http://h:+8/",
            "http://u:p@h/",
            "http://h h/",
            "http://h\r\nX: y/",
            "http://h/a b",
            "http://h/a\r\nX-Evil: 1",
            "http://h/\u{e9}",
            "http://[::1/",
            "http://[zz]/",
            "http://[::1]x/",
            "http://h%41/",
        ];
        for s in table {
            assert!(
                matches!(Url::parse(s), Err(ClientError::InvalidUrl(_))),
                "{s:?} must be refused"
            );
        }
        assert!(matches!(
            Url::parse("HTTPS://h/"),
            Err(ClientError::TlsNotSupported)
        ));
        assert_eq!(
            ClientError::TlsNotSupported.to_string(),
            "https: TLS not supported (feature tls, issue #8)"
        );
    }
}
