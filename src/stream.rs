//! Streamed response bodies: the hand-off between a producer (on a worker or any other
//! thread) and the event loop that writes the chunks to the socket.
//!
//! The producer pushes chunks into a small shared queue; the loop pulls from it only while
//! the connection's unwritten bytes are under `stream_buffer_bytes`, so a client that stops
//! reading makes `send` block instead of making the server buffer without bound. This file
//! never touches a socket.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::pool::Notifier;

/// Where a streamed body comes from.
pub(crate) enum StreamSrc {
    /// A producer the loop pulls from (as a short job on the pool) when the socket has room.
    Pull(crate::response::Pull),
    /// A channel fed from the application's own thread.
    Channel(Arc<StreamShared>),
}

impl StreamSrc {
    /// The stream ends early (client gone, server stopping): a channel's sender sees
    /// `closed`; a producer is dropped on a worker.
    pub(crate) fn close(self, jobs: &crate::pool::JobQueue) {
        match self {
            StreamSrc::Channel(s) => s.close(),
            StreamSrc::Pull(p) => crate::pool::drop_off_loop(jobs, Box::new(p)),
        }
    }
}

/// The state a stream's sender and the event loop share.
pub(crate) struct StreamShared {
    state: Mutex<StreamState>,
    /// Signalled when the loop took chunks (space freed) or the stream closed.
    space: Condvar,
}

pub(crate) struct StreamState {
    /// Chunks sent but not yet taken by the loop.
    pub chunks: VecDeque<Vec<u8>>,
    /// Bytes in `chunks`; `send` blocks while this is at or above `cap`.
    pub queued: usize,
    /// Backpressure threshold (the server's `stream_buffer_bytes`, set on attach).
    pub cap: usize,
    /// The sender was dropped: after the queued chunks, the body ends.
    pub finished: bool,
    /// The client went away (or the server force-closed it): sends fail from now on.
    pub closed: bool,
    /// The producer failed (panicked): the body must not be ended as if complete.
    pub aborted: bool,
    /// Where to signal new data; `None` until the loop has written the head.
    pub route: Option<(usize, u32, Notifier)>,
    /// A StreamReady is already on its way to the loop: don't send another.
    pub notified: bool,
}

impl StreamState {
    /// Tells the loop there is something to take, once per batch of sends: a StreamReady
    /// already in flight covers everything pushed until the loop takes the queue.
    fn signal_loop(&mut self) {
        if self.notified {
            return;
        }
        if let Some((token, gen_, n)) = &self.route {
            self.notified = true;
            n.stream_ready(*token, *gen_);
        }
    }
}

impl StreamShared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(StreamShared {
            state: Mutex::new(StreamState {
                chunks: VecDeque::new(),
                queued: 0,
                cap: 256 * 1024,
                finished: false,
                closed: false,
                aborted: false,
                route: None,
                notified: false,
            }),
            space: Condvar::new(),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, StreamState> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // critical section is a few field updates), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes producers blocked on backpressure (after the loop took chunks or closed).
    pub(crate) fn wake_producers(&self) {
        self.space.notify_all();
    }

    /// Marks the stream closed by the server side (client gone, forced close).
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.chunks.clear();
        st.queued = 0;
        st.route = None;
        drop(st);
        self.space.notify_all();
    }
}

/// The reason a send failed: the client is gone, nobody will read more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamClosed;

impl fmt::Display for StreamClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stream closed: the client disconnected")
    }
}
impl std::error::Error for StreamClosed {}

/// Why `try_send` did not queue a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// The client is slow and the stream's buffer is full; try later or drop the chunk.
    Full,
    /// The client is gone.
    Closed,
}

/// The producing end of a streamed body. Each `send` becomes one chunk on the wire and is
/// flushed as soon as the loop gets to it. Dropping the sender ends the body.
pub struct StreamSender {
    shared: Arc<StreamShared>,
}

impl StreamSender {
    pub(crate) fn new(shared: Arc<StreamShared>) -> Self {
        StreamSender { shared }
    }

    /// Queues `data` as one chunk, blocking while the client is too slow to take it.
    /// Fails once the client has disconnected. Empty data is ignored.
    pub fn send(&self, data: impl Into<Vec<u8>>) -> Result<(), StreamClosed> {
        let data = data.into();
        let mut st = self.shared.lock();
        while !st.closed && st.queued >= st.cap {
            st = self
                .shared
                .space
                .wait_timeout(st, Duration::from_millis(500))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if st.closed {
            return Err(StreamClosed);
        }
        self.push(st, data);
        Ok(())
    }

    /// Queues `data` unless the client's buffer is full (never blocks): what a broadcast
    /// hub uses so one slow subscriber cannot hold up the others.
    pub fn try_send(&self, data: impl Into<Vec<u8>>) -> Result<(), TrySendError> {
        let st = self.shared.lock();
        if st.closed {
            return Err(TrySendError::Closed);
        }
        if st.queued >= st.cap {
            return Err(TrySendError::Full);
        }
        self.push(st, data.into());
        Ok(())
    }

    fn push(&self, mut st: MutexGuard<'_, StreamState>, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        st.queued += data.len();
        st.chunks.push_back(data);
        st.signal_loop();
    }

    /// True once the client has disconnected.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if std::thread::panicking() {
            st.aborted = true;
        }
        st.finished = true;
        st.signal_loop();
    }
}

impl fmt::Debug for StreamSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSender")
            .field("closed", &self.is_closed())
            .finish()
    }
}
