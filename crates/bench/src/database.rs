//! A fresh database per backend, dropped after the run.

use anyhow::Context as _;
use sqlx::{Connection, MySqlConnection, PgConnection, SqliteConnection};
use tempfile::TempDir;

use crate::Backend;

/// The MLMD tables, as MySQL names them.
const MLMD_TABLES: [&str; 15] = [
    "Type",
    "TypeProperty",
    "ParentType",
    "Artifact",
    "ArtifactProperty",
    "Execution",
    "ExecutionProperty",
    "Context",
    "ContextProperty",
    "ParentContext",
    "Attribution",
    "Association",
    "Event",
    "EventPath",
    "MLMDEnv",
];

/// Admin connections (sqlx URLs) for creating and dropping the server databases.
#[derive(Debug, Clone)]
pub struct AdminDsns {
    pub mysql: String,
    pub postgres: String,
    /// Hosts (`host:port,...`) the server's DSN names in place of the admin DSN's one: a Galera
    /// cluster's nodes, or a PgBouncer in front of the admin DSN's PostgreSQL. The bench's own
    /// connections (create, seed, analyze, drop) keep the admin DSN's host.
    pub server_hosts: Option<String>,
}

impl AdminDsns {
    /// `None` for SQLite, which needs no server.
    fn get(&self, backend: Backend) -> Option<&str> {
        match backend {
            Backend::Sqlite => None,
            Backend::MySql => Some(&self.mysql),
            Backend::Postgres => Some(&self.postgres),
        }
    }

    /// Fails, naming the DSN, when `backend`'s database server cannot be reached.
    pub async fn check_reachable(&self, backend: Backend) -> anyhow::Result<()> {
        match self.get(backend) {
            Some(admin_dsn) => execute(backend, admin_dsn, "SELECT 1").await,
            None => Ok(()),
        }
    }
}

/// An empty database the server will migrate: a temporary SQLite file, or
/// `mr_bench_<random>` on the MySQL/MariaDB or PostgreSQL server.
#[derive(Debug)]
pub struct BenchDb {
    server_dsn: String,
    /// The same database through the admin DSN's host (the SQLite file: the same as the server's).
    direct_dsn: String,
    location: Location,
}

#[derive(Debug)]
enum Location {
    SqliteDir(TempDir),
    Server { backend: Backend, admin_dsn: String, name: String },
}

impl BenchDb {
    /// Fails, naming the admin DSN, when the database server is unreachable.
    pub async fn create(backend: Backend, admin: &AdminDsns) -> anyhow::Result<BenchDb> {
        let Some(admin_dsn) = admin.get(backend) else {
            return BenchDb::create_sqlite();
        };
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("mr_bench_{}", &suffix[..12]);
        execute(backend, admin_dsn, &format!("CREATE DATABASE {name}")).await?;
        let mut direct =
            url::Url::parse(admin_dsn).with_context(|| format!("admin DSN {} is not a URL", without_password(admin_dsn)))?;
        direct.set_path(&name);
        Ok(BenchDb {
            server_dsn: match &admin.server_hosts {
                Some(hosts) => with_hosts(&direct, hosts),
                None => direct.to_string(),
            },
            direct_dsn: direct.to_string(),
            location: Location::Server { backend, admin_dsn: admin_dsn.to_string(), name },
        })
    }

    fn create_sqlite() -> anyhow::Result<BenchDb> {
        let dir = tempfile::Builder::new().prefix("mr_bench_").tempdir()?;
        let file = dir.path().join("registry.db");
        let file = file.display().to_string();
        Ok(BenchDb { server_dsn: file.clone(), direct_dsn: file, location: Location::SqliteDir(dir) })
    }

    /// The value of the server's `--embedmd-database-dsn`.
    pub fn server_dsn(&self) -> &str {
        &self.server_dsn
    }

    /// The database through the admin DSN's host, for the bench's own connections: a sqlx URL
    /// names one host, and a transaction pooler would not keep the seeding's prepared statements.
    pub fn direct_dsn(&self) -> &str {
        &self.direct_dsn
    }

    /// Refreshes the planner's statistics of every table: `ANALYZE` on PostgreSQL and SQLite,
    /// `ANALYZE TABLE` on MySQL/MariaDB.
    pub async fn analyze(&self) -> anyhow::Result<()> {
        match &self.location {
            Location::SqliteDir(_) => {
                let mut connection = SqliteConnection::connect(&format!("sqlite://{}", self.direct_dsn)).await?;
                sqlx::raw_sql("ANALYZE").execute(&mut connection).await.context("ANALYZE failed on SQLite")?;
                connection.close().await?;
                Ok(())
            }
            Location::Server { backend: Backend::MySql, .. } => {
                execute(Backend::MySql, &self.direct_dsn, &format!("ANALYZE TABLE {}", MLMD_TABLES.join(", "))).await
            }
            Location::Server { backend, .. } => execute(*backend, &self.direct_dsn, "ANALYZE").await,
        }
    }

    pub async fn drop_database(self) -> anyhow::Result<()> {
        match self.location {
            Location::SqliteDir(dir) => Ok(dir.close()?),
            Location::Server { backend: Backend::Postgres, admin_dsn, name } => {
                execute(Backend::Postgres, &admin_dsn, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
            }
            Location::Server { backend, admin_dsn, name } => {
                execute(backend, &admin_dsn, &format!("DROP DATABASE IF EXISTS {name}")).await
            }
        }
    }
}

/// Runs one statement on a new admin connection.
async fn execute(backend: Backend, admin_dsn: &str, sql: &str) -> anyhow::Result<()> {
    let shown = without_password(admin_dsn);
    let unreachable = || format!("cannot connect to the {} server at {shown}", backend.name());
    let failed = || format!("`{sql}` failed on {shown}");
    match backend {
        Backend::MySql => {
            let mut connection = MySqlConnection::connect(admin_dsn).await.with_context(unreachable)?;
            sqlx::raw_sql(sql).execute(&mut connection).await.with_context(failed)?;
            connection.close().await?;
        }
        Backend::Postgres => {
            let mut connection = PgConnection::connect(admin_dsn).await.with_context(unreachable)?;
            sqlx::raw_sql(sql).execute(&mut connection).await.with_context(failed)?;
            connection.close().await?;
        }
        Backend::Sqlite => unreachable!("SQLite databases are files"),
    }
    Ok(())
}

/// `url` (`scheme://user:pw@host:port/db?query`) naming `hosts` (`h1:p1,h2:p2`) instead of its
/// host, in the URL form the server reads for several hosts.
fn with_hosts(url: &url::Url, hosts: &str) -> String {
    let user = match url.password() {
        Some(password) => format!("{}:{password}@", url.username()),
        None if url.username().is_empty() => String::new(),
        None => format!("{}@", url.username()),
    };
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("{}://{user}{hosts}{}{query}", url.scheme(), url.path())
}

/// The DSN for messages, its password (if any) masked.
fn without_password(dsn: &str) -> String {
    match url::Url::parse(dsn) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => dsn.to_string(),
    }
}
