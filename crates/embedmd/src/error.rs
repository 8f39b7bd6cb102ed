use crate::migrate::MigrateError;

/// What can go wrong in the datastore, classified once so callers never inspect driver text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database cannot serve now (down, refusing connections, no connection free within
    /// the acquire timeout, statement timed out): worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// A unique key (name within a type, external id) already holds this value.
    #[error("unique constraint violated: {0}")]
    UniqueViolation(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Error::Unavailable(e)
        } else if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
            Error::UniqueViolation(e)
        } else {
            Error::Db(e)
        }
    }
}

/// PostgreSQL SQLSTATEs of a server that cannot serve now: connection exceptions (class 08),
/// too many clients, shutting down or starting up, and a statement cancelled by
/// `statement_timeout`.
const PG_UNAVAILABLE: [&str; 5] = ["53300", "57P01", "57P02", "57P03", "57014"];

/// MySQL/MariaDB error numbers of the same: server shutdown (1053), too many connections (1040,
/// and per user 1203, 1226), connection killed (1927), statement time limit (MariaDB 1969,
/// MySQL 3024).
const MYSQL_UNAVAILABLE: [u16; 7] = [1040, 1053, 1203, 1226, 1927, 1969, 3024];

impl Error {
    /// A unique violation on a table's primary key. Node ids are assigned by the database, so
    /// on a write this is a property row: two names in one body that the property table's
    /// collation holds as one (MySQL/MariaDB's default collations ignore case, accents and
    /// trailing spaces).
    pub fn is_primary_key_violation(&self) -> bool {
        let Error::UniqueViolation(sqlx::Error::Database(d)) = self else { return false };
        if let Some(mysql) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            // MariaDB names the key 'PRIMARY', MySQL 8 'Table.PRIMARY'.
            mysql.number() == MYSQL_DUPLICATE_ENTRY
                && (mysql.message().ends_with("'PRIMARY'") || mysql.message().ends_with(".PRIMARY'"))
        } else {
            d.constraint().is_some_and(|c| c.ends_with("_pkey"))
        }
    }

    /// An error of the same kind with the same text, for each of several callers that one
    /// failure concerns (a group commit).
    pub(crate) fn same_kind(&self) -> Error {
        let text = sqlx::Error::Protocol(self.to_string());
        match self {
            Error::Unavailable(_) => Error::Unavailable(text),
            Error::UniqueViolation(_) => Error::UniqueViolation(text),
            Error::Migrate(_) | Error::Db(_) => Error::Db(text),
        }
    }
}

/// MySQL/MariaDB's "Duplicate entry ... for key ...".
const MYSQL_DUPLICATE_ENTRY: u16 = 1062;

pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => {
            if let Some(mysql) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                MYSQL_UNAVAILABLE.contains(&mysql.number())
            } else if d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
                d.code().is_some_and(|c| c.starts_with("08") || PG_UNAVAILABLE.contains(&c.as_ref()))
            } else {
                false
            }
        }
        _ => false,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
