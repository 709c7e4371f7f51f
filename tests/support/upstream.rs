//! A scripted upstream for the client tests: a raw TCP server on 127.0.0.1 that answers
//! each request with the next [`Reply`] of its script (then `200 ok`), and records every
//! request head with the number of the connection it came on. Included with
//! `#[path = "support/upstream.rs"] mod upstream;` by the tests that need it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the upstream does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Writes these bytes and keeps reading the connection.
    Raw(String),
    /// Writes these bytes, then closes the connection without having said so.
    RawThenClose(String),
    /// Closes the connection without answering.
    Close,
    /// Never answers (until the upstream is dropped).
    Hang,
    /// Waits this many milliseconds, then writes the bytes.
    Delay(u64, String),
    /// Writes the first bytes at once, then the second one byte at a time, this many
    /// milliseconds apart, then stalls (reads on, answers nothing more).
    Dribble(String, String, u64),
}

/// `200 OK` with this body and its length.
pub fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A status with extra header lines (each ending in `\r\n`) and an empty body.
pub fn status(code: u16, extra: &str) -> String {
    format!("HTTP/1.1 {code} Whatever\r\n{extra}Content-Length: 0\r\n\r\n")
}

/// One request as the upstream saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Which accepted connection (0, 1, ...) it came on.
    pub conn: usize,
    /// The head, as text.
    pub head: String,
    pub body: Vec<u8>,
}

impl Seen {
    /// The first value of a header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// The request line.
    pub fn line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }
}

pub struct Upstream {
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    pub fn start(script: Vec<Reply>) -> Upstream {
        // The client's log lines (RUST_LOG=debug) show with a failing test's output.
        let _ = env_logger::builder().is_test(true).try_init();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Upstream {
            addr,
            script: Arc::new(Mutex::new(script.into())),
            seen: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (script, seen, stop) = (up.script.clone(), up.seen.clone(), up.stop.clone());
        std::thread::spawn(move || {
            for (conn, stream) in listener.incoming().enumerate() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (script, seen, stop) = (script.clone(), seen.clone(), stop.clone());
                std::thread::spawn(move || serve(conn, stream, &script, &seen, &stop));
            }
        });
        up
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `host:port`, as the client's breaker names it.
    pub fn upstream(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Adds replies to the script.
    pub fn push(&self, replies: Vec<Reply>) {
        self.script.lock().unwrap().extend(replies);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

fn serve(
    conn: usize,
    mut stream: TcpStream,
    script: &Mutex<VecDeque<Reply>>,
    seen: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
) {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let t0 = Instant::now();
    loop {
        // One request: the head, then a Content-Length body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if !fill(&mut stream, &mut buf, stop, t0) {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut s = Seen {
            conn,
            head,
            body: Vec::new(),
        };
        let len: usize = s
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            if !fill(&mut stream, &mut buf, stop, t0) {
                return;
            }
        }
        s.body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        seen.lock().unwrap().push(s);
        let reply = script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Reply::Raw(ok("ok")));
        match reply {
            Reply::Raw(bytes) => {
                if stream.write_all(bytes.as_bytes()).is_err() {
                    return;
                }
            }
            Reply::RawThenClose(bytes) => {
                let _ = stream.write_all(bytes.as_bytes());
                return;
            }
            Reply::Close => return,
            Reply::Hang => {
                while !stop.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return;
            }
            Reply::Delay(ms, bytes) => {
                std::thread::sleep(Duration::from_millis(ms));
                if stream.write_all(bytes.as_bytes()).is_err() {
                    return;
                }
            }
            Reply::Dribble(first, bytes, ms) => {
                if stream.write_all(first.as_bytes()).is_err() {
                    return;
                }
                for b in bytes.as_bytes() {
                    if stop.load(Ordering::SeqCst) || stream.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(ms));
                }
            }
        }
    }
}

/// Reads more; false on EOF, error, stop, or after 30 s (a test bound).
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool, t0: Instant) -> bool {
    let mut tmp = [0u8; 16384];
    loop {
        if stop.load(Ordering::SeqCst) || t0.elapsed() > Duration::from_secs(30) {
            return false;
        }
        match stream.read(&mut tmp) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                return true;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return false,
        }
    }
}
