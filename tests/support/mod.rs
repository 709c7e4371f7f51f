//! Test harness: start a server on 127.0.0.1:0 with millisecond deadlines, talk to it
//! over raw sockets (every socket has a read timeout, so a bug fails instead of hanging),
//! and read responses back with a tiny independent HTTP/1.1 response parser.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use h1server::{Config, Handler, Server, ServerHandle};

pub mod nginx;
#[cfg(feature = "postgres")]
pub mod postgres;

/// A scratch directory (`h1-<name>-<pid>-<nanos>` under the temp dir), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!("h1-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Generous slack for a loaded 2-core CI machine.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// `test_config` for the proxy's upload tests: bodies over 1 KiB are streamed (up to
/// 64 MiB).
pub fn upload_config() -> Config {
    Config {
        max_body_bytes: 1024,
        max_upload_bytes: 64 << 20,
        ..test_config()
    }
}

/// The proxy's upload tests' server: `/up` goes to `upstreams` (in order: a refused one
/// moves to the next), `/plain` is the server's own; `tune` adds to the proxy's builder.
#[cfg(feature = "proxy")]
pub fn upload_gateway(
    cfg: Config,
    upstreams: &[SocketAddr],
    tune: impl FnOnce(h1server::proxy::ProxyBuilder) -> h1server::proxy::ProxyBuilder,
) -> TestServer {
    use h1server::{Request, Response, Router};
    let urls: Vec<String> = upstreams.iter().map(|a| format!("http://{a}")).collect();
    let proxy = tune(h1server::proxy::ReverseProxy::builder().route("/up", urls))
        .build()
        .unwrap();
    let mut router = Router::new();
    router.get("/plain", |_: &mut Request| Response::text("plain\n"));
    router.any("/up", proxy);
    TestServer::with_config(cfg, router)
}

/// `read`, again when a signal interrupted it: `EINTR` was seen in full runs (a test's
/// read failed with "Interrupted system call"), where other tests' servers and child
/// processes come and go.
pub fn read_some(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A config for tests: ephemeral port, 2 workers, short deadlines.
pub fn test_config() -> Config {
    Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        header_read_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        shutdown_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

/// A running test server; shut down and joined on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    handle: Option<ServerHandle>,
}

impl TestServer {
    pub fn start(app: impl Handler) -> Self {
        Self::with_config(test_config(), app)
    }

    pub fn with_config(cfg: Config, app: impl Handler) -> Self {
        let _ = env_logger::builder().is_test(true).try_init();
        let handle = Server::bind(cfg).unwrap().spawn(app).unwrap();
        TestServer {
            addr: handle.local_addr(),
            handle: Some(handle),
        }
    }

    pub fn with_server(server: Server, app: impl Handler) -> Self {
        let _ = env_logger::builder().is_test(true).try_init();
        let handle = server.spawn(app).unwrap();
        TestServer {
            addr: handle.local_addr(),
            handle: Some(handle),
        }
    }

    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().unwrap()
    }

    /// Starts the drain and waits for the server to stop; returns what `run` returned.
    pub fn stop(mut self) -> std::io::Result<()> {
        let h = self.handle.take().unwrap();
        h.shutdown();
        h.join()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            let _ = h.join();
        }
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the body was chunked on the wire.
    pub chunked: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads responses from a stream, keeping leftover bytes between calls.
pub struct Reader {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    pub fn new(stream: TcpStream) -> Self {
        Reader {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request");
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 16384];
        match read_some(&mut self.stream, &mut tmp) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(e) => panic!("read failed (timeout = server did not answer): {e}"),
        }
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Some(l);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill(), "EOF inside a body");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one response to a request with `method` (HEAD responses have no body).
    /// Returns None on a clean EOF before any byte.
    pub fn read_response_to(&mut self, method: &str) -> Option<Resp> {
        let status_line = self.line()?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let l = self.line().expect("EOF in response head");
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').expect("header without colon");
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let mut r = Resp {
            status,
            version,
            headers,
            body: Vec::new(),
            chunked: false,
        };
        if method == "HEAD" || status < 200 || status == 204 || status == 304 {
            return Some(r);
        }
        if r.header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            r.chunked = true;
            loop {
                let size_line = self.line().expect("EOF in chunk size");
                let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                    .expect("chunk size");
                if size == 0 {
                    while !self.line().expect("EOF in trailers").is_empty() {}
                    break;
                }
                let data = self.take(size);
                r.body.extend_from_slice(&data);
                assert_eq!(self.take(2), b"\r\n");
            }
        } else if let Some(cl) = r.header("content-length") {
            let n: usize = cl.parse().expect("content-length");
            r.body = self.take(n);
        } else {
            // read until close
            while self.fill() {}
            r.body = std::mem::take(&mut self.buf);
        }
        Some(r)
    }

    pub fn read_response(&mut self) -> Resp {
        self.read_response_to("GET")
            .expect("connection closed before a response")
    }

    /// True when the server closed the connection (EOF, or a reset) within the timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut tmp = [0u8; 1024];
        loop {
            match read_some(&mut self.stream, &mut tmp) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }

    /// Bytes received but not consumed by a parsed response.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }
}

/// Sends `req` on a new connection and reads one response.
pub fn roundtrip(addr: SocketAddr, req: &[u8]) -> Resp {
    let mut r = Reader::new(connect(addr));
    r.send(req);
    r.read_response()
}

/// Waits until `cond` holds, polling every 10 ms, for at most `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Path of a binary or example built by cargo for the tests (`hello`, `h1server`).
pub fn built_binary(name: &str, example: bool) -> PathBuf {
    // target/debug/deps/<test>-hash → target/debug
    let mut p = std::env::current_exe().unwrap();
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    if example {
        p.push("examples");
    }
    p.push(name);
    // Always asked (a no-op when fresh): `cargo test --test X` does not rebuild examples
    // and binaries, and a stale one would test old code.
    {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet"]);
        // The features this test was built with, or the build would replace the binary
        // `cargo test --features …` made with one lacking them.
        let features: Vec<&str> = [
            ("postgres", cfg!(feature = "postgres")),
            ("ws", cfg!(feature = "ws")),
            ("proxy", cfg!(feature = "proxy")),
            ("tls", cfg!(feature = "tls")),
        ]
        .into_iter()
        .filter_map(|(f, on)| on.then_some(f))
        .collect();
        if !features.is_empty() {
            cmd.args(["--features", &features.join(",")]);
        }
        if example {
            cmd.args(["--example", name]);
        } else {
            cmd.args(["--bin", name]);
        }
        assert!(cmd.status().unwrap().success(), "cargo build {name}");
    }
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// The demo binary (`h1server`) set to listen on 127.0.0.1:`port` with an in-memory
/// SQLite store and `token` as its API token, logging at `log` to stderr (piped or not),
/// stdin and stdout closed: add `.env(..)` and start it with [`spawn_listening`].
pub fn demo_command(port: u16, token: &str, log: &str, pipe_stderr: bool) -> Command {
    let mut cmd = Command::new(built_binary("h1server", false));
    cmd.env("H1_ADDR", format!("127.0.0.1:{port}"))
        .env("DEMO_API_TOKEN", token)
        .env("DEMO_DB", ":memory:")
        .env("RUST_LOG", log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if pipe_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    cmd
}

/// The bytes of one request to the demo's API: `Connection: close`, the bearer `token`,
/// the `extra` header lines and, when given, a JSON body with its length.
pub fn api_request(
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
    extra: &[&str],
) -> String {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: demo\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n"
    );
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    req
}

/// Starts `cmd` and waits (at most 20 s) until 127.0.0.1:`port` accepts connections.
pub fn spawn_listening(cmd: &mut Command, port: u16) -> (ChildGuard, SocketAddr) {
    let child = ChildGuard(cmd.spawn().expect("spawn the binary"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
        "{:?} did not start listening on {addr}",
        cmd.get_program()
    );
    (child, addr)
}

/// A free port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (by its PID) on drop if still running.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts examples/hello on a free port with extra env vars; waits until it answers.
pub fn spawn_hello(envs: &[(&str, &str)]) -> (ChildGuard, SocketAddr) {
    let port = free_port();
    let mut cmd = Command::new(built_binary("hello", true));
    cmd.args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = ChildGuard(cmd.spawn().expect("spawn hello"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
        "hello did not start listening"
    );
    (child, addr)
}

/// Asserts a real client tool is installed (tests never skip silently).
pub fn require_tool(tool: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{tool} is not installed: run `sh .ci/deps.sh` (make test does) — this test drives the real client"
    );
}

/// A gate the test opens; handlers wait on it (never longer than a bound).
#[derive(Clone, Default)]
pub struct Gate(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    pub fn open(&self) {
        let (m, c) = &*self.0;
        *m.lock().unwrap() = true;
        c.notify_all();
    }
    pub fn wait(&self, limit: Duration) {
        let (m, c) = &*self.0;
        let g = m.lock().unwrap();
        let _ = c.wait_timeout_while(g, limit, |open| !*open).unwrap();
    }
}

/// Opens the gate when dropped, so a failing test does not leave handlers blocked while
/// the server drains. Declare it after the server so it drops first.
pub struct OpenOnDrop(pub Gate);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Reads one request head from `s` for a scripted upstream: the bytes already read come
/// first from `buf`, and what followed the head is left there. Returns the head as text
/// and its `Content-Length` (0 without one), or `None` when the connection ended (or
/// failed) before a whole head.
pub fn read_request_head(s: &mut impl Read, buf: &mut Vec<u8>) -> Option<(String, u64)> {
    let mut tmp = [0u8; 16 * 1024];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match read_some(s, &mut tmp) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let len = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    Some((head, len))
}

/// Resident memory of process `pid`, in KiB (VmRSS from /proc).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// Writes as much of `data` as the socket takes without blocking; returns how much.
pub fn write_some(s: &mut TcpStream, data: &[u8]) -> usize {
    let mut n = 0;
    while n < data.len() {
        match s.write(&data[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break, // WouldBlock, or refused and closed
        }
    }
    n
}

/// The child's stderr, a line at a time (a thread reads the pipe and forwards each line).
pub fn stderr_lines(child: &mut ChildGuard) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.0.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Holds back, on listener `l`, every packet but a SYN (a classic BPF socket filter: a
/// socket filter on a TCP socket sees the TCP header first, flags at byte 13). A client's
/// `connect` returns (the SYN-ACK came) and its request is written, but the ACK that would
/// finish the handshake has not reached the server: a handshake under way, as the drain
/// must let complete (`listener::stop_handshakes` replaces this filter).
#[allow(unsafe_code)]
pub fn hold_handshake_acks(l: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let mut only_syns = [
        op(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 13),
        op(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, 0, 0, 0x12),
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, 0x02),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
    ];
    let prog = libc::sock_fprog {
        len: only_syns.len() as u16,
        filter: only_syns.as_mut_ptr(),
    };
    // SAFETY: `prog` points to a live program of exactly `len` instructions for the call
    // (the kernel copies it); the descriptor is valid because `l` is borrowed.
    let rc = unsafe {
        libc::setsockopt(
            l.as_raw_fd(),
            libc::SOL_SOCKET,
            26, // SO_ATTACH_FILTER
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "SO_ATTACH_FILTER: {}",
        std::io::Error::last_os_error()
    );
}

/// SO_RCVBUF 4 KiB on `s` (the kernel doubles it, and stops growing it): a client that
/// takes a large answer slowly, or not at all.
#[allow(unsafe_code)]
pub fn small_receive_buffer(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4096;
    // SAFETY: `size` is a live c_int of the size passed; the descriptor is borrowed.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
}

/// SO_LINGER 0 on `s`: its close sends a reset (a client that vanishes mid-request).
#[allow(unsafe_code)]
pub fn reset_on_close(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `l` is a live linger struct of the size passed; the descriptor is borrowed.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

/// The demo's `--print-config` line of setting `name`, its padding collapsed (the run
/// must have succeeded).
pub fn printed(out: &std::process::Output, name: &str) -> String {
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
    let line = line.unwrap_or_else(|| panic!("no {name} line in\n{text}"));
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A client for the tests that stop a server while connections race in: it connects and
/// sends `GET /` up to 2 000 times, each on a new connection, until a connect is refused
/// (`Ok` with the number answered). An accepted connection must get a whole `200` head:
/// a write error, a reset or a close before it is the error returned.
pub fn racing_client(
    addr: SocketAddr,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> std::thread::JoinHandle<Result<usize, String>> {
    std::thread::spawn(move || -> Result<usize, String> {
        let mut ok = 0;
        for _ in 0..2000 {
            let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
                return Ok(ok);
            };
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            if s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_err() {
                return Err("write failed on an accepted connection".into());
            }
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        if got.windows(4).any(|w| w == b"\r\n\r\n") && !got.ends_with(b"\r\n\r\n") {
                            break;
                        }
                    }
                    Err(e) => {
                        return Err(format!(
                            "after {ok} answered: {e} with {:?}",
                            String::from_utf8_lossy(&got)
                        ));
                    }
                }
            }
            if !got.starts_with(b"HTTP/1.1 200") {
                return Err(format!(
                    "after {ok} answered: {:?}",
                    String::from_utf8_lossy(&got)
                ));
            }
            ok += 1;
            served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(ok)
    })
}

/// Reads a 101's head a byte at a time, through its empty line, so that nothing of the
/// new protocol's bytes behind it is taken; returns it.
pub fn upgrade_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).expect("the 101 head");
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// An upgrade's new protocol that echoes every byte it gets (those the server read ahead
/// first), on a thread of its own, until either side closes.
pub fn echo_upgrade(mut up: h1server::Upgraded) {
    std::thread::spawn(move || {
        if up.stream.write_all(&up.read_ahead).is_err() {
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            match up.stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if up.stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// A rustls client that trusts tests/data/localhost-cert.pem and offers `alpn`.
#[cfg(feature = "tls")]
pub fn tls_client_config(alpn: &[&[u8]]) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let cert = include_str!("../data/localhost-cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert.as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    std::sync::Arc::new(config)
}
