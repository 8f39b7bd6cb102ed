//! The shared connection pool: its limits, its sessions' settings, and retries while the
//! database refuses connections for now.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sqlx::mysql::MySqlPool;
use sqlx::pool::PoolOptions;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Database};
use tokio::time::Instant;

use crate::arg::Arg;
use crate::conn::{map_driver, note_pooler, on_driver, Conn, Driver, Lease, Reader, Tx, Unpooled};
use crate::dialect::{Dialect, VERSION_TABLE};
use crate::dsn::{ConnectTarget, Pooler};
use crate::error::{host_trouble_seen, is_host_trouble, is_unavailable, Error, Result};
use crate::migrate::SchemaVersion;

type Pools = Driver<SqlitePool, MySqlPool, PgPool>;

/// The shared connection pool.
#[derive(Clone, Debug)]
pub struct Pool {
    driver: Pools,
    /// The whole wait for a connection, over all attempts.
    acquire_timeout: Duration,
    /// The pool as its own release hook sees it (through a weak reference, so the pool does
    /// not keep itself alive); dropped with the last clone of this handle.
    _release_view: Arc<OnceLock<Pools>>,
    /// Callers waiting for a connection (sqlx counts open and idle ones, not waiters).
    waiting: Arc<AtomicUsize>,
    /// Behind a transaction pooler: the statement opening every transaction, reads' included.
    pooled_begin: Option<String>,
    /// Where the DSN names several hosts (or only a writable one will do): which one now.
    hosts: Option<Arc<HostChoice>>,
}

/// The host a pool connects to, out of those its DSN names, and the search for another when
/// it fails: hosts are tried in the DSN's order, one that failed within [`HOST_SKIP`] after
/// the others, and the first that answers and takes writes wins (libpq's
/// `target_session_attrs=read-write`).
#[derive(Debug)]
struct HostChoice {
    target: ConnectTarget,
    current: AtomicUsize,
    /// When the pool last moved: connections opened before are closed rather than handed out.
    moved: Arc<Mutex<Option<std::time::Instant>>>,
    /// One search at a time.
    search: tokio::sync::Mutex<Search>,
    /// [`host_trouble_seen`] when last looked at.
    trouble_seen: AtomicU64,
}

/// What the searches learnt.
#[derive(Debug)]
struct Search {
    /// When the last one ended.
    last: Option<Instant>,
    /// Per host: tried after the others until then.
    failed_until: Vec<Option<Instant>>,
}

/// A host that failed is tried after the others for this long.
const HOST_SKIP: Duration = Duration::from_secs(5);

/// Searches start at most this often: callers failing together share one.
const SEARCH_PAUSE: Duration = Duration::from_millis(500);

impl HostChoice {
    /// Looks for the first usable host and moves the pool there if it is another one.
    async fn search(&self, pools: &Pools) {
        let mut state = self.search.lock().await;
        if state.last.is_some_and(|at| at.elapsed() < SEARCH_PAUSE) {
            return;
        }
        let now = Instant::now();
        // Hosts that failed lately come last, each group in the DSN's order.
        let mut order: Vec<usize> = (0..state.failed_until.len()).collect();
        order.sort_by_key(|&i| state.failed_until[i].is_some_and(|until| until > now));
        for host in order {
            match Unpooled::open_usable(&self.target, [host]).await {
                Ok((_, conn)) => {
                    conn.close().await;
                    state.failed_until[host] = None;
                    self.move_to(pools, host);
                    break;
                }
                Err(_) => state.failed_until[host] = Some(Instant::now() + HOST_SKIP),
            }
        }
        state.last = Some(Instant::now());
    }

    fn move_to(&self, pools: &Pools, host: usize) {
        let before = self.current.swap(host, Ordering::Relaxed);
        if before == host {
            return;
        }
        match (pools, &self.target) {
            (Driver::MySql(p), ConnectTarget::MySql(h)) => p.set_connect_options(h.each[host].clone()),
            (Driver::Postgres(p), ConnectTarget::Postgres(h)) => p.set_connect_options(h.each[host].clone()),
            _ => unreachable!("a pool and its target are of one backend"),
        }
        *self.moved.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        let names = self.target.host_names();
        tracing::warn!(from = %names[before], to = %names[host], "the database moved to another host; connections follow");
    }
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

/// MySQL/MariaDB's error number for an unknown system variable.
const ER_UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;

impl Pool {
    /// Starts a write transaction, as [`Dialect::write_begin`] opens one (with the session
    /// settings behind a transaction pooler, [`Dialect::pooled_begin`]).
    pub async fn begin(&self) -> Result<Tx> {
        self.follow_host_trouble().await;
        self.retrying(|| async { Ok(map_driver!(&self.driver, p => p.begin_with(self.begin_statement()).await?)) }).await
    }

    /// The statement opening a write transaction here ([`Reader::begin`] takes it).
    pub(crate) fn begin_statement(&self) -> String {
        self.pooled_begin.clone().unwrap_or_else(|| self.any_dialect().write_begin().to_owned())
    }

    pub async fn reader(&self) -> Result<Reader> {
        self.retrying(|| self.acquire()).await
    }

    async fn acquire(&self) -> Result<Reader, sqlx::Error> {
        Ok(match &self.pooled_begin {
            None => map_driver!(&self.driver, p => Lease::Plain(p.acquire().await?)),
            Some(begin) => map_driver!(&self.driver, p => Lease::InTransaction(p.begin_with(begin.clone()).await?)),
        })
    }

    /// Some connection met a host that takes no writes now ([`host_trouble_seen`]) since this
    /// pool last looked: look for the host that does before the next write.
    async fn follow_host_trouble(&self) {
        let Some(hosts) = &self.hosts else { return };
        let seen = host_trouble_seen();
        if hosts.trouble_seen.swap(seen, Ordering::Relaxed) != seen {
            hosts.search(&self.driver).await;
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
            if let Some(hosts) = self.hosts.as_ref().filter(|_| is_host_trouble(&error)) {
                hosts.search(&self.driver).await;
            }
            // A server that answers the connection's first message with an error instead of
            // the protocol (PostgreSQL's postmaster out of child slots answers the SSLRequest
            // so) refuses it for now, as "too many connections" does.
            let refused = matches!(error, sqlx::Error::Protocol(_));
            if !(refused || is_unavailable(&error)) || Instant::now() + pause >= deadline {
                return Err(if refused { Error::Unavailable(error) } else { error.into() });
            }
            tracing::debug!(%error, retry_in = ?pause, "database refused a connection; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_ACQUIRE_RETRY);
        }
    }

    pub async fn connect(target: &ConnectTarget, config: &PoolConfig) -> Result<Self> {
        note_pooler(target.pooler());
        let view = Arc::new(OnceLock::new());
        let moved = Arc::new(Mutex::new(None));
        let (first, choose) = match target {
            ConnectTarget::Sqlite(_) => (0, false),
            ConnectTarget::MySql(h) => (0, h.choose()),
            ConnectTarget::Postgres(h) => (0, h.choose()),
        };
        let first = if choose {
            let hosts = target.host_names().len();
            let (host, conn) = Unpooled::open_usable(target, 0..hosts).await?;
            conn.close().await;
            host
        } else {
            first
        };
        let pooled = target.pooler() == Pooler::Transaction;
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
            ConnectTarget::MySql(h) => {
                let statement_timeout = config.statement_timeout;
                let options = server_pool_options(config, Arc::downgrade(&view), moved.clone()).after_connect(move |conn, _| {
                    Box::pin(async move { prepare_session(Driver::MySql(conn), statement_timeout).await })
                });
                Driver::MySql(options.connect_with(h.each[first].clone()).await?)
            }
            ConnectTarget::Postgres(h) => {
                let statement_timeout = config.statement_timeout;
                let options = server_pool_options(config, Arc::downgrade(&view), moved.clone()).after_connect(move |conn, _| {
                    // Behind a transaction pooler a session setting would reach other clients'
                    // transactions: each transaction sets them ([`Dialect::pooled_begin`]).
                    Box::pin(async move {
                        if pooled {
                            return Ok(());
                        }
                        prepare_session(Driver::Postgres(conn), statement_timeout).await
                    })
                });
                Driver::Postgres(options.connect_with(h.each[first].clone()).await?)
            }
        };
        view.set(driver.clone()).expect("set once");
        let acquire_timeout = match target {
            ConnectTarget::Sqlite(_) => SQLITE_ACQUIRE_TIMEOUT,
            _ => config.acquire_timeout,
        };
        let pooled_begin = pooled.then(|| Dialect::any_layout(target.backend()).pooled_begin(config.statement_timeout));
        let hosts = choose.then(|| {
            Arc::new(HostChoice {
                target: target.clone(),
                current: AtomicUsize::new(first),
                moved,
                search: tokio::sync::Mutex::new(Search { last: None, failed_until: vec![None; target.host_names().len()] }),
                trouble_seen: AtomicU64::new(host_trouble_seen()),
            })
        });
        Ok(Pool { driver, acquire_timeout, _release_view: view, waiting: Arc::default(), pooled_begin, hosts })
    }

    pub fn stats(&self) -> PoolStats {
        let (size, idle) = on_driver!(&self.driver, p => (p.size(), p.num_idle()));
        PoolStats { size, idle, waiting: self.waiting.load(Ordering::Relaxed) }
    }

    pub async fn close(&self) {
        on_driver!(&self.driver, p => p.close().await)
    }

    /// Whether `table` exists (see [`Dialect::table_exists_query`]).
    pub async fn table_exists(&self, table: &str) -> Result<bool> {
        let sql = self.any_dialect().table_exists_query();
        // Read-only: safe to retry as an acquire is.
        self.retrying(|| async { self.acquire().await?.conn().exists(sql, &[Arg::from(table)]).await }).await
    }

    fn any_dialect(&self) -> Dialect {
        Dialect::any_layout(self.driver.backend())
    }

    /// The row upstream's readiness check reads; `None` when the table is empty or missing.
    pub async fn schema_version(&self) -> Result<Option<SchemaVersion>> {
        let exists = self.table_exists(VERSION_TABLE).await?;
        if !exists {
            return Ok(None);
        }
        let sql = "SELECT version, dirty FROM schema_migrations ORDER BY version DESC LIMIT 1";
        let row: Option<(i64, bool)> =
            self.retrying(|| async { self.acquire().await?.conn().fetch_optional(sql, &[]).await }).await?;
        Ok(row.map(|(version, dirty)| SchemaVersion { version: u64::try_from(version).ok(), dirty }))
    }

    /// Picks the layout: on PostgreSQL a database MLMD created keeps its lower-case tables;
    /// everything else (including an empty database) gets upstream's layout.
    pub async fn detect_dialect(&self) -> Result<Dialect> {
        let dialect = self.any_dialect();
        if dialect == Dialect::Postgres && !self.table_exists("MLMDEnv").await? && self.table_exists("mlmdenv").await? {
            return Ok(Dialect::PostgresMlmd);
        }
        Ok(dialect)
    }

    /// Name of the connected database and schema (see [`Dialect::database_and_schema_query`]).
    pub async fn database_and_schema(&self) -> Result<(String, String)> {
        let Some(sql) = self.any_dialect().database_and_schema_query() else {
            return Ok(("main".into(), "main".into()));
        };
        let row: Option<(Option<String>, Option<String>)> =
            self.retrying(|| async { self.acquire().await?.conn().fetch_optional(sql, &[]).await }).await?;
        let (database, schema) = row.unwrap_or_default();
        Ok((database.unwrap_or_default(), schema.unwrap_or_default()))
    }
}

impl Pools {
    fn num_idle(&self) -> usize {
        on_driver!(self, p => p.num_idle())
    }
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        on_driver!(self, p => p.fmt(f))
    }
}

/// A MySQL or PostgreSQL pool sized by `config`: no connection is kept open for its own sake
/// (minimum 0, idle ones closed after `max_idle_time` or beyond `max_idle`), and one idle for
/// [`PING_AFTER_IDLE`] or longer is pinged before it is handed out, so a pool whose server
/// restarted drops its dead connections instead of failing requests with them. A connection in
/// steady use goes without: a ping per request was a third of a point read's round trips.
///
/// A connection opened before the pool last moved to another host (`moved`) is closed
/// instead: it may lead to a standby, or to a node that left its cluster.
fn server_pool_options<DB: Database>(
    config: &PoolConfig,
    view: Weak<OnceLock<Pools>>,
    moved: Arc<Mutex<Option<std::time::Instant>>>,
) -> PoolOptions<DB> {
    let max_idle = usize::try_from(config.max_idle).unwrap_or(usize::MAX);
    PoolOptions::new()
        .max_connections(config.max_open)
        .min_connections(0)
        .max_lifetime(config.max_lifetime)
        .idle_timeout(config.max_idle_time)
        .acquire_timeout(config.acquire_timeout / ACQUIRE_ATTEMPTS)
        .test_before_acquire(false)
        .before_acquire(move |conn: &mut DB::Connection, meta| {
            let moved = *moved.lock().unwrap_or_else(|e| e.into_inner());
            Box::pin(async move {
                if moved.is_some_and(|at| meta.age > at.elapsed()) {
                    return Ok(false);
                }
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

/// Applies [`Dialect::session_settings`] to a new pooled session, falling back to
/// [`Dialect::session_settings_fallback`] where the server does not know a variable.
async fn prepare_session(mut conn: Conn<'_>, statement_timeout: Option<Duration>) -> Result<(), sqlx::Error> {
    let dialect = Dialect::any_layout(conn.backend());
    let Some(settings) = dialect.session_settings(statement_timeout) else { return Ok(()) };
    match conn.execute_script(&settings).await {
        Err(sqlx::Error::Database(e))
            if e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|e| e.number() == ER_UNKNOWN_SYSTEM_VARIABLE) =>
        {
            match dialect.session_settings_fallback(statement_timeout) {
                Some(fallback) => conn.execute_script(&fallback).await,
                None => Err(sqlx::Error::Database(e)),
            }
        }
        other => other,
    }
}
