//! The demo's web page (`GET /` with `Accept: text/html`) in a real browser: headless
//! Chromium, driven through chromedriver (W3C WebDriver, JSON over plain HTTP, spoken
//! here with a std `TcpStream`). The browser loads the page, sees SSE ticks arrive, types
//! the token and a user into the form and submits it; the server is then asked over a raw
//! socket whether the user exists and whether the page sent an `Idempotency-Key`. A
//! screenshot is kept in `<target>/test-artifacts/demo-page.png`.
#![cfg(feature = "cli")]

mod support;

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

/// A token that is not the development one: the page must not contain it.
const TOKEN: &str = "page-test-token-7f3a";

/// The demo binary on a free port, with `token` as DEMO_API_TOKEN (`None`: unset, so the
/// server runs with the development token).
fn start_demo(token: Option<&str>) -> (ChildGuard, SocketAddr) {
    let port = free_port();
    let mut cmd = Command::new(built_binary("h1server", false));
    cmd.env("H1_ADDR", format!("127.0.0.1:{port}"))
        .env("DEMO_DB", ":memory:")
        .env_remove("H1_CONFIG")
        .env_remove("DEMO_API_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(t) = token {
        cmd.env("DEMO_API_TOKEN", t);
    }
    let child = ChildGuard(cmd.spawn().expect("spawn the demo binary"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
        "the demo did not start listening"
    );
    (child, addr)
}

fn get(addr: SocketAddr, path: &str, headers: &str) -> Resp {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    roundtrip(addr, req.as_bytes())
}

const BROWSER_ACCEPT: &str =
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n";

#[test]
fn browsers_get_the_page_and_other_clients_the_text_line() {
    let (_demo, addr) = start_demo(Some(TOKEN));

    let page = get(addr, "/", BROWSER_ACCEPT);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    // Accept picks the page; Origin, the CORS headers (seed 000's CORS middleware).
    assert_eq!(page.header("Vary"), Some("Accept, Origin"));
    let csp = page.header("Content-Security-Policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text();
    assert!(html.contains("Parcel service") && html.contains(env!("CARGO_PKG_VERSION")));
    assert!(
        !html.contains(TOKEN),
        "a configured token is a secret: not in the page"
    );
    assert!(!html.contains("value="), "the token field is empty");

    // curl and probes (Accept */* or none) keep the old line, and learn it varies.
    for headers in ["", "Accept: */*\r\n", "Accept: text/html;q=0\r\n"] {
        let r = get(addr, "/", headers);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "parcel service is reachable\n")
        );
        assert_eq!(r.header("Vary"), Some("Accept, Origin"), "{headers:?}");
    }

    for (path, kind) in [
        ("/assets/page.css", "text/css; charset=utf-8"),
        ("/assets/page.js", "text/javascript; charset=utf-8"),
    ] {
        let r = get(addr, path, "");
        assert_eq!((r.status, r.header("Content-Type")), (200, Some(kind)));
        assert!(!r.body.is_empty() && r.header_count("Content-Type") == 1);
    }
}

#[test]
fn the_token_field_is_prefilled_only_with_the_development_token() {
    let (_demo, addr) = start_demo(None);
    let html = get(addr, "/", BROWSER_ACCEPT).text();
    assert!(html.contains(r#"value="dev-token""#), "{html}");
}

#[path = "support/browser.rs"]
mod browser;
use browser::*;

fn api(addr: SocketAddr, method: &str, body: &str, headers: &str) -> Resp {
    let req = format!(
        "{method} /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    roundtrip(addr, req.as_bytes())
}

#[test]
fn a_browser_sees_ticks_and_creates_a_user_through_the_form() {
    let artifacts = artifacts_dir();
    let (_demo, addr) = start_demo(Some(TOKEN));
    let browser = Browser::start(&artifacts);
    browser.navigate(&format!("http://{addr}/"));

    // The route table, fetched from /debug/routes.
    let routes = browser.wait_for(
        "the route table",
        Duration::from_secs(10),
        "const t = document.getElementById('routes').innerText; \
         return t.includes('/api/v1/users') && t;",
    );
    assert!(routes.as_str().unwrap().contains("/events"), "{routes}");
    let title = browser.script("return document.title;");
    assert!(
        title.as_str().unwrap().contains(env!("CARGO_PKG_VERSION")),
        "{title}"
    );

    // Live ticks: two arrive on the page's EventSource (the hub ticks every second).
    browser.wait_for(
        "two SSE ticks",
        Duration::from_secs(15),
        "return Number(document.getElementById('tick-count').textContent) >= 2;",
    );
    assert_eq!(
        browser.script("return document.getElementById('sse-state').dataset.state;"),
        "live"
    );

    // Not the development token: the field starts empty and the person types it.
    assert_eq!(
        browser.script("return document.getElementById('token').value;"),
        ""
    );
    browser.type_into("#token", TOKEN);
    browser.type_into("#name", "Ada Lovelace");
    browser.type_into("#email", "ada@example.com");
    let key = browser.script("return document.getElementById('idem-key').textContent;");
    let key = key.as_str().unwrap().to_string();
    assert!(
        key.len() == 36 && key.matches('-').count() == 4,
        "a UUID: {key}"
    );
    browser.click("#submit");

    let result = browser.wait_for(
        "the form's answer",
        Duration::from_secs(10),
        "const r = document.getElementById('result'); \
         return (r.dataset.kind === 'ok' || r.dataset.kind === 'error') && \
                [r.dataset.kind, r.innerText];",
    );
    assert_eq!(result[0], "ok", "{result}");
    assert!(
        result[1].as_str().unwrap().contains("Ada Lovelace"),
        "{result}"
    );
    browser.wait_for(
        "the new user in the list",
        Duration::from_secs(10),
        "return document.getElementById('users').innerText.includes('ada@example.com');",
    );
    // One more tick, so the screenshot shows a running counter.
    browser.wait_for(
        "a third tick",
        Duration::from_secs(15),
        "return Number(document.getElementById('tick-count').textContent) >= 3;",
    );

    let png = browser.screenshot();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is a PNG"
    );
    let shot = artifacts.join("demo-page.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("screenshot: {}", shot.display());
    drop(browser);

    // The server kept the user the browser created.
    let list = roundtrip(
        addr,
        format!("GET /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(list.status, 200, "{}", list.text());
    let list: Value = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["users"][0]["name"], "Ada Lovelace", "{list}");
    assert_eq!(list["users"][0]["email"], "ada@example.com", "{list}");

    // The page sent the key it showed: the same request again is a replay, not a new user.
    let replay = api(
        addr,
        "POST",
        r#"{"name":"Ada Lovelace","email":"ada@example.com"}"#,
        &format!("Idempotency-Key: {key}\r\n"),
    );
    assert_eq!(replay.status, 201, "{}", replay.text());
    assert_eq!(
        replay.header("Idempotent-Replayed"),
        Some("true"),
        "{replay:?}"
    );
    let list = api(addr, "GET", "", "");
    let list: Value = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(list["count"], 1, "{list}");
}

#[test]
fn base64_decodes_padding_and_all_digits() {
    assert_eq!(base64_decode("TWFu"), b"Man");
    assert_eq!(base64_decode("TWE="), b"Ma");
    assert_eq!(base64_decode("TQ=="), b"M");
    assert_eq!(base64_decode("+/+/"), [0xfb, 0xff, 0xbf]);
}
