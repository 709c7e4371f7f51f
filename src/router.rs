//! The router: picks the handler for a request from its method and path, with the
//! patterns and precedence of Go 1.22's `ServeMux` (the most specific pattern wins,
//! whatever the registration order).
//!
//! It never touches a socket, and matching never allocates beyond the captured
//! parameters: it walks the segments of `req.path()` in place through a trie.
//!
//! ```
//! use h1server::{testing::TestRequest, Request, Response, Router};
//!
//! let mut r = Router::new();
//! r.get("/parcels/{id}", |req: &mut Request| {
//!     Response::text(format!("parcel {}", req.param("id").unwrap_or_default()))
//! });
//! r.get("/parcels/new", |_: &mut Request| Response::text("form"));
//! assert_eq!(TestRequest::get("/parcels/new").run(&r).body_bytes(), b"form");
//! assert_eq!(TestRequest::get("/parcels/a%2Fb").run(&r).body_bytes(), b"parcel a/b");
//! let resp = TestRequest::post("/parcels/7").run(&r);
//! assert_eq!((resp.status(), resp.header("Allow")), (405, Some("GET, HEAD")));
//! ```
//!
//! ## Patterns
//!
//! The method is a separate argument (`route("GET", …)`, `"*"` or [`Router::any`] for
//! every method); the path is split on `/`. Segments are percent-decoded before they are
//! compared with literals or captured, so `{id}` never spans a raw `/` but may hold a
//! decoded one.
//!
//! | pattern | matches | does not match |
//! |---|---|---|
//! | `/healthz` | `/healthz` (case-sensitive) | `/healthz/`, `/Healthz` |
//! | `/parcels/{id}` | `/parcels/7`, `/parcels/a%2Fb` (`id` = `a/b`) | `/parcels/`, `/parcels/7/x` |
//! | `/files/{path...}` | `/files/`, `/files/a/b` (`path` = `a/b`) | `/files` |
//! | `/static/` | `/static/` and every path below it | `/static` (301 to `/static/` for GET) |
//! | `/{$}`, `/a/{$}` | only `/`, only `/a/` | `/x`, `/a/b` |
//! | `/` | every path | |
//!
//! ## Precedence
//!
//! Walking the path segment by segment, at the first segment where two matching
//! patterns differ:
//!
//! | this | beats |
//! |---|---|
//! | a literal (`/users/me`) | `{id}`, `{rest...}`, a trailing `/` |
//! | `{$}` (the path ends with this slash) | `{rest...}`, a trailing `/` |
//! | `{id}` | `{rest...}`, a trailing `/` |
//!
//! For the same path shape: a route for the request's method beats, for a HEAD
//! request, a GET route, which beats a route for any method.
//!
//! ## Answers the router makes itself
//!
//! * no pattern matches the path: `404`, `404 page not found` as Go's `http.NotFound` writes it
//!   ([`NOT_FOUND_BODY`]), or the [`Router::not_found`] handler's answer;
//! * `OPTIONS *` (a question about the server, RFC 9110 §9.3.7): `200`, empty;
//! * some pattern matches the path but none the method: `405` with `Allow` listing the
//!   allowed methods, sorted, with `HEAD` wherever `GET` is allowed (RFC 9110 §15.5.6);
//! * a non-canonical path (`//`, `/./`, `/../`, also `%2e`-encoded): `301` to the
//!   cleaned path (query kept) for GET and HEAD; other methods are matched against the
//!   cleaned path;
//! * GET or HEAD of `/a` when only `/a/` matches exactly (a subtree or `/a/{$}`):
//!   `301` to `/a/`, as Go does;
//! * a target that is not a path (`OPTIONS *`): `404`.
//!
//! ## Conflicts
//!
//! Registration refuses (panics, or [`Router::try_route`] returns a [`RouteError`] naming
//! both patterns) a pattern that conflicts with a registered one. The rule is Go's, in
//! full: two patterns conflict when some request matches both and neither matches a
//! strict subset of the other's requests. That covers the same method and shape whatever
//! the wildcard names (`/a/{x}`, `/a/{y}`; `/a/`, `/a/{rest...}`), overlapping paths
//! (`/a/{x}`, `/{y}/b`), and more methods with a more specific path (any `/a`,
//! `GET /{x}`). Because accepted patterns never conflict, the precedence above always
//! picks the one most specific match.
//!
//! ## The route table
//!
//! [`Router::routes`] lists what is registered: each path pattern with its methods and
//! the [`Group`] prefix it came through, in a stable order (for a `/debug/routes` page
//! or a start-up log). Once the router picked a route, [`Request::route`] gives its
//! pattern to the handler and to the middleware around the router (a metrics label).
//!
//! # Warning
//! `{name...}` values are decoded as a whole, so `/files/a%2F..%2Fb` gives `a/../b`:
//! check such a value before using it as a file path.

pub(crate) mod pattern;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use crate::handler::Handler;
use crate::http::Method;
use crate::http::urlencoded::decode;
use crate::middleware::{Middleware, Stack};
use crate::request::Request;
use crate::response::Response;
use crate::status;

pub use pattern::RouteError;
use pattern::{Pattern, Seg, clean, is_clean};

/// A registered pattern and what answers it.
struct Route {
    pattern: Pattern,
    /// The path part of `pattern`, shared with every request it matches
    /// ([`Request::route`]) so that naming the route costs no allocation per request.
    path: Arc<str>,
    handler: Box<dyn Handler>,
    /// The group prefix the route was registered through (`None`: on the router itself),
    /// for [`Router::routes`].
    group: Option<Box<str>>,
}

/// One line of the route table [`Router::routes`] returns: a path pattern, the methods
/// registered for it, and the group it was registered through.
///
/// Routes on the same pattern and through the same group share one `RouteInfo`. With
/// the cargo feature `json` it serialises as
/// `{"pattern": "/users/{id}", "methods": ["GET", "PUT"], "group": "/api/v1"}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
pub struct RouteInfo {
    /// The path pattern as registered, group prefix included: `/api/v1/users/{id}`.
    pub pattern: String,
    /// The methods registered for the pattern, sorted; `"*"` stands for a route for
    /// every method ([`Router::any`], or `route("*", …)`). A `GET` route also answers
    /// `HEAD`, which is listed only when it was registered itself.
    pub methods: Vec<String>,
    /// The prefix of the [`Group`] the routes were registered through, as the group
    /// holds it (a nested group's prefix includes its parents'); `None` for routes
    /// registered on the router itself.
    pub group: Option<String>,
}

/// One trie node: the routes whose patterns reach this point after the same segments.
#[derive(Default)]
struct Node {
    /// Literal children, sorted by their (decoded) segment for binary search.
    lits: Vec<(Box<str>, Node)>,
    /// The `{name}` child (names do not matter for matching).
    param: Option<Box<Node>>,
    /// Indexes (into `Router::routes`) of the patterns that end here.
    end: Vec<usize>,
    /// Indexes of the patterns with `{name...}` or a trailing `/` here.
    multi: Vec<usize>,
}

/// The segments of a path still to match, walked in place (no `Vec`, no `String`).
#[derive(Clone, Copy)]
struct Segments<'p> {
    /// What follows the last consumed `/`; `None` once every segment is consumed.
    rest: Option<&'p str>,
    /// Pretend the path has one more `/` at its end (the trailing-slash redirect check).
    extra_slash: bool,
}

impl<'p> Segments<'p> {
    fn of(path: &'p str, extra_slash: bool) -> Self {
        Segments {
            rest: Some(&path[1..]),
            extra_slash,
        }
    }

    fn next(self) -> Option<(&'p str, Segments<'p>)> {
        match self.rest {
            Some(r) => Some(match r.split_once('/') {
                Some((seg, after)) => (
                    seg,
                    Segments {
                        rest: Some(after),
                        ..self
                    },
                ),
                None => (r, Segments { rest: None, ..self }),
            }),
            None if self.extra_slash => Some((
                "",
                Segments {
                    rest: None,
                    extra_slash: false,
                },
            )),
            None => None,
        }
    }
}

impl Node {
    fn insert(&mut self, segs: &[Seg], idx: usize) {
        match segs.split_first() {
            None => self.end.push(idx),
            Some((Seg::Multi(_), _)) => self.multi.push(idx),
            Some((Seg::Param(_), rest)) => self.param.get_or_insert_default().insert(rest, idx),
            Some((Seg::Lit(lit), rest)) => {
                let i = match self.lits.binary_search_by(|(k, _)| (**k).cmp(&**lit)) {
                    Ok(i) => i,
                    Err(i) => {
                        self.lits.insert(i, (lit.clone(), Node::default()));
                        i
                    }
                };
                self.lits[i].1.insert(rest, idx);
            }
        }
    }

    /// Offers every endpoint matching `segs` to `visit`, most specific first, until
    /// `visit` returns true (then returns true). Recursion depth is bounded by the
    /// longest pattern, not by the path.
    fn walk<'r>(&'r self, segs: Segments<'_>, visit: &mut impl FnMut(&'r [usize]) -> bool) -> bool {
        let Some((seg, next)) = segs.next() else {
            return !self.end.is_empty() && visit(&self.end);
        };
        if !self.lits.is_empty() {
            let decoded = decode(seg, false);
            if let Ok(i) = self.lits.binary_search_by(|(k, _)| (**k).cmp(&*decoded)) {
                if self.lits[i].1.walk(next, visit) {
                    return true;
                }
            }
        }
        if let (false, Some(child)) = (seg.is_empty(), &self.param) {
            if child.walk(next, visit) {
                return true;
            }
        }
        !self.multi.is_empty() && visit(&self.multi)
    }
}

/// The body of the router's own `404`: Go's `http.NotFound` (which the seeds' `ServeMux`
/// and handlers answer with) writes exactly this, as `text/plain; charset=utf-8`.
pub const NOT_FOUND_BODY: &str = "404 page not found\n";

/// Routes requests to handlers by method and path pattern (see the [module docs](self)
/// for patterns, precedence and the 404/405/301 answers). Build it at start-up, then
/// hand it to [`Server::run`](crate::Server::run) (it is a [`Handler`]).
#[derive(Default)]
pub struct Router {
    /// Every route in registration order; the trie refers to them by index.
    routes: Vec<Route>,
    /// The trie of path patterns.
    root: Node,
    /// Answers requests no pattern matches (when `None`: `404` with Go's
    /// [`NOT_FOUND_BODY`]).
    not_found: Option<Box<dyn Handler>>,
}

/// What the router decided for one request, before it calls anything.
enum Outcome {
    /// Call route `.0`; `.1` is the cleaned path it matched, when not `req.path()`.
    Route(usize, Option<String>),
    /// `301` to this location.
    Redirect(String),
    /// `405` with this `Allow` value.
    NotAllowed(String),
    NotFound,
}

/// The registration methods shared by [`Router`] and [`Group`], one per method.
macro_rules! verb_methods {
    ($($name:ident => $method:literal;)*) => {$(
        #[doc = concat!("Registers `h` for `", $method, "` requests matching `pattern`.")]
        ///
        /// # Panics
        /// On a malformed pattern or a conflict (see [`try_route`](Self::try_route)).
        #[track_caller]
        pub fn $name(&mut self, pattern: &str, h: impl Handler) -> &mut Self {
            self.route($method, pattern, h)
        }
    )*};
}

macro_rules! registration_methods {
    () => {
        verb_methods! {
            get => "GET";
            post => "POST";
            put => "PUT";
            delete => "DELETE";
            patch => "PATCH";
            options => "OPTIONS";
            head => "HEAD";
        }

        /// Registers `h` for every method on `pattern` (a Go pattern without a method);
        /// routes for a specific method on the same path shape take precedence.
        ///
        /// # Panics
        /// On a malformed pattern or a conflict (see [`try_route`](Self::try_route)).
        #[track_caller]
        pub fn any(&mut self, pattern: &str, h: impl Handler) -> &mut Self {
            self.route("*", pattern, h)
        }

        /// Registers `h` for `method` (`"*"` = every method) and `pattern`.
        ///
        /// # Panics
        /// On a malformed pattern or a conflict, with the [`RouteError`] message (as Go's
        /// `ServeMux` panics at start-up).
        #[track_caller]
        pub fn route(&mut self, method: &str, pattern: &str, h: impl Handler) -> &mut Self {
            match self.try_route(method, pattern, h) {
                Ok(this) => this,
                Err(e) => panic!("{e}"),
            }
        }
    };
}

impl Router {
    /// An empty router: every request gets `404`.
    pub fn new() -> Self {
        Self::default()
    }

    registration_methods!();

    /// Registers `h` for `method` (`"*"` = every method) and `pattern`, or says why not:
    /// a malformed pattern, or one that conflicts with a registered pattern.
    pub fn try_route(
        &mut self,
        method: &str,
        pattern: &str,
        h: impl Handler,
    ) -> Result<&mut Self, RouteError> {
        self.add(method, pattern, Box::new(h), None)?;
        Ok(self)
    }

    /// Routes registered through the returned group have `prefix` before their pattern
    /// and the group's middleware around their handler.
    pub fn group(&mut self, prefix: &str) -> Group<'_> {
        Group {
            router: self,
            prefix: prefix.to_string(),
            layers: Vec::new(),
        }
    }

    /// Answers requests that no pattern matches with `h` instead of `404 page not found`.
    pub fn not_found(&mut self, h: impl Handler) -> &mut Self {
        self.not_found = Some(Box::new(h));
        self
    }

    /// The route table: one [`RouteInfo`] per path pattern and group, sorted by pattern,
    /// then methods, then group (routes registered on the router itself first), so the
    /// order does not depend on the registration order. For a `/debug/routes` page, a
    /// start-up log, or to check that every route has a metrics label.
    ///
    /// ```
    /// use h1server::{router::RouteInfo, Request, Response, Router};
    ///
    /// let ok = |_: &mut Request| Response::text("ok");
    /// let mut r = Router::new();
    /// r.group("/api").post("/users", ok).get("/users", ok);
    /// r.any("/", ok);
    /// assert_eq!(
    ///     r.routes(),
    ///     [
    ///         RouteInfo { pattern: "/".into(), methods: vec!["*".into()], group: None },
    ///         RouteInfo {
    ///             pattern: "/api/users".into(),
    ///             methods: vec!["GET".into(), "POST".into()],
    ///             group: Some("/api".into()),
    ///         },
    ///     ]
    /// );
    /// ```
    pub fn routes(&self) -> Vec<RouteInfo> {
        let mut table: Vec<RouteInfo> = Vec::new();
        for route in &self.routes {
            let pattern = &*route.path;
            let group = route.group.as_deref();
            let method = route.pattern.method.as_deref().unwrap_or("*").to_string();
            match table
                .iter_mut()
                .find(|i| i.pattern == pattern && i.group.as_deref() == group)
            {
                Some(info) => info.methods.push(method),
                None => table.push(RouteInfo {
                    pattern: pattern.to_string(),
                    methods: vec![method],
                    group: group.map(str::to_string),
                }),
            }
        }
        for info in &mut table {
            info.methods.sort_unstable();
        }
        // Field order: pattern, then methods, then group.
        table.sort_unstable();
        table
    }

    fn add(
        &mut self,
        method: &str,
        path: &str,
        handler: Box<dyn Handler>,
        group: Option<&str>,
    ) -> Result<(), RouteError> {
        let pattern = Pattern::parse(method, path)?;
        for old in &self.routes {
            if let Some(why) = pattern.conflict_with(&old.pattern) {
                return Err(RouteError::conflict(&pattern.text, &old.pattern.text, why));
            }
        }
        log::debug!("route {} registered", pattern.text);
        self.root.insert(&pattern.segs, self.routes.len());
        self.routes.push(Route {
            path: pattern.path().into(),
            pattern,
            handler,
            group: group.map(Into::into),
        });
        Ok(())
    }

    /// Of the routes in one endpoint, the one for `method`: exact, then GET for HEAD,
    /// then any.
    fn pick(&self, endpoint: &[usize], method: &str) -> Option<usize> {
        let by = |m: Option<&str>| {
            endpoint
                .iter()
                .copied()
                .find(|&i| self.routes[i].pattern.method.as_deref() == m)
        };
        by(Some(method))
            .or_else(|| {
                if method == "HEAD" {
                    by(Some("GET"))
                } else {
                    None
                }
            })
            .or_else(|| by(None))
    }

    /// The most specific route matching `method` and `path` (plus a `/` if `extra_slash`).
    fn find(&self, method: &str, path: &str, extra_slash: bool) -> Option<usize> {
        let mut found = None;
        self.root
            .walk(Segments::of(path, extra_slash), &mut |endpoint| {
                found = self.pick(endpoint, method);
                found.is_some()
            });
        found
    }

    /// The `Allow` value for `path`, or `None` when no pattern matches it at all.
    fn allowed(&self, path: &str) -> Option<String> {
        let mut matched = false;
        let mut methods: Vec<&str> = Vec::new();
        self.root.walk(Segments::of(path, false), &mut |endpoint| {
            matched = true;
            let patterns = endpoint.iter().map(|&i| &self.routes[i].pattern);
            methods.extend(patterns.filter_map(|p| p.method.as_deref()));
            false
        });
        if methods.contains(&"GET") {
            methods.push("HEAD");
        }
        methods.sort_unstable();
        methods.dedup();
        matched.then(|| methods.join(", "))
    }

    fn decide(&self, req: &Request) -> Outcome {
        let raw = req.path();
        if !raw.starts_with('/') {
            return Outcome::NotFound;
        }
        let method = req.method_str();
        let get_like = method == "GET" || method == "HEAD";
        let with_query = |path: String| match req.query() {
            Some(q) if !q.is_empty() => format!("{}?{q}", location_path(&path)),
            _ => location_path(&path),
        };
        let cleaned = (!is_clean(raw)).then(|| clean(raw));
        if let (true, Some(c)) = (get_like, &cleaned) {
            return Outcome::Redirect(with_query(c.clone()));
        }
        let path = cleaned.as_deref().unwrap_or(raw);
        let found = self.find(method, path, false);
        let exact = found.is_some_and(|i| !self.routes[i].pattern.ends_in_multi());
        if get_like && !exact && !path.ends_with('/') {
            // Go: "/tree" redirects to "/tree/" when that matches a pattern exactly.
            if let Some(j) = self.find(method, path, true) {
                let p = &self.routes[j].pattern;
                if !p.ends_in_multi() || p.segs.len() == path.matches('/').count() + 1 {
                    return Outcome::Redirect(with_query(format!("{path}/")));
                }
            }
        }
        match found {
            Some(i) => Outcome::Route(i, cleaned),
            None => match self.allowed(path) {
                Some(allow) => Outcome::NotAllowed(allow),
                None => Outcome::NotFound,
            },
        }
    }
}

/// Sets the request's parameters from the path `route` matched (`cleaned`, or else
/// `req.path()`), one decoded `String` per wildcard and nothing else.
fn set_params(route: &Route, req: &mut Request, cleaned: Option<&str>) {
    let mut pos = 1; // byte offset of the current segment
    for seg in &route.pattern.segs {
        let (name, value) = {
            let path = cleaned.unwrap_or_else(|| req.path());
            let rest = path.get(pos..).unwrap_or("");
            match seg {
                Seg::Multi(None) => break,
                Seg::Multi(Some(name)) => (name.clone(), decode(rest, false).into_owned()),
                Seg::Lit(_) | Seg::Param(_) => {
                    let len = rest.find('/').unwrap_or(rest.len());
                    pos += len + 1;
                    let Seg::Param(name) = seg else { continue };
                    (name.clone(), decode(&rest[..len], false).into_owned())
                }
            }
        };
        req.set_param(name, value);
    }
}

impl Handler for Router {
    fn call(&self, req: &mut Request) -> Response {
        req.clear_params();
        req.set_route(None);
        if req.method() == Method::Options && req.target() == "*" {
            // `OPTIONS *` (the parser admits the asterisk-form for OPTIONS only, RFC 9112
            // §3.2.4) asks about the server, not a resource (RFC 9110 §9.3.7): 200, as Go's
            // server answers it for any handler.
            log::debug!("conn={} OPTIONS * answered 200", req.conn_id());
            return Response::new(status::OK);
        }
        match self.decide(req) {
            Outcome::Route(i, cleaned) => {
                let route = &self.routes[i];
                log::trace!("conn={} route {}", req.conn_id(), route.pattern.text);
                set_params(route, req, cleaned.as_deref());
                req.set_route(Some(route.path.clone()));
                route.handler.call(req)
            }
            Outcome::Redirect(location) => {
                log::debug!("conn={} 301 to {location}", req.conn_id());
                Response::error(status::MOVED_PERMANENTLY, "").with_header("Location", location)
            }
            Outcome::NotAllowed(allow) => {
                log::debug!(
                    "conn={} 405 {} {}",
                    req.conn_id(),
                    req.method_str(),
                    req.path()
                );
                Response::error(status::METHOD_NOT_ALLOWED, "").with_header("Allow", allow)
            }
            Outcome::NotFound => match &self.not_found {
                Some(h) => h.call(req),
                None => Response::error(status::NOT_FOUND, NOT_FOUND_BODY),
            },
        }
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns: Vec<&str> = self
            .routes
            .iter()
            .map(|r| r.pattern.text.as_str())
            .collect();
        f.debug_struct("Router")
            .field("routes", &patterns)
            .field("custom_not_found", &self.not_found.is_some())
            .finish()
    }
}

/// A prefix and its own middleware, registering into a [`Router`] (the seeds' `authed`
/// stack next to the `base` one): a handler registered through the group is wrapped as
/// `Stack::new(handler).with(each group middleware in order)`, so the group's middleware
/// runs only for the group's routes, the first added outermost.
///
/// ```
/// use h1server::{middleware::Next, testing::TestRequest, Request, Response, Router};
///
/// let mut r = Router::new();
/// r.get("/healthz", |_: &mut Request| Response::text("ok"));
/// let mut api = r.group("/api/v1");
/// api.with(|req: &mut Request, next: Next<'_>| {
///     let mut resp = next.run(req);
///     resp.set_header("X-Api", "v1");
///     resp
/// });
/// api.get("/users", |_: &mut Request| Response::text("[]"));
/// assert_eq!(TestRequest::get("/api/v1/users").run(&r).header("X-Api"), Some("v1"));
/// assert_eq!(TestRequest::get("/healthz").run(&r).header("X-Api"), None);
/// ```
pub struct Group<'a> {
    /// Where the routes go.
    router: &'a mut Router,
    /// Put before every pattern registered through the group.
    prefix: String,
    /// The group's middleware (inherited ones first), outermost first.
    layers: Vec<Arc<dyn Middleware>>,
}

/// `prefix` then `pattern`, with exactly one `/` between them (an empty pattern is the
/// prefix itself).
fn join(prefix: &str, pattern: &str) -> String {
    if pattern.is_empty() {
        return prefix.to_string();
    }
    let sep = if pattern.starts_with('/') { "" } else { "/" };
    format!("{}{sep}{pattern}", prefix.trim_end_matches('/'))
}

impl Group<'_> {
    /// Adds group middleware, inside the ones added before (the first is outermost).
    /// It applies to the routes registered through this group (and groups nested in it)
    /// *after* this call; routes registered earlier keep the middleware they had.
    pub fn with(&mut self, mw: impl Middleware) -> &mut Self {
        self.layers.push(Arc::new(mw));
        self
    }

    registration_methods!();

    /// Same as [`Router::try_route`], with `pattern` relative to the prefix (an empty
    /// pattern is the prefix itself; a missing leading `/` is added).
    pub fn try_route(
        &mut self,
        method: &str,
        pattern: &str,
        h: impl Handler,
    ) -> Result<&mut Self, RouteError> {
        let handler: Box<dyn Handler> = if self.layers.is_empty() {
            Box::new(h)
        } else {
            let layers = self.layers.iter();
            Box::new(layers.fold(Stack::new(h), |stack, mw| stack.with_arc(mw.clone())))
        };
        let path = join(&self.prefix, pattern);
        self.router
            .add(method, &path, handler, Some(&self.prefix))?;
        Ok(self)
    }

    /// A group nested in this one: its prefix follows this one's, and it starts with
    /// this group's middleware, to which it can add its own.
    pub fn group(&mut self, prefix: &str) -> Group<'_> {
        Group {
            prefix: join(&self.prefix, prefix),
            layers: self.layers.clone(),
            router: &mut *self.router,
        }
    }
}

impl fmt::Debug for Group<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("prefix", &self.prefix)
            .field("middleware", &self.layers.len())
            .finish()
    }
}

/// The path of a redirect `Location`, percent-encoded where a browser could read it as
/// something else: `\` is a `/` to browsers, so `/\evil.com` would leave the site (Go
/// escapes the same way through `url.URL`). Keeps unreserved characters, sub-delims,
/// `:`, `@`, `/` and existing `%XX` escapes (RFC 3986 §3.3).
fn location_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(b as char),
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+'
            | b',' | b';' | b'=' | b':' | b'@' | b'/' | b'%' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    // A path must never read as a network-path reference (`//host`).
    if out.starts_with("//") {
        out.replace_range(..2, "/%2F");
    }
    out
}
