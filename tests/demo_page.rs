//! The demo's web page (`GET /` with `Accept: text/html`) in a real browser: headless
//! Chromium, driven through chromedriver (W3C WebDriver, JSON over plain HTTP, spoken
//! here with a std `TcpStream`). The browser loads the page, sees SSE ticks arrive, types
//! the token and a user into the form and submits it; the server is then asked over a raw
//! socket whether the user exists and whether the page sent an `Idempotency-Key`. A
//! screenshot is kept in `<target>/test-artifacts/demo-page.png`.
#![cfg(feature = "cli")]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
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
    assert_eq!(page.header("Vary"), Some("Accept"));
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
        assert_eq!(r.header("Vary"), Some("Accept"), "{headers:?}");
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

// ---- WebDriver over plain HTTP --------------------------------------------------------

/// One HTTP request to chromedriver; (status, JSON body). Every call is bounded.
fn webdriver_call(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    limit: Duration,
) -> (u16, Value) {
    try_webdriver_call(port, method, path, body, limit)
        .unwrap_or_else(|e| panic!("chromedriver {method} {path}: {e}"))
}

fn try_webdriver_call(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    limit: Duration,
) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(limit))?;
    s.set_write_timeout(Some(limit))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    // chromedriver says `Connection:close` but keeps the socket open: read by length.
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let bad = |raw: &[u8]| {
        std::io::Error::other(format!(
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(raw)
        ))
    };
    let (head_len, length) = loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(bad(&raw));
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| bad(&raw))?;
            break (i + 4, length);
        }
    };
    while raw.len() < head_len + length {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(bad(&raw));
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let status = String::from_utf8_lossy(&raw[..head_len])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&raw))?;
    let body = &raw[head_len..head_len + length];
    Ok((status, serde_json::from_slice(body).unwrap_or(Value::Null)))
}

/// The element id in a WebDriver element reference (W3C §12.1).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver, started in its own process group so the Chromium it launches goes down
/// with it, and one browser session.
struct Browser {
    driver: ChildGuard,
    port: u16,
    session: String,
    profile: PathBuf,
}

impl Browser {
    fn start(artifacts: &std::path::Path) -> Browser {
        require_tool("chromium");
        require_tool("chromedriver");
        let port = free_port();
        let profile =
            std::env::temp_dir().join(format!("h1server-demo-page-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let driver = ChildGuard(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .arg(format!(
                    "--log-path={}",
                    artifacts.join("chromedriver.log").display()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("spawn chromedriver"),
        );
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            profile,
        };
        let ready = wait_until(Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
                && webdriver_call(port, "GET", "/status", None, IO_TIMEOUT).1["value"]["ready"]
                    == true
        });
        assert!(ready, "chromedriver did not become ready on port {port}");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
            &format!("--user-data-dir={}", browser.profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "timeouts": {"pageLoad": 20_000, "script": 10_000, "implicit": 0},
        }}});
        let (status, v) = webdriver_call(
            port,
            "POST",
            "/session",
            Some(&caps),
            Duration::from_secs(60),
        );
        assert_eq!(status, 200, "new session: {v}");
        browser.session = v["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser
    }

    /// A command on the session; its `value`. Panics with WebDriver's error otherwise.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let full = format!("/session/{}{path}", self.session);
        let (status, v) = webdriver_call(
            self.port,
            method,
            &full,
            body.as_ref(),
            Duration::from_secs(30),
        );
        assert_eq!(status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn navigate(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `body` (a function body: `return …`) in the page.
    fn script(&self, body: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": body, "args": [] })),
        )
    }

    /// Polls `body` until it returns something truthy; at most `limit`.
    fn wait_for(&self, what: &str, limit: Duration, body: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.script(body);
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            assert!(t0.elapsed() < limit, "waited {limit:?} for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn element(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.cmd("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// The viewport as PNG bytes.
    fn screenshot(&self) -> Vec<u8> {
        let v = self.cmd("GET", "/screenshot", None);
        base64_decode(v.as_str().expect("base64 PNG"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Closes Chromium the polite way; bounded like every call.
            let path = format!("/session/{}", self.session);
            let _ = try_webdriver_call(self.port, "DELETE", &path, None, IO_TIMEOUT);
        }
        // Whatever is left of the browser is in chromedriver's process group (its id is
        // chromedriver's PID, the process this test started).
        let pgid = self.driver.0.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.0.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (RFC 4648 §4), as WebDriver sends screenshots.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(val)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    out
}

/// `<target>/test-artifacts`, beside the profile directories of the test binary.
fn artifacts_dir() -> PathBuf {
    // <target>/debug/deps/demo_page-<hash>
    let mut p = std::env::current_exe().unwrap();
    for _ in 0..3 {
        p.pop();
    }
    p.push("test-artifacts");
    std::fs::create_dir_all(&p).unwrap();
    p
}

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
