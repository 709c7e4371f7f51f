//! CORS (the Fetch standard's cross-origin resource sharing): answers preflights from
//! allowed origins and adds `Access-Control-*` headers to their actual requests.
//!
//! It never grants a disallowed origin anything: a preflight from one gets `403` without
//! CORS headers, and its actual requests run but get no `Access-Control-Allow-Origin`.
//! Place it before authentication, so preflights (which carry no credentials) are
//! answered without being refused.

use std::time::Duration;

use log::debug;

use crate::http::Method;
use crate::middleware::{Middleware, Next};
use crate::request::Request;
use crate::response::Response;
use crate::status;

/// Methods allowed by a preflight unless [`Cors::allow_methods`] says otherwise.
const DEFAULT_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
/// How long browsers may cache a preflight unless [`Cors::max_age`] says otherwise.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

/// Middleware for cross-origin requests from browsers (Go's `CORS(origins)` in the seeds).
///
/// * A request without `Origin` is passed on untouched (it is not a CORS request); only
///   `Vary: Origin` is added when the answer depends on the origin.
/// * A preflight — `OPTIONS` with `Origin` and `Access-Control-Request-Method` — from an
///   allowed origin is answered `204` here, without calling the rest of the chain:
///   `Access-Control-Allow-Origin`, `-Allow-Methods` (default
///   `GET, HEAD, POST, PUT, PATCH, DELETE`), `-Allow-Headers` (the configured list, or the
///   requested headers echoed when none is configured), `-Max-Age` (default 600 s),
///   `-Allow-Credentials` when enabled, and `Vary: Origin`. From any other origin: `403`.
/// * An actual request from an allowed origin runs, and its response gets
///   `Access-Control-Allow-Origin` (the origin itself, or `*` when configured with `"*"`
///   and without credentials), `-Allow-Credentials`, `-Expose-Headers` and `Vary: Origin`.
///
/// Origins compare ASCII case-insensitively, as sent (`scheme://host[:port]`).
///
/// ```
/// use std::time::Duration;
/// use h1server::middleware::{Cors, Stack};
/// use h1server::{testing::TestRequest, Request, Response};
///
/// let app = Stack::new(|_: &mut Request| Response::text("data"))
///     .with(Cors::new(["https://app.example"]).max_age(Duration::from_secs(3600)));
/// let resp = TestRequest::get("/").header("Origin", "https://app.example").run(&app);
/// assert_eq!(resp.header("Access-Control-Allow-Origin"), Some("https://app.example"));
/// ```
#[derive(Clone, Debug)]
pub struct Cors {
    /// Allowed origins, without trailing `/`; compared case-insensitively.
    origins: Vec<String>,
    /// `"*"` was among the origins: every origin is allowed.
    any_origin: bool,
    /// The `Access-Control-Allow-Methods` value of a preflight answer.
    allow_methods: String,
    /// The `Access-Control-Allow-Headers` value; `None` echoes the requested headers.
    allow_headers: Option<String>,
    /// The `Access-Control-Expose-Headers` value of actual responses, if any.
    expose_headers: Option<String>,
    /// Whether to send `Access-Control-Allow-Credentials: true` (cookies, auth headers);
    /// with it the origin is always echoed, never `*` (the Fetch standard forbids it).
    allow_credentials: bool,
    /// The `Access-Control-Max-Age` value, in whole seconds.
    max_age_secs: u64,
}

impl Cors {
    /// Allows requests from these origins (`"https://app.example"`; `"*"` allows any).
    pub fn new(origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut any_origin = false;
        let origins = origins
            .into_iter()
            .filter_map(|o| {
                let o: String = o.into();
                let o = o.trim().trim_end_matches('/').to_string();
                if o == "*" {
                    any_origin = true;
                    None
                } else {
                    Some(o)
                }
            })
            .collect();
        Cors {
            origins,
            any_origin,
            allow_methods: DEFAULT_METHODS.to_string(),
            allow_headers: None,
            expose_headers: None,
            allow_credentials: false,
            max_age_secs: DEFAULT_MAX_AGE.as_secs(),
        }
    }

    /// The methods a preflight allows (default `GET, HEAD, POST, PUT, PATCH, DELETE`).
    pub fn allow_methods(mut self, methods: &[&str]) -> Self {
        self.allow_methods = methods.join(", ");
        self
    }

    /// The request headers a preflight allows (default: whatever the browser asked for in
    /// `Access-Control-Request-Headers`).
    pub fn allow_headers(mut self, headers: &[&str]) -> Self {
        self.allow_headers = Some(headers.join(", "));
        self
    }

    /// The response headers scripts may read beyond the CORS-safelisted ones
    /// (`Access-Control-Expose-Headers`, e.g. `X-Request-ID`).
    pub fn expose_headers(mut self, headers: &[&str]) -> Self {
        self.expose_headers = (!headers.is_empty()).then(|| headers.join(", "));
        self
    }

    /// Whether browsers may send credentials (cookies, `Authorization`) cross-origin.
    ///
    /// # Panics
    /// With `"*"` among the origins: echoing any origin together with credentials would
    /// let every web site read authenticated answers (the Fetch standard forbids `*` with
    /// credentials for that reason). List the trusted origins instead.
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        assert!(
            !(allow && self.any_origin),
            "Cors: allow_credentials(true) with the \"*\" origin would expose credentialed \
             answers to every site; list the allowed origins"
        );
        self.allow_credentials = allow;
        self
    }

    /// How long browsers may cache a preflight answer (whole seconds; default 600 s).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age_secs = max_age.as_secs();
        self
    }

    /// True when `origin` may read responses.
    fn is_allowed(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// True when the answer differs by origin (so caches must key on it): always, except
    /// for `"*"` without credentials, where every origin gets the same `*`.
    fn varies_by_origin(&self) -> bool {
        !self.any_origin || self.allow_credentials
    }

    /// The `Access-Control-Allow-Origin` value for an allowed `origin`.
    fn allow_origin_value(&self, origin: &str) -> String {
        if self.varies_by_origin() {
            origin.to_string()
        } else {
            "*".to_string()
        }
    }

    /// The answer to a preflight.
    fn preflight(&self, req: &Request, origin: &str) -> Response {
        if !self.is_allowed(origin) {
            debug!(
                "conn={} CORS preflight from disallowed origin {origin:?}: 403",
                req.conn_id()
            );
            let mut resp = Response::error(status::FORBIDDEN, "CORS origin not allowed\n");
            add_vary(&mut resp, "Origin");
            return resp;
        }
        let mut resp = Response::new(status::NO_CONTENT)
            .with_header(
                "Access-Control-Allow-Origin",
                self.allow_origin_value(origin),
            )
            .with_header("Access-Control-Allow-Methods", self.allow_methods.clone())
            .with_header("Access-Control-Max-Age", self.max_age_secs.to_string());
        let allow_headers = match &self.allow_headers {
            Some(list) => Some(list.clone()),
            None => req
                .header("Access-Control-Request-Headers")
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string),
        };
        if let Some(h) = allow_headers {
            resp.set_header("Access-Control-Allow-Headers", h);
        }
        if self.allow_credentials {
            resp.set_header("Access-Control-Allow-Credentials", "true");
        }
        if self.varies_by_origin() {
            add_vary(&mut resp, "Origin");
        }
        if self.allow_headers.is_none() {
            add_vary(&mut resp, "Access-Control-Request-Headers");
        }
        resp
    }
}

impl Middleware for Cors {
    fn handle(&self, req: &mut Request, next: Next<'_>) -> Response {
        let Some(origin) = req.header("Origin").map(str::to_string) else {
            let mut resp = next.run(req);
            if self.varies_by_origin() {
                add_vary(&mut resp, "Origin");
            }
            return resp;
        };
        // Fetch standard, "CORS-preflight request": OPTIONS with Origin and
        // Access-Control-Request-Method. A plain OPTIONS with Origin is an actual request.
        if req.method() == Method::Options && req.header("Access-Control-Request-Method").is_some()
        {
            return self.preflight(req, &origin);
        }
        let mut resp = next.run(req);
        if self.is_allowed(&origin) {
            resp.set_header(
                "Access-Control-Allow-Origin",
                self.allow_origin_value(&origin),
            );
            if self.allow_credentials {
                resp.set_header("Access-Control-Allow-Credentials", "true");
            }
            if let Some(expose) = &self.expose_headers {
                resp.set_header("Access-Control-Expose-Headers", expose.clone());
            }
        }
        if self.varies_by_origin() {
            add_vary(&mut resp, "Origin");
        }
        resp
    }
}

/// Adds `field` to the response's `Vary` unless it already lists it (or `*`); existing
/// `Vary` lines are merged into one comma-joined value (equivalent, RFC 9110 §5.3).
fn add_vary(resp: &mut Response, field: &str) {
    let existing: Vec<&str> = resp
        .header_values("vary")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let listed = existing.iter().flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || t.eq_ignore_ascii_case(field)
    });
    if listed {
        return;
    }
    let mut value = existing.join(", ");
    if !value.is_empty() {
        value.push_str(", ");
    }
    value.push_str(field);
    resp.set_header("Vary", value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::Stack;
    use crate::testing::TestRequest;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const ORIGIN: &str = "https://app.example";

    fn app(cors: Cors) -> (Stack, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let stack = Stack::new(move |_: &mut Request| {
            c.fetch_add(1, Ordering::SeqCst);
            Response::text("data").with_header("Vary", "Accept-Encoding")
        })
        .with(cors);
        (stack, calls)
    }

    fn vary(resp: &Response) -> Vec<String> {
        resp.header_values("vary")
            .flat_map(|v| v.split(',').map(|t| t.trim().to_string()))
            .collect()
    }

    #[test]
    fn preflight_from_allowed_origin_is_answered_204_without_calling_the_handler() {
        let (stack, calls) = app(Cors::new([ORIGIN]));
        let resp = TestRequest::options("/items")
            .header("Origin", ORIGIN)
            .header("Access-Control-Request-Method", "PUT")
            .header("Access-Control-Request-Headers", "content-type, x-api-key")
            .run(&stack);
        assert_eq!(resp.status(), 204);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
        assert_eq!(
            resp.header("access-control-allow-methods"),
            Some("GET, HEAD, POST, PUT, PATCH, DELETE")
        );
        assert_eq!(
            resp.header("access-control-allow-headers"),
            Some("content-type, x-api-key"),
            "requested headers echoed when none configured"
        );
        assert_eq!(resp.header("access-control-max-age"), Some("600"));
        assert_eq!(resp.header("access-control-allow-credentials"), None);
        assert!(vary(&resp).contains(&"Origin".to_string()));
    }

    #[test]
    fn preflight_uses_configured_lists_and_credentials() {
        let cors = Cors::new(["https://APP.example/"])
            .allow_methods(&["GET", "POST"])
            .allow_headers(&["Content-Type", "Authorization"])
            .allow_credentials(true)
            .max_age(Duration::from_secs(3600));
        let (stack, _) = app(cors);
        let resp = TestRequest::options("/")
            .header("Origin", ORIGIN)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "x-other")
            .run(&stack);
        assert_eq!(resp.status(), 204);
        assert_eq!(
            resp.header("access-control-allow-methods"),
            Some("GET, POST")
        );
        assert_eq!(
            resp.header("access-control-allow-headers"),
            Some("Content-Type, Authorization")
        );
        assert_eq!(
            resp.header("access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(resp.header("access-control-max-age"), Some("3600"));
    }

    #[test]
    fn preflight_from_disallowed_origin_gets_403_without_cors_headers() {
        let (stack, calls) = app(Cors::new([ORIGIN]));
        let resp = TestRequest::options("/")
            .header("Origin", "https://evil.example")
            .header("Access-Control-Request-Method", "DELETE")
            .run(&stack);
        assert_eq!(resp.status(), 403);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert!(
            resp.headers()
                .all(|(n, _)| !n.to_ascii_lowercase().starts_with("access-control-"))
        );
    }

    #[test]
    fn actual_request_from_allowed_origin_gets_allow_origin_and_vary() {
        let (stack, calls) = app(Cors::new([ORIGIN]).expose_headers(&["X-Request-ID"]));
        let resp = TestRequest::get("/").header("Origin", ORIGIN).run(&stack);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(resp.body_bytes(), b"data");
        assert_eq!(resp.header("access-control-allow-origin"), Some(ORIGIN));
        assert_eq!(
            resp.header("access-control-expose-headers"),
            Some("X-Request-ID")
        );
        assert_eq!(
            vary(&resp),
            ["Accept-Encoding", "Origin"],
            "merged, not replaced"
        );
    }

    #[test]
    fn actual_request_from_disallowed_origin_runs_without_allow_origin() {
        let (stack, calls) = app(Cors::new([ORIGIN]));
        let resp = TestRequest::post("/")
            .header("Origin", "https://evil.example")
            .run(&stack);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.header("access-control-allow-origin"), None);
        assert!(vary(&resp).contains(&"Origin".to_string()));
    }

    #[test]
    fn wildcard_answers_star_and_refuses_credentials() {
        let (stack, _) = app(Cors::new(["*"]));
        let resp = TestRequest::get("/").header("Origin", ORIGIN).run(&stack);
        assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            vary(&resp),
            ["Accept-Encoding"],
            "same answer for every origin"
        );

        let refused = std::panic::catch_unwind(|| Cors::new(["*"]).allow_credentials(true));
        assert!(
            refused.is_err(),
            "\"*\" with credentials is refused at set-up"
        );
    }

    #[test]
    fn request_without_origin_gets_no_cors_headers() {
        let (stack, calls) = app(Cors::new([ORIGIN]));
        let resp = TestRequest::options("/")
            .header("Access-Control-Request-Method", "GET")
            .run(&stack);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "not a preflight: passed on"
        );
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()
                .all(|(n, _)| !n.to_ascii_lowercase().starts_with("access-control-"))
        );
    }

    #[test]
    fn add_vary_does_not_duplicate() {
        let mut resp = Response::new(200).with_header("Vary", "origin, Accept");
        add_vary(&mut resp, "Origin");
        assert_eq!(vary(&resp), ["origin", "Accept"]);
        let mut resp = Response::new(200).with_header("Vary", "*");
        add_vary(&mut resp, "Origin");
        assert_eq!(vary(&resp), ["*"]);
    }
}
