//! Unit tests of the router through `TestRequest`: precedence, parameters, `{$}`,
//! subtrees, 404/405/301, HEAD via GET, conflicts and groups. No socket is opened.

use super::*;
use crate::middleware::Next;
use crate::testing::TestRequest;

/// A handler answering `name`.
fn says(name: &'static str) -> impl Handler {
    move |_: &mut Request| Response::text(name)
}

/// A handler answering its parameters as `k=v;` pairs, in pattern order.
fn params(req: &mut Request) -> Response {
    let text: String = req.params().map(|(k, v)| format!("{k}={v};")).collect();
    Response::text(text)
}

fn body(resp: &Response) -> &str {
    std::str::from_utf8(resp.body_bytes()).unwrap()
}

fn send(r: &Router, method: &str, target: &str) -> Response {
    TestRequest::new(method, target).run(r)
}

/// Every order of `0..n` (n! of them).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn most_specific_pattern_wins_whatever_the_registration_order() {
    let routes = [
        ("GET", "/users/me", "me"),
        ("GET", "/users/{id}", "get-id"),
        ("*", "/users/{id}", "any-id"),
        ("*", "/users/", "subtree"),
        ("GET", "/users/{$}", "list"),
        ("GET", "/users/{id}/posts", "posts"),
    ];
    let expect = [
        ("GET", "/users/me", "me"),
        ("HEAD", "/users/me", "me"),
        ("POST", "/users/me", "any-id"),
        ("GET", "/users/7", "get-id"),
        ("DELETE", "/users/7", "any-id"),
        ("GET", "/users/7/posts", "posts"),
        ("POST", "/users/7/posts", "subtree"),
        ("GET", "/users/7/x/y", "subtree"),
        ("GET", "/users/", "list"),
        ("POST", "/users/", "subtree"),
    ];
    let orders = permutations(routes.len());
    assert_eq!(orders.len(), 720);
    for order in orders {
        let mut r = Router::new();
        for &i in &order {
            let (method, pattern, name) = routes[i];
            r.route(method, pattern, says(name));
        }
        for (method, target, want) in expect {
            let resp = send(&r, method, target);
            assert_eq!(resp.status(), 200, "{method} {target} with order {order:?}");
            assert_eq!(body(&resp), want, "{method} {target} with order {order:?}");
        }
    }
}

#[test]
fn parameters_are_percent_decoded_and_set_in_pattern_order() {
    let mut r = Router::new();
    r.get("/parcels/{id}", params)
        .get("/files/{path...}", params)
        .get("/a/{x}/b/{y}", params)
        .post("/caf%C3%A9/{n}", params);
    for (method, target, want) in [
        ("GET", "/parcels/a%2Fb", "id=a/b;"),
        ("GET", "/parcels/caf%C3%A9?x=1", "id=café;"),
        ("GET", "/files/x/y%20z/", "path=x/y z/;"),
        ("GET", "/files/", "path=;"),
        ("GET", "/a/1/b/2", "x=1;y=2;"),
        ("POST", "/caf%c3%a9/1", "n=1;"),
    ] {
        let resp = send(&r, method, target);
        assert_eq!((resp.status(), body(&resp)), (200, want), "{target}");
    }
    // Go redirects "/files" to "/files/", which `{path...}` matches with an empty value.
    let resp = send(&r, "GET", "/files");
    assert_eq!(
        (resp.status(), resp.header("Location")),
        (301, Some("/files/"))
    );
    assert_eq!(send(&r, "PUT", "/files").status(), 404);
    assert_eq!(send(&r, "GET", "/parcels/").status(), 404);
    assert_eq!(send(&r, "GET", "/parcels/1/2").status(), 404);
}

#[test]
fn params_left_on_the_request_are_cleared_before_matching() {
    let mut r = Router::new();
    r.get("/x", params);
    let mut req = TestRequest::get("/x").build();
    req.set_param("stale".into(), "1".into());
    assert_eq!(body(&r.call(&mut req)), "");
}

#[test]
fn dollar_matches_only_the_path_ending_in_that_slash() {
    let mut r = Router::new();
    r.get("/{$}", says("root")).get("/a/{$}", says("a-dir"));
    assert_eq!(body(&send(&r, "GET", "/")), "root");
    assert_eq!(body(&send(&r, "GET", "/a/")), "a-dir");
    assert_eq!(send(&r, "GET", "/x").status(), 404);
    assert_eq!(send(&r, "GET", "/a/b").status(), 404);
    let resp = send(&r, "GET", "/a");
    assert_eq!((resp.status(), resp.header("Location")), (301, Some("/a/")));
}

#[test]
fn trailing_slash_pattern_matches_the_whole_subtree() {
    let mut r = Router::new();
    r.get("/static/", says("static")).any("/", says("fallback"));
    for path in ["/static/", "/static/app.js", "/static/a/b/"] {
        assert_eq!(body(&send(&r, "GET", path)), "static", "{path}");
    }
    assert_eq!(body(&send(&r, "GET", "/elsewhere")), "fallback");
    assert_eq!(body(&send(&r, "POST", "/static")), "fallback");
    let resp = send(&r, "GET", "/static?v=2");
    assert_eq!(
        (resp.status(), resp.header("Location")),
        (301, Some("/static/?v=2"))
    );
}

#[test]
fn unknown_path_is_404_and_known_path_with_other_method_is_405_with_allow() {
    let mut r = Router::new();
    r.get("/a", says("get"))
        .post("/a", says("post"))
        .put("/{x}", says("put"))
        .delete("/b", says("delete"));
    assert_eq!(send(&r, "GET", "/nope/x").status(), 404);
    let resp = send(&r, "PATCH", "/a");
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.header("Allow"), Some("GET, HEAD, POST, PUT"));
    assert_eq!(send(&r, "GET", "/b").header("Allow"), Some("DELETE, PUT"));
    assert_eq!(send(&r, "GET", "/c").header("Allow"), Some("PUT"));
}

#[test]
fn head_is_served_by_get_unless_a_head_route_matches() {
    let mut r = Router::new();
    r.get("/a", says("get-a"))
        .get("/b", says("get-b"))
        .head("/b", says("head-b"));
    assert_eq!(body(&send(&r, "HEAD", "/a")), "get-a");
    assert_eq!(body(&send(&r, "HEAD", "/b")), "head-b");
    assert_eq!(body(&send(&r, "GET", "/b")), "get-b");
}

#[test]
fn custom_not_found_answers_unmatched_paths_only() {
    let mut r = Router::new();
    r.get("/a", says("a"))
        .not_found(|_: &mut Request| Response::text("custom").with_status(404));
    assert_eq!(body(&send(&r, "GET", "/zzz")), "custom");
    assert_eq!(send(&r, "POST", "/a").status(), 405);
    // `OPTIONS *` is about the server, not an unmatched path: 200 (RFC 9110 §9.3.7).
    assert_eq!(send(&r, "OPTIONS", "*").status(), 200);
}

#[test]
fn non_canonical_paths_redirect_for_get_and_head_and_match_cleaned_otherwise() {
    let mut r = Router::new();
    r.get("/b", says("b")).post("/a/{x}", params);
    for (method, target, location) in [
        ("GET", "//a/../b?x=1", "/b?x=1"),
        ("HEAD", "/a/./b/", "/a/b/"),
        ("GET", "/a/%2e%2E/b", "/b"),
        ("GET", "/x//", "/x/"),
    ] {
        let resp = send(&r, method, target);
        assert_eq!(resp.status(), 301, "{target}");
        assert_eq!(resp.header("Location"), Some(location), "{target}");
    }
    let resp = send(&r, "POST", "/a/./c/../d");
    assert_eq!((resp.status(), body(&resp)), (200, "x=d;"));
}

#[test]
fn conflicts_are_refused_naming_both_patterns() {
    let mut r = Router::new();
    r.get("/a/{x}", says("x")).any("/b", says("b"));
    for (method, pattern, old) in [
        ("GET", "/a/{y}", "GET /a/{x}"),
        ("GET", "/{y}/c", "GET /a/{x}"),
        ("GET", "/{z}", "/b"),
    ] {
        let err = r.try_route(method, pattern, says("new")).unwrap_err();
        assert_eq!(err.conflicting_pattern(), Some(old));
        let msg = err.to_string();
        assert!(msg.contains(&format!("{method} {pattern}")), "{msg}");
        assert!(msg.contains(old), "{msg}");
    }
    // The refused routes were not registered.
    assert_eq!(body(&send(&r, "GET", "/a/1")), "x");
    assert!(r.try_route("POST", "/{y}/c", says("c")).is_ok());
    let err = r.try_route("GET", "/{x", says("bad")).unwrap_err();
    assert_eq!(err.pattern(), "GET /{x");
}

#[test]
#[should_panic(expected = "conflicts with \"GET /a/{x}\"")]
fn registering_a_conflicting_route_panics() {
    let mut r = Router::new();
    r.get("/a/{x}", says("x")).get("/a/{y}", says("y"));
}

#[test]
#[should_panic(expected = "invalid route pattern \"GET parcels\"")]
fn registering_a_malformed_route_panics() {
    Router::new().get("parcels", says("x"));
}

/// Middleware appending `tag` to the `X-Trail` request header on the way in.
fn trail(tag: &'static str) -> impl Middleware {
    move |req: &mut Request, next: Next<'_>| {
        let seen = req.header("X-Trail").unwrap_or("").to_string();
        req.set_header("X-Trail", format!("{seen}{tag}"));
        next.run(req)
    }
}

fn echo_trail(req: &mut Request) -> Response {
    Response::text(req.header("X-Trail").unwrap_or("-").to_string())
}

#[test]
fn group_middleware_runs_outermost_first_for_the_group_routes_only() {
    let mut r = Router::new();
    r.get("/outside", echo_trail);
    {
        let mut api = r.group("/api");
        api.get("/early", echo_trail);
        api.with(trail("A")).with(trail("B"));
        api.get("/users/{id}", echo_trail).get("", echo_trail);
        let mut v1 = api.group("v1/");
        v1.with(trail("C")).get("/x", echo_trail);
        api.get("/late", echo_trail);
    }
    for (target, want) in [
        ("/outside", "-"),
        ("/api/early", "-"),
        ("/api/users/7", "AB"),
        ("/api", "AB"),
        ("/api/v1/x", "ABC"),
        ("/api/late", "AB"),
    ] {
        let resp = send(&r, "GET", target);
        assert_eq!((resp.status(), body(&resp)), (200, want), "{target}");
    }
}

#[test]
fn group_routes_get_their_params_and_conflict_like_any_route() {
    let mut r = Router::new();
    r.get("/api/users/me", says("me"));
    let mut api = r.group("/api/");
    api.with(trail("A")).get("/users/{id}", params);
    assert!(api.try_route("GET", "/users/{other}", params).is_err());
    assert_eq!(body(&send(&r, "GET", "/api/users/9")), "id=9;");
    assert_eq!(body(&send(&r, "GET", "/api/users/me")), "me");
}

#[test]
fn redirect_locations_cannot_leave_the_site() {
    let mut r = Router::new();
    r.get("/", says("root"));
    for target in [
        "//\\evil.com",
        "/./\\evil.com/",
        "/x/..//\\evil.com",
        "//%5cevil.com/..",
    ] {
        let resp = send(&r, "GET", target);
        assert_eq!(resp.status(), 301, "{target}");
        let loc = resp.header("Location").unwrap();
        assert!(
            loc.starts_with('/') && !loc.starts_with("//") && !loc.contains('\\'),
            "{target} redirected to {loc}"
        );
    }
}

fn info(pattern: &str, methods: &[&str], group: Option<&str>) -> RouteInfo {
    RouteInfo {
        pattern: pattern.to_string(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        group: group.map(str::to_string),
    }
}

#[test]
fn route_table_lists_patterns_methods_and_groups_in_a_stable_order() {
    let routes: [(Option<&str>, &str, &str); 9] = [
        (None, "GET", "/healthz"),
        (Some("/api/v1"), "POST", "/users"),
        (Some("/api/v1"), "GET", "/users"),
        (Some("/api/v1"), "PUT", "/users/{id}"),
        (Some("/api/v1"), "GET", "/users/{id}"),
        (None, "*", "/static/"),
        (None, "HEAD", "/healthz"),
        (None, "PATCH", "/api/v1/users"),
        (Some("/api/v1"), "*", ""),
    ];
    let want = [
        info("/api/v1", &["*"], Some("/api/v1")),
        info("/api/v1/users", &["GET", "POST"], Some("/api/v1")),
        info("/api/v1/users", &["PATCH"], None),
        info("/api/v1/users/{id}", &["GET", "PUT"], Some("/api/v1")),
        info("/healthz", &["GET", "HEAD"], None),
        info("/static/", &["*"], None),
    ];
    // Same table whatever the registration order (reversed, and two rotations).
    let orders: [Vec<usize>; 3] = [
        (0..routes.len()).collect(),
        (0..routes.len()).rev().collect(),
        (0..routes.len()).map(|i| (i + 4) % routes.len()).collect(),
    ];
    for order in orders {
        let mut r = Router::new();
        for &i in &order {
            match routes[i] {
                (None, method, pattern) => r.route(method, pattern, says("x")),
                (Some(prefix), method, pattern) => {
                    r.group(prefix).route(method, pattern, says("x"));
                    &mut r
                }
            };
        }
        assert_eq!(r.routes(), want, "order {order:?}");
    }
    assert_eq!(Router::new().routes(), []);
}

#[test]
fn route_table_names_the_full_prefix_of_nested_groups() {
    let mut r = Router::new();
    {
        let mut api = r.group("/api");
        api.get("/ping", says("pong"));
        api.group("/v2").get("/users/{id}", says("user"));
    }
    assert_eq!(
        r.routes(),
        [
            info("/api/ping", &["GET"], Some("/api")),
            info("/api/v2/users/{id}", &["GET"], Some("/api/v2")),
        ]
    );
    // A refused registration leaves no line behind.
    assert!(
        r.group("/api")
            .try_route("GET", "/ping", says("x"))
            .is_err()
    );
    assert_eq!(r.routes().len(), 2);
}

/// A handler answering the route pattern it sees (`-` for none).
fn route_of(req: &mut Request) -> Response {
    Response::text(req.route().unwrap_or("-").to_string())
}

/// `r` inside a stack whose middleware copies `req.route()` after the router returned
/// into `X-Route` (what a metrics middleware does).
fn labelled(r: Router) -> Stack {
    Stack::new(r).with(|req: &mut Request, next: Next<'_>| {
        let mut resp = next.run(req);
        let label = req.route().unwrap_or("-").to_string();
        resp.set_header("X-Route", label);
        resp
    })
}

#[test]
fn matched_pattern_is_on_the_request_for_the_handler_and_the_middleware_around() {
    let mut r = Router::new();
    r.get("/parcels/{id}", route_of)
        .any("/files/{path...}", route_of)
        .get("/dir/", route_of)
        .post("/a/{x}", route_of)
        .not_found(route_of);
    let app = labelled(r);
    for (method, target, status, want) in [
        ("GET", "/parcels/7", 200, "/parcels/{id}"),
        ("HEAD", "/parcels/7", 200, "/parcels/{id}"),
        ("DELETE", "/files/a/b", 200, "/files/{path...}"),
        ("GET", "/dir/x/y", 200, "/dir/"),
        // Matched against the cleaned path: still a route.
        ("POST", "/a/./b", 200, "/a/{x}"),
        // The router's own answers name no route.
        ("GET", "/nowhere", 200, "-"), // the custom not_found handler
        ("PUT", "/parcels/7", 405, "-"),
        ("GET", "/dir", 301, "-"),
        ("GET", "/parcels//7", 301, "-"),
    ] {
        let resp = TestRequest::new(method, target).run(&app);
        assert_eq!(resp.status(), status, "{method} {target}");
        assert_eq!(resp.header("X-Route"), Some(want), "{method} {target}");
        if status == 200 && method != "HEAD" {
            assert_eq!(body(&resp), want, "{method} {target}");
        }
    }
}

#[test]
fn matched_pattern_through_groups_includes_the_prefix() {
    let mut r = Router::new();
    {
        let mut api = r.group("/api/v1");
        // Group middleware runs after the router picked the route: it sees it too.
        api.with(|req: &mut Request, next: Next<'_>| {
            let seen = req.route().unwrap_or("-").to_string();
            let mut resp = next.run(req);
            resp.set_header("X-Group-Saw", seen);
            resp
        });
        api.get("/users/{id}", route_of).get("", route_of);
        api.group("/admin").put("/users/{id}", route_of);
    }
    let app = labelled(r);
    for (method, target, want) in [
        ("GET", "/api/v1/users/7", "/api/v1/users/{id}"),
        ("GET", "/api/v1", "/api/v1"),
        ("PUT", "/api/v1/admin/users/7", "/api/v1/admin/users/{id}"),
    ] {
        let resp = TestRequest::new(method, target).run(&app);
        assert_eq!((resp.status(), body(&resp)), (200, want), "{target}");
        assert_eq!(resp.header("X-Route"), Some(want), "{target}");
        assert_eq!(resp.header("X-Group-Saw"), Some(want), "{target}");
    }
    let resp = TestRequest::get("/api/v1/nope").run(&app);
    assert_eq!((resp.status(), resp.header("X-Route")), (404, Some("-")));
}

#[test]
fn a_route_left_on_the_request_is_cleared_when_nothing_matches() {
    let mut r = Router::new();
    r.get("/x", route_of);
    let mut req = TestRequest::get("/x").build();
    assert_eq!(req.route(), None);
    assert_eq!(r.call(&mut req).status(), 200);
    assert_eq!(req.route(), Some("/x"));
    // The same request through a router that does not match it (a router mounted in
    // another one answering 404) names no route.
    assert_eq!(Router::new().call(&mut req).status(), 404);
    assert_eq!(req.route(), None);
}

#[test]
fn options_asterisk_is_answered_200_for_the_server() {
    // RFC 9110 §9.3.7: `OPTIONS *` is about the server as a whole; no route is asked.
    let mut r = Router::new();
    r.get("/a", |_: &mut Request| Response::text("a"));
    let resp = send(&r, "OPTIONS", "*");
    assert_eq!(resp.status(), 200);
    assert_eq!(send(&r, "OPTIONS", "/a").status(), 405);
}
