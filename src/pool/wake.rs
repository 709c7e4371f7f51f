//! How workers (and stream senders) reach the event loop: a completion queue, and the
//! loop's `mio::Waker`, written only when the loop may be asleep — so under load most
//! completions cost no syscall. Never touches a connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use log::error;

use super::Completion;
use super::chan::Sender;

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

/// A handle to send completions to the loop.
#[derive(Clone)]
pub(crate) struct Notifier {
    tx: Sender<Completion>,
    wake: Arc<LoopWake>,
}

impl Notifier {
    pub fn new(tx: Sender<Completion>, wake: Arc<LoopWake>) -> Self {
        Notifier { tx, wake }
    }
    pub fn send(&self, c: Completion) {
        self.push(c);
        self.wake.wake();
    }
    /// Queues a completion without waking the loop.
    pub fn push(&self, c: Completion) {
        // The loop owns the receiver for as long as any worker runs; a send can only fail
        // during teardown, when nobody needs the result.
        let _ = self.tx.send(c);
    }
    /// Wakes the loop if it may be asleep.
    pub fn wake(&self) {
        self.wake.wake();
    }
    pub fn stream_ready(&self, token: usize, gen_: u32) {
        self.send(Completion::StreamReady { token, gen_ });
    }
}
