//! Creates and updates: each one transaction that checks everything before it writes.

use embedmd::store::{Conn, NewNode, Node, NodeFields, Properties, Under, Value};
use serde_json::Value as Json;

use super::{label_of, now_ms, parent_link, Registry};
use crate::registry::codec::{self, parse_id, Draft, Schema, Stored};
use crate::registry::error::{Error, Result};
use crate::registry::spec::{Access, EntityKind, Field, Place, Spec, HIDDEN_LINKS};

/// A create checked and ready to write: its row, its properties, the parent it hangs under
/// and its name as the body gave it.
pub(super) struct Checked {
    pub fields: NodeFields,
    pub properties: Properties,
    pub parent: Option<(EntityKind, i64)>,
    pub name: String,
}

/// How a create was answered: upstream's nested artifact upsert says 200 for most kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
}

impl Registry {
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

    /// A model version and its model artifact, under a new model (a `RegisteredModelCreate`
    /// body) or an existing one, in one transaction: all of them are written or none. Each body
    /// is decoded and written in turn, as the API's three creates would; a refusal of any of
    /// them, the database's included (a taken name), undoes what came before.
    pub async fn register(
        &self,
        model: Registering,
        version: &Json,
        artifact: &Json,
    ) -> std::result::Result<(i64, i64), Refused> {
        let (this, version, artifact) = (self.clone(), version.clone(), artifact.clone());
        self.datastore
            .write(move |conn| {
                let (this, model, version, artifact) = (this.clone(), model.clone(), version.clone(), artifact.clone());
                Box::pin(async move {
                    let model_id = match &model {
                        Registering::Under(id) => *id,
                        Registering::New(body) => {
                            let spec = EntityKind::RegisteredModel.spec();
                            let draft = codec::decode(this.api, spec, Schema::Create, body).map_err(Refused::of(Part::Model))?;
                            this.insert(conn, spec, draft, None, true).await.map_err(Refused::of(Part::Model))?.id
                        }
                    };
                    let spec = EntityKind::ModelVersion.spec();
                    let draft = codec::decode(this.api, spec, Schema::Full, &version).map_err(Refused::of(Part::Version))?;
                    let parent = Some((EntityKind::RegisteredModel, model_id));
                    let version_id = this.insert(conn, spec, draft, parent, true).await.map_err(Refused::of(Part::Version))?.id;
                    let kind = artifact_kind(&artifact).map_err(Refused::of(Part::Artifact))?;
                    let spec = kind.spec();
                    let draft = codec::decode(this.api, spec, Schema::Full, &artifact).map_err(Refused::of(Part::Artifact))?;
                    let parent = Some((EntityKind::ModelVersion, version_id));
                    this.insert(conn, spec, draft, parent, false).await.map_err(Refused::of(Part::Artifact))?;
                    Ok((model_id, version_id))
                })
            })
            .await
    }

    /// `POST /artifacts`: the Artifact oneOf, created without a parent.
    pub async fn create_artifact(&self, body: &Json) -> Result<Json> {
        self.create(artifact_kind(body)?, Schema::Full, body, None).await
    }

    /// Creates an entity in the caller's transaction. `path_parent` wins over the body's
    /// parent field; `defaults` fills the fields the body left out with their defaults.
    pub(super) async fn insert(
        &self,
        conn: &mut Conn<'_>,
        spec: &Spec,
        draft: Draft,
        path_parent: Option<(EntityKind, i64)>,
        defaults: bool,
    ) -> Result<Node> {
        let Checked { fields, properties, parent, name } = self.check_insert(conn, spec, draft, path_parent, defaults).await?;
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
            .map_err(|e| self.conflict(spec, &name, &properties, e))?;
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

    /// Checks a create against the entity's rules and works out its row and properties;
    /// nothing is written.
    pub(super) async fn check_insert(
        &self,
        conn: &mut Conn<'_>,
        spec: &Spec,
        draft: Draft,
        path_parent: Option<(EntityKind, i64)>,
        defaults: bool,
    ) -> Result<Checked> {
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
        // The parent named by the path wins over the body's parent field.
        if let (Some(parent), Some(id)) = (spec.parent, parent_id) {
            if let Some(Place::Property(p)) = parent.field.and_then(|f| spec.field(f)).map(|f| f.place) {
                properties.typed.insert(p.into(), Value::Int(id));
            }
        }
        Ok(Checked { fields, properties, parent, name })
    }

    /// Merges a draft onto a stored node and writes it back.
    pub(super) async fn rewrite(&self, conn: &mut Conn<'_>, spec: &Spec, node: Node, draft: Draft) -> Result<Node> {
        // Update times only move forward, even for two saves within one millisecond.
        let now = now_ms().max(node.update_time + 1);
        self.rewrite_at(conn, spec, node, draft, now).await
    }

    /// [`Registry::rewrite`] with the update time given.
    pub(super) async fn rewrite_at(&self, conn: &mut Conn<'_>, spec: &Spec, node: Node, draft: Draft, now: i64) -> Result<Node> {
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
        let name = codec::bare_name(&fields.name).to_owned();
        self.store
            .update(conn, spec.node, node.id, &fields, &properties, now)
            .await
            .map_err(|e| self.conflict(spec, &name, &properties, e))?;
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

    /// A unique-key violation on write is a duplicate name or external id, or, where the property
    /// table's collation folds names, two custom properties of the body that it holds as one.
    pub(super) fn conflict(&self, spec: &Spec, name: &str, properties: &Properties, e: embedmd::Error) -> Error {
        match e {
            e @ embedmd::Error::UniqueViolation(_)
                if self.datastore.dialect().property_names_fold_case() && e.is_primary_key_violation() =>
            {
                let names: Vec<&String> = properties.custom.keys().take(MAX_NAMES_SHOWN).collect();
                Error::bad_request(format!(
                    "two custom property names are one name to this database, whose collation ignores case, accents and \
                     trailing spaces; custom properties: {names:?}{}",
                    if properties.custom.len() > MAX_NAMES_SHOWN { " ..." } else { "" }
                ))
            }
            embedmd::Error::UniqueViolation(_) => {
                Error::Conflict(format!("{} with name {name:?} or the same externalId already exists: conflict", spec.label))
            }
            other => other.into(),
        }
    }
}

/// The model a [`Registry::register`] puts its version under.
#[derive(Debug, Clone)]
pub enum Registering {
    /// A new one, from a `RegisteredModelCreate` body.
    New(Json),
    /// An existing one, by id (a missing one is a 404, nothing written).
    Under(i64),
}

/// The part of a registration a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Model,
    Version,
    Artifact,
}

/// Why a registration wrote nothing; `part` is `None` for a failure of the database itself.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Refused {
    pub part: Option<Part>,
    #[source]
    pub error: Error,
}

impl Refused {
    fn of(part: Part) -> impl Fn(Error) -> Refused {
        move |error| Refused { part: Some(part), error }
    }
}

impl From<embedmd::Error> for Refused {
    fn from(e: embedmd::Error) -> Self {
        Refused { part: None, error: e.into() }
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

/// A draft's fields set on a node in memory (a metric history row's copy of a logged point).
pub(super) fn merge_fields(node: &mut NewNode, draft: &Draft) {
    for (field, value) in &draft.fields {
        apply(&mut node.fields, &mut node.properties, field, value.clone());
    }
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

/// How many custom property names an error message lists.
const MAX_NAMES_SHOWN: usize = 20;

/// The kind named by an Artifact oneOf body's `artifactType`.
pub(super) fn artifact_kind(body: &Json) -> Result<EntityKind> {
    body.get("artifactType").and_then(Json::as_str).and_then(EntityKind::from_artifact_type).ok_or_else(|| {
        Error::bad_request(
            "invalid artifact type, must be either model-artifact, doc-artifact, dataset-artifact, metric or parameter",
        )
    })
}
