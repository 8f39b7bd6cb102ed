//! MLflow 3's logged models (`logged-models/...`), which `log_model` creates, uploads into and
//! finalizes. A logged model is a Kubeflow `ModelArtifact`: logged under its source run when it
//! has one (so Kubeflow clients see it among the run's artifacts), its `uri` where its files
//! really are in the artifacts destination, its status as the artifact's state (PENDING,
//! READY as LIVE, UPLOAD_FAILED as ABANDONED, deleted as DELETED). Its experiment, type, tags
//! and params are custom properties (`mlflow.experimentId`, `mlflow.modelType`, the tag keys,
//! `mlflow.param.<key>`). MLflow's model id is `m-<artifact id>`.

use serde_json::{json, Map, Value};

use super::error::{ErrorCode, MlflowError};
use super::{missing, Ctx, Operation, Params, Reply};
use crate::artifacts::ArtifactPath;
use crate::registry::{EntityKind, Error, Link, ListParams, Listing};

/// Logged models `logged-models/search` looks at per request (it filters in memory).
pub const MAX_SEARCHED_MODELS: usize = 5000;
const EXPERIMENT: &str = "mlflow.experimentId";
const MODEL_TYPE: &str = "mlflow.modelType";
const SOURCE_RUN: &str = "mlflow.sourceRunId";
const PARAM_PREFIX: &str = "mlflow.param.";

pub const OPERATIONS: &[Operation] = &[
    op!("createLoggedModel", Post, "/logged-models", Writer, create, proto),
    op!("getLoggedModel", Get, "/logged-models/{model_id}", Reader, get, proto),
    op!("finalizeLoggedModel", Patch, "/logged-models/{model_id}", Writer, finalize, proto),
    op!("deleteLoggedModel", Delete, "/logged-models/{model_id}", Admin, delete, proto),
    op!("searchLoggedModels", Post, "/logged-models/search", Reader, search, proto),
    op!("setLoggedModelTags", Patch, "/logged-models/{model_id}/tags", Writer, set_tags, proto),
    op!("deleteLoggedModelTag", Delete, "/logged-models/{model_id}/tags/{tag_key}", Writer, delete_tag, proto),
    op!("logLoggedModelParams", Post, "/logged-models/{model_id}/params", Writer, log_params, proto),
    op!("logOutputs", Post, "/runs/outputs", Writer, log_outputs, proto),
];

fn string_value(value: &str) -> Value {
    json!({"metadataType": "MetadataStringValue", "string_value": value})
}

fn custom_str<'a>(artifact: &'a Value, key: &str) -> Option<&'a str> {
    artifact.get("customProperties")?.get(key)?.get("string_value")?.as_str()
}

fn not_found(model_id: &str) -> MlflowError {
    MlflowError::not_found(format!("Logged model with ID '{model_id}' not found."))
}

/// `m-<id>`, the only model ids this server gives out.
fn artifact_id(model_id: &str) -> Result<String, MlflowError> {
    model_id
        .strip_prefix("m-")
        .filter(|id| id.parse::<i64>().is_ok_and(|id| id > 0))
        .map(str::to_owned)
        .ok_or_else(|| not_found(model_id))
}

fn status_of(state: Option<&str>) -> &'static str {
    match state {
        Some("LIVE") => "LOGGED_MODEL_READY",
        Some("ABANDONED") => "LOGGED_MODEL_UPLOAD_FAILED",
        Some("PENDING") => "LOGGED_MODEL_PENDING",
        _ => "LOGGED_MODEL_STATUS_UNSPECIFIED",
    }
}

fn state_of(status: &str) -> Result<&'static str, MlflowError> {
    Ok(match status {
        "LOGGED_MODEL_READY" | "READY" | "2" => "LIVE",
        "LOGGED_MODEL_UPLOAD_FAILED" | "FAILED" | "3" => "ABANDONED",
        "LOGGED_MODEL_PENDING" | "PENDING" | "1" => "PENDING",
        other => return Err(MlflowError::invalid(format!("Invalid value {other} for parameter 'status' supplied."))),
    })
}

/// The directory of a logged model's files, relative to the artifacts destination.
fn model_dir(experiment: &str, model_id: &str) -> Result<ArtifactPath, MlflowError> {
    ArtifactPath::parse(&format!("{experiment}/models/{model_id}/artifacts")).map_err(|e| MlflowError::invalid(e.to_string()))
}

fn millis(v: &Value, field: &str) -> Option<i64> {
    match v.get(field)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn model_json(a: &Value) -> Value {
    let id = format!("m-{}", a.get("id").and_then(Value::as_str).unwrap_or_default());
    let experiment = custom_str(a, EXPERIMENT).unwrap_or_default();
    let custom = a.get("customProperties").and_then(Value::as_object).cloned().unwrap_or_default();
    let (mut tags, mut params) = (Vec::new(), Vec::new());
    for (key, value) in &custom {
        let Some(value) = value.get("string_value").and_then(Value::as_str) else { continue };
        if let Some(param) = key.strip_prefix(PARAM_PREFIX) {
            params.push(json!({"key": param, "value": value}));
        } else if ![EXPERIMENT, MODEL_TYPE, SOURCE_RUN].contains(&key.as_str()) {
            tags.push(json!({"key": key, "value": value}));
        }
    }
    let mut info = json!({
        "model_id": id,
        "experiment_id": experiment,
        "name": a.get("name").cloned().unwrap_or_default(),
        "creation_timestamp_ms": millis(a, "createTimeSinceEpoch"),
        "last_updated_timestamp_ms": millis(a, "lastUpdateTimeSinceEpoch"),
        "artifact_uri": format!("mlflow-artifacts:/{experiment}/models/{id}/artifacts"),
        "status": status_of(a.get("state").and_then(Value::as_str)),
        "tags": tags,
    });
    if let Some(kind) = custom_str(a, MODEL_TYPE) {
        info["model_type"] = kind.into();
    }
    if let Some(run) = custom_str(a, SOURCE_RUN) {
        info["source_run_id"] = run.into();
    }
    json!({"info": info, "data": {"params": params, "metrics": []}})
}

async fn load(ctx: &Ctx, model_id: &str) -> Result<(String, Value), MlflowError> {
    let id = artifact_id(model_id)?;
    match ctx.registry.get(EntityKind::ModelArtifact, &id).await {
        Ok(a) if a.get("state").and_then(Value::as_str) != Some("DELETED") && custom_str(&a, EXPERIMENT).is_some() => Ok((id, a)),
        Ok(_) | Err(Error::NotFound(_)) => Err(not_found(model_id)),
        Err(e) => Err(e.into()),
    }
}

fn key_values(params: &Params, field: &str, prefix: &str, into: &mut Map<String, Value>) -> Result<(), MlflowError> {
    for item in params.list(field) {
        let key = item.get("key").and_then(Value::as_str).ok_or_else(|| missing(&format!("{field}.key")))?;
        let value = item.get("value").and_then(Value::as_str).unwrap_or_default();
        into.insert(format!("{prefix}{key}"), string_value(value));
    }
    Ok(())
}

async fn create(ctx: Ctx, params: Params) -> Reply {
    let experiment = params.str("experiment_id")?;
    super::tracking::experiment(&ctx.registry, &experiment).await?;
    let name = params.opt_str("name")?.filter(|n| !n.is_empty()).unwrap_or_else(|| "model".into());
    let mut custom = Map::new();
    custom.insert(EXPERIMENT.into(), string_value(&experiment));
    if let Some(kind) = params.opt_str("model_type")?.filter(|k| !k.is_empty()) {
        custom.insert(MODEL_TYPE.into(), string_value(&kind));
    }
    key_values(&params, "tags", "", &mut custom)?;
    key_values(&params, "params", PARAM_PREFIX, &mut custom)?;
    let run = params.opt_str("source_run_id")?.filter(|r| !r.is_empty());
    let mut body = json!({"artifactType": "model-artifact", "state": "PENDING", "name": name});
    let created = match &run {
        Some(run) => {
            custom.insert(SOURCE_RUN.into(), string_value(run));
            body["customProperties"] = custom.into();
            ctx.registry
                .upsert_artifact(EntityKind::ExperimentRun, run, &body)
                .await
                .map_err(|e| match e {
                    Error::NotFound(_) | Error::BadRequest(_) => MlflowError::not_found(format!("Run with id={run} not found")),
                    e => e.into(),
                })?
                .1
        }
        None => {
            body["customProperties"] = custom.into();
            ctx.registry.create_artifact(&body).await?
        }
    };
    let id = created.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    // Its files' real place, for Kubeflow clients; MLflow's clients use `mlflow-artifacts:/`.
    let uri = ctx.state.artifacts().uri_of(&model_dir(&experiment, &format!("m-{id}"))?);
    let updated = ctx.registry.update(&[EntityKind::ModelArtifact], &id, &json!({"uri": uri})).await?;
    Ok(json!({"model": model_json(&updated)}))
}

async fn get(ctx: Ctx, params: Params) -> Reply {
    let (_, a) = load(&ctx, &params.str("model_id")?).await?;
    Ok(json!({"model": model_json(&a)}))
}

async fn finalize(ctx: Ctx, params: Params) -> Reply {
    let (id, _) = load(&ctx, &params.str("model_id")?).await?;
    let state = state_of(&params.str("status")?)?;
    let updated = ctx.registry.update(&[EntityKind::ModelArtifact], &id, &json!({"state": state})).await?;
    Ok(json!({"model": model_json(&updated)}))
}

async fn delete(ctx: Ctx, params: Params) -> Reply {
    let (id, _) = load(&ctx, &params.str("model_id")?).await?;
    ctx.registry.update(&[EntityKind::ModelArtifact], &id, &json!({"state": "DELETED"})).await?;
    Ok(json!({}))
}

async fn update_custom(
    ctx: &Ctx,
    model_id: &str,
    change: impl FnOnce(&mut Map<String, Value>) -> Result<(), MlflowError>,
) -> Reply {
    let (id, a) = load(ctx, model_id).await?;
    let mut custom = a.get("customProperties").and_then(Value::as_object).cloned().unwrap_or_default();
    change(&mut custom)?;
    ctx.registry.update(&[EntityKind::ModelArtifact], &id, &json!({"customProperties": custom})).await?;
    Ok(json!({}))
}

async fn set_tags(ctx: Ctx, params: Params) -> Reply {
    let model_id = params.str("model_id")?;
    update_custom(&ctx, &model_id, |custom| key_values(&params, "tags", "", custom)).await
}

async fn delete_tag(ctx: Ctx, params: Params) -> Reply {
    let model_id = params.str("model_id")?;
    let key = params.str("tag_key")?;
    update_custom(&ctx, &model_id, |custom| {
        custom
            .remove(&key)
            .map(|_| ())
            .ok_or_else(|| MlflowError::not_found(format!("No tag with key '{key}' on logged model '{model_id}'")))
    })
    .await
}

async fn log_params(ctx: Ctx, params: Params) -> Reply {
    let model_id = params.str("model_id")?;
    update_custom(&ctx, &model_id, |custom| key_values(&params, "params", PARAM_PREFIX, custom)).await
}

/// The model a run produced is already linked to it (it was logged under the run); nothing
/// more is kept.
async fn log_outputs(ctx: Ctx, params: Params) -> Reply {
    let run = params.str("run_id")?;
    ctx.registry.get(EntityKind::ExperimentRun, &run).await.map_err(|e| match e {
        Error::NotFound(_) | Error::BadRequest(_) => MlflowError::not_found(format!("Run with id={run} not found")),
        e => e.into(),
    })?;
    Ok(json!({}))
}

/// `experiment_ids` plus MLflow's filter as `runs_artifact_repo` sends it
/// (`source_run_id = '<id>'`) or `name = '<name>'`.
async fn search(ctx: Ctx, params: Params) -> Reply {
    let experiments: Vec<String> =
        params.list("experiment_ids").iter().map(|e| e.as_str().map(str::to_owned).unwrap_or_else(|| e.to_string())).collect();
    let filter = params.opt_str("filter")?.unwrap_or_default().replace(" and ", " AND ");
    let mut wanted: Vec<(String, String)> = Vec::new();
    for clause in filter.split(" AND ").filter(|c| !c.trim().is_empty()) {
        let (key, value) = clause.split_once('=').ok_or_else(|| unsupported(&filter))?;
        let value = value.trim().trim_matches(|c| c == '\'' || c == '"').to_owned();
        let key = match key.trim() {
            "source_run_id" | "attributes.source_run_id" => SOURCE_RUN,
            "name" | "attributes.name" => "name",
            _ => return Err(unsupported(&filter)),
        };
        wanted.push((key.to_owned(), value));
    }
    let run = wanted.iter().find(|(k, _)| k == SOURCE_RUN).map(|(_, v)| v.clone());
    let page = ListParams { page_size: Some(MAX_SEARCHED_MODELS.to_string()), ..ListParams::default() };
    let listing = match run.as_deref().and_then(|r| r.parse::<i64>().ok()) {
        Some(run) => ctx.registry.list(&[EntityKind::ModelArtifact], Some((Link::Attribution, run)), &page).await?,
        None if run.is_some() => return Ok(json!({})),
        None => ctx.registry.list(&[EntityKind::ModelArtifact], None, &page).await?,
    };
    let document = match listing {
        Listing::Page(value) => value,
        Listing::Stream(_) => {
            return Err(MlflowError::new(
                ErrorCode::InvalidParameterValue,
                format!("more than {MAX_SEARCHED_MODELS} model artifacts: filter by source_run_id"),
            ))
        }
    };
    let models: Vec<Value> = document["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            let experiment = custom_str(a, EXPERIMENT);
            experiment.is_some()
                && a.get("state").and_then(Value::as_str) != Some("DELETED")
                && (experiments.is_empty() || experiments.iter().any(|e| Some(e.as_str()) == experiment))
                && wanted.iter().all(|(k, v)| match k.as_str() {
                    "name" => a["name"] == v.as_str(),
                    key => custom_str(a, key) == Some(v.as_str()),
                })
        })
        .map(model_json)
        .collect();
    Ok(if models.is_empty() { json!({}) } else { json!({"models": models}) })
}

fn unsupported(filter: &str) -> MlflowError {
    MlflowError::invalid(format!("Unsupported logged model filter {filter:?}: only source_run_id = '...' and name = '...'"))
}
