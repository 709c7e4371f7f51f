//! A minimal WebSocket client on the crate's own codec, for the tests that speak to a
//! loop-served WebSocket over a real socket (`tests/websocket.rs`, `tests/ws_review.rs`).
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use h1server::ws::frame::{self, OpCode};
use h1server::ws::{CloseCode, Decoder, Message, Role};

use super::support::connect;

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub struct Client {
    pub s: TcpStream,
    pub dec: Decoder,
    /// Bytes read and not yet decoded.
    pub buf: Vec<u8>,
}

pub fn handshake(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

impl Client {
    /// Opens `path` and checks the `101`; `then` is written with the handshake.
    pub fn open_with(addr: SocketAddr, path: &str, extra: &str, then: &[u8]) -> Client {
        let mut s = connect(addr);
        let mut req = handshake(path, extra).into_bytes();
        req.extend_from_slice(then);
        s.write_all(&req).unwrap();
        let (head, rest) = read_head(&mut s);
        assert!(head.starts_with("HTTP/1.1 101 "), "not switched: {head}");
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("upgrade: websocket"), "{head}");
        assert!(lower.contains("connection: upgrade"), "{head}");
        assert!(
            head.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}")),
            "{head}"
        );
        Client {
            s,
            dec: Decoder::new(Role::Client, 16 << 20),
            buf: rest,
        }
    }

    pub fn open(addr: SocketAddr, path: &str) -> Client {
        Client::open_with(addr, path, "", b"")
    }

    pub fn send(&mut self, fin: bool, op: OpCode, payload: &[u8]) {
        let mut out = Vec::new();
        frame::encode(&mut out, fin, op, payload, Some(MASK));
        self.s.write_all(&out).unwrap();
    }

    pub fn text(&mut self, t: &str) {
        self.send(true, OpCode::Text, t.as_bytes());
    }

    /// Sends a close frame with `code`.
    pub fn close(&mut self, code: CloseCode) {
        let mut out = Vec::new();
        frame::encode_close(&mut out, Some(code), "", Some(MASK));
        self.s.write_all(&out).unwrap();
    }

    /// The server's close frame (its code), skipping pings and pongs; the connection stays
    /// open for our answer.
    pub fn server_close(&mut self) -> CloseCode {
        loop {
            match self.recv() {
                Some(Message::Close(cl)) => return cl.map_or(CloseCode::NO_STATUS, |c| c.0),
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => panic!("expected the server's close, got {other:?}"),
            }
        }
    }

    /// The next message or control frame; `None` at EOF.
    pub fn recv(&mut self) -> Option<Message> {
        loop {
            if !self.buf.is_empty() {
                let (used, m) = self.dec.decode(&self.buf);
                self.buf.drain(..used);
                match m {
                    Some(Ok(m)) => return Some(m),
                    Some(Err(e)) => panic!("the server broke the protocol: {e}"),
                    None => {}
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.s.read(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    pub fn recv_text(&mut self) -> String {
        match self.recv() {
            Some(Message::Text(t)) => t,
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Expects the server's close frame (its code), then the end of the connection.
    pub fn expect_close(&mut self) -> CloseCode {
        let code = loop {
            match self.recv() {
                Some(Message::Close(c)) => break c.map_or(CloseCode::NO_STATUS, |c| c.0),
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        self.expect_eof();
        code
    }

    pub fn expect_eof(&mut self) {
        let mut b = [0u8; 256];
        loop {
            match self.s.read(&mut b) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
                Err(e) => panic!("expected EOF, got {e}"),
            }
        }
    }
}

/// The server's close frame (its code), skipping pings; the connection stays open for
/// our answer.
pub fn server_close(c: &mut Client) -> CloseCode {
    loop {
        match c.recv() {
            Some(Message::Close(cl)) => return cl.expect("a close code").0,
            Some(Message::Ping(_)) => {}
            other => panic!("expected the server's close, got {other:?}"),
        }
    }
}

/// Reads a response head; returns it and the bytes after it.
pub fn read_head(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut raw = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        let n = s.read(&mut b).expect("read the answer");
        assert!(
            n > 0,
            "closed before the answer: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&b[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..i + 4]).into_owned();
            return (head, raw[i + 4..].to_vec());
        }
    }
}
