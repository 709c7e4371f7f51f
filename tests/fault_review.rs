//! Adversarial fault review of the demo service (the `h1server` binary): faults injected
//! from outside — the database restarted or hanging, the SQLite file removed, a file-size
//! limit, a worker count the machine cannot hold, a client sending the wrong types — and
//! the behaviour a production Go service (the seeds in /work/shared/seeds/) would have.
//!
//! Every test here failed on the code it was written against; each one names the seed,
//! RFC or doc that sets the expected behaviour.
#![cfg(feature = "cli")]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

#[cfg(feature = "postgres")]
use support::postgres::Postgres;
use support::*;

const TOKEN: &str = "fault-review-token";

struct Demo {
    child: ChildGuard,
    addr: SocketAddr,
    log: Receiver<String>,
}

/// Starts the demo binary with `env` (and `wrap`, a program it runs under, e.g.
/// `prlimit`) and waits until it listens.
fn start_with(wrap: &[&str], env: &[(&str, &str)]) -> Demo {
    let port = free_port();
    let bin = built_binary("h1server", false);
    let mut cmd = match wrap.split_first() {
        Some((prog, args)) => {
            let mut c = Command::new(prog);
            c.args(args).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    cmd.env("H1_ADDR", format!("127.0.0.1:{port}"))
        .env("H1_WORKERS", "4")
        .env("DEMO_API_TOKEN", TOKEN)
        .env("DEMO_RATE_LIMIT", "off")
        .env("RUST_LOG", "info")
        .env_remove("DEMO_DATABASE_URL")
        .env_remove("H1_LOG_FORMAT")
        .env_remove("H1_CONFIG")
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
        TcpStream::connect(addr).is_ok() || !matches!(child.0.try_wait(), Ok(None))
    });
    let mut d = Demo { child, addr, log };
    if !up || !d.alive() {
        panic!("the demo did not start listening: {:?}", d.lines());
    }
    d
}

fn start(env: &[(&str, &str)]) -> Demo {
    start_with(&[], env)
}

/// A response read to the end (`Connection: close`), or what went wrong reading it.
/// (`head`, and `took` without `postgres`, are read only through `Debug`, in failure messages.)
#[allow(dead_code)]
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
    took: Duration,
}

impl Demo {
    fn lines(&mut self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.0.try_wait(), Ok(None))
    }

    /// One request with the API token; `None` when the connection closed without an
    /// answer (or none came within `limit`).
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: &[u8],
        limit: Duration,
    ) -> Option<Answer> {
        let t0 = Instant::now();
        let mut s = TcpStream::connect(self.addr).ok()?;
        s.set_read_timeout(Some(limit)).unwrap();
        s.set_write_timeout(Some(limit)).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: demo\r\nAuthorization: Bearer {TOKEN}\r\n\
             Connection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        // A server that dies mid-body resets the connection: keep what came back.
        let _ = s.write_all(&bytes);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        // Skip interim 1xx answers.
        let mut rest = text.as_str();
        loop {
            let (head, body) = rest.split_once("\r\n\r\n")?;
            let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
            if (100..200).contains(&status) {
                rest = body;
                continue;
            }
            return Some(Answer {
                status,
                head: head.to_string(),
                body: body.to_string(),
                took: t0.elapsed(),
            });
        }
    }

    fn get(&self, path: &str) -> Option<Answer> {
        self.send("GET", path, &[], b"", Duration::from_secs(15))
    }

    fn post_json(&self, path: &str, body: &str) -> Option<Answer> {
        self.send(
            "POST",
            path,
            &["Content-Type: application/json"],
            body.as_bytes(),
            Duration::from_secs(15),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Clients: the JSON API.
// ---------------------------------------------------------------------------------------

/// A field of the wrong JSON type is a `400` that says which field. Go's
/// `json.NewDecoder(r.Body).Decode(&user)` (seed 001, "Invalid JSON" → 400) reports
/// `json: cannot unmarshal number into Go struct field UserInput.name of type string`;
/// the brief of this review: "wrong types → clear 4xx with a message naming the field".
/// The demo's answer is serde's bare "invalid type: integer `42`, expected a string at
/// line 1 column 10": a client cannot tell which of `name`/`email` is wrong.
#[test]
fn a_field_of_the_wrong_json_type_is_a_400_naming_the_field() {
    let dir = TempDir::new("json");
    let db = dir.0.join("h1.db");
    let d = start(&[("DEMO_DB", db.to_str().unwrap())]);
    for (body, field) in [
        (r#"{"name":42,"email":"ada@example.com"}"#, "name"),
        (r#"{"name":"Ada","email":null}"#, "email"),
        (r#"{"name":"Ada","email":["ada@example.com"]}"#, "email"),
    ] {
        let a = d.post_json("/api/v1/users", body).expect("an answer");
        assert_eq!(a.status, 400, "{body}: {a:?}");
        assert!(
            a.body.contains(field),
            "the 400 for {body} should name the field `{field}`: {:?}",
            a.body
        );
    }
}

// ---------------------------------------------------------------------------------------
// Config: a value the machine cannot hold.
// ---------------------------------------------------------------------------------------

/// A worker count no machine can hold is a configuration error naming `H1_WORKERS`
/// (exit 2, as for every other bad value: docs/CONFIG.md "How errors look"; the brief:
/// "every bad value (…huge…) — a clear error naming the field, exit code non-zero, no
/// panic"). The demo validates `workers ≥ 1` only (src/config.rs `validate`, bound
/// `usize::MAX`) and then aborts on the allocation of its per-worker state: "memory
/// allocation of … bytes failed", SIGABRT, a backtrace, no field named.
#[test]
fn a_worker_count_no_machine_can_hold_is_a_config_error_naming_h1_workers() {
    let dir = TempDir::new("workers");
    let db = dir.0.join("h1.db");
    let out = Command::new(built_binary("h1server", false))
        .env("H1_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("H1_WORKERS", "1000000000")
        .env("DEMO_DB", &db)
        .env("DEMO_API_TOKEN", TOKEN)
        .env_remove("H1_QUEUE_DEPTH")
        .env_remove("DEMO_DB_POOL")
        .env_remove("H1_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run the demo");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a configuration error exits 2 (killed by a signal: {:?}): {err}",
        std::os::unix::process::ExitStatusExt::signal(&out.status)
    );
    assert!(err.contains("H1_WORKERS"), "names the variable: {err}");
    assert!(!err.contains("memory allocation"), "{err}");
}

// ---------------------------------------------------------------------------------------
// The disk: a file-size limit (a quota) reached during an upload.
// ---------------------------------------------------------------------------------------

/// An upload that runs into the process's file-size limit (`ulimit -f`, RLIMIT_FSIZE: a
/// quota, the way disk-full is commonly injected) fails that upload with a 5xx, removes
/// its partial file, and the process goes on serving. The kernel sends SIGXFSZ on such a
/// write; a Go service ignores it (the Go runtime's signal table catches SIGXFSZ and does
/// nothing, so the write returns EFBIG), and the demo's own upload code maps write errors
/// to 507/500 and removes the `.part` file (src/multipart/sink.rs `write_failed`,
/// src/multipart/disk.rs `abort`). But the demo never ignores SIGXFSZ, whose default
/// action kills the process: every connection is dropped and the 1 MB `.part` file stays.
#[test]
fn an_upload_past_the_file_size_limit_fails_with_5xx_and_the_process_lives() {
    require_tool("prlimit");
    let dir = TempDir::new("fsize");
    let db = dir.0.join("h1.db");
    let uploads = dir.0.join("uploads");
    let mut d = start_with(
        &["prlimit", "--fsize=1000000"],
        &[
            ("DEMO_DB", db.to_str().unwrap()),
            ("DEMO_UPLOAD_DIR", uploads.to_str().unwrap()),
        ],
    );
    let boundary = "fault-review-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend(std::iter::repeat_n(b'x', 2_000_000));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("Content-Type: multipart/form-data; boundary={boundary}");
    let a = d.send(
        "POST",
        "/api/v1/uploads",
        &[&ct],
        &body,
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(300));
    let alive = d.alive();
    let status = d.child.0.try_wait().ok().flatten();
    assert!(
        alive,
        "the process died ({status:?}) on a write past RLIMIT_FSIZE; answer: {a:?}; log: {:?}",
        d.lines()
    );
    let a = a.expect("an answer to the upload");
    assert!((500..600).contains(&a.status), "{a:?}");
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "partial files left: {left:?}");
    assert_eq!(d.get("/healthz").map(|a| a.status), Some(200));
}

// ---------------------------------------------------------------------------------------
// SQLite: the database file removed under a running service.
// ---------------------------------------------------------------------------------------

/// The SQLite file removed while the service runs (an operator cleaning `data/`, a
/// volume remounted): the service must not acknowledge writes it is going to lose, and
/// `/readyz` must say it cannot serve ("Readiness answers, 'Should this instance receive
/// traffic right now?'", seed 002; readiness checks the database, seed 001's
/// `monitorHealth`). The demo's pooled connections keep the unlinked file open: creates
/// get `201` with new ids, `/readyz` stays `200` (its check is `SELECT 1`, which reads no
/// file: src/demo/store/sqlite.rs `ping`), and at the next start every one of those
/// users is gone.
#[test]
fn users_acknowledged_after_the_sqlite_file_was_removed_are_not_lost() {
    let dir = TempDir::new("rm-db");
    let db = dir.0.join("h1.db");
    let env = [("DEMO_DB", db.to_str().unwrap())];
    let d = start(&env);
    let first = d
        .post_json(
            "/api/v1/users",
            r#"{"name":"Ada","email":"ada@example.com"}"#,
        )
        .expect("an answer");
    assert_eq!(first.status, 201, "{first:?}");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let ready = d.get("/readyz").expect("an answer");
    let after = d
        .post_json(
            "/api/v1/users",
            r#"{"name":"Grace","email":"grace@example.com"}"#,
        )
        .expect("an answer");
    drop(d); // killed: what a crash or a deploy would do
    if after.status == 201 {
        let v: serde_json::Value = serde_json::from_str(&after.body).unwrap();
        let id = v["id"].as_u64().unwrap();
        let d2 = start(&env);
        let got = d2.get(&format!("/api/v1/users/{id}")).expect("an answer");
        assert_eq!(
            got.status, 200,
            "user {id} was acknowledged 201 after the database file was removed \
             (and /readyz said {}), and is gone after a restart: {got:?}",
            ready.status
        );
    } else {
        assert_eq!(ready.status, 503, "{ready:?}");
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL: restarted, and a connection that stops answering.
// ---------------------------------------------------------------------------------------

/// Stopped backends (SIGSTOP), continued on drop whatever happens.
#[cfg(feature = "postgres")]
struct Frozen(Vec<String>);

#[cfg(feature = "postgres")]
impl Frozen {
    fn new(pids: Vec<String>) -> Self {
        for pid in &pids {
            let ok = Command::new("kill").args(["-STOP", pid]).status().unwrap();
            assert!(ok.success(), "SIGSTOP {pid}");
        }
        Frozen(pids)
    }
}

#[cfg(feature = "postgres")]
impl Drop for Frozen {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = Command::new("kill").args(["-CONT", pid]).status();
        }
    }
}

/// Once a restarted PostgreSQL accepts connections again, requests are served: no
/// request pays for a pooled connection the restart closed. The seeds' service talks to
/// its database through Go's `database/sql` pool (seed 001, "Connection Pooling
/// (Database)": `SetMaxOpenConns`, `SetConnMaxLifetime`), which checks a pooled
/// connection before reuse (the pgx driver's `ResetSession` pings one idle for over a
/// second; `driver.ErrBadConn` makes `database/sql` retry on a fresh connection), so a
/// restart of the database is invisible to clients once it is back. The demo's pool
/// lends the closed connection as it is (src/demo/store/pool.rs `get`: `idle.pop()`,
/// `is_broken` is asked only when a connection comes back), so the first request after
/// the restart gets `503 {"error":"database unavailable"}` — one per pooled connection —
/// with the database up.
#[cfg(feature = "postgres")]
#[test]
fn after_postgres_restarts_the_next_request_is_served_not_503() {
    let mut pg = Postgres::start();
    let url = pg.url();
    let d = start(&[("DEMO_DATABASE_URL", url.as_str())]);
    let before = d.get("/api/v1/users").expect("an answer");
    assert_eq!(before.status, 200, "{before:?}");
    pg.stop();
    pg.run();
    let after = d.get("/api/v1/users").expect("an answer");
    assert_eq!(
        after.status, 200,
        "the database is up again (pg_isready), yet: {after:?}"
    );
    let ready = d.get("/readyz").expect("an answer");
    assert_eq!(ready.status, 200, "{ready:?}");
}

/// A database connection that stops answering (a hung backend, a network partition: no
/// FIN, no RST) is given up when the request's deadline passes, so the next request gets
/// a fresh connection instead of waiting behind the dead one. In the seeds the handler's
/// database call takes the request's context (`s.db.GetUser(r.Context(), userID)`,
/// seed 001) and the timeout middleware puts a deadline on that context (seed 001 "Pattern 4":
/// `context.WithTimeout(r.Context(), timeout)`); when it expires `database/sql` cancels
/// the query and discards the connection. The demo's `Timeout` answers `503 handler
/// timeout` after 10 s but nothing tells the store: the connection stays lent to a call
/// with no client-side deadline (`statement_timeout` is enforced by the server, which is
/// not answering; no TCP keepalive or user timeout is set in
/// src/demo/store/postgres.rs `open`/`connect`), so with the pool used up every later
/// request gets `503 database busy` after the 2 s pool wait — for as long as the peer
/// stays silent (about 15 minutes of TCP retransmissions on a real partition), while new
/// connections to the same database would work at once.
#[cfg(feature = "postgres")]
#[test]
fn a_database_connection_that_stops_answering_is_given_up_at_the_request_deadline() {
    let pg = Postgres::start();
    let url = pg.url();
    let d = start(&[("DEMO_DATABASE_URL", url.as_str()), ("DEMO_DB_POOL", "1")]);
    let before = d.get("/api/v1/users").expect("an answer");
    assert_eq!(before.status, 200, "{before:?}");
    let backends = pg.client_backends();
    assert!(!backends.is_empty(), "the demo holds a connection");
    let _frozen = Frozen::new(backends);
    // Hangs on the silent connection until the 10 s handler timeout.
    let stuck = d.get("/api/v1/users").expect("an answer");
    assert!(
        stuck.status >= 500 && stuck.took < Duration::from_secs(12),
        "{stuck:?}"
    );
    // The database itself still accepts new connections: only that backend is silent.
    pg.client_backends();
    let next = d.get("/api/v1/users").expect("an answer");
    assert_eq!(
        next.status, 200,
        "the request after the deadline should get a new connection: {next:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Idempotency keys: the record of an answer that could not be written.
// ---------------------------------------------------------------------------------------

/// Runs `sql` on the SQLite file `db` from another process (python3's sqlite3).
fn sqlite_exec(db: &std::path::Path, sql: &str) {
    require_tool("python3");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)\n\
             c.executescript(sys.argv[2])\n",
        ])
        .arg(db)
        .arg(sql)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{sql}: {out:?}");
}

/// A create that succeeded but whose idempotency record could not be written (the
/// database refused that one write: a lock held past `busy_timeout`, a full disk — here a
/// trigger) must never be run a second time for the same key. "If a client retries … the
/// service should not create two dispatches for the same logical action" (seed 002,
/// Idempotency-Key); draft-ietf-httpapi-idempotency-key-header: a retry with the key must
/// not repeat the side effect. The demo writes the user and the key's record in two
/// separate statements (src/demo/users.rs `create`, then
/// src/middleware/idempotency/mod.rs `Attempt::finish`), only logs a failed `finish`, and
/// leaves the key marked running: a retry gets `409` for the 60 s lease
/// (src/demo/store/mod.rs `IDEMPOTENCY_LEASE`), then takes the key over and creates the
/// user again. (The lease is aged here by rewriting `started_ms`, as the unit tests do.)
#[test]
fn a_create_whose_key_record_failed_is_not_run_again_on_retry() {
    let dir = TempDir::new("idem");
    let db = dir.0.join("h1.db");
    let d = start(&[("DEMO_DB", db.to_str().unwrap())]);
    let body = r#"{"name":"Ada","email":"ada@example.com"}"#;
    let post = || {
        d.send(
            "POST",
            "/api/v1/users",
            &["Content-Type: application/json", "Idempotency-Key: order-1"],
            body.as_bytes(),
            Duration::from_secs(15),
        )
        .expect("an answer")
    };
    // The database refuses to record a finished attempt (and only that).
    sqlite_exec(
        &db,
        "CREATE TRIGGER fault_review_refuse_finish BEFORE UPDATE OF status ON idempotency_keys \
         WHEN NEW.status IS NOT NULL BEGIN SELECT RAISE(ABORT, 'injected: disk I/O'); END;",
    );
    let first = post();
    assert_eq!(first.status, 201, "the user is created: {first:?}");
    // The fault passes; the client (which lost the answer) retries after a while.
    sqlite_exec(
        &db,
        "DROP TRIGGER fault_review_refuse_finish; \
         UPDATE idempotency_keys SET started_ms = started_ms - 120000;",
    );
    let retry = post();
    let list = d.get("/api/v1/users").expect("an answer");
    let v: serde_json::Value = serde_json::from_str(&list.body).unwrap_or_default();
    assert_eq!(
        v["total"], 1,
        "one key, one user: the retry answered {} {:?}; users: {}",
        retry.status, retry.body, list.body
    );
}
