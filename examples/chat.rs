//! The seed's chat hub over WebSocket, served by the event loop: `GET /` is a small page
//! that uses the browser's `WebSocket`; `GET /ws` joins the room. Every text message is
//! broadcast to every member as `<name>: <text>`; joins and leaves are announced. A
//! member is named by `?name=` (letters, digits, `-` and `_`, at most 32) or else
//! `guest-<connection id>`.
//!
//! No thread per member: the hub is a table of `Sender`s; a member's messages reach its
//! `Session` on a worker, one short call each, and a broadcast queues one frame per
//! member (a member that stops reading is disconnected when its queue is full). SIGINT
//! or SIGTERM drains: every member gets close 1001 (going away).
//!
//!     cargo run --release --features ws --example chat            # 127.0.0.1:8080
//!     H1_ADDR=0.0.0.0:9000 cargo run --features ws --example chat
//!
//! `CHAT_ORIGINS` (comma-separated, such as `https://chat.example.com`) allows pages of
//! other origins; by default only same-origin pages (and non-browser clients) may join.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use h1server::ws::{CloseCode, Message, Origins, Sender, Session, Upgrader};
use h1server::{Config, Request, Response, Router, Server};

const PAGE: &str = include_str!("chat.html");

/// The room: every member's sender, by connection id.
#[derive(Clone, Default)]
struct Hub {
    members: Arc<Mutex<HashMap<u64, Sender>>>,
}

impl Hub {
    fn join(&self, ws: &Sender) {
        self.lock().insert(ws.id(), ws.clone());
    }

    fn leave(&self, id: u64) -> bool {
        self.lock().remove(&id).is_some()
    }

    /// Sends `text` to every member; one whose queue is full (it does not read) is
    /// dropped from the room (its connection is closed by the server).
    fn broadcast(&self, text: &str) {
        let members: Vec<Sender> = self.lock().values().cloned().collect();
        let mut gone = Vec::new();
        for m in &members {
            if m.text(text).is_err() {
                gone.push(m.id());
            }
        }
        if !gone.is_empty() {
            let mut table = self.lock();
            for id in gone {
                table.remove(&id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Sender>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One member's connection.
struct Member {
    hub: Hub,
    name: String,
}

impl Session for Member {
    fn on_open(&mut self, ws: &Sender) {
        self.hub.join(ws);
        self.hub.broadcast(&format!("* {} joined", self.name));
    }

    fn on_message(&mut self, ws: &Sender, msg: Message) {
        match msg {
            Message::Text(t) => self.hub.broadcast(&format!("{}: {t}", self.name)),
            // The room is text only (RFC 6455 §7.4.1: 1003, a kind of data not accepted).
            _ => ws.close(CloseCode::UNSUPPORTED, "text messages only"),
        }
    }

    fn on_close(&mut self, ws: &Sender, _code: CloseCode, _reason: &str) {
        if self.hub.leave(ws.id()) {
            self.hub.broadcast(&format!("* {} left", self.name));
        }
    }
}

fn member_name(req: &Request) -> String {
    match req.query_param("name") {
        Some(n)
            if !n.is_empty()
                && n.len() <= 32
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            n.into_owned()
        }
        _ => format!("guest-{}", req.conn_id()),
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chat: {e}");
            std::process::exit(2);
        }
    };
    if std::env::var_os("H1_ADDR").is_none() {
        cfg.addr = ([127, 0, 0, 1], 8080).into();
    }
    let origins = match std::env::var("CHAT_ORIGINS") {
        Ok(list) if !list.trim().is_empty() => {
            Origins::allow(list.split(',').map(|s| s.trim().to_string()))
        }
        _ => Origins::SameOrigin,
    };
    let hub = Hub::default();
    let upgrader = Upgrader::new().origins(origins).max_message(16 * 1024);
    let mut router = Router::new();
    router.get("/", |_req: &mut Request| Response::html(PAGE));
    router.get("/ws", move |req: &mut Request| {
        let member = Member {
            hub: hub.clone(),
            name: member_name(req),
        };
        upgrader.upgrade(req, member)
    });
    let server = match Server::bind(cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chat: {e}");
            std::process::exit(1);
        }
    };
    log::info!("chat on http://{}/", server.local_addr());
    if let Err(e) = server.run(router) {
        eprintln!("chat: {e}");
        std::process::exit(1);
    }
}
