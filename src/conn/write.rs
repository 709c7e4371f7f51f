//! Writing one connection's answers: batches back from workers, the write buffer, the
//! keep-alive decision, lingering closes, and relaying streamed bodies.
//!
//! Runs on the loop thread; never blocks, never runs user code. The loop writes only
//! with the connection's [`WriteRight`](super::WriteRight), which is home in every phase
//! but `Dispatched` (where the batch at a worker may carry it).

use std::io;
use std::net::Shutdown;
use std::sync::Arc;

use log::{debug, trace};

use super::{After, Close, Conn, Deadline, Phase, Step, Streaming, Transport};
use crate::event_loop::Ctx;
use crate::http::encode;
use crate::pool::{Done, Job, PullEnd, PullJob, Pulled, StreamFraming};
use crate::stream::{StreamShared, StreamSrc};

impl<T: Transport> Conn<T> {
    // ------------------------------------------------------------------ answers

    /// A worker finished this connection's batch (and gives the right to write back).
    pub fn on_done(&mut self, ctx: &mut Ctx, done: &mut Done) -> Step {
        let deferred = match std::mem::replace(&mut self.phase, Phase::Write(After::Close)) {
            Phase::Dispatched(f) => {
                ctx.bufs.put_cancel(f.cancel);
                ctx.bufs.put_signal(f.signal);
                f.close
            }
            // The answer of an upload (its sink finished, or refused a piece).
            Phase::Upload(u) => {
                if u.remaining > 0 {
                    self.unread_input = true;
                }
                None
            }
            other => {
                // Only an upload's answer can arrive late (its deadline already answered
                // 408, or the connection moved on): it is owed to nobody now.
                debug_assert!(
                    done.right.is_none(),
                    "a batch's right comes back to Dispatched"
                );
                debug!("conn={} a late answer is dropped", self.id);
                self.phase = other;
                return Ok(());
            }
        };
        if let Some(r) = done.right.take() {
            self.right = Some(r);
        }
        let upgrade = done.upgrade.take();
        let mut after = if done.close {
            After::Close
        } else {
            After::KeepAlive
        };
        if let Some(b) = done.batch.take() {
            if let Some((cb, at)) = upgrade {
                // Bytes after the upgrading request are the new protocol's.
                after = After::Upgrade(cb, b.bytes[at as usize..b.len].to_vec());
            }
            if let Some(at) = done.resume_at {
                // The worker stopped early: put the requests it did not run back in front
                // of whatever arrived meanwhile; they are parsed once these answers are out.
                self.served -= done.handed_back as u32;
                self.unshift(ctx, &b.bytes[at as usize..b.len]);
                // They came with the batch: their first byte is theirs, not that of
                // bytes read since (`fill`).
                self.req_start = done.resume_first_byte;
            }
            ctx.bufs.put_read(b);
        }
        let mut reqs = std::mem::take(&mut done.reqs);
        self.recharge(ctx);
        // Requests whose answers are not out yet: a streamed one is finished when its body
        // ends, the rest when the write buffer is empty.
        let mut stream_trace = if done.stream.is_some() {
            reqs.iter()
                .rposition(|m| m.trace.ran())
                .map(|i| std::mem::take(&mut reqs[i].trace))
        } else {
            None
        };
        self.keep_unwritten(ctx, reqs);
        if done.stream.is_some() && (deferred.is_some() || done.write_failed) {
            // The stream ends here, unsent (the caller drops `done`, which closes it).
            let stats = ctx.stats();
            stats.bump(&stats.streams_ended, 1);
            if let Some(t) = stream_trace.take() {
                t.finish(&ctx.tel, &ctx.tel.loops[ctx.loop_id], self.id, None);
            }
        }
        if let Some(reason) = deferred {
            // The close that waited for this batch.
            if let Some(u) = done.upload.take() {
                ctx.jobs.abort_upload(u.sink);
            }
            return Err(reason);
        }
        if done.write_failed {
            return Err(Close::IoError(io::ErrorKind::BrokenPipe));
        }
        let out = std::mem::take(&mut done.out);
        if self.wbuf.is_empty() {
            ctx.bufs.put_write(std::mem::replace(&mut self.wbuf, out));
            self.wpos = done.written;
        } else {
            debug_assert_eq!(
                done.written, 0,
                "direct writes only happen on an empty buffer"
            );
            self.wbuf.extend_from_slice(&out);
            ctx.bufs.put_write(out);
        }
        if done.stream_failed {
            // The producer failed on its first pieces: send what there is, then cut off.
            let _ = self.flush(ctx);
            if let Some((_, framing)) = &done.stream {
                self.cut_off(*framing);
            }
            return Err(Close::StreamAborted);
        }
        if let Some(u) = done.upload.take() {
            // The handler asked for its body: read it into the sink. Answers of earlier
            // requests of the batch go out first; then `100 Continue` if it is awaited.
            if u.expect_continue && u.version == crate::http::Version::Http11 {
                self.wbuf.extend_from_slice(encode::CONTINUE_100);
            }
            self.phase = Phase::Upload(Box::new(super::Upload {
                sink: Some(u.sink),
                remaining: u.remaining,
                method: u.method,
                version: u.version,
                close: u.close,
                route: u.route,
                held: 0,
            }));
            self.arm(ctx, Deadline::Body, ctx.cfg.read_timeout);
            self.flush(ctx)?;
            if self.read_paused {
                self.read_paused = false;
                return self.on_readable(ctx, false);
            }
            return self.pump_upload(ctx);
        }
        #[cfg(feature = "proxy")]
        if let Some(start) = done.forward.take() {
            // The last answer comes from an upstream: the ones before it are in `wbuf`.
            return self.start_forward(ctx, start);
        }
        if let Some((src, framing)) = done.stream.take() {
            self.phase = Phase::Stream(Box::new(Streaming {
                src: Some(src),
                framing,
                close: done.close,
                trace: stream_trace,
            }));
            return self.pump_stream(ctx);
        }
        self.phase = Phase::Write(after);
        self.write_and_continue(ctx)
    }

    /// Puts `bytes` in front of the read buffer's data.
    fn unshift(&mut self, ctx: &mut Ctx, bytes: &[u8]) {
        let mut fresh = ctx.bufs.take_read();
        let f = Arc::get_mut(&mut fresh).expect("fresh buffer");
        let old = self.rbuf.take();
        let old_data = old.as_ref().map_or(&[][..], |o| &o.bytes[..o.len]);
        let need = bytes.len() + old_data.len();
        if f.bytes.len() < need {
            f.bytes.resize(need, 0);
        }
        f.bytes[..bytes.len()].copy_from_slice(bytes);
        f.bytes[bytes.len()..need].copy_from_slice(old_data);
        f.len = need;
        if let Some(o) = old {
            ctx.bufs.put_read(o);
        }
        self.rbuf = Some(fresh);
    }

    /// A job found the queue full earlier; the queue has room now.
    pub fn retry_stalled(&mut self, ctx: &mut Ctx) -> Step {
        match self.phase {
            Phase::Stream(_) => self.pump_stream(ctx),
            Phase::Upload(_) => self.pump_upload(ctx),
            #[cfg(feature = "ws")]
            Phase::Ws(_) => self.ws_stalled(ctx),
            _ => Ok(()),
        }
    }

    /// The socket is writable again.
    pub fn on_writable(&mut self, ctx: &mut Ctx) -> Step {
        match self.phase {
            Phase::Write(_) => self.write_and_continue(ctx),
            Phase::Stream(_) => self.pump_stream(ctx),
            #[cfg(feature = "ws")]
            Phase::Ws(_) => self.ws_pump(ctx),
            #[cfg(feature = "proxy")]
            Phase::Forward(_) => self.fwd_writable(ctx),
            _ if self.wpos < self.wbuf.len() => self.flush(ctx).map(|_| ()),
            _ => {
                // TLS records of the handshake (or sent while reading) the socket had no
                // room for; plain TCP holds none (a constant, inlined).
                match self.io.flush_pending() {
                    Err(e) => Err(Close::IoError(e.kind())),
                    Ok(_) => Ok(()),
                }
            }
        }
    }

    /// Writes what is pending; true when everything went out (or nothing can be written
    /// now because a batch holds the right: it writes, and its answers follow ours).
    pub(super) fn flush(&mut self, ctx: &mut Ctx) -> Result<bool, Close> {
        let Some(right) = &self.right else {
            return Ok(false);
        };
        let start = self.wpos;
        match right.write_now(&self.wbuf[self.wpos..]) {
            Ok(n) => {
                self.wpos += n;
                self.sent = self.sent.wrapping_add(n as u32);
                let stats = ctx.stats();
                stats.bump(&stats.bytes_out, n as u64);
                if let Phase::Stream(st) = &mut self.phase
                    && let Some(t) = &mut st.trace
                    && n > 0
                {
                    t.note_flush(ctx.tel.stamp(ctx.now));
                }
            }
            Err(e) => return Err(Close::IoError(e.kind())),
        }
        // What the transport holds itself (TLS records the full socket did not take) is
        // output too: the answer is not out, nor may the connection close, before it is.
        let (pushed, held) = match right.flush_pending() {
            Ok((pushed, done)) => (pushed, !done),
            Err(e) => return Err(Close::IoError(e.kind())),
        };
        self.sent = self.sent.wrapping_add(pushed as u32);
        if self.wpos < self.wbuf.len() || held {
            // The socket is full. The deadline counts from the last progress (as nginx's
            // `send_timeout`): a client that stops reading is closed at `write_timeout`,
            // one that reads a long stream slowly but steadily is not cut off.
            if self.deadlines.write.is_none() || self.wpos > start || pushed > 0 {
                self.arm(ctx, Deadline::Write, ctx.cfg.write_timeout);
            }
            return Ok(false);
        }
        if self.wpos > start {
            trace!(
                "conn={} response written: {} bytes",
                self.id,
                self.wpos - start
            );
        }
        self.wbuf.clear();
        self.wpos = 0;
        self.deadlines.write = None;
        if let Some(reqs) = self.take_unwritten() {
            ctx.finish_unwritten(reqs, self.id, Some(ctx.stamp()));
        }
        Ok(true)
    }

    /// Keeps the requests whose answers are still to be written (the worker wrote none or
    /// part of them), to stamp them when the write buffer is empty.
    fn keep_unwritten(&mut self, ctx: &mut Ctx, mut reqs: Vec<crate::pool::ReqMeta>) {
        reqs.retain(|m| m.trace.ran());
        if reqs.is_empty() {
            ctx.bufs.put_reqs(reqs);
            return;
        }
        match &mut self.unwritten {
            None => self.unwritten = Some(Box::new(reqs)),
            Some(kept) => {
                kept.append(&mut reqs);
                ctx.bufs.put_reqs(reqs);
            }
        }
    }

    /// Writes the answers; once they are out, keeps the connection alive, closes it, or
    /// hands it to its upgrade callback.
    pub(super) fn write_and_continue(&mut self, ctx: &mut Ctx) -> Step {
        if !self.flush(ctx)? {
            return Ok(());
        }
        match &mut self.phase {
            Phase::Write(After::Upgrade(to, ahead)) => {
                // The answer is out: the connection leaves HTTP with whatever arrived since.
                if let Some(b) = self.rbuf.as_ref() {
                    ahead.extend_from_slice(&b.bytes[..b.len]);
                }
                match to {
                    crate::upgrade::Takeover::Callback(_) => return Err(Close::Upgraded),
                    #[cfg(feature = "ws")]
                    crate::upgrade::Takeover::WebSocket(_) => return self.enter_ws(ctx),
                }
            }
            Phase::Write(After::Close) => return self.finish(ctx),
            _ => {}
        }
        ctx.bufs.put_write(std::mem::take(&mut self.wbuf));
        self.skip_empty_lines(ctx);
        if self.buffered() > 0 || self.read_paused || self.io.input_pending() {
            // Pipelined requests arrived meanwhile (or the first record of one, over TLS):
            // answer them next, in order.
            trace!("conn={} keep-alive: next pipelined request", self.id);
            self.phase = Phase::ReadHead(super::HeadRead::default());
            self.arm(ctx, Deadline::Header, ctx.cfg.header_read_timeout);
            if self.read_paused {
                self.read_paused = false;
                return self.on_readable(ctx, false);
            }
            return self.process(ctx);
        }
        if self.peer_eof {
            return Err(Close::PeerClosed);
        }
        trace!("conn={} keep-alive: idle", self.id);
        if let Some(b) = self.rbuf.take() {
            ctx.bufs.put_read(b);
        }
        self.phase = Phase::Idle;
        self.arm(ctx, Deadline::Idle, ctx.cfg.idle_timeout);
        if ctx.draining {
            // This answer promised keep-alive (it was encoded before the drain began), so
            // the client may already have sent its next request. Treat the connection as
            // the drain treats an idle one (`EventLoop::begin_drain`): read once; a
            // request that came is answered, with `Connection: close`; else close now.
            self.on_readable(ctx, false)?;
            if self.is_idle() {
                return Err(Close::Draining);
            }
        }
        Ok(())
    }

    /// RFC 9112 §2.2: empty lines before a request are ignored. A stray CRLF after the last
    /// request must not count as the start of another (nor hold a buffer, nor earn a 408).
    ///
    /// Only whole empty lines go (CRLF, or a bare LF as `parse_head` accepts it): a bare CR
    /// is not an empty line (§2.2: a recipient MUST treat it as invalid), and stays for
    /// `parse_head` to refuse, as it does when the CR arrives in a read of its own. Were it
    /// skipped here, `\rPOST ...` would be accepted or refused depending on whether it came
    /// in the same read as the request before it (found by the `conn_split` fuzz target).
    /// A CR last in the buffer stays too: its LF may be on the way.
    fn skip_empty_lines(&mut self, ctx: &mut Ctx) {
        let Some(rbuf) = self.rbuf.as_mut() else {
            return;
        };
        let b = Arc::get_mut(rbuf).expect("the read buffer is owned by its connection");
        let mut n = 0;
        loop {
            match &b.bytes[n..b.len] {
                [b'\n', ..] => n += 1,
                [b'\r', b'\n', ..] => n += 2,
                _ => break,
            }
        }
        if n == b.len {
            let b = self.rbuf.take().expect("just used");
            ctx.bufs.put_read(b);
        } else if n > 0 {
            b.bytes.copy_within(n..b.len, 0);
            b.len -= n;
        }
    }

    /// Closes after an answer: at once when nothing is left unread, else a lingering close.
    fn finish(&mut self, ctx: &mut Ctx) -> Step {
        self.finish_as(ctx, Close::Done)
    }

    /// Closes once the output is out (for `reason`): at once when nothing is left unread,
    /// else a lingering close — our side is shut (the client reads our last bytes, then
    /// EOF), and input is discarded until the client's EOF (reported as `reason`) or the
    /// linger deadline. Closing outright with input unread would make the kernel answer
    /// with a reset, which can destroy what is still on its way to the client.
    pub(super) fn finish_as(&mut self, ctx: &mut Ctx, reason: Close) -> Step {
        if self.peer_eof || !(self.unread_input || self.buffered() > 0 || self.unread_in_kernel()) {
            return Err(reason);
        }
        trace!("conn={} lingering close: input left unread", self.id);
        if !reason.is_orderly() {
            // The shutdown must not say "complete" (TLS close_notify) for a cut-off close.
            self.mark_aborted();
        }
        self.linger_as = reason;
        let _ = self.io.shutdown(Shutdown::Write);
        if let Some(b) = self.rbuf.take() {
            ctx.bufs.put_read(b);
        }
        self.phase = Phase::Closing;
        self.deadlines.write = None;
        self.arm(ctx, Deadline::Linger, ctx.linger);
        self.discard_input(ctx)
    }

    /// Whether the client sent bytes we have not read (then closing outright would send a
    /// reset that can destroy the answer in flight). One read; consumes what it finds,
    /// which is about to be discarded anyway.
    fn unread_in_kernel(&mut self) -> bool {
        let mut probe = [0u8; 512];
        match self.io.read(&mut probe) {
            Ok(0) => {
                self.peer_eof = true;
                false
            }
            Ok(_) => true,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }

    // ------------------------------------------------------------------ streams

    /// Moves the streamed body on: writes what is buffered and, while the client keeps
    /// up (unwritten bytes under `stream_buffer_bytes`), takes more from its source — a
    /// pull job for a producer, the queue of a channel.
    pub fn pump_stream(&mut self, ctx: &mut Ctx) -> Step {
        let Phase::Stream(st) = &mut self.phase else {
            return Ok(());
        };
        match &st.src {
            // A pull is out (its answer brings us back): write what is already here.
            None => self.flush(ctx).map(|_| ()),
            Some(StreamSrc::Pull(_)) => self.pump_pulled(ctx),
            Some(StreamSrc::Channel(shared)) => {
                let (shared, framing) = (shared.clone(), st.framing);
                self.pump_channel(ctx, &shared, framing)
            }
        }
    }

    /// Writes the buffered pieces of a pulled stream and, when the buffer has room, asks
    /// a worker for more. A client that stops reading stops the pulls: it costs this
    /// buffer, no thread, until the write deadline closes it.
    fn pump_pulled(&mut self, ctx: &mut Ctx) -> Step {
        let Phase::Stream(st) = &self.phase else {
            unreachable!("pumping a stream")
        };
        let cap = st.framing.window(ctx.cfg.stream_buffer_bytes);
        self.compact_written(cap);
        self.flush(ctx)?;
        let pending = self.wbuf.len() - self.wpos;
        if pending >= cap {
            return Ok(()); // WRITABLE brings us back
        }
        let Phase::Stream(st) = &mut self.phase else {
            unreachable!("pumping a stream")
        };
        let Some(StreamSrc::Pull(pull)) = st.src.take() else {
            unreachable!("pump_pulled is for pulled streams")
        };
        let job = PullJob {
            loop_id: ctx.loop_id,
            token: self.token,
            gen_: self.gen_,
            pull,
            framing: st.framing,
            want: cap - pending,
            out: ctx.bufs.take_write(),
        };
        match ctx.jobs.try_send(Job::Pull(job)) {
            Ok(()) => ctx.outstanding += 1,
            Err(e) => {
                let Job::Pull(job) = e.into_inner() else {
                    unreachable!("a pull was sent")
                };
                st.src = Some(StreamSrc::Pull(job.pull));
                ctx.bufs.put_write(job.out);
                ctx.stalled.push((self.token, self.gen_));
            }
        }
        Ok(())
    }

    /// A pull job is back with the next pieces of the body.
    pub fn on_pulled(&mut self, ctx: &mut Ctx, p: Pulled) -> Step {
        let Phase::Stream(st) = &mut self.phase else {
            if let Some(pull) = p.pull {
                crate::pool::drop_off_loop(&ctx.jobs, Box::new(pull));
            }
            return Ok(()); // cannot happen: the stream waits for its pull
        };
        st.src = p.pull.map(StreamSrc::Pull);
        let framing = st.framing;
        if self.wbuf.is_empty() {
            ctx.bufs.put_write(std::mem::replace(&mut self.wbuf, p.out));
            self.wpos = 0;
        } else {
            self.wbuf.extend_from_slice(&p.out);
            ctx.bufs.put_write(p.out);
        }
        match p.end {
            PullEnd::More => self.pump_pulled(ctx),
            PullEnd::Ended => self.end_stream(ctx, framing),
            PullEnd::Failed => {
                debug!(
                    "conn={} stream producer failed: cutting the body off",
                    self.id
                );
                let _ = self.flush(ctx);
                self.cut_off(framing);
                Err(Close::StreamAborted)
            }
        }
    }

    /// A streamed body is cut off: when only the close marks its end (HTTP/1.0), the
    /// close must be a reset, which the client cannot take for that end (RFC 9112 §8: such
    /// a body "is considered complete unless an error was indicated by the underlying
    /// connection"). A chunked body lacks its last chunk, which says enough (§7.1); there
    /// an orderly close keeps what the kernel still holds to send — the complete answers
    /// pipelined before this one — where a reset (`SO_LINGER` 0) would throw it away.
    fn cut_off(&self, framing: StreamFraming) {
        if framing == StreamFraming::UntilClose {
            self.reset_on_close();
        }
    }

    /// The body is complete: the last chunk, then keep-alive or close as for any answer.
    fn end_stream(&mut self, ctx: &mut Ctx, framing: StreamFraming) -> Step {
        if framing == StreamFraming::Chunked {
            encode::write_last_chunk(&mut self.wbuf);
        }
        trace!("conn={} stream ended", self.id);
        let stats = ctx.stats();
        stats.bump(&stats.streams_ended, 1);
        let close = matches!(&self.phase, Phase::Stream(s) if s.close);
        if let Phase::Stream(st) = &mut self.phase
            && let Some(t) = st.trace.take()
        {
            // Stamped when the last chunk is handed to the socket (a full socket may
            // still hold its last bytes).
            t.finish(
                &ctx.tel,
                &ctx.tel.loops[ctx.loop_id],
                self.id,
                Some(ctx.stamp()),
            );
        }
        self.phase = Phase::Write(if close {
            After::Close
        } else {
            After::KeepAlive
        });
        self.write_and_continue(ctx)
    }

    /// Drops what is already written, so a long stream's buffer stays small.
    fn compact_written(&mut self, cap: usize) {
        if self.wpos > cap {
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
    }

    /// Moves queued chunks of a channel stream into the write buffer (while the client
    /// keeps up) and writes them.
    fn pump_channel(
        &mut self,
        ctx: &mut Ctx,
        shared: &Arc<StreamShared>,
        framing: StreamFraming,
    ) -> Step {
        let cap = ctx.cfg.stream_buffer_bytes;
        // Bytes this call may move, so one fast stream cannot hold the loop; past it the
        // connection is pumped again on the loop's next turn.
        let mut budget = cap.saturating_mul(4);
        loop {
            self.compact_written(cap);
            let mut st = shared.lock();
            st.notified = false;
            if st.route.is_none() && !st.closed {
                st.route = Some((self.token, self.gen_, ctx.notifier.clone()));
                st.cap = cap;
            }
            if st.aborted {
                drop(st);
                debug!("conn={} stream aborted by its producer", self.id);
                self.cut_off(framing);
                return Err(Close::StreamAborted);
            }
            let mut took = 0;
            while self.wbuf.len() - self.wpos < cap && took < budget {
                let Some(chunk) = st.chunks.pop_front() else {
                    break;
                };
                st.queued -= chunk.len();
                took += chunk.len();
                match framing {
                    StreamFraming::Chunked => encode::write_chunk(&mut self.wbuf, &chunk),
                    StreamFraming::UntilClose | StreamFraming::Length => {
                        self.wbuf.extend_from_slice(&chunk)
                    }
                }
            }
            let more = !st.chunks.is_empty();
            let ended = (st.finished || st.closed) && !more;
            drop(st);
            if took > 0 {
                shared.wake_producers();
            }
            if ended {
                return self.end_stream(ctx, framing);
            }
            if !self.flush(ctx)? {
                return Ok(()); // the socket is full: WRITABLE brings us back
            }
            budget = budget.saturating_sub(took);
            if !more {
                return Ok(()); // all sent: the producer's next send brings us back
            }
            if budget == 0 {
                ctx.deferred.push((self.token, self.gen_));
                return Ok(());
            }
        }
    }
}
