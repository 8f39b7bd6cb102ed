use std::sync::atomic::{AtomicU64, Ordering};

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
    /// An id the database assigns itself (AUTO_INCREMENT, a sequence) was already taken: Galera
    /// can hand one out twice while its membership changes (codership/mysql-wsrep#18, MDEV-7129).
    /// No client chose it; the transaction run again draws a new one.
    #[error("a database-assigned id was already taken: {0}")]
    AssignedIdTaken(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if takes_no_writes(&e) {
            HOST_TROUBLE.fetch_add(1, Ordering::Relaxed);
        }
        if is_unavailable(&e) {
            Error::Unavailable(e)
        } else if e.as_database_error().is_some_and(is_assigned_id_taken) {
            Error::AssignedIdTaken(e)
        } else if e.as_database_error().is_some_and(|d| d.is_unique_violation()) {
            Error::UniqueViolation(e)
        } else {
            Error::Db(e)
        }
    }
}

/// PostgreSQL SQLSTATEs of a server that cannot serve now: connection exceptions (class 08),
/// too many clients, shutting down or starting up, a statement cancelled by
/// `statement_timeout`, and a write on a host that turned read-only (a standby, after a
/// failover).
const PG_UNAVAILABLE: [&str; 6] = ["53300", "57P01", "57P02", "57P03", "57014", PG_READ_ONLY];

/// MySQL/MariaDB error numbers of the same: server shutdown (1053), too many connections (1040,
/// and per user 1203, 1226), connection killed (1927), statement time limit (MariaDB 1969,
/// MySQL 3024), and a Galera node outside the cluster's primary component (1047).
const MYSQL_UNAVAILABLE: [u16; 8] = [1040, 1053, 1203, 1226, 1927, 1969, 3024, MYSQL_WSREP_NOT_READY];

/// PostgreSQL's `read_only_sql_transaction`.
const PG_READ_ONLY: &str = "25006";

/// MariaDB's "WSREP has not yet prepared node for application use" (ER_UNKNOWN_COM_ERROR).
const MYSQL_WSREP_NOT_READY: u16 = 1047;

/// MySQL's deadlock, which Galera also answers when another node's transaction won
/// certification (or aborted this one to apply its own).
const MYSQL_DEADLOCK: u16 = 1213;

/// PostgreSQL's serialization failure and deadlock.
const PG_ROLLED_BACK: [&str; 2] = ["40001", "40P01"];

/// Errors met that say a host takes no writes now, process-wide: a pool whose DSN names
/// several hosts looks for another when the count moves ([`crate::db::Pool::begin`]).
static HOST_TROUBLE: AtomicU64 = AtomicU64::new(0);

pub(crate) fn host_trouble_seen() -> u64 {
    HOST_TROUBLE.load(Ordering::Relaxed)
}

fn takes_no_writes(e: &sqlx::Error) -> bool {
    let Some(d) = e.as_database_error() else { return false };
    match d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        Some(mysql) => mysql.number() == MYSQL_WSREP_NOT_READY,
        None => d.code().as_deref() == Some(PG_READ_ONLY),
    }
}

/// Whether the host itself failed (unreachable, gone, refusing writes), as opposed to a busy
/// or slow one: worth looking for another host.
pub(crate) fn is_host_trouble(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(d) => {
            if let Some(mysql) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                [1053, 1927, MYSQL_WSREP_NOT_READY].contains(&mysql.number())
            } else {
                d.code().is_some_and(|c| c.starts_with("08") || ["57P01", "57P02", "57P03", PG_READ_ONLY].contains(&c.as_ref()))
            }
        }
        _ => false,
    }
}

/// Whether the database rolled the whole transaction back because of another one (a
/// deadlock, a serialization failure, a Galera certification conflict): running it again from
/// the start is safe.
pub(crate) fn is_rolled_back_conflict(e: &sqlx::Error) -> bool {
    let Some(d) = e.as_database_error() else { return false };
    match d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        Some(mysql) => mysql.number() == MYSQL_DEADLOCK,
        None => d.code().is_some_and(|c| PG_ROLLED_BACK.contains(&c.as_ref())),
    }
}

/// [`Error::is_retryable`] for an error of any caller's type that carries a datastore error in
/// its chain of sources.
pub(crate) fn carries_retryable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(e) = e.downcast_ref::<Error>() {
            return e.is_retryable();
        }
        next = e.source();
    }
    false
}

/// A duplicate on a primary key that is an id alone, which only the database fills in our
/// writes (the keys of property and link tables span several columns). MariaDB says
/// "Duplicate entry '17' for key 'PRIMARY'" (MySQL 8: 'Context.PRIMARY'), where a composite key
/// shows its parts joined by '-'; PostgreSQL names the key `<table>_pkey`, detail "Key (id)=".
fn is_assigned_id_taken(d: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(mysql) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        let message = mysql.message();
        let entry = message
            .strip_prefix("Duplicate entry '")
            .and_then(|rest| rest.split_once("' for key "))
            .filter(|(_, key)| *key == "'PRIMARY'" || key.ends_with(".PRIMARY'"))
            .map(|(entry, _)| entry);
        mysql.number() == MYSQL_DUPLICATE_ENTRY && entry.is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()))
    } else if let Some(pg) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        d.is_unique_violation()
            && pg.constraint().is_some_and(|c| c.ends_with("_pkey"))
            && pg.detail().is_some_and(|detail| detail.starts_with("Key (id)="))
    } else {
        false
    }
}

impl Error {
    /// Whether running the whole transaction again is safe and may succeed: the database rolled
    /// it back because of another one (a deadlock, a serialization failure, a Galera
    /// certification conflict), or handed out an id that was taken.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Db(db) => is_rolled_back_conflict(db),
            Error::AssignedIdTaken(_) => true,
            _ => false,
        }
    }

    /// A unique violation on a table's primary key that spans several columns (ids assigned by
    /// the database are [`Error::AssignedIdTaken`]): on a write, a property row, two names in one
    /// body that the property table's collation holds as one (MySQL/MariaDB's default
    /// collations ignore case, accents and trailing spaces).
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
            Error::AssignedIdTaken(_) => Error::AssignedIdTaken(text),
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
