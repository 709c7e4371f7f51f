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
}

impl fmt::Debug for WriteRight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteRight")
    }
}
