//! The black-box resource-exhaustion harness (tests/exhaustion_review2.rs,
//! tests/exhaustion_loops_review.rs): sockets that push what the server takes and then
//! stall, the server process's RSS once it settles, a fresh request on a new connection,
//! and a SIGTERM drain against its deadline. Included with
//! `#[path = "support/exhaustion.rs"] mod exhaustion;` beside `mod support;`.
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{ChildGuard, Reader, connect, rss_kib, wait_until, write_some};

/// The RSS growth of `pid` over `before`, once it has stopped growing: sampled every
/// 100 ms until the peak has not moved for 1 s (at most 15 s); the peak is returned.
pub fn settled_growth(pid: u32, before: u64) -> u64 {
    let t0 = Instant::now();
    let (mut peak, mut since) = (rss_kib(pid), Instant::now());
    while t0.elapsed() < Duration::from_secs(15) && since.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
        let now = rss_kib(pid);
        if now > peak + peak / 100 {
            since = Instant::now();
        }
        peak = peak.max(now);
    }
    peak.saturating_sub(before)
}

/// A fresh `GET path` on a new connection is answered (read timeout 5 s): no worker is
/// held by the stalled clients. Returns the status.
pub fn fresh_get(addr: SocketAddr, path: &str) -> u16 {
    let s = TcpStream::connect(addr).expect("connect for the fresh GET");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = Reader::new(s);
    r.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
    r.read_response().status
}

/// Slack on the drain's bound for a loaded 2-core machine.
pub const DRAIN_SLACK: Duration = Duration::from_secs(3);

/// SIGTERM to the server (running with `shutdown_timeout`); it must exit 0 within
/// `shutdown_timeout` + 1 s (+ slack for a loaded machine). Returns how long it took.
pub fn drains_within(child: &mut ChildGuard, shutdown_timeout: Duration) -> Duration {
    let pid = child.0.id();
    // SAFETY: a plain kill(2) of our own child, still unreaped (try_wait below reaps it).
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let t0 = Instant::now();
    let limit = shutdown_timeout + Duration::from_secs(1) + DRAIN_SLACK;
    let mut status = None;
    wait_until(limit, || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    let took = t0.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the server did not exit {took:?} after SIGTERM (shutdown_timeout {shutdown_timeout:?})"
        )
    });
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status:?}");
    took
}

/// Non-blocking sockets, each with the bytes it has not taken yet and how many were
/// queued on it in all.
pub struct Pushers(pub Vec<(TcpStream, Vec<u8>, usize)>);

impl Pushers {
    pub fn open(addr: SocketAddr, n: usize) -> Self {
        Pushers::from((0..n).map(|_| connect(addr)).collect())
    }

    pub fn from(socks: Vec<TcpStream>) -> Self {
        Pushers(
            socks
                .into_iter()
                .map(|s| {
                    s.set_nonblocking(true).unwrap();
                    (s, Vec::new(), 0)
                })
                .collect(),
        )
    }

    /// Queues `bytes` (cut at `limit` queued in all) on every socket whose queue is empty,
    /// and writes what each socket takes now. Returns the bytes all sockets took.
    pub fn push(&mut self, bytes: &[u8], limit: usize) -> usize {
        let mut took = 0;
        for (s, pending, queued) in self.0.iter_mut() {
            if pending.is_empty() && *queued < limit {
                let add = bytes.len().min(limit - *queued);
                pending.extend_from_slice(&bytes[..add]);
                *queued += add;
            }
            let n = write_some(s, pending);
            pending.drain(..n);
            took += n;
        }
        took
    }

    /// Pushes `unit` repeatedly, at most `per_socket` bytes into each socket, for at most
    /// `rounds` rounds of 20 ms, or until the sockets stop taking bytes (the server
    /// stopped reading them) or took everything.
    pub fn flood(&mut self, unit: &[u8], per_socket: usize, rounds: usize) {
        let mut idle = 0;
        for _ in 0..rounds {
            let took = self.push(unit, per_socket);
            idle = if took == 0 { idle + 1 } else { 0 };
            let done = self
                .0
                .iter()
                .all(|(_, p, q)| p.is_empty() && *q >= per_socket);
            if idle >= 10 || done {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Clients that each sent `GET path` and never read.
pub fn silent_getters(addr: SocketAddr, n: usize, path: &str) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .unwrap();
            s
        })
        .collect()
}
