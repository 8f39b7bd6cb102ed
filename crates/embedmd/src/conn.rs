//! The one way SQL reaches a database. Every connection, pooled, inside a transaction or a
//! session's own, is a [`Driver`] of the matching sqlx types and lends a [`Conn`]; statements
//! run through [`Conn`]'s methods, which bind [`Arg`]s in one place and time every statement by
//! its [`QueryKind`]. What differs between the databases is asked of [`Dialect`]: this module
//! only dispatches on the driver, with the same body for each.
//!
//! It sits below `db` (the pool), `migrate`, `store`, `types` and `transfer`, and imports none of
//! them; its errors are the driver's, classified by the callers.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sqlx::mysql::{MySql, MySqlConnection};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnection};
use sqlx::{Connection as _, Database, Executor, FromRow, Row, Transaction};

use crate::arg::{Arg, ArgKind};
use crate::dialect::Dialect;
use crate::dsn::{Backend, ConnectTarget, Hosts, Pooler};

/// One value per sqlx driver: a pool, a connection, a transaction or a borrow of one.
#[derive(Clone)]
pub enum Driver<S, M, P> {
    Sqlite(S),
    MySql(M),
    Postgres(P),
}

/// Runs the same body whatever the driver: `on_driver!(conn, c => c.close().await)`.
macro_rules! on_driver {
    ($value:expr, $c:ident => $body:expr) => {
        match $value {
            $crate::conn::Driver::Sqlite($c) => $body,
            $crate::conn::Driver::MySql($c) => $body,
            $crate::conn::Driver::Postgres($c) => $body,
        }
    };
}

/// As [`on_driver!`], keeping the variant: `map_driver!(tx, t => &mut **t)`.
macro_rules! map_driver {
    ($value:expr, $c:ident => $body:expr) => {
        match $value {
            $crate::conn::Driver::Sqlite($c) => $crate::conn::Driver::Sqlite($body),
            $crate::conn::Driver::MySql($c) => $crate::conn::Driver::MySql($body),
            $crate::conn::Driver::Postgres($c) => $crate::conn::Driver::Postgres($body),
        }
    };
}
pub(crate) use {map_driver, on_driver};

/// A borrowed connection: pooled, inside a transaction, or a session's own.
pub type Conn<'c> = Driver<&'c mut SqliteConnection, &'c mut MySqlConnection, &'c mut PgConnection>;

/// A single, unpooled connection: session locks live and die with it.
pub type Unpooled = Driver<SqliteConnection, MySqlConnection, PgConnection>;

/// A write transaction on a connection borrowed for `'c`; dropped without [`TxOn::commit`] it
/// rolls back.
pub type TxOn<'c> = Driver<Transaction<'c, Sqlite>, Transaction<'c, MySql>, Transaction<'c, Postgres>>;

/// A write transaction on a pooled connection it holds.
pub type Tx = TxOn<'static>;

/// A statement and its binds, for [`Conn::execute_all`].
pub type Statement = (String, Vec<Arg>);

/// A pooled connection for reads: outside a transaction, but inside one behind a transaction
/// pooler ([`Pooler::Transaction`]), where a statement outside one may run on any server session.
pub type Reader = Driver<Lease<Sqlite>, Lease<MySql>, Lease<Postgres>>;

/// A pooled connection, or a transaction on one (rolled back when dropped).
pub enum Lease<DB: Database> {
    Plain(PoolConnection<DB>),
    InTransaction(Transaction<'static, DB>),
}

impl<DB: Database> Deref for Lease<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match self {
            Lease::Plain(c) => c,
            Lease::InTransaction(t) => t,
        }
    }
}

impl<DB: Database> DerefMut for Lease<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            Lease::Plain(c) => c,
            Lease::InTransaction(t) => t,
        }
    }
}

/// Whether statements are prepared once per session and kept (named). Behind a transaction
/// pooler the next transaction may run on a session that never saw them (or that another
/// client's statement of the same name was prepared on), so every statement is prepared
/// unnamed, in the transaction that runs it. Process-wide and one-way: once a target behind a
/// pooler is opened ([`Unpooled::open`], the pool), every statement of the process is unnamed,
/// which costs other datastores of the process (tests, a transfer) a parse per statement, never
/// correctness.
static NAMED_STATEMENTS: AtomicBool = AtomicBool::new(true);

pub(crate) fn note_pooler(pooler: Pooler) {
    if pooler == Pooler::Transaction {
        NAMED_STATEMENTS.store(false, Ordering::Relaxed);
    }
}

/// How long one host may take to accept a connection before the next is tried.
const HOST_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl<S, M, P> Driver<S, M, P> {
    pub fn backend(&self) -> Backend {
        match self {
            Driver::Sqlite(_) => Backend::Sqlite,
            Driver::MySql(_) => Backend::MySql,
            Driver::Postgres(_) => Backend::Postgres,
        }
    }
}

impl Unpooled {
    /// Connects to the first of the target's hosts that can take writes
    /// ([`Dialect::host_probe`]).
    pub async fn open(target: &ConnectTarget) -> Result<Self, sqlx::Error> {
        note_pooler(target.pooler());
        let hosts = match target {
            ConnectTarget::Sqlite(o) => return Ok(Driver::Sqlite(SqliteConnection::connect_with(o).await?)),
            ConnectTarget::MySql(h) => h.each.len(),
            ConnectTarget::Postgres(h) => h.each.len(),
        };
        Ok(Unpooled::open_usable(target, 0..hosts).await?.1)
    }

    /// Connects to the first host of `order` (indexes into the target's hosts) that answers
    /// and, where the DSN asks to choose ([`Hosts::choose`]), can take writes; returns its index
    /// too. The error is the last host's.
    pub(crate) async fn open_usable(
        target: &ConnectTarget,
        order: impl IntoIterator<Item = usize>,
    ) -> Result<(usize, Self), sqlx::Error> {
        let mut last = sqlx::Error::PoolTimedOut;
        for host in order {
            match Unpooled::open_host(target, host).await {
                Ok(conn) => return Ok((host, conn)),
                Err(e) => {
                    tracing::debug!(host = %target.host_names()[host], error = %e, "database host passed over");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn open_host(target: &ConnectTarget, host: usize) -> Result<Self, sqlx::Error> {
        async fn connect<C: sqlx::Connection>(hosts: &Hosts<C::Options>, host: usize) -> Result<C, sqlx::Error> {
            tokio::time::timeout(HOST_CONNECT_TIMEOUT, C::connect_with(&hosts.each[host]))
                .await
                .unwrap_or(Err(sqlx::Error::PoolTimedOut))
        }
        let (mut conn, choose) = match target {
            ConnectTarget::Sqlite(o) => return Ok(Driver::Sqlite(SqliteConnection::connect_with(o).await?)),
            ConnectTarget::MySql(h) => (Driver::MySql(connect::<MySqlConnection>(h, host).await?), h.choose()),
            ConnectTarget::Postgres(h) => (Driver::Postgres(connect::<PgConnection>(h, host).await?), h.choose()),
        };
        let dialect = Dialect::any_layout(target.backend());
        if let Some(probe) = dialect.host_probe().filter(|_| choose) {
            let usable = conn.conn().fetch_script_text(probe).await.map(|rows| dialect.host_usable(&rows));
            if !matches!(usable, Ok(true)) {
                conn.close().await;
                return Err(usable.err().unwrap_or_else(|| {
                    sqlx::Error::Io(std::io::Error::other("the host takes no writes now (read-only, or not synced)"))
                }));
            }
        }
        Ok(conn)
    }

    pub fn conn(&mut self) -> Conn<'_> {
        map_driver!(self, c => c)
    }

    pub async fn close(self) {
        // A failed close only means the server already dropped the session.
        let _ = on_driver!(self, c => c.close().await);
    }
}

impl TxOn<'_> {
    pub fn conn(&mut self) -> Conn<'_> {
        map_driver!(self, t => &mut **t)
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        on_driver!(self, t => t.commit().await)
    }
}

impl Reader {
    pub fn conn(&mut self) -> Conn<'_> {
        map_driver!(self, c => &mut **c)
    }

    /// A write transaction on this connection, opened by `begin` ([`Dialect::write_begin`]).
    pub async fn begin(&mut self, begin: String) -> Result<TxOn<'_>, sqlx::Error> {
        Ok(map_driver!(self, c => sqlx::Connection::begin_with(&mut **c, begin).await?))
    }

    /// Whether a transaction is still open on the connection: after a failed commit, SQLite
    /// may have rolled back on its own, and the driver then still counts it open.
    pub fn in_transaction(&self) -> bool {
        on_driver!(self, c => sqlx::Connection::is_in_transaction(&**c))
    }
}

/// What a statement does, by its first keyword: the label of its time in the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryKind {
    Select,
    Insert,
    Update,
    Delete,
    Other,
}

impl QueryKind {
    pub const ALL: [QueryKind; 5] =
        [QueryKind::Select, QueryKind::Insert, QueryKind::Update, QueryKind::Delete, QueryKind::Other];

    fn of(sql: &str) -> Self {
        let keyword = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default();
        [QueryKind::Select, QueryKind::Insert, QueryKind::Update, QueryKind::Delete]
            .into_iter()
            .find(|kind| keyword.eq_ignore_ascii_case(kind.as_str()))
            .unwrap_or(QueryKind::Other)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QueryKind::Select => "select",
            QueryKind::Insert => "insert",
            QueryKind::Update => "update",
            QueryKind::Delete => "delete",
            QueryKind::Other => "other",
        }
    }
}

/// Statements run through [`Conn`] and the time spent in them, per kind. Process-wide: every
/// statement passes here, and two atomic adds per statement cost nothing next to it.
static QUERIES: [(AtomicU64, AtomicU64); 5] = [const { (AtomicU64::new(0), AtomicU64::new(0)) }; 5];

/// Statements run and the time spent in them (failed ones included) for `kind`, since start.
pub fn query_totals(kind: QueryKind) -> (u64, Duration) {
    let (count, nanos) = &QUERIES[kind as usize];
    (count.load(Ordering::Relaxed), Duration::from_nanos(nanos.load(Ordering::Relaxed)))
}

async fn timed<T>(sql: &str, query: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = query.await;
    let (count, nanos) = &QUERIES[QueryKind::of(sql) as usize];
    count.fetch_add(1, Ordering::Relaxed);
    nanos.fetch_add(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    result
}

/// A prepared statement with every arg bound, whatever the driver: the one place a statement
/// with parameters is built.
macro_rules! bound {
    ($sql:expr, $args:expr) => {{
        let mut query = sqlx::query($sql).persistent(NAMED_STATEMENTS.load(Ordering::Relaxed));
        for arg in $args {
            query = match arg {
                Arg::Int(v) => query.bind(*v),
                Arg::Double(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.as_deref()),
                Arg::Bool(v) => query.bind(*v),
                Arg::Bytes(v) => query.bind(v.as_deref()),
            };
        }
        query
    }};
}

/// Statements as one text, their binds in order.
fn joined(statements: Vec<Statement>) -> Statement {
    let mut sql = Vec::with_capacity(statements.len());
    let mut args = Vec::new();
    for (statement, binds) in statements {
        sql.push(statement);
        args.extend(binds);
    }
    (sql.join(";\n"), args)
}

/// A row's cells as `kinds` say, whatever the driver.
fn cells<R: Row>(row: &R, kinds: &[ArgKind]) -> Result<Vec<Arg>, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            Ok(match kind {
                ArgKind::Int => Arg::Int(row.try_get(i)?),
                ArgKind::Double => Arg::Double(row.try_get(i)?),
                ArgKind::Text => Arg::Text(row.try_get(i)?),
                ArgKind::Bool => Arg::Bool(row.try_get(i)?),
                ArgKind::Bytes => Arg::Bytes(row.try_get(i)?),
            })
        })
        .collect()
}

/// Rows of a script, every value read as text without a type check.
pub type TextRows = Vec<Vec<Option<String>>>;

fn texts<R: Row>(rows: Vec<R>) -> Result<TextRows, sqlx::Error>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    rows.iter().map(|r| (0..r.len()).map(|i| r.try_get_unchecked::<Option<String>, _>(i)).collect()).collect()
}

/// A row type every driver can decode.
pub trait AnyRow:
    Send
    + Unpin
    + for<'r> FromRow<'r, sqlx::sqlite::SqliteRow>
    + for<'r> FromRow<'r, sqlx::mysql::MySqlRow>
    + for<'r> FromRow<'r, sqlx::postgres::PgRow>
{
}

impl<T> AnyRow for T where
    T: Send
        + Unpin
        + for<'r> FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> FromRow<'r, sqlx::mysql::MySqlRow>
        + for<'r> FromRow<'r, sqlx::postgres::PgRow>
{
}

impl Conn<'_> {
    /// Runs a statement; returns the number of rows it touched.
    pub async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, sqlx::Error> {
        timed(sql, async { Ok(on_driver!(self, c => c.execute(bound!(sql, args)).await?.rows_affected())) }).await
    }

    /// Runs statements that return no rows, in order; where the driver takes several in one call
    /// ([`Dialect::joins_statements`]), as one.
    pub async fn execute_all(&mut self, statements: Vec<Statement>) -> Result<(), sqlx::Error> {
        if statements.len() > 1 && Dialect::any_layout(self.backend()).joins_statements() {
            let (sql, args) = joined(statements);
            self.execute(&sql, &args).await?;
            return Ok(());
        }
        for (sql, args) in statements {
            self.execute(&sql, &args).await?;
        }
        Ok(())
    }

    /// [`Conn::fetch_all`] of `query` after [`Conn::execute_all`] of `before`, in one call where
    /// the driver allows.
    pub async fn fetch_all_after<T: AnyRow>(
        &mut self,
        mut before: Vec<Statement>,
        query: Statement,
    ) -> Result<Vec<T>, sqlx::Error> {
        if !before.is_empty() && Dialect::any_layout(self.backend()).joins_statements() {
            before.push(query);
            let (sql, args) = joined(before);
            return self.fetch_all(&sql, &args).await;
        }
        self.execute_all(before).await?;
        self.fetch_all(&query.0, &query.1).await
    }

    /// Runs a script of one or more statements without parameters (text protocol, no prepared
    /// statement; several statements on PostgreSQL form one implicit transaction).
    pub async fn execute_script(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        timed(sql, async { on_driver!(self, c => c.execute(sqlx::raw_sql(sql)).await.map(drop)) }).await
    }

    /// Runs an INSERT into a table with a surrogate `id` and returns the new id, or `None` when
    /// it inserted nothing (an `INSERT ... SELECT` whose SELECT found no row). `sql` must not
    /// end in RETURNING: [`Dialect::id_returning`] says what to add, if anything.
    pub async fn insert_returning_id(&mut self, sql: &str, args: &[Arg]) -> Result<Option<i64>, sqlx::Error> {
        let returning = Dialect::any_layout(self.backend()).id_returning().map(|clause| format!("{sql} {clause}"));
        timed(sql, async {
            match (self, returning) {
                (conn, Some(returning)) => conn.first_i64(&returning, args).await,
                (Driver::MySql(c), None) => {
                    let done = c.execute(bound!(sql, args)).await?;
                    Ok((done.rows_affected() > 0).then(|| done.last_insert_id() as i64))
                }
                (_, None) => unreachable!("only MySQL's driver hands back the id without RETURNING"),
            }
        })
        .await
    }

    /// Whether the statement returns any row.
    pub async fn exists(&mut self, sql: &str, args: &[Arg]) -> Result<bool, sqlx::Error> {
        timed(sql, async { on_driver!(self, c => Ok(c.fetch_optional(bound!(sql, args)).await?.is_some())) }).await
    }

    /// The first column of the first row, if any, as an integer.
    pub async fn fetch_optional_i64(&mut self, sql: &str, args: &[Arg]) -> Result<Option<i64>, sqlx::Error> {
        timed(sql, self.first_i64(sql, args)).await
    }

    async fn first_i64(&mut self, sql: &str, args: &[Arg]) -> Result<Option<i64>, sqlx::Error> {
        on_driver!(self, c => c.fetch_optional(bound!(sql, args)).await?.map(|r| r.try_get(0)).transpose())
    }

    pub async fn fetch_optional<T: AnyRow>(&mut self, sql: &str, args: &[Arg]) -> Result<Option<T>, sqlx::Error> {
        on_driver!(self, c => timed(sql, c.fetch_optional(bound!(sql, args))).await?.as_ref().map(T::from_row).transpose())
    }

    pub async fn fetch_all<T: AnyRow>(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<T>, sqlx::Error> {
        // Rows are mapped after fetching: the generic `query_as(..).fetch_all(..)` futures trip
        // rustc's Send inference inside spawned tasks.
        on_driver!(self, c => timed(sql, c.fetch_all(bound!(sql, args))).await?.iter().map(T::from_row).collect())
    }

    /// The first row, if any, read as `kinds` say.
    pub async fn fetch_optional_cells(
        &mut self,
        sql: &str,
        args: &[Arg],
        kinds: &[ArgKind],
    ) -> Result<Option<Vec<Arg>>, sqlx::Error> {
        on_driver!(self, c => timed(sql, c.fetch_optional(bound!(sql, args))).await?.map(|row| cells(&row, kinds)).transpose())
    }

    /// Streams the rows, each read as `kinds` say, to `each` as they arrive; stops at the first
    /// error of the database (outer) or of `each` (inner).
    pub async fn fetch_each<E>(
        &mut self,
        sql: &str,
        args: &[Arg],
        kinds: &[ArgKind],
        mut each: impl FnMut(Vec<Arg>) -> Result<(), E>,
    ) -> Result<Result<(), E>, sqlx::Error> {
        timed(sql, async {
            on_driver!(self, c => {
                let mut rows = c.fetch(bound!(sql, args));
                while let Some(row) = rows.try_next().await? {
                    if let Err(e) = each(cells(&row, kinds)?) {
                        return Ok(Err(e));
                    }
                }
                Ok(Ok(()))
            })
        })
        .await
    }

    /// Runs a script (text protocol) and reads every value it returns as text, unchecked.
    pub async fn fetch_script_text(&mut self, sql: &str) -> Result<TextRows, sqlx::Error> {
        timed(sql, async { on_driver!(self, c => texts(c.fetch_all(sqlx::raw_sql(sql)).await?)) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::QueryKind;

    #[test]
    fn a_statement_is_labelled_by_its_first_keyword() {
        assert_eq!(QueryKind::of("SELECT id FROM x"), QueryKind::Select);
        assert_eq!(QueryKind::of("\n  insert INTO x VALUES (1)"), QueryKind::Insert);
        assert_eq!(QueryKind::of("UPDATE x SET a = a WHERE id = ?"), QueryKind::Update);
        assert_eq!(QueryKind::of("DELETE FROM x"), QueryKind::Delete);
        assert_eq!(QueryKind::of("WITH t AS (SELECT 1) SELECT * FROM t"), QueryKind::Other);
        assert_eq!(QueryKind::of("SELECTED"), QueryKind::Other);
    }
}
