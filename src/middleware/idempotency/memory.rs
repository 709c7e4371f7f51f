//! The default [`IdempotencyStore`]: keys in this process's memory, bounded in count and
//! bytes, expiring after a TTL.
//!
//! It never blocks longer than one short lock, and never keeps more than `max_entries`
//! keys or `max_bytes` of stored responses.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use log::{debug, warn};

use super::{Claim, IdempotencyKey, IdempotencyStore, StoreError, StoredResponse};
use crate::middleware::concurrency::WarnThrottle;

/// One key's record.
#[derive(Debug)]
struct Entry {
    /// Insertion number: the age order, and who owns a running entry.
    seq: u64,
    /// When the first request arrived; the entry expires `ttl` later.
    created: Instant,
    /// Hash of the request's method, target and body.
    fingerprint: u64,
    /// The response to replay; `None` while the first request is still running.
    response: Option<StoredResponse>,
}

/// The bytes a stored response holds, for the `max_bytes` budget.
fn size(s: &StoredResponse) -> usize {
    let headers: usize = s.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    s.body.len() + headers
}

/// The bounded key store. All times are passed in, so tests control the clock.
#[derive(Debug)]
pub(super) struct Store {
    /// Every live key.
    entries: HashMap<IdempotencyKey, Entry>,
    /// The same keys by `seq`, oldest first: for expiry and eviction.
    by_age: BTreeMap<u64, IdempotencyKey>,
    /// The next `seq`.
    next_seq: u64,
    /// Sum of [`size`] over the stored responses.
    bytes: usize,
    /// How long an entry lives (`ttl`).
    pub(super) ttl: Duration,
    /// Never more keys than this (`max_entries`).
    pub(super) max_entries: usize,
    /// Never more stored bytes than this (`max_bytes`).
    pub(super) max_bytes: usize,
    /// Keeps evictions under pressure from flooding the log.
    log: WarnThrottle,
}

impl Store {
    fn new() -> Self {
        Store {
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
            bytes: 0,
            ttl: Duration::from_secs(24 * 3600),
            max_entries: 10_000,
            max_bytes: 64 << 20,
            log: WarnThrottle::new(),
        }
    }

    /// Looks `key` up for a request with `fingerprint`; a new key is recorded as running.
    fn begin(&mut self, key: &IdempotencyKey, fingerprint: u64, now: Instant) -> Claim {
        self.expire(now);
        if let Some(e) = self.entries.get(key) {
            return match &e.response {
                _ if e.fingerprint != fingerprint => Claim::Mismatch,
                None => Claim::InProgress,
                Some(stored) => Claim::Replay(stored.clone()),
            };
        }
        while self.entries.len() >= self.max_entries && self.evict_oldest(false, None) {}
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            seq,
            created: now,
            fingerprint,
            response: None,
        };
        self.entries.insert(key.clone(), entry);
        self.by_age.insert(seq, key.clone());
        Claim::Run(seq)
    }

    /// Attempt `seq` of `key` answered: keeps `stored` for replay, or releases the key when
    /// there is nothing to keep. Returns whether the response was stored.
    fn finish(&mut self, key: &IdempotencyKey, seq: u64, stored: Option<StoredResponse>) -> bool {
        if self.entries.get(key).is_none_or(|e| e.seq != seq) {
            return false; // expired or evicted meanwhile: the key is no longer ours
        }
        let Some(stored) = stored.filter(|s| size(s) <= self.max_bytes) else {
            self.remove(key);
            return false;
        };
        let size = size(&stored);
        while self.bytes + size > self.max_bytes && self.evict_oldest(true, Some(seq)) {}
        if let Some(e) = self.entries.get_mut(key) {
            e.response = Some(stored);
            self.bytes += size;
        }
        true
    }

    /// Forgets `key`.
    fn remove(&mut self, key: &IdempotencyKey) {
        if let Some(e) = self.entries.remove(key) {
            self.by_age.remove(&e.seq);
            if let Some(s) = &e.response {
                self.bytes -= size(s);
            }
        }
    }

    /// Drops the entries older than `ttl` (the oldest come first in `by_age`).
    fn expire(&mut self, now: Instant) {
        while let Some(oldest) = self.by_age.first_entry() {
            match self.entries.get(oldest.get()) {
                Some(e) if now.saturating_duration_since(e.created) < self.ttl => break,
                _ => {}
            }
            let key = oldest.remove();
            if let Some(s) = self.entries.remove(&key).and_then(|e| e.response) {
                self.bytes -= size(&s);
            }
        }
    }

    /// Evicts the oldest answered entry (other than `skip`); unless `done_only`, the oldest
    /// running one when none has answered. Returns false when there was nothing to evict.
    fn evict_oldest(&mut self, done_only: bool, skip: Option<u64>) -> bool {
        let is_done =
            |k: &IdempotencyKey| self.entries.get(k).is_some_and(|e| e.response.is_some());
        let mut candidates = self.by_age.iter().filter(|&(s, _)| Some(*s) != skip);
        let victim = candidates
            .clone()
            .find(|&(_, k)| is_done(k))
            .or_else(|| if done_only { None } else { candidates.next() })
            .map(|(_, k)| k.clone());
        let Some(key) = victim else {
            return false;
        };
        match self.log.should_warn() {
            Some(quiet) => warn!(
                "idempotency store full ({} keys, {} bytes): evicting the oldest key \
                 ({quiet} more evictions since the last warning)",
                self.entries.len(),
                self.bytes
            ),
            None => debug!("idempotency store full: evicting the oldest key"),
        }
        self.remove(&key);
        true
    }
}

/// The in-memory store behind [`Idempotency::new`](super::Idempotency::new): one
/// process's keys, gone when it exits.
#[derive(Debug)]
pub(super) struct MemoryStore {
    /// The keys.
    store: Mutex<Store>,
    /// A per-process random hash key: nothing outside this process compares the hashes.
    hash_key: [u64; 2],
}

impl MemoryStore {
    pub(super) fn new() -> Self {
        let random = RandomState::new();
        MemoryStore {
            store: Mutex::new(Store::new()),
            hash_key: [random.hash_one(1u8), random.hash_one(2u8)],
        }
    }

    /// The settings, for the builder methods (no lock: the store is not shared yet).
    pub(super) fn settings(&mut self) -> &mut Store {
        self.store.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// (keys, bytes) held, for `Debug`.
    pub(super) fn usage(&self) -> (usize, usize) {
        let s = self.lock();
        (s.entries.len(), s.bytes)
    }
}

impl IdempotencyStore for MemoryStore {
    fn begin(&self, key: &IdempotencyKey, fingerprint: u64) -> Result<Claim, StoreError> {
        Ok(self.lock().begin(key, fingerprint, Instant::now()))
    }

    fn finish(
        &self,
        key: &IdempotencyKey,
        attempt: u64,
        response: Option<StoredResponse>,
    ) -> Result<bool, StoreError> {
        Ok(self.lock().finish(key, attempt, response))
    }

    /// Nothing to do: a running key is never taken over here (it stays `409` until it
    /// expires), and keeping a response never fails.
    fn mark_unknown(&self, _: &IdempotencyKey, _: u64) -> Result<(), StoreError> {
        Ok(())
    }

    fn hash_key(&self) -> [u64; 2] {
        self.hash_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::Response;

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey {
            scope: 0,
            key: k.into(),
        }
    }

    fn stored(body: &str) -> Option<StoredResponse> {
        StoredResponse::of(&Response::text(body.to_string()))
    }

    fn run(store: &mut Store, k: &str, now: Instant) -> u64 {
        match store.begin(&key(k), 7, now) {
            Claim::Run(seq) => seq,
            other => panic!("{k}: expected Run, got {other:?}"),
        }
    }

    #[test]
    fn stored_entries_expire_after_the_ttl() {
        let t0 = Instant::now();
        let mut s = Store::new();
        s.ttl = Duration::from_secs(60);
        let seq = run(&mut s, "k", t0);
        assert!(s.finish(&key("k"), seq, stored("one")));
        let at = |secs| t0 + Duration::from_secs(secs);
        assert!(matches!(s.begin(&key("k"), 7, at(59)), Claim::Replay(_)));
        run(&mut s, "k", at(60));
        assert_eq!(s.entries.len(), 1);
        assert_eq!(s.bytes, 0, "the expired response's bytes were released");
    }

    #[test]
    fn the_oldest_answered_key_is_evicted_when_full() {
        let t0 = Instant::now();
        let mut s = Store::new();
        s.max_entries = 3;
        let running = run(&mut s, "running", t0);
        for k in ["a", "b"] {
            let seq = run(&mut s, k, t0);
            s.finish(&key(k), seq, stored(k));
        }
        run(&mut s, "c", t0);
        assert_eq!(s.entries.len(), 3);
        // The oldest answered key went; the running one and the newer stay.
        assert!(!s.entries.contains_key(&key("a")));
        assert!(s.entries.contains_key(&key("running")));
        assert!(s.entries.contains_key(&key("b")));
        for i in 0..1000 {
            run(&mut s, &format!("k{i}"), t0);
            assert!(s.entries.len() <= 3);
        }
        // The running entry was evicted eventually; finishing it stores nothing.
        assert!(!s.finish(&key("running"), running, stored("late")));
        assert_eq!(s.by_age.len(), s.entries.len());
    }

    #[test]
    fn stored_bytes_stay_within_max_bytes() {
        let t0 = Instant::now();
        let mut s = Store::new();
        s.max_bytes = 300;
        let one = size(&stored(&"x".repeat(30)).unwrap());
        for i in 0..10 {
            let k = format!("k{i}");
            let seq = run(&mut s, &k, t0);
            assert!(s.finish(&key(&k), seq, stored(&"x".repeat(30))));
            assert!(s.bytes <= 300);
        }
        assert_eq!(s.bytes, (300 / one) * one);
        let seq = run(&mut s, "huge", t0);
        assert!(!s.finish(&key("huge"), seq, stored(&"x".repeat(400))));
        assert!(!s.entries.contains_key(&key("huge")), "released");
    }
}
