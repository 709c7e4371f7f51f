//! The router at the wire: path parameters, 404, 405 with `Allow`, HEAD served by a
//! GET route, most-specific-wins, group middleware, the redirects of non-canonical
//! paths and missing trailing slashes, and the matched pattern on the request.
//!
//! Every test starts a real server on 127.0.0.1:0 and speaks raw bytes over a socket
//! with a read timeout (see `support`).

mod support;
use support::*;

use h1server::middleware::Next;
use h1server::{Request, Response, Router, Stack};

/// The application every test talks to.
///
/// * `GET /parcels/{id}` — `parcel {id}`; `POST /parcels` — `created` (201).
/// * `GET /users/{id}` — `user {id}`; `GET /users/me` — `me` (registered after).
/// * `GET /hello` — `hello world`; `GET /b` — `b`; `GET /docs/` — the docs subtree.
/// * `GET /api/ping` — `pong`, in a group whose middleware sets `X-Group: api`.
fn app() -> Router {
    let mut r = Router::new();
    r.get("/parcels/{id}", |req: &mut Request| {
        Response::text(format!("parcel {}\n", req.param("id").unwrap_or_default()))
    });
    r.post("/parcels", |_: &mut Request| {
        Response::text("created\n").with_status(201)
    });
    r.get("/users/{id}", |req: &mut Request| {
        Response::text(format!("user {}\n", req.param("id").unwrap_or_default()))
    });
    r.get("/users/me", |_: &mut Request| Response::text("me\n"));
    r.get("/hello", |_: &mut Request| Response::text("hello world\n"));
    r.get("/b", |_: &mut Request| Response::text("b\n"));
    r.get("/docs/", |req: &mut Request| {
        Response::text(format!("docs at {}\n", req.path()))
    });
    let mut api = r.group("/api");
    api.with(|req: &mut Request, next: Next<'_>| {
        let mut resp = next.run(req);
        resp.set_header("X-Group", "api");
        resp
    });
    api.get("/ping", |_: &mut Request| Response::text("pong\n"));
    r
}

fn request(srv: &TestServer, method: &str, target: &str) -> Resp {
    let raw = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut reader = Reader::new(srv.connect());
    reader.send(raw.as_bytes());
    reader
        .read_response_to(method)
        .expect("connection closed before a response")
}

#[test]
fn path_parameters_reach_the_handler_percent_decoded() {
    let srv = TestServer::start(app());
    let resp = request(&srv, "GET", "/parcels/a%2Fb?verbose=1");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "parcel a/b\n");
}

#[test]
fn unmatched_path_gets_404() {
    let srv = TestServer::start(app());
    for target in ["/nope", "/parcels/1/extra", "/parcels/"] {
        assert_eq!(request(&srv, "GET", target).status, 404, "{target}");
    }
}

#[test]
fn matched_path_with_other_method_gets_405_with_sorted_allow() {
    let srv = TestServer::start(app());
    let resp = request(&srv, "DELETE", "/parcels/1");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("Allow"), Some("GET, HEAD"));
    let resp = request(&srv, "GET", "/parcels");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("Allow"), Some("POST"));
    assert_eq!(request(&srv, "POST", "/parcels").status, 201);
}

#[test]
fn head_is_served_by_the_get_route_without_a_body_and_with_the_same_length() {
    let srv = TestServer::start(app());
    let mut reader = Reader::new(srv.connect());
    // HEAD then GET on one connection: a body after the HEAD head would corrupt the
    // GET response that follows.
    reader.send(
        b"HEAD /hello HTTP/1.1\r\nHost: test\r\n\r\nGET /hello HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    let head = reader.read_response_to("HEAD").expect("HEAD response");
    let get = reader.read_response();
    assert_eq!((head.status, get.status), (200, 200));
    assert_eq!(get.text(), "hello world\n");
    assert_eq!(head.header("Content-Length"), Some("12"));
    assert_eq!(head.header("Content-Length"), get.header("Content-Length"));
    assert!(reader.leftover().is_empty(), "bytes after the GET response");
}

#[test]
fn most_specific_route_wins_over_registration_order() {
    let srv = TestServer::start(app());
    assert_eq!(request(&srv, "GET", "/users/me").text(), "me\n");
    assert_eq!(request(&srv, "GET", "/users/7").text(), "user 7\n");
}

#[test]
fn group_middleware_runs_only_for_the_group_routes() {
    let srv = TestServer::start(app());
    let resp = request(&srv, "GET", "/api/ping");
    assert_eq!((resp.status, resp.text().as_str()), (200, "pong\n"));
    assert_eq!(resp.header("X-Group"), Some("api"));
    let resp = request(&srv, "GET", "/hello");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("X-Group"), None);
}

#[test]
fn non_canonical_path_is_redirected_to_the_cleaned_one_with_its_query() {
    let srv = TestServer::start(app());
    let resp = request(&srv, "GET", "//a/../b?x=1");
    assert_eq!(resp.status, 301);
    assert_eq!(resp.header("Location"), Some("/b?x=1"));
    assert_eq!(request(&srv, "GET", "/b?x=1").text(), "b\n");
}

#[test]
fn subtree_root_without_its_trailing_slash_is_redirected() {
    let srv = TestServer::start(app());
    let resp = request(&srv, "GET", "/docs");
    assert_eq!(resp.status, 301);
    assert_eq!(resp.header("Location"), Some("/docs/"));
    assert_eq!(
        request(&srv, "GET", "/docs/a/b").text(),
        "docs at /docs/a/b\n"
    );
}

#[test]
fn middleware_around_the_router_labels_each_pipelined_request_with_its_pattern() {
    // What a metrics middleware does: label the response with the route after routing.
    let labelled = Stack::new(app()).with(|req: &mut Request, next: Next<'_>| {
        let mut resp = next.run(req);
        let label = req.route().unwrap_or("none").to_string();
        resp.set_header("X-Route", label);
        resp
    });
    let srv = TestServer::start(labelled);
    let mut reader = Reader::new(srv.connect());
    // One write, so the requests travel to a worker as one batch.
    let expect = [
        ("GET", "/parcels/7", 200, "/parcels/{id}"),
        ("GET", "/api/ping", 200, "/api/ping"),
        ("GET", "/nope", 404, "none"),
        ("HEAD", "/users/me", 200, "/users/me"),
        ("DELETE", "/parcels/1", 405, "none"),
        ("GET", "/docs", 301, "none"),
        ("GET", "/docs/a", 200, "/docs/"),
    ];
    let raw: String = expect
        .iter()
        .map(|(m, t, _, _)| format!("{m} {t} HTTP/1.1\r\nHost: test\r\n\r\n"))
        .collect();
    reader.send(raw.as_bytes());
    for (method, target, status, route) in expect {
        let resp = reader
            .read_response_to(method)
            .expect("connection closed before a response");
        assert_eq!(resp.status, status, "{method} {target}");
        assert_eq!(resp.header("X-Route"), Some(route), "{method} {target}");
    }
}
