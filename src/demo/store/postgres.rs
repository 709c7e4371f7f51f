//! The PostgreSQL stores (`DEMO_DATABASE_URL`, feature `postgres`): the same tables and
//! rules as the SQLite ones, on a pool of `postgres::Client` connections.
//!
//! A connection the server closed is dropped and reopened on next use; a statement never
//! runs longer than `statement_timeout`. No TLS: the demo talks to a local or private
//! database (`sslmode=disable`).

use std::time::Duration;

use h1server::middleware::{Claim, IdempotencyKey, IdempotencyStore, StoreError, StoredResponse};
use log::{info, warn};
use postgres::error::SqlState;
use postgres::{Client, Config, GenericClient, NoTls, Row};

use super::pool::Pool;
use super::{
    AttemptIds, DbError, Decision, IDEMPOTENCY_TTL, NewUser, POOL_WAIT, Page, Record, Stores, User,
    UsersStore, decide, headers_from_json, headers_to_json, new_hash_key, now_ms,
};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Set on every connection: no statement (a lock wait included) runs longer.
const STATEMENT_TIMEOUT_MS: u32 = 5000;
/// The advisory lock that serialises migrations of instances starting together.
const MIGRATION_LOCK: i64 = 0x6831_7365_7276; // "h1serv"

/// The schema, one step per migration (see the SQLite module: the same tables).
const MIGRATIONS: &[&str] = &[
    // 1: the users API.
    "CREATE TABLE users (
         id    BIGSERIAL PRIMARY KEY,
         name  TEXT NOT NULL,
         email TEXT NOT NULL
     );",
    // 2: idempotency keys (the middleware's records) and the key of their hashes.
    "CREATE TABLE idempotency_keys (
         scope       BIGINT NOT NULL,
         key         TEXT NOT NULL,
         fingerprint BIGINT NOT NULL,
         attempt     BIGINT NOT NULL,
         created_ms  BIGINT NOT NULL,
         started_ms  BIGINT NOT NULL,
         status      INTEGER,
         headers     TEXT,
         body        BYTEA,
         PRIMARY KEY (scope, key)
     );
     CREATE INDEX idempotency_keys_created ON idempotency_keys (created_ms);
     CREATE TABLE idempotency_secret (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         k0 BIGINT NOT NULL,
         k1 BIGINT NOT NULL
     );",
    // 3: a key whose attempt ran but whose response could not be stored: never run again.
    "ALTER TABLE idempotency_keys ADD COLUMN outcome_unknown BOOLEAN NOT NULL DEFAULT false;",
];

/// Both stores on one PostgreSQL database.
pub struct Postgres {
    pool: Pool<Client>,
    hash_key: [u64; 2],
    attempts: AttemptIds,
}

fn failed(e: postgres::Error) -> DbError {
    let msg = e.to_string();
    match e.code() {
        // Not a server's answer: the connection failed, closed or timed out.
        None => DbError::Unavailable(msg),
        Some(c) if *c == SqlState::QUERY_CANCELED || *c == SqlState::LOCK_NOT_AVAILABLE => {
            DbError::Busy(msg)
        }
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => DbError::Busy(msg),
        Some(c) if c.code().starts_with("08") || *c == SqlState::ADMIN_SHUTDOWN => {
            DbError::Unavailable(msg)
        }
        Some(c) if *c == SqlState::TOO_MANY_CONNECTIONS => DbError::Unavailable(msg),
        Some(_) => DbError::Failed(match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => msg,
        }),
    }
}

fn connect(config: &Config) -> Result<Client, DbError> {
    let mut client = config
        .connect(NoTls)
        .map_err(|e| DbError::Unavailable(format!("cannot connect: {e}")))?;
    client
        .batch_execute(&format!("SET statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        .map_err(failed)?;
    Ok(client)
}

/// Applies the missing migrations in one transaction under an advisory lock (instances
/// starting together migrate once). Returns the schema version.
fn migrate(client: &mut Client) -> Result<usize, DbError> {
    let mut tx = client.transaction().map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(failed)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );",
    )
    .map_err(failed)?;
    let current: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .map_err(failed)?
        .get(0);
    let current = current as usize;
    if current > MIGRATIONS.len() {
        return Err(DbError::Failed(format!(
            "the schema is at version {current}, newer than this binary knows ({}): \
             run a newer h1server",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = (i + 1) as i32;
        tx.batch_execute(sql)
            .map_err(|e| DbError::Failed(format!("migration {version}: {e}")))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .map_err(failed)?;
        info!("database: migration {version} applied");
    }
    let [k0, k1] = new_hash_key();
    tx.execute(
        "INSERT INTO idempotency_secret (id, k0, k1) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
        &[&(k0 as i64), &(k1 as i64)],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)?;
    Ok(MIGRATIONS.len())
}

/// Connects to `url`, migrates, and opens a pool of `pool` connections.
pub fn open(url: &str, pool: usize) -> Result<Stores, String> {
    let mut config: Config = url
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let mut first = connect(&config).map_err(|e| e.to_string())?;
    let version = migrate(&mut first).map_err(|e| e.to_string())?;
    let row = first
        .query_one("SELECT k0, k1 FROM idempotency_secret WHERE id = 1", &[])
        .map_err(|e| e.to_string())?;
    let hash_key = [row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64];
    let hosts = config.get_hosts().len();
    let store = Postgres {
        pool: Pool::new(
            first,
            pool,
            POOL_WAIT,
            move || connect(&config),
            |c: &mut Client| c.is_closed(),
        ),
        hash_key,
        attempts: AttemptIds::new(),
    };
    let db = url.rsplit('/').next().unwrap_or_default();
    let db = db.split('?').next().unwrap_or_default();
    let description =
        format!("postgres database {db:?} ({hosts} host(s), schema v{version}, pool of {pool})");
    Ok(Stores::of(store, description))
}

fn user_of(row: &Row) -> User {
    User {
        id: row.get::<_, i64>(0) as u64,
        name: row.get(1),
        email: row.get(2),
    }
}

impl UsersStore for Postgres {
    fn create(&self, user: &NewUser) -> Result<User, DbError> {
        let mut conn = self.pool.get()?;
        let row = conn
            .query_one(
                "INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id, name, email",
                &[&user.name, &user.email],
            )
            .map_err(failed)?;
        Ok(user_of(&row))
    }

    fn get(&self, id: u64) -> Result<Option<User>, DbError> {
        let mut conn = self.pool.get()?;
        let row = conn
            .query_opt(
                "SELECT id, name, email FROM users WHERE id = $1",
                &[&(id as i64)],
            )
            .map_err(failed)?;
        Ok(row.as_ref().map(user_of))
    }

    fn update(&self, id: u64, user: &NewUser) -> Result<Option<User>, DbError> {
        let mut conn = self.pool.get()?;
        let row = conn
            .query_opt(
                "UPDATE users SET name = $1, email = $2 WHERE id = $3 RETURNING id, name, email",
                &[&user.name, &user.email, &(id as i64)],
            )
            .map_err(failed)?;
        Ok(row.as_ref().map(user_of))
    }

    fn list(&self, limit: u32, offset: u64) -> Result<Page, DbError> {
        let mut conn = self.pool.get()?;
        // REPEATABLE READ: the page and the total see one snapshot.
        let mut tx = conn
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(failed)?;
        let total: i64 = tx
            .query_one("SELECT COUNT(*) FROM users", &[])
            .map_err(failed)?
            .get(0);
        let rows = tx
            .query(
                "SELECT id, name, email FROM users ORDER BY id LIMIT $1 OFFSET $2",
                &[&i64::from(limit), &(offset as i64)],
            )
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        Ok(Page {
            users: rows.iter().map(user_of).collect(),
            total: total as u64,
        })
    }

    fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.pool.get()?;
        conn.query_one("SELECT 1", &[]).map(drop).map_err(failed)
    }
}

/// The record of `key`, locked for this transaction.
fn record_of(
    tx: &mut impl GenericClient,
    scope: i64,
    key: &str,
) -> Result<Option<Record>, DbError> {
    let Some(row) = tx
        .query_opt(
            "SELECT fingerprint, attempt, started_ms, status, headers, body, outcome_unknown
             FROM idempotency_keys WHERE scope = $1 AND key = $2 FOR UPDATE",
            &[&scope, &key],
        )
        .map_err(failed)?
    else {
        return Ok(None);
    };
    let response = match row.get::<_, Option<i32>>(3) {
        Some(status) => Some(StoredResponse {
            status: status as u16,
            headers: headers_from_json(row.get::<_, Option<&str>>(4).unwrap_or("[]"))?,
            body: row.get::<_, Option<Vec<u8>>>(5).unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Some(Record {
        fingerprint: row.get::<_, i64>(0) as u64,
        attempt: row.get::<_, i64>(1) as u64,
        started_ms: row.get(2),
        response,
        unknown: row.get(6),
    }))
}

impl Postgres {
    fn begin(&self, key: &IdempotencyKey, fingerprint: u64) -> Result<Claim, DbError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn.transaction().map_err(failed)?;
        let now = now_ms();
        let (scope, name) = (key.scope as i64, key.key.as_str());
        let expired = now - IDEMPOTENCY_TTL.as_millis() as i64;
        tx.execute(
            "DELETE FROM idempotency_keys WHERE created_ms <= $1",
            &[&expired],
        )
        .map_err(failed)?;
        let attempt = self.attempts.next();
        // Insert-or-look-up; a row released by its owner between the two is retried.
        let claim = loop {
            let inserted = tx
                .execute(
                    "INSERT INTO idempotency_keys
                         (scope, key, fingerprint, attempt, created_ms, started_ms)
                     VALUES ($1, $2, $3, $4, $5, $5)
                     ON CONFLICT (scope, key) DO NOTHING",
                    &[
                        &scope,
                        &name,
                        &(fingerprint as i64),
                        &(attempt as i64),
                        &now,
                    ],
                )
                .map_err(failed)?;
            if inserted == 1 {
                break Claim::Run(attempt);
            }
            let Some(record) = record_of(&mut tx, scope, name)? else {
                continue;
            };
            match decide(record, fingerprint, now) {
                Decision::Answer(claim) => break claim,
                Decision::TakeOver { stale } => {
                    warn!("idempotency key {name:?} was left running: a retry takes it over");
                    tx.execute(
                        "UPDATE idempotency_keys SET attempt = $1, started_ms = $2
                         WHERE scope = $3 AND key = $4 AND attempt = $5",
                        &[&(attempt as i64), &now, &scope, &name, &(stale as i64)],
                    )
                    .map_err(failed)?;
                    break Claim::Run(attempt);
                }
            }
        };
        tx.commit().map_err(failed)?;
        Ok(claim)
    }

    fn finish(
        &self,
        key: &IdempotencyKey,
        attempt: u64,
        response: Option<StoredResponse>,
    ) -> Result<bool, DbError> {
        let mut conn = self.pool.get()?;
        let (scope, name, attempt) = (key.scope as i64, key.key.as_str(), attempt as i64);
        let n = match response {
            Some(r) => conn.execute(
                "UPDATE idempotency_keys SET status = $1, headers = $2, body = $3
                 WHERE scope = $4 AND key = $5 AND attempt = $6 AND status IS NULL",
                &[
                    &i32::from(r.status),
                    &headers_to_json(&r.headers),
                    &r.body,
                    &scope,
                    &name,
                    &attempt,
                ],
            ),
            None => conn
                .execute(
                    "DELETE FROM idempotency_keys
                     WHERE scope = $1 AND key = $2 AND attempt = $3 AND status IS NULL",
                    &[&scope, &name, &attempt],
                )
                .map(|_| 0),
        }
        .map_err(failed)?;
        Ok(n == 1)
    }

    fn mark_unknown(&self, key: &IdempotencyKey, attempt: u64) -> Result<(), DbError> {
        let mut conn = self.pool.get()?;
        conn.execute(
            "UPDATE idempotency_keys SET outcome_unknown = true
             WHERE scope = $1 AND key = $2 AND attempt = $3 AND status IS NULL",
            &[&(key.scope as i64), &key.key, &(attempt as i64)],
        )
        .map_err(failed)?;
        Ok(())
    }
}

impl IdempotencyStore for Postgres {
    fn begin(&self, key: &IdempotencyKey, fingerprint: u64) -> Result<Claim, StoreError> {
        Ok(Postgres::begin(self, key, fingerprint)?)
    }

    fn finish(
        &self,
        key: &IdempotencyKey,
        attempt: u64,
        response: Option<StoredResponse>,
    ) -> Result<bool, StoreError> {
        Ok(Postgres::finish(self, key, attempt, response)?)
    }

    fn mark_unknown(&self, key: &IdempotencyKey, attempt: u64) -> Result<(), StoreError> {
        Ok(Postgres::mark_unknown(self, key, attempt)?)
    }

    fn hash_key(&self) -> [u64; 2] {
        self.hash_key
    }
}
