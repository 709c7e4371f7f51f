//! The benchmark and experiment server: `GET /` (and `/plaintext`, which wrk's pipelining
//! script asks for) answers `200 Hello, World!`; `GET /sleep?ms=N` answers after N ms (for
//! drain and pool experiments); `GET /stream?n=N` sends N chunks 100 ms apart.
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

use std::time::Duration;

use h1server::{BindError, Config, Request, Response, Server, status};

fn query_num(req: &Request, key: &str) -> Option<u64> {
    req.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        if k == key { v.parse().ok() } else { None }
    })
}

fn app(req: &mut Request) -> Response {
    match req.path() {
        "/" | "/plaintext" => Response::text("Hello, World!"),
        "/sleep" => {
            let ms = query_num(req, "ms").unwrap_or(100).min(60_000);
            std::thread::sleep(Duration::from_millis(ms));
            Response::text(format!("slept {ms} ms\n"))
        }
        "/stream" => {
            let n = query_num(req, "n").unwrap_or(10).min(10_000);
            // Paced by time, so fed from a thread of its own through a channel: a pulled
            // producer (`Response::stream`) must not sleep on a worker.
            let (resp, tx) = Response::channel();
            std::thread::spawn(move || {
                for i in 0..n {
                    if i > 0 {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    if tx.send(format!("chunk {i}\n")).is_err() {
                        return; // the client went away
                    }
                }
            });
            resp
        }
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
