//! WebSocket connections served by the event loop, over real sockets: the handshake and
//! its refusals (400, 426, 403 for a refused origin), messages to a `Session` on the
//! pool, pings, the close handshake, protocol errors closed with their codes, a client
//! that stops reading (disconnected when its send queue is full), a silent client
//! (disconnected after two ping intervals), the drain (1001), a panicking session (1011);
//! then `examples/chat` with 1,000 clients on two workers, Python's `websockets` and
//! headless Chromium.
#![cfg(feature = "ws")]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use h1server::ws::frame::{self, OpCode};
use h1server::ws::{CloseCode, Message, Origins, SendError, Sender, Session, Upgrader};
use h1server::{Request, Response, Router};
use support::*;

#[path = "support/ws_client.rs"]
mod ws_client;
use ws_client::*;

// ---- sessions the tests serve -----------------------------------------------------------

/// What a session saw, for the test to check.
#[derive(Debug, PartialEq)]
enum Seen {
    Open,
    Msg(Message),
    Close(u16, String),
}

/// Echoes every message and reports what it sees.
struct Echo(mpsc::Sender<Seen>);

impl Session for Echo {
    fn on_open(&mut self, _ws: &Sender) {
        let _ = self.0.send(Seen::Open);
    }
    fn on_message(&mut self, ws: &Sender, msg: Message) {
        let _ = self.0.send(Seen::Msg(msg.clone()));
        match &msg {
            Message::Text(t) if t == "close-please" => ws.close(CloseCode(4001), "as asked"),
            Message::Text(t) if t == "panic" => panic!("a session panics"),
            _ => {
                let _ = ws.send(msg);
            }
        }
    }
    fn on_close(&mut self, ws: &Sender, code: CloseCode, reason: &str) {
        assert!(ws.is_closed(), "sends are refused once closed");
        assert_eq!(ws.text("late"), Err(SendError::Closed));
        let _ = self.0.send(Seen::Close(code.0, reason.to_string()));
    }
}

fn echo_server(up: Upgrader) -> (TestServer, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let mut router = Router::new();
    router.get("/ws", move |req: &mut Request| {
        let tx = tx.lock().unwrap().clone();
        up.upgrade(req, Echo(tx))
    });
    router.get("/plain", |_: &mut Request| Response::text("plain\n"));
    (TestServer::start(router), rx)
}

fn next(rx: &mpsc::Receiver<Seen>) -> Seen {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the session heard nothing")
}

// ---- the protocol --------------------------------------------------------------------

#[test]
fn messages_reach_the_session_in_order_and_are_echoed() {
    let (srv, rx) = echo_server(Upgrader::new());
    let mut c = Client::open(srv.addr, "/ws");
    assert_eq!(next(&rx), Seen::Open);
    let tel = srv.handle().telemetry();
    assert_eq!(tel.snapshot().websockets_open, 1);
    c.text("hello");
    assert_eq!(c.recv_text(), "hello");
    c.send(true, OpCode::Binary, &[0, 1, 2, 255]);
    assert_eq!(c.recv(), Some(Message::Binary(vec![0, 1, 2, 255])));
    // A fragmented text message with a ping between its fragments (RFC 6455 §5.4): the
    // pong comes first (from the loop), then the whole message (from the session).
    c.send(false, OpCode::Text, "frag".as_bytes());
    c.send(true, OpCode::Ping, b"p1");
    c.send(false, OpCode::Continuation, "men".as_bytes());
    c.send(true, OpCode::Continuation, "ted é".as_bytes());
    assert_eq!(c.recv(), Some(Message::Pong(b"p1".to_vec())));
    assert_eq!(c.recv_text(), "fragmented é");
    // Many small messages in one write: delivered and echoed in order.
    let mut burst = Vec::new();
    for i in 0..500 {
        frame::encode(
            &mut burst,
            true,
            OpCode::Text,
            format!("m{i}").as_bytes(),
            Some(MASK),
        );
    }
    c.s.write_all(&burst).unwrap();
    for i in 0..500 {
        assert_eq!(c.recv_text(), format!("m{i}"));
    }
    assert_eq!(next(&rx), Seen::Msg(Message::Text("hello".into())));
    assert_eq!(next(&rx), Seen::Msg(Message::Binary(vec![0, 1, 2, 255])));
    assert_eq!(next(&rx), Seen::Msg(Message::Text("fragmented é".into())));
    for i in 0..500 {
        assert_eq!(next(&rx), Seen::Msg(Message::Text(format!("m{i}"))));
    }
    // The close handshake: our code is echoed, the server closes, the session hears it.
    let mut close = Vec::new();
    frame::encode_close(&mut close, Some(CloseCode(4000)), "bye", Some(MASK));
    c.s.write_all(&close).unwrap();
    assert_eq!(c.expect_close(), CloseCode(4000));
    assert_eq!(next(&rx), Seen::Close(4000, "bye".into()));
    let t = tel.snapshot();
    assert_eq!((t.websockets_open, t.websocket_messages_in), (0, 503));
    let closed = t.closed.iter().find(|(r, _)| *r == "ws_closed").unwrap().1;
    assert_eq!(closed, 1, "{:?}", t.closed);
    srv.stop().unwrap();
}

#[test]
fn frames_sent_with_the_handshake_are_not_lost() {
    let (srv, rx) = echo_server(Upgrader::new());
    let mut first = Vec::new();
    frame::encode(&mut first, true, OpCode::Text, b"early", Some(MASK));
    let mut c = Client::open_with(srv.addr, "/ws", "", &first);
    assert_eq!(c.recv_text(), "early");
    assert_eq!(next(&rx), Seen::Open);
    assert_eq!(next(&rx), Seen::Msg(Message::Text("early".into())));
    srv.stop().unwrap();
}

#[test]
fn protocol_errors_close_with_their_codes() {
    // (what the client sends, the close code the server must answer with)
    let mut unmasked = Vec::new();
    frame::encode(&mut unmasked, true, OpCode::Text, b"hi", None);
    let mut bad_utf8 = Vec::new();
    frame::encode(&mut bad_utf8, true, OpCode::Text, &[0xc3, 0x28], Some(MASK));
    let mut too_big = Vec::new();
    frame::encode(&mut too_big, true, OpCode::Binary, &[7u8; 2048], Some(MASK));
    let mut rsv = Vec::new();
    frame::encode(&mut rsv, true, OpCode::Text, b"x", Some(MASK));
    rsv[0] |= 0x40;
    // A ping of 126 bytes (the encoder refuses to make one): its 16-bit length form.
    let mut long_ping = vec![0x89, 0x80 | 126, 0, 126];
    long_ping.extend_from_slice(&MASK);
    long_ping.extend_from_slice(&[1u8; 126]);
    let cases: [(&str, Vec<u8>, CloseCode); 5] = [
        ("unmasked", unmasked, CloseCode::PROTOCOL),
        ("bad utf-8", bad_utf8, CloseCode::INVALID_PAYLOAD),
        ("too big", too_big, CloseCode::TOO_BIG),
        ("reserved bit", rsv, CloseCode::PROTOCOL),
        ("long ping", long_ping, CloseCode::PROTOCOL),
    ];
    let (srv, rx) = echo_server(Upgrader::new().max_message(1024));
    for (what, wire, code) in cases {
        let mut c = Client::open(srv.addr, "/ws");
        assert_eq!(next(&rx), Seen::Open, "{what}");
        c.s.write_all(&wire).unwrap();
        assert_eq!(c.expect_close(), code, "{what}");
        match next(&rx) {
            Seen::Close(got, _) => assert_eq!(got, code.0, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // The server serves on.
    let r = roundtrip(srv.addr, b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    srv.stop().unwrap();
}

#[test]
fn bad_handshakes_and_refused_origins_get_their_status_before_any_upgrade() {
    let up = Upgrader::new().origins(Origins::allow(["https://ok.example"]));
    let (srv, rx) = echo_server(up);
    let ask = |req: String| roundtrip(srv.addr, req.as_bytes());
    let no_key = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n";
    let r = ask(no_key.into());
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Sec-WebSocket-Key"), "{}", r.text());
    let r = ask(handshake("/ws", "").replace("Version: 13", "Version: 8"));
    assert_eq!(r.status, 426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    let r = ask(handshake("/ws", "Origin: https://evil.example\r\n"));
    assert_eq!(r.status, 403);
    // Listed origins (any case) and clients that send none are let in.
    let mut c = Client::open(srv.addr, "/ws");
    c.text("a");
    assert_eq!(c.recv_text(), "a");
    let mut c = Client::open_with(srv.addr, "/ws", "Origin: HTTPS://OK.example\r\n", b"");
    c.text("b");
    assert_eq!(c.recv_text(), "b");
    // Only the two accepted connections opened a session.
    assert_eq!(next(&rx), Seen::Open);
    assert_eq!(next(&rx), Seen::Msg(Message::Text("a".into())));
    assert_eq!(next(&rx), Seen::Open);
    drop(c);
    srv.stop().unwrap();
}

#[test]
fn same_origin_is_the_default_and_a_callback_can_decide() {
    let (srv, _rx) = echo_server(Upgrader::new());
    // Host is 127.0.0.1 in `handshake`.
    let r = roundtrip(
        srv.addr,
        handshake("/ws", "Origin: http://other.example\r\n").as_bytes(),
    );
    assert_eq!(r.status, 403);
    let mut c = Client::open_with(srv.addr, "/ws", "Origin: http://127.0.0.1\r\n", b"");
    c.text("same");
    assert_eq!(c.recv_text(), "same");
    srv.stop().unwrap();

    let up = Upgrader::new().origins(Origins::check(|req: &Request| {
        req.header("origin")
            .is_some_and(|o| o.ends_with(".trusted.example"))
    }));
    let (srv, _rx) = echo_server(up);
    let r = roundtrip(
        srv.addr,
        handshake("/ws", "Origin: https://x.untrusted.example\r\n").as_bytes(),
    );
    assert_eq!(r.status, 403);
    let mut c = Client::open_with(
        srv.addr,
        "/ws",
        "Origin: https://a.trusted.example\r\n",
        b"",
    );
    c.text("ok");
    assert_eq!(c.recv_text(), "ok");
    srv.stop().unwrap();
}

#[test]
fn the_application_closes_and_a_panicking_session_closes_with_1011() {
    let (srv, rx) = echo_server(Upgrader::new());
    let mut c = Client::open(srv.addr, "/ws");
    c.text("close-please");
    assert_eq!(next(&rx), Seen::Open);
    // The server's close (its code), answered by us; the session hears its own code.
    let code = c.server_close();
    assert_eq!(code, CloseCode(4001));
    let mut close = Vec::new();
    frame::encode_close(&mut close, Some(code), "", Some(MASK));
    c.s.write_all(&close).unwrap();
    c.expect_eof();
    assert_eq!(next(&rx), Seen::Msg(Message::Text("close-please".into())));
    assert_eq!(next(&rx), Seen::Close(4001, "as asked".into()));

    let mut c = Client::open(srv.addr, "/ws");
    c.text("panic");
    let code = c.server_close();
    assert_eq!(code, CloseCode::INTERNAL);
    srv.stop().unwrap();
}

/// On "block", waits for the test's go-ahead (a session stuck in a call), then sends;
/// reports that send's result and the close code.
struct Stuck {
    gate: mpsc::Receiver<()>,
    sent: mpsc::Sender<Result<(), SendError>>,
    closed: mpsc::Sender<u16>,
}

impl Session for Stuck {
    fn on_message(&mut self, ws: &Sender, msg: Message) {
        if msg == Message::Text("block".into()) {
            let _ = self.gate.recv_timeout(Duration::from_secs(20));
            let _ = self.sent.send(ws.text("late"));
        } else {
            let _ = ws.send(msg);
        }
    }
    fn on_close(&mut self, _ws: &Sender, code: CloseCode, _reason: &str) {
        let _ = self.closed.send(code.0);
    }
}

/// The client's close is answered once the session has handled what came before it — but
/// a session stuck in a call is not waited for beyond the linger deadline (2 s): the
/// answer goes out then (after what it had queued), its later sends fail, and it still
/// hears its close when it returns.
#[test]
fn a_clients_close_waits_for_its_session_no_longer_than_the_linger_deadline() {
    let (gate_tx, gate_rx) = mpsc::channel();
    let (sent_tx, sent_rx) = mpsc::channel();
    let (closed_tx, closed_rx) = mpsc::channel();
    let parts = Mutex::new(Some((gate_rx, sent_tx, closed_tx)));
    let mut router = Router::new();
    router.get("/ws", move |req: &mut Request| {
        let (gate, sent, closed) = parts.lock().unwrap().take().expect("one connection");
        Upgrader::new().upgrade(req, Stuck { gate, sent, closed })
    });
    let srv = TestServer::start(router);
    let mut c = Client::open(srv.addr, "/ws");
    c.text("first");
    assert_eq!(c.recv(), Some(Message::Text("first".into())));
    // Back to back: the session is stuck on the first when the close arrives.
    c.text("block");
    let start = Instant::now();
    c.close(CloseCode::NORMAL);
    assert_eq!(c.server_close(), CloseCode::NORMAL);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "the answer came after {waited:?}, not at the linger deadline"
    );
    c.expect_eof();
    gate_tx.send(()).unwrap();
    assert_eq!(
        sent_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        Err(SendError::Closed)
    );
    assert_eq!(
        closed_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        CloseCode::NORMAL.0
    );
    srv.stop().unwrap();
}

/// Floods its client on "flood" and reports how the sends ended.
struct Flood(mpsc::Sender<Result<usize, SendError>>, mpsc::Sender<u16>);

impl Session for Flood {
    fn on_message(&mut self, ws: &Sender, _msg: Message) {
        let piece = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        let result = loop {
            // 1 GiB at most: far past any socket buffer, so the bound must be what stops it.
            if sent == 16 * 1024 {
                break Ok(sent);
            }
            match ws.binary(&piece) {
                Ok(()) => sent += 1,
                Err(e) => break Err(e),
            }
        };
        let _ = self.0.send(result.map(|_| sent));
    }
    fn on_close(&mut self, _ws: &Sender, code: CloseCode, _reason: &str) {
        let _ = self.1.send(code.0);
    }
}

#[test]
fn a_client_that_stops_reading_is_disconnected_not_buffered() {
    let (res_tx, res_rx) = mpsc::channel();
    let (close_tx, close_rx) = mpsc::channel();
    let (res_tx, close_tx) = (Mutex::new(res_tx), Mutex::new(close_tx));
    let mut router = Router::new();
    router.get("/flood", move |req: &mut Request| {
        let s = Flood(
            res_tx.lock().unwrap().clone(),
            close_tx.lock().unwrap().clone(),
        );
        Upgrader::new().send_queue_bytes(256 * 1024).upgrade(req, s)
    });
    router.get("/plain", |_: &mut Request| Response::text("plain\n"));
    let srv = TestServer::start(router);
    let mut c = Client::open(srv.addr, "/flood");
    c.text("go"); // and never read again
    let r = res_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(
        r,
        Err(SendError::Full),
        "the queue bound must stop the flood"
    );
    assert_eq!(
        close_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        CloseCode::ABNORMAL.0
    );
    let t = srv.handle().telemetry().snapshot();
    let overflow = t
        .closed
        .iter()
        .find(|(r, _)| *r == "ws_overflow")
        .unwrap()
        .1;
    assert_eq!(overflow, 1, "{:?}", t.closed);
    let r = roundtrip(srv.addr, b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    drop(c);
    srv.stop().unwrap();
}

/// Sends "before", then one message larger than the whole send queue; reports the
/// second send's result and the close code.
struct TooBig(mpsc::Sender<Result<(), SendError>>, mpsc::Sender<u16>);

impl Session for TooBig {
    fn on_message(&mut self, ws: &Sender, _msg: Message) {
        let _ = ws.text("before");
        let _ = self.0.send(ws.binary(&vec![7u8; 1 << 20]));
    }
    fn on_close(&mut self, _ws: &Sender, code: CloseCode, _reason: &str) {
        let _ = self.1.send(code.0);
    }
}

/// A message the session answers with stays within the queue's bound: the bound is at
/// least `max_message` + 14, so a message as large as the largest accepted fits an empty
/// queue. One larger than the whole bound is refused (`TooBig`, not `Full`: the client
/// did nothing wrong), and the client gets what was queued before it, then a close 1009
/// — not a connection dropped without a close frame.
#[test]
fn a_message_larger_than_the_send_queue_is_refused_with_a_close_1009() {
    let (res_tx, res_rx) = mpsc::channel();
    let (close_tx, close_rx) = mpsc::channel();
    let (res_tx, close_tx) = (Mutex::new(res_tx), Mutex::new(close_tx));
    let mut router = Router::new();
    router.get("/big", move |req: &mut Request| {
        let s = TooBig(
            res_tx.lock().unwrap().clone(),
            close_tx.lock().unwrap().clone(),
        );
        Upgrader::new().upgrade(req, s) // a send queue of 256 KiB
    });
    let srv = TestServer::start(router);
    let mut c = Client::open(srv.addr, "/big");
    c.text("go");
    assert_eq!(
        res_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        Err(SendError::TooBig)
    );
    assert_eq!(c.recv(), Some(Message::Text("before".into())));
    let code = c.server_close();
    assert_eq!(code, CloseCode::TOO_BIG);
    c.close(code);
    c.expect_eof();
    assert_eq!(
        close_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        CloseCode::TOO_BIG.0
    );

    // Raising max_message raises the bound with it: the echo of a 512 KiB message fits.
    let (srv2, rx) = echo_server(Upgrader::new().max_message(1 << 20));
    let mut c = Client::open(srv2.addr, "/ws");
    assert_eq!(next(&rx), Seen::Open);
    let payload = vec![0x5au8; 512 * 1024];
    c.send(true, OpCode::Binary, &payload);
    assert_eq!(c.recv(), Some(Message::Binary(payload)));
    srv2.stop().unwrap();
    srv.stop().unwrap();
}

#[test]
fn a_silent_client_is_pinged_then_disconnected() {
    let (srv, rx) = echo_server(Upgrader::new().ping_interval(Duration::from_millis(200)));
    // One that answers pings stays (well past two intervals).
    let mut alive = Client::open(srv.addr, "/ws");
    alive
        .s
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut silent = Client::open(srv.addr, "/ws");
    let t0 = Instant::now();
    // The silent one reads (so the server's writes succeed) but never answers.
    let mut pings = 0;
    loop {
        match silent.recv() {
            Some(Message::Ping(_)) => pings += 1,
            Some(other) => panic!("{other:?}"),
            None => break,
        }
        // Keep the other one answering meanwhile.
        let mut b = [0u8; 64];
        if let Ok(n) = alive.s.read(&mut b) {
            assert!(n > 0, "the answering client was closed");
            alive.buf.extend_from_slice(&b[..n]);
            let (_, m) = alive.dec.decode(&alive.buf.clone());
            alive.buf.clear();
            if let Some(Ok(Message::Ping(p))) = m {
                alive.send(true, OpCode::Pong, &p);
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never disconnected");
    }
    let waited = t0.elapsed();
    assert!(pings >= 1, "closed without a ping first");
    assert!(
        waited >= Duration::from_millis(300),
        "closed after only {waited:?}"
    );
    let t = srv.handle().telemetry().snapshot();
    let timeouts = t.closed.iter().find(|(r, _)| *r == "ws_timeout").unwrap().1;
    assert_eq!(timeouts, 1, "{:?}", t.closed);
    // The answering client is still served.
    alive.s.set_read_timeout(None).unwrap();
    alive.text("still here");
    loop {
        match alive.recv() {
            Some(Message::Ping(p)) => alive.send(true, OpCode::Pong, &p),
            Some(Message::Text(t)) => {
                assert_eq!(t, "still here");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    drop(rx);
    srv.stop().unwrap();
}

#[test]
fn the_drain_closes_every_websocket_with_1001() {
    let (srv, rx) = echo_server(Upgrader::new());
    let mut clients: Vec<Client> = (0..20).map(|_| Client::open(srv.addr, "/ws")).collect();
    for _ in 0..20 {
        assert_eq!(next(&rx), Seen::Open);
    }
    let handle_stop = std::thread::spawn(move || srv.stop());
    for c in &mut clients {
        let code = c.server_close();
        assert_eq!(code, CloseCode::GOING_AWAY);
        let mut close = Vec::new();
        frame::encode_close(&mut close, Some(code), "", Some(MASK));
        c.s.write_all(&close).unwrap();
        c.expect_eof();
    }
    handle_stop.join().unwrap().unwrap();
    for _ in 0..20 {
        assert_eq!(next(&rx), Seen::Close(1001, "server shutting down".into()));
    }
}

// ---- examples/chat with real clients ---------------------------------------------------

fn start_chat(envs: &[(&str, &str)]) -> (ChildGuard, SocketAddr) {
    let port = free_port();
    let mut cmd = Command::new(built_binary("chat", true));
    cmd.env("H1_ADDR", format!("127.0.0.1:{port}"))
        .env_remove("CHAT_ORIGINS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = ChildGuard(cmd.spawn().expect("spawn examples/chat"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(
        wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
        "chat did not start listening"
    );
    (child, addr)
}

/// `Threads:` and `VmRSS:` (KiB) of a process.
fn proc_status(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("Threads:"), field("VmRSS:"))
}

#[test]
fn a_thousand_chat_clients_on_two_workers_cost_no_thread_each() {
    const N: usize = 1000;
    let (chat, addr) = start_chat(&[("H1_WORKERS", "2"), ("RUST_LOG", "warn")]);
    let pid = chat.0.id();
    let mut first = Client::open(addr, "/ws?name=first");
    assert_eq!(first.recv_text(), "* first joined");
    let (threads_before, rss_before) = proc_status(pid);
    let mut clients = Vec::with_capacity(N);
    for i in 0..N {
        let c = Client::open(addr, &format!("/ws?name=c{i}"));
        clients.push(c);
    }
    // Everyone hears every later join; wait for the last one at the first client.
    loop {
        if first.recv_text() == format!("* c{} joined", N - 1) {
            break;
        }
    }
    let (threads, rss) = proc_status(pid);
    first.text("hello, room");
    let want = "first: hello, room";
    let t0 = Instant::now();
    for (i, c) in clients.iter_mut().enumerate() {
        // Skip the join announcements of those who came after.
        loop {
            let t = c.recv_text();
            if t == want {
                break;
            }
            assert!(t.ends_with("joined"), "client {i}: {t}");
        }
    }
    let spread = t0.elapsed();
    assert_eq!(
        threads, threads_before,
        "{N} WebSockets must not add threads ({threads_before} before, {threads} after)"
    );
    let per_conn = (rss.saturating_sub(rss_before)) * 1024 / N as u64;
    eprintln!(
        "{N} chat clients: {threads} threads, RSS {rss_before} KiB -> {rss} KiB \
         ({per_conn} bytes per connection); one broadcast reached all in {spread:?}"
    );
    // Generous: the decoder and the slot are a few hundred bytes; buffers are pooled.
    assert!(per_conn < 16 * 1024, "{per_conn} bytes per WebSocket");
    drop(clients);
    drop(first);
}

#[test]
fn python_websockets_clients_chat_through_the_example() {
    require_tool("python3");
    let (_chat, addr) = start_chat(&[]);
    let script = r#"
import asyncio, sys
try:
    import websockets
except ImportError:
    sys.exit("python3 has no 'websockets' package (make test-deps installs it)")
url = sys.argv[1]
async def main():
    async with websockets.connect(url + "?name=alice") as a:
        assert await a.recv() == "* alice joined"
        async with websockets.connect(url + "?name=bob") as b:
            assert await a.recv() == "* bob joined"
            assert await b.recv() == "* bob joined"
            await b.send("hi alice")
            assert await a.recv() == "bob: hi alice"
            assert await b.recv() == "bob: hi alice"
            await asyncio.wait_for(await a.ping(b"x"), 5)
            await b.send(b"binary")
            try:
                await asyncio.wait_for(b.recv(), 5)
                sys.exit("a binary message must close the connection")
            except websockets.ConnectionClosed as e:
                assert e.rcvd.code == 1003, e.rcvd
        assert await a.recv() == "* bob left"
    print("ok")
asyncio.run(asyncio.wait_for(main(), 30))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &format!("ws://{addr}/ws")])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "python websockets: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigterm_closes_chat_members_with_1001_and_the_example_exits_0() {
    let (mut chat, addr) = start_chat(&[]);
    let mut a = Client::open(addr, "/ws?name=a");
    assert_eq!(a.recv_text(), "* a joined");
    let pid = chat.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let code = loop {
        match a.recv() {
            Some(Message::Close(c)) => break c.unwrap().0,
            Some(Message::Text(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(code, CloseCode::GOING_AWAY);
    let mut close = Vec::new();
    frame::encode_close(&mut close, Some(code), "", Some(MASK));
    a.s.write_all(&close).unwrap();
    a.expect_eof();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = chat.0.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "chat did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[path = "support/browser.rs"]
#[cfg(feature = "cli")]
mod browser;

#[cfg(feature = "cli")]
#[test]
fn a_browser_joins_the_chat_sends_and_receives_the_broadcast() {
    let (_chat, addr) = start_chat(&[]);
    let mut other = Client::open(addr, "/ws?name=watcher");
    assert_eq!(other.recv_text(), "* watcher joined");
    let artifacts = browser::artifacts_dir();
    let b = browser::Browser::start(&artifacts);
    b.navigate(&format!("http://{addr}/?name=browser"));
    b.wait_for(
        "the page's WebSocket to open",
        Duration::from_secs(20),
        "return document.body.dataset.state === 'open'",
    );
    assert_eq!(other.recv_text(), "* browser joined");
    b.type_into("#text", "hello from chromium");
    b.click("button");
    // The broadcast reaches the other member and the page itself.
    assert_eq!(other.recv_text(), "browser: hello from chromium");
    b.wait_for(
        "the page to show its own message",
        Duration::from_secs(10),
        "return [...document.querySelectorAll('.msg')].some(e => e.textContent === 'browser: hello from chromium')",
    );
    other.text("hello, browser");
    assert_eq!(other.recv_text(), "watcher: hello, browser");
    let shown = b.wait_for(
        "the page to show the other member's message",
        Duration::from_secs(10),
        "return [...document.querySelectorAll('.msg')].map(e => e.textContent).join('\\n').includes('watcher: hello, browser') && document.getElementById('log').textContent",
    );
    let png = b.screenshot();
    std::fs::write(artifacts.join("chat-page.png"), &png).unwrap();
    assert!(
        shown.as_str().unwrap().contains("* browser joined"),
        "{shown}"
    );
    // The page closes its WebSocket: the close handshake completes (the page sees its
    // own code) and the room hears it.
    b.script("ws.close(1000, 'bye'); return true");
    assert_eq!(other.recv_text(), "* browser left");
    let code = b.wait_for(
        "the page's WebSocket to close",
        Duration::from_secs(10),
        "return document.body.dataset.closeCode",
    );
    assert_eq!(code, "1000");
}

#[test]
fn an_upgrade_asked_with_connection_close_gets_503() {
    // A handshake whose connection is to close cannot switch protocols.
    let (srv, _rx) = echo_server(Upgrader::new());
    let req = handshake("/ws", "").replace("Connection: Upgrade", "Connection: Upgrade, close");
    let r = roundtrip(srv.addr, req.as_bytes());
    assert_eq!(r.status, 503, "{}", r.text());
    srv.stop().unwrap();
}

#[test]
fn messages_in_progress_count_against_the_memory_budget() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let mut router = Router::new();
    router.get("/ws", move |req: &mut Request| {
        let tx = tx.lock().unwrap().clone();
        Upgrader::new().max_message(1 << 20).upgrade(req, Echo(tx))
    });
    let mut cfg = test_config();
    cfg.max_buffered_bytes = 100 * 1024;
    let srv = TestServer::with_config(cfg, router);
    let mut a = Client::open(srv.addr, "/ws");
    let mut b = Client::open(srv.addr, "/ws");
    let part = vec![b'a'; 60 * 1024];
    a.send(false, OpCode::Binary, &part);
    // Let the loop take a's fragment before b's.
    std::thread::sleep(Duration::from_millis(200));
    b.send(false, OpCode::Binary, &part);
    assert_eq!(b.expect_close(), CloseCode(1013));
    // a was within the budget: its message completes.
    a.send(true, OpCode::Continuation, b"end");
    match a.recv() {
        Some(Message::Binary(m)) => assert_eq!(m.len(), 60 * 1024 + 3),
        other => panic!("{other:?}"),
    }
    drop(rx);
    srv.stop().unwrap();
}
