//! The MLMD types the registry needs, created at start (as upstream does since it emptied its
//! seed migrations): upserted by name, so databases where older releases seeded them in SQL, or
//! where MLMD or the upstream server added types, are accepted as they are.

use std::collections::HashMap;

use crate::arg::Arg;
use crate::dialect::Table;
use crate::migrate::Session;
use crate::store::NodeKind;

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

/// A type to create: its name, kind and declared properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSpec {
    pub name: &'static str,
    pub kind: TypeKind,
    pub properties: Vec<(&'static str, DataType)>,
}

impl From<NodeKind> for TypeKind {
    fn from(node: NodeKind) -> Self {
        match node {
            NodeKind::Context => TypeKind::Context,
            NodeKind::Artifact => TypeKind::Artifact,
            NodeKind::Execution => TypeKind::Execution,
        }
    }
}

/// MLMD's own simple types, in MLMD's order; created before the caller's types.
pub(crate) const MLMD_SIMPLE_TYPES: [(&str, TypeKind); 9] = [
    ("mlmd.Dataset", TypeKind::Artifact),
    ("mlmd.Model", TypeKind::Artifact),
    ("mlmd.Metrics", TypeKind::Artifact),
    ("mlmd.Statistics", TypeKind::Artifact),
    ("mlmd.Train", TypeKind::Execution),
    ("mlmd.Transform", TypeKind::Execution),
    ("mlmd.Process", TypeKind::Execution),
    ("mlmd.Evaluate", TypeKind::Execution),
    ("mlmd.Deploy", TypeKind::Execution),
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
pub async fn sync(session: &mut Session, types: &[TypeSpec]) -> Result<TypeIds, sqlx::Error> {
    let all: Vec<TypeSpec> = MLMD_SIMPLE_TYPES
        .iter()
        .map(|(name, kind)| TypeSpec { name, kind: *kind, properties: Vec::new() })
        .chain(types.iter().cloned())
        .collect();
    let unit = session.begin_unit().await?;
    let synced = sync_in_unit(session, &all).await;
    session.end_unit(unit, synced.is_ok()).await?;
    synced
}

async fn sync_in_unit(session: &mut Session, types: &[TypeSpec]) -> Result<TypeIds, sqlx::Error> {
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
    let mut existing = read(session.conn().fetch_all(&select, &[]).await?);

    let missing: Vec<&TypeSpec> = types.iter().filter(|t| !existing.contains_key(&(t.name.to_owned(), t.kind as i64))).collect();
    if !missing.is_empty() {
        let values =
            (0..missing.len()).map(|i| format!("({})", dialect.placeholders(2 * i + 1, 2))).collect::<Vec<_>>().join(", ");
        let insert = format!("INSERT INTO {type_table} (name, type_kind) VALUES {values}");
        let args: Vec<Arg> = missing.iter().flat_map(|t| [Arg::from(t.name), Arg::from(t.kind as i64)]).collect();
        session.conn().execute(&insert, &args).await?;
        existing = read(session.conn().fetch_all(&select, &[]).await?);
    }

    let properties: Vec<(i64, &str, i32)> = types
        .iter()
        .flat_map(|t| {
            let id = existing[&(t.name.to_owned(), t.kind as i64)];
            t.properties.iter().map(move |(name, data_type)| (id, *name, *data_type as i32))
        })
        .collect();
    if properties.is_empty() {
        return Ok(type_ids(types, &existing));
    }
    let values =
        (0..properties.len()).map(|i| format!("({})", dialect.placeholders(3 * i + 1, 3))).collect::<Vec<_>>().join(", ");
    let insert = dialect.insert_ignoring_duplicates(
        &format!("INTO {} (type_id, name, data_type)", dialect.table(Table::TypeProperty)),
        &format!("VALUES {values}"),
    );
    let args: Vec<Arg> = properties
        .iter()
        .flat_map(|(type_id, name, data_type)| [Arg::from(*type_id), Arg::from(*name), Arg::from(i64::from(*data_type))])
        .collect();
    session.conn().execute(&insert, &args).await?;

    Ok(type_ids(types, &existing))
}

fn type_ids(types: &[TypeSpec], existing: &HashMap<(String, i64), i64>) -> TypeIds {
    TypeIds(types.iter().map(|t| (t.name.to_owned(), existing[&(t.name.to_owned(), t.kind as i64)])).collect())
}
