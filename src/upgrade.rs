//! Protocol upgrades (RFC 9110 §7.8): after a handler's answer carrying an upgrade
//! callback is written, the connection leaves HTTP — its socket and the bytes already
//! read past the request head go to the callback.
//!
//! Nothing here reads or writes the socket; the event loop hands it over and a worker
//! calls the callback.

use std::fmt;
use std::net::{SocketAddr, TcpStream};

/// A connection handed over by an upgrade: the socket (in blocking mode) and the bytes
/// the server had already read after the request that asked for the upgrade — the
/// client may send its first bytes of the new protocol together with that request.
pub struct Upgraded {
    /// The connection, no longer watched by the server: yours to read, write and close.
    pub stream: TcpStream,
    /// Bytes of the new protocol that arrived with (or right after) the request head:
    /// read these before reading `stream`.
    pub read_ahead: Vec<u8>,
    /// The client's address.
    pub peer: SocketAddr,
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("peer", &self.peer)
            .field("read_ahead", &self.read_ahead.len())
            .finish()
    }
}

/// What runs with an upgraded connection.
pub(crate) type OnUpgrade = Box<dyn FnOnce(Upgraded) + Send + 'static>;

/// Who takes the connection over once a switching answer is written.
pub(crate) enum Takeover {
    /// A callback, on a worker, given the socket ([`Response::upgrade`](crate::Response::upgrade)).
    Callback(OnUpgrade),
    /// A WebSocket session the event loop serves ([`crate::ws::Upgrader`]).
    #[cfg(feature = "ws")]
    WebSocket(Box<crate::ws::session::Start>),
}
