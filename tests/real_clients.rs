//! Real clients against the real server: ApacheBench (HTTP/1.0, with and without
//! keep-alive), curl, and wrk with HTTP/1.1 pipelining. A missing tool fails the test
//! (`require_tool`); it never skips.
mod support;
use support::*;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Output};

use h1server::{Request, Response};

/// Runs a client to completion and returns its output (stdout + stderr as text).
fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().expect("run the client");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// The number after `label` in a report line such as `Failed requests:        0`.
fn number_after(report: &str, label: &str) -> Option<u64> {
    report.lines().find_map(|l| {
        l.trim()
            .strip_prefix(label)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// examples/hello on a free port, its log drained so it can never block on stderr.
fn hello() -> (ChildGuard, SocketAddr) {
    let (mut child, addr) = spawn_hello(&[("RUST_LOG", "warn")]);
    let stderr = child.0.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines().map_while(Result::ok) {});
    (child, addr)
}

#[test]
fn ab_keep_alive_2000_requests_all_succeed_on_kept_alive_connections() {
    require_tool("ab");
    let (_child, addr) = hello();
    let (out, report) = run(Command::new("ab").args([
        "-k",
        "-q",
        "-s",
        "10",
        "-n",
        "2000",
        "-c",
        "20",
        &format!("http://{addr}/"),
    ]));
    assert!(out.status.success(), "ab failed:\n{report}");
    assert_eq!(
        number_after(&report, "Complete requests:"),
        Some(2000),
        "{report}"
    );
    assert_eq!(
        number_after(&report, "Failed requests:"),
        Some(0),
        "{report}"
    );
    assert_eq!(
        number_after(&report, "Keep-Alive requests:"),
        Some(2000),
        "every request of ab -k must be kept alive (HTTP/1.0 keep-alive echo):\n{report}"
    );
    assert!(!report.contains("Non-2xx responses"), "{report}");
}

#[test]
fn ab_without_keep_alive_1000_requests_all_succeed() {
    require_tool("ab");
    let (_child, addr) = hello();
    let (out, report) = run(Command::new("ab").args([
        "-q",
        "-s",
        "10",
        "-n",
        "1000",
        "-c",
        "10",
        &format!("http://{addr}/"),
    ]));
    assert!(out.status.success(), "ab failed:\n{report}");
    assert_eq!(
        number_after(&report, "Complete requests:"),
        Some(1000),
        "{report}"
    );
    assert_eq!(
        number_after(&report, "Failed requests:"),
        Some(0),
        "{report}"
    );
    assert!(!report.contains("Non-2xx responses"), "{report}");
}

#[test]
fn curl_gets_200_and_the_body() {
    require_tool("curl");
    let server = TestServer::start(|req: &mut Request| {
        Response::text(format!(
            "hello, {}\n",
            req.header("user-agent").unwrap_or("?")
        ))
        .with_header("X-Test", "curl")
    });
    let (out, report) = run(Command::new("curl").args([
        "-sv",
        "--max-time",
        "10",
        &format!("http://{}/curl", server.addr),
    ]));
    assert!(out.status.success(), "curl failed:\n{report}");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.starts_with("hello, curl/") && body.ends_with('\n'),
        "body: {body:?}"
    );
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(verbose.contains("< HTTP/1.1 200 OK"), "{verbose}");
    assert!(verbose.contains("< X-Test: curl"), "{verbose}");
}

#[test]
fn wrk_with_16_deep_pipelining_sees_no_errors() {
    require_tool("wrk");
    let (_child, addr) = hello();
    let script = std::env::temp_dir().join(format!("h1-pipeline-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        r#"-- HTTP/1.1 pipelining: `depth` requests per write.
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
"#,
    )
    .unwrap();
    let (out, report) = run(Command::new("wrk").args([
        "-t1",
        "-c8",
        "-d1s",
        "--timeout",
        "5s",
        "-s",
        script.to_str().unwrap(),
        &format!("http://{addr}/"),
        "--",
        "16",
    ]));
    let _ = std::fs::remove_file(&script);
    assert!(out.status.success(), "wrk failed:\n{report}");
    assert!(!report.contains("Socket errors"), "{report}");
    assert!(!report.contains("Non-2xx"), "{report}");
    let requests = report
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no request count in:\n{report}"));
    assert!(requests > 0, "{report}");
}
