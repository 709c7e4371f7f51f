//! The demo's storage end to end: the built binary on a SQLite file (restarts, two
//! instances on one file, a writer waiting for another process's lock), pagination of
//! the users list, a start that fails naming `DEMO_DB`, and — built with `--features
//! postgres` — the same service on a real PostgreSQL server this test starts.
#![cfg(feature = "cli")]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::Value;
#[cfg(feature = "postgres")]
use support::postgres::Postgres;
use support::*;

const TOKEN: &str = "db-test-token";

struct Demo {
    child: ChildGuard,
    addr: SocketAddr,
    log: Receiver<String>,
}

/// Starts the demo binary with `env` and waits until it listens (panics with its log if
/// it exits instead).
fn start(env: &[(&str, &str)]) -> Demo {
    let port = free_port();
    let mut cmd = Command::new(built_binary("h1server", false));
    cmd.env("H1_ADDR", format!("127.0.0.1:{port}"))
        .env("H1_WORKERS", "4")
        .env("DEMO_API_TOKEN", TOKEN)
        .env("RUST_LOG", "info")
        .env_remove("DEMO_DATABASE_URL")
        .env_remove("H1_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = ChildGuard(cmd.spawn().expect("spawn the demo binary"));
    let log = stderr_lines(&mut child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let up = wait_until(Duration::from_secs(30), || {
        std::net::TcpStream::connect(addr).is_ok() || !matches!(child.0.try_wait(), Ok(None))
    });
    let mut d = Demo { child, addr, log };
    if !up || !matches!(d.child.0.try_wait(), Ok(None)) {
        panic!("the demo did not start listening: {:?}", d.lines());
    }
    d
}

impl Demo {
    /// The log lines so far.
    fn lines(&mut self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    /// SIGTERM; it must drain and exit 0. Returns its log.
    fn stop(mut self) -> Vec<String> {
        let pid = self.child.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let exited = wait_until(Duration::from_secs(20), || {
            !matches!(self.child.0.try_wait(), Ok(None))
        });
        assert!(exited, "the demo did not exit after SIGTERM");
        let status = self.child.0.wait().unwrap();
        assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
        let mut log = Vec::new();
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(5)) {
            log.push(line);
        }
        log
    }

    /// One request over a raw socket, with the API token and, when given, a JSON body
    /// and extra header lines.
    fn call(&self, method: &str, path: &str, body: Option<&str>, extra: &[&str]) -> Resp {
        let req = api_request(method, path, TOKEN, body, extra);
        roundtrip(self.addr, req.as_bytes())
    }

    /// `GET` returning (status, JSON body).
    fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.call("GET", path, None, &[]);
        let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        (r.status, v)
    }

    fn create(&self, name: &str, key: Option<&str>) -> Resp {
        let body = format!(r#"{{"name":"{name}","email":"{name}@example.com"}}"#);
        let header = key.map(|k| format!("Idempotency-Key: {k}"));
        let extra: Vec<&str> = header.iter().map(String::as_str).collect();
        self.call("POST", "/api/v1/users", Some(&body), &extra)
    }

    /// The names in `GET /api/v1/users` (first page) and the total.
    fn names(&self) -> (Vec<String>, u64) {
        let (s, v) = self.get_json("/api/v1/users");
        assert_eq!(s, 200, "{v}");
        let names = v["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_string())
            .collect();
        (names, v["total"].as_u64().expect("total"))
    }
}

/// Creates Ada with `Idempotency-Key: k-1` through curl; returns the body.
fn create_ada_with_curl(d: &Demo) -> String {
    require_tool("curl");
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
        ])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "-H",
            "Content-Type: application/json",
            "-H",
            "Idempotency-Key: k-1",
        ])
        .args(["-d", r#"{"name":"Ada","email":"ada@example.com"}"#])
        .arg(format!("http://{}/api/v1/users", d.addr))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    assert_eq!(code, "201", "{text}");
    body.to_string()
}

#[test]
fn users_and_keys_survive_a_restart_and_two_instances_share_one_sqlite_file() {
    let dir = TempDir::new("sqlite");
    // A directory that does not exist yet: the demo creates it.
    let db = dir.0.join("data/h1.db");
    let env = [("DEMO_DB", db.to_str().unwrap())];
    let a = start(&env);
    let ada = create_ada_with_curl(&a);
    assert!(ada.contains(r#""id":1"#), "{ada}");

    // A second instance on the same file sees the user and the key.
    let b = start(&env);
    assert_eq!(b.names(), (vec!["Ada".to_string()], 1));
    let replay = b.create("Ada", Some("k-1"));
    let ada_body = r#"{"name":"Ada","email":"ada@example.com"}"#;
    let replay2 = b.call(
        "POST",
        "/api/v1/users",
        Some(ada_body),
        &["Idempotency-Key: k-1"],
    );
    assert_eq!(
        replay.status,
        422,
        "k-1 named another body: {}",
        replay.text()
    );
    assert_eq!((replay2.status, replay2.text()), (201, ada.clone()));
    assert_eq!(replay2.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(b.create("Grace", None).status, 201);
    assert_eq!(a.names().1, 2, "A sees what B wrote");

    // Another process holds the write lock for a moment: the writer waits
    // (busy_timeout) instead of failing.
    require_tool("python3");
    let mut locker = ChildGuard(
        Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys, time\n\
                 c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                 c.execute('BEGIN IMMEDIATE'); print('locked', flush=True)\n\
                 time.sleep(1.0); c.execute('COMMIT')",
                db.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(locker.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let waited = a.create("Edsger", None);
    assert_eq!(waited.status, 201, "{}", waited.text());
    assert!(locker.0.wait().unwrap().success());

    let log_a = a.stop();
    let log_b = b.stop();
    let has = |log: &[String], s: &str| log.iter().any(|l| l.contains(s));
    assert!(has(&log_a, "migration 2 applied"), "{log_a:?}");
    assert!(
        has(&log_a, "storage: sqlite") && has(&log_a, "WAL"),
        "{log_a:?}"
    );
    assert!(!has(&log_b, "migration"), "migrated once: {log_b:?}");

    // Restarted: everything is still there, the key still replays.
    let c = start(&env);
    assert_eq!(c.names().0, ["Ada", "Grace", "Edsger"]);
    let again = c.call(
        "POST",
        "/api/v1/users",
        Some(ada_body),
        &["Idempotency-Key: k-1"],
    );
    assert_eq!((again.status, again.text()), (201, ada));
    assert_eq!(c.get_json("/readyz").0, 200);
    c.stop();
}

#[test]
fn the_users_list_pages_with_limit_and_offset_and_rejects_bad_values() {
    let d = start(&[("DEMO_DB", ":memory:")]);
    for i in 1..=25 {
        assert_eq!(d.create(&format!("user{i}"), None).status, 201);
    }
    let (s, v) = d.get_json("/api/v1/users");
    assert_eq!(s, 200);
    assert_eq!(
        (&v["count"], &v["total"], &v["limit"], &v["offset"]),
        (
            &Value::from(20),
            &Value::from(25),
            &Value::from(20),
            &Value::from(0)
        )
    );
    let (_, v) = d.get_json("/api/v1/users?limit=10&offset=20");
    let ids: Vec<u64> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [21, 22, 23, 24, 25]);
    let (_, v) = d.get_json("/api/v1/users?limit=100&offset=25");
    assert_eq!(
        (&v["count"], &v["total"]),
        (&Value::from(0), &Value::from(25))
    );
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
    ] {
        let (s, v) = d.get_json(&format!("/api/v1/users?{query}"));
        assert_eq!(s, 400, "{query}: {v}");
        assert_eq!(v["fields"][0]["field"], param, "{query}: {v}");
    }
    d.stop();
}

#[test]
fn a_database_that_cannot_be_opened_fails_the_start_naming_demo_db() {
    let out = Command::new(built_binary("h1server", false))
        .env("H1_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("DEMO_DB", "/dev/null/h1.db")
        .env_remove("DEMO_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DEMO_DB=/dev/null/h1.db"), "{err}");
}

#[test]
fn by_default_the_database_is_data_h1server_db_in_the_working_directory() {
    let dir = TempDir::new("default-db");
    let port = free_port();
    let _child = ChildGuard(
        Command::new(built_binary("h1server", false))
            .env("H1_ADDR", format!("127.0.0.1:{port}"))
            .env_remove("DEMO_DB")
            .env_remove("DEMO_DATABASE_URL")
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(wait_until(Duration::from_secs(30), || {
        std::net::TcpStream::connect(addr).is_ok()
    }));
    assert!(dir.0.join("data/h1server.db").is_file());
}

#[cfg(not(feature = "postgres"))]
#[test]
fn a_database_url_without_the_postgres_feature_fails_the_start_saying_so() {
    let out = Command::new(built_binary("h1server", false))
        .env("H1_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("DEMO_DATABASE_URL", "postgres://app:secret@127.0.0.1:1/h1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features postgres"), "{err}");
    assert!(err.contains("app:***@") && !err.contains("secret"), "{err}");
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_backs_users_and_idempotency_keys_and_readiness_follows_it() {
    let mut pg = Postgres::start();
    let url = pg.url();
    let env = [("DEMO_DATABASE_URL", url.as_str())];
    let a = start(&env);
    let ada = create_ada_with_curl(&a);
    assert!(ada.contains(r#""id":1"#), "{ada}");
    let ada_body = r#"{"name":"Ada","email":"ada@example.com"}"#;
    let retry = a.call(
        "POST",
        "/api/v1/users",
        Some(ada_body),
        &["Idempotency-Key: k-1"],
    );
    assert_eq!((retry.status, retry.text()), (201, ada.clone()));
    assert_eq!(retry.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(
        a.create("Ada", Some("k-1")).status,
        422,
        "same key, other body"
    );
    assert_eq!(a.create("Grace", None).status, 201);
    let (_, v) = a.get_json("/api/v1/users?limit=1&offset=1");
    assert_eq!(v["users"][0]["name"], "Grace", "{v}");
    assert_eq!(v["total"], 2, "{v}");

    // A second instance on the same database replays the first one's key.
    let b = start(&env);
    let replay = b.call(
        "POST",
        "/api/v1/users",
        Some(ada_body),
        &["Idempotency-Key: k-1"],
    );
    assert_eq!((replay.status, replay.text()), (201, ada));
    assert_eq!(b.names(), (vec!["Ada".to_string(), "Grace".to_string()], 2));
    let log_a = a.stop();
    let log_b = b.stop();
    let has = |log: &[String], s: &str| log.iter().any(|l| l.contains(s));
    assert!(has(&log_a, "storage: postgres"), "{log_a:?}");
    assert!(has(&log_a, "migration 2 applied"), "{log_a:?}");
    assert!(!has(&log_b, "migration"), "migrated once: {log_b:?}");

    // Restarted: the rows are there. Then the database goes away: not ready, and the API
    // answers 503 (a keyed request too: it cannot be run safely without its store).
    let mut c = start(&env);
    assert_eq!(c.names().1, 2);
    assert_eq!(c.get_json("/readyz").0, 200);
    pg.stop();
    let (s, v) = c.get_json("/readyz");
    assert_eq!((s, &v["check"]), (503, &Value::from("database")), "{v}");
    let r = c.create("Edsger", None);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(c.create("Edsger", Some("k-9")).status, 503);
    let log_c = c.lines();
    assert!(
        !log_c.iter().any(|l| l.contains("panicked")),
        "no panic: {log_c:?}"
    );
    c.stop();
}
