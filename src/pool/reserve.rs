//! The pool's reserve: workers beyond one per core, parked until handlers block.
//! Nothing here runs a job; it only decides who may take one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Workers held back until the running ones are stuck in blocking handlers.
///
/// `workers` is sized for handlers that block (a database call, a sleep), but a server
/// whose handlers never block needs no more than one per core. So only one worker per
/// core waits on the job queue; the rest are started when first needed and then park
/// here (an idle server holds one thread per core, not `workers`; CPU per request was
/// measured the same either way, docs/BENCHMARKS.md). The event loop watches the pool: when jobs wait in the queue and no
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
    /// Starts the reserve workers not started yet; `None` once the pool closes.
    spawner: Mutex<Option<Spawner>>,
}

/// Starts reserve worker number `next` (until `max`).
pub(crate) struct Spawner {
    pub start: Box<dyn FnMut(usize) -> std::io::Result<()> + Send>,
    pub next: usize,
    pub max: usize,
}

/// How long the queue may wait with no job finishing before a reserve worker is released.
pub(crate) const STALL: Duration = Duration::from_millis(5);

impl Reserve {
    /// How the reserve workers are started when first needed.
    pub fn set_spawner(&self, s: Spawner) {
        *self.spawner.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }

    /// Releases one more worker: a parked one, or a new one while fewer than `workers`
    /// run. False when every worker is already out.
    pub fn release_one(&self) -> bool {
        let grant = || {
            self.state.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
            self.cv.notify_one();
        };
        if self.parked.load(Ordering::Acquire) > 0 {
            grant();
            return true;
        }
        let mut spawner = self.spawner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = spawner.as_mut().filter(|s| s.next < s.max) else {
            return false;
        };
        grant(); // the new worker takes it at once
        let i = s.next;
        s.next += 1;
        if let Err(e) = (s.start)(i) {
            log::error!("cannot start reserve worker {i}: {e}");
            self.state.lock().unwrap_or_else(|e| e.into_inner()).0 -= 1;
            return false;
        }
        true
    }

    /// Lets every parked worker go and starts no more (the pool is closing).
    pub fn close(&self) {
        self.spawner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
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
