//! A migration session: one dedicated connection holding golang-migrate's lock, with the
//! `schema_migrations` bookkeeping exactly as golang-migrate v4 writes it per driver (the SQL of
//! each is [`crate::dialect`]'s).

use super::MigrateError;
use crate::arg::Arg;
use crate::conn::{Conn, Unpooled};
use crate::dialect::{Dialect, LockKey, LockTake, RowLock, Table, GALERA_LOCK_LEASE_SECS, GALERA_PROBE};
use crate::dsn::ConnectTarget;
use crate::error::is_rolled_back_conflict;

/// The version table's single row; `version` is `None` for golang-migrate's "nil version".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion {
    pub version: Option<u64>,
    pub dirty: bool,
}

impl SchemaVersion {
    pub const NIL: SchemaVersion = SchemaVersion { version: None, dirty: false };
}

pub struct Session {
    conn: Unpooled,
    dialect: Dialect,
    lock: LockKey,
    /// On a Galera node: this session's name in the cluster-wide lock row ([`RowLock`]).
    galera_holder: Option<String>,
    postgres_schema: String,
}

/// Between two tries of a Galera cluster's lock row.
const GALERA_LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(200);

impl Session {
    /// Opens a dedicated connection and waits for the migration lock.
    pub async fn begin(
        target: &ConnectTarget,
        dialect: Dialect,
        lock: LockKey,
        postgres_schema: &str,
    ) -> Result<Self, MigrateError> {
        let mut conn = Unpooled::open(target).await.map_err(MigrateError::Connect)?;
        let galera_holder = match take_locks(&mut conn.conn(), &lock).await {
            Ok(holder) => holder,
            Err(e) => {
                conn.close().await;
                return Err(e.into());
            }
        };
        Ok(Session { conn, dialect, lock, galera_holder, postgres_schema: postgres_schema.to_owned() })
    }

    /// Releases the lock (committing SQLite's transaction) and closes the connection.
    pub async fn end(mut self) -> Result<(), MigrateError> {
        let mut released = Ok(0);
        if let Some(holder) = self.galera_holder.take() {
            released = self.conn().execute(RowLock::RELEASE, &[Arg::from(holder)]).await;
        }
        let (release, args) = self.lock.release();
        let released = released.and(self.conn().execute(release, &args).await);
        self.conn.close().await;
        released.map(drop).map_err(MigrateError::from)
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

    pub fn conn(&mut self) -> Conn<'_> {
        self.conn.conn()
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Creates the version table with golang-migrate's DDL if it is missing.
    pub async fn ensure_version_table(&mut self) -> Result<(), MigrateError> {
        if let Some((probe, args)) = self.dialect.version_table_probe(&self.postgres_schema) {
            if self.conn().exists(probe, &args).await? {
                return Ok(());
            }
        }
        let ddl = self.dialect.create_version_table(&self.postgres_schema);
        self.conn().execute_script(&ddl).await?;
        Ok(())
    }

    pub async fn read_version(&mut self) -> Result<SchemaVersion, MigrateError> {
        // `dirty` is a boolean on PostgreSQL and an integer elsewhere; CASE reads both.
        let sql = format!(
            "SELECT {}, {} FROM {} LIMIT 1",
            self.dialect.as_i64("version"),
            self.dialect.as_i64("CASE WHEN dirty THEN 1 ELSE 0 END"),
            self.dialect.version_table(&self.postgres_schema)
        );
        let row: Option<(i64, i64)> = self.conn().fetch_optional(&sql, &[]).await?;
        Ok(match row {
            None => SchemaVersion::NIL,
            Some((version, dirty)) => SchemaVersion { version: u64::try_from(version).ok(), dirty: dirty != 0 },
        })
    }

    /// golang-migrate's `SetVersion`: replace the row in one transaction; the nil version
    /// leaves the table empty unless dirty.
    pub async fn set_version(&mut self, version: SchemaVersion) -> Result<(), MigrateError> {
        let clear = self.dialect.clear_version_table(&self.postgres_schema);
        let insert = format!(
            "INSERT INTO {} (version, dirty) VALUES ({})",
            self.dialect.version_table(&self.postgres_schema),
            self.dialect.placeholders(1, 2)
        );
        let row = (version.version.is_some() || version.dirty)
            .then(|| [Arg::from(version.version.map_or(-1, |v| v as i64)), Arg::from(version.dirty)]);
        let unit = self.begin_unit().await?;
        let written = self.replace_version_row(&clear, &insert, row).await;
        self.end_unit(unit, written.is_ok()).await?;
        written.map_err(MigrateError::from)
    }

    async fn replace_version_row(&mut self, clear: &str, insert: &str, row: Option<[Arg; 2]>) -> Result<(), sqlx::Error> {
        self.conn().execute_script(clear).await?;
        if let Some(row) = row {
            self.conn().execute(insert, &row).await?;
        }
        Ok(())
    }

    /// Runs a migration body. On SQLite (and PostgreSQL behind a transaction pooler) it runs
    /// inside a savepoint, so a failure undoes all of it; PostgreSQL runs a multi-statement body as one implicit transaction; MySQL DDL commits
    /// as it goes, as under golang-migrate.
    pub async fn run_body(&mut self, body: &str) -> Result<(), sqlx::Error> {
        let unit = self.begin_unit().await?;
        let ran = self.conn().execute_script(body).await;
        self.end_unit(unit, ran.is_ok()).await?;
        ran
    }

    /// Starts an atomic unit of work ([`Dialect::unit_begin`]).
    pub async fn begin_unit(&mut self) -> Result<Unit, sqlx::Error> {
        let begin = self.lock.unit_begin(self.dialect);
        self.conn().execute_script(begin).await?;
        Ok(Unit(()))
    }

    pub async fn end_unit(&mut self, _unit: Unit, commit: bool) -> Result<(), sqlx::Error> {
        let end = self.lock.unit_end(self.dialect, commit);
        self.conn().execute_script(end).await
    }

    /// The MLMD schema version recorded in `MLMDEnv`, if that table exists: every row.
    pub async fn mlmd_schema_versions(&mut self) -> Result<Option<Vec<i64>>, MigrateError> {
        let probe = self.dialect.table_exists_query();
        let name = self.dialect.catalog_name(Table::MlmdEnv);
        if !self.conn().exists(probe, &[Arg::from(name)]).await? {
            return Ok(None);
        }
        let sql = format!("SELECT {} FROM {}", self.dialect.as_i64("schema_version"), self.dialect.table(Table::MlmdEnv));
        let versions: Vec<(i64,)> = self.conn().fetch_all(&sql, &[]).await?;
        Ok(Some(versions.into_iter().map(|(v,)| v).collect()))
    }
}

/// Proof that a unit was begun; hand it back to [`Session::end_unit`].
#[must_use]
pub struct Unit(());

/// Takes the lock, and on a Galera node the cluster's lock row too (returning its holder name).
async fn take_locks(conn: &mut Conn<'_>, lock: &LockKey) -> Result<Option<String>, sqlx::Error> {
    take_lock(conn, lock).await?;
    if !matches!(lock, LockKey::MySql(_)) {
        return Ok(None);
    }
    let wsrep = conn.fetch_script_text(GALERA_PROBE).await?;
    if !wsrep.first().and_then(|row| row.get(1)).and_then(|v| v.as_deref()).is_some_and(|v| v.eq_ignore_ascii_case("ON")) {
        return Ok(None);
    }
    let holder = uuid::Uuid::new_v4().simple().to_string();
    take_row_lock(conn, &holder).await?;
    Ok(Some(holder))
}

/// Waits for a Galera cluster's lock row ([`RowLock`]).
async fn take_row_lock(conn: &mut Conn<'_>, holder: &str) -> Result<(), sqlx::Error> {
    conn.execute_script(RowLock::CREATE).await?;
    let taken_elsewhere =
        |e: &sqlx::Error| e.as_database_error().is_some_and(|d| d.is_unique_violation()) || is_rolled_back_conflict(e);
    let mut announced = false;
    loop {
        let tried = match conn.execute(RowLock::CLEAR_EXPIRED, &[]).await {
            Ok(_) => conn.execute(RowLock::TAKE, &[Arg::from(holder), Arg::from(GALERA_LOCK_LEASE_SECS)]).await,
            Err(e) => Err(e),
        };
        match tried {
            Ok(_) => return conn.execute_script(RowLock::CAUSAL_READS).await,
            Err(e) if taken_elsewhere(&e) => {}
            Err(e) => return Err(e),
        }
        if !announced {
            tracing::info!("another node of the Galera cluster is migrating this database; waiting for its lock row");
            announced = true;
        }
        tokio::time::sleep(GALERA_LOCK_POLL).await;
    }
}

/// Waits for the lock as [`LockKey::take`] says, saying once why it waits.
async fn take_lock(conn: &mut Conn<'_>, lock: &LockKey) -> Result<(), sqlx::Error> {
    let (sql, args, answer, pause) = match lock.take() {
        LockTake::Hold(script) => return conn.execute_script(script).await,
        LockTake::Try { sql, args, answer, pause } => (sql, args, answer, pause),
    };
    if let Some(begin) = lock.session_begin() {
        conn.execute_script(begin).await?;
    }
    let mut announced = false;
    loop {
        let got = conn.fetch_optional_cells(sql, &args, &[answer]).await?;
        if matches!(got.as_deref(), Some([Arg::Int(Some(1)) | Arg::Bool(Some(true))])) {
            return Ok(());
        }
        if !announced {
            tracing::info!(lock = ?lock, "another process is migrating this database; waiting for its lock");
            announced = true;
        }
        tokio::time::sleep(pause).await;
    }
}
