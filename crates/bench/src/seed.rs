//! Bulk seeding through SQL: registered models, each with one version holding one model
//! artifact, written straight into the MLMD tables as the server writes them, many rows per
//! statement in one transaction. Creating 100 000 models through the API would take minutes;
//! this takes seconds.
//!
//! Every value is generated here (ids, `bench-<hex>` names, fixed words), so the statements
//! carry them as literals: nothing to escape, no bind limits.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use sqlx::{Connection, Executor, MySqlConnection, PgConnection, Row, SqliteConnection};

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

enum Conn {
    Sqlite(SqliteConnection),
    MySql(MySqlConnection),
    Postgres(PgConnection),
}

impl Conn {
    async fn open(backend: Backend, dsn: &str) -> anyhow::Result<Conn> {
        Ok(match backend {
            Backend::Sqlite => Conn::Sqlite(SqliteConnection::connect(&format!("sqlite://{dsn}")).await?),
            Backend::MySql => Conn::MySql(MySqlConnection::connect(dsn).await?),
            Backend::Postgres => Conn::Postgres(PgConnection::connect(dsn).await?),
        })
    }

    async fn execute(&mut self, sql: &str) -> anyhow::Result<()> {
        let done = match self {
            Conn::Sqlite(c) => c.execute(sqlx::raw_sql(sql)).await.map(drop),
            Conn::MySql(c) => c.execute(sqlx::raw_sql(sql)).await.map(drop),
            Conn::Postgres(c) => c.execute(sqlx::raw_sql(sql)).await.map(drop),
        };
        done.with_context(|| format!("seeding statement failed: {}", &sql[..sql.len().min(200)]))
    }

    async fn scalar(&mut self, sql: &str) -> anyhow::Result<i64> {
        let value: Option<i64> = match self {
            Conn::Sqlite(c) => sqlx::query(sql).fetch_one(c).await?.try_get(0)?,
            Conn::MySql(c) => sqlx::query(sql).fetch_one(c).await?.try_get(0)?,
            // MLMD's ids are INTEGER, which PostgreSQL's driver decodes only as i32.
            Conn::Postgres(c) => sqlx::query(sql).fetch_one(c).await?.try_get::<Option<i32>, _>(0)?.map(i64::from),
        };
        Ok(value.unwrap_or(0))
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            Conn::Sqlite(c) => c.close().await?,
            Conn::MySql(c) => c.close().await?,
            Conn::Postgres(c) => c.close().await?,
        }
        Ok(())
    }
}

/// Table names as each backend's schema spells them (the server creates upstream's quoted
/// CamelCase tables on PostgreSQL).
fn table(backend: Backend, name: &str) -> String {
    match backend {
        Backend::Postgres => format!("\"{name}\""),
        Backend::Sqlite | Backend::MySql => name.to_owned(),
    }
}

/// Collects rows and writes them [`ROWS_PER_INSERT`] at a time.
struct Inserter<'a> {
    conn: &'a mut Conn,
    head: String,
    rows: Vec<String>,
    written: usize,
}

impl<'a> Inserter<'a> {
    fn new(conn: &'a mut Conn, backend: Backend, name: &str, columns: &str, explicit_ids: bool) -> Self {
        // PostgreSQL's identity columns take a given id only when told so.
        let overriding = if explicit_ids && backend == Backend::Postgres { " OVERRIDING SYSTEM VALUE" } else { "" };
        let head = format!("INSERT INTO {} ({columns}){overriding} VALUES ", table(backend, name));
        Inserter { conn, head, rows: Vec::with_capacity(ROWS_PER_INSERT), written: 0 }
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
        let mut sql = self.head.clone();
        sql.push_str(&self.rows.join(","));
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

async fn type_id(conn: &mut Conn, backend: Backend, name: &str) -> anyhow::Result<i64> {
    let sql = format!("SELECT MAX(id) FROM {} WHERE name = '{name}'", table(backend, "Type"));
    match conn.scalar(&sql).await? {
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
        model: type_id(&mut conn, backend, "kf.RegisteredModel").await?,
        version: type_id(&mut conn, backend, "kf.ModelVersion").await?,
        artifact: type_id(&mut conn, backend, "kf.ModelArtifact").await?,
    };
    let first_context = conn.scalar(&format!("SELECT MAX(id) FROM {}", table(backend, "Context"))).await? + 1;
    let first_artifact = conn.scalar(&format!("SELECT MAX(id) FROM {}", table(backend, "Artifact"))).await? + 1;
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
    let mut contexts = Inserter::new(&mut conn, backend, "Context", columns, true);
    for (k, model) in models.iter().enumerate() {
        let t = time(k);
        contexts.push(format!("({},{},'{}',{t},{t})", model_id(k), types.model, model.name)).await?;
        contexts.push(format!("({},{},'{}:v1',{t},{t})", version_id(k), types.version, model_id(k))).await?;
    }
    contexts.flush().await?;
    rows += contexts.written;

    let columns = "context_id, name, is_custom_property, int_value, string_value";
    let mut properties = Inserter::new(&mut conn, backend, "ContextProperty", columns, false);
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

    let mut parents = Inserter::new(&mut conn, backend, "ParentContext", "context_id, parent_context_id", false);
    for k in 0..count {
        parents.push(format!("({},{})", version_id(k), model_id(k))).await?;
    }
    parents.flush().await?;
    rows += parents.written;

    let columns = "id, type_id, uri, name, create_time_since_epoch, last_update_time_since_epoch";
    let mut artifacts = Inserter::new(&mut conn, backend, "Artifact", columns, true);
    for k in 0..count {
        let t = time(k);
        let row = format!("({},{},'s3://bench/model.onnx','{}:model',{t},{t})", artifact_id(k), types.artifact, version_id(k));
        artifacts.push(row).await?;
    }
    artifacts.flush().await?;
    rows += artifacts.written;

    let columns = "artifact_id, name, is_custom_property, string_value";
    let mut artifact_properties = Inserter::new(&mut conn, backend, "ArtifactProperty", columns, false);
    for k in 0..count {
        let a = artifact_id(k);
        artifact_properties.push(format!("({a},'model_format_name',FALSE,'onnx')")).await?;
        artifact_properties.push(format!("({a},'model_format_version',FALSE,'1')")).await?;
    }
    artifact_properties.flush().await?;
    rows += artifact_properties.written;

    let mut attributions = Inserter::new(&mut conn, backend, "Attribution", "context_id, artifact_id", false);
    for k in 0..count {
        attributions.push(format!("({},{})", version_id(k), artifact_id(k))).await?;
    }
    attributions.flush().await?;
    rows += attributions.written;

    if backend == Backend::Postgres {
        // Ids given explicitly do not move an identity's sequence; the server's next insert
        // must not collide with them.
        let mut sql = String::new();
        for name in ["Context", "Artifact"] {
            let t = table(backend, name);
            let _ = write!(sql, "SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT MAX(id) FROM {t}));");
        }
        conn.execute(&sql).await?;
    }
    conn.execute("COMMIT").await?;
    conn.close().await?;
    Ok(Seeded { models, rows, elapsed: started.elapsed() })
}
