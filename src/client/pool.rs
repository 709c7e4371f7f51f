//! Keep-alive pooling: this module owns the idle connections a [`Client`](super::Client)
//! may reuse, keyed by (host, port), with their expiry and the per-host and total caps.
//! It never does I/O under its lock: the staleness peek and every close happen after the
//! lock is released, and it runs no thread (expired connections are closed on the next
//! checkout or return).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use log::debug;

use super::driver::{Connection, PoolKey};

/// The idle connections, most recently returned last.
#[derive(Debug)]
pub(crate) struct Pool {
    state: Mutex<State>,
    /// Most idle connections kept per (host, port); 0 disables pooling.
    max_per_host: usize,
    /// Most idle connections kept in all; the oldest goes first past it.
    max_total: usize,
    /// How long a connection may sit idle before it is closed instead of reused.
    idle_timeout: Duration,
}

#[derive(Debug, Default)]
struct State {
    hosts: HashMap<PoolKey, Vec<Idle>>,
    /// Sum of the lengths in `hosts`.
    total: usize,
}

#[derive(Debug)]
struct Idle {
    conn: Connection,
    since: Instant,
}

impl Pool {
    pub(crate) fn new(max_per_host: usize, max_total: usize, idle_timeout: Duration) -> Self {
        Pool {
            state: Mutex::new(State::default()),
            max_per_host,
            max_total,
            idle_timeout,
        }
    }

    /// A live idle connection to `key`, most recently used first (the one least likely
    /// to have been closed by the server); stale and expired ones are closed on the way.
    pub(crate) fn checkout(&self, key: &PoolKey) -> Option<Connection> {
        loop {
            let (candidate, expired) = {
                let mut st = self.lock();
                let expired = st.prune(self.idle_timeout, Instant::now());
                let conn = st.hosts.get_mut(key).and_then(Vec::pop);
                if conn.is_some() {
                    st.total -= 1;
                    if st.hosts.get(key).is_some_and(Vec::is_empty) {
                        st.hosts.remove(key);
                    }
                }
                (conn, expired)
            };
            close_all(expired, "idle past idle_timeout");
            let idle = candidate?;
            if idle.conn.is_stale() {
                debug!(
                    "client conn={} closed by the server while idle; discarded",
                    idle.conn.id
                );
                idle.conn.close();
                continue;
            }
            return Some(idle.conn);
        }
    }

    /// Keeps a connection whose response ended persistent; closes it instead when it is
    /// not reusable or the caps are reached (this host's: the returned one is closed; the
    /// total: the oldest idle one anywhere is).
    pub(crate) fn put(&self, conn: Connection) {
        if !conn.is_reusable() || self.max_per_host == 0 || self.max_total == 0 {
            conn.close();
            return;
        }
        let mut closing = Vec::new();
        {
            let mut st = self.lock();
            let now = Instant::now();
            closing.extend(st.prune(self.idle_timeout, now));
            let here = st.hosts.get(&conn.key).map_or(0, Vec::len);
            if here >= self.max_per_host {
                closing.push(Idle { conn, since: now });
            } else {
                if st.total >= self.max_total {
                    closing.extend(st.evict_oldest());
                }
                st.hosts
                    .entry(conn.key.clone())
                    .or_default()
                    .push(Idle { conn, since: now });
                st.total += 1;
            }
        }
        close_all(closing, "over max_idle_per_host / max_idle_total");
    }

    /// Idle connections currently kept (all hosts).
    pub(crate) fn idle_count(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (no invariant spans an
        // await point); keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Removes the connections idle for longer than `idle_timeout`.
    fn prune(&mut self, idle_timeout: Duration, now: Instant) -> Vec<Idle> {
        let mut out = Vec::new();
        for list in self.hosts.values_mut() {
            let mut i = 0;
            while i < list.len() {
                if now.duration_since(list[i].since) >= idle_timeout {
                    out.push(list.remove(i));
                } else {
                    i += 1;
                }
            }
        }
        self.hosts.retain(|_, l| !l.is_empty());
        self.total -= out.len();
        out
    }

    /// Removes the connection idle the longest, across hosts.
    fn evict_oldest(&mut self) -> Option<Idle> {
        let key = self
            .hosts
            .iter()
            .filter_map(|(k, l)| l.first().map(|i| (k, i.since)))
            .min_by_key(|&(_, since)| since)
            .map(|(k, _)| k.clone())?;
        let list = self.hosts.get_mut(&key)?;
        let oldest = list.remove(0);
        if list.is_empty() {
            self.hosts.remove(&key);
        }
        self.total -= 1;
        Some(oldest)
    }
}

fn close_all(idle: Vec<Idle>, why: &str) {
    for i in idle {
        debug!("client conn={} closed: {why}", i.conn.id);
        i.conn.close();
    }
}
