//! SIGINT/SIGTERM as readable bytes on a self-pipe registered in the event loop: the
//! first signal starts the graceful drain (or lets one started from code go on), a second
//! one stops the server at once.
//!
//! The signal handler only writes a byte (async-signal-safe, done by signal-hook); all
//! decisions happen on the loop thread. Nothing here blocks.

use std::io::{self, Read};
use std::os::unix::net::UnixStream;

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

/// The read end of the signal pipe and the registrations to undo on drop.
pub(crate) struct SignalPipe {
    /// Registered with the loop's poll under the signal token.
    pub rx: mio::net::UnixStream,
    ids: Vec<SigId>,
    /// Signals read so far (the second one forces the stop).
    received: usize,
}

impl SignalPipe {
    /// Routes SIGINT and SIGTERM to the pipe.
    pub fn install() -> io::Result<SignalPipe> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        let mut ids = Vec::with_capacity(2);
        for sig in [SIGINT, SIGTERM] {
            ids.push(signal_hook::low_level::pipe::register(
                sig,
                tx.try_clone()?,
            )?);
        }
        Ok(SignalPipe {
            rx: mio::net::UnixStream::from_std(rx),
            ids,
            received: 0,
        })
    }

    /// How many signals arrived since the last call.
    pub fn take(&mut self) -> usize {
        let mut buf = [0u8; 16];
        let mut n = 0;
        loop {
            match self.rx.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.received += n;
        n
    }

    /// Whether a second signal has arrived (counting every signal read so far).
    pub fn is_second(&self) -> bool {
        self.received > 1
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
