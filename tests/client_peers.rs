//! The client against other servers: Python's `http.server` (HTTP/1.1 keep-alive,
//! chunked, close-delimited, a connection closed behind the client's back, slow heads and
//! bodies; and HTTP/1.0, which closes every connection) and nginx (static files, SSI
//! output chunked or close-delimited, HEAD, and a pooled connection past
//! `keepalive_timeout`). A missing python3 or nginx fails the test; it never skips.
#![cfg(feature = "client")]
mod support;
use support::*;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use h1server::Version;
use h1server::client::{BodyLength, Client, ClientError, TimeoutKind};

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "h1-client-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn client() -> Client {
    Client::builder().timeout(IO_TIMEOUT).build()
}

// ---------------------------------------------------------------------------------------
// Python's http.server

const PY_SERVER: &str = r#"
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = sys.argv[1]

    def log_message(self, *args):
        pass

    def send_body(self, body, close=False):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if close:
            self.close_connection = True  # without saying so

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()

    def do_GET(self):
        p = self.path
        if p == "/port":
            self.send_body(str(self.client_address[1]).encode())
        elif p == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in [b"alpha ", b"beta ", b"gamma"]:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif p == "/close-delimited":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"read me until EOF")
            self.close_connection = True
        elif p == "/then-close":
            self.send_body(str(self.client_address[1]).encode(), close=True)
        elif p == "/slow-head":
            time.sleep(3)
            self.send_body(b"late")
        elif p == "/slow-body":
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"abc")
            self.wfile.flush()
            time.sleep(3)
        else:
            self.send_body(b"x" * 100000)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.send_body(self.rfile.read(n)[::-1])

srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// `python3 server.py <protocol>` on a free port, killed (by PID) on drop.
fn python(protocol: &str) -> (ChildGuard, SocketAddr, TempDir) {
    require_tool("python3");
    let dir = TempDir::new("py");
    let script = dir.0.join("server.py");
    std::fs::write(&script, PY_SERVER).unwrap();
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(protocol)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn python3");
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().expect("python printed its port");
    (guard, ([127, 0, 0, 1], port).into(), dir)
}

#[test]
fn python_http11_keep_alive_chunked_and_close_delimited() {
    let (_py, addr, _dir) = python("HTTP/1.1");
    let c = client();
    let url = |p: &str| format!("http://{addr}{p}");
    let port = c.get(&url("/port")).send().unwrap().text().unwrap();
    assert_eq!(
        c.get(&url("/port")).send().unwrap().text().unwrap(),
        port,
        "kept alive"
    );
    let big = c.get(&url("/big")).send().unwrap().bytes().unwrap();
    assert_eq!(big.len(), 100_000);
    let resp = c.get(&url("/chunked")).send().unwrap();
    assert_eq!(resp.head().body, BodyLength::Chunked);
    assert_eq!(resp.text().unwrap(), "alpha beta gamma");
    let echoed = c
        .post(&url("/rev"))
        .body("stressed")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(echoed, "desserts");
    let head = c.head(&url("/big")).send().unwrap();
    assert_eq!(
        (head.content_length(), head.head().body),
        (Some(0), BodyLength::None)
    );
    assert_eq!(head.header("content-length"), Some("1000"));
    assert_eq!(
        c.get(&url("/port")).send().unwrap().text().unwrap(),
        port,
        "still the same"
    );
    let resp = c.get(&url("/close-delimited")).send().unwrap();
    assert_eq!(resp.head().body, BodyLength::CloseDelimited);
    assert_eq!(resp.text().unwrap(), "read me until EOF");
    assert_eq!(
        c.idle_connections(),
        0,
        "a close-delimited body ends its connection"
    );
}

#[test]
fn python_closing_a_pooled_connection_is_survived() {
    let (_py, addr, _dir) = python("HTTP/1.1");
    let c = client();
    let first = c.get(&format!("http://{addr}/then-close")).send().unwrap();
    let first = first.text().unwrap();
    assert_eq!(c.idle_connections(), 1, "Python did not say it would close");
    std::thread::sleep(Duration::from_millis(100));
    let second = c
        .get(&format!("http://{addr}/port"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_ne!(first, second, "a new connection");
}

#[test]
fn python_slow_head_and_slow_body_hit_their_timeouts() {
    let (_py, addr, _dir) = python("HTTP/1.1");
    let c = Client::builder()
        .response_header_timeout(Duration::from_millis(300))
        .read_timeout(Duration::from_millis(300))
        .timeout(IO_TIMEOUT)
        .build();
    let t0 = Instant::now();
    let err = c
        .get(&format!("http://{addr}/slow-head"))
        .send()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                which: TimeoutKind::ResponseHeader
            }
        ),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    let resp = c.get(&format!("http://{addr}/slow-body")).send().unwrap();
    let err = resp.text().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                which: TimeoutKind::Read
            }
        ),
        "{err}"
    );
    // The total timeout cuts the slow head too, and names itself.
    let err = c
        .get(&format!("http://{addr}/slow-head"))
        .timeout(Duration::from_millis(150))
        .send()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                which: TimeoutKind::Total
            }
        ),
        "{err}"
    );
}

#[test]
fn python_http10_closes_every_connection() {
    let (_py, addr, _dir) = python("HTTP/1.0");
    let c = client();
    let resp = c.get(&format!("http://{addr}/port")).send().unwrap();
    assert_eq!(resp.version(), Version::Http10);
    let a = resp.text().unwrap();
    assert_eq!(
        c.idle_connections(),
        0,
        "HTTP/1.0 without keep-alive is not reusable"
    );
    let b = c
        .get(&format!("http://{addr}/port"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_ne!(a, b);
}

// ---------------------------------------------------------------------------------------
// nginx

/// nginx in the foreground, one process (`master_process off`), as this test's child;
/// dropped, it gets SIGTERM and is waited for.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on the PID of a child this test started and has not reaped.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Nginx {
    fn start() -> Nginx {
        let dir = TempDir::new("nginx");
        let d = dir.0.display().to_string();
        let www = dir.0.join("www");
        for sub in ["", "ssi", "ssi-close"] {
            std::fs::create_dir_all(www.join(sub)).unwrap();
        }
        std::fs::write(www.join("big.txt"), "n".repeat(200_000)).unwrap();
        let page = "<p>one</p><p><!--# echo var=\"h1_word\" --></p><p>three</p>";
        for sub in ["ssi", "ssi-close"] {
            std::fs::write(www.join(sub).join("page.html"), page).unwrap();
        }
        let port = free_port();
        let http = format!(
            "    types {{ text/html html; text/plain txt; }}
    log_format conn '$connection $connection_requests $request_method $uri $status';
    access_log {d}/access.log conn;
    keepalive_timeout 1s;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        set $h1_word 'two';
        location /ssi/ {{ ssi on; }}
        location /ssi-close/ {{ ssi on; chunked_transfer_encoding off; }}
    }}"
        );
        let child = support::nginx::spawn(
            &dir.0,
            "master_process off;\nworker_processes 1;",
            "worker_connections 64;",
            &http,
        );
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let nginx = Nginx { child, addr, dir };
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(
                addr
            )
            .is_ok()),
            "nginx did not start (see {d}/nginx-error.log)"
        );
        nginx
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The access log: (connection number, its request count, method, uri, status).
    fn log(&self) -> Vec<(u64, u64, String, String, u16)> {
        let text = std::fs::read_to_string(self.dir.0.join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                Some((
                    f.first()?.parse().ok()?,
                    f.get(1)?.parse().ok()?,
                    f.get(2)?.to_string(),
                    f.get(3)?.to_string(),
                    f.get(4)?.parse().ok()?,
                ))
            })
            .collect()
    }
}

#[test]
fn nginx_keep_alive_head_and_a_404_share_one_connection() {
    let nginx = Nginx::start();
    let c = client();
    assert_eq!(
        c.get(&nginx.url("/big.txt"))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .len(),
        200_000
    );
    let head = c.head(&nginx.url("/big.txt")).send().unwrap();
    assert_eq!(head.header("content-length"), Some("200000"));
    assert_eq!(head.head().body, BodyLength::None);
    drop(head);
    let nf = c.get(&nginx.url("/missing")).send().unwrap();
    assert_eq!(nf.status(), 404);
    nf.bytes().unwrap();
    assert_eq!(
        c.get(&nginx.url("/big.txt"))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .len(),
        200_000
    );
    assert!(wait_until(Duration::from_secs(5), || nginx.log().len() == 4));
    let log = nginx.log();
    let conns: Vec<u64> = log.iter().map(|l| l.0).collect();
    assert!(
        conns.iter().all(|&c| c == conns[0]),
        "one connection: {log:?}"
    );
    let counts: Vec<u64> = log.iter().map(|l| l.1).collect();
    assert_eq!(counts, [1, 2, 3, 4]);
}

#[test]
fn nginx_chunked_and_close_delimited_ssi_output() {
    let nginx = Nginx::start();
    let c = client();
    let want = "<p>one</p><p>two</p><p>three</p>";
    let resp = c.get(&nginx.url("/ssi/page.html")).send().unwrap();
    assert_eq!(resp.head().body, BodyLength::Chunked);
    assert_eq!(resp.text().unwrap(), want);
    assert_eq!(c.idle_connections(), 1);
    let resp = c.get(&nginx.url("/ssi-close/page.html")).send().unwrap();
    assert_eq!(resp.head().body, BodyLength::CloseDelimited);
    assert_eq!(resp.text().unwrap(), want);
    assert_eq!(
        c.idle_connections(),
        0,
        "reused for the SSI page, then closed by its body"
    );
}

#[test]
fn nginx_closing_an_idle_pooled_connection_is_detected() {
    let nginx = Nginx::start();
    let c = client();
    c.get(&nginx.url("/big.txt"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(c.idle_connections(), 1);
    // keepalive_timeout 1s: nginx closes the connection the client still pools.
    std::thread::sleep(Duration::from_millis(1600));
    let resp = c.post(&nginx.url("/big.txt")).body("x").send().unwrap();
    assert_eq!(
        resp.status(),
        405,
        "nginx refuses POST to a static file, on a new connection"
    );
    resp.bytes().unwrap();
    assert!(wait_until(Duration::from_secs(5), || nginx.log().len() == 2));
    let log = nginx.log();
    assert_ne!(log[0].0, log[1].0, "{log:?}");
    assert_eq!(log[1].1, 1, "the first request of its connection");
}
