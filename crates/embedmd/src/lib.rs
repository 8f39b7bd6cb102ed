//! EmbedMD: the registry's own ML Metadata (MLMD v10) datastore on SQLite, MySQL/MariaDB or
//! PostgreSQL — connectors, golang-migrate compatible migrations, type sync, adoption of
//! databases MLMD or the upstream server created.

use std::sync::Arc;

mod db;
pub mod dialect;
pub mod dsn;
mod error;
pub mod migrate;
pub mod store;
pub mod transfer;
pub mod types;

pub use db::{Pool, PoolConfig, PoolStats, Reader, Tx};
pub use dialect::{Dialect, Table};
pub use dsn::{Backend, ConnectTarget, TlsConfig};
pub use error::{Error, Result};
pub use migrate::{LockKey, MigrateError, Migrator, Report, SchemaVersion};
pub use types::{TypeIds, TypeSpec};

/// An open, migrated datastore.
#[derive(Debug, Clone)]
pub struct Datastore {
    pool: Pool,
    dialect: Dialect,
    types: TypeIds,
    /// SQLite admits one writer at a time; writers queue here, in order, instead of polling
    /// SQLite's busy handler, whose growing sleeps made the slowest writes wait seconds.
    sqlite_writers: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction holding this process's SQLite write turn, if any.
pub struct WriteTx {
    tx: Tx,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub fn conn(&mut self) -> store::Conn<'_> {
        self.tx.conn()
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await
    }
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
            Ok((report, types)) => Ok((Datastore { pool, dialect, types, sqlite_writers: Arc::default() }, report)),
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

    pub async fn begin(&self) -> Result<WriteTx> {
        let turn = match self.dialect {
            Dialect::Sqlite => Some(self.sqlite_writers.clone().lock_owned().await),
            _ => None,
        };
        Ok(WriteTx { tx: self.pool.begin().await?, _turn: turn })
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
