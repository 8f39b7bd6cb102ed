//! The MLMD types the registry needs, created at start (as upstream does since it emptied its
//! seed migrations): upserted by name, so databases where older releases seeded them in SQL, or
//! where MLMD or the upstream server added types, are accepted as they are.

use std::collections::HashMap;

use crate::db::on_conn;
use crate::dialect::Table;
use crate::migrate::Session;

/// `Type.type_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeKind {
    Execution = 0,
    Artifact = 1,
    Context = 2,
}

/// `TypeProperty.data_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Int = 1,
    Double = 2,
    String = 3,
    Struct = 4,
    Proto = 5,
}

pub struct TypeSpec {
    pub name: &'static str,
    pub kind: TypeKind,
    pub properties: &'static [(&'static str, DataType)],
}

const fn spec(name: &'static str, kind: TypeKind, properties: &'static [(&'static str, DataType)]) -> TypeSpec {
    TypeSpec { name, kind, properties }
}

use DataType::{Int as I, Proto as P, String as S, Struct as St};
use TypeKind::{Artifact as A, Context as C, Execution as E};

const METRIC_PROPERTIES: &[(&str, DataType)] = &[("description", S), ("value", P), ("timestamp", S), ("step", I)];

/// MLMD's simple types first, in MLMD's order, then upstream's `kf.*` spec.
pub const TYPES: &[TypeSpec] = &[
    spec("mlmd.Dataset", A, &[]),
    spec("mlmd.Model", A, &[]),
    spec("mlmd.Metrics", A, &[]),
    spec("mlmd.Statistics", A, &[]),
    spec("mlmd.Train", E, &[]),
    spec("mlmd.Transform", E, &[]),
    spec("mlmd.Process", E, &[]),
    spec("mlmd.Evaluate", E, &[]),
    spec("mlmd.Deploy", E, &[]),
    spec(
        "kf.RegisteredModel",
        C,
        &[
            ("description", S),
            ("owner", S),
            ("state", S),
            ("language", St),
            ("library_name", S),
            ("license_link", S),
            ("license", S),
            ("logo", S),
            ("maturity", S),
            ("provider", S),
            ("readme", S),
            ("tasks", St),
        ],
    ),
    spec("kf.ModelVersion", C, &[("author", S), ("description", S), ("model_name", S), ("state", S), ("version", S)]),
    spec("kf.ServingEnvironment", C, &[("description", S)]),
    spec(
        "kf.InferenceService",
        C,
        &[
            ("description", S),
            ("desired_state", S),
            ("model_version_id", I),
            ("registered_model_id", I),
            ("runtime", S),
            ("serving_environment_id", I),
        ],
    ),
    spec("kf.Experiment", C, &[("description", S), ("owner", S), ("state", S)]),
    spec(
        "kf.ExperimentRun",
        C,
        &[
            ("description", S),
            ("owner", S),
            ("state", S),
            ("status", S),
            ("start_time_since_epoch", I),
            ("end_time_since_epoch", I),
            ("experiment_id", I),
        ],
    ),
    spec(
        "kf.ModelArtifact",
        A,
        &[
            ("description", S),
            ("model_format_name", S),
            ("model_format_version", S),
            ("service_account_name", S),
            ("storage_key", S),
            ("storage_path", S),
        ],
    ),
    spec("kf.DocArtifact", A, &[("description", S)]),
    spec("kf.DataSet", A, &[("description", S), ("digest", S), ("source_type", S), ("source", S), ("schema", S), ("profile", S)]),
    spec("kf.Metric", A, METRIC_PROPERTIES),
    spec("kf.Parameter", A, &[("description", S), ("value", S), ("parameter_type", S)]),
    spec("kf.MetricHistory", A, METRIC_PROPERTIES),
    spec("kf.ServeModel", E, &[("description", S), ("model_version_id", I)]),
];

/// Type ids by name, read once after the sync; types never change while the server runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeIds(HashMap<String, i64>);

impl TypeIds {
    pub fn get(&self, name: &str) -> Option<i64> {
        self.0.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Inserts missing types and missing properties, leaving every existing row untouched. Runs on
/// a migration session, so concurrent replicas cannot both insert the same type.
pub async fn sync(session: &mut Session) -> Result<TypeIds, sqlx::Error> {
    let unit = session.begin_unit().await?;
    let synced = sync_in_unit(session).await;
    session.end_unit(unit, synced.is_ok()).await?;
    synced
}

async fn sync_in_unit(session: &mut Session) -> Result<TypeIds, sqlx::Error> {
    let dialect = session.dialect();
    let type_table = dialect.table(Table::Type);
    let select = format!(
        "SELECT {}, name, {} FROM {type_table} WHERE version IS NULL ORDER BY id",
        dialect.as_i64("id"),
        dialect.as_i64("type_kind")
    );
    let read = |rows: Vec<(i64, String, i64)>| -> HashMap<(String, i64), i64> {
        // The first row wins where MLMD's in-code uniqueness was bypassed and a name repeats.
        let mut map = HashMap::new();
        for (id, name, kind) in rows {
            map.entry((name, kind)).or_insert(id);
        }
        map
    };
    let mut existing = read(on_conn!(session.conn(), c => sqlx::query_as(&select).fetch_all(c).await?));

    let missing: Vec<&TypeSpec> = TYPES.iter().filter(|t| !existing.contains_key(&(t.name.to_owned(), t.kind as i64))).collect();
    if !missing.is_empty() {
        let values =
            (0..missing.len()).map(|i| format!("({})", dialect.placeholders(2 * i + 1, 2))).collect::<Vec<_>>().join(", ");
        let insert = format!("INSERT INTO {type_table} (name, type_kind) VALUES {values}");
        on_conn!(session.conn(), c => {
            let mut query = sqlx::query(&insert);
            for t in &missing {
                query = query.bind(t.name).bind(t.kind as i16);
            }
            query.execute(c).await.map(drop)?;
        });
        existing = read(on_conn!(session.conn(), c => sqlx::query_as(&select).fetch_all(c).await?));
    }

    let properties: Vec<(i64, &str, i32)> = TYPES
        .iter()
        .flat_map(|t| {
            let id = existing[&(t.name.to_owned(), t.kind as i64)];
            t.properties.iter().map(move |(name, data_type)| (id, *name, *data_type as i32))
        })
        .collect();
    let values =
        (0..properties.len()).map(|i| format!("({})", dialect.placeholders(3 * i + 1, 3))).collect::<Vec<_>>().join(", ");
    let insert = dialect.insert_ignoring_duplicates(
        &format!("INTO {} (type_id, name, data_type)", dialect.table(Table::TypeProperty)),
        &format!("VALUES {values}"),
    );
    on_conn!(session.conn(), c => {
        let mut query = sqlx::query(&insert);
        for (type_id, name, data_type) in &properties {
            query = query.bind(*type_id as i32).bind(*name).bind(*data_type);
        }
        query.execute(c).await?;
    });

    Ok(TypeIds(TYPES.iter().map(|t| (t.name.to_owned(), existing[&(t.name.to_owned(), t.kind as i64)])).collect()))
}
