//! MLflow's model registry concepts over the Kubeflow entities, one set of data (docs/mlflow.md):
//! an MLflow registered model is a `RegisteredModel`; an MLflow model version is a
//! `ModelVersion` (named by its version number) with a `ModelArtifact` whose `uri` is MLflow's
//! `source`; tags, aliases, stages and run links are custom properties under the reserved
//! [`PREFIX`]. Each call is one transaction for writes and a fixed number of queries for reads.

use std::collections::{BTreeMap, HashMap};

use embedmd::store::{
    CmpOp, Column, Conn, Filter, FilterValue, ListQuery, Node, NodeKind, OrderColumn, Parent, Target, Value, ValueColumn,
};

use super::{now_ms, Registry};
use crate::registry::codec::{bare_name, bounded, Draft, Stored, MAX_NAME_CHARS, MAX_URI_BYTES};
use crate::registry::error::{Error, Result};
use crate::registry::filter::like_literal;
use crate::registry::spec::EntityKind;

/// Custom properties whose names start with this belong to the MLflow mapping; Kubeflow
/// clients see them beside their own.
pub const PREFIX: &str = "mlflow.";
const TAG: &str = "mlflow.tag.";
const ALIAS: &str = "mlflow.alias.";
const STAGE: &str = "mlflow.stage";
const RUN_ID: &str = "mlflow.run_id";
const RUN_LINK: &str = "mlflow.run_link";
const SOURCE: &str = "mlflow.source";
/// The tag MLflow marks prompts with (prompts are registered models to its store).
const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";
/// The highest version number MLflow assigned under a model: numbers are never reused.
const LAST_VERSION: &str = "mlflow.last_version";

/// MLflow's stages, canonical spelling first.
pub const STAGES: [&str; 4] = ["None", "Staging", "Production", "Archived"];
const ARCHIVED: &str = "Archived";

/// Versions a model's `latest_versions` is computed from: the newest this many (by creation).
pub const LATEST_SCAN: u32 = 1000;
/// Version numbers tried past the model's last one when a Kubeflow client took some.
const MAX_NUMBER_PROBES: i64 = 100;
/// Model artifacts read per version of a page for its source: MLflow's create makes one; a
/// Kubeflow client may add more.
const MODEL_ARTIFACTS_READ_PER_VERSION: u32 = 4;
/// Models a version search's name condition may match (`name LIKE ...` over many models).
pub const MAX_MODELS_PER_VERSION_FILTER: u32 = 1000;
/// Versions `transition-stage` with `archive_existing_versions` moves at once.
const MAX_ARCHIVED_AT_ONCE: u32 = 1000;

/// An MLflow registered model.
#[derive(Debug, Clone)]
pub struct MlModel {
    pub name: String,
    pub description: Option<String>,
    pub created: i64,
    pub updated: i64,
    pub tags: Vec<(String, String)>,
    /// (alias, version)
    pub aliases: Vec<(String, String)>,
    pub latest: Vec<MlVersion>,
}

/// An MLflow model version.
#[derive(Debug, Clone)]
pub struct MlVersion {
    pub model: String,
    pub version: String,
    pub created: i64,
    pub updated: i64,
    pub user_id: Option<String>,
    pub stage: String,
    pub description: Option<String>,
    /// MLflow's `source` as the client gave it (a Kubeflow version's artifact URI).
    pub source: Option<String>,
    /// Where the model's files are: the model artifact's URI (for a `models:/` source, the
    /// referenced version's).
    pub storage: Option<String>,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub tags: Vec<(String, String)>,
    pub aliases: Vec<String>,
}

/// What a version is created from.
#[derive(Debug, Clone, Default)]
pub struct NewVersion {
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// A term of MLflow's search syntax, already parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchField {
    /// The registered model's name.
    Name,
    Tag(String),
    RunId,
    Source,
    VersionNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOp {
    Eq,
    Ne,
    Like,
    ILike,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: SearchField,
    pub op: SearchOp,
    /// One value, or the list of `IN`.
    pub values: Vec<String>,
}

/// The order of a search: by what, and which way; ties are broken by creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOrder {
    Name,
    Created,
    Updated,
    /// Creation order stands for version numbers, which MLflow assigns increasing.
    Version,
}

/// One page of a search: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy)]
pub struct SearchPage {
    pub order: SearchOrder,
    pub descending: bool,
    pub offset: u32,
    pub limit: u32,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Double(d) => Some(d.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Bytes(_) => None,
    }
}

fn prefixed(custom: &BTreeMap<String, Value>, prefix: &str) -> Vec<(String, String)> {
    custom
        .range(prefix.to_owned()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .filter_map(|(k, v)| Some((k[prefix.len()..].to_owned(), text(v)?)))
        .collect()
}

fn typed_text(node: &Node, name: &str) -> Option<String> {
    node.properties.typed.get(name).and_then(text)
}

fn custom_text(node: &Node, name: &str) -> Option<String> {
    node.properties.custom.get(name).and_then(text)
}

pub(super) fn archived(node: &Node) -> bool {
    typed_text(node, "state").as_deref() == Some("ARCHIVED")
}

/// The canonical spelling of a stage (MLflow accepts any case), or 400.
pub fn canonical_stage(stage: &str) -> Result<&'static str> {
    STAGES.iter().copied().find(|s| s.eq_ignore_ascii_case(stage)).ok_or_else(|| {
        Error::bad_request(format!("Invalid Model Version stage: {stage}. Value must be one of {}.", STAGES.join(", ")))
    })
}

fn model_of(node: &Node, latest: Vec<MlVersion>) -> MlModel {
    MlModel {
        name: node.name.clone().unwrap_or_default(),
        description: typed_text(node, "description"),
        created: node.create_time,
        updated: node.update_time,
        tags: prefixed(&node.properties.custom, TAG),
        aliases: prefixed(&node.properties.custom, ALIAS),
        latest,
    }
}

fn version_of(node: &Node, model: &Node, storage: Option<String>) -> MlVersion {
    let version = bare_name(node.name.as_deref().unwrap_or_default()).to_owned();
    let aliases = prefixed(&model.properties.custom, ALIAS).into_iter().filter(|(_, v)| *v == version).map(|(a, _)| a).collect();
    // A version Kubeflow archived is MLflow's "Archived", whatever stage it had.
    let stage =
        if archived(node) { ARCHIVED.to_owned() } else { custom_text(node, STAGE).unwrap_or_else(|| STAGES[0].to_owned()) };
    MlVersion {
        model: model.name.clone().unwrap_or_default(),
        version,
        created: node.create_time,
        updated: node.update_time,
        user_id: typed_text(node, "author"),
        stage,
        description: typed_text(node, "description"),
        source: custom_text(node, SOURCE).or_else(|| storage.clone()),
        storage: storage.or_else(|| custom_text(node, SOURCE)),
        run_id: custom_text(node, RUN_ID),
        run_link: custom_text(node, RUN_LINK),
        tags: prefixed(&node.properties.custom, TAG),
        aliases,
    }
}

/// The newest version of each stage among `versions` (any order), by creation, which is version
/// order for MLflow's numbers; listed oldest first as MLflow's get lists them, or by stage name
/// as its search does.
fn latest_per_stage(mut versions: Vec<(i64, MlVersion)>, by_stage: bool) -> Vec<MlVersion> {
    versions.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (_, v) in versions {
        if !seen.contains(&v.stage) {
            seen.push(v.stage.clone());
            out.push(v);
        }
    }
    out.reverse();
    if by_stage {
        out.sort_by(|a, b| a.stage.cmp(&b.stage));
    }
    out
}

fn model_not_found(name: &str) -> Error {
    Error::not_found(format!("Registered Model with name={name} not found"))
}

fn version_not_found(name: &str, version: &str) -> Error {
    Error::not_found(format!("Model Version (name={name}, version={version}) not found"))
}

fn prop(name: &str, custom: bool, column: ValueColumn, op: CmpOp, value: FilterValue) -> Filter {
    Filter::Compare { target: Target::Property { name: name.to_owned(), custom, columns: vec![column] }, op, value }
}

fn text_values(values: &[String]) -> FilterValue {
    FilterValue::List(values.iter().cloned().map(FilterValue::Text).collect())
}

/// A condition on a text target: `=`, `!=`, LIKE, ILIKE, IN, NOT IN.
fn text_filter(make: &dyn Fn(CmpOp, FilterValue) -> Filter, op: SearchOp, values: &[String]) -> Filter {
    let one = || FilterValue::Text(values.first().cloned().unwrap_or_default());
    match op {
        SearchOp::Eq => make(CmpOp::Eq, one()),
        SearchOp::Ne => make(CmpOp::Ne, one()),
        SearchOp::Like => make(CmpOp::Like, one()),
        SearchOp::ILike => make(CmpOp::ILike, one()),
        SearchOp::In => make(CmpOp::In, text_values(values)),
        SearchOp::NotIn => Filter::And(values.iter().map(|v| make(CmpOp::Ne, FilterValue::Text(v.clone()))).collect()),
    }
}

/// A tag condition. MLflow's client adds `` tag.`mlflow.prompt.is_prompt` != 'true' `` to every
/// model search to leave prompts out; as in MLflow's store, that `!=` also matches models
/// without the tag (any other tag's `!=` needs the tag).
fn tag_filter(key: &str, op: SearchOp, values: &[String]) -> Result<Filter> {
    if matches!(op, SearchOp::In | SearchOp::NotIn) {
        return Err(unsupported("IN on a tag"));
    }
    let name = format!("{TAG}{key}");
    let make = |op, v| prop(&name, true, ValueColumn::String, op, v);
    if key == PROMPT_TAG && op == SearchOp::Ne {
        return Ok(Filter::Not(Box::new(text_filter(&make, SearchOp::Eq, values))));
    }
    Ok(text_filter(&make, op, values))
}

/// The versions of the models `ids`: one model's through its parent link (a keyed read), several
/// models' through one subquery on the links.
fn children_of(ids: &[i64]) -> (Option<Parent>, Option<Filter>) {
    match ids {
        [one] => (Some(Parent::Context(*one)), None),
        many => (None, Some(Filter::ChildOf(many.to_vec()))),
    }
}

fn and(mut filters: Vec<Filter>) -> Option<Filter> {
    match filters.len() {
        0 => None,
        1 => filters.pop(),
        _ => Some(Filter::And(filters)),
    }
}

fn unsupported(what: &str) -> Error {
    Error::bad_request(format!("Invalid filter: {what} is not supported by this server"))
}

impl Registry {
    fn rm_type(&self) -> i64 {
        self.type_id(EntityKind::RegisteredModel)
    }

    fn mv_type(&self) -> i64 {
        self.type_id(EntityKind::ModelVersion)
    }

    async fn model_node(&self, conn: &mut Conn<'_>, name: &str) -> Result<Node> {
        let mut nodes = self.store.find(conn, NodeKind::Context, &[self.rm_type()], Some(name), None, 1).await?;
        nodes.pop().ok_or_else(|| model_not_found(name))
    }

    /// A model's id, read before its write transaction: on MySQL a read inside the transaction
    /// before [`Registry::locked_model`]'s lock would fix the snapshot the transaction reads
    /// before the previous writer of the model committed.
    async fn model_id(&self, name: &str) -> Result<i64> {
        let mut reader = self.datastore.reader().await?;
        Ok(self.model_node(&mut reader.conn(), name).await?.id)
    }

    /// The model `id` locked for the rest of the transaction, then read; 404 if it was deleted
    /// or renamed since its id was read.
    async fn locked_model(&self, conn: &mut Conn<'_>, id: i64, name: &str) -> Result<Node> {
        self.store.lock(conn, NodeKind::Context, id).await?;
        let node = self.store.get(conn, NodeKind::Context, &[self.rm_type()], &[id]).await?.pop();
        node.filter(|n| n.name.as_deref() == Some(name)).ok_or_else(|| model_not_found(name))
    }

    async fn version_node(&self, conn: &mut Conn<'_>, model: &Node, name: &str, version: &str) -> Result<Node> {
        let stored = format!("{}:{version}", model.id);
        let mut nodes = self.store.find(conn, NodeKind::Context, &[self.mv_type()], Some(&stored), None, 1).await?;
        nodes.pop().ok_or_else(|| version_not_found(name, version))
    }

    /// The source of each version: the URI of its first model artifact.
    async fn sources(&self, conn: &mut Conn<'_>, versions: &[i64]) -> Result<HashMap<i64, String>> {
        let limit = u32::try_from(versions.len()).unwrap_or(u32::MAX).saturating_mul(MODEL_ARTIFACTS_READ_PER_VERSION);
        let artifacts = self.store.attributed(conn, versions, &[self.type_id(EntityKind::ModelArtifact)], limit).await?;
        let mut out = HashMap::new();
        for (version, artifact) in artifacts {
            if let Some(uri) = artifact.uri {
                out.entry(version).or_insert(uri);
            }
        }
        Ok(out)
    }

    /// The newest [`LATEST_SCAN`] versions of the models `ids`, newest first.
    async fn recent_versions(&self, conn: &mut Conn<'_>, ids: &[i64]) -> Result<Vec<Node>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (parent, filter) = children_of(ids);
        let query =
            ListQuery { parent, descending: true, limit: Some(LATEST_SCAN), filter, ..ListQuery::of(vec![self.mv_type()]) };
        Ok(self.store.list(conn, NodeKind::Context, &query).await?)
    }

    /// Models with their latest versions: a fixed number of queries for any number of models.
    async fn models_of(&self, conn: &mut Conn<'_>, nodes: &[Node], by_stage: bool) -> Result<Vec<MlModel>> {
        let ids: Vec<i64> = nodes.iter().map(|n| n.id).collect();
        let versions = self.recent_versions(conn, &ids).await?;
        let sources = self.sources(conn, &versions.iter().map(|v| v.id).collect::<Vec<_>>()).await?;
        let by_id: HashMap<i64, &Node> = nodes.iter().map(|n| (n.id, n)).collect();
        let mut grouped: HashMap<i64, Vec<(i64, MlVersion)>> = HashMap::new();
        for v in &versions {
            let Some(Value::Int(model_id)) = v.properties.typed.get("registered_model_id") else { continue };
            if let Some(model) = by_id.get(model_id) {
                grouped.entry(*model_id).or_default().push((v.id, version_of(v, model, sources.get(&v.id).cloned())));
            }
        }
        Ok(nodes.iter().map(|n| model_of(n, latest_per_stage(grouped.remove(&n.id).unwrap_or_default(), by_stage))).collect())
    }

    async fn versions_of(&self, conn: &mut Conn<'_>, model: &Node, nodes: &[Node]) -> Result<Vec<MlVersion>> {
        let sources = self.sources(conn, &nodes.iter().map(|v| v.id).collect::<Vec<_>>()).await?;
        Ok(nodes.iter().map(|v| version_of(v, model, sources.get(&v.id).cloned())).collect())
    }

    pub async fn mlflow_create_model(
        &self,
        name: &str,
        description: Option<String>,
        tags: Vec<(String, String)>,
    ) -> Result<MlModel> {
        let custom = tags.into_iter().map(|(k, v)| (format!("{TAG}{k}"), Value::String(v))).collect();
        let draft = Draft { name: Some(name.to_owned()), description, custom: Some(custom), ..Draft::default() };
        let spec = EntityKind::RegisteredModel.spec();
        let (this, owned) = (self.clone(), name.to_owned());
        let node = self
            .datastore
            .write(move |conn| {
                Box::pin(async move {
                    this.insert(conn, spec, draft, None, true).await.map_err(|e| match e {
                        Error::Conflict(_) => Error::Conflict(format!("Registered Model (name={owned}) already exists.")),
                        other => other,
                    })
                })
            })
            .await?;
        Ok(model_of(&node, Vec::new()))
    }

    pub async fn mlflow_model(&self, name: &str) -> Result<MlModel> {
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let node = self.model_node(&mut conn, name).await?;
        Ok(self.models_of(&mut conn, std::slice::from_ref(&node), false).await?.remove(0))
    }

    /// Runs `change` on a model's node inside one write transaction (the model locked first)
    /// and writes the node back.
    async fn change_model<F>(&self, name: &str, change: F) -> Result<()>
    where
        F: FnOnce(&mut Node) -> Result<()> + Clone + Send + 'static,
    {
        let (this, name) = (self.clone(), name.to_owned());
        let model_id = self.model_id(&name).await?;
        self.datastore
            .write(move |conn| {
                Box::pin(async move {
                    let mut node = this.locked_model(conn, model_id, &name).await?;
                    change(&mut node)?;
                    this.save(conn, &node).await
                })
            })
            .await
    }

    /// Writes a context's properties back, moving its update time forward.
    async fn save(&self, conn: &mut Conn<'_>, node: &Node) -> Result<()> {
        let fields = embedmd::store::NodeFields {
            type_id: node.type_id,
            name: node.name.clone().unwrap_or_default(),
            external_id: node.external_id.clone(),
            uri: None,
            state: None,
        };
        let now = now_ms().max(node.update_time + 1);
        let kind = if node.type_id == self.rm_type() { EntityKind::RegisteredModel } else { EntityKind::ModelVersion };
        // Where the database folds case, a tag `A` beside a tag `a` is a 400, not a 500.
        self.store
            .update(conn, NodeKind::Context, node.id, &fields, &node.properties, now)
            .await
            .map_err(|e| self.conflict(kind.spec(), &fields.name, &node.properties, e))
    }

    pub async fn mlflow_update_model(&self, name: &str, description: Option<String>) -> Result<MlModel> {
        self.change_model(name, move |node| {
            set_typed(node, "description", description);
            Ok(())
        })
        .await?;
        self.mlflow_model(name).await
    }

    pub async fn mlflow_rename_model(&self, name: &str, new_name: &str) -> Result<MlModel> {
        bounded("new_name", new_name.to_owned(), MAX_NAME_CHARS)?;
        let (this, name_owned, new) = (self.clone(), name.to_owned(), new_name.to_owned());
        let model_id = self.model_id(name).await?;
        self.datastore
            .write(move |conn| {
                Box::pin(async move {
                    let node = this.locked_model(conn, model_id, &name_owned).await?;
                    if !this.store.find(conn, NodeKind::Context, &[this.rm_type()], Some(&new), None, 1).await?.is_empty() {
                        return Err(Error::Conflict(format!("Registered Model (name={new}) already exists.")));
                    }
                    this.store.rename(conn, NodeKind::Context, node.id, &new, now_ms().max(node.update_time + 1)).await?;
                    Ok(())
                })
            })
            .await?;
        self.mlflow_model(new_name).await
    }

    pub async fn mlflow_set_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        let (key, value) = (format!("{TAG}{key}"), Value::String(value.to_owned()));
        self.change_model(name, move |node| {
            node.properties.custom.insert(key, value);
            Ok(())
        })
        .await
    }

    pub async fn mlflow_delete_model_tag(&self, name: &str, key: &str) -> Result<()> {
        let key = format!("{TAG}{key}");
        self.change_model(name, move |node| {
            node.properties.custom.remove(&key);
            Ok(())
        })
        .await
    }

    pub async fn mlflow_set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        let (this, name, alias, version) = (self.clone(), name.to_owned(), alias.to_owned(), version.to_owned());
        let model_id = self.model_id(&name).await?;
        self.datastore
            .write(move |conn| {
                Box::pin(async move {
                    let mut node = this.locked_model(conn, model_id, &name).await?;
                    this.version_node(conn, &node, &name, &version).await?;
                    node.properties.custom.insert(format!("{ALIAS}{alias}"), Value::String(version));
                    this.save(conn, &node).await
                })
            })
            .await
    }

    pub async fn mlflow_delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let key = format!("{ALIAS}{alias}");
        self.change_model(name, move |node| {
            node.properties.custom.remove(&key);
            Ok(())
        })
        .await
    }

    pub async fn mlflow_version_by_alias(&self, name: &str, alias: &str) -> Result<MlVersion> {
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let model = self.model_node(&mut conn, name).await?;
        if alias.eq_ignore_ascii_case("latest") {
            let newest = self.recent_versions(&mut conn, &[model.id]).await?.into_iter().next();
            let newest = newest.ok_or_else(|| Error::not_found(format!("Latest version not found for model {name}.")))?;
            return Ok(self.versions_of(&mut conn, &model, &[newest]).await?.remove(0));
        }
        let version = custom_text(&model, &format!("{ALIAS}{alias}"))
            .ok_or_else(|| Error::bad_request(format!("Registered model alias {alias} not found.")))?;
        let node = self.version_node(&mut conn, &model, name, &version).await?;
        Ok(self.versions_of(&mut conn, &model, &[node]).await?.remove(0))
    }

    pub async fn mlflow_latest_versions(&self, name: &str, stages: &[String]) -> Result<Vec<MlVersion>> {
        let wanted: Vec<&str> = stages.iter().map(|s| canonical_stage(s)).collect::<Result<_>>()?;
        let model = self.mlflow_model(name).await?;
        Ok(model.latest.into_iter().filter(|v| wanted.is_empty() || wanted.contains(&v.stage.as_str())).collect())
    }

    /// The refusal of a delete that an inference service still points at (`property` of the
    /// service names one of `ids`).
    async fn check_unserved(&self, conn: &mut Conn<'_>, property: &str, ids: &[i64], what: &str) -> Result<()> {
        let query = ListQuery {
            limit: Some(1),
            filter: Some(prop(
                property,
                false,
                ValueColumn::Int,
                CmpOp::In,
                FilterValue::List(ids.iter().map(|i| FilterValue::Int(*i)).collect()),
            )),
            ..ListQuery::of(vec![self.type_id(EntityKind::InferenceService)])
        };
        if let Some(service) = self.store.list(conn, NodeKind::Context, &query).await?.pop() {
            return Err(Error::InUse(format!(
                "{what} cannot be deleted: inference service {:?} (id {}) refers to it",
                bare_name(service.name.as_deref().unwrap_or_default()),
                service.id
            )));
        }
        Ok(())
    }

    /// Deletes versions (contexts) with the artifacts only they hold.
    async fn delete_versions(&self, conn: &mut Conn<'_>, versions: &[i64]) -> Result<()> {
        let artifacts = self.store.owned_artifacts(conn, versions).await?;
        self.store.delete_artifacts(conn, &artifacts).await?;
        self.store.delete_contexts(conn, versions).await?;
        Ok(())
    }

    /// Deletes a registered model, its versions, their artifacts, properties, aliases and
    /// links, in one transaction; refused while an inference service refers to any of them.
    pub async fn mlflow_delete_model(&self, name: &str) -> Result<()> {
        let (this, name) = (self.clone(), name.to_owned());
        let model_id = self.model_id(&name).await?;
        self.datastore
            .write(move |conn| {
                Box::pin(async move {
                    let model = this.locked_model(conn, model_id, &name).await?;
                    let what = format!("Registered Model (name={name})");
                    this.check_unserved(conn, "registered_model_id", &[model.id], &what).await?;
                    let query = ListQuery {
                        parent: Some(embedmd::store::Parent::Context(model.id)),
                        ..ListQuery::of(vec![this.mv_type()])
                    };
                    let versions: Vec<i64> =
                        this.store.list(conn, NodeKind::Context, &query).await?.iter().map(|v| v.id).collect();
                    this.check_unserved(conn, "model_version_id", &versions, &what).await?;
                    this.delete_versions(conn, &versions).await?;
                    Ok::<_, Error>(this.store.delete_contexts(conn, &[model.id]).await?)
                })
            })
            .await
    }

    pub async fn mlflow_delete_version(&self, name: &str, version: &str) -> Result<()> {
        let (this, name, version) = (self.clone(), name.to_owned(), version.to_owned());
        let model_id = self.model_id(&name).await?;
        self.datastore
            .write(move |conn| {
                Box::pin(async move {
                    let mut model = this.locked_model(conn, model_id, &name).await?;
                    let node = this.version_node(conn, &model, &name, &version).await?;
                    let what = format!("Model Version (name={name}, version={version})");
                    this.check_unserved(conn, "model_version_id", &[node.id], &what).await?;
                    this.delete_versions(conn, &[node.id]).await?;
                    // Its aliases go with it; the model's update time moves, as MLflow's does.
                    model
                        .properties
                        .custom
                        .retain(|k, v| !(k.starts_with(ALIAS) && text(v).as_deref() == Some(version.as_str())));
                    this.save(conn, &model).await
                })
            })
            .await
    }

    pub async fn mlflow_create_version(&self, name: &str, new: NewVersion) -> Result<MlVersion> {
        if new.source.len() > MAX_URI_BYTES {
            return Err(Error::bad_request(format!("source is longer than {MAX_URI_BYTES} bytes")));
        }
        let (this, name) = (self.clone(), name.to_owned());
        let model_id = self.model_id(&name).await?;
        let (model, node) = self
            .datastore
            .write(move |conn| {
                Box::pin(async move {
                    let mut model = this.locked_model(conn, model_id, &name).await?;
                    let last = match model.properties.custom.get(LAST_VERSION) {
                        Some(Value::Int(n)) => *n,
                        _ => 0,
                    };
                    // Kubeflow clients may have taken numbers as version names: skip those.
                    let mut number = last + 1;
                    loop {
                        let stored = format!("{}:{number}", model.id);
                        if this.store.find(conn, NodeKind::Context, &[this.mv_type()], Some(&stored), None, 1).await?.is_empty() {
                            break;
                        }
                        if number - last >= MAX_NUMBER_PROBES {
                            return Err(Error::Conflict(format!(
                                "Model Version creation error (name={name}): versions {}..{number} are taken",
                                last + 1
                            )));
                        }
                        number += 1;
                    }
                    // A `models:/<name>/<version>` (or `@alias`) source is another version of this
                    // registry: its files are that version's, and its run is too unless given.
                    let (mut source, mut storage, mut run_id) = (new.source.clone(), new.source.clone(), new.run_id.clone());
                    let logged_model = new.source.strip_prefix("models:/m-").and_then(|id| id.parse::<i64>().ok());
                    if let Some(id) = logged_model {
                        // MLflow 3's logged model (`log_model`): a model artifact of the tracking API,
                        // whose files and run the version takes.
                        let spec = EntityKind::ModelArtifact.spec();
                        let found = this.store.get(conn, spec.node, &[this.type_id(EntityKind::ModelArtifact)], &[id]).await?;
                        let artifact =
                            found.first().ok_or_else(|| Error::not_found(format!("Logged model '{}' not found.", new.source)))?;
                        storage = artifact.uri.clone().unwrap_or_default();
                        if run_id.is_none() {
                            run_id = custom_text(artifact, "mlflow.sourceRunId");
                        }
                    } else if let Some(reference) = new.source.strip_prefix("models:/") {
                        let referenced = this.referenced_version(conn, reference, &new.source).await?;
                        source = format!("models:/{}/{}", referenced.model, referenced.version);
                        storage = referenced.storage.clone().unwrap_or_default();
                        if run_id.is_none() {
                            run_id = referenced.run_id.clone();
                        }
                    }
                    let mut custom: BTreeMap<String, Value> =
                        new.tags.iter().map(|(k, v)| (format!("{TAG}{k}"), Value::String(v.clone()))).collect();
                    custom.insert(STAGE.into(), Value::String(STAGES[0].into()));
                    custom.insert(SOURCE.into(), Value::String(source));
                    // Absent ones are empty, as MLflow's server stores its request's defaults.
                    custom.insert(RUN_ID.into(), Value::String(run_id.unwrap_or_default()));
                    custom.insert(RUN_LINK.into(), Value::String(new.run_link.clone().unwrap_or_default()));
                    let version_spec = EntityKind::ModelVersion.spec();
                    let draft = Draft {
                        name: Some(number.to_string()),
                        description: Some(new.description.clone().unwrap_or_default()),
                        custom: Some(custom),
                        ..Draft::default()
                    };
                    let node =
                        this.insert(conn, version_spec, draft, Some((EntityKind::RegisteredModel, model.id)), true).await?;
                    let artifact_spec = EntityKind::ModelArtifact.spec();
                    let uri = artifact_spec.field("uri").expect("artifacts have a uri");
                    let artifact =
                        Draft { name: Some(name.clone()), fields: vec![(uri, Stored::Uri(storage))], ..Draft::default() };
                    this.insert(conn, artifact_spec, artifact, Some((EntityKind::ModelVersion, node.id)), true).await?;
                    model.properties.custom.insert(LAST_VERSION.into(), Value::Int(number));
                    this.save(conn, &model).await?;
                    Ok::<_, Error>((model, node))
                })
            })
            .await?;
        Ok(version_of(&node, &model, None))
    }

    /// The version a `models:/` source names (`<name>/<version>` or `<name>@<alias>`), or 400.
    async fn referenced_version(&self, conn: &mut Conn<'_>, reference: &str, source: &str) -> Result<MlVersion> {
        let invalid = || Error::bad_request(format!("Invalid model version source: '{source}'."));
        let (name, version) = match reference.rsplit_once('@') {
            Some((name, alias)) => {
                let model = self.model_node(conn, name).await?;
                (name, custom_text(&model, &format!("{ALIAS}{alias}")).ok_or_else(invalid)?)
            }
            None => reference.rsplit_once('/').map(|(n, v)| (n, v.to_owned())).ok_or_else(invalid)?,
        };
        if name.is_empty() || version.is_empty() {
            return Err(invalid());
        }
        let model = self.model_node(conn, name).await?;
        let node = self.version_node(conn, &model, name, &version).await?;
        Ok(self.versions_of(conn, &model, &[node]).await?.remove(0))
    }

    pub async fn mlflow_version(&self, name: &str, version: &str) -> Result<MlVersion> {
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let model = self.model_node(&mut conn, name).await?;
        let node = self.version_node(&mut conn, &model, name, version).await?;
        Ok(self.versions_of(&mut conn, &model, &[node]).await?.remove(0))
    }

    /// Runs `change` on a version's node in one write transaction (its model locked first).
    async fn change_version<F>(&self, name: &str, version: &str, change: F) -> Result<()>
    where
        F: FnOnce(&mut Node) -> Result<()> + Clone + Send + 'static,
    {
        let (this, name, version) = (self.clone(), name.to_owned(), version.to_owned());
        let model_id = self.model_id(&name).await?;
        self.datastore
            .write(move |conn| {
                Box::pin(async move {
                    let model = this.locked_model(conn, model_id, &name).await?;
                    let mut node = this.version_node(conn, &model, &name, &version).await?;
                    change(&mut node)?;
                    this.save(conn, &node).await
                })
            })
            .await
    }

    pub async fn mlflow_update_version(&self, name: &str, version: &str, description: Option<String>) -> Result<MlVersion> {
        self.change_version(name, version, move |node| {
            set_typed(node, "description", description);
            Ok(())
        })
        .await?;
        self.mlflow_version(name, version).await
    }

    pub async fn mlflow_set_version_tag(&self, name: &str, version: &str, key: &str, value: &str) -> Result<()> {
        let (key, value) = (format!("{TAG}{key}"), Value::String(value.to_owned()));
        self.change_version(name, version, move |node| {
            node.properties.custom.insert(key, value);
            Ok(())
        })
        .await
    }

    pub async fn mlflow_delete_version_tag(&self, name: &str, version: &str, key: &str) -> Result<()> {
        let key = format!("{TAG}{key}");
        self.change_version(name, version, move |node| {
            node.properties.custom.remove(&key);
            Ok(())
        })
        .await
    }

    /// Moves a version to `stage`; "Archived" is also Kubeflow's ARCHIVED state, any other stage
    /// makes it LIVE. With `archive_existing`, the model's other versions in that stage become
    /// Archived in the same transaction.
    pub async fn mlflow_transition_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing: bool,
    ) -> Result<MlVersion> {
        let stage = canonical_stage(stage)?;
        if archive_existing && !matches!(stage, "Staging" | "Production") {
            return Err(Error::bad_request(format!(
                "Model version transition cannot archive existing model versions because '{stage}' is not an Active \
                 stage. Valid stages are ['Staging', 'Production']"
            )));
        }
        let (this, name_owned, version_owned) = (self.clone(), name.to_owned(), version.to_owned());
        let model_id = self.model_id(name).await?;
        self.datastore
            .write(move |conn| {
                Box::pin(async move {
                    let model = this.locked_model(conn, model_id, &name_owned).await?;
                    let mut node = this.version_node(conn, &model, &name_owned, &version_owned).await?;
                    let mut changed = vec![];
                    if archive_existing {
                        let query = ListQuery {
                            parent: Some(embedmd::store::Parent::Context(model.id)),
                            limit: Some(MAX_ARCHIVED_AT_ONCE),
                            filter: Some(prop(STAGE, true, ValueColumn::String, CmpOp::Eq, FilterValue::Text(stage.into()))),
                            ..ListQuery::of(vec![this.mv_type()])
                        };
                        changed = this.store.list(conn, NodeKind::Context, &query).await?;
                        changed.retain(|v| v.id != node.id && !archived(v));
                    }
                    for other in &mut changed {
                        set_stage(other, ARCHIVED);
                        this.save(conn, other).await?;
                    }
                    set_stage(&mut node, stage);
                    this.save(conn, &node).await?;
                    this.save(conn, &model).await
                })
            })
            .await?;
        self.mlflow_version(name, version).await
    }

    pub async fn mlflow_download_uri(&self, name: &str, version: &str) -> Result<String> {
        Ok(self.mlflow_version(name, version).await?.storage.unwrap_or_default())
    }

    /// A page of registered models; also whether more follow.
    pub async fn mlflow_search_models(&self, conditions: &[Condition], page: SearchPage) -> Result<(Vec<MlModel>, bool)> {
        let mut filters = Vec::new();
        for c in conditions {
            let values = &c.values;
            filters.push(match &c.field {
                SearchField::Name => {
                    text_filter(&|op, v| Filter::Compare { target: Target::Column(Column::Name), op, value: v }, c.op, values)
                }
                SearchField::Tag(key) => tag_filter(key, c.op, values)?,
                _ => return Err(Error::bad_request("Invalid attribute name: only name and tags.<key> filter registered models")),
            });
        }
        let order = match page.order {
            SearchOrder::Name => OrderColumn::Name,
            SearchOrder::Updated => OrderColumn::UpdateTime,
            SearchOrder::Created => OrderColumn::CreateTime,
            SearchOrder::Version => OrderColumn::Id,
        };
        let query = ListQuery {
            order,
            descending: page.descending,
            limit: Some(page.limit + 1),
            offset: Some(page.offset),
            filter: and(filters),
            ..ListQuery::of(vec![self.rm_type()])
        };
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let mut nodes = self.store.list(&mut conn, NodeKind::Context, &query).await?;
        let more = nodes.len() > page.limit as usize;
        nodes.truncate(page.limit as usize);
        Ok((self.models_of(&mut conn, &nodes, true).await?, more))
    }

    /// A page of model versions; also whether more follow.
    pub async fn mlflow_search_versions(&self, conditions: &[Condition], page: SearchPage) -> Result<(Vec<MlVersion>, bool)> {
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let mut filters = Vec::new();
        let mut parent = None;
        for c in conditions {
            let values = &c.values;
            filters.push(match &c.field {
                SearchField::Name => {
                    // The model's name: the matching models' ids first (one bounded query).
                    let name_filter = text_filter(
                        &|op, v| Filter::Compare { target: Target::Column(Column::Name), op, value: v },
                        c.op,
                        values,
                    );
                    let query = ListQuery {
                        limit: Some(MAX_MODELS_PER_VERSION_FILTER + 1),
                        filter: Some(name_filter),
                        ..ListQuery::of(vec![self.rm_type()])
                    };
                    let ids: Vec<i64> =
                        self.store.list(&mut conn, NodeKind::Context, &query).await?.iter().map(|m| m.id).collect();
                    if ids.len() > MAX_MODELS_PER_VERSION_FILTER as usize {
                        return Err(Error::bad_request(format!(
                            "Invalid filter: the name condition matches more than {MAX_MODELS_PER_VERSION_FILTER} \
                             registered models; narrow it"
                        )));
                    }
                    match children_of(&ids) {
                        // One model, in the first such condition: its versions by the parent link.
                        (Some(one), _) if parent.is_none() => {
                            parent = Some(one);
                            continue;
                        }
                        (Some(_), _) => Filter::ChildOf(ids),
                        (None, filter) => filter.unwrap_or(Filter::ChildOf(Vec::new())),
                    }
                }
                SearchField::Tag(key) => tag_filter(key, c.op, values)?,
                SearchField::RunId => text_filter(&|op, v| prop(RUN_ID, true, ValueColumn::String, op, v), c.op, values),
                SearchField::Source => text_filter(&|op, v| prop(SOURCE, true, ValueColumn::String, op, v), c.op, values),
                SearchField::VersionNumber => {
                    // Stored as "<model id>:<number>".
                    let like = |v: &String| Filter::Compare {
                        target: Target::Column(Column::Name),
                        op: CmpOp::Like,
                        value: FilterValue::Text(format!("%:{}", like_literal(v))),
                    };
                    match c.op {
                        SearchOp::Eq => like(&values[0]),
                        SearchOp::In => Filter::Or(values.iter().map(like).collect()),
                        _ => return Err(unsupported("this comparison on version_number (use = or IN)")),
                    }
                }
            });
        }
        let order = match page.order {
            SearchOrder::Name => return Err(unsupported("ordering versions by name")),
            SearchOrder::Updated => OrderColumn::UpdateTime,
            SearchOrder::Created => OrderColumn::CreateTime,
            SearchOrder::Version => OrderColumn::Id,
        };
        let query = ListQuery {
            parent,
            order,
            descending: page.descending,
            limit: Some(page.limit + 1),
            offset: Some(page.offset),
            filter: and(filters),
            ..ListQuery::of(vec![self.mv_type()])
        };
        let mut nodes = self.store.list(&mut conn, NodeKind::Context, &query).await?;
        let more = nodes.len() > page.limit as usize;
        nodes.truncate(page.limit as usize);
        // Their models (names, aliases) and sources: two more reads for the whole page.
        let mut model_ids: Vec<i64> = nodes
            .iter()
            .filter_map(|n| match n.properties.typed.get("registered_model_id") {
                Some(Value::Int(id)) => Some(*id),
                _ => None,
            })
            .collect();
        model_ids.sort_unstable();
        model_ids.dedup();
        let models: HashMap<i64, Node> = self
            .store
            .get(&mut conn, NodeKind::Context, &[self.rm_type()], &model_ids)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect();
        let sources = self.sources(&mut conn, &nodes.iter().map(|v| v.id).collect::<Vec<_>>()).await?;
        let versions = nodes
            .iter()
            .filter_map(|n| {
                let Some(Value::Int(model_id)) = n.properties.typed.get("registered_model_id") else { return None };
                models.get(model_id).map(|m| version_of(n, m, sources.get(&n.id).cloned()))
            })
            .collect();
        Ok((versions, more))
    }
}

fn set_typed(node: &mut Node, name: &str, value: Option<String>) {
    match value {
        Some(v) => node.properties.typed.insert(name.into(), Value::String(v)),
        None => node.properties.typed.remove(name),
    };
}

/// An MLflow stage; Archived is also Kubeflow's ARCHIVED state.
fn set_stage(node: &mut Node, stage: &str) {
    node.properties.custom.insert(STAGE.into(), Value::String(stage.into()));
    let state = if stage == ARCHIVED { "ARCHIVED" } else { "LIVE" };
    node.properties.typed.insert("state".into(), Value::String(state.into()));
}
