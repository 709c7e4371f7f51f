//! The memory budget (`max_buffered_bytes`): one account for every event loop of a
//! server, so a body is refused or waits only when the server as a whole is full, never
//! because the loop it landed on used its part.
//!
//! It never blocks and never wakes a loop itself: the loop that gave memory back wakes the
//! loops marked here as waiting (`Ctx::budget_turn`, `EventLoop::serve`).

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicU64, AtomicUsize};

/// Bytes taken by connections on every loop, against `max_buffered_bytes`. Touched only
/// when a connection's charge changes: what it holds beyond its first read buffer
/// (`Conn::recharge`), so a plain request never reaches it.
pub(crate) struct Budget {
    /// `max_buffered_bytes`.
    max: usize,
    /// What all connections are charged for (at most `max` through `try_take`; `take`
    /// books what is already held).
    held: AtomicUsize,
    /// The loops with a connection waiting for memory, a bit each (`loops` ≤ 64). Set by
    /// the loop before it looks at the budget a last time, taken by a loop that gives
    /// memory back: memory given back after that look wakes the loop, memory given back
    /// before it is seen by it (`try_take_or_wait`).
    waiting: AtomicU64,
    /// How many times memory was given back: a loop resumes its waiters when this moved
    /// since it last did (`Ctx::budget_turn`), whatever its `waiting` bit says — the bit
    /// may have been set again, by another connection of the loop, between the wake-up and
    /// the loop's look.
    freed: AtomicU64,
}

impl Budget {
    pub fn new(max: usize) -> Self {
        Budget {
            max,
            held: AtomicUsize::new(0),
            waiting: AtomicU64::new(0),
            freed: AtomicU64::new(0),
        }
    }

    /// What all connections hold now.
    #[cfg(any(test, feature = "fuzzing", feature = "ws"))]
    pub fn held(&self) -> usize {
        self.held.load(SeqCst)
    }

    /// Takes `n` bytes if the whole budget has room for them. (One copy of the loop, not
    /// one per caller: the engine's size is a bar of its own.)
    #[inline(never)]
    pub fn try_take(&self, n: usize) -> bool {
        self.held
            .fetch_update(SeqCst, SeqCst, |h| {
                h.checked_add(n).filter(|&t| t <= self.max)
            })
            .is_ok()
    }

    /// Takes as much of `n` bytes as the whole budget has room for; returns how much
    /// (0 when it is spent).
    pub fn take_up_to(&self, n: usize) -> usize {
        let mut got = 0;
        let _ = self.held.fetch_update(SeqCst, SeqCst, |h| {
            got = n.min(self.max.saturating_sub(h));
            (got > 0).then_some(h + got)
        });
        got
    }

    /// `try_take`; when there is no room, marks loop `me` as waiting and looks once more,
    /// so that no memory given back between the two looks goes unnoticed.
    pub fn try_take_or_wait(&self, n: usize, me: usize) -> bool {
        if self.try_take(n) {
            return true;
        }
        self.waiting.fetch_or(1 << me, SeqCst);
        self.try_take(n)
    }

    /// Books `n` bytes a connection holds already (a batch at a worker, WebSocket input),
    /// room or not.
    pub fn take(&self, n: usize) {
        self.held.fetch_add(n, SeqCst);
    }

    /// Gives `n` bytes back. True when some loop waits for memory (it is to be woken).
    pub fn give(&self, n: usize) -> bool {
        self.held.fetch_sub(n, SeqCst);
        self.freed.fetch_add(1, SeqCst);
        self.waiting.load(SeqCst) != 0
    }

    /// How many times memory was given back so far.
    pub fn freed(&self) -> u64 {
        self.freed.load(SeqCst)
    }

    /// The loops waiting for memory, taken: each is woken and tries again.
    pub fn take_waiting(&self) -> u64 {
        self.waiting.swap(0, SeqCst)
    }
}
