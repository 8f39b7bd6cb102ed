use crate::migrate::MigrateError;

/// What can go wrong in the datastore, classified once so callers never inspect driver text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database cannot be reached (refused, timed out, pool exhausted): worth retrying.
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

pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
