//! A connection before its first request: the transport's own handshake (TLS) under
//! its deadline, and the plaintext-HTTP-on-the-TLS-port refusal.
//!
//! Runs on the loop thread and never blocks: the handshake advances on each readable
//! (or writable) event, with `tls_handshake_timeout` on the wheel, so a client that
//! connects and never sends a ClientHello is closed at that deadline and never reaches
//! a worker. Plain TCP has no handshake: `is_ready()` is a constant `true` for it.

use std::net::Shutdown;

use log::debug;

use super::transport::Handshake;
use super::{Close, Conn, Deadline, Phase, Transport};
use crate::event_loop::Ctx;

impl<T: Transport> Conn<T> {
    /// Arms a new connection's first deadline: the handshake's when its transport has
    /// one, else the request head's. One accepted while the drain begins (the listen
    /// backlog) gets no more than `header_read_timeout` for its handshake either
    /// ([`hurry_handshake`](Self::hurry_handshake)).
    pub fn arm_first_deadline(&mut self, ctx: &mut Ctx) {
        if self.io.is_ready() {
            self.arm(ctx, Deadline::Header, ctx.cfg.header_read_timeout);
        } else if ctx.draining {
            let after = ctx
                .cfg
                .tls_handshake_timeout
                .min(ctx.cfg.header_read_timeout);
            self.arm(ctx, Deadline::Handshake, after);
        } else {
            self.arm(ctx, Deadline::Handshake, ctx.cfg.tls_handshake_timeout);
        }
    }

    /// The drain begins. A connection still in its handshake has not sent its first
    /// request, and the drain keeps such a connection for `header_read_timeout` at most
    /// (`begin_drain`, as Go's `Shutdown` closes a connection still `StateNew` — TLS
    /// handshake included — 5 s on): its deadline becomes the earlier of the handshake's
    /// and `header_read_timeout` from now, and the head's deadline armed when the
    /// handshake ends does not extend it (`drive_handshake`).
    pub fn hurry_handshake(&mut self, ctx: &mut Ctx) {
        if !self.io.is_ready() {
            self.arm_within_header_time(ctx, Deadline::Handshake);
        }
    }

    /// Arms `kind` for the earlier of the read deadline already armed and
    /// `header_read_timeout` from now.
    fn arm_within_header_time(&mut self, ctx: &mut Ctx, kind: Deadline) {
        let due = ctx.due_after(ctx.cfg.header_read_timeout);
        match self.deadlines.read {
            // Already filed on the wheel (at or before `d`): only its kind changes.
            Some((d, _)) if d <= due => self.deadlines.read = Some((d, kind)),
            _ => self.arm(ctx, kind, ctx.cfg.header_read_timeout),
        }
    }

    /// Moves the handshake on. `Ok(true)`: it is over, read the request; `Ok(false)`:
    /// wait for the next event (or the lingering close of a refused plaintext request
    /// runs).
    pub(super) fn drive_handshake(&mut self, ctx: &mut Ctx) -> Result<bool, Close> {
        match self.io.handshake() {
            Handshake::Done => {
                // The head's deadline counts from the end of the handshake, as Go sets its
                // read deadlines after `Handshake` returns — except in a drain, which gave
                // the connection its time for handshake and head together.
                if ctx.draining {
                    self.arm_within_header_time(ctx, Deadline::Header);
                } else {
                    self.arm(ctx, Deadline::Header, ctx.cfg.header_read_timeout);
                }
                debug!("conn={} stage=tls_established", self.id);
                Ok(true)
            }
            Handshake::Pending => Ok(false),
            Handshake::Eof => Err(Close::PeerClosed),
            Handshake::Failed => Err(Close::TlsHandshakeFailed),
            Handshake::PlainHttp => {
                // The transport wrote `400` in plaintext; close the way an answered error
                // closes: our side shut, the request read and discarded until the client
                // closes or the linger deadline, so its unread bytes cannot turn the
                // close into a reset that destroys the answer (RFC 9112 §9.6).
                debug!("conn={} plain HTTP on the TLS port: 400, closing", self.id);
                let _ = self.io.shutdown(Shutdown::Write);
                self.phase = Phase::Closing;
                self.arm(ctx, Deadline::Linger, ctx.linger);
                self.discard_input(ctx).map(|()| false)
            }
        }
    }
}
