//! The I/O seam under a connection, and the right to write it.
//!
//! The connection logic reads, writes and shuts its socket down only through
//! [`Transport`], so `conn/tests.rs` drives every phase from byte scripts (short reads,
//! `WouldBlock`, EOF and resets at any point) without a socket. Nothing here parses or
//! decides; it moves bytes.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

/// What a connection needs from its socket. Methods take `&self`, as `&TcpStream`'s do,
/// so the loop (reading) and the holder of the [`WriteRight`] (writing) can use one
/// socket from two threads without a lock.
pub(crate) trait Transport: Send + Sync + 'static {
    /// A non-blocking read: `WouldBlock` when nothing is there, `Ok(0)` at EOF.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// A non-blocking write: `WouldBlock` when the socket is full.
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Shuts one or both directions down.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;

    // A transport with a handshake and records of its own (TLS, `crate::tls`) needs three
    // more things; plain TCP has none of them, and these defaults cost it nothing (the
    // loop's `Conn<T>` calls them statically, so they inline to constants).

    /// Whether application bytes flow (a TLS handshake is over, or there is none).
    fn is_ready(&self) -> bool {
        true
    }

    /// Moves the transport's own handshake on: reads and writes what it can without
    /// blocking, and says where it stands.
    fn handshake(&self) -> Handshake {
        Handshake::Done
    }

    /// Pushes out bytes the transport holds itself — TLS records encrypted from plaintext
    /// that `write` accepted, which the full socket did not take. Returns how many went
    /// out, and whether none is left.
    fn flush_pending(&self) -> io::Result<(usize, bool)> {
        Ok((0, true))
    }

    /// Whether the peer's end of input has been seen by the transport but not yet
    /// returned by `read` (a TLS `close_notify` that came after plaintext still to be
    /// read). A short read then does not mean "drained, a new edge will come": the
    /// `Ok(0)` is still to be read, and no event will announce it.
    fn eof_pending(&self) -> bool {
        false
    }

    /// Whether the transport holds bytes of input that `read` cannot return yet (part of
    /// a TLS record, which is decrypted only once complete). A request has then begun
    /// arriving although `read` gave nothing: the connection is not idle.
    fn input_pending(&self) -> bool {
        false
    }

    /// The connection is about to close with its output cut off (an aborted stream, a
    /// write timeout, a forced stop): from here on, shutting down or dropping the
    /// transport must not signal an orderly end (TLS: no `close_notify`, RFC 8446 §6.1).
    fn mark_aborted(&self) {}

    /// The connection is about to close cut off in the middle of an answer whose end only
    /// the close can mark (a body relayed close-delimited, to an HTTP/1.0 client): the
    /// close must be one the client cannot take for that end. RFC 9112 §8: such a response
    /// "is considered complete unless an error was indicated by the underlying
    /// connection". Plain TCP closes with a reset (`SO_LINGER` 0), TLS without
    /// `close_notify` (its "incomplete close"). Implies [`mark_aborted`](Self::mark_aborted).
    fn reset_on_close(&self) {
        self.mark_aborted();
    }
}

/// Where a transport's handshake stands ([`Transport::handshake`]).
/// Only `Done` exists without the `tls` feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(crate) enum Handshake {
    /// Over (or none): application bytes flow.
    Done,
    /// Waiting for the peer (or for room in the socket).
    Pending,
    /// The first bytes were a plaintext HTTP request, not a TLS record: the transport
    /// answered `400` in plaintext and now only discards input (as Go and nginx do).
    PlainHttp,
    /// The peer closed before the handshake was over.
    Eof,
    /// The handshake failed (not TLS, no common parameters, a bad message, I/O error).
    Failed,
}

impl Transport for mio::net::TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        mio::net::TcpStream::shutdown(self, how)
    }
}

/// The right to write one connection's socket.
///
/// Exactly one exists per connection, made when it is accepted. The connection holds it
/// while the loop writes; a batch handed to a worker carries it, so the worker can write
/// the answers itself, and the loop cannot write that connection (it has no right to
/// write with) until the batch comes back with it. A close requested meanwhile waits for
/// its return (`Phase::Dispatched`).
pub(crate) struct WriteRight(Arc<dyn Transport>);

impl WriteRight {
    /// The right for a new connection's socket.
    pub fn new(sock: Arc<dyn Transport>) -> Self {
        WriteRight(sock)
    }

    /// Writes what the socket takes now, without blocking. Returns how many bytes went
    /// out (less than `out.len()` when the socket is full).
    pub fn write_now(&self, out: &[u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            match self.0.write(&out[n..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Pushes out what the transport itself still holds (see
    /// [`Transport::flush_pending`]); `(bytes pushed, nothing left)`.
    pub fn flush_pending(&self) -> io::Result<(usize, bool)> {
        self.0.flush_pending()
    }
}

impl fmt::Debug for WriteRight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteRight")
    }
}
