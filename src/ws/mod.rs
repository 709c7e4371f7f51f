//! WebSocket (RFC 6455), sans-I/O: the opening handshake's checks and its `101` answer
//! ([`handshake`]), frame encoding ([`frame`]) and an incremental [`Decoder`] that turns
//! the bytes of a connection, fed as they arrive, into whole [`Message`]s.
//!
//! Nothing here reads or writes a socket, reads a clock or picks a random number: the
//! caller feeds bytes in, takes messages out, writes the frames it encodes, and supplies
//! the masking keys of a client. `docs/WEBSOCKET.md` lists every check and the status or
//! close code each bad input gets.
//!
//! ```
//! use h1server::ws::{frame::{self, OpCode}, Decoder, Message, Role};
//!
//! // A client's masked "Hello" (RFC 6455 §5.7), fed to a server's decoder in two pieces.
//! let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let mut dec = Decoder::new(Role::Server, 1 << 20);
//! assert_eq!(dec.decode(&wire[..4]), (4, None));
//! let (used, msg) = dec.decode(&wire[4..]);
//! assert_eq!((used, msg), (7, Some(Ok(Message::Text("Hello".into())))));
//!
//! // The server's answer is not masked.
//! let mut out = Vec::new();
//! frame::encode(&mut out, true, OpCode::Text, b"Hello", None);
//! assert_eq!(out, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
//! ```

mod decode;
pub mod frame;
pub mod handshake;
pub(crate) mod session;

use std::fmt;

pub use decode::Decoder;
pub use session::{Origins, SendError, Sender, Session, Upgrader};

/// Which end of the connection a [`Decoder`] serves: it decides the masking the peer's
/// frames must have (RFC 6455 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Decodes a client's frames, which must be masked.
    Server,
    /// Decodes a server's frames, which must not be masked.
    Client,
}

/// A complete message, or a control frame, as the [`Decoder`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message, its fragments joined; checked to be UTF-8.
    Text(String),
    /// A binary message, its fragments joined.
    Binary(Vec<u8>),
    /// A ping (at most 125 bytes). Answer it with a pong carrying the same payload:
    /// `frame::encode(&mut out, true, OpCode::Pong, &payload, mask)` (RFC 6455 §5.5.3).
    Ping(Vec<u8>),
    /// A pong (at most 125 bytes), solicited or not.
    Pong(Vec<u8>),
    /// The peer's close: its status code and reason, or `None` for an empty close frame
    /// (a receiver reports that as [`CloseCode::NO_STATUS`]). Answer with a close frame
    /// ([`frame::encode_close`], echoing the code is usual) and close the connection; the
    /// decoder ignores anything after it.
    Close(Option<(CloseCode, String)>),
}

/// A close status code (RFC 6455 §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (a server shutting down, a page left).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL: CloseCode = CloseCode(1002);
    /// 1003: a kind of data the endpoint does not accept (e.g. binary to a text-only one).
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Reported locally, never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection dropped without a close frame. Reported locally, never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data does not match its type (a text message that is not UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message is too big to process.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL: CloseCode = CloseCode(1011);

    /// True when the code may appear in a close frame on the wire (RFC 6455 §7.4.1, §7.4.2
    /// and the IANA registry): 1000–1003, 1007–1014 and 3000–4999. 0–999 are unused;
    /// 1004 is reserved; 1005, 1006 and 1015 are for local reports only; 1016–2999 are
    /// reserved for the protocol and none is registered; 5000 and up are out of range.
    pub fn is_valid(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why the [`Decoder`] gave up: the close code to send the peer (in a close frame built
/// with [`frame::encode_close`]) and a short reason for it and for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    code: CloseCode,
    reason: &'static str,
}

impl ProtocolError {
    pub(crate) const fn new(code: CloseCode, reason: &'static str) -> Self {
        ProtocolError { code, reason }
    }

    /// The close code to send: [`CloseCode::PROTOCOL`] (1002),
    /// [`CloseCode::INVALID_PAYLOAD`] (1007) or [`CloseCode::TOO_BIG`] (1009).
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// What was wrong, in a few words (ASCII, at most 123 bytes: it fits a close frame).
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "websocket {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::CloseCode;

    #[test]
    fn close_codes_valid_on_the_wire() {
        // (code, may be sent) — RFC 6455 §7.4 and the IANA registry.
        let table: &[(u16, bool)] = &[
            (0, false),
            (999, false),
            (1000, true),
            (1001, true),
            (1002, true),
            (1003, true),
            (1004, false),
            (1005, false),
            (1006, false),
            (1007, true),
            (1008, true),
            (1009, true),
            (1010, true),
            (1011, true),
            (1012, true),
            (1013, true),
            (1014, true),
            (1015, false),
            (1016, false),
            (2000, false),
            (2999, false),
            (3000, true),
            (3999, true),
            (4000, true),
            (4999, true),
            (5000, false),
            (65535, false),
        ];
        for &(code, ok) in table {
            assert_eq!(CloseCode(code).is_valid(), ok, "{code}");
        }
    }
}
