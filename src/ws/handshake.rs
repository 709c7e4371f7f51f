//! The opening handshake, server side (RFC 6455 §4.2): checks a request that asks for a
//! WebSocket and builds the `101 Switching Protocols` answer, or the error answer.
//!
//! ```
//! use h1server::{testing::TestRequest, ws::handshake};
//!
//! let req = TestRequest::get("/chat")
//!     .header("Upgrade", "websocket")
//!     .header("Connection", "keep-alive, Upgrade")
//!     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
//!     .header("Sec-WebSocket-Version", "13")
//!     .build();
//! let resp = match handshake::check(&req) {
//!     // Hand the connection to your WebSocket loop once the 101 is written.
//!     Ok(accept) => accept.response().upgrade(|_conn| { /* run the codec on it */ }),
//!     Err(e) => e.response(),
//! };
//! assert_eq!(resp.status(), 101);
//! assert_eq!(resp.header("Sec-WebSocket-Accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
//! ```

use std::fmt;

use crate::{Method, Request, Response, Version};

/// The GUID a server appends to the client's key before hashing it (§1.3, §4.2.2).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this codec speaks (§4.4).
pub const VERSION: &str = "13";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (§4.2.2): the base64 of the
/// SHA-1 of the key followed by the protocol's GUID.
///
/// ```
/// use h1server::ws::handshake::accept_key;
/// assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID.as_bytes());
    base64(&sha1.digest().bytes())
}

/// A valid handshake request: what the `101` answer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    accept: String,
    protocols: Vec<String>,
    selected: Option<String>,
}

impl Accept {
    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_value(&self) -> &str {
        &self.accept
    }

    /// The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order of
    /// preference; empty when it offered none.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// Picks the subprotocol the answer names; it must be one the client offered (§4.2.2:
    /// otherwise the client fails the connection), and `false` is returned without
    /// picking when it is not. Without a pick the answer names none, which tells the
    /// client that none of its offers is spoken.
    pub fn select_protocol(&mut self, name: &str) -> bool {
        let offered = self.protocols.iter().any(|p| p == name);
        if offered {
            self.selected = Some(name.to_string());
        }
        offered
    }

    /// The subprotocol picked with [`Accept::select_protocol`].
    pub fn selected_protocol(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// The `101 Switching Protocols` answer: `Upgrade: websocket`, `Sec-WebSocket-Accept`
    /// and the picked `Sec-WebSocket-Protocol`, if any; the engine adds
    /// `Connection: Upgrade`. No extension is accepted (no `Sec-WebSocket-Extensions`).
    ///
    /// Add the connection's new owner with [`Response::upgrade`]: a `101` without it is
    /// not a final answer, and the engine sends 500 instead.
    pub fn response(&self) -> Response {
        let mut r = Response::new(101)
            .with_header("Upgrade", "websocket")
            .with_header("Sec-WebSocket-Accept", self.accept.clone());
        if let Some(p) = &self.selected {
            r = r.with_header("Sec-WebSocket-Protocol", p.clone());
        }
        r
    }
}

/// Why a request is not a valid WebSocket handshake (§4.2.1). Each names what is wrong;
/// [`HandshakeError::response`] is the answer to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The method is not GET.
    Method,
    /// The request is not HTTP/1.1.
    HttpVersion,
    /// No `Upgrade` header has the token `websocket`.
    Upgrade,
    /// No `Connection` header has the token `upgrade`.
    Connection,
    /// `Sec-WebSocket-Version` is missing or not `13`: 426.
    Version,
    /// No `Sec-WebSocket-Key`.
    MissingKey,
    /// More than one `Sec-WebSocket-Key`.
    RepeatedKey,
    /// `Sec-WebSocket-Key` is not the base64 of 16 bytes.
    InvalidKey,
    /// `Sec-WebSocket-Protocol` has an element that is not a token.
    InvalidProtocol,
}

impl HandshakeError {
    /// 426 (Upgrade Required) for a missing or unsupported `Sec-WebSocket-Version`, so
    /// the client can retry with version 13 (§4.2.2, §4.4); 400 for anything else.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::Version => 426,
            _ => 400,
        }
    }

    /// What is wrong, naming the method, version or header at fault.
    pub fn message(&self) -> &'static str {
        match self {
            HandshakeError::Method => "a WebSocket handshake must be a GET",
            HandshakeError::HttpVersion => "a WebSocket handshake must be HTTP/1.1",
            HandshakeError::Upgrade => "Upgrade must include the token websocket",
            HandshakeError::Connection => "Connection must include the token upgrade",
            HandshakeError::Version => "Sec-WebSocket-Version must be 13",
            HandshakeError::MissingKey => "Sec-WebSocket-Key is missing",
            HandshakeError::RepeatedKey => "Sec-WebSocket-Key must be sent once",
            HandshakeError::InvalidKey => "Sec-WebSocket-Key must be the base64 of 16 bytes",
            HandshakeError::InvalidProtocol => "Sec-WebSocket-Protocol must be a list of tokens",
        }
    }

    /// The error answer: [`status`](Self::status) with the message as a plain-text body;
    /// a 426 also carries `Sec-WebSocket-Version: 13` and `Upgrade: websocket`
    /// (RFC 9110 §15.5.22).
    pub fn response(&self) -> Response {
        let r = Response::error(self.status(), format!("{}\n", self.message()));
        if self.status() == 426 {
            r.with_header("Sec-WebSocket-Version", VERSION)
                .with_header("Upgrade", "websocket")
        } else {
            r
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for HandshakeError {}

/// Checks a request that asks for a WebSocket (§4.2.1), in this order: method GET,
/// HTTP/1.1, `Upgrade` has the token `websocket` and `Connection` the token `upgrade`
/// (any case, in comma lists, over repeated header lines), `Sec-WebSocket-Version` is
/// `13`, exactly one `Sec-WebSocket-Key` that is the base64 of 16 bytes, and
/// `Sec-WebSocket-Protocol`, if any, a list of tokens.
///
/// `Origin` is not checked: a server that must refuse other sites' pages checks it itself
/// (§10.2). `Sec-WebSocket-Extensions` is ignored: no extension is accepted.
pub fn check(req: &Request) -> Result<Accept, HandshakeError> {
    if req.method() != Method::Get {
        return Err(HandshakeError::Method);
    }
    if req.version() != Version::Http11 {
        return Err(HandshakeError::HttpVersion);
    }
    if !has_token(req, "upgrade", "websocket") {
        return Err(HandshakeError::Upgrade);
    }
    if !has_token(req, "connection", "upgrade") {
        return Err(HandshakeError::Connection);
    }
    let mut versions = req.header_values("sec-websocket-version");
    if versions.next().map(str::trim) != Some(VERSION) || versions.next().is_some() {
        return Err(HandshakeError::Version);
    }
    let mut keys = req.header_values("sec-websocket-key");
    let key = keys.next().ok_or(HandshakeError::MissingKey)?.trim();
    if keys.next().is_some() {
        return Err(HandshakeError::RepeatedKey);
    }
    if !is_base64_of_16_bytes(key) {
        return Err(HandshakeError::InvalidKey);
    }
    let mut protocols = Vec::new();
    for p in list(req, "sec-websocket-protocol") {
        if !p.bytes().all(is_tchar) {
            return Err(HandshakeError::InvalidProtocol);
        }
        protocols.push(p.to_string());
    }
    Ok(Accept {
        accept: accept_key(key),
        protocols,
        selected: None,
    })
}

/// The non-empty elements of a comma-separated header, over all its lines (RFC 9110 §5.6.1).
fn list<'a>(req: &'a Request, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    req.header_values(name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn has_token(req: &Request, name: &str, token: &str) -> bool {
    list(req, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Base64 (RFC 4648 §4) is written here rather than taken from a crate: the handshake only
// encodes 20 bytes and checks the shape of a 24-character key, a dozen lines, where the
// usual crate (base64) is a sizeable API for a feature meant to add one tiny dependency.

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// True when `key` is the padded base64 of 16 bytes (§4.1: a random 16-byte nonce): 22
/// characters of the alphabet, the last carrying 2 bits (its 4 low bits zero, the
/// canonical form), then `==`.
fn is_base64_of_16_bytes(key: &str) -> bool {
    let k = key.as_bytes();
    k.len() == 24
        && k[22..] == *b"=="
        && k[..22].iter().all(|b| ALPHABET.contains(b))
        && ALPHABET
            .iter()
            .position(|&a| a == k[21])
            .is_some_and(|v| v & 0xf == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestRequest;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn rfc_accept_key() {
        // §1.3's example: the SHA-1 it gives, then its base64.
        let mut sha1 = sha1_smol::Sha1::new();
        sha1.update(format!("{KEY}{GUID}").as_bytes());
        assert_eq!(
            sha1.digest().bytes(),
            [
                0xb3, 0x7a, 0x4f, 0x2c, 0xc0, 0x62, 0x4f, 0x16, 0x90, 0xf6, 0x46, 0x06, 0xcf, 0x38,
                0x59, 0x45, 0xb2, 0xbe, 0xc4, 0xea
            ]
        );
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn base64_rfc4648_vectors() {
        // RFC 4648 §10.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded, "{plain:?}");
        }
        assert_eq!(base64(&[0xff; 16]), "/////////////////////w==");
    }

    #[test]
    fn keys() {
        // (key, valid).
        let table: &[(&str, bool)] = &[
            (KEY, true),
            ("AAAAAAAAAAAAAAAAAAAAAA==", true),
            ("/////////////////////w==", true),
            ("+/+/+/+/+/+/+/+/+/+/+w==", true),
            ("", false),
            ("dGhlIHNhbXBsZSBub25jZQ", false),   // no padding
            ("dGhlIHNhbXBsZSBub25jZQ=", false),  // short padding
            ("dGhlIHNhbXBsZSBub25jZR==", false), // non-zero trailing bits
            ("dGhlIHNhbXBsZSBub25j", false),     // 15 bytes
            ("dGhlIHNhbXBsZSBub25jZQ1=", false), // 17 bytes' shape
            ("dGhlIHNhbXBsZSBub25jZQ==dGhl", false),
            ("dGhlIHNhbXBsZSBub2-jZQ==", false), // base64url
            ("dGhlIHNhbXBsZSBub2 jZQ==", false),
            ("c2FtcGxlIG5vbmNlIG9mIDE2IGJ5dGVz", false), // 24 bytes, no padding
        ];
        for &(key, ok) in table {
            assert_eq!(is_base64_of_16_bytes(key), ok, "{key:?}");
        }
    }

    fn good() -> TestRequest {
        TestRequest::get("/chat")
            .header("Host", "server.example.com")
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", KEY)
            .header("Origin", "http://example.com")
            .header("Sec-WebSocket-Version", "13")
    }

    /// `good()` with header `name` replaced by `values` (one line each; none removes it).
    fn with(name: &str, values: &[&str]) -> TestRequest {
        let mut r = TestRequest::get("/chat");
        let base = [
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ];
        for (n, v) in base {
            if n.eq_ignore_ascii_case(name) {
                for v in values {
                    r = r.header(n, v);
                }
            } else {
                r = r.header(n, v);
            }
        }
        if !base.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            for v in values {
                r = r.header(name, v);
            }
        }
        r
    }

    #[test]
    fn accepted() {
        // (name, request, offered subprotocols).
        let table: Vec<(&str, TestRequest, &[&str])> = vec![
            ("rfc §1.2 example", good(), &[]),
            ("upgrade any case", with("Upgrade", &["WebSocket"]), &[]),
            (
                "upgrade in a list",
                with("Upgrade", &["h2c, websocket"]),
                &[],
            ),
            (
                "upgrade on a second line",
                with("Upgrade", &["h2c", "websocket"]),
                &[],
            ),
            ("connection any case", with("Connection", &["UPGRADE"]), &[]),
            (
                "connection list",
                with("Connection", &["keep-alive, Upgrade"]),
                &[],
            ),
            (
                "connection list, spaces",
                with("Connection", &["keep-alive ,  upgrade "]),
                &[],
            ),
            (
                "connection lines",
                with("Connection", &["keep-alive", "upgrade"]),
                &[],
            ),
            (
                "version with spaces",
                with("Sec-WebSocket-Version", &[" 13 "]),
                &[],
            ),
            (
                "key with spaces",
                with("Sec-WebSocket-Key", &[" dGhlIHNhbXBsZSBub25jZQ== "]),
                &[],
            ),
            (
                "subprotocols",
                with("Sec-WebSocket-Protocol", &["chat, superchat", "v2.json"]),
                &["chat", "superchat", "v2.json"],
            ),
            (
                "empty subprotocol list",
                with("Sec-WebSocket-Protocol", &[" , "]),
                &[],
            ),
            (
                "extensions ignored",
                with("Sec-WebSocket-Extensions", &["permessage-deflate"]),
                &[],
            ),
        ];
        for (name, req, protos) in table {
            let a = check(&req.build()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a.accept_value(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "{name}");
            assert_eq!(a.protocols(), protos, "{name}");
            let r = a.response();
            assert_eq!(r.status(), 101, "{name}");
            let headers: Vec<(&str, &str)> = r.headers().collect();
            assert_eq!(
                headers,
                [
                    ("Upgrade", "websocket"),
                    ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                ],
                "{name}"
            );
        }
    }

    #[test]
    fn rejected() {
        use HandshakeError::*;
        // (name, request, error): checked in order, so each row breaks one rule.
        let table: Vec<(&str, TestRequest, HandshakeError)> = vec![
            (
                "POST",
                TestRequest::post("/chat").header("Upgrade", "websocket"),
                Method,
            ),
            ("HEAD", TestRequest::head("/chat"), Method),
            ("HTTP/1.0", good().http10(), HttpVersion),
            ("no upgrade", with("Upgrade", &[]), Upgrade),
            ("upgrade h2c", with("Upgrade", &["h2c"]), Upgrade),
            (
                "upgrade websocket/13",
                with("Upgrade", &["websocket/13"]),
                Upgrade,
            ),
            (
                "upgrade substring",
                with("Upgrade", &["websockets"]),
                Upgrade,
            ),
            ("no connection", with("Connection", &[]), Connection),
            (
                "connection keep-alive",
                with("Connection", &["keep-alive"]),
                Connection,
            ),
            (
                "connection substring",
                with("Connection", &["upgraded"]),
                Connection,
            ),
            ("no version", with("Sec-WebSocket-Version", &[]), Version),
            ("version 8", with("Sec-WebSocket-Version", &["8"]), Version),
            (
                "version list",
                with("Sec-WebSocket-Version", &["13, 8"]),
                Version,
            ),
            (
                "version twice",
                with("Sec-WebSocket-Version", &["13", "13"]),
                Version,
            ),
            (
                "version empty",
                with("Sec-WebSocket-Version", &[""]),
                Version,
            ),
            ("no key", with("Sec-WebSocket-Key", &[]), MissingKey),
            (
                "two keys",
                with("Sec-WebSocket-Key", &[KEY, KEY]),
                RepeatedKey,
            ),
            (
                "key list",
                with(
                    "Sec-WebSocket-Key",
                    &["dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ=="],
                ),
                InvalidKey,
            ),
            (
                "key 15 bytes",
                with("Sec-WebSocket-Key", &["dGhlIHNhbXBsZSBub25j"]),
                InvalidKey,
            ),
            (
                "key not base64",
                with("Sec-WebSocket-Key", &["the sample nonce!!!!!!=="]),
                InvalidKey,
            ),
            ("empty key", with("Sec-WebSocket-Key", &[""]), InvalidKey),
            (
                "protocol with a space",
                with("Sec-WebSocket-Protocol", &["chat room"]),
                InvalidProtocol,
            ),
            (
                "protocol with a slash",
                with("Sec-WebSocket-Protocol", &["chat/1"]),
                InvalidProtocol,
            ),
        ];
        for (name, req, want) in table {
            assert_eq!(check(&req.build()), Err(want), "{name}");
        }
    }

    #[test]
    fn error_answers() {
        use HandshakeError::*;
        for e in [
            Method,
            HttpVersion,
            Upgrade,
            Connection,
            Version,
            MissingKey,
            RepeatedKey,
            InvalidKey,
            InvalidProtocol,
        ] {
            let r = e.response();
            assert_eq!(r.status(), e.status(), "{e:?}");
            assert_eq!(r.body_bytes(), format!("{e}\n").as_bytes(), "{e:?}");
            if e == Version {
                assert_eq!(r.status(), 426);
                assert_eq!(r.header("Sec-WebSocket-Version"), Some("13"));
                assert_eq!(r.header("Upgrade"), Some("websocket"));
            } else {
                assert_eq!(r.status(), 400, "{e:?}");
                assert_eq!(r.header("Sec-WebSocket-Version"), None, "{e:?}");
            }
        }
        // Each message names what it is about.
        for (e, word) in [
            (Method, "GET"),
            (HttpVersion, "HTTP/1.1"),
            (Upgrade, "Upgrade"),
            (Connection, "Connection"),
            (Version, "Sec-WebSocket-Version"),
            (MissingKey, "Sec-WebSocket-Key"),
            (RepeatedKey, "Sec-WebSocket-Key"),
            (InvalidKey, "Sec-WebSocket-Key"),
            (InvalidProtocol, "Sec-WebSocket-Protocol"),
        ] {
            assert!(e.message().contains(word), "{e:?}");
        }
    }

    #[test]
    fn subprotocol_selection() {
        let req = with("Sec-WebSocket-Protocol", &["chat, superchat"]).build();
        let mut a = check(&req).unwrap();
        assert!(!a.select_protocol("other"));
        assert_eq!(a.selected_protocol(), None);
        assert_eq!(a.response().header("Sec-WebSocket-Protocol"), None);
        assert!(a.select_protocol("superchat"));
        assert_eq!(a.selected_protocol(), Some("superchat"));
        assert_eq!(
            a.response().header("Sec-WebSocket-Protocol"),
            Some("superchat")
        );
    }

    #[test]
    fn header_set_by_middleware_counts() {
        // Request::header_values sees what middleware set (it replaces the client's).
        let mut req = with("Sec-WebSocket-Version", &["8"]).build();
        req.set_header("Sec-WebSocket-Version", "13");
        assert!(check(&req).is_ok());
    }
}
