//! Connections over the three sqlx drivers, and the one place that dispatches on them.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use sqlx::mysql::{MySqlConnection, MySqlPool};
use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Database, Executor, MySql, Postgres, Row, Sqlite, Transaction};
use tokio::time::Instant;

use crate::dialect::Dialect;
use crate::dsn::ConnectTarget;
use crate::error::{is_unavailable, Result};
use crate::migrate::{SchemaVersion, VERSION_TABLE};
use crate::store::Conn as StoreConn;

/// A single, unpooled connection: session locks live and die with it.
pub enum Conn {
    Sqlite(SqliteConnection),
    MySql(MySqlConnection),
    Postgres(PgConnection),
}

/// The shared connection pool.
#[derive(Clone, Debug)]
pub struct Pool {
    driver: Driver,
    /// The whole wait for a connection, over all attempts.
    acquire_timeout: Duration,
    /// The pool as its own release hook sees it (through a weak reference, so the pool does
    /// not keep itself alive); dropped with the last clone of this handle.
    _release_view: Arc<OnceLock<Driver>>,
    /// Callers waiting for a connection (sqlx counts open and idle ones, not waiters).
    waiting: Arc<AtomicUsize>,
}

/// The pool's state at one instant, for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open, in use or idle.
    pub size: u32,
    pub idle: usize,
    pub waiting: usize,
}

/// Counts one waiter until dropped, also when the waiting future is cancelled.
struct Waiter(Arc<AtomicUsize>);

impl Waiter {
    fn new(waiting: &Arc<AtomicUsize>) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Waiter(waiting.clone())
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Debug)]
enum Driver {
    Sqlite(SqlitePool),
    MySql(MySqlPool),
    Postgres(PgPool),
}

/// How many connections a server's pool may hold, and for how long; the defaults let 16
/// replicas share a MariaDB (`max_connections` 151) or PostgreSQL (100) server at their default
/// settings, with room for migrations and operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections open at once (Go's `SetMaxOpenConns`); ignored on SQLite.
    pub max_open: u32,
    /// Connections kept open while idle; one released beyond it is closed (`SetMaxIdleConns`).
    /// Connections released at the very same instant may all be kept: each sees the others
    /// still busy; the surplus then goes after `max_idle_time`.
    pub max_idle: u32,
    /// A connection is replaced after this long (`SetConnMaxLifetime`); `None`: never.
    pub max_lifetime: Option<Duration>,
    /// An idle connection is closed after this long (`SetConnMaxIdleTime`); `None`: never.
    pub max_idle_time: Option<Duration>,
    /// How long a request waits for a connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
    /// The longest a statement may run (PostgreSQL `statement_timeout`, MariaDB
    /// `max_statement_time`, MySQL `max_execution_time`); `None`: unbounded.
    pub statement_timeout: Option<Duration>,
}

impl PoolConfig {
    pub const DEFAULT_MAX_OPEN: u32 = 5;
    pub const DEFAULT_MAX_IDLE: u32 = 2;
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
    pub const DEFAULT_MAX_IDLE_TIME: Duration = Duration::from_secs(60);
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_open: Self::DEFAULT_MAX_OPEN,
            max_idle: Self::DEFAULT_MAX_IDLE,
            max_lifetime: Some(Self::DEFAULT_MAX_LIFETIME),
            max_idle_time: Some(Self::DEFAULT_MAX_IDLE_TIME),
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: Some(Self::DEFAULT_STATEMENT_TIMEOUT),
        }
    }
}

/// Runs the same body whatever the driver: `on_conn!(conn, c => sqlx::raw_sql(s).execute(c).await)`.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::Conn::Sqlite($c) => $body,
            $crate::db::Conn::MySql($c) => $body,
            $crate::db::Conn::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_conn;

/// As [`on_conn!`], over the pool.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match &$pool.driver {
            Driver::Sqlite($p) => $body,
            Driver::MySql($p) => $body,
            Driver::Postgres($p) => $body,
        }
    };
}

/// SQLite is a local file with one writer at a time (writers queue in the datastore): its pool
/// serves concurrent readers, takes no part in a server's connection budget and has no server
/// to wait for.
const SQLITE_MAX_CONNECTIONS: u32 = 16;
const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Tries within one acquire timeout. The pool retries a connection the server refused for now
/// ("too many clients") until its own timeout, without looking again for one of its own that
/// came free meanwhile: a fresh attempt does.
const ACQUIRE_ATTEMPTS: u32 = 4;

/// Pauses between tries while the database refuses connections, within the acquire timeout.
const FIRST_ACQUIRE_RETRY: Duration = Duration::from_millis(25);
const LONGEST_ACQUIRE_RETRY: Duration = Duration::from_millis(400);

/// A pooled connection idle at least this long is pinged before use.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// MySQL/MariaDB error numbers for an unknown system variable (`max_statement_time` is
/// MariaDB's, `max_execution_time` MySQL's).
const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;

impl Conn {
    pub async fn open(target: &ConnectTarget) -> Result<Self, sqlx::Error> {
        Ok(match target {
            ConnectTarget::Sqlite(o) => Conn::Sqlite(SqliteConnection::connect_with(o).await?),
            ConnectTarget::MySql(o) => Conn::MySql(MySqlConnection::connect_with(o).await?),
            ConnectTarget::Postgres(o) => Conn::Postgres(PgConnection::connect_with(o).await?),
        })
    }

    /// Runs a script of one or more statements (text protocol; several statements on
    /// PostgreSQL form one implicit transaction).
    pub async fn execute_script(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        on_conn!(self, c => c.execute(sqlx::raw_sql(sql)).await.map(drop))
    }

    pub async fn close(self) {
        // A failed close only means the server already dropped the session.
        let _ = on_conn!(self, c => c.close().await);
    }
}

/// A write transaction; dropped without [`Tx::commit`] it rolls back.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    MySql(Transaction<'static, MySql>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub fn conn(&mut self) -> StoreConn<'_> {
        match self {
            Tx::Sqlite(t) => StoreConn::Sqlite(t),
            Tx::MySql(t) => StoreConn::MySql(t),
            Tx::Postgres(t) => StoreConn::Postgres(t),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::MySql(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// A pooled connection for reads outside a transaction.
pub enum Reader {
    Sqlite(PoolConnection<Sqlite>),
    MySql(PoolConnection<MySql>),
    Postgres(PoolConnection<Postgres>),
}

impl Reader {
    pub fn conn(&mut self) -> StoreConn<'_> {
        match self {
            Reader::Sqlite(c) => StoreConn::Sqlite(c),
            Reader::MySql(c) => StoreConn::MySql(c),
            Reader::Postgres(c) => StoreConn::Postgres(c),
        }
    }
}

impl Pool {
    /// Starts a write transaction. SQLite takes its write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads, then writes, can fail at once with "database is
    /// locked" when another writer got there first.
    pub async fn begin(&self) -> Result<Tx> {
        match &self.driver {
            Driver::Sqlite(p) => self.retrying(|| async { Ok(Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?)) }).await,
            Driver::MySql(p) => self.retrying(|| async { Ok(Tx::MySql(p.begin().await?)) }).await,
            Driver::Postgres(p) => self.retrying(|| async { Ok(Tx::Postgres(p.begin().await?)) }).await,
        }
    }

    pub async fn reader(&self) -> Result<Reader> {
        match &self.driver {
            Driver::Sqlite(p) => self.retrying(|| async { Ok(Reader::Sqlite(p.acquire().await?)) }).await,
            Driver::MySql(p) => self.retrying(|| async { Ok(Reader::MySql(p.acquire().await?)) }).await,
            Driver::Postgres(p) => self.retrying(|| async { Ok(Reader::Postgres(p.acquire().await?)) }).await,
        }
    }

    /// Runs `attempt` (an acquire, or an acquire and `BEGIN`: nothing is written yet, so a retry
    /// is safe) until it succeeds or the acquire timeout is spent. The pool itself retries a
    /// refused TCP connection; this also retries what the server refuses for now ("too many
    /// connections", shutting down) and connections that die on their first statement.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let _waiter = Waiter::new(&self.waiting);
        let deadline = Instant::now() + self.acquire_timeout;
        let mut pause = FIRST_ACQUIRE_RETRY;
        loop {
            let error = match tokio::time::timeout_at(deadline, attempt()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e,
                Err(_) => sqlx::Error::PoolTimedOut,
            };
            if !is_unavailable(&error) || Instant::now() + pause >= deadline {
                return Err(error.into());
            }
            tracing::debug!(%error, retry_in = ?pause, "database refused a connection; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_ACQUIRE_RETRY);
        }
    }

    pub async fn connect(target: &ConnectTarget, config: &PoolConfig) -> Result<Self> {
        let view = Arc::new(OnceLock::new());
        let driver = match target {
            ConnectTarget::Sqlite(o) => Driver::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(SQLITE_MAX_CONNECTIONS)
                    // A local file has no server that could drop the connection; a ping is a
                    // thread hand-off per request for nothing.
                    .test_before_acquire(false)
                    // A failed commit (disk full, I/O error) may have rolled SQLite back on its
                    // own: sqlx's ROLLBACK then fails and it still counts a transaction open, so
                    // every later BEGIN on that connection would fail. Such a connection is closed.
                    .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
                    .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
                    .connect_with(o.clone())
                    .await?,
            ),
            // The statement timeout is set on the pool's sessions only: the migrator's own
            // session may wait for its lock and run long steps.
            ConnectTarget::MySql(o) => {
                let statement_timeout = config.statement_timeout;
                let options = server_pool_options(config, Arc::downgrade(&view)).after_connect(move |conn, _| {
                    Box::pin(async move { set_mysql_statement_timeout(conn, statement_timeout).await })
                });
                Driver::MySql(options.connect_with(o.clone()).await?)
            }
            ConnectTarget::Postgres(o) => {
                let statement_timeout = config.statement_timeout;
                let options = server_pool_options(config, Arc::downgrade(&view)).after_connect(move |conn, _| {
                    Box::pin(async move { prepare_postgres_session(conn, statement_timeout).await })
                });
                Driver::Postgres(options.connect_with(o.clone()).await?)
            }
        };
        view.set(driver.clone()).expect("set once");
        let acquire_timeout = match target {
            ConnectTarget::Sqlite(_) => SQLITE_ACQUIRE_TIMEOUT,
            _ => config.acquire_timeout,
        };
        Ok(Pool { driver, acquire_timeout, _release_view: view, waiting: Arc::default() })
    }

    pub fn stats(&self) -> PoolStats {
        let (size, idle) = on_pool!(self, p => (p.size(), p.num_idle()));
        PoolStats { size, idle, waiting: self.waiting.load(Ordering::Relaxed) }
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    /// Whether `table` exists (see [`Dialect::table_exists_query`]).
    pub async fn table_exists(&self, table: &str) -> Result<bool> {
        let sql = self.any_dialect().table_exists_query();
        // Read-only: safe to retry as an acquire is.
        self.retrying(|| async { Ok(on_pool!(self, p => sqlx::query(sql).bind(table).fetch_optional(p).await?.is_some())) }).await
    }

    /// A dialect of this pool's backend, for SQL that is the same in both PostgreSQL layouts.
    fn any_dialect(&self) -> Dialect {
        match self.driver {
            Driver::Sqlite(_) => Dialect::Sqlite,
            Driver::MySql(_) => Dialect::MySql,
            Driver::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The row upstream's readiness check reads; `None` when the table is empty or missing.
    pub async fn schema_version(&self) -> Result<Option<SchemaVersion>> {
        let exists = self.table_exists(VERSION_TABLE).await?;
        if !exists {
            return Ok(None);
        }
        let sql = "SELECT version, dirty FROM schema_migrations ORDER BY version DESC LIMIT 1";
        let row: Option<(i64, bool)> =
            self.retrying(|| async { on_pool!(self, p => sqlx::query_as(sql).fetch_optional(p).await) }).await?;
        Ok(row.map(|(version, dirty)| SchemaVersion { version: u64::try_from(version).ok(), dirty }))
    }

    /// Picks the layout: on PostgreSQL a database MLMD created keeps its lower-case tables;
    /// everything else (including an empty database) gets upstream's layout.
    pub async fn detect_dialect(&self) -> Result<Dialect> {
        Ok(match self.driver {
            Driver::Sqlite(_) => Dialect::Sqlite,
            Driver::MySql(_) => Dialect::MySql,
            Driver::Postgres(_) => {
                if !self.table_exists("MLMDEnv").await? && self.table_exists("mlmdenv").await? {
                    Dialect::PostgresMlmd
                } else {
                    Dialect::Postgres
                }
            }
        })
    }

    /// Name of the connected database (MySQL, PostgreSQL) and schema (PostgreSQL), which
    /// golang-migrate folds into its lock ids.
    pub async fn database_and_schema(&self) -> Result<(String, String)> {
        Ok(match &self.driver {
            Driver::Sqlite(_) => ("main".into(), "main".into()),
            Driver::MySql(p) => {
                let row = sqlx::query("SELECT DATABASE()").fetch_one(p).await?;
                (row.try_get::<Option<String>, _>(0)?.unwrap_or_default(), String::new())
            }
            Driver::Postgres(p) => {
                let row = sqlx::query("SELECT current_database()::text, current_schema()::text").fetch_one(p).await?;
                (row.try_get(0)?, row.try_get(1)?)
            }
        })
    }
}

impl Driver {
    fn num_idle(&self) -> usize {
        match self {
            Driver::Sqlite(p) => p.num_idle(),
            Driver::MySql(p) => p.num_idle(),
            Driver::Postgres(p) => p.num_idle(),
        }
    }
}

/// A MySQL or PostgreSQL pool sized by `config`: no connection is kept open for its own sake
/// (minimum 0, idle ones closed after `max_idle_time` or beyond `max_idle`), and one idle for
/// [`PING_AFTER_IDLE`] or longer is pinged before it is handed out, so a pool whose server
/// restarted drops its dead connections instead of failing requests with them. A connection in
/// steady use goes without: a ping per request was a third of a point read's round trips.
fn server_pool_options<DB: Database>(config: &PoolConfig, view: Weak<OnceLock<Driver>>) -> PoolOptions<DB> {
    let max_idle = usize::try_from(config.max_idle).unwrap_or(usize::MAX);
    PoolOptions::new()
        .max_connections(config.max_open)
        .min_connections(0)
        .max_lifetime(config.max_lifetime)
        .idle_timeout(config.max_idle_time)
        .acquire_timeout(config.acquire_timeout / ACQUIRE_ATTEMPTS)
        .test_before_acquire(false)
        .before_acquire(|conn: &mut DB::Connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .after_release(move |_, _| {
            let keep = view.upgrade().and_then(|v| v.get().map(|pool| pool.num_idle() < max_idle)).unwrap_or(true);
            Box::pin(async move { Ok(keep) })
        })
}

/// The pool's PostgreSQL sessions: the statement timeout, and the planner held to the plans the
/// store's statements are written for (see `Dialect::unindexed`). Session settings rather than
/// startup parameters, which PgBouncer refuses.
///
/// - `enable_seqscan = off`: every statement reads by key or along an index; a table scan is
///   only ever the planner's choice for a table it believes small, and a plan made then
///   outlives the belief (a prepared statement keeps its plan for the session).
/// - `plan_cache_mode = force_generic_plan`: a prepared statement is planned once per session,
///   not at every execution (planning was 40 % of PostgreSQL's time in a point read); the plans
///   do not depend on the values, `crates/embedmd/tests/plans.rs` checks the generic ones.
/// - `jit = off`: a filtered page's cost estimate (every row of the type, before the LIMIT)
///   passes `jit_above_cost` once statistics exist, and compiling took 19 ms of a 22 ms page.
async fn prepare_postgres_session(conn: &mut PgConnection, timeout: Option<Duration>) -> Result<(), sqlx::Error> {
    let mut settings = "SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan; SET jit = off;".to_owned();
    if let Some(timeout) = timeout {
        settings.push_str(&format!(" SET statement_timeout = {};", timeout.as_millis()));
    }
    conn.execute(sqlx::raw_sql(&settings)).await.map(drop)
}

/// MariaDB calls the session's statement limit `max_statement_time` (seconds), MySQL
/// `max_execution_time` (milliseconds, SELECTs only).
async fn set_mysql_statement_timeout(conn: &mut MySqlConnection, timeout: Option<Duration>) -> Result<(), sqlx::Error> {
    let Some(timeout) = timeout else { return Ok(()) };
    let mariadb = format!("SET SESSION max_statement_time = {}", timeout.as_secs_f64());
    match conn.execute(sqlx::raw_sql(&mariadb)).await {
        Err(sqlx::Error::Database(e))
            if e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|e| e.number() == ER_UNKNOWN_SYSTEM_VARIABLE) =>
        {
            let mysql = format!("SET SESSION max_execution_time = {}", timeout.as_millis());
            conn.execute(sqlx::raw_sql(&mysql)).await.map(drop)
        }
        other => other.map(drop),
    }
}
