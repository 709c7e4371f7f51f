//! The socket under a connection of the event loop: plain TCP, or TLS over it (feature
//! `tls`). Nothing here parses or decides; it picks the transport.
//!
//! An enum, not a trait object: the loop's `Conn<Sock>` reads through a `match` the
//! compiler sees through — without the `tls` feature it has one arm and compiles to the
//! plain socket calls, so a TLS-free build pays nothing for the seam.

use std::io;
use std::net::Shutdown;

use super::transport::{Handshake, Transport};

/// A connection's socket, as the event loop holds it.
pub(crate) enum Sock {
    /// HTTP over TCP.
    Plain(mio::net::TcpStream),
    /// HTTP over TLS over TCP (`crate::tls`). Boxed: rustls's state is about a kilobyte,
    /// which a plain connection's allocation must not carry.
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream>),
}

impl Sock {
    /// The TCP socket, to register it with (and deregister it from) the poll.
    pub fn tcp_mut(&mut self) -> &mut mio::net::TcpStream {
        match self {
            Sock::Plain(s) => s,
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.tcp_mut(),
        }
    }

    /// The plain socket, for a hand-over that leaves the server (an upgrade): `None` for
    /// TLS, whose records only this process can read and write.
    pub fn into_plain(self) -> Option<mio::net::TcpStream> {
        match self {
            Sock::Plain(s) => Some(s),
            #[cfg(feature = "tls")]
            Sock::Tls(_) => None,
        }
    }
}

impl Transport for Sock {
    #[inline]
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Plain(s) => Transport::read(s, buf),
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.read(buf),
        }
    }
    #[inline]
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Plain(s) => Transport::write(s, buf),
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.write(buf),
        }
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Sock::Plain(s) => Transport::shutdown(s, how),
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.shutdown(how),
        }
    }
    #[inline]
    fn is_ready(&self) -> bool {
        match self {
            Sock::Plain(_) => true,
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.is_ready(),
        }
    }
    fn handshake(&self) -> Handshake {
        match self {
            Sock::Plain(_) => Handshake::Done,
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.handshake(),
        }
    }
    #[inline]
    fn flush_pending(&self) -> io::Result<(usize, bool)> {
        match self {
            Sock::Plain(_) => Ok((0, true)),
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.flush_pending(),
        }
    }
    #[inline]
    fn eof_pending(&self) -> bool {
        match self {
            Sock::Plain(_) => false,
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.eof_pending(),
        }
    }
    fn mark_aborted(&self) {
        match self {
            Sock::Plain(_) => {}
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.mark_aborted(),
        }
    }
    fn reset_on_close(&self) {
        match self {
            Sock::Plain(s) => {
                if let Err(e) = reset_on_close(s) {
                    log::debug!("SO_LINGER 0 not set: {e}");
                }
            }
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.mark_aborted(),
        }
    }
    #[inline]
    fn input_pending(&self) -> bool {
        match self {
            Sock::Plain(_) => false,
            #[cfg(feature = "tls")]
            Sock::Tls(t) => t.input_pending(),
        }
    }
}

/// Makes the close of `s` a reset (RST) rather than an orderly end (FIN): `SO_LINGER` on
/// with a time of 0 (socket(7)). What is still unsent is discarded, as it would be for a
/// cut-off answer anyway. std and mio have no safe call for it (`TcpStream::set_linger`
/// is unstable).
#[allow(unsafe_code)]
fn reset_on_close(s: &mio::net::TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is `s`'s, open for the whole call (`s` is borrowed); the
    // option value points to a live `linger` of the size passed with it.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
