//! A real nginx for the tests that put h1server beside or behind one
//! (tests/client_peers.rs, proxy_peers.rs, scale.rs): the frame every one of their
//! configurations shares, and the start-up. Each test writes only what is its own — the
//! process lines, the `events` and `http` blocks — and keeps its own guard.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Debian's nginx (in /usr/sbin, which a user's PATH may lack), else the one on PATH; the
/// test fails, never skips, when there is none.
pub fn binary() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        super::require_tool("nginx");
        "nginx"
    }
}

/// Starts nginx in the foreground (`daemon off`) as this test's child, with
/// `dir/nginx.conf` written from `main` (the process lines: `master_process`,
/// `worker_processes`), `events` and `http` (the bodies of those blocks) in the shared
/// frame: the pid file and the error log (`dir/nginx-error.log`) in `dir`, every temporary
/// path under `dir/nginx-tmp`, and `user root;` when the test runs as root (nginx's
/// workers would otherwise switch to `nobody`, who can neither read nor write here).
pub fn spawn(dir: &Path, main: &str, events: &str, http: &str) -> Child {
    let bin = binary();
    let d = dir.display();
    std::fs::create_dir_all(dir.join("nginx-tmp")).unwrap();
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root;"
    } else {
        ""
    };
    let conf = format!(
        "daemon off;
{main}
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
{user}
events {{ {events} }}
http {{
    client_body_temp_path {d}/nginx-tmp/body;
    proxy_temp_path {d}/nginx-tmp/proxy;
    fastcgi_temp_path {d}/nginx-tmp/fastcgi;
    uwsgi_temp_path {d}/nginx-tmp/uwsgi;
    scgi_temp_path {d}/nginx-tmp/scgi;
{http}
}}
"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    Command::new(bin)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx")
}
