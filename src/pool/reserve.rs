//! The pool's reserve: workers beyond one per core, parked until handlers block.
//! Nothing here runs a job; it only decides who may take one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Workers held back until the running ones are stuck in blocking handlers.
///
/// `workers` is sized for handlers that block (a database call, a sleep), but waking one
/// of many idle workers per job costs a futex wake and a context switch each time, which
/// a CPU-bound load pays for nothing (measured: 16 workers on 2 cores spent 2.3× the CPU
/// per request of 1 per core). So only one worker per core waits on the job queue; the
/// rest park here. The event loop watches the pool: when jobs wait in the queue and no
/// worker has finished one for [`STALL`], the running workers are blocked, not busy, and
/// the loop releases one more (Go's runtime does the same for a thread stuck in a
/// syscall). A released worker takes jobs until the queue is empty, then parks again.
#[derive(Default)]
pub(crate) struct Reserve {
    /// Releases granted and not yet taken, and whether the pool is closing.
    state: Mutex<(usize, bool)>,
    cv: Condvar,
    /// Workers parked here now.
    parked: AtomicUsize,
    /// Jobs finished by any worker: the loop's measure of progress.
    pub finished: AtomicU64,
}

/// How long the queue may wait with no job finishing before a reserve worker is released.
pub(crate) const STALL: Duration = Duration::from_millis(5);

impl Reserve {
    /// Releases one parked worker; false when none is parked.
    pub fn release_one(&self) -> bool {
        if self.parked.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 += 1;
        drop(st);
        self.cv.notify_one();
        true
    }

    /// Lets every parked worker go (the pool is closing).
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cv.notify_all();
    }

    /// Parks until released (true) or the pool closes (false).
    pub(super) fn wait(&self) -> bool {
        self.parked.fetch_add(1, Ordering::AcqRel);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.0 == 0 && !st.1 {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        self.parked.fetch_sub(1, Ordering::AcqRel);
        if st.1 {
            return false;
        }
        st.0 -= 1;
        true
    }
}
