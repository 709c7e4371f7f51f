//! Accepting connections: binding with a deep backlog, socket options on every accepted
//! socket, and telling descriptor exhaustion (pause, retry) from other accept errors.
//!
//! It never blocks (the listener is non-blocking) and never decides about connections
//! beyond accepting them; the loop owns the max-connections gate and the pause.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Listen backlog. mio and std use 128, which drops SYNs under a connection burst (ab
/// without keep-alive opens ~20k connections a second); the kernel caps it at somaxconn.
pub(crate) const BACKLOG: i32 = 4096;

/// Binds `addr` (SO_REUSEADDR, as mio does) with a backlog of [`BACKLOG`].
pub(crate) fn bind(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let l = mio::net::TcpListener::bind(addr)?;
    set_backlog(&l, BACKLOG)?;
    Ok(l)
}

/// Calling listen(2) again on a listening socket only changes its backlog (Linux, BSD).
#[allow(unsafe_code)]
fn set_backlog(l: &mio::net::TcpListener, backlog: i32) -> io::Result<()> {
    // SAFETY: `listen` takes a descriptor and an integer and touches no memory of ours;
    // the descriptor is valid for the duration of the call because `l` is borrowed.
    let rc = unsafe { libc::listen(l.as_raw_fd(), backlog) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What one accept attempt gave.
pub(crate) enum Accepted {
    /// A new connection, already set up.
    Conn(mio::net::TcpStream, SocketAddr),
    /// Nothing more to accept now.
    Drained,
    /// Out of descriptors or kernel memory: stop accepting for a while (never spin).
    Exhausted(io::Error),
    /// The connection died before we got to it, or another transient error: go on.
    Skip(io::Error),
}

/// Accepts one connection and sets `TCP_NODELAY` on it (responses are written whole, so
/// Nagle would only add a delayed-ACK stall to pipelined or streamed answers).
pub(crate) fn accept(l: &mio::net::TcpListener) -> Accepted {
    loop {
        return match l.accept() {
            Ok((s, peer)) => {
                if let Err(e) = s.set_nodelay(true) {
                    log::debug!("TCP_NODELAY failed on a socket from {peer}: {e}");
                }
                Accepted::Conn(s, peer)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Accepted::Drained,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_exhaustion(&e) => Accepted::Exhausted(e),
            Err(e) => Accepted::Skip(e),
        };
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: resource exhaustion, not a broken listener.
fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
