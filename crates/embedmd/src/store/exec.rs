//! Running a statement written once on whichever driver is connected: values travel as
//! [`Arg`]s, rows come back through `FromRow` implementations valid for all three drivers.

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
        Ok(match self {
            Conn::Sqlite(c) => c.execute(bind_all!(sqlx::query(sql), args)).await?.rows_affected(),
            Conn::MySql(c) => c.execute(bind_all!(sqlx::query(sql), args)).await?.rows_affected(),
            Conn::Postgres(c) => c.execute(bind_all!(sqlx::query(sql), args)).await?.rows_affected(),
        })
    }

    /// Runs an INSERT into a table with a surrogate `id` and returns the new id. `sql` must not
    /// end in RETURNING: that is added where the database supports it.
    pub async fn insert_returning_id(&mut self, sql: &str, args: &[Arg]) -> Result<i64> {
        Ok(match self {
            Conn::Sqlite(c) => {
                let returning = format!("{sql} RETURNING id");
                c.fetch_one(bind_all!(sqlx::query(&returning), args)).await?.try_get(0)?
            }
            Conn::MySql(c) => c.execute(bind_all!(sqlx::query(sql), args)).await?.last_insert_id() as i64,
            Conn::Postgres(c) => {
                let returning = format!("{sql} RETURNING CAST(id AS BIGINT)");
                c.fetch_one(bind_all!(sqlx::query(&returning), args)).await?.try_get(0)?
            }
        })
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
            Conn::Sqlite(c) => {
                c.fetch_all(bind_all!(sqlx::query(sql), args)).await?.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
            Conn::MySql(c) => {
                c.fetch_all(bind_all!(sqlx::query(sql), args)).await?.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
            Conn::Postgres(c) => {
                c.fetch_all(bind_all!(sqlx::query(sql), args)).await?.iter().map(T::from_row).collect::<Result<_, _>>()?
            }
        })
    }
}
