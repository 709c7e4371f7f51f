//! Bearer authentication (RFC 6750): checks `Authorization: Bearer <token>` with a
//! verifier and leaves the authenticated [`Principal`] in the request's extensions.
//!
//! It never logs, echoes or stores the token itself — only whether it was missing or
//! rejected — and a static token is compared in constant time.

use std::fmt;
use std::sync::Arc;

use log::{debug, trace};

use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;
use crate::status;

/// Who made the request, as established by [`BearerAuth`]'s verifier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Principal {
    /// The authenticated subject (a user or client id).
    pub subject: String,
    /// The scopes (permissions) granted to the token.
    pub scopes: Vec<String>,
}

impl Principal {
    /// A principal with this subject and no scopes.
    pub fn new(subject: impl Into<String>) -> Self {
        Principal {
            subject: subject.into(),
            scopes: Vec::new(),
        }
    }

    /// Adds scopes.
    pub fn with_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// True when the token was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The principal [`BearerAuth`] stored on this request, if it ran and succeeded.
    pub fn of(req: &Request) -> Option<&Principal> {
        req.extensions().get::<Principal>()
    }
}

/// The verifier: a token in, the principal it stands for out (`None`: rejected).
type Verifier = dyn Fn(&str) -> Option<Principal> + Send + Sync;

/// Middleware that requires `Authorization: Bearer <token>` (RFC 6750 §2.1; the scheme is
/// case-insensitive) and a token the verifier accepts.
///
/// * No bearer credentials (no header, or another scheme): `401` with
///   `WWW-Authenticate: Bearer realm="api"` (no error code, RFC 6750 §3.1).
/// * A malformed or rejected token: `401` with
///   `WWW-Authenticate: Bearer realm="api", error="invalid_token"`.
/// * Accepted: the [`Principal`] goes into the request's extensions and the rest of the
///   chain runs.
///
/// Error bodies are short JSON objects (`{"error":"invalid_token",...}`).
///
/// ```
/// use h1server::middleware::{BearerAuth, Principal, Stack};
/// use h1server::{testing::TestRequest, Request, Response};
///
/// let app = Stack::new(|req: &mut Request| {
///     Response::text(format!("hi {}", Principal::of(req).unwrap().subject))
/// })
/// .with(BearerAuth::static_token("s3cret", "ops").realm("admin"));
/// let ok = TestRequest::get("/").header("Authorization", "Bearer s3cret").run(&app);
/// assert_eq!(ok.body_bytes(), b"hi ops");
/// let no = TestRequest::get("/").run(&app);
/// assert_eq!(no.header("WWW-Authenticate"), Some("Bearer realm=\"admin\""));
/// ```
#[derive(Clone)]
pub struct BearerAuth {
    /// Decides whether a token is valid and whom it belongs to.
    verifier: Arc<Verifier>,
    /// The realm named in challenges (default `api`).
    realm: String,
    /// The `WWW-Authenticate` value when no bearer credentials were sent (precomputed).
    challenge_missing: String,
    /// The `WWW-Authenticate` value for a rejected token (precomputed).
    challenge_invalid: String,
}

impl BearerAuth {
    /// Authenticates with `verifier`: given the token, it returns the principal, or
    /// `None` to reject it. It runs on the worker and may block (a database lookup).
    pub fn new(verifier: impl Fn(&str) -> Option<Principal> + Send + Sync + 'static) -> Self {
        let mut auth = BearerAuth {
            verifier: Arc::new(verifier),
            realm: String::new(),
            challenge_missing: String::new(),
            challenge_invalid: String::new(),
        };
        auth.set_realm("api");
        auth
    }

    /// Accepts exactly `token` (compared in constant time) as the principal `subject`,
    /// with no scopes. An empty `token` accepts nothing.
    pub fn static_token(token: &str, subject: &str) -> Self {
        let expected = token.as_bytes().to_vec();
        let subject = subject.to_string();
        BearerAuth::new(move |given| {
            (!expected.is_empty() && constant_time_eq(&expected, given.as_bytes()))
                .then(|| Principal::new(subject.clone()))
        })
    }

    /// The realm named in `WWW-Authenticate` challenges (default `api`).
    pub fn realm(mut self, realm: &str) -> Self {
        self.set_realm(realm);
        self
    }

    fn set_realm(&mut self, realm: &str) {
        self.realm = realm.to_string();
        // RFC 9110 §5.6.4 quoted-string: escape `"` and `\`; drop control characters
        // (they cannot appear in a header value at all).
        let quoted: String = realm
            .chars()
            .filter(|c| !c.is_control())
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        self.challenge_missing = format!("Bearer realm=\"{quoted}\"");
        self.challenge_invalid = format!("Bearer realm=\"{quoted}\", error=\"invalid_token\"");
    }

    fn unauthorized(&self, challenge: &str, body: &'static str) -> Response {
        Response::json_text(body)
            .with_status(status::UNAUTHORIZED)
            .with_header("WWW-Authenticate", challenge.to_string())
            .with_header("Cache-Control", "no-store")
    }
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Middleware for BearerAuth {
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        let credentials = match req.header("Authorization").map(bearer_token) {
            None | Some(Credentials::OtherScheme) => {
                debug!(
                    "conn={} no bearer credentials for {} {}: 401",
                    req.conn_id(),
                    req.method_str(),
                    req.path()
                );
                return self.unauthorized(
                    &self.challenge_missing,
                    "{\"error\":\"unauthorized\",\"error_description\":\"bearer token required\"}\n",
                );
            }
            Some(Credentials::Malformed) => None,
            Some(Credentials::Token(token)) => (self.verifier)(token),
        };
        let Some(principal) = credentials else {
            debug!(
                "conn={} bearer token rejected for {} {}: 401",
                req.conn_id(),
                req.method_str(),
                req.path()
            );
            return self.unauthorized(
                &self.challenge_invalid,
                "{\"error\":\"invalid_token\",\"error_description\":\"the access token is invalid\"}\n",
            );
        };
        trace!(
            "conn={} authenticated subject={:?}",
            req.conn_id(),
            principal.subject
        );
        req.extensions_mut().insert(principal);
        next.run(req)
    }
}

/// What an `Authorization` value holds, as far as bearer authentication is concerned.
#[derive(Debug, PartialEq, Eq)]
enum Credentials<'a> {
    /// `Bearer <token68>`.
    Token(&'a str),
    /// The `Bearer` scheme with a missing or malformed token.
    Malformed,
    /// Another scheme (`Basic …`): not bearer credentials at all.
    OtherScheme,
}

/// Parses `credentials = auth-scheme [ 1*SP token68 ]` (RFC 9110 §11.4) for the `Bearer`
/// scheme, whose token is `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
/// "/" ) *"="` (RFC 6750 §2.1).
fn bearer_token(value: &str) -> Credentials<'_> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::OtherScheme;
    }
    let token = rest.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if valid {
        Credentials::Token(token)
    } else {
        Credentials::Malformed
    }
}

/// Compares `expected` (the secret) with `given` in time that depends only on the length
/// of the secret, not on where the first difference is.
fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != given.len());
    for (i, &e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(!e);
        diff |= std::hint::black_box(e ^ g);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::Stack;
    use crate::testing::TestRequest;

    fn whoami(auth: BearerAuth) -> Stack {
        Stack::new(|req: &mut Request| {
            let p = Principal::of(req).expect("principal set before the handler");
            Response::text(format!("{} {}", p.subject, p.scopes.join(",")))
        })
        .with(auth)
    }

    #[test]
    fn bearer_token_parsing_follows_rfc_6750() {
        use Credentials::*;
        let table = [
            ("Bearer abc.DEF-123_~+/==", Token("abc.DEF-123_~+/==")),
            ("bearer abc", Token("abc")),
            ("BEARER   abc", Token("abc")),
            ("Bearer", Malformed),
            ("Bearer ", Malformed),
            ("Bearer ==", Malformed),
            ("Bearer a b", Malformed),
            ("Bearer a\"b", Malformed),
            ("Bearer a=b", Malformed),
            ("Basic dXNlcjpwYXNz", OtherScheme),
            ("Bearerabc", OtherScheme),
            ("", OtherScheme),
        ];
        for (input, want) in table {
            assert_eq!(bearer_token(input), want, "{input:?}");
        }
    }

    #[test]
    fn constant_time_eq_matches_only_equal_bytes() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"s3cret", b"s3cretX"));
        assert!(!constant_time_eq(b"s3cret", b""));
        assert!(!constant_time_eq(b"\xff", b""), "padding never matches");
    }

    #[test]
    fn missing_credentials_get_401_with_a_plain_challenge() {
        let app = whoami(BearerAuth::static_token("s3cret", "alice"));
        for req in [
            TestRequest::get("/"),
            TestRequest::get("/").header("Authorization", "Basic dXNlcjpwYXNz"),
        ] {
            let resp = req.run(&app);
            assert_eq!(resp.status(), 401);
            assert_eq!(
                resp.header("www-authenticate"),
                Some("Bearer realm=\"api\"")
            );
            assert!(
                resp.body_bytes()
                    .starts_with(b"{\"error\":\"unauthorized\"")
            );
        }
    }

    #[test]
    fn wrong_or_malformed_token_gets_401_invalid_token() {
        let app = whoami(BearerAuth::static_token("s3cret", "alice"));
        for value in ["Bearer nope", "Bearer s3cre", "Bearer", "Bearer s3cret x"] {
            let resp = TestRequest::get("/")
                .header("Authorization", value)
                .run(&app);
            assert_eq!(resp.status(), 401, "{value:?}");
            assert_eq!(
                resp.header("www-authenticate"),
                Some("Bearer realm=\"api\", error=\"invalid_token\"")
            );
            let body = String::from_utf8(resp.body_bytes().to_vec()).unwrap();
            assert!(!body.contains("nope"), "token never echoed");
        }
    }

    #[test]
    fn valid_token_stores_the_principal_for_the_handler() {
        let app = whoami(BearerAuth::static_token("s3cret", "alice"));
        let resp = TestRequest::get("/")
            .header("Authorization", "bearer s3cret")
            .run(&app);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body_bytes(), b"alice ");
    }

    #[test]
    fn custom_verifier_grants_scopes() {
        let app = whoami(BearerAuth::new(|token| {
            (token == "t-1").then(|| Principal::new("svc").with_scopes(["read", "write"]))
        }));
        let resp = TestRequest::get("/")
            .header("Authorization", "Bearer t-1")
            .run(&app);
        assert_eq!(resp.body_bytes(), b"svc read,write");
        assert!(Principal::new("x").with_scopes(["a"]).has_scope("a"));
    }

    #[test]
    fn realm_is_quoted_and_empty_static_token_accepts_nothing() {
        let app = whoami(BearerAuth::static_token("", "nobody").realm("my \"zone\""));
        let resp = TestRequest::get("/")
            .header("Authorization", "Bearer =")
            .run(&app);
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.header("www-authenticate"),
            Some(r#"Bearer realm="my \"zone\"", error="invalid_token""#)
        );
        let debug = format!("{:?}", BearerAuth::static_token("hidden", "x"));
        assert!(!debug.contains("hidden"));
    }
}
