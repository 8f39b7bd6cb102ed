//! Connections over the three sqlx drivers, and the one place that dispatches on them.

use std::time::Duration;

use sqlx::mysql::{MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Executor, MySql, Postgres, Row, Sqlite, Transaction};

use crate::dialect::Dialect;
use crate::dsn::ConnectTarget;
use crate::error::Result;
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
pub enum Pool {
    Sqlite(SqlitePool),
    MySql(MySqlPool),
    Postgres(PgPool),
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
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::MySql($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: u32 = 16;

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
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::MySql(p) => Tx::MySql(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    pub async fn reader(&self) -> Result<Reader> {
        Ok(match self {
            Pool::Sqlite(p) => Reader::Sqlite(p.acquire().await?),
            Pool::MySql(p) => Reader::MySql(p.acquire().await?),
            Pool::Postgres(p) => Reader::Postgres(p.acquire().await?),
        })
    }

    pub async fn connect(target: &ConnectTarget) -> Result<Self> {
        Ok(match target {
            ConnectTarget::Sqlite(o) => Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(o.clone())
                    .await?,
            ),
            ConnectTarget::MySql(o) => Pool::MySql(
                MySqlPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(o.clone())
                    .await?,
            ),
            ConnectTarget::Postgres(o) => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(o.clone())
                    .await?,
            ),
        })
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    /// Whether `table` exists (see [`Dialect::table_exists_query`]).
    pub async fn table_exists(&self, table: &str) -> Result<bool> {
        let sql = self.any_dialect().table_exists_query();
        Ok(on_pool!(self, p => sqlx::query(sql).bind(table).fetch_optional(p).await?.is_some()))
    }

    /// A dialect of this pool's backend, for SQL that is the same in both PostgreSQL layouts.
    fn any_dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::MySql(_) => Dialect::MySql,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The row upstream's readiness check reads; `None` when the table is empty or missing.
    pub async fn schema_version(&self) -> Result<Option<SchemaVersion>> {
        let exists = self.table_exists(VERSION_TABLE).await?;
        if !exists {
            return Ok(None);
        }
        let sql = "SELECT version, dirty FROM schema_migrations ORDER BY version DESC LIMIT 1";
        let row: Option<(i64, bool)> = on_pool!(self, p => sqlx::query_as(sql).fetch_optional(p).await?);
        Ok(row.map(|(version, dirty)| SchemaVersion { version: u64::try_from(version).ok(), dirty }))
    }

    /// Picks the layout: on PostgreSQL a database MLMD created keeps its lower-case tables;
    /// everything else (including an empty database) gets upstream's layout.
    pub async fn detect_dialect(&self) -> Result<Dialect> {
        Ok(match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::MySql(_) => Dialect::MySql,
            Pool::Postgres(_) => {
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
        Ok(match self {
            Pool::Sqlite(_) => ("main".into(), "main".into()),
            Pool::MySql(p) => {
                let row = sqlx::query("SELECT DATABASE()").fetch_one(p).await?;
                (row.try_get::<Option<String>, _>(0)?.unwrap_or_default(), String::new())
            }
            Pool::Postgres(p) => {
                let row = sqlx::query("SELECT current_database()::text, current_schema()::text").fetch_one(p).await?;
                (row.try_get(0)?, row.try_get(1)?)
            }
        })
    }
}
