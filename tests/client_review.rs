//! The client against hostile and broken servers: each test here failed before the fix
//! named in its comment. The servers are raw TCP on 127.0.0.1, one thread per
//! connection, scripted byte by byte; every wait is bounded.
#![cfg(feature = "client")]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use h1server::client::{Client, RetryPolicy};

/// A raw server: each accepted connection (numbered from 0) runs `script` on its thread.
/// Accepts until the test ends (the listener thread is detached; the process ends it).
fn raw_server<F>(script: F) -> SocketAddr
where
    F: Fn(usize, TcpStream) + Send + Sync + 'static,
{
    let _ = env_logger::builder().is_test(true).try_init();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(script);
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate().take(64) {
            let Ok(stream) = stream else { continue };
            let script = Arc::clone(&script);
            std::thread::spawn(move || script(i, stream));
        }
    });
    addr
}

/// Reads one request head (through its empty line), at most 10 s; returns it as text.
fn read_head(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// A hostile `Retry-After` with a client configured without a cap on it
/// (`max_retry_after(Duration::MAX)`) and a deadline: the wait is compared with the
/// deadline by adding it to `Instant::now()`, which overflowed and panicked.
#[test]
fn an_enormous_retry_after_does_not_panic() {
    let addr = raw_server(|_, mut s| {
        read_head(&mut s);
        let _ = s.write_all(
            b"HTTP/1.1 503 Busy\r\nRetry-After: 18446744073709551615\r\nContent-Length: 0\r\n\r\n",
        );
        std::thread::sleep(Duration::from_millis(500));
    });
    let c = Client::builder()
        .timeout(Duration::from_secs(5))
        .retry(RetryPolicy::exponential(3).max_retry_after(Duration::MAX))
        .build();
    let resp = c.get(&url(addr, "/busy")).send().unwrap();
    assert_eq!(
        resp.status(),
        503,
        "no retry: the wait would pass the deadline"
    );
}
