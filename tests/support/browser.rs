//! Headless Chromium driven through chromedriver (W3C WebDriver, JSON over plain HTTP,
//! spoken with a std `TcpStream`), shared by the browser tests (`tests/demo_page.rs`,
//! `tests/websocket.rs`). Every call is bounded; the browser is ended with its driver's
//! process group.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::*;

// ---- WebDriver over plain HTTP --------------------------------------------------------

/// One HTTP request to chromedriver; (status, JSON body). Every call is bounded.
pub fn webdriver_call(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    limit: Duration,
) -> (u16, Value) {
    try_webdriver_call(port, method, path, body, limit)
        .unwrap_or_else(|e| panic!("chromedriver {method} {path}: {e}"))
}

pub fn try_webdriver_call(
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
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver, started in its own process group so the Chromium it launches goes down
/// with it, and one browser session.
pub struct Browser {
    driver: ChildGuard,
    port: u16,
    session: String,
    profile: PathBuf,
}

impl Browser {
    pub fn start(artifacts: &std::path::Path) -> Browser {
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
    pub fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
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

    pub fn navigate(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `body` (a function body: `return …`) in the page.
    pub fn script(&self, body: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": body, "args": [] })),
        )
    }

    /// Polls `body` until it returns something truthy; at most `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, body: &str) -> Value {
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

    pub fn element(&self, css: &str) -> String {
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

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.cmd("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// The viewport as PNG bytes.
    pub fn screenshot(&self) -> Vec<u8> {
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
pub fn base64_decode(s: &str) -> Vec<u8> {
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
pub fn artifacts_dir() -> PathBuf {
    // <target>/debug/deps/demo_page-<hash>
    let mut p = std::env::current_exe().unwrap();
    for _ in 0..3 {
        p.pop();
    }
    p.push("test-artifacts");
    std::fs::create_dir_all(&p).unwrap();
    p
}
