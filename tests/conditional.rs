//! Conditional requests (RFC 9110 §13) end to end: the demo binary's users API and
//! assets, over real sockets — `If-Match` guarding a PUT (412, nothing written), the
//! ETag changing with each write, `If-None-Match` / `If-Modified-Since` answering 304
//! with the validators and no body, HEAD, `*`, and a weak tag never matching `If-Match`.
#![cfg(feature = "cli")]

mod support;

use std::net::SocketAddr;

use serde_json::Value;
use support::*;

const TOKEN: &str = "conditional-token";

struct Demo {
    _child: ChildGuard,
    addr: SocketAddr,
}

fn start() -> Demo {
    start_with(&[])
}

fn start_with(env: &[(&str, &str)]) -> Demo {
    let port = free_port();
    let mut cmd = demo_command(port, TOKEN, "warn", false);
    cmd.envs(env.iter().copied());
    let (child, addr) = spawn_listening(&mut cmd, port);
    Demo {
        _child: child,
        addr,
    }
}

impl Demo {
    /// One request on its own connection (`Connection: close`), with the API token, a
    /// JSON body when given and extra header lines. For a response without content
    /// (HEAD, 304) it also checks that nothing follows the head before the close.
    fn call(&self, method: &str, path: &str, body: Option<&str>, extra: &[&str]) -> Resp {
        let req = api_request(method, path, TOKEN, body, extra);
        let mut r = Reader::new(connect(self.addr));
        r.send(req.as_bytes());
        let resp = r.read_response_to(method).expect("a response");
        if method == "HEAD" || resp.status == 304 {
            assert!(r.is_closed(), "closed after {method} {path}");
            assert!(r.leftover().is_empty(), "no content: {:?}", r.leftover());
        }
        resp
    }

    fn create(&self, name: &str) -> u64 {
        let body = format!(r#"{{"name":"{name}","email":"{name}@example.com"}}"#);
        let r = self.call("POST", "/api/v1/users", Some(&body), &[]);
        assert_eq!(r.status, 201, "{}", r.text());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        v["id"].as_u64().unwrap()
    }

    /// `GET /api/v1/users/{id}`: (status, ETag, name).
    fn get(&self, id: u64) -> (u16, String, String) {
        let r = self.call("GET", &format!("/api/v1/users/{id}"), None, &[]);
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let etag = r.header("ETag").unwrap_or_default().to_string();
        (
            r.status,
            etag,
            v["name"].as_str().unwrap_or_default().into(),
        )
    }

    fn put(&self, id: u64, name: &str, extra: &[&str]) -> Resp {
        let body = format!(r#"{{"name":"{name}","email":"{name}@example.com"}}"#);
        self.call("PUT", &format!("/api/v1/users/{id}"), Some(&body), extra)
    }
}

#[test]
fn a_put_with_a_wrong_if_match_is_412_and_leaves_the_user_unchanged() {
    let d = start();
    let id = d.create("ada");
    let (s, etag, name) = d.get(id);
    assert_eq!((s, name.as_str()), (200, "ada"));

    let r = d.put(id, "mallory", &["If-Match: \"nope\""]);
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(d.get(id), (200, etag.clone(), "ada".into()), "unchanged");
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );

    // Several tags, none current; then a malformed field: 412 too, nothing written.
    let r = d.put(id, "mallory", &["If-Match: \"a\", \"b\""]);
    assert_eq!(r.status, 412);
    let r = d.put(id, "mallory", &["If-Match: nope"]);
    assert_eq!(r.status, 412);
    // The preconditions come before the content is read: a bad body is still 412.
    let r = d.call(
        "PUT",
        &format!("/api/v1/users/{id}"),
        Some("{not json"),
        &["If-Match: \"nope\""],
    );
    assert_eq!(r.status, 412);
    assert_eq!(d.get(id).2, "ada");
}

#[test]
fn the_right_etag_updates_and_the_etag_changes() {
    let d = start();
    let id = d.create("ada");
    let (_, v1, _) = d.get(id);
    let r = d.put(id, "lovelace", &[&format!("If-Match: {v1}")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let (s, v2, name) = d.get(id);
    assert_eq!((s, name.as_str()), (200, "lovelace"));
    assert_ne!(v1, v2, "a write changes the ETag");

    // The old tag is stale now: a lost update is refused.
    let r = d.put(id, "ada", &[&format!("If-Match: {v1}")]);
    assert_eq!(r.status, 412);
    assert_eq!(d.get(id).2, "lovelace");
    // In a list, on a second field line: the current one matches.
    let r = d.put(
        id,
        "ada",
        &["If-Match: \"x\"", &format!("If-Match: {v1}, {v2}")],
    );
    assert_eq!(r.status, 200);
    // Writing the same fields again is a new version: the ETag changes again.
    let (_, v3, _) = d.get(id);
    assert_eq!(d.put(id, "ada", &[&format!("If-Match: {v3}")]).status, 200);
    assert_ne!(d.get(id).1, v3);
}

/// The same on the PostgreSQL backend: its conditional `UPDATE … WHERE version = $5`.
#[cfg(feature = "postgres")]
#[test]
fn postgres_honours_if_match_and_if_none_match_too() {
    let pg = support::postgres::Postgres::start();
    let url = pg.url();
    let d = start_with(&[("DEMO_DATABASE_URL", url.as_str())]);
    let id = d.create("ada");
    let (_, v1, _) = d.get(id);
    assert_eq!(d.put(id, "mallory", &["If-Match: \"nope\""]).status, 412);
    assert_eq!(d.get(id), (200, v1.clone(), "ada".into()));
    assert_eq!(
        d.put(id, "lovelace", &[&format!("If-Match: {v1}")]).status,
        200
    );
    let (_, v2, name) = d.get(id);
    assert_eq!(name, "lovelace");
    assert_ne!(v1, v2);
    assert_eq!(d.put(id, "ada", &[&format!("If-Match: {v1}")]).status, 412);
    let path = format!("/api/v1/users/{id}");
    let r = d.call("GET", &path, None, &[&format!("If-None-Match: {v2}")]);
    assert_eq!((r.status, r.header("ETag")), (304, Some(v2.as_str())));
    let modified = d.call("GET", &path, None, &[]);
    let modified = modified.header("Last-Modified").unwrap();
    let r = d.call(
        "GET",
        &path,
        None,
        &[&format!("If-Modified-Since: {modified}")],
    );
    assert_eq!(r.status, 304);
}

#[test]
fn a_weak_etag_in_if_match_never_matches() {
    let d = start();
    let id = d.create("ada");
    let (_, etag, _) = d.get(id);
    let r = d.put(id, "grace", &[&format!("If-Match: W/{etag}")]);
    assert_eq!(r.status, 412);
    assert_eq!(d.get(id).2, "ada");
    // If-None-Match compares weakly: the same weak tag is "not modified" on GET.
    let r = d.call(
        "GET",
        &format!("/api/v1/users/{id}"),
        None,
        &[&format!("If-None-Match: W/{etag}")],
    );
    assert_eq!(r.status, 304);
}

#[test]
fn if_none_match_with_the_current_etag_is_304_with_the_validators_and_no_body() {
    let d = start();
    let id = d.create("ada");
    let path = format!("/api/v1/users/{id}");
    let full = d.call("GET", &path, None, &[]);
    let etag = full.header("ETag").unwrap().to_string();
    let modified = full
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_string();
    assert_eq!(full.header("Cache-Control"), Some("private, no-cache"));

    for method in ["GET", "HEAD"] {
        let r = d.call(method, &path, None, &[&format!("If-None-Match: {etag}")]);
        assert_eq!(r.status, 304, "{method}");
        assert_eq!(r.header("ETag"), Some(etag.as_str()), "{method}");
        assert_eq!(r.header("Last-Modified"), Some(modified.as_str()));
        assert_eq!(r.header("Cache-Control"), Some("private, no-cache"));
        assert_eq!(r.header("Content-Type"), None, "{method}");
        assert_eq!(r.header("Content-Length"), None, "{method}");
        assert!(r.body.is_empty());
    }
    // Another tag, or `*` with a list: the full answer / 304 as the list says.
    let r = d.call("GET", &path, None, &["If-None-Match: \"other\""]);
    assert_eq!((r.status, r.header("ETag")), (200, Some(etag.as_str())));
    assert_eq!(
        d.call("GET", &path, None, &["If-None-Match: *"]).status,
        304
    );
    // HEAD without preconditions: the GET's head, validators included.
    let r = d.call("HEAD", &path, None, &[]);
    assert_eq!((r.status, r.header("ETag")), (200, Some(etag.as_str())));
    assert_eq!(
        r.header("Content-Length").map(str::to_string),
        Some(full.body.len().to_string())
    );

    // If-Modified-Since: the Last-Modified date (any of the three formats) is 304, an
    // older one the full answer, an invalid one is ignored; If-None-Match overrides it.
    let r = d.call(
        "GET",
        &path,
        None,
        &[&format!("If-Modified-Since: {modified}")],
    );
    assert_eq!(r.status, 304);
    let old = "Sun, 06 Nov 1994 08:49:37 GMT";
    let r = d.call("GET", &path, None, &[&format!("If-Modified-Since: {old}")]);
    assert_eq!(r.status, 200);
    let r = d.call("GET", &path, None, &["If-Modified-Since: yesterday"]);
    assert_eq!(r.status, 200);
    let r = d.call(
        "GET",
        &path,
        None,
        &[
            "If-None-Match: \"other\"",
            &format!("If-Modified-Since: {modified}"),
        ],
    );
    assert_eq!(
        r.status, 200,
        "If-None-Match present: If-Modified-Since is ignored"
    );

    // On a PUT, a matching If-None-Match is 412 (not 304) and writes nothing.
    let r = d.put(id, "grace", &[&format!("If-None-Match: {etag}")]);
    assert_eq!(r.status, 412);
    // If-Unmodified-Since: an older date is 412, the Last-Modified date proceeds.
    let r = d.put(id, "grace", &[&format!("If-Unmodified-Since: {old}")]);
    assert_eq!(r.status, 412);
    assert_eq!(d.get(id).2, "ada");
    let r = d.put(id, "grace", &[&format!("If-Unmodified-Since: {modified}")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.get(id).2, "grace");
}

#[test]
fn if_match_star_needs_an_existing_user() {
    let d = start();
    let id = d.create("ada");
    let r = d.put(id, "grace", &["If-Match: *"]);
    assert_eq!(r.status, 200, "an existing user matches *");
    assert_eq!(d.get(id).2, "grace");
    // No user 999: this PUT never creates, so its answer without preconditions is 404,
    // and RFC 9110 §13.2.1 has the preconditions ignored then: 404, not 412.
    let r = d.put(999, "grace", &["If-Match: *"]);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(d.get(999).0, 404);
    let r = d.call("GET", "/api/v1/users/999", None, &["If-None-Match: *"]);
    assert_eq!(r.status, 404);
}

#[test]
fn assets_are_revalidated_with_their_etag() {
    let d = start();
    for path in ["/assets/page.css", "/assets/page.js"] {
        let full = d.call("GET", path, None, &[]);
        assert_eq!(full.status, 200);
        let etag = full.header("ETag").expect("ETag").to_string();
        let r = d.call("GET", path, None, &[&format!("If-None-Match: {etag}")]);
        assert_eq!(r.status, 304, "{path}");
        assert_eq!(r.header("ETag"), Some(etag.as_str()));
        assert_eq!(r.header("Cache-Control"), Some("no-cache"));
        assert_eq!(
            d.call("HEAD", path, None, &[&format!("If-None-Match: {etag}")])
                .status,
            304
        );
        let r = d.call("GET", path, None, &["If-None-Match: \"stale\""]);
        assert_eq!((r.status, r.body.len()), (200, full.body.len()));
    }
}
