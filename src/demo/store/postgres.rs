//! The PostgreSQL stores (`DEMO_DATABASE_URL`, feature `postgres`): the same tables and
//! rules as the SQLite ones, on a pool of tokio-postgres connections, each driven by a
//! current-thread runtime of its own from the (blocking) worker that borrowed it.
//!
//! Every call has a client-side deadline ([`CALL_TIMEOUT`]): a server that stops answering
//! — a hung or stopped backend whose kernel still acknowledges every packet, which neither
//! TCP keepalives nor `tcp_user_timeout` can notice; a partition, which they notice only
//! after their own delays — fails the call with `DbError::Unavailable` and its connection
//! is dropped, never lent again, so its pool slot opens a fresh connection. (The sync
//! `postgres` wrapper has no such deadline: its calls block until the socket fails.)
//! A connection the server closed (a restart) is noticed before it is lent, and one idle
//! over a second gets a round trip first, as Go's pgx does; a statement never runs longer
//! than `statement_timeout` on the server. No TLS: the demo talks to a local or private
//! database (`sslmode=disable`).

use std::time::Duration;

use h1server::middleware::{Claim, IdempotencyKey, IdempotencyStore, StoreError, StoredResponse};
use log::{debug, info, warn};
use tokio::runtime::Runtime;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, IsolationLevel, NoTls, Row, Transaction};

use super::pool::Pool;
use super::{
    AttemptIds, DbError, Decision, IDEMPOTENCY_TTL, NewUser, POOL_WAIT, Page, Record, Stores,
    Updated, User, UsersStore, decide, headers_from_json, headers_to_json, new_hash_key, now_ms,
};

/// How long connecting may take, per host (unless the URL sets `connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Set on every connection: no statement (a lock wait included) runs longer.
const STATEMENT_TIMEOUT_MS: u32 = 5000;
/// A store call's deadline on the client: past `statement_timeout`, so the server's own
/// cancel answers first while it answers at all; short of the demo's 10 s handler
/// timeout, so a silent server's connection is given up, and its pool slot free again, by
/// the time the client has its `503`.
const CALL_TIMEOUT: Duration = Duration::from_secs(8);
/// The readiness ping's deadline: `/readyz` answers `503` quickly instead of hanging.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Migrations' deadline (they wait for another instance's advisory lock).
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection idle longer than this gets a round trip before it is lent (pgx's rule)...
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);
/// ...which must answer within this, or a fresh connection is opened instead.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// TCP keepalives (unless the URL sets them): a peer gone without a FIN or RST is noticed
/// after about idle + interval × retries, and data unacknowledged for
/// `TCP_USER_TIMEOUT` fails the connection (Linux).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
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
    // 4: the users API's validators: a version per row (its ETag) and the time it was
    // last written (its Last-Modified; unknown for older rows).
    "ALTER TABLE users ADD COLUMN version BIGINT NOT NULL DEFAULT 1,
                      ADD COLUMN updated_ms BIGINT;",
];

/// Both stores on one PostgreSQL database.
pub struct Postgres {
    pool: Pool<PgConn>,
    hash_key: [u64; 2],
    attempts: AttemptIds,
}

fn failed(e: tokio_postgres::Error) -> DbError {
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

/// One connection: the client, and the runtime that drives its socket while a call runs
/// (the connection's task runs only inside [`PgConn::call`]).
struct PgConn {
    client: Client,
    runtime: Runtime,
    /// A call failed in a way that leaves the connection unusable or its state unknown
    /// (no answer by the deadline, a connection error): it is dropped, never lent again.
    broken: bool,
}

impl PgConn {
    /// Runs `f` on the client within `limit`. A call that times out is abandoned
    /// mid-protocol, and one that fails for the connection's sake (`Unavailable`) leaves
    /// it closed: either marks the connection broken.
    fn call<T>(
        &mut self,
        limit: Duration,
        f: impl AsyncFnOnce(&mut Client) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let PgConn {
            client,
            runtime,
            broken,
        } = self;
        match runtime.block_on(async { tokio::time::timeout(limit, f(client)).await }) {
            Ok(Err(DbError::Unavailable(msg))) => {
                *broken = true;
                Err(DbError::Unavailable(msg))
            }
            Ok(result) => result,
            Err(_) => {
                *broken = true;
                Err(DbError::Unavailable(format!(
                    "no answer from the database within {limit:?}: connection dropped"
                )))
            }
        }
    }

    fn is_broken(&mut self) -> bool {
        self.broken || self.client.is_closed()
    }

    /// Whether this idle connection may be lent: not closed by the server meanwhile (a
    /// restart: the runtime reads the server's goodbye first), and, when idle for over
    /// [`CHECK_IDLE_AFTER`], answering an empty query within [`CHECK_TIMEOUT`].
    fn is_usable(&mut self, idle: Duration) -> bool {
        // A few turns of the runtime: its I/O driver is polled and the connection's task
        // reads whatever arrived while nobody was polling (it ends on EOF or a FATAL).
        self.runtime.block_on(async {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
        });
        if self.is_broken() {
            debug!("database: a pooled connection was closed by the server: reconnecting");
            return false;
        }
        if idle < CHECK_IDLE_AFTER {
            return true;
        }
        let check = self.call(CHECK_TIMEOUT, async |c| {
            c.simple_query("").await.map(drop).map_err(failed)
        });
        if let Err(e) = &check {
            debug!("database: a pooled connection failed its check ({e}): reconnecting");
        }
        check.is_ok()
    }
}

fn connect(config: &Config) -> Result<PgConn, DbError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DbError::Unavailable(format!("cannot start a runtime: {e}")))?;
    // connect_timeout bounds each host's TCP connect; this, the whole exchange.
    let per_host = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    let hosts = config.get_hosts().len().max(1) as u32;
    let limit = per_host.saturating_mul(hosts) + CONNECT_TIMEOUT;
    let client = runtime.block_on(async {
        let (client, connection) = tokio::time::timeout(limit, config.connect(NoTls))
            .await
            .map_err(|_| DbError::Unavailable(format!("cannot connect within {limit:?}")))?
            .map_err(|e| DbError::Unavailable(format!("cannot connect: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!("database connection closed: {e}");
            }
        });
        Ok::<_, DbError>(client)
    })?;
    let mut conn = PgConn {
        client,
        runtime,
        broken: false,
    };
    let set = format!("SET statement_timeout = {STATEMENT_TIMEOUT_MS}");
    conn.call(CALL_TIMEOUT, async |c| {
        c.batch_execute(&set).await.map_err(failed)
    })?;
    Ok(conn)
}

/// Applies the missing migrations in one transaction under an advisory lock (instances
/// starting together migrate once). Returns the schema version.
async fn migrate(client: &mut Client) -> Result<usize, DbError> {
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(failed)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );",
    )
    .await
    .map_err(failed)?;
    let current: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
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
            .await
            .map_err(|e| DbError::Failed(format!("migration {version}: {e}")))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(failed)?;
        info!("database: migration {version} applied");
    }
    let [k0, k1] = new_hash_key();
    tx.execute(
        "INSERT INTO idempotency_secret (id, k0, k1) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
        &[&(k0 as i64), &(k1 as i64)],
    )
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
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
    // The URL's keepalive settings win; tokio-postgres's defaults (keepalives on, first
    // probe after 2 h) would leave a dead peer unnoticed for hours.
    if config.get_keepalives() && config.get_keepalives_idle() == Duration::from_secs(2 * 3600) {
        config.keepalives_idle(KEEPALIVE_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVE_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVE_RETRIES);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    let mut first = connect(&config).map_err(|e| e.to_string())?;
    let version = first
        .call(MIGRATE_TIMEOUT, async |c| migrate(c).await)
        .map_err(|e| e.to_string())?;
    let hash_key = first
        .call(CALL_TIMEOUT, async |c| {
            let row = c
                .query_one("SELECT k0, k1 FROM idempotency_secret WHERE id = 1", &[])
                .await
                .map_err(failed)?;
            Ok([row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64])
        })
        .map_err(|e| e.to_string())?;
    let hosts = config.get_hosts().len();
    let store = Postgres {
        pool: Pool::new(
            first,
            pool,
            POOL_WAIT,
            move || connect(&config),
            PgConn::is_broken,
            PgConn::is_usable,
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
        version: row.get::<_, i64>(3) as u64,
        updated_ms: row.get(4),
    }
}

/// The columns [`user_of`] reads.
const USER_COLUMNS: &str = "id, name, email, version, updated_ms";

impl Postgres {
    /// Runs `f` on a pooled connection within [`CALL_TIMEOUT`].
    fn run<T>(&self, f: impl AsyncFnOnce(&mut Client) -> Result<T, DbError>) -> Result<T, DbError> {
        self.pool.get()?.call(CALL_TIMEOUT, f)
    }
}

impl UsersStore for Postgres {
    fn create(&self, user: &NewUser) -> Result<User, DbError> {
        self.run(async |c| {
            let row = c
                .query_one(
                    &format!(
                        "INSERT INTO users (name, email, version, updated_ms) \
                         VALUES ($1, $2, 1, $3) RETURNING {USER_COLUMNS}"
                    ),
                    &[&user.name, &user.email, &now_ms()],
                )
                .await
                .map_err(failed)?;
            Ok(user_of(&row))
        })
    }

    fn get(&self, id: u64) -> Result<Option<User>, DbError> {
        self.run(async |c| {
            let row = c
                .query_opt(
                    &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                    &[&(id as i64)],
                )
                .await
                .map_err(failed)?;
            Ok(row.as_ref().map(user_of))
        })
    }

    fn update(&self, id: u64, user: &NewUser, if_version: Option<u64>) -> Result<Updated, DbError> {
        let if_version = if_version.map(|v| v as i64);
        self.run(async |c| {
            let row = c
                .query_opt(
                    &format!(
                        "UPDATE users SET name = $1, email = $2, version = version + 1, \
                         updated_ms = $3 WHERE id = $4 \
                         AND ($5::BIGINT IS NULL OR version = $5) RETURNING {USER_COLUMNS}"
                    ),
                    &[
                        &user.name,
                        &user.email,
                        &now_ms(),
                        &(id as i64),
                        &if_version,
                    ],
                )
                .await
                .map_err(failed)?;
            Ok(match row {
                Some(row) => Updated::Done(user_of(&row)),
                None if if_version.is_some() => Updated::Changed,
                None => Updated::Missing,
            })
        })
    }

    fn list(&self, limit: u32, offset: u64) -> Result<Page, DbError> {
        self.run(async |c| {
            // REPEATABLE READ: the page and the total see one snapshot.
            let tx = c
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(failed)?;
            let total: i64 = tx
                .query_one("SELECT COUNT(*) FROM users", &[])
                .await
                .map_err(failed)?
                .get(0);
            let rows = tx
                .query(
                    &format!("SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2"),
                    &[&i64::from(limit), &(offset as i64)],
                )
                .await
                .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            Ok(Page {
                users: rows.iter().map(user_of).collect(),
                total: total as u64,
            })
        })
    }

    /// A round trip within [`PING_TIMEOUT`] (plus the pool's wait for a connection).
    fn ping(&self) -> Result<(), DbError> {
        self.pool.get()?.call(PING_TIMEOUT, async |c| {
            c.simple_query("SELECT 1").await.map(drop).map_err(failed)
        })
    }
}

/// The record of `key`, locked for this transaction.
async fn record_of(tx: &Transaction<'_>, scope: i64, key: &str) -> Result<Option<Record>, DbError> {
    let Some(row) = tx
        .query_opt(
            "SELECT fingerprint, attempt, started_ms, status, headers, body, outcome_unknown
             FROM idempotency_keys WHERE scope = $1 AND key = $2 FOR UPDATE",
            &[&scope, &key],
        )
        .await
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
        let attempt = self.attempts.next();
        self.run(async |c| {
            let tx = c.transaction().await.map_err(failed)?;
            let now = now_ms();
            let (scope, name) = (key.scope as i64, key.key.as_str());
            let expired = now - IDEMPOTENCY_TTL.as_millis() as i64;
            tx.execute(
                "DELETE FROM idempotency_keys WHERE created_ms <= $1",
                &[&expired],
            )
            .await
            .map_err(failed)?;
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
                    .await
                    .map_err(failed)?;
                if inserted == 1 {
                    break Claim::Run(attempt);
                }
                let Some(record) = record_of(&tx, scope, name).await? else {
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
                        .await
                        .map_err(failed)?;
                        break Claim::Run(attempt);
                    }
                }
            };
            tx.commit().await.map_err(failed)?;
            Ok(claim)
        })
    }

    fn finish(
        &self,
        key: &IdempotencyKey,
        attempt: u64,
        response: Option<StoredResponse>,
    ) -> Result<bool, DbError> {
        let (scope, name, attempt) = (key.scope as i64, key.key.as_str(), attempt as i64);
        self.run(async |c| {
            let n = match response {
                Some(r) => {
                    c.execute(
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
                    )
                    .await
                }
                None => c
                    .execute(
                        "DELETE FROM idempotency_keys
                         WHERE scope = $1 AND key = $2 AND attempt = $3 AND status IS NULL",
                        &[&scope, &name, &attempt],
                    )
                    .await
                    .map(|_| 0),
            }
            .map_err(failed)?;
            Ok(n == 1)
        })
    }

    fn mark_unknown(&self, key: &IdempotencyKey, attempt: u64) -> Result<(), DbError> {
        self.run(async |c| {
            c.execute(
                "UPDATE idempotency_keys SET outcome_unknown = true
                 WHERE scope = $1 AND key = $2 AND attempt = $3 AND status IS NULL",
                &[&(key.scope as i64), &key.key, &(attempt as i64)],
            )
            .await
            .map(drop)
            .map_err(failed)
        })
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
