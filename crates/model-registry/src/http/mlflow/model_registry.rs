//! MLflow's Model Registry service (`ModelRegistryService` of `model_registry.proto`):
//! registered models, model versions, their tags and aliases. Each handler reads its request
//! message, calls the registry's MLflow mapping and writes the response message as MLflow's
//! server does (snake_case fields, int64 times as numbers, empty fields left out).

use serde_json::{json, Map, Value};

use super::error::MlflowError;
use super::search::{page_token, parse_filter, parse_order, parse_token, Subject};
use super::{missing, Ctx, Operation, Params, Reply};
use crate::registry::{MlModel, MlVersion, NewVersion, SearchOrder, SearchPage};

/// MLflow's defaults and limits for `max_results` (`mlflow/store/model_registry/__init__.py`),
/// except that a version search answers at most [`MAX_VERSION_RESULTS`] per page.
const MODEL_RESULTS_DEFAULT: i64 = 100;
const MAX_MODEL_RESULTS: i64 = 1000;
const VERSION_RESULTS_DEFAULT: i64 = 10_000;
/// MLflow allows 200 000; a page this size is already some megabytes of JSON.
const MAX_VERSION_RESULTS: i64 = 10_000;
/// MLflow's limits on tag keys and values and on alias names (`mlflow/utils/validation.py`),
/// except that a key or alias with its reserved prefix must fit a property name (255).
const MAX_TAG_KEY_CHARS: usize = 255 - "mlflow.tag.".len();
const MAX_TAG_VALUE_CHARS: usize = 100_000;
const MAX_ALIAS_CHARS: usize = 255 - "mlflow.alias.".len();

/// The operations of MLflow's model registry, with the paths and methods of its `.proto`
/// (`get-latest-versions` answers GET too, as MLflow's server does).
pub const OPERATIONS: &[Operation] = &[
    op!("createRegisteredModel", Post, "/registered-models/create", Writer, create_model),
    op!("getRegisteredModel", Get, "/registered-models/get", Reader, get_model),
    op!("updateRegisteredModel", Patch, "/registered-models/update", Writer, update_model),
    op!("renameRegisteredModel", Post, "/registered-models/rename", Writer, rename_model),
    op!("deleteRegisteredModel", Delete, "/registered-models/delete", Admin, delete_model),
    op!("searchRegisteredModels", Get, "/registered-models/search", Reader, search_models),
    op!("getLatestVersions", Post, "/registered-models/get-latest-versions", Reader, latest_versions),
    op!("getLatestVersionsGet", Get, "/registered-models/get-latest-versions", Reader, latest_versions),
    op!("setRegisteredModelTag", Post, "/registered-models/set-tag", Writer, set_model_tag),
    op!("deleteRegisteredModelTag", Delete, "/registered-models/delete-tag", Writer, delete_model_tag),
    op!("setRegisteredModelAlias", Post, "/registered-models/alias", Writer, set_alias),
    op!("deleteRegisteredModelAlias", Delete, "/registered-models/alias", Writer, delete_alias),
    op!("getModelVersionByAlias", Get, "/registered-models/alias", Reader, version_by_alias),
    op!("createModelVersion", Post, "/model-versions/create", Writer, create_version),
    op!("getModelVersion", Get, "/model-versions/get", Reader, get_version),
    op!("updateModelVersion", Patch, "/model-versions/update", Writer, update_version),
    op!("deleteModelVersion", Delete, "/model-versions/delete", Admin, delete_version),
    op!("searchModelVersions", Get, "/model-versions/search", Reader, search_versions),
    op!("getModelVersionDownloadUri", Get, "/model-versions/get-download-uri", Reader, download_uri),
    op!("transitionModelVersionStage", Post, "/model-versions/transition-stage", Writer, transition_stage),
    op!("setModelVersionTag", Post, "/model-versions/set-tag", Writer, set_version_tag),
    op!("deleteModelVersionTag", Delete, "/model-versions/delete-tag", Writer, delete_version_tag),
];

fn tags_json(tags: &[(String, String)]) -> Value {
    Value::Array(tags.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect())
}

/// Inserts `value` unless it is empty, as protobuf's JSON leaves unset fields out.
fn put(out: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match &value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    };
    if !empty {
        out.insert(key.into(), value);
    }
}

pub fn version_json(v: &MlVersion) -> Value {
    let mut out = Map::new();
    put(&mut out, "name", json!(v.model));
    put(&mut out, "version", json!(v.version));
    put(&mut out, "creation_timestamp", json!(v.created));
    put(&mut out, "last_updated_timestamp", json!(v.updated));
    put(&mut out, "user_id", json!(v.user_id));
    put(&mut out, "current_stage", json!(v.stage));
    put(&mut out, "description", json!(v.description));
    put(&mut out, "source", json!(v.source));
    put(&mut out, "run_id", json!(v.run_id));
    put(&mut out, "status", json!("READY"));
    put(&mut out, "tags", tags_json(&v.tags));
    put(&mut out, "run_link", json!(v.run_link));
    put(&mut out, "aliases", json!(v.aliases));
    Value::Object(out)
}

pub fn model_json(m: &MlModel) -> Value {
    let mut out = Map::new();
    put(&mut out, "name", json!(m.name));
    put(&mut out, "creation_timestamp", json!(m.created));
    put(&mut out, "last_updated_timestamp", json!(m.updated));
    put(&mut out, "description", json!(m.description));
    put(&mut out, "latest_versions", Value::Array(m.latest.iter().map(version_json).collect()));
    put(&mut out, "tags", tags_json(&m.tags));
    let aliases = m.aliases.iter().map(|(a, v)| json!({ "alias": a, "version": v })).collect();
    put(&mut out, "aliases", Value::Array(aliases));
    Value::Object(out)
}

/// A registered model's name as MLflow validates it: not blank, no '/' or ':'.
fn model_name(params: &Params, field: &str) -> Result<String, MlflowError> {
    let name = params.opt_str(field)?.filter(|n| !n.trim().is_empty()).ok_or_else(|| missing(field))?;
    if name.contains('/') || name.contains(':') {
        return Err(MlflowError::invalid(format!("Invalid model name '{name}'. Names cannot contain '/' or ':'.")));
    }
    Ok(name)
}

/// The version parameter: MLflow's integers, or the name of a version a Kubeflow client made.
fn version(params: &Params) -> Result<String, MlflowError> {
    params.opt_str("version")?.filter(|v| !v.is_empty()).ok_or_else(|| missing("version"))
}

fn tag_key(key: &str) -> Result<(), MlflowError> {
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '/' | ':');
    if key.is_empty() || !key.chars().all(allowed) {
        return Err(MlflowError::invalid(format!(
            "Invalid value \"{key}\" for parameter 'key' supplied: Names may only contain alphanumerics, underscores (_), \
             dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )));
    }
    if key.chars().count() > MAX_TAG_KEY_CHARS {
        return Err(MlflowError::invalid(format!("'key' exceeds the maximum length of {MAX_TAG_KEY_CHARS} characters")));
    }
    Ok(())
}

fn tag_value(value: &str) -> Result<(), MlflowError> {
    if value.chars().count() > MAX_TAG_VALUE_CHARS {
        return Err(MlflowError::invalid(format!("'value' exceeds the maximum length of {MAX_TAG_VALUE_CHARS} characters")));
    }
    Ok(())
}

/// The `tags` list of a create request.
fn tags(params: &Params) -> Result<Vec<(String, String)>, MlflowError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for tag in params.list("tags") {
        let key = tag.get("key").and_then(Value::as_str).ok_or_else(|| missing("key"))?.to_owned();
        let value = tag.get("value").and_then(Value::as_str).unwrap_or_default().to_owned();
        tag_key(&key)?;
        tag_value(&value)?;
        // A key given twice keeps its last value, as MLflow's store does.
        out.retain(|(k, _)| *k != key);
        out.push((key, value));
    }
    Ok(out)
}

fn alias(params: &Params, reserved_check: bool) -> Result<String, MlflowError> {
    let alias = params.opt_str("alias")?.filter(|a| !a.is_empty());
    let alias = alias.ok_or_else(|| MlflowError::invalid("Registered model alias name cannot be empty."))?;
    if !alias.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        return Err(MlflowError::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )));
    }
    if alias.chars().count() > MAX_ALIAS_CHARS {
        return Err(MlflowError::invalid(format!(
            "Registered model alias name exceeds the maximum length of {MAX_ALIAS_CHARS} characters"
        )));
    }
    if reserved_check {
        if alias.eq_ignore_ascii_case("latest") {
            return Err(MlflowError::invalid("'latest' alias name (case insensitive) is reserved."));
        }
        let mut chars = alias.chars();
        if matches!(chars.next(), Some('v' | 'V')) && !alias[1..].is_empty() && alias[1..].chars().all(|c| c.is_ascii_digit()) {
            return Err(MlflowError::invalid(format!("Version alias name '{alias}' is reserved.")));
        }
    }
    Ok(alias)
}

/// `max_results`, the ordering and the page token of a search.
fn page(params: &Params, subject: Subject, default_order: (SearchOrder, bool)) -> Result<SearchPage, MlflowError> {
    let (default, max) = match subject {
        Subject::Models => (MODEL_RESULTS_DEFAULT, MAX_MODEL_RESULTS),
        Subject::Versions => (VERSION_RESULTS_DEFAULT, MAX_VERSION_RESULTS),
    };
    let limit = params.opt_int("max_results")?.unwrap_or(default);
    if limit < 1 {
        return Err(MlflowError::invalid(format!(
            "Invalid value for max_results. It must be a positive integer, but got {limit}"
        )));
    }
    if limit > max {
        return Err(MlflowError::invalid(format!(
            "Invalid value for request parameter max_results. It must be at most {max}, but got value {limit}"
        )));
    }
    let clauses: Vec<String> = params.list("order_by").iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    let (order, descending) = parse_order(&clauses, subject)?.unwrap_or(default_order);
    let offset = parse_token(params.opt_str("page_token")?.as_deref())?;
    Ok(SearchPage { order, descending, offset, limit: limit as u32 })
}

fn listed(key: &str, items: Vec<Value>, page: SearchPage, more: bool) -> Value {
    let mut out = Map::new();
    put(&mut out, key, Value::Array(items));
    if more {
        out.insert("next_page_token".into(), json!(page_token(page.offset + page.limit)));
    }
    Value::Object(out)
}

async fn create_model(ctx: Ctx, p: Params) -> Reply {
    let name = model_name(&p, "name")?;
    let model = ctx.registry.mlflow_create_model(&name, p.opt_str("description")?, tags(&p)?).await?;
    Ok(json!({ "registered_model": model_json(&model) }))
}

async fn get_model(ctx: Ctx, p: Params) -> Reply {
    let model = ctx.registry.mlflow_model(&model_name(&p, "name")?).await?;
    Ok(json!({ "registered_model": model_json(&model) }))
}

async fn update_model(ctx: Ctx, p: Params) -> Reply {
    let model = ctx.registry.mlflow_update_model(&model_name(&p, "name")?, p.opt_str("description")?).await?;
    Ok(json!({ "registered_model": model_json(&model) }))
}

async fn rename_model(ctx: Ctx, p: Params) -> Reply {
    let name = model_name(&p, "name")?;
    let new_name = model_name(&p, "new_name")?;
    let model = ctx.registry.mlflow_rename_model(&name, &new_name).await?;
    Ok(json!({ "registered_model": model_json(&model) }))
}

async fn delete_model(ctx: Ctx, p: Params) -> Reply {
    ctx.registry.mlflow_delete_model(&model_name(&p, "name")?).await?;
    Ok(json!({}))
}

async fn search_models(ctx: Ctx, p: Params) -> Reply {
    let conditions = parse_filter(p.opt_str("filter")?.as_deref(), Subject::Models)?;
    let page = page(&p, Subject::Models, (SearchOrder::Name, false))?;
    let (models, more) = ctx.registry.mlflow_search_models(&conditions, page).await?;
    Ok(listed("registered_models", models.iter().map(model_json).collect(), page, more))
}

async fn latest_versions(ctx: Ctx, p: Params) -> Reply {
    let stages: Vec<String> = p.list("stages").iter().filter_map(|s| s.as_str().map(str::to_owned)).collect();
    let versions = ctx.registry.mlflow_latest_versions(&model_name(&p, "name")?, &stages).await?;
    let mut out = Map::new();
    put(&mut out, "model_versions", Value::Array(versions.iter().map(version_json).collect()));
    Ok(Value::Object(out))
}

async fn set_model_tag(ctx: Ctx, p: Params) -> Reply {
    let (key, value) = (p.str("key")?, p.opt_str("value")?.unwrap_or_default());
    tag_key(&key)?;
    tag_value(&value)?;
    ctx.registry.mlflow_set_model_tag(&model_name(&p, "name")?, &key, &value).await?;
    Ok(json!({}))
}

async fn delete_model_tag(ctx: Ctx, p: Params) -> Reply {
    let key = p.str("key")?;
    tag_key(&key)?;
    ctx.registry.mlflow_delete_model_tag(&model_name(&p, "name")?, &key).await?;
    Ok(json!({}))
}

async fn set_alias(ctx: Ctx, p: Params) -> Reply {
    let (name, alias) = (model_name(&p, "name")?, alias(&p, true)?);
    ctx.registry.mlflow_set_alias(&name, &alias, &version(&p)?).await?;
    Ok(json!({}))
}

async fn delete_alias(ctx: Ctx, p: Params) -> Reply {
    let (name, alias) = (model_name(&p, "name")?, alias(&p, false)?);
    ctx.registry.mlflow_delete_alias(&name, &alias).await?;
    Ok(json!({}))
}

async fn version_by_alias(ctx: Ctx, p: Params) -> Reply {
    let (name, alias) = (model_name(&p, "name")?, alias(&p, false)?);
    let version = ctx.registry.mlflow_version_by_alias(&name, &alias).await?;
    Ok(json!({ "model_version": version_json(&version) }))
}

async fn create_version(ctx: Ctx, p: Params) -> Reply {
    let name = model_name(&p, "name")?;
    let source = p.opt_str("source")?.filter(|s| !s.is_empty()).ok_or_else(|| missing("source"))?;
    // MLflow refuses relative references in a source: a path that climbs out of where it points.
    if source.split(['/', '\\']).any(|segment| segment == "..") {
        return Err(MlflowError::invalid(format!(
            "Invalid model version source: '{source}'. An absolute path must be provided without relative path references."
        )));
    }
    let new = NewVersion {
        source,
        run_id: p.opt_str("run_id")?,
        run_link: p.opt_str("run_link")?,
        description: p.opt_str("description")?,
        tags: tags(&p)?,
    };
    let version = ctx.registry.mlflow_create_version(&name, new).await?;
    Ok(json!({ "model_version": version_json(&version) }))
}

async fn get_version(ctx: Ctx, p: Params) -> Reply {
    let version = ctx.registry.mlflow_version(&model_name(&p, "name")?, &version(&p)?).await?;
    Ok(json!({ "model_version": version_json(&version) }))
}

async fn update_version(ctx: Ctx, p: Params) -> Reply {
    let (name, number) = (model_name(&p, "name")?, version(&p)?);
    let version = ctx.registry.mlflow_update_version(&name, &number, p.opt_str("description")?).await?;
    Ok(json!({ "model_version": version_json(&version) }))
}

async fn delete_version(ctx: Ctx, p: Params) -> Reply {
    ctx.registry.mlflow_delete_version(&model_name(&p, "name")?, &version(&p)?).await?;
    Ok(json!({}))
}

async fn search_versions(ctx: Ctx, p: Params) -> Reply {
    let conditions = parse_filter(p.opt_str("filter")?.as_deref(), Subject::Versions)?;
    let page = page(&p, Subject::Versions, (SearchOrder::Updated, true))?;
    let (versions, more) = ctx.registry.mlflow_search_versions(&conditions, page).await?;
    Ok(listed("model_versions", versions.iter().map(version_json).collect(), page, more))
}

async fn download_uri(ctx: Ctx, p: Params) -> Reply {
    let uri = ctx.registry.mlflow_download_uri(&model_name(&p, "name")?, &version(&p)?).await?;
    // Files in the artifacts destination (a logged model's) are downloaded through the proxy.
    let uri = ctx.state.artifacts().proxied_uri(&uri).unwrap_or(uri);
    Ok(json!({ "artifact_uri": uri }))
}

async fn transition_stage(ctx: Ctx, p: Params) -> Reply {
    let (name, number, stage) = (model_name(&p, "name")?, version(&p)?, p.str("stage")?);
    let archive = p.opt_bool("archive_existing_versions")?.unwrap_or(false);
    let version = ctx.registry.mlflow_transition_stage(&name, &number, &stage, archive).await?;
    Ok(json!({ "model_version": version_json(&version) }))
}

async fn set_version_tag(ctx: Ctx, p: Params) -> Reply {
    let (key, value) = (p.str("key")?, p.opt_str("value")?.unwrap_or_default());
    tag_key(&key)?;
    tag_value(&value)?;
    ctx.registry.mlflow_set_version_tag(&model_name(&p, "name")?, &version(&p)?, &key, &value).await?;
    Ok(json!({}))
}

async fn delete_version_tag(ctx: Ctx, p: Params) -> Reply {
    let key = p.str("key")?;
    tag_key(&key)?;
    ctx.registry.mlflow_delete_version_tag(&model_name(&p, "name")?, &version(&p)?, &key).await?;
    Ok(json!({}))
}
