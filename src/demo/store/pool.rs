//! A small blocking connection pool: at most `max` connections, opened when first
//! needed, lent to one caller at a time and given back when the loan is dropped.
//!
//! It never waits longer than its bounded `wait` for a free connection (the caller
//! answers `503`), never keeps a connection its backend reports broken, and checks an idle
//! connection before lending it (as Go's `database/sql` does through the driver's
//! `ResetSession`): one the server closed meanwhile (a restart) is dropped and a fresh one
//! opened, instead of failing the caller's request.

use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::DbError;

/// Opens one connection.
type Connect<C> = dyn Fn() -> Result<C, DbError> + Send + Sync;

/// The pool's connections.
pub struct Pool<C> {
    /// Idle connections and how many are open (idle + lent).
    state: Mutex<State<C>>,
    /// Signalled when a connection comes back or a slot frees.
    freed: Condvar,
    /// Never more open connections than this.
    max: usize,
    /// How long a caller waits for a connection before `DbError::Busy`.
    wait: Duration,
    /// How to open a new connection.
    connect: Box<Connect<C>>,
    /// Whether a returned connection is unusable (the server closed it) and must go.
    is_broken: fn(&mut C) -> bool,
    /// Whether an idle connection is still usable after this long idle, asked before it
    /// is lent (outside the lock: it may take a round trip).
    is_usable: fn(&mut C, Duration) -> bool,
}

struct State<C> {
    /// Connections ready to lend, most recently used last, with when they came back.
    idle: Vec<(C, Instant)>,
    /// Connections open (idle or lent) plus those being opened.
    open: usize,
}

/// A lent connection; dropping it gives it back.
pub struct Conn<'a, C> {
    pool: &'a Pool<C>,
    conn: Option<C>,
}

impl<C> Pool<C> {
    /// A pool of at most `max` (≥ 1) connections, starting with `first` (already opened
    /// and checked by the caller, so a bad address fails at start, not at first use).
    pub fn new(
        first: C,
        max: usize,
        wait: Duration,
        connect: impl Fn() -> Result<C, DbError> + Send + Sync + 'static,
        is_broken: fn(&mut C) -> bool,
        is_usable: fn(&mut C, Duration) -> bool,
    ) -> Self {
        Pool {
            state: Mutex::new(State {
                idle: vec![(first, Instant::now())],
                open: 1,
            }),
            freed: Condvar::new(),
            max: max.max(1),
            wait,
            connect: Box::new(connect),
            is_broken,
            is_usable,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection that is still usable, a new one while fewer than `max` are
    /// open, or one given back within `wait`; else `DbError::Busy`.
    pub fn get(&self) -> Result<Conn<'_, C>, DbError> {
        let deadline = Instant::now() + self.wait;
        let mut state = self.lock();
        loop {
            if let Some((mut conn, since)) = state.idle.pop() {
                drop(state); // the check may take a round trip: not under the lock
                if (self.is_usable)(&mut conn, since.elapsed()) {
                    return Ok(Conn {
                        pool: self,
                        conn: Some(conn),
                    });
                }
                drop(conn); // closed meanwhile: its slot opens a fresh one
                state = self.lock();
                state.open -= 1;
                // The others waited as long or longer (the newest is lent first): after a
                // restart or a partition they are as dead, and checking each in turn
                // (up to its check's timeout) would overrun `wait`. They are dropped and
                // replaced by fresh connections as needed.
                let keep = state.idle.iter().filter(|(_, t)| *t > since).count();
                let old = state.idle.len() - keep;
                let stale: Vec<_> = state.idle.drain(..old).collect();
                state.open -= stale.len();
                drop(state);
                if !stale.is_empty() {
                    drop(stale); // closing them may take a moment: not under the lock
                    self.freed.notify_all(); // their slots are free to connect
                }
                state = self.lock();
                continue;
            }
            if state.open < self.max {
                state.open += 1;
                drop(state); // connecting may take a while: not under the lock
                return match (self.connect)() {
                    Ok(conn) => Ok(Conn {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(DbError::Busy(format!(
                    "no database connection free within {:?} (all {} in use)",
                    self.wait, self.max
                )));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl<C> Deref for Conn<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn.as_ref().expect("a lent connection")
    }
}

impl<C> DerefMut for Conn<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn.as_mut().expect("a lent connection")
    }
}

impl<C> Drop for Conn<'_, C> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let broken = (self.pool.is_broken)(&mut conn);
        let mut state = self.pool.lock();
        if broken {
            state.open -= 1; // the next caller opens a fresh one
            drop(state);
            drop(conn);
        } else {
            state.idle.push((conn, Instant::now()));
            drop(state);
        }
        self.pool.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting_pool(max: usize, wait: Duration) -> (Arc<Pool<usize>>, Arc<AtomicUsize>) {
        let opened = Arc::new(AtomicUsize::new(1));
        let n = opened.clone();
        let pool = Pool::new(
            0,
            max,
            wait,
            move || Ok(n.fetch_add(1, Ordering::SeqCst)),
            |c| *c == 99,
            |c, _| *c != 98,
        );
        (Arc::new(pool), opened)
    }

    #[test]
    fn opens_up_to_max_then_answers_busy_after_the_wait() {
        let (pool, opened) = counting_pool(2, Duration::from_millis(50));
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        assert_eq!(opened.load(Ordering::SeqCst), 2);
        let err = pool.get().err().expect("exhausted");
        assert!(matches!(err, DbError::Busy(_)), "{err}");
        drop(a);
        let c = pool.get().unwrap();
        assert_eq!(*c, 0, "the idle connection is reused");
        drop((b, c));
        assert_eq!(opened.load(Ordering::SeqCst), 2, "never more than max");
    }

    #[test]
    fn a_waiter_gets_the_connection_given_back() {
        let (pool, _) = counting_pool(1, Duration::from_secs(10));
        let held = pool.get().unwrap();
        let p = pool.clone();
        let waiter = std::thread::spawn(move || *p.get().unwrap());
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        assert_eq!(waiter.join().unwrap(), 0);
    }

    #[test]
    fn a_broken_connection_is_dropped_and_replaced() {
        let (pool, opened) = counting_pool(1, Duration::from_millis(50));
        *pool.get().unwrap() = 99; // the backend closed it
        assert_eq!(*pool.get().unwrap(), 1, "a fresh connection");
        assert_eq!(opened.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_idle_connection_closed_meanwhile_is_replaced_at_checkout() {
        let (pool, opened) = counting_pool(1, Duration::from_millis(50));
        *pool.get().unwrap() = 98; // given back usable, then the server restarted
        assert_eq!(
            *pool.get().unwrap(),
            1,
            "a fresh connection, not the closed one"
        );
        assert_eq!(opened.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn after_one_dead_idle_connection_the_older_ones_are_not_checked_in_turn() {
        let (pool, opened) = counting_pool(3, Duration::from_millis(50));
        let (mut a, mut b, mut c) = (
            pool.get().unwrap(),
            pool.get().unwrap(),
            pool.get().unwrap(),
        );
        (*a, *b, *c) = (98, 98, 98); // all given back usable, then the server restarted
        drop((a, b, c));
        assert_eq!(opened.load(Ordering::SeqCst), 3);
        // One check fails; the two older ones go with it, and a fresh connection serves.
        assert_eq!(*pool.get().unwrap(), 3, "a fresh connection");
        assert_eq!(opened.load(Ordering::SeqCst), 4);
        let state = pool.lock();
        assert_eq!(
            (state.open, state.idle.len()),
            (1, 1),
            "only the fresh one is left"
        );
    }
}
