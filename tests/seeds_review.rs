//! The demo service (`make run`'s binary) against the Go seeds (`../shared/seeds/`), over
//! real sockets: where the demo's answer differed from the seed's without a documented
//! reason, a test here pins the seed's behaviour.
#![cfg(feature = "cli")]

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::*;

const TOKEN: &str = "seeds-token";

struct Demo {
    child: ChildGuard,
    addr: SocketAddr,
}

/// The demo binary on a free port with an in-memory SQLite store; `extra_env` on top.
fn start_demo(extra_env: &[(&str, &str)]) -> Demo {
    let port = free_port();
    let mut cmd = demo_command(port, TOKEN, "warn", false);
    cmd.envs(extra_env.iter().copied());
    let (child, addr) = spawn_listening(&mut cmd, port);
    Demo { child, addr }
}

/// One request (`Connection: close`) with `headers` and `body`; the parsed answer.
fn request(d: &Demo, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut r = Reader::new(connect(d.addr));
    r.send(req.as_bytes());
    r.read_response_to(method)
        .expect("connection closed before a response")
}

fn get(d: &Demo, path: &str) -> Resp {
    request(d, "GET", path, &[], "")
}

fn json(resp: &Resp) -> serde_json::Value {
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {:?}", resp.headers, resp.text()))
}

/// Seed 000's `LivenessHandler`: `{"status":"alive","version":…,"uptime":…}` as JSON.
#[test]
fn healthz_is_the_seeds_liveness_answer_alive_version_uptime() {
    let d = start_demo(&[]);
    let r = get(&d, "/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = json(&r);
    assert_eq!(v["status"], "alive", "{v}");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"), "{v}");
    assert!(v["uptime"].is_string(), "{v}");
}

/// Seeds 001 and 003 name the probes `/health` and `/ready` (000 and 002: `/healthz`,
/// `/readyz`): both names answer, with the same handlers.
#[test]
fn health_and_ready_answer_under_the_names_of_seeds_001_and_003() {
    let d = start_demo(&[]);
    let r = get(&d, "/health");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["status"], "alive");
    let r = get(&d, "/ready");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["status"], "ready");
    // GET-only, like the seeds' `GET /health` / `GET /ready` patterns.
    let r = request(&d, "POST", "/ready", &[], "");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
}

/// Seed 000's `ReadinessHandler` knows two answers: `200 {"status":"ready"}` and `503
/// {"status":"not_ready"}`; its drain marks the service not ready. Draining is that
/// second answer (with the reason beside it), not a third status value.
#[test]
fn readyz_while_draining_is_503_not_ready_and_healthz_stays_alive() {
    let mut d = start_demo(&[("H1_DRAIN_DELAY", "20s"), ("H1_SHUTDOWN_TIMEOUT", "2s")]);
    assert_eq!(get(&d, "/readyz").status, 200);
    let pid = d.child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut ready = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let r = get(&d, "/readyz");
            let draining = r.status == 503;
            ready = Some(r);
            draining
        }),
        "/readyz never turned 503 after SIGTERM: {ready:?}"
    );
    let ready = ready.unwrap();
    let v = json(&ready);
    assert_eq!(v["status"], "not_ready", "{v}");
    assert_eq!(v["reason"], "draining", "{v}");
    for path in ["/readyz", "/ready"] {
        let r = get(&d, path);
        assert_eq!(
            (r.status, json(&r)["status"].clone()),
            (503, "not_ready".into())
        );
    }
    let live = get(&d, "/healthz");
    assert_eq!(
        (live.status, json(&live)["status"].clone()),
        (200, "alive".into())
    );
    // A second signal ends the drain delay's wait at once.
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = d.child.0.wait();
}

/// Seed 002's `http.NotFound(w, r)` (and Go's `ServeMux` for an unmatched path) answers
/// `404` with `404 page not found\n`, plain text.
#[test]
fn an_unmatched_path_gets_gos_404_page_not_found() {
    let d = start_demo(&[]);
    for path in ["/nowhere", "/parcels/", "/api/v1/users/"] {
        let r = get(&d, path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.text(), "404 page not found\n", "{path}");
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
    }
}

/// Seed 000 wires `middleware.CORS([]string{"https://example.com"})` into the service's
/// global stack: a preflight from that origin is answered (before auth, so without a
/// token), actual requests from it get `Access-Control-Allow-Origin`, other origins get
/// nothing. `DEMO_CORS_ORIGINS` replaces the list.
#[test]
fn cors_from_seed_000_answers_preflights_and_marks_allowed_origins() {
    let d = start_demo(&[]);
    let origin = ("Origin", "https://example.com");
    let pre = request(
        &d,
        "OPTIONS",
        "/api/v1/users",
        &[
            origin,
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        ],
        "",
    );
    assert_eq!(pre.status, 204, "{:?} {}", pre.headers, pre.text());
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://example.com")
    );
    let methods = pre.header("access-control-allow-methods").unwrap_or("");
    assert!(
        methods.contains("POST") && methods.contains("PUT"),
        "{methods}"
    );
    let allowed = pre
        .header("access-control-allow-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");

    let r = request(&d, "GET", "/healthz", &[origin], "");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://example.com")
    );
    assert!(r.header("vary").unwrap_or("").contains("Origin"), "{r:?}");
    let auth = format!("Bearer {TOKEN}");
    let r = request(
        &d,
        "GET",
        "/api/v1/users",
        &[origin, ("Authorization", &auth)],
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://example.com")
    );

    let other = ("Origin", "https://evil.example");
    let r = request(&d, "GET", "/healthz", &[other], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let pre = request(
        &d,
        "OPTIONS",
        "/api/v1/users",
        &[other, ("Access-Control-Request-Method", "POST")],
        "",
    );
    assert_eq!(pre.status, 403);
    assert_eq!(pre.header("access-control-allow-origin"), None);
    // Not a CORS request: no Origin, no CORS headers.
    assert_eq!(
        get(&d, "/healthz").header("access-control-allow-origin"),
        None
    );
    drop(d);

    let d = start_demo(&[(
        "DEMO_CORS_ORIGINS",
        "https://app.example, https://b.example",
    )]);
    let r = request(
        &d,
        "GET",
        "/healthz",
        &[("Origin", "https://b.example")],
        "",
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://b.example")
    );
    let r = request(&d, "GET", "/healthz", &[origin], "");
    assert_eq!(r.header("access-control-allow-origin"), None);
    drop(d);

    let d = start_demo(&[("DEMO_CORS_ORIGINS", "off")]);
    let pre = request(
        &d,
        "OPTIONS",
        "/api/v1/users",
        &[origin, ("Access-Control-Request-Method", "POST")],
        "",
    );
    assert_eq!(pre.status, 405, "CORS off: the router answers OPTIONS");
}

/// The users API answers every error of its own as JSON `{"error": …}` (README: "Errors
/// name the field"), malformed JSON and a wrong content type included: a client of a
/// JSON API parses the error body it gets.
#[test]
fn users_api_errors_for_malformed_json_and_content_type_are_json() {
    let d = start_demo(&[]);
    let auth = format!("Bearer {TOKEN}");
    let ct = ("Content-Type", "application/json");
    let bearer = ("Authorization", auth.as_str());
    for (method, path) in [("POST", "/api/v1/users"), ("PUT", "/api/v1/users/1")] {
        let r = request(&d, method, path, &[bearer, ct], "{\"name\":");
        assert_eq!(r.status, 400, "{method} {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let e = json(&r)["error"].as_str().unwrap_or("").to_string();
        assert!(e.starts_with("invalid JSON body"), "{e}");

        let r = request(
            &d,
            method,
            path,
            &[bearer],
            "{\"name\":\"a\",\"email\":\"a@b\"}",
        );
        assert_eq!(r.status, 415, "{method} {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(json(&r)["error"], "expected Content-Type: application/json");
    }
    // The well-formed path is unchanged: 201, the user, Location.
    let r = request(
        &d,
        "POST",
        "/api/v1/users",
        &[bearer, ct],
        "{\"name\":\"Ada\",\"email\":\"ada@example.com\"}",
    );
    assert_eq!(r.status, 201);
    let id = json(&r)["id"].as_u64().expect("id");
    assert_eq!(r.header("location"), Some(&*format!("/api/v1/users/{id}")));
}

/// Seed 001's `uploadHandler`: a form without a file is `400` ("Can't get file"), one
/// with a file `201 Created`. The demo stored nothing and still said `201`.
#[test]
fn an_upload_form_without_a_file_is_400_and_with_one_201() {
    let dir = TempDir::new("seeds-uploads");
    let d = start_demo(&[("DEMO_UPLOAD_DIR", dir.0.to_str().unwrap())]);
    let auth = format!("Bearer {TOKEN}");
    let b = "seeds-boundary";
    let ct = format!("multipart/form-data; boundary={b}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", ct.as_str()),
    ];
    let fields_only = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{b}--\r\n"
    );
    let r = request(&d, "POST", "/api/v1/uploads", &headers, &fields_only);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        json(&r)["error"].as_str().unwrap_or("").contains("file"),
        "{}",
        r.text()
    );

    let with_file = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nhello\r\n--{b}--\r\n"
    );
    let r = request(&d, "POST", "/api/v1/uploads", &headers, &with_file);
    assert_eq!(r.status, 201, "{}", r.text());
    let v = json(&r);
    assert_eq!(
        (v["files"][0]["name"].clone(), v["files"][0]["size"].clone()),
        ("file".into(), 5.into())
    );
}
