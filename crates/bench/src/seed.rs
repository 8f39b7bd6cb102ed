//! Bulk seeding through SQL: registered models, each with one version holding one model
//! artifact, written straight into the MLMD tables as the server writes them, many rows per
//! statement in one transaction. Creating 100 000 models through the API would take minutes;
//! this takes seconds.
//!
//! Every value is generated here (ids, `bench-<hex>` names, fixed words), so the statements
//! carry them as literals: nothing to escape, no bind limits.

use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use embedmd::{ConnectTarget, Dialect, Table, Unpooled};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::api::{Model, Props};
use crate::workload::{next_props, unique_name};
use crate::Backend;

/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 2000;

/// What one seeding wrote.
#[derive(Debug)]
pub struct Seeded {
    pub models: Vec<Model>,
    /// Rows inserted over all tables.
    pub rows: usize,
    pub elapsed: Duration,
}

/// A connection of embedmd's, with the dialect the server's tables are laid out in.
struct Conn {
    conn: Unpooled,
    dialect: Dialect,
}

impl Conn {
    async fn open(backend: Backend, dsn: &str) -> anyhow::Result<Conn> {
        let (target, dialect) = match backend {
            Backend::Sqlite => {
                (ConnectTarget::Sqlite(SqliteConnectOptions::from_str(&format!("sqlite://{dsn}"))?), Dialect::Sqlite)
            }
            Backend::MySql => (ConnectTarget::MySql(MySqlConnectOptions::from_str(dsn)?.into()), Dialect::MySql),
            // The server creates upstream's layout.
            Backend::Postgres => (ConnectTarget::Postgres(PgConnectOptions::from_str(dsn)?.into()), Dialect::Postgres),
        };
        Ok(Conn { conn: Unpooled::open(&target).await?, dialect })
    }

    async fn execute(&mut self, sql: &str) -> anyhow::Result<()> {
        let done = self.conn.conn().execute_script(sql).await;
        done.with_context(|| format!("seeding statement failed: {}", &sql[..sql.len().min(200)]))
    }

    /// `expr`'s value in the one row `FROM table` gives; 0 for NULL.
    async fn scalar(&mut self, expr: &str, table: Table, condition: &str) -> anyhow::Result<i64> {
        let sql = format!("SELECT {} FROM {}{condition}", self.dialect.as_i64(expr), self.dialect.table(table));
        let row: Option<(Option<i64>,)> = self.conn.conn().fetch_optional(&sql, &[]).await?;
        Ok(row.and_then(|(value,)| value).unwrap_or(0))
    }

    async fn close(self) {
        self.conn.close().await
    }
}

/// Collects rows and writes them [`ROWS_PER_INSERT`] at a time.
struct Inserter<'a> {
    conn: &'a mut Conn,
    table: Table,
    columns: &'static str,
    explicit_ids: bool,
    rows: Vec<String>,
    written: usize,
}

impl<'a> Inserter<'a> {
    fn new(conn: &'a mut Conn, table: Table, columns: &'static str, explicit_ids: bool) -> Self {
        Inserter { conn, table, columns, explicit_ids, rows: Vec::with_capacity(ROWS_PER_INSERT), written: 0 }
    }

    async fn push(&mut self, row: String) -> anyhow::Result<()> {
        self.rows.push(row);
        if self.rows.len() == ROWS_PER_INSERT {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let (dialect, rows) = (self.conn.dialect, self.rows.join(","));
        let sql = match self.explicit_ids {
            true => dialect.insert_keeping_ids(self.table, self.columns, &rows),
            false => format!("INSERT INTO {} ({}) VALUES {rows}", dialect.table(self.table), self.columns),
        };
        self.conn.execute(&sql).await?;
        self.written += self.rows.len();
        self.rows.clear();
        Ok(())
    }
}

/// The ids of the registry's types that the seeded rows use.
struct TypeIds {
    model: i64,
    version: i64,
    artifact: i64,
}

async fn type_id(conn: &mut Conn, name: &str) -> anyhow::Result<i64> {
    match conn.scalar("MAX(id)", Table::Type, &format!(" WHERE name = '{name}'")).await? {
        0 => bail!("type {name} is missing: the server syncs it at start"),
        id => Ok(id),
    }
}

/// Inserts `count` registered models (custom properties `team` and `priority` as the API
/// workloads give them), each with a version `v1` holding a model artifact `model`, into the
/// database the server at `dsn` uses; returns the models.
pub async fn seed(backend: Backend, dsn: &str, count: usize) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let mut conn = Conn::open(backend, dsn).await.context("connecting to the bench database to seed it")?;
    conn.execute("BEGIN").await?;
    let types = TypeIds {
        model: type_id(&mut conn, "kf.RegisteredModel").await?,
        version: type_id(&mut conn, "kf.ModelVersion").await?,
        artifact: type_id(&mut conn, "kf.ModelArtifact").await?,
    };
    let first_context = conn.scalar("MAX(id)", Table::Context, "").await? + 1;
    let first_artifact = conn.scalar("MAX(id)", Table::Artifact, "").await? + 1;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64 - count as i64;

    let models: Vec<Model> = (0..count)
        .map(|k| Model { id: (first_context + 2 * k as i64).to_string(), name: unique_name(), props: next_props() })
        .collect();
    let model_id = |k: usize| first_context + 2 * k as i64;
    let version_id = |k: usize| first_context + 2 * k as i64 + 1;
    let artifact_id = |k: usize| first_artifact + k as i64;
    let time = |k: usize| now + k as i64;

    let mut rows = 0;
    let columns = "id, type_id, name, create_time_since_epoch, last_update_time_since_epoch";
    let mut contexts = Inserter::new(&mut conn, Table::Context, columns, true);
    for (k, model) in models.iter().enumerate() {
        let t = time(k);
        contexts.push(format!("({},{},'{}',{t},{t})", model_id(k), types.model, model.name)).await?;
        contexts.push(format!("({},{},'{}:v1',{t},{t})", version_id(k), types.version, model_id(k))).await?;
    }
    contexts.flush().await?;
    rows += contexts.written;

    let columns = "context_id, name, is_custom_property, int_value, string_value";
    let mut properties = Inserter::new(&mut conn, Table::ContextProperty, columns, false);
    for (k, model) in models.iter().enumerate() {
        let Props { team, priority } = model.props;
        let (m, v) = (model_id(k), version_id(k));
        for row in [
            format!("({m},'state',FALSE,NULL,'LIVE')"),
            format!("({m},'team',TRUE,NULL,'{team}')"),
            format!("({m},'priority',TRUE,{priority},NULL)"),
            format!("({v},'registered_model_id',FALSE,{m},NULL)"),
            format!("({v},'state',FALSE,NULL,'LIVE')"),
        ] {
            properties.push(row).await?;
        }
    }
    properties.flush().await?;
    rows += properties.written;

    let mut parents = Inserter::new(&mut conn, Table::ParentContext, "context_id, parent_context_id", false);
    for k in 0..count {
        parents.push(format!("({},{})", version_id(k), model_id(k))).await?;
    }
    parents.flush().await?;
    rows += parents.written;

    let columns = "id, type_id, uri, name, create_time_since_epoch, last_update_time_since_epoch";
    let mut artifacts = Inserter::new(&mut conn, Table::Artifact, columns, true);
    for k in 0..count {
        let t = time(k);
        let row = format!("({},{},'s3://bench/model.onnx','{}:model',{t},{t})", artifact_id(k), types.artifact, version_id(k));
        artifacts.push(row).await?;
    }
    artifacts.flush().await?;
    rows += artifacts.written;

    let columns = "artifact_id, name, is_custom_property, string_value";
    let mut artifact_properties = Inserter::new(&mut conn, Table::ArtifactProperty, columns, false);
    for k in 0..count {
        let a = artifact_id(k);
        artifact_properties.push(format!("({a},'model_format_name',FALSE,'onnx')")).await?;
        artifact_properties.push(format!("({a},'model_format_version',FALSE,'1')")).await?;
    }
    artifact_properties.flush().await?;
    rows += artifact_properties.written;

    let mut attributions = Inserter::new(&mut conn, Table::Attribution, "context_id, artifact_id", false);
    for k in 0..count {
        attributions.push(format!("({},{})", version_id(k), artifact_id(k))).await?;
    }
    attributions.flush().await?;
    rows += attributions.written;

    // Ids given explicitly do not move PostgreSQL's identity sequences; the server's next
    // insert must not collide with them. (MySQL moves its counter by itself, and after COMMIT
    // only: its statement is DDL.)
    let dialect = conn.dialect;
    if !dialect.next_id_after_commit() {
        let next_ids = [(Table::Context, model_id(count)), (Table::Artifact, artifact_id(count))];
        for (table, next) in next_ids.into_iter().filter(|(_, next)| *next > 1) {
            for statement in dialect.set_next_id(table, next) {
                conn.execute(&statement).await?;
            }
        }
    }
    conn.execute("COMMIT").await?;
    conn.close().await;
    Ok(Seeded { models, rows, elapsed: started.elapsed() })
}
