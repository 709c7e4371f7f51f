//! How workers (and stream senders) reach the event loop: a completion queue, and the
//! loop's `mio::Waker`, written only when the loop may be asleep — so under load most
//! completions cost no syscall. Never touches a connection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use log::error;

use super::Completion;

/// The loop's wake-up policy: a worker writes the waker only when the loop said it may be
/// about to sleep, so under load most completions cost no syscall.
pub(crate) struct LoopWake {
    waker: mio::Waker,
    /// Set by the loop right before it polls; cleared by whoever wakes it.
    asleep: AtomicBool,
}

impl LoopWake {
    pub fn new(waker: mio::Waker) -> Self {
        LoopWake {
            waker,
            asleep: AtomicBool::new(false),
        }
    }
    /// Called by the loop before polling. Returns the flag so the loop can re-check its
    /// queue after setting it (closing the race with a worker that just pushed).
    pub fn set_asleep(&self, v: bool) {
        self.asleep.store(v, Ordering::SeqCst);
    }
    /// Wakes the loop whatever it is doing (for rare commands such as shutdown).
    pub fn force(&self) {
        self.asleep.store(false, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            error!("waking the event loop failed: {e}");
        }
    }
    /// Wakes the loop if it may be asleep.
    pub fn wake(&self) {
        if self.asleep.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                error!("waking the event loop failed: {e}");
            }
        }
    }
}

/// One loop's completion queue: workers and stream senders push (and other loops hand
/// it connections, `Notifier::hand`), the loop takes them all at once by swapping in an
/// empty `Vec` of its own.
///
/// A mutex around a `Vec` rather than a channel: one uncontended lock per completion and
/// one per loop turn, and no allocation in the steady state (the two vectors keep their
/// capacity). crossbeam's unbounded channel allocates and zeroes a block of 31 slots
/// every 31 messages — about 230 instructions per request under callgrind
/// (docs/BENCHMARKS.md, "The bare loop's cost").
#[derive(Default)]
pub(crate) struct Completions {
    queue: Mutex<Vec<Completion>>,
    /// Whether `queue` holds anything, readable without the lock (the loop's sleep check).
    pending: AtomicBool,
    /// The loop has returned ([`close`](Completions::close)): nobody takes completions any
    /// more. Written under the `queue` lock.
    closed: AtomicBool,
    /// Connections handed to the loop ([`Notifier::hand`]) and not registered yet, plus
    /// [`REFUSED`] once it has ended its drain or returned: then it takes no more.
    handed: AtomicUsize,
}

/// The bit of [`Completions::handed`] that refuses connections.
const REFUSED: usize = 1 << (usize::BITS - 1);

impl Completions {
    fn push(&self, c: Completion) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::SeqCst) {
            drop(q);
            orphan(c);
            return;
        }
        q.push(c);
        // SeqCst: paired with `LoopWake::set_asleep` and the waker's swap, either the loop
        // sees this before it sleeps or the pusher sees the loop asleep and wakes it.
        self.pending.store(true, Ordering::SeqCst);
    }

    /// Takes the connection out of `sock` into the queue, unless the loop has ended its
    /// drain ([`refuse_handed`]): then it stays in `sock`, its sender's. Counted before
    /// the look at [`REFUSED`], so that the loop either sees it coming or is seen to
    /// refuse it (both atomics on one variable: one order).
    ///
    /// [`refuse_handed`]: Completions::refuse_handed
    fn hand(&self, sock: &mut Option<Handed>) {
        if self.handed.fetch_add(1, Ordering::SeqCst) & REFUSED != 0 {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        // The loop may have returned in between (a forced stop, its drain deadline: exits
        // that refuse nothing first) and taken its queue for the last time (`close`,
        // under this lock): the connection stays with its sender.
        if !self.closed.load(Ordering::SeqCst)
            && let Some((sock, peer)) = sock.take()
        {
            q.push(Completion::Accepted(sock, peer));
            self.pending.store(true, Ordering::SeqCst);
        }
    }

    /// The loop registered a connection handed to it.
    pub fn took_handed(&self) {
        self.handed.fetch_sub(1, Ordering::SeqCst);
    }

    /// The loop ends its drain: from now on a connection handed to it is refused (its
    /// sender keeps it). False, refusing nothing, when one is on its way or waits: the
    /// loop takes it on its next turn (its sender wakes it).
    pub fn refuse_handed(&self) -> bool {
        self.handed
            .compare_exchange(0, REFUSED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The loop returns: what is queued comes back to it, and what is pushed from now on
    /// is [`orphan`]ed by its pusher.
    pub fn close(&self) -> Vec<Completion> {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        self.closed.store(true, Ordering::SeqCst);
        self.handed.fetch_or(REFUSED, Ordering::SeqCst);
        self.pending.store(false, Ordering::SeqCst);
        std::mem::take(&mut *q)
    }

    /// True when nothing waits (the loop checks before sleeping).
    pub fn is_empty(&self) -> bool {
        !self.pending.load(Ordering::SeqCst)
    }

    /// Moves everything queued into `into` (which must be empty), in push order.
    pub fn take_into(&self, into: &mut Vec<Completion>) {
        debug_assert!(into.is_empty());
        if self.is_empty() {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *q, into);
        self.pending.store(false, Ordering::SeqCst);
    }

    /// Everything queued (the unit tests' and the fuzz harness's inline loop).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn take_all(&self) -> Vec<Completion> {
        let mut v = Vec::new();
        self.take_into(&mut v);
        v
    }
}

/// A completion for a loop that has returned: an upload's sink back from a worker hears
/// `abort` here, on that worker (it would otherwise be left unfinished: a `DiskFiles`
/// `.part` file left behind); anything else is dropped.
fn orphan(c: Completion) {
    if let Completion::Piece(p) = c {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.sink.abort())).is_err() {
            error!("a body sink panicked in abort");
        }
    }
}

/// An accepted connection on its way to the loop that will own it.
pub(crate) type Handed = (mio::net::TcpStream, std::net::SocketAddr);

/// A handle to send completions to the loop.
#[derive(Clone)]
pub(crate) struct Notifier {
    queue: Arc<Completions>,
    wake: Arc<LoopWake>,
}

impl Notifier {
    pub fn new(queue: Arc<Completions>, wake: Arc<LoopWake>) -> Self {
        Notifier { queue, wake }
    }
    pub fn send(&self, c: Completion) {
        self.push(c);
        self.wake.wake();
    }
    /// Queues a completion without waking the loop.
    pub fn push(&self, c: Completion) {
        self.queue.push(c);
    }
    /// Wakes the loop if it may be asleep.
    pub fn wake(&self) {
        self.wake.wake();
    }
    /// Wakes the loop whatever it is doing.
    pub fn force(&self) {
        self.wake.force();
    }
    /// Hands an accepted connection to this loop (taking it out of `sock`), unless it
    /// ended its drain.
    pub fn hand(&self, sock: &mut Option<Handed>) {
        self.queue.hand(sock);
        self.wake.wake();
    }
    pub fn stream_ready(&self, token: usize, gen_: u32) {
        self.send(Completion::StreamReady { token, gen_ });
    }
}
