//! The registry's operations, each one transaction for writes and a fixed number of queries
//! for reads, on top of the MLMD store.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use embedmd::store::{
    CmpOp, Column, Conn, Filter, FilterValue, ListQuery, Node, NodeFields, OrderColumn, Parent, Properties, Store, Target, Under,
    Value, ValueColumn,
};
use embedmd::Datastore;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::api::ApiVersion;
use super::codec::{self, parse_id, Draft, Schema, Stored};
use super::error::{Error, Result};
use super::filter;
use super::paging::{encode_token, ListParams, Page};
use super::spec::{Access, EntityKind, Field, Link, Place, Spec, ARTIFACT_KINDS, HIDDEN_LINKS};

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

/// Rows a list reads and encodes at a time: whatever its size, a list holds one chunk.
const LIST_CHUNK: usize = 500;

/// The answer of a list.
#[derive(Debug)]
pub enum Listing {
    /// The whole document, when the first chunk held every row.
    Page(Json),
    /// The document in pieces, each read from the database when the client has taken the one
    /// before. The first chunk was read before: its errors have their status; an error after
    /// it can only cut the stream short.
    Stream(mpsc::Receiver<Result<Vec<u8>>>),
}

/// A list between two chunks.
struct Cursor {
    registry: Registry,
    kinds: Vec<EntityKind>,
    /// Its `after` is the last row read.
    query: ListQuery,
    /// Rows the page still takes; `None`: every row.
    remaining: Option<usize>,
}

impl Cursor {
    /// The next chunk, encoded, and the page token when the list ends with it (`""`: no more
    /// rows).
    async fn next(&mut self) -> Result<(Vec<Json>, Option<String>)> {
        // The page's last chunk reads one row more, to learn whether another page follows.
        let limit = self.remaining.map_or(LIST_CHUNK, |r| (r + 1).min(LIST_CHUNK));
        self.query.limit = Some(limit as u32);
        let registry = &self.registry;
        let mut reader = registry.datastore.reader().await?;
        let mut conn = reader.conn();
        let mut nodes = registry.store.list(&mut conn, self.kinds[0].spec().node, &self.query).await?;
        let fetched = nodes.len();
        if let Some(remaining) = &mut self.remaining {
            nodes.truncate(*remaining);
            *remaining -= nodes.len();
        }
        if let Some(last) = nodes.last() {
            self.query.after = Some((last.id, self.query.order.value_of(last)));
        }
        let end = if fetched < limit {
            Some(String::new())
        } else if self.remaining == Some(0) && fetched > nodes.len() {
            self.query.after.map(|(id, value)| encode_token(id, value))
        } else {
            None
        };
        registry.fill_parent_ids(&mut conn, &mut nodes).await?;
        let items = nodes
            .iter()
            .map(|n| codec::encode(registry.api, registry.kind_of(n, &self.kinds).expect("type filtered").spec(), n))
            .collect();
        Ok((items, end))
    }

    /// Sends the document piece by piece, starting with the first chunk's `items`.
    async fn stream(mut self, mut items: Vec<Json>, page_size: i32, pieces: mpsc::Sender<Result<Vec<u8>>>) {
        // The same bytes as the whole document's (its keys are sorted, `items` first).
        let mut piece = br#"{"items":["#.to_vec();
        let mut size = 0usize;
        let mut end = None;
        loop {
            for item in &items {
                if size > 0 {
                    piece.push(b',');
                }
                serde_json::to_writer(&mut piece, item).expect("a JSON value serializes");
                size += 1;
            }
            if let Some(token) = end {
                let tail = format!(r#"],"nextPageToken":{},"pageSize":{page_size},"size":{size}}}"#, Json::String(token));
                piece.extend_from_slice(tail.as_bytes());
                let _ = pieces.send(Ok(piece)).await;
                return;
            }
            // A client gone away ends the list.
            if pieces.send(Ok(std::mem::take(&mut piece))).await.is_err() {
                return;
            }
            match self.next().await {
                Ok((next, next_end)) => (items, end) = (next, next_end),
                Err(e) => {
                    tracing::error!(error = ?e, "a list failed while streaming");
                    let _ = pieces.send(Err(e)).await;
                    return;
                }
            }
        }
    }
}

/// One try of an artifact upsert.
enum Attempt {
    Done(Written, Node),
    /// Another write took the name since it was looked up: try again with what it holds now.
    Again {
        seen: Option<i64>,
        draft: Draft,
    },
}

/// How a create was answered: upstream's nested artifact upsert says 200 for most kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
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

    /// Creates an entity. `parent` is the parent id taken from the path, which wins over the
    /// body's parent field.
    pub async fn create(&self, kind: EntityKind, schema: Schema, body: &Json, parent: Option<i64>) -> Result<Json> {
        let spec = kind.spec();
        let draft = codec::decode(self.api, spec, schema, body)?;
        let parent = parent.zip(spec.parent).map(|(id, p)| (p.kind, id));
        let defaults = schema != Schema::Full || spec.artifact_type.is_none();
        let this = self.clone();
        let node = self
            .datastore
            .write(move |conn| Box::pin(async move { this.insert(conn, spec, draft, parent, defaults).await }))
            .await?;
        Ok(codec::encode(self.api, spec, &node))
    }

    /// Applies a PATCH: only the fields the body carries change.
    pub async fn update(&self, kinds: &[EntityKind], id: &str, body: &Json) -> Result<Json> {
        let label = label_of(kinds);
        let id = parse_id(id, &format!("{label} ID"))?;
        let (this, kinds, body) = (self.clone(), kinds.to_vec(), body.clone());
        let (spec, node) = self
            .datastore
            .write(move |conn| {
                Box::pin(async move {
                    // Locked before it is read: a concurrent PATCH of another field is then not undone.
                    this.store.lock(conn, kinds[0].spec().node, id).await?;
                    let (kind, node) = this.load(conn, &kinds, id, label).await?;
                    let spec = kind.spec();
                    if spec.artifact_type.is_some() && kinds.len() > 1 {
                        // The oneOf body must name its kind; the codec refuses a different one.
                        artifact_kind(&body)?;
                    }
                    let draft = codec::decode(this.api, spec, Schema::Update, &body)?;
                    Ok::<_, Error>((spec, this.rewrite(conn, spec, node, draft).await?))
                })
            })
            .await?;
        Ok(codec::encode(self.api, spec, &node))
    }

    /// `POST /model_versions/{id}/artifacts` and `POST /experiment_runs/{id}/artifacts`: create
    /// under the parent, or update the artifact named by `id` (or, for a run's metrics and
    /// parameters, by name); either way the artifact ends up attributed to the parent.
    pub async fn upsert_artifact(&self, parent_kind: EntityKind, parent_id: &str, body: &Json) -> Result<(Written, Json)> {
        let parent_label = parent_kind.spec().label;
        let parent_id = parse_id(parent_id, &format!("{parent_label} ID"))?;
        let kind = artifact_kind(body)?;
        let spec = kind.spec();
        let mut draft = codec::decode(self.api, spec, Schema::Full, body)?;
        let rules = parent_kind.spec().log.as_ref();
        let history = rules.and_then(|r| r.history.as_ref()).filter(|h| h.of == kind);
        if let Some(required) = history.map(|h| h.required).filter(|field| draft.get(field).is_none()) {
            return Err(Error::bad_request(format!("{} {required} is required", spec.label)));
        }
        let by_name = rules.is_some_and(|r| r.upserted_by_name.contains(&kind));
        let named = draft.name.as_ref().filter(|_| by_name && draft.id.is_none()).map(|name| format!("{parent_id}:{name}"));
        // The artifact rewritten is locked before anything is read, against a PATCH of it
        // running meanwhile. One the body names is looked up first, outside the transaction:
        // locking a name that does not exist yet would lock an index gap on MySQL, where other
        // runs' first logs then deadlock.
        let mut seen = match (&draft.id, &named) {
            (Some(id), _) => Some(parse_id(id, "artifact ID")?),
            (None, Some(stored)) => self.id_named(&mut self.datastore.reader().await?.conn(), kind, stored).await?,
            (None, None) => None,
        };
        loop {
            let (this, named) = (self.clone(), named.clone());
            let attempt = self
                .datastore
                .write(move |conn| {
                    Box::pin(async move {
                        // Every lock comes before any read, so that MySQL's snapshot is taken after
                        // the waits; parent first, then artifact, so that two upserts cannot deadlock.
                        if rules.is_some() {
                            // Logs to one parent go one at a time: the by-name lookup below then sees
                            // the previous log, and history rows get distinct update times.
                            this.store.lock(conn, parent_kind.spec().node, parent_id).await?;
                        }
                        if let Some(id) = seen {
                            this.store.lock(conn, spec.node, id).await?;
                        }
                        let existing = match &named {
                            Some(stored) => this.id_named(conn, kind, stored).await?,
                            None => seen,
                        };
                        if existing != seen {
                            // Logged under this name since the lookup: once more, with it locked.
                            return Ok(Attempt::Again { seen: existing, draft });
                        }
                        if let Some(rules) = rules {
                            let (_, parent) = this.load(conn, &[parent_kind], parent_id, parent_label).await?;
                            let custom = draft.custom.get_or_insert_with(Default::default);
                            let grandparent = parent_kind.spec().parent_property().and_then(|p| int_property(&parent, p));
                            if let Some(grandparent) = grandparent {
                                custom.insert(rules.grandparent_link.property.into(), Value::Int(grandparent));
                            }
                            custom.insert(rules.parent_link.property.into(), Value::Int(parent_id));
                        }
                        let (written, node) = match existing {
                            Some(id) => {
                                if rules.is_none() {
                                    this.must_exist(conn, parent_kind, parent_id).await?;
                                }
                                let (existing_kind, node) = this.load(conn, &ARTIFACT_KINDS, id, "artifact").await?;
                                if existing_kind != kind {
                                    let (from, to) = (existing_kind.spec().artifact_type, spec.artifact_type);
                                    return Err(codec::type_change(from.unwrap_or_default(), to.unwrap_or_default()));
                                }
                                let node = this.rewrite(conn, spec, node, draft).await?;
                                this.store.link(conn, Parent::Attribution(parent_id), node.id).await?;
                                (Written::Updated, node)
                            }
                            None => {
                                (Written::Created, this.insert(conn, spec, draft, Some((parent_kind, parent_id)), false).await?)
                            }
                        };
                        if let Some(history) = history {
                            this.record_history(conn, history.row, parent_id, &node).await?;
                        }
                        Ok::<_, Error>(Attempt::Done(written, node))
                    })
                })
                .await?;
            match attempt {
                Attempt::Again { seen: now_seen, draft: returned } => (seen, draft) = (now_seen, returned),
                Attempt::Done(written, node) => {
                    // Upstream answers 201 only for new model and doc artifacts.
                    let status = match (written, kind) {
                        (Written::Created, EntityKind::ModelArtifact | EntityKind::DocArtifact) => Written::Created,
                        _ => Written::Updated,
                    };
                    return Ok((status, codec::encode(self.api, spec, &node)));
                }
            }
        }
    }

    /// The id of the artifact of `kind` stored under `name`, if there is one.
    async fn id_named(&self, conn: &mut Conn<'_>, kind: EntityKind, name: &str) -> Result<Option<i64>> {
        let found = self.store.find(conn, kind.spec().node, &[self.type_id(kind)], Some(name), None, 1).await?;
        Ok(found.first().map(|n| n.id))
    }

    /// A history row of a logged artifact (a metric under a run), named
    /// `<parent id>:<name>__<update time>`, attributed to the parent.
    async fn record_history(&self, conn: &mut Conn<'_>, row: EntityKind, parent_id: i64, logged: &Node) -> Result<()> {
        let name = codec::bare_name(logged.name.as_deref().unwrap_or_default()).to_owned();
        let stored = format!("{parent_id}:{name}__{}", logged.update_time);
        let room = codec::MAX_NAME_CHARS - (stored.chars().count() - name.chars().count());
        // Refused before anything is committed: the caller's transaction, the logged metric
        // included, rolls back.
        codec::bounded("name", name, room).map_err(|e| {
            let label = row.spec().label;
            Error::bad_request(format!(
                "{e} here: the {label} row \"<run id>:<name>__<update time>\" must fit in {} characters",
                codec::MAX_NAME_CHARS
            ))
        })?;
        let fields = NodeFields { type_id: self.type_id(row), name: stored, external_id: None, uri: None, state: logged.state };
        let run = EntityKind::ExperimentRun;
        let under = Under { parent: Parent::Attribution(parent_id), parent_types: vec![self.type_id(run)] };
        match self.store.insert(conn, row.spec().node, &fields, &logged.properties, logged.update_time, Some(&under)).await? {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!("no {} found for id {parent_id}", run.spec().label))),
        }
    }

    /// `POST /artifacts`: the Artifact oneOf, created without a parent.
    pub async fn create_artifact(&self, body: &Json) -> Result<Json> {
        self.create(artifact_kind(body)?, Schema::Full, body, None).await
    }

    async fn insert(
        &self,
        conn: &mut Conn<'_>,
        spec: &Spec,
        draft: Draft,
        path_parent: Option<(EntityKind, i64)>,
        defaults: bool,
    ) -> Result<Node> {
        let from_body = spec.parent.and_then(|p| p.field.map(|f| (p.kind, f))).and_then(|(kind, f)| match draft.get(f) {
            Some(Stored::Property(Value::Int(id))) => Some((kind, *id)),
            _ => None,
        });
        let parent = spec.parent.and(path_parent.or(from_body));
        let parent_id = parent.map(|(_, id)| id);
        let parent_field = spec.parent.and_then(|p| p.field);
        let missing = spec.fields.iter().find(|f| {
            let given = draft.get(f.json).is_some() || (parent_field == Some(f.json) && parent_id.is_some());
            f.required && !given
        });
        if let Some(field) = missing {
            return Err(Error::Unprocessable(format!("required field '{}' is zero value.", field.json)));
        }
        let name = match draft.name.clone() {
            Some(name) if !name.is_empty() => name,
            _ if spec.name_required => {
                return Err(Error::Unprocessable("required field 'name' is zero value.".into()));
            }
            _ => uuid::Uuid::new_v4().to_string(),
        };
        self.check_references(conn, spec, &draft).await?;
        // Children are stored as "<parent id>:<name>"; parentless artifacts get a random prefix
        // so that the same name can be created twice, as upstream does.
        let stored_name = match (parent_id, spec.artifact_type) {
            (Some(p), _) => format!("{p}:{name}"),
            (None, Some(_)) => format!("{}:{name}", uuid::Uuid::new_v4()),
            (None, None) => name.clone(),
        };
        // The prefix counts against the column's length too.
        let room = codec::MAX_NAME_CHARS - (stored_name.chars().count() - name.chars().count());
        codec::bounded("name", name.clone(), room)?;
        let mut fields = NodeFields {
            type_id: self.type_id(spec.kind),
            name: stored_name,
            external_id: draft.external_id.clone(),
            uri: None,
            state: None,
        };
        let mut properties = Properties { custom: draft.custom.clone().unwrap_or_default(), ..Properties::default() };
        if let Some(description) = &draft.description {
            properties.typed.insert("description".into(), Value::String(description.clone()));
        }
        for field in spec.fields {
            let value = match draft.get(field.json) {
                Some(v) => v.clone(),
                None => match field.default.filter(|_| defaults) {
                    Some(default) => codec::decode_field(self.api, field, &Json::String(default.into()))?,
                    None => continue,
                },
            };
            apply(&mut fields, &mut properties, field, value);
        }
        check_run_times(spec, &properties)?;
        self.check_custom_names(&properties)?;
        // The parent named by the path wins over the body's parent field.
        if let (Some(parent), Some(id)) = (spec.parent, parent_id) {
            if let Some(Place::Property(p)) = parent.field.and_then(|f| spec.field(f)).map(|f| f.place) {
                properties.typed.insert(p.into(), Value::Int(id));
            }
        }
        let now = now_ms();
        // The insert itself finds the parent, or writes nothing.
        let under = spec
            .parent
            .zip(parent)
            .map(|(p, (kind, id))| Under { parent: parent_link(p.link, id), parent_types: vec![self.type_id(kind)] });
        let id = self
            .store
            .insert(conn, spec.node, &fields, &properties, now, under.as_ref())
            .await
            .map_err(|e| conflict(spec, &name, e))?;
        let Some(id) = id else {
            let (kind, id) = parent.expect("only a parent can be missing");
            return Err(Error::not_found(format!("no {} found for id {id}", kind.spec().label)));
        };
        Ok(Node {
            id,
            type_id: fields.type_id,
            name: Some(fields.name),
            external_id: fields.external_id,
            uri: fields.uri,
            state: fields.state,
            create_time: now,
            update_time: now,
            properties,
        })
    }

    /// Merges a draft onto a stored node and writes it back.
    async fn rewrite(&self, conn: &mut Conn<'_>, spec: &Spec, node: Node, draft: Draft) -> Result<Node> {
        self.check_references(conn, spec, &draft).await?;
        let mut fields = NodeFields {
            type_id: node.type_id,
            name: node.name.clone().unwrap_or_default(),
            external_id: draft.external_id.clone().or(node.external_id.clone()),
            uri: node.uri.clone(),
            state: node.state,
        };
        let mut properties = node.properties.clone();
        if let Some(custom) = draft.custom.clone() {
            // Hidden experiment links survive a replacement of the visible map.
            let hidden: Vec<(String, Value)> = properties
                .custom
                .iter()
                .filter(|(k, _)| HIDDEN_LINKS.iter().any(|link| link.property == k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            properties.custom = custom;
            properties.custom.extend(hidden);
        }
        if let Some(description) = &draft.description {
            properties.typed.insert("description".into(), Value::String(description.clone()));
        }
        for (field, value) in &draft.fields {
            if field.access == Access::Mutable {
                apply(&mut fields, &mut properties, field, value.clone());
            }
        }
        check_run_times(spec, &properties)?;
        self.check_custom_names(&properties)?;
        // Update times only move forward, even for two saves within one millisecond.
        let now = now_ms().max(node.update_time + 1);
        let name = codec::bare_name(&fields.name).to_owned();
        self.store.update(conn, spec.node, node.id, &fields, &properties, now).await.map_err(|e| conflict(spec, &name, e))?;
        Ok(Node { external_id: fields.external_id, uri: fields.uri, state: fields.state, update_time: now, properties, ..node })
    }

    /// Ids a body points at (beyond its parent) must exist: upstream stores them unchecked.
    async fn check_references(&self, conn: &mut Conn<'_>, spec: &Spec, draft: &Draft) -> Result<()> {
        for (field, kind) in spec.references() {
            if let Some(Stored::Property(Value::Int(id))) = draft.get(field.json) {
                self.must_exist(conn, kind, *id).await?;
            }
        }
        Ok(())
    }

    /// Where property names fold case, two custom properties differing only by case would be
    /// one row: refused before anything is written, rather than as a unique-key conflict.
    fn check_custom_names(&self, properties: &Properties) -> Result<()> {
        if !self.datastore.dialect().property_names_fold_case() {
            return Ok(());
        }
        let mut folded = HashMap::new();
        for name in properties.custom.keys() {
            if let Some(other) = folded.insert(name.to_lowercase(), name) {
                return Err(Error::bad_request(format!(
                    "custom properties {other:?} and {name:?} differ only by case, which this database does not tell apart"
                )));
            }
        }
        Ok(())
    }

    /// One page of entities of `kinds`, optionally the children of a parent.
    pub async fn list(&self, kinds: &[EntityKind], parent: Option<(Link, i64)>, params: &ListParams) -> Result<Listing> {
        self.list_filtered(kinds, parent, params, Vec::new()).await
    }

    /// [`Registry::list`] with conditions of the endpoint's own ANDed to the filterQuery.
    async fn list_filtered(
        &self,
        kinds: &[EntityKind],
        parent: Option<(Link, i64)>,
        params: &ListParams,
        mut conditions: Vec<Filter>,
    ) -> Result<Listing> {
        let page = Page::parse(params)?;
        conditions.extend(filter::resolve(kinds, params.filter_query.as_deref())?);
        let filter = match conditions.len() {
            0 => None,
            1 => conditions.pop(),
            _ => Some(Filter::And(conditions)),
        };
        let prefix = parent.map(|(_, id)| format!("{id}:")).unwrap_or_default();
        let query = ListQuery {
            type_ids: kinds.iter().map(|k| self.type_id(*k)).collect(),
            parent: parent.map(|(link, id)| parent_link(link, id)),
            name: params.name.as_ref().filter(|_| parent.is_some()).map(|n| format!("{prefix}{n}")),
            external_id: params.external_id.clone().filter(|_| parent.is_some()),
            order: page.order,
            descending: page.descending,
            after: page.after,
            limit: None,
            filter,
        };
        let remaining = usize::try_from(page.size).ok().filter(|s| *s > 0);
        let mut cursor = Cursor { registry: self.clone(), kinds: kinds.to_vec(), query, remaining };
        match cursor.next().await? {
            (items, Some(token)) => {
                Ok(Listing::Page(json!({ "items": items, "nextPageToken": token, "pageSize": page.size, "size": items.len() })))
            }
            (items, None) => {
                // One piece ahead at most: the database is read as fast as the client takes.
                // In the request's span, so that its lines carry the request id.
                let (pieces, receiver) = mpsc::channel(1);
                tokio::spawn(cursor.stream(items, page.size, pieces).in_current_span());
                Ok(Listing::Stream(receiver))
            }
        }
    }

    /// Checks that a parent exists before listing its children (404 otherwise).
    pub async fn list_children(
        &self,
        parent_kind: EntityKind,
        parent_id: &str,
        kinds: &[EntityKind],
        link: Link,
        params: &ListParams,
    ) -> Result<Listing> {
        let id = self.existing(parent_kind, parent_id).await?;
        self.list(kinds, Some((link, id)), params).await
    }

    /// The id of an entity that must exist (400 for a malformed id, 404 for a missing one).
    async fn existing(&self, kind: EntityKind, id: &str) -> Result<i64> {
        let label = kind.spec().label;
        let id = parse_id(id, &format!("{label} ID"))?;
        let mut reader = self.datastore.reader().await?;
        self.must_exist(&mut reader.conn(), kind, id).await?;
        Ok(id)
    }

    /// `GET /experiment_runs[/{id}]/metric_history`: the rows each metric upsert left, by metric
    /// `name` and by `stepIds` (`1,2,3`), shown as metrics.
    pub async fn metric_history(&self, run: Option<&str>, params: &ListParams) -> Result<Listing> {
        let mut conditions = Vec::new();
        if let Some(name) = params.name.as_deref().filter(|n| !n.is_empty()) {
            conditions.push(Filter::Compare {
                target: Target::Column(Column::Name),
                op: CmpOp::Like,
                value: FilterValue::Text(format!("%:{}\\_\\_%", filter::like_literal(name))),
            });
        }
        if let Some(steps) = params.step_ids.as_deref().filter(|s| !s.is_empty()) {
            // As long as an IN list may be: each step is a bind value.
            let count = steps.split(',').count();
            if count > filter_query::MAX_LIST_ITEMS {
                let limit = filter_query::MAX_LIST_ITEMS;
                return Err(Error::bad_request(format!("stepIds has {count} values (the limit is {limit})")));
            }
            let ids = steps
                .split(',')
                .map(|s| s.trim().parse::<i32>().map(|v| FilterValue::Int(i64::from(v))))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| Error::bad_request(format!("invalid stepIds {steps:?}: expected integers separated by commas")))?;
            conditions.push(Filter::Compare {
                target: Target::Property { name: "step".into(), custom: false, columns: vec![ValueColumn::Int] },
                op: CmpOp::In,
                value: FilterValue::List(ids),
            });
        }
        // `name` is the metric's name here, not a stored name.
        let params = ListParams { name: None, external_id: None, ..params.clone() };
        let parent = match run {
            Some(run) => Some((Link::Attribution, self.existing(EntityKind::ExperimentRun, run).await?)),
            None => None,
        };
        self.list_filtered(&[EntityKind::MetricHistory], parent, &params, conditions).await
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

    /// `GET /inference_services/{id}/model`.
    pub async fn inference_service_model(&self, id: &str) -> Result<Json> {
        let id = parse_id(id, "inference service ID")?;
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let (_, service) = self.load(&mut conn, &[EntityKind::InferenceService], id, "inference service").await?;
        let model_id = int_property(&service, "registered_model_id")
            .ok_or_else(|| Error::not_found(format!("inference service {id} has no registered model")))?;
        let (_, model) = self.load(&mut conn, &[EntityKind::RegisteredModel], model_id, "registered model").await?;
        Ok(codec::encode(self.api, EntityKind::RegisteredModel.spec(), &model))
    }

    /// `GET /inference_services/{id}/version`: its version, else the model's newest one.
    pub async fn inference_service_version(&self, id: &str) -> Result<Json> {
        let id = parse_id(id, "inference service ID")?;
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let (_, service) = self.load(&mut conn, &[EntityKind::InferenceService], id, "inference service").await?;
        let version = match int_property(&service, "model_version_id") {
            Some(version_id) => self.load(&mut conn, &[EntityKind::ModelVersion], version_id, "model version").await?.1,
            None => {
                let model_id = int_property(&service, "registered_model_id")
                    .ok_or_else(|| Error::not_found(format!("inference service {id} has no registered model")))?;
                let query = ListQuery {
                    type_ids: vec![self.type_id(EntityKind::ModelVersion)],
                    parent: Some(Parent::Context(model_id)),
                    name: None,
                    external_id: None,
                    order: OrderColumn::CreateTime,
                    descending: true,
                    after: None,
                    limit: Some(1),
                    filter: None,
                };
                let mut latest = self.store.list(&mut conn, EntityKind::ModelVersion.spec().node, &query).await?;
                self.fill_parent_ids(&mut conn, &mut latest).await?;
                latest.pop().ok_or_else(|| Error::not_found(format!("no model version found for registered model {model_id}")))?
            }
        };
        Ok(codec::encode(self.api, EntityKind::ModelVersion.spec(), &version))
    }
}

/// A run cannot end before it starts.
fn check_run_times(spec: &Spec, properties: &Properties) -> Result<()> {
    let millis = |name: &str| match properties.typed.get(name) {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        _ => None,
    };
    if spec.kind == EntityKind::ExperimentRun {
        if let (Some(start), Some(end)) = (millis("start_time_since_epoch"), millis("end_time_since_epoch")) {
            if end < start {
                return Err(Error::bad_request(format!("endTimeSinceEpoch {end} is before startTimeSinceEpoch {start}")));
            }
        }
    }
    Ok(())
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

fn apply(fields: &mut NodeFields, properties: &mut Properties, field: &Field, value: Stored) {
    match (field.place, value) {
        (Place::Uri, Stored::Uri(uri)) => fields.uri = Some(uri),
        (Place::StateColumn, Stored::State(state)) => fields.state = Some(state),
        (Place::Property(name), Stored::Property(v)) => {
            properties.typed.insert(name.into(), v);
        }
        _ => unreachable!("codec decodes each place to its own variant"),
    }
}

/// A unique-key violation on write is a duplicate name or external id.
fn conflict(spec: &Spec, name: &str, e: embedmd::Error) -> Error {
    match e {
        embedmd::Error::UniqueViolation(_) => {
            Error::Conflict(format!("{} with name {name:?} or the same externalId already exists: conflict", spec.label))
        }
        other => other.into(),
    }
}

/// The kind named by an Artifact oneOf body's `artifactType`.
fn artifact_kind(body: &Json) -> Result<EntityKind> {
    body.get("artifactType").and_then(Json::as_str).and_then(EntityKind::from_artifact_type).ok_or_else(|| {
        Error::bad_request(
            "invalid artifact type, must be either model-artifact, doc-artifact, dataset-artifact, metric or parameter",
        )
    })
}
