//! A WebSocket echo server, the testee a conformance suite such as the Autobahn|Testsuite
//! (`wstest -m fuzzingclient`) is pointed at: `GET /` (any path) upgrades, and every text
//! or binary message comes back unchanged, as one message. Pings are answered and closes
//! echoed by the event loop itself.
//!
//! Messages up to 16 MiB are accepted (Autobahn's 9.* cases send 16 MiB), any `Origin`
//! is allowed (the client is a test tool, not a page), and no subprotocol or extension is
//! negotiated. It listens on 127.0.0.1 (`--port N`, default 9001, Autobahn's usual port);
//! other settings come from `H1_*` variables (docs/CONFIG.md).
//!
//!     cargo run --release --features ws --example ws_echo -- --port 9001
//!
//! docs/WEBSOCKET.md ("Autobahn|Testsuite") has the run against it.

use h1server::ws::{Message, Origins, Sender, Session, Upgrader};
use h1server::{Config, Request, Router, Server};

/// Every text or binary message back, unchanged.
struct Echo;

impl Session for Echo {
    fn on_message(&mut self, ws: &Sender, msg: Message) {
        let _ = ws.send(msg);
    }
}

fn main() {
    #[cfg(feature = "cli")]
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ws_echo: {e}");
            std::process::exit(2);
        }
    };
    cfg.addr = ([127, 0, 0, 1], 9001).into();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--port", Some(p)) => match p.parse::<u16>() {
                Ok(p) => cfg.addr = ([127, 0, 0, 1], p).into(),
                Err(_) => {
                    eprintln!("ws_echo: --port {p:?}: not a port number");
                    std::process::exit(2);
                }
            },
            _ => {
                eprintln!("usage: ws_echo [--port N]");
                std::process::exit(2);
            }
        }
    }
    let up = Upgrader::new()
        .origins(Origins::Any)
        .max_message(16 * 1024 * 1024);
    let mut router = Router::new();
    router.get("/", move |req: &mut Request| up.upgrade(req, Echo));
    let server = match Server::bind(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ws_echo: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("ws_echo on ws://{}/", server.local_addr());
    if let Err(e) = server.run(router) {
        eprintln!("ws_echo: {e}");
        std::process::exit(1);
    }
}
