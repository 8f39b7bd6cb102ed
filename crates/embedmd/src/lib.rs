//! EmbedMD: the registry's own ML Metadata (MLMD v10) datastore on SQLite, MySQL/MariaDB or
//! PostgreSQL — connectors, golang-migrate compatible migrations, type sync, adoption of
//! databases MLMD or the upstream server created.

use std::sync::Arc;

mod arg;
pub mod conn;
mod db;
pub mod dialect;
pub mod dsn;
mod error;
pub mod group;
pub mod migrate;
pub mod store;
pub mod transfer;
pub mod types;

pub use arg::{Arg, ArgKind};
pub use conn::{Conn, Reader, Tx, Unpooled};
pub use db::{Pool, PoolConfig, PoolStats};
pub use dialect::{Dialect, Table};
pub use dsn::{Backend, ConnectTarget, TlsConfig};
pub use error::{Error, Result};
pub use group::{GroupCommit, WriteFuture};
pub use migrate::{LockKey, MigrateError, Migrator, Report, SchemaVersion};
pub use types::{TypeIds, TypeSpec};

/// Runs of one write whose transaction the database rolled back for a conflict with another, or
/// that met an id the database had handed out twice.
pub const WRITE_ATTEMPTS: u32 = 4;

/// Pause before a write runs again, times the runs so far.
const WRITE_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// An open, migrated datastore.
#[derive(Debug, Clone)]
pub struct Datastore {
    pool: Pool,
    dialect: Dialect,
    types: Arc<TypeIds>,
    /// SQLite admits one writer at a time: this process's writes go through one committer,
    /// which also lets them share commits (and fsyncs).
    sqlite_writes: Option<GroupCommit>,
}

/// A connected database whose layout is known, before anything is changed in it.
#[derive(Debug, Clone)]
pub struct Connection {
    pub pool: Pool,
    pub dialect: Dialect,
    pub migrator: Migrator,
}

impl Connection {
    /// Connects and looks at what the database holds; writes nothing.
    pub async fn open(target: &ConnectTarget, pool: &PoolConfig) -> Result<Self> {
        let pool = Pool::connect(target, pool).await?;
        match inspect(&pool).await {
            Ok((dialect, database, schema)) => {
                let migrator = Migrator::new(target.clone(), dialect, &database, &schema);
                Ok(Connection { pool, dialect, migrator })
            }
            Err(e) => {
                pool.close().await;
                Err(e)
            }
        }
    }
}

async fn inspect(pool: &Pool) -> Result<(Dialect, String, String)> {
    let dialect = pool.detect_dialect().await?;
    let (database, schema) = pool.database_and_schema().await?;
    Ok((dialect, database, schema))
}

/// Migrates up and syncs the types on one locked session.
async fn prepare(migrator: &Migrator, types: &[TypeSpec]) -> Result<(Report, TypeIds), MigrateError> {
    let mut session = migrator.session().await?;
    match migrate_and_sync(migrator, &mut session, types).await {
        Ok(done) => session.end().await.map(|()| done),
        Err(e) => Err(session.abort(e).await),
    }
}

async fn migrate_and_sync(
    migrator: &Migrator,
    session: &mut migrate::Session,
    types: &[TypeSpec],
) -> Result<(Report, TypeIds), MigrateError> {
    let report = migrator.run(session, migrate::Plan::Up(None)).await?;
    let ids = types::sync(session, types).await?;
    Ok((report, ids))
}

impl Datastore {
    /// What the server does at start: connect, migrate up and sync the types, all under
    /// golang-migrate's lock, so replicas starting together do each step exactly once.
    /// `types` are the caller's MLMD types; MLMD's simple types are always created too.
    pub async fn open(target: &ConnectTarget, pool: &PoolConfig, types: &[TypeSpec]) -> Result<(Self, Report)> {
        let Connection { pool, dialect, migrator } = Connection::open(target, pool).await?;
        match prepare(&migrator, types).await {
            Ok((report, types)) => {
                let sqlite_writes = dialect.one_writer_at_a_time().then(|| GroupCommit::start(pool.clone()));
                Ok((Datastore { pool, dialect, types: Arc::new(types), sqlite_writes }, report))
            }
            Err(e) => {
                pool.close().await;
                Err(e.into())
            }
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn types(&self) -> &TypeIds {
        &self.types
    }

    pub fn store(&self) -> store::Store {
        store::Store::new(self.dialect)
    }

    /// Runs `work` in a write transaction: its own on MySQL and PostgreSQL (committed when
    /// `work` succeeds, rolled back when it fails or is dropped), a savepoint of a shared one on
    /// SQLite ([`group`]). Either way the answer comes once the write is durable. A transaction
    /// the database rolled back whole because of another one (a deadlock, a serialization
    /// failure, a Galera certification conflict at commit), or that met an id the database had
    /// handed out twice, runs again from the start, with a fresh `work`, up to
    /// [`WRITE_ATTEMPTS`] times ([`Error::is_retryable`]).
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c, 'd> FnOnce(&'c mut store::Conn<'d>) -> WriteFuture<'c, Result<T, E>> + Clone + Send + 'static,
        T: Send + 'static,
        E: From<Error> + std::error::Error + Send + 'static,
    {
        if let Some(group) = &self.sqlite_writes {
            return group.write(work).await;
        }
        let mut attempt = 1;
        loop {
            let outcome = self.write_once(work.clone()).await;
            match outcome {
                Err(e) if attempt < WRITE_ATTEMPTS && error::carries_retryable(&e) => {
                    tracing::debug!(error = %e, attempt, "a write lost to a concurrent one; running it again");
                    tokio::time::sleep(WRITE_RETRY_PAUSE * attempt).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn write_once<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'c, 'd> FnOnce(&'c mut store::Conn<'d>) -> WriteFuture<'c, Result<T, E>>,
        E: From<Error>,
    {
        let mut tx = self.pool.begin().await?;
        let done = work(&mut tx.conn()).await?;
        tx.commit().await.map_err(Error::from)?;
        group::count_commit(1);
        Ok(done)
    }

    pub async fn reader(&self) -> Result<Reader> {
        self.pool.reader().await
    }

    /// The row upstream's readiness check reads (`None` when the table is empty).
    pub async fn schema_version(&self) -> Result<Option<SchemaVersion>> {
        self.pool.schema_version().await
    }

    pub async fn close(&self) {
        self.pool.close().await
    }
}
