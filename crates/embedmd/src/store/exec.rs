//! Running a statement written once on whichever driver is connected: values travel as
//! [`Arg`]s, rows come back through `FromRow` implementations valid for all three drivers.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Executor, FromRow, Row};

use crate::dsn::Backend;
use crate::error::Result;

/// A borrowed connection (pooled, or inside a transaction).
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    MySql(&'c mut MySqlConnection),
    Postgres(&'c mut PgConnection),
}

/// A bind value.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(Option<i64>),
    Double(Option<f64>),
    Text(Option<String>),
    Bool(Option<bool>),
    Bytes(Option<Vec<u8>>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(Some(v))
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

/// Statements run through [`Conn`] and the time spent in them, per kind. Process-wide: the
/// store's statements all pass here, and two atomic adds per statement cost nothing next to it.
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

/// Binds every arg onto a query, whatever the driver.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
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

impl Conn<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::MySql(_) => Backend::MySql,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs a statement; returns the number of rows it touched.
    pub async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64> {
        timed(sql, self.execute_untimed(sql, args)).await
    }

    async fn execute_untimed(&mut self, sql: &str, args: &[Arg]) -> Result<u64> {
        Ok(match self {
            Conn::Sqlite(c) => c.execute(bind_all!(sqlx::query(sql), args)).await?.rows_affected(),
            Conn::MySql(c) => c.execute(bind_all!(sqlx::query(sql), args)).await?.rows_affected(),
            Conn::Postgres(c) => c.execute(bind_all!(sqlx::query(sql), args)).await?.rows_affected(),
        })
    }

    /// Runs an INSERT into a table with a surrogate `id` and returns the new id, or `None` when
    /// it inserted nothing (an `INSERT ... SELECT` whose SELECT found no row). `sql` must not
    /// end in RETURNING: that is added where the database supports it.
    pub async fn insert_returning_id(&mut self, sql: &str, args: &[Arg]) -> Result<Option<i64>> {
        timed(sql, self.insert_returning_id_untimed(sql, args)).await
    }

    async fn insert_returning_id_untimed(&mut self, sql: &str, args: &[Arg]) -> Result<Option<i64>> {
        Ok(match self {
            Conn::Sqlite(c) => {
                let returning = format!("{sql} RETURNING id");
                c.fetch_optional(bind_all!(sqlx::query(&returning), args)).await?.map(|row| row.try_get(0)).transpose()?
            }
            Conn::MySql(c) => {
                let done = c.execute(bind_all!(sqlx::query(sql), args)).await?;
                (done.rows_affected() > 0).then(|| done.last_insert_id() as i64)
            }
            Conn::Postgres(c) => {
                let returning = format!("{sql} RETURNING CAST(id AS BIGINT)");
                c.fetch_optional(bind_all!(sqlx::query(&returning), args)).await?.map(|row| row.try_get(0)).transpose()?
            }
        })
    }

    /// The first column of the first row, if any, as an integer.
    pub async fn fetch_optional_i64(&mut self, sql: &str, args: &[Arg]) -> Result<Option<i64>> {
        timed(sql, async {
            Ok(match self {
                Conn::Sqlite(c) => {
                    c.fetch_optional(bind_all!(sqlx::query(sql), args)).await?.map(|r| r.try_get(0)).transpose()?
                }
                Conn::MySql(c) => c.fetch_optional(bind_all!(sqlx::query(sql), args)).await?.map(|r| r.try_get(0)).transpose()?,
                Conn::Postgres(c) => {
                    c.fetch_optional(bind_all!(sqlx::query(sql), args)).await?.map(|r| r.try_get(0)).transpose()?
                }
            })
        })
        .await
    }

    pub async fn fetch_all<T>(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<T>>
    where
        T: Send + Unpin,
        T: for<'r> FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> FromRow<'r, sqlx::mysql::MySqlRow>
            + for<'r> FromRow<'r, sqlx::postgres::PgRow>,
    {
        // Rows are mapped after fetching: the generic `query_as(..).fetch_all(..)` futures trip
        // rustc's Send inference inside spawned tasks.
        Ok(match self {
            Conn::Sqlite(c) => timed(sql, c.fetch_all(bind_all!(sqlx::query(sql), args)))
                .await?
                .iter()
                .map(T::from_row)
                .collect::<Result<_, _>>()?,
            Conn::MySql(c) => timed(sql, c.fetch_all(bind_all!(sqlx::query(sql), args)))
                .await?
                .iter()
                .map(T::from_row)
                .collect::<Result<_, _>>()?,
            Conn::Postgres(c) => timed(sql, c.fetch_all(bind_all!(sqlx::query(sql), args)))
                .await?
                .iter()
                .map(T::from_row)
                .collect::<Result<_, _>>()?,
        })
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
