//! The registry's operations, each one transaction for writes and a fixed number of queries
//! for reads, on top of the MLMD store. Split by concern: reads by id and finds here; lists
//! and their streaming cursor, creates and updates, artifact upserts, metric history and the
//! inference service lookups in the modules below.

mod history;
mod list;
mod mlflow;
mod runlog;
mod runs;
mod serving;
mod summary;
mod upsert;
mod write;

use std::time::{SystemTime, UNIX_EPOCH};

use embedmd::store::{Conn, Node, Parent, Store, Value};
use embedmd::Datastore;
use serde_json::Value as Json;

use super::api::ApiVersion;
use super::codec::{self, parse_id};
use super::error::{Error, Result};
use super::paging::ListParams;
use super::spec::{EntityKind, Link};

pub use history::{HistoryPoint, MAX_BULK_HISTORY_ROWS};
pub use list::Listing;
pub use mlflow::{
    canonical_stage, Condition, MlModel, MlVersion, NewVersion, SearchField, SearchOp, SearchOrder, SearchPage,
    PREFIX as MLFLOW_PREFIX, STAGES as MLFLOW_STAGES,
};
pub use runlog::{MetricPoint, RunLog};
pub use runs::{FoundRun, RunCondition, RunField, RunOp, RunOrder, RunSearch, RunValue, RunView};
pub use write::{Part, Refused, Registering, Written};

/// The model registry over one datastore.
#[derive(Debug, Clone)]
pub struct Registry {
    datastore: Datastore,
    store: Store,
    /// The MLMD type id of each entity kind (indexed by the kind), looked up once: requests ask
    /// for them many times per node.
    type_ids: [i64; EntityKind::ALL.len()],
    /// The API version whose JSON this handle reads and writes.
    api: ApiVersion,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn parent_link(link: Link, id: i64) -> Parent {
    match link {
        Link::ParentContext => Parent::Context(id),
        Link::Attribution => Parent::Attribution(id),
        Link::Association => Parent::Association(id),
    }
}

impl Registry {
    pub fn new(datastore: Datastore) -> Self {
        let store = datastore.store();
        let mut type_ids = [0; EntityKind::ALL.len()];
        for kind in EntityKind::ALL {
            type_ids[kind as usize] = datastore.types().get(kind.spec().type_name).expect("registry types are synced at start");
        }
        Registry { datastore, store, type_ids, api: ApiVersion::V1Alpha3 }
    }

    /// The same registry, speaking another API version's JSON.
    pub fn for_api(self, api: ApiVersion) -> Self {
        Registry { api, ..self }
    }

    pub fn datastore(&self) -> &Datastore {
        &self.datastore
    }

    fn type_id(&self, kind: EntityKind) -> i64 {
        self.type_ids[kind as usize]
    }

    fn kind_of(&self, node: &Node, among: &[EntityKind]) -> Option<EntityKind> {
        among.iter().copied().find(|k| self.type_id(*k) == node.type_id)
    }

    /// Child contexts written through MLMD's API (the older registry's versions, runs logged
    /// by MLMD-based tools) carry no parent id property; their parent is the ParentContext
    /// link. One query for a whole page.
    async fn fill_parent_ids(&self, conn: &mut Conn<'_>, nodes: &mut [Node]) -> Result<()> {
        let property_of = |node: &Node| self.kind_of(node, &EntityKind::ALL).and_then(|k| k.spec().parent_property());
        let missing: Vec<i64> =
            nodes.iter().filter(|n| property_of(n).is_some_and(|p| !n.properties.typed.contains_key(p))).map(|n| n.id).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let parents = self.store.parent_contexts(conn, &missing).await?;
        for node in nodes.iter_mut() {
            if let (Some(property), Some(parent)) = (property_of(node), parents.get(&node.id)) {
                node.properties.typed.entry(property.into()).or_insert(Value::Int(*parent));
            }
        }
        Ok(())
    }

    /// 404 unless an entity of `kind` has this id.
    async fn must_exist(&self, conn: &mut Conn<'_>, kind: EntityKind, id: i64) -> Result<()> {
        match self.store.exists(conn, kind.spec().node, &[self.type_id(kind)], id).await? {
            true => Ok(()),
            false => Err(Error::not_found(format!("no {} found for id {id}", kind.spec().label))),
        }
    }

    /// One node of one of `kinds` by id, or 404.
    async fn load(&self, conn: &mut Conn<'_>, kinds: &[EntityKind], id: i64, label: &str) -> Result<(EntityKind, Node)> {
        let spec = kinds[0].spec();
        let type_ids: Vec<i64> = kinds.iter().map(|k| self.type_id(*k)).collect();
        let mut nodes = self.store.get(conn, spec.node, &type_ids, &[id]).await?;
        self.fill_parent_ids(conn, &mut nodes).await?;
        let node = nodes.pop().ok_or_else(|| Error::not_found(format!("no {label} found for id {id}")))?;
        let kind = self.kind_of(&node, kinds).expect("type filtered");
        Ok((kind, node))
    }

    pub async fn get(&self, kind: EntityKind, id: &str) -> Result<Json> {
        self.get_any(&[kind], id).await
    }

    /// By id among several kinds (the generic `/artifacts/{id}`).
    pub async fn get_any(&self, kinds: &[EntityKind], id: &str) -> Result<Json> {
        let label = label_of(kinds);
        let id = parse_id(id, &format!("{label} ID"))?;
        let mut reader = self.datastore.reader().await?;
        let (kind, node) = self.load(&mut reader.conn(), kinds, id, label).await?;
        Ok(codec::encode(self.api, kind.spec(), &node))
    }

    /// The id of an entity that must exist (400 for a malformed id, 404 for a missing one).
    async fn existing(&self, kind: EntityKind, id: &str) -> Result<i64> {
        let label = kind.spec().label;
        let id = parse_id(id, &format!("{label} ID"))?;
        let mut reader = self.datastore.reader().await?;
        self.must_exist(&mut reader.conn(), kind, id).await?;
        Ok(id)
    }

    /// The find endpoints: exactly one match, else 404.
    pub async fn find(&self, kinds: &[EntityKind], params: &ListParams) -> Result<Json> {
        let spec = kinds[0].spec();
        let label = label_of(kinds);
        let needs_parent = spec.parent.is_some();
        let name = match (&params.name, &params.parent_resource_id) {
            (Some(name), Some(parent)) if needs_parent => Some(format!("{}:{name}", parse_id(parent, "parentResourceId")?)),
            (Some(name), _) if !needs_parent => Some(name.clone()),
            _ => None,
        };
        if name.is_none() && params.external_id.is_none() {
            let expected = if needs_parent { "(name and parentResourceId) or externalId" } else { "name or externalId" };
            return Err(Error::bad_request(format!("invalid parameters call, supply either {expected}")));
        }
        let type_ids: Vec<i64> = kinds.iter().map(|k| self.type_id(*k)).collect();
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let mut nodes =
            self.store.find(&mut conn, spec.node, &type_ids, name.as_deref(), params.external_id.as_deref(), 2).await?;
        self.fill_parent_ids(&mut conn, &mut nodes).await?;
        match nodes.len() {
            1 => {
                let node = nodes.remove(0);
                Ok(codec::encode(self.api, self.kind_of(&node, kinds).expect("type filtered").spec(), &node))
            }
            0 => Err(Error::not_found(format!("no {label} found for {}", describe(params)))),
            _ => Err(Error::not_found(format!("multiple {label}s found for {}", describe(params)))),
        }
    }
}

fn int_property(node: &Node, name: &str) -> Option<i64> {
    match node.properties.typed.get(name) {
        Some(Value::Int(v)) => Some(*v),
        _ => None,
    }
}

fn label_of(kinds: &[EntityKind]) -> &'static str {
    if kinds.len() > 1 {
        "artifact"
    } else {
        kinds[0].spec().label
    }
}

fn describe(params: &ListParams) -> String {
    let mut parts = Vec::new();
    if let Some(name) = &params.name {
        parts.push(format!("name {name:?}"));
    }
    if let Some(parent) = &params.parent_resource_id {
        parts.push(format!("parentResourceId {parent}"));
    }
    if let Some(external_id) = &params.external_id {
        parts.push(format!("externalId {external_id:?}"));
    }
    parts.join(", ")
}
