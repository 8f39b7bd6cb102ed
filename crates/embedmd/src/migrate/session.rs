//! A migration session: one dedicated connection holding golang-migrate's lock, with the
//! `schema_migrations` bookkeeping exactly as golang-migrate v4 writes it per driver.

use std::time::Duration;

use sqlx::Executor;

use super::MigrateError;
use crate::db::{on_conn, Conn};
use crate::dialect::{Dialect, Table};
use crate::dsn::{Backend, ConnectTarget};

/// golang-migrate's `DefaultMigrationsTable`.
pub const VERSION_TABLE: &str = "schema_migrations";

/// golang-migrate's salt for advisory lock ids (`database/util.go`).
const ADVISORY_LOCK_SALT: u32 = 1_486_364_155;

/// How long MySQL's `GET_LOCK` waits per attempt, as golang-migrate's driver does.
const MYSQL_LOCK_WAIT_SECS: i64 = 10;

/// `GenerateAdvisoryLockId`: CRC-32 of the additional names followed by the database name,
/// joined with NUL bytes, times the salt, modulo 2^32.
pub fn advisory_lock_id(database: &str, additional: &[&str]) -> u32 {
    let mut parts: Vec<&str> = additional.to_vec();
    parts.push(database);
    let joined = if additional.is_empty() { database.to_owned() } else { parts.join("\0") };
    crc32fast::hash(joined.as_bytes()).wrapping_mul(ADVISORY_LOCK_SALT)
}

/// The version table's single row; `version` is `None` for golang-migrate's "nil version".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    pub version: Option<u64>,
    pub dirty: bool,
}

impl SchemaVersion {
    pub const NIL: SchemaVersion = SchemaVersion { version: None, dirty: false };
}

/// What locks out other migrators of the same database.
#[derive(Debug, Clone)]
pub enum LockKey {
    /// SQLite: the database's own write lock (`BEGIN IMMEDIATE`) held for the whole session.
    SqliteWriteLock,
    MySql(String),
    Postgres(i64),
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
}

pub struct Session {
    conn: Conn,
    dialect: Dialect,
    lock: LockKey,
    postgres_schema: String,
}

impl Session {
    /// Opens a dedicated connection and waits for the migration lock.
    pub async fn begin(
        target: &ConnectTarget,
        dialect: Dialect,
        lock: LockKey,
        postgres_schema: &str,
    ) -> Result<Self, MigrateError> {
        let mut conn = Conn::open(target).await.map_err(MigrateError::Connect)?;
        match (&mut conn, &lock) {
            (Conn::Sqlite(c), LockKey::SqliteWriteLock) => {
                c.execute(sqlx::raw_sql("BEGIN IMMEDIATE")).await?;
            }
            (Conn::MySql(c), LockKey::MySql(name)) => loop {
                let got: Option<i64> =
                    sqlx::query_scalar("SELECT GET_LOCK(?, ?)").bind(name).bind(MYSQL_LOCK_WAIT_SECS).fetch_one(&mut *c).await?;
                if got == Some(1) {
                    break;
                }
                tracing::info!(lock = %name, "another process is migrating this database; waiting for its lock");
            },
            (Conn::Postgres(c), LockKey::Postgres(key)) => {
                wait_for_pg_lock(c, *key).await?;
            }
            _ => unreachable!("lock key matches the connection's backend"),
        }
        Ok(Session { conn, dialect, lock, postgres_schema: postgres_schema.to_owned() })
    }

    /// Releases the lock (committing SQLite's transaction) and closes the connection.
    pub async fn end(mut self) -> Result<(), MigrateError> {
        let released = match (&mut self.conn, &self.lock) {
            (Conn::Sqlite(c), _) => c.execute(sqlx::raw_sql("COMMIT")).await.map(drop),
            (Conn::MySql(c), LockKey::MySql(name)) => sqlx::query("SELECT RELEASE_LOCK(?)").bind(name).execute(c).await.map(drop),
            (Conn::Postgres(c), LockKey::Postgres(key)) => {
                sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(c).await.map(drop)
            }
            _ => Ok(()),
        };
        self.conn.close().await;
        released.map_err(MigrateError::from)
    }

    /// Ends the session after a failure: on SQLite what the failed step did is already undone,
    /// and the dirty row written before it is committed, as golang-migrate leaves it.
    pub async fn abort(self, error: MigrateError) -> MigrateError {
        match self.end().await {
            Ok(()) => error,
            Err(e) => {
                tracing::warn!(error = %e, "could not release the migration lock cleanly");
                error
            }
        }
    }

    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn qualified_version_table(&self) -> String {
        match self.dialect.backend() {
            Backend::Postgres => format!("\"{}\".\"{VERSION_TABLE}\"", self.postgres_schema.replace('"', "\"\"")),
            Backend::MySql => format!("`{VERSION_TABLE}`"),
            Backend::Sqlite => VERSION_TABLE.to_owned(),
        }
    }

    /// Creates the version table with golang-migrate's DDL if it is missing.
    pub async fn ensure_version_table(&mut self) -> Result<(), MigrateError> {
        let table = self.qualified_version_table();
        let ddl = match &mut self.conn {
            Conn::Sqlite(_) => "CREATE TABLE IF NOT EXISTS schema_migrations (version uint64,dirty bool); \
                 CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON schema_migrations (version);"
                .to_owned(),
            Conn::MySql(c) => {
                if sqlx::query("SHOW TABLES LIKE 'schema_migrations'").fetch_optional(&mut *c).await?.is_some() {
                    return Ok(());
                }
                format!("CREATE TABLE {table} (version bigint not null primary key, dirty boolean not null)")
            }
            Conn::Postgres(c) => {
                let exists = sqlx::query("SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2")
                    .bind(&self.postgres_schema)
                    .bind(VERSION_TABLE)
                    .fetch_optional(&mut *c)
                    .await?;
                if exists.is_some() {
                    return Ok(());
                }
                format!("CREATE TABLE IF NOT EXISTS {table} (version bigint not null primary key, dirty boolean not null)")
            }
        };
        self.conn.execute_script(&ddl).await?;
        Ok(())
    }

    pub async fn read_version(&mut self) -> Result<SchemaVersion, MigrateError> {
        // `dirty` is a boolean on PostgreSQL and an integer elsewhere; CASE reads both.
        let sql = format!(
            "SELECT {}, {} FROM {} LIMIT 1",
            self.dialect.as_i64("version"),
            self.dialect.as_i64("CASE WHEN dirty THEN 1 ELSE 0 END"),
            self.qualified_version_table()
        );
        let row: Option<(i64, i64)> = on_conn!(&mut self.conn, c => sqlx::query_as(&sql).fetch_optional(c).await?);
        Ok(match row {
            None => SchemaVersion::NIL,
            Some((version, dirty)) => SchemaVersion { version: u64::try_from(version).ok(), dirty: dirty != 0 },
        })
    }

    /// golang-migrate's `SetVersion`: replace the row in one transaction; the nil version
    /// leaves the table empty unless dirty.
    pub async fn set_version(&mut self, version: SchemaVersion) -> Result<(), MigrateError> {
        let table = self.qualified_version_table();
        let clear = match self.dialect.backend() {
            Backend::Postgres => format!("TRUNCATE {table}"),
            Backend::MySql => format!("DELETE FROM {table} LIMIT 1"),
            Backend::Sqlite => format!("DELETE FROM {table}"),
        };
        let insert = format!("INSERT INTO {table} (version, dirty) VALUES ({})", self.dialect.placeholders(1, 2));
        let value = version.version.map_or(-1, |v| v as i64);
        let unit = self.begin_unit().await?;
        let written = self.replace_version_row(&clear, &insert, value, version).await;
        self.end_unit(unit, written.is_ok()).await?;
        written.map_err(MigrateError::from)
    }

    async fn replace_version_row(
        &mut self,
        clear: &str,
        insert: &str,
        value: i64,
        version: SchemaVersion,
    ) -> Result<(), sqlx::Error> {
        on_conn!(&mut self.conn, c => c.execute(sqlx::raw_sql(clear)).await.map(drop)?);
        if version.version.is_some() || version.dirty {
            on_conn!(&mut self.conn, c => sqlx::query(insert).bind(value).bind(version.dirty).execute(c).await.map(drop)?);
        }
        Ok(())
    }

    /// Runs a migration body. On SQLite it runs inside a savepoint, so a failure undoes all of
    /// it; PostgreSQL runs a multi-statement body as one implicit transaction; MySQL DDL commits
    /// as it goes, as under golang-migrate.
    pub async fn run_body(&mut self, body: &str) -> Result<(), sqlx::Error> {
        let unit = self.begin_unit().await?;
        let ran = on_conn!(&mut self.conn, c => c.execute(sqlx::raw_sql(body)).await.map(drop));
        self.end_unit(unit, ran.is_ok()).await?;
        ran
    }

    /// Starts an atomic unit of work: a savepoint inside SQLite's session transaction, a
    /// transaction elsewhere.
    pub async fn begin_unit(&mut self) -> Result<Unit, sqlx::Error> {
        let sql = match self.dialect.backend() {
            Backend::Sqlite => "SAVEPOINT unit",
            Backend::MySql | Backend::Postgres => "BEGIN",
        };
        self.conn.execute_script(sql).await?;
        Ok(Unit(()))
    }

    pub async fn end_unit(&mut self, _unit: Unit, commit: bool) -> Result<(), sqlx::Error> {
        let sql = match (self.dialect.backend(), commit) {
            (Backend::Sqlite, true) => "RELEASE unit",
            (Backend::Sqlite, false) => "ROLLBACK TO unit; RELEASE unit",
            (_, true) => "COMMIT",
            (_, false) => "ROLLBACK",
        };
        self.conn.execute_script(sql).await
    }

    /// The MLMD schema version recorded in `MLMDEnv`, if that table exists: every row.
    pub async fn mlmd_schema_versions(&mut self) -> Result<Option<Vec<i64>>, MigrateError> {
        let env = self.dialect.table(Table::MlmdEnv);
        let probe = self.dialect.table_exists_query();
        let name = self.dialect.catalog_name(Table::MlmdEnv);
        let exists = on_conn!(&mut self.conn, c => sqlx::query(probe).bind(&name).fetch_optional(c).await?.is_some());
        if !exists {
            return Ok(None);
        }
        let sql = format!("SELECT {} FROM {env}", self.dialect.as_i64("schema_version"));
        let versions: Vec<i64> = on_conn!(&mut self.conn, c => sqlx::query_scalar(&sql).fetch_all(c).await?);
        Ok(Some(versions))
    }
}

/// Proof that a unit was begun; hand it back to [`Session::end_unit`].
#[must_use]
pub struct Unit(());

/// `pg_advisory_lock` waits without limit; poll with the non-blocking variant instead so a
/// waiting replica can say why it is waiting.
async fn wait_for_pg_lock(c: &mut sqlx::PgConnection, key: i64) -> Result<(), sqlx::Error> {
    let mut announced = false;
    loop {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut *c).await?;
        if got {
            return Ok(());
        }
        if !announced {
            tracing::info!(lock = key, "another process is migrating this database; waiting for its lock");
            announced = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
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
}
