//! golang-migrate's bookkeeping as its driver for each database writes it: the version table,
//! the lock that keeps migrators of one database apart, and the unit a step runs in.

use std::time::Duration;

use super::Dialect;
use crate::arg::{Arg, ArgKind};
use crate::dsn::{Backend, Pooler};

/// golang-migrate's `DefaultMigrationsTable`.
pub const VERSION_TABLE: &str = "schema_migrations";

/// golang-migrate's salt for advisory lock ids (`database/util.go`).
const ADVISORY_LOCK_SALT: u32 = 1_486_364_155;

/// How long MySQL's `GET_LOCK` waits per attempt, as golang-migrate's driver does.
const MYSQL_LOCK_WAIT_SECS: i64 = 10;

/// Between two tries of PostgreSQL's non-blocking `pg_try_advisory_lock`.
const POSTGRES_LOCK_POLL: Duration = Duration::from_millis(100);

/// `GenerateAdvisoryLockId`: CRC-32 of the additional names followed by the database name,
/// joined with NUL bytes, times the salt, modulo 2^32.
pub fn advisory_lock_id(database: &str, additional: &[&str]) -> u32 {
    let mut parts: Vec<&str> = additional.to_vec();
    parts.push(database);
    let joined = if additional.is_empty() { database.to_owned() } else { parts.join("\0") };
    crc32fast::hash(joined.as_bytes()).wrapping_mul(ADVISORY_LOCK_SALT)
}

/// What locks out other migrators of the same database.
#[derive(Debug, Clone)]
pub enum LockKey {
    /// SQLite: the database's own write lock (`BEGIN IMMEDIATE`) held for the whole session.
    SqliteWriteLock,
    MySql(String),
    Postgres(i64),
    /// PostgreSQL behind a transaction pooler, where a session lock would stay on whichever
    /// server session took it: a transaction-scoped advisory lock (same key), held by one
    /// transaction that spans the whole session, each step a savepoint in it.
    PostgresInTransaction(i64),
}

/// How a session takes the migration lock.
#[derive(Debug, Clone, PartialEq)]
pub enum LockTake {
    /// A script run once: the lock is held from then on.
    Hold(&'static str),
    /// A statement answering one column of kind `answer`, 1 or true once the lock is taken;
    /// asked again after `pause` while another process holds it (MySQL's waits by itself).
    Try { sql: &'static str, args: Vec<Arg>, answer: ArgKind, pause: Duration },
}

impl LockKey {
    /// The keys golang-migrate derives, so that our server and upstream's exclude each other.
    pub fn for_database(backend: Backend, database: &str, schema: &str) -> Self {
        match backend {
            Backend::Sqlite => LockKey::SqliteWriteLock,
            Backend::MySql => LockKey::MySql(advisory_lock_id(&format!("{database}:{VERSION_TABLE}"), &[]).to_string()),
            Backend::Postgres => LockKey::Postgres(i64::from(advisory_lock_id(database, &[schema, VERSION_TABLE]))),
        }
    }

    /// The lock as a session behind `pooler` can hold it.
    pub fn behind(self, pooler: Pooler) -> Self {
        match (self, pooler) {
            (LockKey::Postgres(key), Pooler::Transaction) => LockKey::PostgresInTransaction(key),
            (key, _) => key,
        }
    }

    /// Whether the session runs in one transaction that holds the lock: its units are then
    /// savepoints ([`LockKey::unit_begin`]).
    pub fn in_transaction(&self) -> bool {
        matches!(self, LockKey::SqliteWriteLock | LockKey::PostgresInTransaction(_))
    }

    /// The statement opening the session's transaction before the lock is asked for, if any.
    pub fn session_begin(&self) -> Option<&'static str> {
        matches!(self, LockKey::PostgresInTransaction(_)).then_some("BEGIN")
    }

    /// Starts an atomic unit of a migration session: a savepoint inside a session transaction
    /// that holds the lock, else [`Dialect::unit_begin`].
    pub fn unit_begin(&self, dialect: Dialect) -> &'static str {
        if self.in_transaction() {
            "SAVEPOINT unit"
        } else {
            dialect.unit_begin()
        }
    }

    /// Ends the unit [`LockKey::unit_begin`] started, keeping or undoing its work.
    pub fn unit_end(&self, dialect: Dialect, commit: bool) -> &'static str {
        match (self.in_transaction(), commit) {
            (true, true) => "RELEASE unit",
            (true, false) => "ROLLBACK TO unit; RELEASE unit",
            (false, _) => dialect.unit_end(commit),
        }
    }

    /// `pg_advisory_lock` waits without limit; its non-blocking variant is polled instead, so a
    /// waiting replica can say why it is waiting.
    pub fn take(&self) -> LockTake {
        match self {
            LockKey::SqliteWriteLock => LockTake::Hold(Dialect::any_layout(Backend::Sqlite).write_begin()),
            LockKey::MySql(name) => LockTake::Try {
                sql: "SELECT GET_LOCK(?, ?)",
                args: vec![Arg::from(name.as_str()), Arg::from(MYSQL_LOCK_WAIT_SECS)],
                answer: ArgKind::Int,
                pause: Duration::ZERO,
            },
            LockKey::Postgres(key) => LockTake::Try {
                sql: "SELECT pg_try_advisory_lock($1)",
                args: vec![Arg::from(*key)],
                answer: ArgKind::Bool,
                pause: POSTGRES_LOCK_POLL,
            },
            LockKey::PostgresInTransaction(key) => LockTake::Try {
                sql: "SELECT pg_try_advisory_xact_lock($1)",
                args: vec![Arg::from(*key)],
                answer: ArgKind::Bool,
                pause: POSTGRES_LOCK_POLL,
            },
        }
    }

    /// The statement that gives the lock back; on SQLite it commits the session's transaction.
    pub fn release(&self) -> (&'static str, Vec<Arg>) {
        match self {
            LockKey::SqliteWriteLock | LockKey::PostgresInTransaction(_) => ("COMMIT", Vec::new()),
            LockKey::MySql(name) => ("SELECT RELEASE_LOCK(?)", vec![Arg::from(name.as_str())]),
            LockKey::Postgres(key) => ("SELECT pg_advisory_unlock($1)", vec![Arg::from(*key)]),
        }
    }
}

impl Dialect {
    /// The version table as SQL names it, in the session's schema on PostgreSQL.
    pub fn version_table(self, postgres_schema: &str) -> String {
        match self.backend() {
            Backend::Postgres => format!("{}.\"{VERSION_TABLE}\"", self.quote(postgres_schema)),
            Backend::MySql => format!("`{VERSION_TABLE}`"),
            Backend::Sqlite => VERSION_TABLE.to_owned(),
        }
    }

    /// A query returning a row when the version table exists, as golang-migrate's driver looks
    /// for it; `None` where the DDL says `IF NOT EXISTS` itself (SQLite).
    pub fn version_table_probe(self, postgres_schema: &str) -> Option<(&'static str, Vec<Arg>)> {
        match self.backend() {
            Backend::Sqlite => None,
            Backend::MySql => Some(("SHOW TABLES LIKE 'schema_migrations'", Vec::new())),
            Backend::Postgres => Some((
                "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
                vec![Arg::from(postgres_schema), Arg::from(VERSION_TABLE)],
            )),
        }
    }

    /// golang-migrate's DDL for the version table (a script).
    pub fn create_version_table(self, postgres_schema: &str) -> String {
        let table = self.version_table(postgres_schema);
        match self.backend() {
            Backend::Sqlite => "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool); \
                 CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);"
                .to_owned(),
            Backend::MySql => format!("CREATE TABLE {table} (version bigint not null primary key, dirty boolean not null)"),
            Backend::Postgres => {
                format!("CREATE TABLE IF NOT EXISTS {table} (version bigint not null primary key, dirty boolean not null)")
            }
        }
    }

    /// Empties the version table as golang-migrate's `SetVersion` does.
    pub fn clear_version_table(self, postgres_schema: &str) -> String {
        let table = self.version_table(postgres_schema);
        match self.backend() {
            Backend::Postgres => format!("TRUNCATE {table}"),
            Backend::MySql => format!("DELETE FROM {table} LIMIT 1"),
            Backend::Sqlite => format!("DELETE FROM {table}"),
        }
    }

    /// Starts an atomic unit of a migration session: a savepoint inside SQLite's session
    /// transaction (which holds the lock), a transaction elsewhere.
    pub fn unit_begin(self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "SAVEPOINT unit",
            Backend::MySql | Backend::Postgres => "BEGIN",
        }
    }

    /// Ends the unit [`Dialect::unit_begin`] started, keeping or undoing its work.
    pub fn unit_end(self, commit: bool) -> &'static str {
        match (self.backend(), commit) {
            (Backend::Sqlite, true) => "RELEASE unit",
            (Backend::Sqlite, false) => "ROLLBACK TO unit; RELEASE unit",
            (Backend::MySql | Backend::Postgres, true) => "COMMIT",
            (Backend::MySql | Backend::Postgres, false) => "ROLLBACK",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_match_golang_migrate() {
        assert_eq!(advisory_lock_id("database_name", &[]), 1_764_327_054);
        assert_eq!(advisory_lock_id("database_name", &["schema_name_1"]), 2_453_313_553);
        assert_eq!(advisory_lock_id("metadb:schema_migrations", &[]), 1_904_540_563);
        assert_eq!(advisory_lock_id("metadb", &["public", "schema_migrations"]), 883_489_686);
        assert_eq!(advisory_lock_id("model_registry:schema_migrations", &[]), 235_196_352);
        assert_eq!(advisory_lock_id("model_registry", &["public", "schema_migrations"]), 2_411_810_439);
    }

    #[test]
    fn locks_are_taken_and_released_as_golang_migrate_does() {
        let mysql = LockKey::for_database(Backend::MySql, "metadb", "");
        assert!(matches!(
            mysql.take(),
            LockTake::Try { sql: "SELECT GET_LOCK(?, ?)", ref args, answer: ArgKind::Int, .. }
                if args == &[Arg::from("1904540563"), Arg::from(MYSQL_LOCK_WAIT_SECS)]
        ));
        assert_eq!(mysql.release(), ("SELECT RELEASE_LOCK(?)", vec![Arg::from("1904540563")]));
        let postgres = LockKey::for_database(Backend::Postgres, "metadb", "public");
        assert_eq!(postgres.release(), ("SELECT pg_advisory_unlock($1)", vec![Arg::from(883_489_686)]));
        assert_eq!(LockKey::SqliteWriteLock.take(), LockTake::Hold("BEGIN IMMEDIATE"));
    }

    #[test]
    fn behind_a_transaction_pooler_one_transaction_holds_the_lock() {
        let key = LockKey::for_database(Backend::Postgres, "metadb", "public").behind(Pooler::Transaction);
        assert!(matches!(
            key.take(),
            LockTake::Try { sql: "SELECT pg_try_advisory_xact_lock($1)", ref args, .. } if args == &[Arg::from(883_489_686)]
        ));
        assert_eq!(key.session_begin(), Some("BEGIN"));
        assert_eq!(key.release().0, "COMMIT");
        assert_eq!(key.unit_begin(Dialect::Postgres), "SAVEPOINT unit");
        let direct = LockKey::for_database(Backend::Postgres, "metadb", "public").behind(Pooler::None);
        assert_eq!((direct.session_begin(), direct.unit_begin(Dialect::Postgres)), (None, "BEGIN"));
    }

    #[test]
    fn version_tables_are_quoted_per_backend() {
        assert_eq!(Dialect::Postgres.version_table("my\"schema"), "\"my\"\"schema\".\"schema_migrations\"");
        assert_eq!(Dialect::MySql.version_table(""), "`schema_migrations`");
        assert_eq!(Dialect::Sqlite.clear_version_table(""), "DELETE FROM schema_migrations");
    }
}
