//! A migrator that reads and writes golang-migrate's `schema_migrations` exactly as
//! golang-migrate v4 does, so the upstream Go server and this one can share a database.
//!
//! Protocol per step: write `(version, dirty=true)`, run the body, write `(version,
//! dirty=false)`. A failed body leaves the database dirty at that version and every later run
//! refuses to proceed until an operator runs `model-registry migrate force V`.

mod session;
mod source;

pub use session::{SchemaVersion, Session};

pub use crate::dialect::{advisory_lock_id, LockKey, VERSION_TABLE};
pub use source::{Migration, MigrationSet};

use crate::dialect::Dialect;
use crate::dsn::ConnectTarget;

/// The only MLMD schema version this server reads and writes.
pub const MLMD_SCHEMA_VERSION: i64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "database schema is dirty at version {version}: a migration failed part-way. Repair the \
         schema by hand, then run `model-registry migrate force <version>` with the version the \
         schema is really at"
    )]
    Dirty { version: i64 },
    #[error(
        "no migration found for version {version}: the database was migrated by a newer release \
         (this one knows versions up to {latest}); run a release that knows version {version}"
    )]
    UnknownVersion { version: u64, latest: u64 },
    #[error(
        "migration {version} ({name}) failed: {source}. The database is now dirty at version \
         {version}; repair it, then run `model-registry migrate force {version}` if the step's \
         changes are in place or `model-registry migrate force {previous}` if they are not"
    )]
    StepFailed { version: u64, name: String, previous: i64, source: sqlx::Error },
    #[error(
        "the MLMD schema version in MLMDEnv is {found}, but this server needs {MLMD_SCHEMA_VERSION}: \
         {advice}"
    )]
    MlmdVersion { found: i64, advice: &'static str },
    #[error(
        "MLMDEnv holds {0} rows; MLMD and this server need exactly one (schema_version = \
         {MLMD_SCHEMA_VERSION}). Delete the extra rows and start again"
    )]
    MlmdEnvRows(usize),
    #[error("version {0} is not one of this release's migrations")]
    NoSuchVersion(i64),
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database error while migrating: {0}")]
    Db(#[from] sqlx::Error),
}

/// What a command changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub from: Option<u64>,
    pub to: Option<u64>,
    /// Versions whose up (or down) body ran, in order.
    pub applied: Vec<u64>,
}

impl Report {
    pub fn no_change(&self) -> bool {
        self.applied.is_empty()
    }
}

/// Where a database stands against this release's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub current: SchemaVersion,
    pub latest: Option<u64>,
    pub pending: Vec<u64>,
    pub dialect: Dialect,
}

/// Applies one layout's migrations to one database.
#[derive(Debug, Clone)]
pub struct Migrator {
    target: ConnectTarget,
    dialect: Dialect,
    set: MigrationSet,
    lock: LockKey,
    postgres_schema: String,
}

/// Which way to move, and how far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    Up(Option<usize>),
    Down(Option<usize>),
    Goto(u64),
}

impl Migrator {
    pub fn new(target: ConnectTarget, dialect: Dialect, database: &str, schema: &str) -> Self {
        Self {
            lock: LockKey::for_database(dialect.backend(), database, schema).behind(target.pooler()),
            set: MigrationSet::for_dialect(dialect),
            target,
            dialect,
            postgres_schema: schema.to_owned(),
        }
    }

    pub fn migrations(&self) -> &MigrationSet {
        &self.set
    }

    /// Takes the lock; everything a caller does on the session is excluded from other migrators.
    pub async fn session(&self) -> Result<Session, MigrateError> {
        let mut session = Session::begin(&self.target, self.dialect, self.lock.clone(), &self.postgres_schema).await?;
        if let Err(e) = session.ensure_version_table().await {
            return Err(session.abort(e).await);
        }
        Ok(session)
    }

    /// Applies all pending migrations, or at most `steps` of them.
    pub async fn up(&self, steps: Option<usize>) -> Result<Report, MigrateError> {
        let mut session = self.session().await?;
        match self.run(&mut session, Plan::Up(steps)).await {
            Ok(report) => session.end().await.map(|()| report),
            Err(e) => Err(session.abort(e).await),
        }
    }

    /// Reverts every applied migration, or the last `steps` of them.
    pub async fn down(&self, steps: Option<usize>) -> Result<Report, MigrateError> {
        let mut session = self.session().await?;
        match self.run(&mut session, Plan::Down(steps)).await {
            Ok(report) => session.end().await.map(|()| report),
            Err(e) => Err(session.abort(e).await),
        }
    }

    /// Moves up or down until the database is at `version`.
    pub async fn goto(&self, version: u64) -> Result<Report, MigrateError> {
        if self.set.get(version).is_none() {
            return Err(MigrateError::NoSuchVersion(version as i64));
        }
        let mut session = self.session().await?;
        match self.run(&mut session, Plan::Goto(version)).await {
            Ok(report) => session.end().await.map(|()| report),
            Err(e) => Err(session.abort(e).await),
        }
    }

    /// Records `version` (-1: none) as clean without running anything: the operator's way out
    /// of a dirty state after repairing the schema by hand.
    pub async fn force(&self, version: i64) -> Result<(), MigrateError> {
        let version = match version {
            -1 => None,
            v if v >= 0 && self.set.get(v as u64).is_some() => Some(v as u64),
            v => return Err(MigrateError::NoSuchVersion(v)),
        };
        let mut session = self.session().await?;
        match session.set_version(SchemaVersion { version, dirty: false }).await {
            Ok(()) => session.end().await,
            Err(e) => Err(session.abort(e).await),
        }
    }

    pub async fn status(&self) -> Result<Status, MigrateError> {
        let mut session = self.session().await?;
        let current = match session.read_version().await {
            Ok(v) => v,
            Err(e) => return Err(session.abort(e).await),
        };
        session.end().await?;
        let pending =
            self.set.migrations().iter().map(|m| m.version).filter(|v| current.version.is_none_or(|c| *v > c)).collect();
        Ok(Status { current, latest: self.set.latest(), pending, dialect: self.dialect })
    }

    /// The whole policy, on a session that holds the lock: refuse a dirty or unknown version,
    /// check MLMD's own version, then walk the files.
    pub(crate) async fn run(&self, session: &mut Session, plan: Plan) -> Result<Report, MigrateError> {
        let current = session.read_version().await?;
        if current.dirty {
            return Err(MigrateError::Dirty { version: current.version.map_or(-1, |v| v as i64) });
        }
        let start = match current.version {
            None => None,
            Some(v) => Some(
                self.set
                    .index_of(v)
                    .ok_or(MigrateError::UnknownVersion { version: v, latest: self.set.latest().unwrap_or(0) })?,
            ),
        };
        if matches!(plan, Plan::Up(_) | Plan::Goto(_)) {
            check_mlmd_env(session).await?;
        }
        let migrations = self.set.migrations();
        let (ups, downs): (Vec<usize>, Vec<usize>) = match plan {
            Plan::Up(limit) => {
                let first = start.map_or(0, |i| i + 1);
                let end = limit.map_or(migrations.len(), |n| (first + n).min(migrations.len()));
                ((first..end).collect(), Vec::new())
            }
            Plan::Down(limit) => {
                let applied = start.map_or(0, |i| i + 1);
                let n = limit.map_or(applied, |n| n.min(applied));
                (Vec::new(), (applied - n..applied).rev().collect())
            }
            Plan::Goto(version) => {
                let target = self.set.index_of(version).expect("goto target checked");
                match start {
                    Some(s) if s > target => (Vec::new(), (target + 1..=s).rev().collect()),
                    Some(s) => ((s + 1..=target).collect(), Vec::new()),
                    None => ((0..=target).collect(), Vec::new()),
                }
            }
        };
        let mut report = Report { from: current.version, to: current.version, applied: Vec::new() };
        for index in ups {
            let m = &migrations[index];
            self.step(session, m, m.up, Some(m.version), report.to).await?;
            report.to = Some(m.version);
            report.applied.push(m.version);
        }
        for index in downs {
            let m = &migrations[index];
            let target = index.checked_sub(1).map(|i| migrations[i].version);
            self.step(session, m, m.down, target, report.to).await?;
            report.to = target;
            report.applied.push(m.version);
        }
        Ok(report)
    }

    async fn step(
        &self,
        session: &mut Session,
        migration: &Migration,
        body: &str,
        target: Option<u64>,
        previous: Option<u64>,
    ) -> Result<(), MigrateError> {
        session.set_version(SchemaVersion { version: target, dirty: true }).await?;
        if Migration::has_statements(body) {
            tracing::info!(version = migration.version, name = %migration.name, "running migration");
            if let Err(source) = session.run_body(body).await {
                return Err(MigrateError::StepFailed {
                    version: target.unwrap_or(migration.version),
                    name: migration.name.clone(),
                    previous: previous.map_or(-1, |v| v as i64),
                    source,
                });
            }
        }
        session.set_version(SchemaVersion { version: target, dirty: false }).await
    }
}

/// Refuses a database whose MLMD schema is not version 10: migrating it would add a second
/// MLMDEnv row next to the old one and leave MLMD unable to open it.
async fn check_mlmd_env(session: &mut Session) -> Result<(), MigrateError> {
    let Some(versions) = session.mlmd_schema_versions().await? else { return Ok(()) };
    match versions.as_slice() {
        [] => Ok(()),
        [v] if *v == MLMD_SCHEMA_VERSION => Ok(()),
        [v] if *v < MLMD_SCHEMA_VERSION => Err(MigrateError::MlmdVersion {
            found: *v,
            advice: "upgrade it with MLMD first (for example the MLMD server with \
                     --enable_database_upgrade=true, or ml-metadata's MetadataStore with \
                     enable_upgrade_migration=True), then start this server again",
        }),
        [v] => Err(MigrateError::MlmdVersion {
            found: *v,
            advice: "it was written by a newer MLMD release that this server cannot read; \
                     use a database at MLMD schema version 10",
        }),
        rows => Err(MigrateError::MlmdEnvRows(rows.len())),
    }
}
