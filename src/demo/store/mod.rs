//! The demo's storage: users and idempotency keys behind traits, in SQLite (a file,
//! `DEMO_DB`, the default) or PostgreSQL (`DEMO_DATABASE_URL`, feature `postgres`).
//!
//! Handlers see only [`UsersStore`] and the library's `IdempotencyStore`; which database
//! holds the rows is decided once, at start, by [`open_from_env`]. Every call may block
//! (it runs on a worker) but never longer than the pool's bounded wait plus the query.

pub mod pool;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use h1server::middleware::{Claim, IdempotencyStore, StoredResponse};
use serde::Serialize;

/// The variable naming the SQLite file.
pub const DB_ENV: &str = "DEMO_DB";
/// The variable that switches both stores to PostgreSQL.
pub const DATABASE_URL_ENV: &str = "DEMO_DATABASE_URL";
/// `DEMO_DB` when unset.
pub const DEFAULT_DB: &str = "./data/h1server.db";
/// How long a request waits for a free connection before `503`.
const POOL_WAIT: Duration = Duration::from_secs(2);
/// How long a key is kept (the in-memory store's default too).
const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
/// A key still marked running this long after its attempt started was left by a process
/// that died (or a handler stuck far past the demo's 10 s timeout): a retry takes it over
/// — unless it was marked "outcome unknown" (it ran, but its response was not stored).
const IDEMPOTENCY_LEASE: Duration = Duration::from_secs(60);

/// A user as stored and as the API shows it (its JSON: `id`, `name`, `email`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    /// 1 when created, one more at each update: the API's `ETag` changes with it, and a
    /// conditional update applies only to the version its precondition was evaluated on.
    #[serde(skip)]
    pub version: u64,
    /// When it was created or last updated (ms since the epoch): `Last-Modified`. `None`
    /// for a row written before the column existed (schema v3 and older).
    #[serde(skip)]
    pub updated_ms: Option<i64>,
}

/// What an update did.
#[derive(Debug, PartialEq, Eq)]
pub enum Updated {
    /// The row now holds these fields (and its new version).
    Done(User),
    /// No user has this id.
    Missing,
    /// The row was no longer at the version the update was conditional on.
    Changed,
}

/// The fields a client sets (validated by the handler before they reach a store).
#[derive(Debug)]
pub struct NewUser {
    pub name: String,
    pub email: String,
}

/// One page of users, by id, and how many there are in all.
#[derive(Debug)]
pub struct Page {
    pub users: Vec<User>,
    pub total: u64,
}

/// Why a store call failed; the handler's status follows the kind.
#[derive(Debug)]
pub enum DbError {
    /// Every pooled connection stayed busy for the whole wait, or the database stayed
    /// locked (SQLite's `busy_timeout`): `503`, retry soon.
    Busy(String),
    /// The database cannot be reached: `503`.
    Unavailable(String),
    /// A query failed: `500`.
    Failed(String),
}

impl DbError {
    /// What a client or an unauthenticated probe may be told (no addresses or SQL).
    pub fn public(&self) -> &'static str {
        match self {
            DbError::Busy(_) => "database busy",
            DbError::Unavailable(_) => "database unavailable",
            DbError::Failed(_) => "database error",
        }
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (DbError::Busy(m) | DbError::Unavailable(m) | DbError::Failed(m)) = self;
        write!(f, "{}: {m}", self.public())
    }
}

impl std::error::Error for DbError {}

/// The users of the API. Ids are given by the store, from 1, never reused.
pub trait UsersStore: Send + Sync {
    /// Stores a new user and returns it with its id.
    fn create(&self, user: &NewUser) -> Result<User, DbError>;
    /// The user with this id, if any.
    fn get(&self, id: u64) -> Result<Option<User>, DbError>;
    /// Replaces the user's fields, bumps its version and sets its modification time — only
    /// if the row is still at `if_version` when that is given (one statement: a write
    /// between the caller's read and this one makes it `Changed`, never lost).
    fn update(&self, id: u64, user: &NewUser, if_version: Option<u64>) -> Result<Updated, DbError>;
    /// At most `limit` users by id, skipping the first `offset`, and the total count.
    fn list(&self, limit: u32, offset: u64) -> Result<Page, DbError>;
    /// A round trip to the database (`SELECT 1`), for start-up and `/readyz`.
    fn ping(&self) -> Result<(), DbError>;
}

/// Both stores of one database, and what to log about it.
pub struct Stores {
    pub users: Arc<dyn UsersStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// e.g. `sqlite ./data/h1server.db (WAL, schema v2, pool of 16)`.
    pub description: String,
}

impl Stores {
    fn of<S: UsersStore + IdempotencyStore + 'static>(store: S, description: String) -> Self {
        let store = Arc::new(store);
        Stores {
            users: store.clone(),
            idempotency: store,
            description,
        }
    }

    /// A private in-memory SQLite database (for `--routes` and tests).
    pub fn in_memory() -> Result<Self, String> {
        sqlite::open(":memory:", 1)
    }
}

/// A connection count (`DEMO_DB_POOL`, `[demo] db_pool`): at least 1.
pub fn parse_pool(v: &str) -> Result<usize, &'static str> {
    v.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or("expected a connection count ≥ 1")
}

/// Opens the stores the settings name (the variables, or the config file's `[demo]`
/// table): PostgreSQL at `url` when it is given, else SQLite at `db` (default
/// `./data/h1server.db`); `pool` connections, by default one per worker.
pub fn open(
    db: Option<&str>,
    url: Option<&str>,
    pool: Option<usize>,
    workers: usize,
) -> Result<Stores, String> {
    let pool = pool.unwrap_or(workers.max(1));
    let stores = match url {
        Some(url) if !url.trim().is_empty() => open_postgres(url.trim(), pool)?,
        _ => {
            let path = db
                .filter(|p| !p.trim().is_empty())
                .map_or_else(|| DEFAULT_DB.to_string(), str::to_string);
            sqlite::open(&path, pool).map_err(|e| format!("{DB_ENV}={path}: {e}"))?
        }
    };
    stores
        .users
        .ping()
        .map_err(|e| format!("database ping failed: {e}"))?;
    Ok(stores)
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str, pool: usize) -> Result<Stores, String> {
    postgres::open(url, pool).map_err(|e| format!("{DATABASE_URL_ENV}={}: {e}", redact(url)))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(url: &str, _pool: usize) -> Result<Stores, String> {
    Err(format!(
        "{DATABASE_URL_ENV}={} is set, but this binary was built without PostgreSQL \
         support: build it with `cargo build --features postgres`, or unset it to use \
         SQLite ({DB_ENV})",
        redact(url)
    ))
}

/// `url` (a URL or `key=value` words) with its password replaced by `***`, for error
/// messages and logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        let words = url.split_whitespace().map(|w| match w.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => "password=***",
            _ => w,
        });
        return words.collect::<Vec<_>>().join(" ");
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch: the stored clock, comparable across processes.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Attempt numbers for the idempotency records: random-looking and distinct across the
/// processes sharing a database (a per-process counter would collide).
struct AttemptIds {
    random: RandomState,
    next: AtomicU64,
}

impl AttemptIds {
    fn new() -> Self {
        AttemptIds {
            random: RandomState::new(),
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> u64 {
        self.random
            .hash_one(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// A random hash key for a new database's idempotency records.
fn new_hash_key() -> [u64; 2] {
    let random = RandomState::new();
    [random.hash_one(1u8), random.hash_one(2u8)]
}

/// An idempotency record as both SQL stores read it.
struct Record {
    fingerprint: u64,
    attempt: u64,
    started_ms: i64,
    /// `None` while running.
    response: Option<StoredResponse>,
    /// The attempt ran but its response could not be stored (`mark_unknown`).
    unknown: bool,
}

/// What to do with an existing record (the same rules in every SQL store, so they
/// behave like the in-memory one).
enum Decision {
    Answer(Claim),
    /// Left running past the lease: take it over with a compare-and-set on `attempt`.
    TakeOver {
        stale: u64,
    },
}

fn decide(record: Record, fingerprint: u64, now_ms: i64) -> Decision {
    if record.fingerprint != fingerprint {
        return Decision::Answer(Claim::Mismatch);
    }
    match record.response {
        Some(stored) => Decision::Answer(Claim::Replay(stored)),
        // It ran: its effect may be done, so it is never taken over.
        None if record.unknown => Decision::Answer(Claim::Unknown),
        None if now_ms - record.started_ms >= IDEMPOTENCY_LEASE.as_millis() as i64 => {
            Decision::TakeOver {
                stale: record.attempt,
            }
        }
        None => Decision::Answer(Claim::InProgress),
    }
}

/// Headers as stored: a JSON array of `[name, value]` pairs.
fn headers_to_json(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_string())
}

fn headers_from_json(text: &str) -> Result<Vec<(String, String)>, DbError> {
    serde_json::from_str(text).map_err(|e| DbError::Failed(format!("stored headers: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/h1?sslmode=disable"),
            "postgres://app:***@db:5432/h1?sslmode=disable"
        );
        assert_eq!(redact("postgres://app@db/h1"), "postgres://app@db/h1");
        assert_eq!(
            redact("host=/tmp password=pw dbname=x"),
            "host=/tmp password=*** dbname=x"
        );
    }
}
