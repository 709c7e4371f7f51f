//! The SQLite stores: one database file (`DEMO_DB`) in WAL mode, a pool of connections
//! sized to the workers, the schema migrated at start.
//!
//! WAL lets readers run beside the one writer, and `busy_timeout` makes a writer wait for
//! the lock instead of failing, so several instances on one machine can share the file.
//! Nothing here ever holds a connection across calls.
//!
//! The file is identified by its device and inode at open: when it is removed or replaced
//! under the running process (an operator cleaning `data/`, a volume remounted), every
//! call answers `DbError::Unavailable` and `/readyz` fails, instead of acknowledging
//! writes into an unlinked file that the next start will not see.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use h1server::middleware::{Claim, IdempotencyKey, IdempotencyStore, StoreError, StoredResponse};
use log::{error, info, warn};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::pool::{Conn, Pool};
use super::{
    AttemptIds, DbError, Decision, IDEMPOTENCY_TTL, NewUser, POOL_WAIT, Page, Record, Stores,
    Updated, User, UsersStore, decide, headers_from_json, headers_to_json, new_hash_key, now_ms,
};

/// How long a statement waits for another connection's (or process's) write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one step per migration; `schema_version` records the steps applied.
/// Append only: a released step never changes.
const MIGRATIONS: &[&str] = &[
    // 1: the users API.
    "CREATE TABLE users (
         id    INTEGER PRIMARY KEY AUTOINCREMENT,
         name  TEXT NOT NULL,
         email TEXT NOT NULL
     );",
    // 2: idempotency keys (the middleware's records) and the key of their hashes.
    "CREATE TABLE idempotency_keys (
         scope       INTEGER NOT NULL,
         key         TEXT NOT NULL,
         fingerprint INTEGER NOT NULL,
         attempt     INTEGER NOT NULL,
         created_ms  INTEGER NOT NULL,
         started_ms  INTEGER NOT NULL,
         status      INTEGER,
         headers     TEXT,
         body        BLOB,
         PRIMARY KEY (scope, key)
     );
     CREATE INDEX idempotency_keys_created ON idempotency_keys (created_ms);
     CREATE TABLE idempotency_secret (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         k0 INTEGER NOT NULL,
         k1 INTEGER NOT NULL
     );",
    // 3: a key whose attempt ran but whose response could not be stored: never run again.
    "ALTER TABLE idempotency_keys ADD COLUMN outcome_unknown INTEGER NOT NULL DEFAULT 0;",
    // 4: the users API's validators: a version per row (its ETag) and the time it was
    // last written (its Last-Modified; unknown for older rows).
    "ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE users ADD COLUMN updated_ms INTEGER;",
];

/// Both stores on one SQLite database.
pub struct Sqlite {
    pool: Pool<Connection>,
    /// The idempotency hash key, kept in the database so every instance shares it.
    hash_key: [u64; 2],
    attempts: AttemptIds,
    /// The database file and its identity at open (`None` for `:memory:`).
    file: Option<(String, FileId)>,
    /// Whether the file's loss has been logged (once, at error).
    lost: AtomicBool,
}

/// A file's identity: its device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

fn file_id(path: &str) -> std::io::Result<FileId> {
    let meta = std::fs::metadata(path)?;
    Ok(FileId {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

fn failed(e: rusqlite::Error) -> DbError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => DbError::Busy(e.to_string()),
        Some(ErrorCode::CannotOpen) => DbError::Unavailable(e.to_string()),
        _ => DbError::Failed(e.to_string()),
    }
}

/// One connection with the settings every pooled connection has. Only the first
/// (`create`) may create the file: a pooled connection opened after the file was removed
/// must fail, not start an empty database.
fn connect(path: &str, create: bool) -> Result<Connection, DbError> {
    let conn = if create {
        Connection::open(path)
    } else {
        Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
    }
    .map_err(|e| DbError::Unavailable(format!("cannot open the database: {e}")))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
    // WAL: readers never block the writer nor the writer them; NORMAL sync is safe with
    // WAL (a power loss may lose the last commits, never corrupt the file).
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(failed)?;
    if path != ":memory:" && !mode.eq_ignore_ascii_case("wal") {
        warn!("{path}: journal_mode is {mode}, not wal: other instances will wait on writes");
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(failed)?;
    Ok(conn)
}

/// Applies the migrations this database lacks, in one write transaction (so two
/// instances starting together migrate once). Returns the schema version.
fn migrate(conn: &mut Connection) -> Result<usize, DbError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TEXT NOT NULL
         );",
    )
    .map_err(failed)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(failed)?;
    let current = current as usize;
    if current > MIGRATIONS.len() {
        return Err(DbError::Failed(format!(
            "the schema is at version {current}, newer than this binary knows ({}): \
             run a newer h1server",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i + 1;
        tx.execute_batch(sql)
            .map_err(|e| DbError::Failed(format!("migration {version}: {e}")))?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, datetime('now'))",
            [version as i64],
        )
        .map_err(failed)?;
        info!("database: migration {version} applied");
    }
    let [k0, k1] = new_hash_key();
    tx.execute(
        "INSERT INTO idempotency_secret (id, k0, k1) VALUES (1, ?1, ?2) ON CONFLICT DO NOTHING",
        [k0 as i64, k1 as i64],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)?;
    Ok(MIGRATIONS.len())
}

/// Opens (creating the file and its directory) and migrates the database at `path`,
/// with a pool of `pool` connections; `:memory:` is a private database on one connection
/// (each SQLite connection to `:memory:` would be a database of its own).
pub fn open(path: &str, pool: usize) -> Result<Stores, String> {
    let (store, version) = open_store(path, pool)?;
    let size = if path == ":memory:" { 1 } else { pool };
    let description = format!("sqlite {path} (WAL, schema v{version}, pool of {size})");
    Ok(Stores::of(store, description))
}

/// The store and its schema version.
fn open_store(path: &str, pool: usize) -> Result<(Sqlite, usize), String> {
    let memory = path == ":memory:";
    if !memory {
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
        }
    }
    let mut first = connect(path, true).map_err(|e| e.to_string())?;
    let version = migrate(&mut first).map_err(|e| e.to_string())?;
    let hash_key = first
        .query_row(
            "SELECT k0, k1 FROM idempotency_secret WHERE id = 1",
            [],
            |r| Ok([r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64]),
        )
        .map_err(|e| e.to_string())?;
    let file = if memory {
        None
    } else {
        let id = file_id(path).map_err(|e| format!("cannot stat {path}: {e}"))?;
        Some((path.to_string(), id))
    };
    let size = if memory { 1 } else { pool };
    let owned = path.to_string();
    let store = Sqlite {
        pool: Pool::new(
            first,
            size,
            POOL_WAIT,
            move || connect(&owned, memory),
            |_| false,
            |_, _| true,
        ),
        hash_key,
        attempts: AttemptIds::new(),
        file,
        lost: AtomicBool::new(false),
    };
    Ok((store, version))
}

fn user_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get::<_, i64>(0)? as u64,
        name: row.get(1)?,
        email: row.get(2)?,
        version: row.get::<_, i64>(3)? as u64,
        updated_ms: row.get(4)?,
    })
}

/// The columns [`user_of`] reads.
const USER_COLUMNS: &str = "id, name, email, version, updated_ms";

impl Sqlite {
    /// `Unavailable` when the database file is no longer at its path (removed, or
    /// another file put there): the pooled connections still write to the old one, which
    /// nothing will read again.
    fn check_file(&self) -> Result<(), DbError> {
        let Some((path, opened)) = &self.file else {
            return Ok(());
        };
        let problem = match file_id(path) {
            Ok(id) if id == *opened => return Ok(()),
            Ok(id) => format!(
                "the database file {path} was replaced (inode {} on device {}, opened as \
                 inode {} on device {}): restart to use it",
                id.ino, id.dev, opened.ino, opened.dev
            ),
            Err(e) => format!("the database file {path} is gone ({e}): restart to recreate it"),
        };
        if !self.lost.swap(true, Ordering::Relaxed) {
            error!("{problem}; every database call fails until then");
        }
        Err(DbError::Unavailable(problem))
    }

    /// A pooled connection, once the file is known to be still there.
    fn conn(&self) -> Result<Conn<'_, Connection>, DbError> {
        self.check_file()?;
        self.pool.get()
    }
}

impl UsersStore for Sqlite {
    fn create(&self, user: &NewUser) -> Result<User, DbError> {
        let conn = self.conn()?;
        let now = now_ms();
        let id: i64 = conn
            .query_row(
                "INSERT INTO users (name, email, version, updated_ms) VALUES (?1, ?2, 1, ?3) \
                 RETURNING id",
                params![user.name, user.email, now],
                |r| r.get(0),
            )
            .map_err(failed)?;
        // Removed while the row was written: it went to a file nothing reads again.
        self.check_file()?;
        Ok(User {
            id: id as u64,
            name: user.name.clone(),
            email: user.email.clone(),
            version: 1,
            updated_ms: Some(now),
        })
    }

    fn get(&self, id: u64) -> Result<Option<User>, DbError> {
        let conn = self.conn()?;
        conn.query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
            [id as i64],
            user_of,
        )
        .optional()
        .map_err(failed)
    }

    fn update(&self, id: u64, user: &NewUser, if_version: Option<u64>) -> Result<Updated, DbError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                &format!(
                    "UPDATE users SET name = ?1, email = ?2, version = version + 1, \
                     updated_ms = ?3 WHERE id = ?4 AND (?5 IS NULL OR version = ?5) \
                     RETURNING {USER_COLUMNS}"
                ),
                params![
                    user.name,
                    user.email,
                    now_ms(),
                    id as i64,
                    if_version.map(|v| v as i64)
                ],
                user_of,
            )
            .optional()
            .map_err(failed)?;
        self.check_file()?;
        Ok(match row {
            Some(u) => Updated::Done(u),
            None if if_version.is_some() => Updated::Changed,
            None => Updated::Missing,
        })
    }

    fn list(&self, limit: u32, offset: u64) -> Result<Page, DbError> {
        let mut conn = self.conn()?;
        // One read transaction: the page and the total see the same snapshot.
        let tx = conn.transaction().map_err(failed)?;
        let total: i64 = tx
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
            .map_err(failed)?;
        let users = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT ?1 OFFSET ?2"
                ))
                .map_err(failed)?;
            stmt.query_map([i64::from(limit), offset as i64], user_of)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(failed)?
        };
        tx.finish().map_err(failed)?;
        Ok(Page {
            users,
            total: total as u64,
        })
    }

    fn ping(&self) -> Result<(), DbError> {
        let conn = self.conn()?;
        conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .map(drop)
            .map_err(failed)
    }
}

impl Sqlite {
    fn begin(&self, key: &IdempotencyKey, fingerprint: u64) -> Result<Claim, DbError> {
        let mut conn = self.conn()?;
        // IMMEDIATE: the write lock from the start, so the whole look-up-or-insert is one
        // atomic step for every connection and process on the file.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        let now = now_ms();
        let (scope, name) = (key.scope as i64, key.key.as_str());
        tx.execute(
            "DELETE FROM idempotency_keys WHERE created_ms <= ?1",
            [now - IDEMPOTENCY_TTL.as_millis() as i64],
        )
        .map_err(failed)?;
        let record = tx
            .query_row(
                "SELECT fingerprint, attempt, started_ms, status, headers, body, outcome_unknown
                 FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
                params![scope, name],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<Vec<u8>>>(5)?,
                        r.get::<_, bool>(6)?,
                    ))
                },
            )
            .optional()
            .map_err(failed)?;
        let attempt = self.attempts.next();
        let claim = match record {
            None => {
                tx.execute(
                    "INSERT INTO idempotency_keys
                         (scope, key, fingerprint, attempt, created_ms, started_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    params![scope, name, fingerprint as i64, attempt as i64, now],
                )
                .map_err(failed)?;
                Claim::Run(attempt)
            }
            Some((fp, stale, started_ms, status, headers, body, unknown)) => {
                let response = match status {
                    Some(status) => Some(StoredResponse {
                        status: status as u16,
                        headers: headers_from_json(headers.as_deref().unwrap_or("[]"))?,
                        body: body.unwrap_or_default(),
                    }),
                    None => None,
                };
                let record = Record {
                    fingerprint: fp as u64,
                    attempt: stale as u64,
                    started_ms,
                    response,
                    unknown,
                };
                match decide(record, fingerprint, now) {
                    Decision::Answer(claim) => claim,
                    Decision::TakeOver { stale } => {
                        warn!("idempotency key {name:?} was left running: a retry takes it over");
                        tx.execute(
                            "UPDATE idempotency_keys SET attempt = ?1, started_ms = ?2
                             WHERE scope = ?3 AND key = ?4 AND attempt = ?5",
                            params![attempt as i64, now, scope, name, stale as i64],
                        )
                        .map_err(failed)?;
                        Claim::Run(attempt)
                    }
                }
            }
        };
        tx.commit().map_err(failed)?;
        self.check_file()?;
        Ok(claim)
    }

    fn finish(
        &self,
        key: &IdempotencyKey,
        attempt: u64,
        response: Option<StoredResponse>,
    ) -> Result<bool, DbError> {
        let conn = self.conn()?;
        let (scope, name, attempt) = (key.scope as i64, key.key.as_str(), attempt as i64);
        let n = match response {
            Some(r) => conn.execute(
                "UPDATE idempotency_keys SET status = ?1, headers = ?2, body = ?3
                 WHERE scope = ?4 AND key = ?5 AND attempt = ?6 AND status IS NULL",
                params![
                    i64::from(r.status),
                    headers_to_json(&r.headers),
                    r.body,
                    scope,
                    name,
                    attempt
                ],
            ),
            None => conn
                .execute(
                    "DELETE FROM idempotency_keys
                     WHERE scope = ?1 AND key = ?2 AND attempt = ?3 AND status IS NULL",
                    params![scope, name, attempt],
                )
                .map(|_| 0),
        }
        .map_err(failed)?;
        self.check_file()?;
        Ok(n == 1)
    }

    fn mark_unknown(&self, key: &IdempotencyKey, attempt: u64) -> Result<(), DbError> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE idempotency_keys SET outcome_unknown = 1
             WHERE scope = ?1 AND key = ?2 AND attempt = ?3 AND status IS NULL",
            params![key.scope as i64, key.key, attempt as i64],
        )
        .map_err(failed)?;
        self.check_file()
    }
}

impl IdempotencyStore for Sqlite {
    fn begin(&self, key: &IdempotencyKey, fingerprint: u64) -> Result<Claim, StoreError> {
        Ok(Sqlite::begin(self, key, fingerprint)?)
    }

    fn finish(
        &self,
        key: &IdempotencyKey,
        attempt: u64,
        response: Option<StoredResponse>,
    ) -> Result<bool, StoreError> {
        Ok(Sqlite::finish(self, key, attempt, response)?)
    }

    fn mark_unknown(&self, key: &IdempotencyKey, attempt: u64) -> Result<(), StoreError> {
        Ok(Sqlite::mark_unknown(self, key, attempt)?)
    }

    fn hash_key(&self) -> [u64; 2] {
        self.hash_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> NewUser {
        NewUser {
            name: name.into(),
            email: format!("{name}@example.com"),
        }
    }

    #[test]
    fn users_are_created_read_updated_and_paged_by_id() {
        let stores = open(":memory:", 4).unwrap();
        let users = &stores.users;
        for name in ["ada", "grace", "edsger"] {
            users.create(&user(name)).unwrap();
        }
        assert_eq!(users.get(2).unwrap().unwrap().name, "grace");
        assert_eq!(users.get(9).unwrap(), None);
        let grace = users.get(2).unwrap().unwrap();
        assert_eq!(grace.version, 1);
        assert!(grace.updated_ms.is_some());
        let Updated::Done(hopper) = users.update(2, &user("hopper"), None).unwrap() else {
            panic!("not updated");
        };
        assert_eq!((hopper.id, hopper.version), (2, 2));
        assert_eq!(users.get(2).unwrap().unwrap(), hopper);
        assert_eq!(users.update(9, &user("x"), None).unwrap(), Updated::Missing);
        // Conditional on a version: only that one is overwritten.
        let stale = users.update(2, &user("lovelace"), Some(1)).unwrap();
        assert_eq!(stale, Updated::Changed);
        assert_eq!(users.get(2).unwrap().unwrap().name, "hopper");
        let done = users.update(2, &user("lovelace"), Some(2)).unwrap();
        assert!(matches!(done, Updated::Done(u) if u.version == 3 && u.name == "lovelace"));
        let page = users.list(2, 1).unwrap();
        let ids: Vec<u64> = page.users.iter().map(|u| u.id).collect();
        assert_eq!((ids, page.total), (vec![2, 3], 3));
        assert!(users.list(20, 3).unwrap().users.is_empty());
        users.ping().unwrap();
    }

    #[test]
    fn a_removed_or_replaced_file_makes_every_call_unavailable() {
        let dir = std::env::temp_dir().join(format!(
            "h1-sqlite-rm-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let path = dir.join("h1.db");
        let path = path.to_str().unwrap();
        let stores = open(path, 2).unwrap();
        stores.users.create(&user("ada")).unwrap();
        stores.users.ping().unwrap();
        std::fs::remove_file(path).unwrap();
        let unavailable = |r: Result<(), DbError>| matches!(r, Err(DbError::Unavailable(_)));
        assert!(unavailable(stores.users.ping()));
        assert!(unavailable(stores.users.create(&user("grace")).map(drop)));
        assert!(unavailable(stores.users.get(1).map(drop)));
        // Another file at the path (a restored backup) is not the one the pool has open.
        std::fs::write(path, b"").unwrap();
        assert!(unavailable(stores.users.ping()));
        drop(stores);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn migrations_run_once_and_a_newer_schema_is_refused() {
        let mut conn = connect(":memory:", true).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len());
        assert_eq!(migrate(&mut conn).unwrap(), MIGRATIONS.len(), "idempotent");
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows as usize, MIGRATIONS.len());
        conn.execute(
            "INSERT INTO schema_version VALUES (99, datetime('now'))",
            [],
        )
        .unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("version 99"), "{err}");
    }

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey {
            scope: 7,
            key: k.into(),
        }
    }

    #[test]
    fn idempotency_records_run_replay_conflict_and_mismatch_like_memory() {
        let stores = open(":memory:", 1).unwrap();
        let s = &stores.idempotency;
        let Claim::Run(attempt) = s.begin(&key("k"), 1).unwrap() else {
            panic!("first is Run");
        };
        assert!(matches!(s.begin(&key("k"), 1).unwrap(), Claim::InProgress));
        assert!(matches!(s.begin(&key("k"), 2).unwrap(), Claim::Mismatch));
        let stored = StoredResponse {
            status: 201,
            headers: vec![("Location".into(), "/u/1".into())],
            body: b"{}".to_vec(),
        };
        assert!(
            !s.finish(&key("k"), attempt + 1, Some(stored.clone()))
                .unwrap()
        );
        assert!(s.finish(&key("k"), attempt, Some(stored.clone())).unwrap());
        match s.begin(&key("k"), 1).unwrap() {
            Claim::Replay(r) => assert_eq!(r, stored),
            other => panic!("expected Replay, got {other:?}"),
        }
        // A released key runs again.
        let Claim::Run(a2) = s.begin(&key("other"), 1).unwrap() else {
            panic!("Run");
        };
        assert!(!s.finish(&key("other"), a2, None).unwrap());
        assert!(matches!(s.begin(&key("other"), 1).unwrap(), Claim::Run(_)));
        let other_scope = IdempotencyKey {
            scope: 8,
            key: "k".into(),
        };
        assert!(matches!(s.begin(&other_scope, 2).unwrap(), Claim::Run(_)));
    }

    /// What memory never needs: a key left running by a process that died is taken over
    /// after the lease, and the late finish of the first attempt changes nothing.
    #[test]
    fn a_key_left_running_is_taken_over_after_the_lease_and_expires_after_the_ttl() {
        let (s, _) = open_store(":memory:", 1).unwrap();
        let age = |column: &str, by: Duration| {
            let sql = format!("UPDATE idempotency_keys SET {column} = {column} - ?1");
            s.pool
                .get()
                .unwrap()
                .execute(&sql, [by.as_millis() as i64])
                .unwrap();
        };
        let Claim::Run(first) = s.begin(&key("k"), 1).unwrap() else {
            panic!("Run");
        };
        age(
            "started_ms",
            super::super::IDEMPOTENCY_LEASE - Duration::from_secs(1),
        );
        assert!(matches!(s.begin(&key("k"), 1).unwrap(), Claim::InProgress));
        age("started_ms", Duration::from_secs(1));
        let Claim::Run(second) = s.begin(&key("k"), 1).unwrap() else {
            panic!("taken over");
        };
        let stored = || {
            Some(StoredResponse {
                status: 200,
                headers: vec![],
                body: vec![],
            })
        };
        assert!(
            !s.finish(&key("k"), first, stored()).unwrap(),
            "no longer its key"
        );
        assert!(s.finish(&key("k"), second, stored()).unwrap());
        assert!(matches!(s.begin(&key("k"), 1).unwrap(), Claim::Replay(_)));
        age("created_ms", IDEMPOTENCY_TTL);
        assert!(
            matches!(s.begin(&key("k"), 2).unwrap(), Claim::Run(_)),
            "expired"
        );
    }

    /// A key whose attempt ran but whose response could not be stored is never taken
    /// over, however old: its effect may be done.
    #[test]
    fn a_key_marked_outcome_unknown_is_never_run_again() {
        let (s, _) = open_store(":memory:", 1).unwrap();
        let Claim::Run(first) = s.begin(&key("k"), 1).unwrap() else {
            panic!("Run");
        };
        s.mark_unknown(&key("k"), first.wrapping_add(1)).unwrap();
        s.mark_unknown(&key("k"), first).unwrap();
        s.pool
            .get()
            .unwrap()
            .execute(
                "UPDATE idempotency_keys SET started_ms = started_ms - ?1",
                [2 * super::super::IDEMPOTENCY_LEASE.as_millis() as i64],
            )
            .unwrap();
        assert!(matches!(s.begin(&key("k"), 1).unwrap(), Claim::Unknown));
        assert!(matches!(s.begin(&key("k"), 2).unwrap(), Claim::Mismatch));
    }
}
