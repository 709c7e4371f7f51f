//! The job queue between the loops and the workers (bounded by the loops, see
//! `JobQueue`; completions go back through `wake.rs::Completions`). A `VecDeque` under a mutex,
//! with its length mirrored in an atomic so that `len` and `is_empty` (which the loop
//! checks on every turn) take no lock.
//!
//! It replaced crossbeam-channel in the engine: crossbeam compiles all its flavors
//! (array, list, zero, at, tick) for every message type, about 40 KB of the stripped
//! engine, where the engine needs one FIFO. What it needs from a channel is kept:
//! `recv` spins (on more than one core) and yields as crossbeam's does before it parks (a
//! worker that shares a core with the loop gets the next job without a futex wake-up), a
//! send wakes a receiver only when one is parked, `recv` returns `None` once every sender
//! is gone and the queue is empty, and when the last receiver goes the messages left are
//! dropped and later sends give theirs back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

pub(crate) struct Chan<T> {
    state: Mutex<State<T>>,
    /// Signalled when a message arrives for a parked receiver, or the last sender left.
    ready: Condvar,
    /// `state.items.len()`, written under the lock. SeqCst: the loop sets its `asleep`
    /// flag and then checks `is_empty`, a worker pushes and then checks `asleep`; one of
    /// the two must see the other's write (pool/wake.rs).
    len: AtomicUsize,
    /// Whether `recv` busy-waits before it yields: only when the process may run on more
    /// than one core. On one core nothing can send while a receiver spins, so its pauses
    /// only delay the sender it is waiting for (Go's `sync_runtime_canSpin` has the same
    /// rule). Measured in docs/BENCHMARKS.md ("Run 21").
    spin: bool,
}

struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    receivers: usize,
    /// Receivers parked on `ready`.
    parked: usize,
}

impl<T> Chan<T> {
    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.len.load(SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics under this lock but an allocation failure: the state is whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending end; clones share the queue.
pub(crate) struct Sender<T>(Arc<Chan<T>>);

/// The receiving end; clones share the queue (each message goes to one of them).
pub(crate) struct Receiver<T>(Arc<Chan<T>>);

/// An unbounded FIFO queue.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    channel_spinning(std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

fn channel_spinning<T>(spin: bool) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            receivers: 1,
            parked: 0,
        }),
        ready: Condvar::new(),
        len: AtomicUsize::new(0),
        spin,
    });
    (Sender(chan.clone()), Receiver(chan))
}

impl<T> Sender<T> {
    /// Queues `msg`; gives it back when no receiver is left.
    pub fn send(&self, msg: T) -> Result<(), T> {
        let mut st = self.0.lock();
        if st.receivers == 0 {
            return Err(msg);
        }
        st.items.push_back(msg);
        self.0.len.store(st.items.len(), SeqCst);
        let wake = st.parked > 0;
        drop(st);
        if wake {
            self.0.ready.notify_one();
        }
        Ok(())
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The queue, to read its length from anywhere without being a sender or a receiver.
    pub fn probe(&self) -> Weak<Chan<T>> {
        Arc::downgrade(&self.0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Receiver<T> {
    /// Takes the oldest message, if any, without waiting.
    pub fn try_recv(&self) -> Option<T> {
        if self.is_empty() {
            return None;
        }
        let mut st = self.0.lock();
        let msg = st.items.pop_front();
        self.0.len.store(st.items.len(), SeqCst);
        msg
    }

    /// Takes the oldest message, waiting for one; `None` once every sender is gone and
    /// the queue is empty.
    pub fn recv(&self) -> Option<T> {
        // As crossbeam: spin 1, 2, 4 … 64 times, then yield 4 times, before parking. On
        // one core, only the yields.
        let first = if self.0.spin { 0 } else { 7 };
        for step in first..=10 {
            if let Some(msg) = self.try_recv() {
                return Some(msg);
            }
            if step <= 6 {
                for _ in 0..1u32 << step {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        let mut st = self.0.lock();
        loop {
            if let Some(msg) = st.items.pop_front() {
                self.0.len.store(st.items.len(), SeqCst);
                return Some(msg);
            }
            if st.senders == 0 {
                return None;
            }
            st.parked += 1;
            st = self.0.ready.wait(st).unwrap_or_else(|e| e.into_inner());
            st.parked -= 1;
        }
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.0.lock().receivers += 1;
        Receiver(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.senders -= 1;
        let last = st.senders == 0;
        drop(st);
        if last {
            // Parked receivers see the queue closed.
            self.0.ready.notify_all();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.receivers -= 1;
        let left = if st.receivers == 0 {
            self.0.len.store(0, SeqCst);
            std::mem::take(&mut st.items)
        } else {
            VecDeque::new()
        };
        drop(st);
        // Nobody will read them: dropped here, outside the lock (their `Drop` may be
        // anything), as crossbeam does when its last receiver goes.
        drop(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fifo_len_and_try_recv() {
        let (tx, rx) = channel();
        assert!(rx.try_recv().is_none());
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        assert_eq!((tx.len(), rx.len()), (5, 5));
        assert_eq!(rx.try_recv(), Some(0));
        assert_eq!(rx.recv(), Some(1));
        assert_eq!(tx.len(), 3);
        assert!(!tx.is_empty());
    }

    #[test]
    fn recv_waits_for_a_sender_and_ends_when_senders_are_gone() {
        for spin in [true, false] {
            recv_waits_and_ends(spin);
        }
    }

    fn recv_waits_and_ends(spin: bool) {
        let (tx, rx) = channel_spinning(spin);
        let rx2 = rx.clone();
        let workers: Vec<_> = [rx, rx2]
            .into_iter()
            .map(|rx| {
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(v) = rx.recv() {
                        got.push(v);
                    }
                    got
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20)); // both parked
        let tx2 = tx.clone();
        for i in 0..100 {
            tx.send(i).unwrap();
        }
        drop(tx);
        tx2.send(100).unwrap();
        drop(tx2);
        let mut all: Vec<i32> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, (0..=100).collect::<Vec<_>>(), "spin {spin}");
    }

    #[test]
    #[allow(unsafe_code)]
    fn a_receiver_spins_only_where_the_process_may_use_more_than_one_core() {
        // Run on one core, as `taskset -c 0` would start the server: no spinning.
        let one_core = std::thread::spawn(|| {
            // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it,
            // and sched_setaffinity(0, ..) changes only this thread.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                let cpu = (0..libc::CPU_SETSIZE as usize)
                    .find(|&c| {
                        let mut now: libc::cpu_set_t = std::mem::zeroed();
                        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut now)
                            == 0
                            && libc::CPU_ISSET(c, &now)
                    })
                    .expect("a CPU this thread may run on");
                libc::CPU_SET(cpu, &mut set);
                assert_eq!(
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                    0
                );
            }
            channel::<()>().1.0.spin
        });
        assert!(!one_core.join().unwrap(), "spins on one core");
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(channel::<()>().1.0.spin, cores > 1, "{cores} cores");
    }

    #[test]
    fn messages_are_dropped_with_the_last_receiver_and_later_sends_refused() {
        let (tx, rx) = channel();
        let token = Arc::new(());
        tx.send(token.clone()).unwrap();
        let rx2 = rx.clone();
        drop(rx);
        assert_eq!(Arc::strong_count(&token), 2, "a receiver is left");
        drop(rx2);
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "dropped with the last receiver"
        );
        assert!(tx.is_empty());
        assert!(tx.send(token.clone()).is_err());
        assert_eq!(Arc::strong_count(&token), 1);
    }
}
