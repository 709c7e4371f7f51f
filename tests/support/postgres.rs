//! A PostgreSQL server of a test's own (tests/db.rs, tests/fault_review.rs).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{ChildGuard, TempDir, free_port, wait_until};

/// A PostgreSQL server of a test's own: a temporary data directory and port, run as the
/// `postgres` user when we are root (the server refuses root); stopped by PID on drop.
pub struct Postgres {
    server: Option<ChildGuard>,
    bin: PathBuf,
    port: u16,
    dir: TempDir,
}

impl Postgres {
    /// The newest `/usr/lib/postgresql/*/bin` with `initdb` (Debian's layout).
    fn bin_dir() -> PathBuf {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .collect();
        dirs.sort_by_key(|d| {
            let v = d
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str());
            v.and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
        });
        dirs.pop().expect(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             `sh .ci/deps.sh` (make test runs it) installs it with apt-get",
        )
    }

    /// A command run as the `postgres` user when we are root.
    pub fn command(program: &std::path::Path) -> Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(program);
        let id = |flag: &str, user: &str| {
            let out = Command::new("id").args([flag, user]).output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u32>()
                .ok()
        };
        if id("-u", "").is_none_or(|uid| uid == 0) {
            let uid = id("-u", "postgres").expect("the postgres user (Debian's package adds it)");
            let gid = id("-g", "postgres").unwrap();
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    pub fn start() -> Self {
        let bin = Self::bin_dir();
        let dir = TempDir::new("pg");
        let owner = Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&owner.stdout).trim() == "0" {
            let chown = Command::new("chown")
                .args(["postgres:postgres", dir.0.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(chown.success(), "chown the data directory to postgres");
        }
        let data = dir.0.join("data");
        let init = Self::command(&bin.join("initdb"))
            .args(["-D", data.to_str().unwrap()])
            .args(["-A", "trust", "-U", "h1", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .current_dir(&dir.0)
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb: {init:?}");
        let mut pg = Postgres {
            server: None,
            bin,
            port: free_port(),
            dir,
        };
        pg.run();
        let created = Command::new(pg.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &pg.port.to_string()])
            .args(["-U", "h1", "h1demo"])
            .output()
            .unwrap();
        assert!(created.status.success(), "createdb: {created:?}");
        pg
    }

    /// Starts the server on the data directory and waits until it accepts connections.
    pub fn run(&mut self) {
        let data = self.dir.0.join("data");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.0.join("server.log"))
            .unwrap();
        let server = ChildGuard(
            Self::command(&self.bin.join("postgres"))
                .args([
                    "-D",
                    data.to_str().unwrap(),
                    "-k",
                    self.dir.0.to_str().unwrap(),
                ])
                .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-F"])
                .current_dir(&self.dir.0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start postgres"),
        );
        self.server = Some(server);
        let port = self.port.to_string();
        let ready = wait_until(Duration::from_secs(30), || {
            Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        assert!(
            ready,
            "postgres did not start: {}",
            std::fs::read_to_string(self.dir.0.join("server.log")).unwrap_or_default()
        );
    }

    /// "Fast" shutdown (SIGINT to the postmaster's PID) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let pid = server.0.id().to_string();
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            let _ = server.0.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("postgres://h1@127.0.0.1:{}/h1demo", self.port)
    }

    /// The PIDs of the backends serving other clients (the demo's connections).
    pub fn client_backends(&self) -> Vec<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "h1", "-d", "h1demo", "-Atc"])
            .arg(
                "SELECT pid FROM pg_stat_activity WHERE datname = 'h1demo' \
                 AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            )
            .output()
            .expect("psql");
        assert!(out.status.success(), "psql: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
