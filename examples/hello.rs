//! The benchmark and experiment server: `GET /` (and `/plaintext`, which wrk's pipelining
//! script asks for) answers `200 Hello, World!`; `GET /sleep?ms=N` answers after N ms (for
//! drain and pool experiments); `GET /stream?n=N` sends N chunks 100 ms apart (one ticker
//! thread paces every open stream); `GET /panic` panics in the handler, which the worker
//! catches and answers `500` (tests/footprint.rs checks that each build still unwinds).
//!
//! Configuration comes from `H1_*` variables (`Config::from_env`); `--port N` sets the
//! port on 127.0.0.1, as the side-by-side benchmark harness expects.
//!
//!     cargo run --release --example hello -- --port 8090
//!     RUST_LOG=trace H1_WORKERS=2 cargo run --example hello
//!
//! Logging (env_logger, `RUST_LOG`, default `info`) comes with the `cli` feature, on by
//! default. Built with `--no-default-features` the example is the engine alone and
//! logger-free: no logger is ever installed, so LTO removes the engine's `log` call sites
//! too. That build is the footprint figure (docs/BENCHMARKS.md, "Footprint"), checked by
//! tests/footprint.rs.

use std::sync::{Mutex, Once};
use std::time::Duration;

use h1server::{BindError, Config, Request, Response, Server, StreamSender, TrySendError, status};

fn query_num(req: &Request, key: &str) -> Option<u64> {
    req.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        if k == key { v.parse().ok() } else { None }
    })
}

/// An open `/stream`: its sender and the chunks still to send.
struct Ticking {
    tx: StreamSender,
    next: u64,
    n: u64,
}

/// Every open `/stream`, paced by one ticker thread: a stream is state, not a thread (a
/// pulled producer, `Response::stream`, must not sleep on a worker either), so N clients
/// that never read cost N entries and no thread each.
static STREAMS: Mutex<Vec<Ticking>> = Mutex::new(Vec::new());

/// `n` chunks, 100 ms apart, through a channel fed by the ticker.
fn stream(n: u64) -> Response {
    static TICKER: Once = Once::new();
    let (resp, tx) = Response::channel();
    // The chunks are text: say so (RFC 9110 §8.3), as every other answer here does.
    let resp = resp.with_header("Content-Type", "text/plain; charset=utf-8");
    if n == 0 {
        return resp; // the sender dropped here ends the body at once
    }
    let _ = tx.try_send("chunk 0\n");
    STREAMS.lock().unwrap().push(Ticking { tx, next: 1, n });
    TICKER.call_once(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                // Ended streams are dropped (which ends their bodies), and so are those
                // whose client went away; a client too slow to take a chunk gets it on a
                // later tick.
                STREAMS.lock().unwrap().retain_mut(|s| {
                    if s.next >= s.n {
                        return false;
                    }
                    match s.tx.try_send(format!("chunk {}\n", s.next)) {
                        Ok(()) => s.next += 1,
                        Err(TrySendError::Full) => {}
                        Err(TrySendError::Closed) => return false,
                    }
                    s.next < s.n
                });
            }
        });
    });
    resp
}

fn app(req: &mut Request) -> Response {
    match req.path() {
        "/" | "/plaintext" => Response::text("Hello, World!"),
        "/sleep" => {
            let ms = query_num(req, "ms").unwrap_or(100).min(60_000);
            std::thread::sleep(Duration::from_millis(ms));
            Response::text(format!("slept {ms} ms\n"))
        }
        "/stream" => stream(query_num(req, "n").unwrap_or(10).min(10_000)),
        "/panic" => panic!("GET /panic"),
        _ => Response::error(status::NOT_FOUND, ""),
    }
}

fn main() {
    #[cfg(feature = "cli")]
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hello: {e}");
            std::process::exit(2);
        }
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--port", Some(p)) => match p.parse::<u16>() {
                Ok(p) => cfg.addr = ([127, 0, 0, 1], p).into(),
                Err(_) => {
                    eprintln!("hello: --port {p:?}: not a port number");
                    std::process::exit(2);
                }
            },
            _ => {
                eprintln!(
                    "usage: hello [--port N]   (other settings: H1_* variables, see docs/CONFIG.md)"
                );
                std::process::exit(2);
            }
        }
    }
    let server = match Server::bind(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hello: {e}");
            // A value the operator must fix (2), or a socket that cannot be had (1).
            std::process::exit(if matches!(e, BindError::Config(_)) {
                2
            } else {
                1
            });
        }
    };
    if let Err(e) = server.run(app) {
        eprintln!("hello: {e}");
        std::process::exit(1);
    }
}
