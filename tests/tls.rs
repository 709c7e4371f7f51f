//! HTTPS (feature `tls`) with real clients: curl (`--cacert`) and Python's `ssl` against
//! a server whose certificate the test makes with `openssl` (a CA and a leaf for
//! 127.0.0.1/localhost, in a temp dir). Also: plain HTTP to the TLS port, TLS slowloris
//! at `tls_handshake_timeout`, start-up errors naming the variable, a large answer to a
//! slow reader (records the full socket did not take), and the drain on SIGTERM with TLS
//! connections open. A missing tool fails the test (`require_tool`); it never skips.
#![cfg(feature = "tls")]

mod support;
use support::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use h1server::config::FIELDS;
use h1server::{Config, Request, Response};

/// A temp dir with `ca.pem` (a CA), `cert.pem` + `key.pem` (a leaf it signed, for
/// 127.0.0.1 and localhost) and `other-key.pem` (a key that fits nothing); removed on drop.
struct Certs(PathBuf);

impl Certs {
    fn new(name: &str) -> Certs {
        require_tool("openssl");
        let dir = std::env::temp_dir().join(format!("h1-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
             subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let steps: Vec<Vec<&str>> = vec![
            [
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca-key.pem", "-out", "ca.pem"],
            ]
            .concat(),
            [
                &["req"][..],
                &ec,
                &["-keyout", "key.pem", "-out", "leaf.csr"],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
                "-out",
                "cert.pem",
            ],
            vec![
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "other-key.pem",
            ],
        ];
        for (i, args) in steps.iter().enumerate() {
            let mut cmd = Command::new("openssl");
            cmd.args(args).current_dir(&dir).stdin(Stdio::null());
            match i {
                0 => cmd.args([
                    "-days",
                    "2",
                    "-subj",
                    "/CN=h1server test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ]),
                1 => cmd.args(["-subj", "/CN=localhost"]),
                _ => &mut cmd,
            };
            let out = cmd.output().expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Certs(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn ca(&self) -> String {
        self.path("ca.pem").display().to_string()
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 8 MiB whose every byte depends on its offset, so a lost or repeated record shows.
const BIG: usize = 8 << 20;

fn big_body() -> Vec<u8> {
    (0..BIG).map(|i| (i % 251) as u8).collect()
}

fn app(req: &mut Request) -> Response {
    match req.path() {
        "/echo" => Response::new(200).with_body(req.body().to_vec()),
        "/chunked" => Response::stream((0..5).map(|i| format!("piece {i}\n"))),
        "/big" => Response::new(200).with_body(big_body()),
        "/big-stream" => Response::stream((0..64).map(|i| {
            (0..64 * 1024)
                .map(|j| ((i * 64 * 1024 + j) % 251) as u8)
                .collect::<Vec<u8>>()
        })),
        "/sleep" => {
            std::thread::sleep(Duration::from_millis(1500));
            Response::text("slept\n")
        }
        "/scheme" => Response::text(format!("tls={}\n", req.is_tls())),
        p if p.starts_with("/n") => Response::text(format!("{p} id={}\n", req.conn_id())),
        p => Response::text(format!("hello over TLS: {p}\n")),
    }
}

fn tls_config(certs: &Certs) -> Config {
    let mut cfg = test_config().with_tls(certs.path("cert.pem"), certs.path("key.pem"));
    cfg.tls_handshake_timeout = Duration::from_secs(1);
    cfg
}

fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().expect("run the client");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn curl(certs: &Certs, args: &[&str]) -> (Output, String) {
    require_tool("curl");
    run(Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert", &certs.ca()])
        .args(args))
}

fn python(script: &str, args: &[&str]) -> (Output, String) {
    require_tool("python3");
    run(Command::new("python3").arg("-c").arg(script).args(args))
}

#[test]
fn curl_gets_over_tls_with_keep_alive_and_alpn_http11() {
    let certs = Certs::new("curl-get");
    let server = TestServer::with_config(tls_config(&certs), app);
    let port = server.addr.port();
    let (a, b) = (
        format!("https://127.0.0.1:{port}/a"),
        format!("https://localhost:{port}/b"),
    );
    // Two URLs of one host in one curl: the second reuses the connection.
    let (out, text) = curl(
        &certs,
        &[
            "--http1.1",
            "-w",
            " connects=%{num_connects} version=%{http_version}\n",
            &a,
            &format!("https://127.0.0.1:{port}/c"),
        ],
    );
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "hello over TLS: /a",
            " connects=1 version=1.1",
            "hello over TLS: /c",
            " connects=0 version=1.1"
        ],
        "{text}"
    );
    // ALPN: curl offers h2 and http/1.1 (without --http1.1); the server picks http/1.1.
    let (out, text) = curl(&certs, &["-v", &b]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("hello over TLS: /b"), "{text}");
    assert!(
        text.contains("ALPN: server accepted http/1.1")
            || text.contains("ALPN, server accepted to use http/1.1"),
        "{text}"
    );
}

#[test]
fn curl_posts_a_body_and_reads_a_chunked_answer_over_tls() {
    let certs = Certs::new("curl-post");
    let server = TestServer::with_config(tls_config(&certs), app);
    let port = server.addr.port();
    let body = "x".repeat(100_000);
    let (out, text) = curl(
        &certs,
        &[
            "--http1.1",
            "--data-binary",
            &body,
            &format!("https://127.0.0.1:{port}/echo"),
        ],
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), body);
    let (out, text) = curl(
        &certs,
        &[
            "-i",
            "--http1.1",
            &format!("https://127.0.0.1:{port}/chunked"),
        ],
    );
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("piece 0\npiece 1\npiece 2\npiece 3\npiece 4\n"),
        "{stdout}"
    );
}

/// Python's ssl + http.client with the CA: several requests on one connection.
const PY_KEEP_ALIVE: &str = r#"
import http.client, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
socks = set()
for i in range(5):
    c.request("POST" if i % 2 else "GET", f"/echo" if i % 2 else f"/r{i}", body=(f"body {i}" if i % 2 else None))
    r = c.getresponse()
    print(r.status, r.read().decode().strip())
    socks.add(id(c.sock))
print("alpn", c.sock.selected_alpn_protocol(), "version", c.sock.version(), "connections", len(socks))
"#;

#[test]
fn python_ssl_sends_several_requests_on_one_connection() {
    let certs = Certs::new("python");
    let server = TestServer::with_config(tls_config(&certs), app);
    let port = server.addr.port().to_string();
    let (out, text) = python(PY_KEEP_ALIVE, &[&port, &certs.ca()]);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "200 hello over TLS: /r0",
            "200 body 1",
            "200 hello over TLS: /r2",
            "200 body 3",
            "200 hello over TLS: /r4",
            "alpn http/1.1 version TLSv1.3 connections 1",
        ],
        "{text}"
    );
}

/// Twenty fresh connections, one request each.
const PY_MANY: &str = r#"
import http.client, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
for i in range(20):
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    c.request("GET", f"/n{i}")
    r = c.getresponse()
    print(r.status, r.read().decode().strip())
    c.close()
"#;

#[test]
fn every_event_loop_serves_tls() {
    // SO_REUSEPORT spreads connections over the loops by the client's port: twenty reach
    // both (the chance that all go to one is 2 in a million).
    let certs = Certs::new("loops");
    let mut cfg = tls_config(&certs);
    cfg.loops = 2;
    let server = TestServer::with_config(cfg, app);
    let port = server.addr.port().to_string();
    let (out, text) = python(PY_MANY, &[&port, &certs.ca()]);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let want: Vec<String> = (0..20).map(|i| format!("200 /n{i} id=")).collect();
    let prefixes: Vec<String> = lines
        .iter()
        .map(|l| l[..l.find(" id=").map_or(0, |p| p + 4)].to_string())
        .collect();
    assert_eq!(prefixes, want, "{text}");
    // Connection ids step by the loop count from the loop's index: both parities = both
    // loops accepted TLS connections.
    let ids: Vec<u64> = lines
        .iter()
        .map(|l| l.rsplit(" id=").next().unwrap().parse().unwrap())
        .collect();
    assert!(
        ids.iter().any(|i| i % 2 == 0) && ids.iter().any(|i| i % 2 == 1),
        "{ids:?}"
    );
}

#[test]
fn plain_http_to_the_tls_port_gets_400_in_plaintext_then_close() {
    let certs = Certs::new("plain");
    let server = TestServer::with_config(tls_config(&certs), app);
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("the server closes after its answer");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    );
    // A first byte that is neither a TLS record nor a letter: closed, nothing said.
    let mut s = server.connect();
    s.write_all(b"\x00\x01garbage").unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty(), "{got:?}");
    // And curl says so too.
    let (out, text) = curl(&certs, &[&format!("http://{}/", server.addr)]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Client sent an HTTP request to an HTTPS server."),
        "{text}"
    );
}

/// Waits for the server to close `s` (EOF or reset) and says how long it took.
fn time_to_close(mut s: TcpStream, t0: Instant) -> Duration {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return t0.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("not closed within 10 s")
            }
            Err(_) => return t0.elapsed(),
        }
    }
}

#[test]
fn tls_slowloris_is_closed_at_the_handshake_deadline() {
    let certs = Certs::new("slowloris");
    let server = TestServer::with_config(tls_config(&certs), app);
    // Connects and sends nothing.
    let t0 = Instant::now();
    let silent = server.connect();
    // Sends the first 11 bytes of a ClientHello (a record header announcing 512 bytes).
    let half = server.connect();
    (&half)
        .write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .unwrap();
    let h = std::thread::spawn(move || time_to_close(half, t0));
    let silent_after = time_to_close(silent, t0);
    let half_after = h.join().unwrap();
    for (what, after) in [("silent", silent_after), ("half hello", half_after)] {
        // tls_handshake_timeout is 1 s (the wheel fires up to a tick late); the header
        // deadline (5 s) is not what closed it.
        assert!(
            after >= Duration::from_millis(900),
            "{what}: closed after {after:?}"
        );
        assert!(
            after < Duration::from_secs(4),
            "{what}: closed after {after:?}"
        );
    }
    // The server still serves.
    let (out, text) = curl(
        &certs,
        &[&format!("https://127.0.0.1:{}/ok", server.addr.port())],
    );
    assert!(out.status.success() && text.contains("/ok"), "{text}");
}

#[test]
fn after_the_handshake_the_header_deadline_runs_not_the_handshake_one() {
    let certs = Certs::new("header");
    let mut cfg = tls_config(&certs); // handshake deadline 1 s
    cfg.header_read_timeout = Duration::from_secs(3);
    let server = TestServer::with_config(cfg, app);
    let mut tls = tls_connect(server.addr, &certs.path("ca.pem"));
    let t0 = Instant::now();
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("handshake");
    }
    // Handshaken, then silent: closed at the header deadline (3 s from the handshake's
    // end), not at the handshake's (1 s from accept).
    let mut buf = [0u8; 64];
    let r = tls.read(&mut buf);
    let after = t0.elapsed();
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert!(
        after >= Duration::from_millis(2800),
        "closed after {after:?}"
    );
    assert!(after < Duration::from_secs(8), "closed after {after:?}");
}

/// The demo binary with none of its settings' variables inherited, then `env` set.
fn demo(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(built_binary("h1server", false));
    cmd.env("DEMO_DB", ":memory:");
    for f in FIELDS {
        cmd.env_remove(f.env);
    }
    for var in ["H1_CONFIG", "DEMO_API_TOKEN", "H1_LOG_FORMAT"] {
        cmd.env_remove(var);
    }
    cmd.env("H1_ADDR", "127.0.0.1:0");
    cmd.envs(env.iter().copied()).stdin(Stdio::null());
    cmd
}

#[test]
fn bad_certificate_settings_fail_the_start_naming_the_variable() {
    let certs = Certs::new("startup");
    let (cert, key) = (certs.path("cert.pem"), certs.path("key.pem"));
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let other = certs.path("other-key.pem");
    let missing = certs.path("missing.pem");
    let (other, missing) = (other.to_str().unwrap(), missing.to_str().unwrap());
    // (environment, the variable the message must name, a word it must hold)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 6] = [
        (
            &[("H1_TLS_CERT", missing), ("H1_TLS_KEY", key)],
            "H1_TLS_CERT",
            "No such file",
        ),
        (
            &[("H1_TLS_CERT", cert), ("H1_TLS_KEY", missing)],
            "H1_TLS_KEY",
            "No such file",
        ),
        (
            &[("H1_TLS_CERT", key), ("H1_TLS_KEY", key)],
            "H1_TLS_CERT",
            "CERTIFICATE",
        ),
        (
            &[("H1_TLS_CERT", cert), ("H1_TLS_KEY", other)],
            "H1_TLS_KEY",
            "fit",
        ),
        (&[("H1_TLS_CERT", cert)], "H1_TLS_KEY", "H1_TLS_CERT"),
        (&[("H1_TLS_KEY", key)], "H1_TLS_CERT", "H1_TLS_KEY"),
    ];
    for (env, var, word) in cases {
        let mut cmd = demo(env);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = ChildGuard(child);
        let exited = wait_until(Duration::from_secs(20), || {
            !matches!(child.0.try_wait(), Ok(None))
        });
        assert!(exited, "{env:?}: the demo started instead of failing");
        let status = child.0.wait().unwrap();
        let mut err = String::new();
        child
            .0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        // 2 when the settings are refused, 1 when binding fails (the files are read there).
        assert!(
            matches!(status.code(), Some(1 | 2)),
            "{env:?}: {status:?} {err}"
        );
        assert!(err.contains(var) && err.contains(word), "{env:?}: {err}");
    }
}

/// Reads a whole response (head and body) slowly through a small receive buffer, so the
/// server's socket fills and records stay queued on its side.
const PY_SLOW_READER: &str = r#"
import socket, ssl, sys, time
port, ca, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
raw.settimeout(20)
raw.connect(("127.0.0.1", port))
s = ctx.wrap_socket(raw, server_hostname="localhost")
s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
data = bytearray()
while True:
    chunk = s.recv(16384)
    if not chunk:
        break
    data += chunk
    time.sleep(0.001)   # slow to the end: the server's socket stays full
head, _, body = bytes(data).partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode())
if b"chunked" in head.lower():
    out, rest = bytearray(), body
    while True:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        out += rest[:n]
        rest = rest[n + 2:]
    body = bytes(out)
want = bytes(i % 251 for i in range(int(sys.argv[4])))
print(len(body), "intact" if body == want else "CORRUPT")
"#;

#[test]
fn a_large_answer_reaches_a_slow_reader_intact() {
    let certs = Certs::new("big");
    let server = TestServer::with_config(tls_config(&certs), app);
    let port = server.addr.port().to_string();
    // /big is 8 MiB in one answer; /big-stream 4 MiB in 64 pieces, chunked. Both follow
    // `byte = offset % 251`, which the script checks.
    for (path, len) in [("/big", BIG), ("/big-stream", 64 * 64 * 1024)] {
        let (out, text) = python(
            PY_SLOW_READER,
            &[&port, &certs.ca(), path, &len.to_string()],
        );
        assert!(out.status.success(), "{path}: {text}");
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines,
            ["HTTP/1.1 200 OK".to_string(), format!("{len} intact")],
            "{path}"
        );
    }
}

/// A TLS client of our own (rustls), trusting the test CA.
fn tls_connect(
    addr: SocketAddr,
    ca: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    rustls::StreamOwned::new(conn, sock)
}

/// Reads one response with a Content-Length body; returns (head, body).
fn read_response(r: &mut impl BufRead) -> (String, String) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "EOF in the head: {head}"
        );
        head += &line;
        if line == "\r\n" {
            break;
        }
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[test]
fn sigterm_drains_with_tls_connections_open() {
    let certs = Certs::new("drain");
    let (cert, key) = (certs.path("cert.pem"), certs.path("key.pem"));
    let (mut child, addr) = spawn_hello(&[
        ("H1_TLS_CERT", cert.to_str().unwrap()),
        ("H1_TLS_KEY", key.to_str().unwrap()),
        ("H1_SHUTDOWN_TIMEOUT", "10s"),
        ("RUST_LOG", "warn"),
    ]);
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines().map_while(Result::ok) {});
    // An idle keep-alive connection (one answer read), and one whose request is running.
    let mut idle = BufReader::new(tls_connect(addr, &certs.path("ca.pem")));
    idle.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (head, body) = read_response(&mut idle);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "Hello, World!");
    let mut busy = BufReader::new(tls_connect(addr, &certs.path("ca.pem")));
    busy.get_mut()
        .write_all(b"GET /sleep?ms=1500 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    // The running request is answered, told the connection closes, then closed.
    let (head, body) = read_response(&mut busy);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert_eq!(body, "slept 1500 ms\n");
    let mut rest = Vec::new();
    let _ = busy.read_to_end(&mut rest); // close_notify, or an EOF
    assert!(rest.is_empty(), "{rest:?}");
    // The idle one was closed at once.
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    let exited = wait_until(Duration::from_secs(15), || {
        !matches!(child.0.try_wait(), Ok(None))
    });
    assert!(exited, "hello did not exit after SIGTERM");
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}

/// `wss://`: a WebSocket over TLS, served by the event loop like any other (the frames go
/// through the same transport), with Python's `websockets` as the client.
#[cfg(feature = "ws")]
#[test]
fn websockets_work_over_tls() {
    use h1server::Router;
    use h1server::ws::{Message, Origins, Sender, Session, Upgrader};

    struct Echo;
    impl Session for Echo {
        fn on_message(&mut self, ws: &Sender, msg: Message) {
            if let Message::Text(t) = msg {
                let _ = ws.text(&format!("echo: {t}"));
            }
        }
    }
    let certs = Certs::new("wss");
    let mut router = Router::new();
    router.get("/ws", |req: &mut Request| {
        Upgrader::new().origins(Origins::Any).upgrade(req, Echo)
    });
    let srv = TestServer::with_config(tls_config(&certs), router);
    let script = r#"
import asyncio, ssl, sys
try:
    import websockets
except ImportError:
    sys.exit("python3 has no 'websockets' package (make test-deps installs it)")
url, ca = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
async def main():
    async with websockets.connect(url, ssl=ctx) as ws:
        for i in range(3):
            await ws.send(f"hello {i}")
            assert await ws.recv() == f"echo: hello {i}"
        await asyncio.wait_for(await ws.ping(b"p"), 5)
    print("ok")
asyncio.run(asyncio.wait_for(main(), 30))
"#;
    let url = format!("wss://127.0.0.1:{}/ws", srv.addr.port());
    let (out, text) = python(script, &[&url, &certs.ca()]);
    assert!(out.status.success() && text.trim() == "ok", "{text}");
    srv.stop().unwrap();
}

/// A handler learns the request came over TLS (`Request::is_tls`), and the reverse proxy
/// tells its upstream so (`X-Forwarded-Proto: https`): it said `http` on every request,
/// also over HTTPS, so an upstream building absolute URLs (redirects) sent the client to
/// plain HTTP.
#[test]
fn a_request_over_tls_knows_it_and_the_proxy_forwards_https_as_its_proto() {
    let certs = Certs::new("scheme");
    let server = TestServer::with_config(tls_config(&certs), app);
    let (out, text) = curl(
        &certs,
        &[&format!("https://127.0.0.1:{}/scheme", server.addr.port())],
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.trim(), "tls=true");
    let plain = TestServer::start(app);
    let resp = roundtrip(
        plain.addr,
        b"GET /scheme HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(resp.text(), "tls=false\n");
    #[cfg(feature = "proxy")]
    {
        // The upstream echoes the field it was given.
        let upstream = TestServer::start(|req: &mut Request| {
            Response::text(format!(
                "proto={}\n",
                req.header("x-forwarded-proto").unwrap_or("-")
            ))
        });
        let gateway = TestServer::with_config(
            tls_config(&certs),
            h1server::proxy::ReverseProxy::builder()
                .route("/", [format!("http://{}", upstream.addr)])
                .build()
                .unwrap(),
        );
        let (out, text) = curl(
            &certs,
            &[&format!("https://127.0.0.1:{}/x", gateway.addr.port())],
        );
        assert!(out.status.success(), "{text}");
        assert_eq!(text.trim(), "proto=https");
    }
}
