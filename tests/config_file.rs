//! The demo binary's config file end to end: the built binary with a temp TOML file serves
//! on the file's address with the file's settings, the environment beats the file and a
//! flag beats the environment, `--print-config` says where each value came from without
//! binding, and every broken file exits 2 naming the file, line, column and field.
#![cfg(feature = "cli")]

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use h1server::config::FIELDS;
use support::*;

/// A TOML file in the temp directory, removed on drop.
struct TomlFile(String);

impl TomlFile {
    fn new(name: &str, text: &str) -> TomlFile {
        let name = format!("h1server-config-file-{}-{name}.toml", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).unwrap();
        TomlFile(path.to_string_lossy().into_owned())
    }
}

impl Drop for TomlFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The demo binary with none of its settings' variables inherited from the test's
/// environment, then `env` set.
fn demo(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(built_binary("h1server", false));
    cmd.env("DEMO_DB", ":memory:"); // never the checkout's ./data
    for f in FIELDS {
        cmd.env_remove(f.env);
    }
    for var in ["H1_CONFIG", "DEMO_API_TOKEN", "H1_LOG_FORMAT"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied()).stdin(Stdio::null());
    cmd
}

/// Starts the demo and waits until `addr` answers.
fn start(cmd: &mut Command, addr: SocketAddr) -> ChildGuard {
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let child = ChildGuard(child.expect("spawn the demo binary"));
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
        "the demo did not start listening on {addr}"
    );
    child
}

fn free_addr() -> SocketAddr {
    ([127, 0, 0, 1], free_port()).into()
}

fn get(addr: SocketAddr, path: &str, token: &str) -> Resp {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    roundtrip(addr, req.as_bytes())
}

#[test]
fn the_server_runs_on_the_files_address_with_the_files_settings() {
    let addr = free_addr();
    let file = TomlFile::new(
        "serves",
        &format!(
            "# the demo's settings\n[server]\naddr = \"{addr}\"\nworkers = 3\n\
             idle_timeout = \"60s\"\nmax_body_bytes = \"1MiB\"\nserver_timing = true\n\n\
             [demo]\napi_token = \"file-token\"\n"
        ),
    );
    let shown = demo(&[])
        .args(["--config", &file.0, "--print-config"])
        .output();
    let shown = shown.unwrap();
    let at = |line: usize| format!("# file {}:{line}", file.0);
    assert_eq!(
        printed(&shown, "addr"),
        format!("addr = \"{addr}\" {}", at(3))
    );
    assert_eq!(printed(&shown, "workers"), format!("workers = 3 {}", at(4)));
    assert_eq!(
        printed(&shown, "server_timing"),
        format!("server_timing = true {}", at(7))
    );
    assert_eq!(
        printed(&shown, "read_timeout"),
        "read_timeout = \"30s\" # default"
    );

    let _demo = start(demo(&[]).args(["--config", &file.0]), addr);
    let r = get(addr, "/", "");
    assert_eq!(r.status, 200);
    assert!(
        r.header("server-timing").is_some(),
        "server_timing from the file: {r:?}"
    );
    assert_eq!(get(addr, "/api/v1/users", "file-token").status, 200);
    assert_eq!(get(addr, "/api/v1/users", "dev-token").status, 401);
}

#[test]
fn the_environment_beats_the_file_and_a_flag_beats_the_environment() {
    // The file's address is taken: the server can only start on the variable's.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let file = TomlFile::new(
        "precedence",
        &format!(
            "[server]\naddr = \"{}\"\nworkers = 8\nserver_timing = true\n",
            taken.local_addr().unwrap()
        ),
    );
    let addr = free_addr();
    let env = [
        ("H1_CONFIG", file.0.as_str()),
        ("H1_ADDR", &addr.to_string()),
        ("H1_WORKERS", "6"),
        ("H1_SERVER_TIMING", "false"),
    ];
    let out = demo(&env)
        .args(["--workers", "4", "--print-config"])
        .output();
    let out = out.unwrap();
    assert_eq!(printed(&out, "workers"), "workers = 4 # flag --workers");
    assert_eq!(
        printed(&out, "server_timing"),
        "server_timing = false # env H1_SERVER_TIMING"
    );
    assert_eq!(
        printed(&out, "addr"),
        format!("addr = \"{addr}\" # env H1_ADDR")
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("# config file: {} (env H1_CONFIG)", file.0)),
        "{text}"
    );

    {
        let _demo = start(&mut demo(&env), addr);
        let r = get(addr, "/", "");
        assert_eq!(r.status, 200);
        assert!(r.header("server-timing").is_none(), "env beats file: {r:?}");
    }
    let flagged = free_addr();
    let mut cmd = demo(&env);
    cmd.args(["--addr", &flagged.to_string(), "--server-timing=true"]);
    let _demo = start(&mut cmd, flagged);
    let r = get(flagged, "/", "");
    assert!(r.header("server-timing").is_some(), "flag beats env: {r:?}");
}

#[test]
fn print_config_does_not_bind() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = demo(&[("H1_ADDR", &addr)]).arg("--print-config").output();
    let out = out.unwrap();
    assert_eq!(
        printed(&out, "addr"),
        format!("addr = \"{addr}\" # env H1_ADDR")
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("# config file: none"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains(" = ")).count(),
        // and [demo] log_format, inspect, rate_limit, trust_forwarded_for, cors_origins,
        // and db (DEMO_DB=:memory:)
        FIELDS.len() + 6
    );
}

#[test]
fn a_broken_file_exits_2_naming_the_file_line_column_and_field() {
    let cases = [
        (
            "[server]\nwrokers = 8\n",
            ":2:1: server.wrokers: unknown setting (did you mean workers?)",
        ),
        (
            "[server]\nworkers = true\n",
            ":2:11: server.workers = true: wrong type: expected an integer",
        ),
        (
            "[server]\nidle_timeout = \"5 parsecs\"\n",
            ":2:16: server.idle_timeout = \"5 parsecs\": not a duration (use e.g. 250ms, 5s, 2m)",
        ),
        (
            "[server]\nmax_headers = 1000\n",
            ":2:15: server.max_headers = 1000: must be 1 to 256",
        ),
        (
            "[server]\nworkers = [8\n",
            ":2:13: not valid TOML: unclosed array",
        ),
        (
            "[demo]\nlog_format = \"yaml\"\n",
            ":2:14: demo.log_format = \"yaml\": not a log format",
        ),
    ];
    for (i, (text, want)) in cases.into_iter().enumerate() {
        let file = TomlFile::new(&format!("broken-{i}"), text);
        let out = demo(&[]).args(["--config", &file.0]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{text:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("h1server: invalid configuration: {}{want}", file.0);
        assert!(err.starts_with(&want), "{text:?}:\n{err}\nwanted {want}");
    }

    let missing = std::env::temp_dir().join("h1server-config-file-missing.toml");
    let missing = missing.to_string_lossy();
    let out = demo(&[("H1_CONFIG", &missing)]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot read config file {missing} (env H1_CONFIG)"
        )) && err.contains("No such file or directory"),
        "{err}"
    );
}

#[test]
fn help_mentions_the_config_file_and_print_config() {
    let out = demo(&[]).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["--config FILE", "H1_CONFIG", "--print-config", "[demo]"] {
        assert!(text.contains(needle), "--help mentions {needle}:\n{text}");
    }
}
