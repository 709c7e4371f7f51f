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
/// How many free buffers of each kind the pool keeps.
const POOL_MAX: usize = 256;

/// The loop's pools.
#[derive(Default)]
pub(crate) struct Buffers {
    read: Vec<Arc<Batch>>,
    write: Vec<Vec<u8>>,
    reqs: Vec<Vec<ReqMeta>>,
    cancels: Vec<CancelFlag>,
    signals: Vec<BatchSignal>,
}

impl Buffers {
    /// A read buffer with `len == 0`, uniquely owned.
    pub fn take_read(&mut self) -> Arc<Batch> {
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
        if self.read.len() >= POOL_MAX {
            return;
        }
        if let Some(m) = Arc::get_mut(&mut b)
            && m.bytes.len() <= KEEP_MAX
        {
            m.len = 0;
            m.fields.clear();
            self.read.push(b);
        }
    }

    /// An empty write buffer.
    pub fn take_write(&mut self) -> Vec<u8> {
        self.write.pop().unwrap_or_else(|| Vec::with_capacity(4096))
    }

    /// Returns a write buffer.
    pub fn put_write(&mut self, mut v: Vec<u8>) {
        if v.capacity() == 0 || v.capacity() > KEEP_MAX || self.write.len() >= POOL_MAX {
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
        if self.cancels.len() < POOL_MAX && c.try_reset() {
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
        if self.signals.len() < POOL_MAX {
            self.signals.push(s);
        }
    }

    /// An empty request list.
    pub fn take_reqs(&mut self) -> Vec<ReqMeta> {
        self.reqs.pop().unwrap_or_default()
    }

    /// Returns a request list.
    pub fn put_reqs(&mut self, mut v: Vec<ReqMeta>) {
        if v.capacity() == 0 || self.reqs.len() >= POOL_MAX {
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
}
