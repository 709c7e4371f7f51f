//! A request body streamed to its handler's [`BodySink`](crate::BodySink): the loop hands
//! the sink one window of the body at a time, as a short job, and reads on only once the
//! sink has taken it — a slow uploader holds a window and no thread.
//!
//! Runs on the loop thread; never blocks, never runs user code (the sink runs on workers).

use super::{Close, Conn, Phase, Step, Transport};
use crate::event_loop::Ctx;
use crate::pool::{Job, Piece, UploadJob};

/// Why an upload is refused with 503 when its sink's memory is not in the budget.
const SINK_OVER_BUDGET: &str = "an upload's sink holds more than max_buffered_bytes has room for";

impl<T: Transport> Conn<T> {
    /// Hands the buffered body bytes to the sink when it is free (one piece out at a
    /// time: reading stops at the window until the sink has taken the piece).
    pub fn pump_upload(&mut self, ctx: &mut Ctx) -> Step {
        let Phase::Upload(u) = &mut self.phase else {
            return Ok(());
        };
        if u.sink.is_none() {
            return Ok(()); // a piece is out: its return brings us back
        }
        let avail = self.rbuf.as_ref().map_or(0, |b| b.len);
        let take = (avail as u64).min(u.remaining) as usize;
        if take == 0 {
            return if self.peer_eof {
                Err(Close::PeerClosedMidRequest)
            } else {
                Ok(())
            };
        }
        if ctx.jobs.is_full() {
            return self.stall_upload(ctx);
        }
        let rbuf = self.rbuf.as_ref().expect("bytes are buffered");
        let mut piece = ctx.bufs.take_write();
        piece.extend_from_slice(&rbuf.bytes[..take]);
        let job = UploadJob {
            loop_id: ctx.loop_id,
            token: self.token,
            gen_: self.gen_,
            conn_id: self.id,
            sink: u.sink.take().expect("checked above"),
            piece,
            last: u.remaining == take as u64,
            method: u.method,
            version: u.version,
            close: u.close,
            route: u.route.clone(),
        };
        // With several loops another one may have filled the queue since `is_full`:
        // the bytes stay buffered and the piece waits for room like any stalled job.
        if let Err(e) = ctx.jobs.try_send(Job::Upload(job)) {
            let Job::Upload(job) = e.into_inner() else {
                unreachable!("an upload piece was sent")
            };
            u.sink = Some(job.sink);
            ctx.bufs.put_write(job.piece);
            return self.stall_upload(ctx);
        }
        // The worker has the piece: it leaves the read buffer.
        u.remaining -= take as u64;
        self.consume_read(ctx, take);
        ctx.outstanding += 1;
        // The sink has the piece: its time is the handler's, not the client's, so no
        // read deadline runs until it is back (`on_piece` re-arms it).
        self.deadlines.read = None;
        if self.read_paused {
            // Room in the window again.
            self.read_paused = false;
            return self.on_readable(ctx, false);
        }
        Ok(())
    }

    /// The next piece waits for room in the job queue (retried from `ctx.stalled`). The
    /// client's bytes are here: the wait is the server's, so no read deadline runs (as
    /// while the sink has a piece); `on_piece` re-arms it once the piece is taken.
    fn stall_upload(&mut self, ctx: &mut Ctx) -> Step {
        ctx.stalled.push((self.token, self.gen_));
        self.deadlines.read = None;
        Ok(())
    }

    /// A sink took its piece and waits for the next.
    pub fn on_piece(&mut self, ctx: &mut Ctx, p: Piece) -> Step {
        ctx.bufs.put_write(p.buf);
        let Phase::Upload(u) = &mut self.phase else {
            ctx.jobs.abort_upload(p.sink);
            return Ok(());
        };
        u.sink = Some(p.sink);
        let growth = p.held.saturating_sub(u.held);
        if growth > 0 && !ctx.budget.try_take(growth) {
            // What the sink keeps (a form's fields) grew past the budget: N stalled
            // uploads must not hold more memory than any N buffered bodies could. (The
            // figure is the sink's, user code: checked, so one past any budget is
            // refused rather than overflowing the books.)
            self.abort_upload(ctx);
            return self.answer_503(ctx, SINK_OVER_BUDGET);
        }
        u.held = p.held;
        self.charged += growth; // taken above
        self.recharge(ctx);
        let Phase::Upload(u) = &mut self.phase else {
            unreachable!("still uploading")
        };
        if u.remaining > 0 {
            // Waiting for the client again.
            self.arm(ctx, super::Deadline::Body, ctx.cfg.read_timeout);
        }
        self.pump_upload(ctx)
    }

    /// Leaves an upload early: its sink hears of it (on a worker), and the rest of the
    /// body stays unread. What the sink held is off the books now: the answer that
    /// follows (503, 408) may be followed by a lingering close of seconds, and the budget
    /// must not stay spent for a sink that is gone.
    pub(super) fn abort_upload(&mut self, ctx: &mut Ctx) {
        if let Phase::Upload(u) = &mut self.phase {
            if u.remaining > 0 {
                self.unread_input = true;
            }
            if let Some(sink) = u.sink.take() {
                ctx.jobs.abort_upload(sink);
            }
            u.held = 0;
            self.recharge(ctx);
        }
    }
}
