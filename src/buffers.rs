//! Buffer pools of the event loop: read buffers, write buffers and request lists are
//! taken when a connection needs them and returned when it goes idle, so the steady state
//! allocates nothing and an idle connection holds no buffer.
//!
//! Only the loop thread touches these pools; workers hand buffers back inside completions.

use std::sync::Arc;

use crate::pool::{BatchSignal, ReqMeta};
use crate::request::{Batch, CancelFlag};

/// Initial size of a read buffer (grown on demand up to the connection's cap).
pub(crate) const READ_BUF: usize = 16 * 1024;
/// Buffers that grew beyond this are freed instead of pooled.
const KEEP_MAX: usize = 64 * 1024;
/// How many free buffers of each kind the pool keeps at least. Under load it keeps
/// more: twice the most read buffers recently out at once (requests in flight: each
/// holds one, and about two write buffers and one of each small part), at most two per
/// open connection, so that a server with more requests in flight than this floor does
/// not hand buffers back to the allocator only to allocate (and zero) them again — at
/// 512 connections that was 1.4 allocations per request. The excess decays each second
/// (`Buffers::decay`), so what a burst took is released after it.
const POOL_MAX: usize = 256;

/// The loop's pools.
pub(crate) struct Buffers {
    read: Vec<Arc<Batch>>,
    write: Vec<Vec<u8>>,
    reqs: Vec<Vec<ReqMeta>>,
    cancels: Vec<CancelFlag>,
    signals: Vec<BatchSignal>,
    /// Read buffers handed out and not yet given back (requests in flight, buffers of
    /// connections reading).
    out: usize,
    /// The most read buffers out at once since the last decay.
    peak: usize,
    /// Connections open on this loop.
    live: usize,
    /// How many of each kind are kept now.
    cap: usize,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            read: Vec::new(),
            write: Vec::new(),
            reqs: Vec::new(),
            cancels: Vec::new(),
            signals: Vec::new(),
            out: 0,
            peak: 0,
            live: 0,
            cap: POOL_MAX,
        }
    }
}

impl Buffers {
    fn set_cap(&mut self) {
        self.cap = (2 * self.peak).min(2 * self.live).max(POOL_MAX);
    }

    /// The loop's open connections changed (the pools never keep more than two of each
    /// kind per connection beyond the floor).
    pub fn fit(&mut self, live: usize) {
        self.live = live;
        self.set_cap();
    }

    /// Once a second: the recent peak halves (never below what is out now), and the
    /// pools give back what they hold beyond the new cap.
    pub fn decay(&mut self) {
        self.peak = self.out.max(self.peak / 2);
        self.set_cap();
        let cap = self.cap;
        self.read.truncate(cap);
        self.write.truncate(cap);
        self.reqs.truncate(cap);
        self.cancels.truncate(cap);
        self.signals.truncate(cap);
    }

    /// A read buffer with `len == 0`, uniquely owned.
    pub fn take_read(&mut self) -> Arc<Batch> {
        self.out += 1;
        if self.out > self.peak {
            self.peak = self.out;
            self.set_cap();
        }
        self.read.pop().unwrap_or_else(|| {
            Arc::new(Batch {
                bytes: vec![0; READ_BUF],
                len: 0,
                fields: Vec::with_capacity(16),
            })
        })
    }

    /// Returns a read buffer (or a batch back from a worker). Buffers still shared (a
    /// request outlived its handler) or grown large are dropped instead.
    pub fn put_read(&mut self, mut b: Arc<Batch>) {
        self.out = self.out.saturating_sub(1);
        if self.read.len() >= self.cap {
            return;
        }
        if let Some(m) = Arc::get_mut(&mut b)
            && m.bytes.len() <= KEEP_MAX
        {
            m.len = 0;
            m.fields.clear();
            // Back to the first buffer's length (its capacity stays, for reuse): the
            // memory budget charges what a connection's buffer holds beyond that
            // length (`Conn::recharge`) and asks for it as the buffer grows (`fill`,
            // `reserve`). A buffer handed out longer would be read into, and a body
            // sized into it, without asking — booked only afterwards, room or not.
            m.bytes.truncate(READ_BUF);
            self.read.push(b);
        }
    }

    /// An empty write buffer.
    pub fn take_write(&mut self) -> Vec<u8> {
        self.write.pop().unwrap_or_else(|| Vec::with_capacity(4096))
    }

    /// Returns a write buffer.
    pub fn put_write(&mut self, mut v: Vec<u8>) {
        if v.capacity() == 0 || v.capacity() > KEEP_MAX || self.write.len() >= self.cap {
            return;
        }
        v.clear();
        self.write.push(v);
    }

    /// A clear cancel flag.
    pub fn take_cancel(&mut self) -> CancelFlag {
        self.cancels.pop().unwrap_or_default()
    }

    /// Returns a batch's cancel flag; kept only if nobody else still holds it.
    pub fn put_cancel(&mut self, mut c: CancelFlag) {
        if self.cancels.len() < self.cap && c.try_reset() {
            self.cancels.push(c);
        }
    }

    /// A clear batch signal: a pooled one nobody else holds any more, or a new one.
    pub fn take_signal(&mut self) -> BatchSignal {
        match self.signals.iter_mut().rposition(|s| s.try_reset()) {
            Some(i) => self.signals.swap_remove(i),
            None => BatchSignal::default(),
        }
    }

    /// Returns a batch's signal. Kept even while still shared: the worker that ran the
    /// batch lets go of its clone only after sending the completion (it reads the signal
    /// once more, to know whether to wake the loop), and the loop may have handled that
    /// completion already. `take_signal` resets it once it is free. (Dropping it instead
    /// cost an allocation per batch whenever the worker was descheduled at that point.)
    pub fn put_signal(&mut self, s: BatchSignal) {
        if self.signals.len() < self.cap {
            self.signals.push(s);
        }
    }

    /// An empty request list.
    pub fn take_reqs(&mut self) -> Vec<ReqMeta> {
        self.reqs.pop().unwrap_or_default()
    }

    /// Returns a request list.
    pub fn put_reqs(&mut self, mut v: Vec<ReqMeta>) {
        if v.capacity() == 0 || self.reqs.len() >= self.cap {
            return;
        }
        v.clear();
        self.reqs.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_back_before_its_worker_let_go_is_reused_not_reallocated() {
        let mut b = Buffers::default();
        let s = b.take_signal();
        s.mark_loop_waiting();
        // The worker pushed `Done` and still holds its clone when the loop handles it.
        let worker = s.clone();
        b.put_signal(s);
        assert_eq!(
            b.signals.len(),
            1,
            "the shared signal was dropped, not pooled"
        );
        // Still shared: a new one, and the pooled one stays.
        let other = b.take_signal();
        assert!(!other.is_loop_waiting());
        assert_eq!(b.signals.len(), 1);
        drop(worker);
        let again = b.take_signal();
        assert!(b.signals.is_empty(), "the freed signal was not taken");
        assert!(!again.is_loop_waiting(), "a reused signal is cleared");
    }

    /// Takes `n` read buffers as `n` requests in flight would, gives them all back, and
    /// says how many of the takes found the pool empty (each an allocation of a zeroed
    /// 16 KiB buffer).
    fn cycle(b: &mut Buffers, n: usize) -> usize {
        let misses = n.saturating_sub(b.read.len());
        let out: Vec<_> = (0..n).map(|_| b.take_read()).collect();
        for r in out {
            b.put_read(r);
        }
        misses
    }

    #[test]
    fn the_pools_keep_what_is_in_flight_and_give_back_a_past_peak() {
        let mut b = Buffers::default();
        b.fit(600);
        // 512 requests in flight at once, again and again: only the first round allocates
        // (a pool capped at 256 reallocated 256 buffers every round).
        assert_eq!(cycle(&mut b, 512), 512);
        for round in 0..5 {
            assert_eq!(cycle(&mut b, 512), 0, "round {round} allocated");
        }
        assert_eq!(b.read.len(), 512);
        // The load stops: each second the kept excess halves, down to the floor.
        b.decay();
        assert_eq!(b.read.len(), 512, "peak 512 -> 256: cap 512");
        b.decay();
        assert_eq!(b.read.len(), POOL_MAX, "peak 128: the floor");
        // Never more than two per open connection beyond the floor...
        let mut few = Buffers::default();
        few.fit(200);
        cycle(&mut few, 500);
        assert_eq!(few.read.len(), 400);
        // ... and with few connections, the floor.
        let mut idle = Buffers::default();
        idle.fit(10);
        cycle(&mut idle, 300);
        assert_eq!(idle.read.len(), POOL_MAX);
    }
}
