//! MLflow's tracking service (`MlflowService` of `service.proto`): experiments, runs, their
//! params, metrics and tags, metric history. One set of data with the Kubeflow API: an MLflow
//! experiment is a Kubeflow `Experiment`, a run an `ExperimentRun`, a param a `Parameter`
//! and a metric a `Metric` logged under the run (each log leaves a metric history row); tags
//! are custom properties under their own keys. Every call goes through `registry/`, in the
//! registry's own JSON, translated here both ways.

use serde_json::{json, Map, Value};

use super::error::{ErrorCode, MlflowError};
use super::{missing, Ctx, Operation, Params, Reply};
use crate::registry::{EntityKind, Error, Link, ListParams, Listing, MetricPoint, Registry, RunLog, RunSearch, RunView, Schema};

/// MLflow's `log-batch` limits (`mlflow/utils/validation.py`).
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// Longest param value MLflow stores.
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;
/// Params, metrics and tags one run shows (`runs/get`, `runs/search`); MLflow has no limit, a
/// run logging more keeps them, and `metrics/get-history` reads any one of them.
pub const MAX_RUN_DATA: usize = 2000;
/// `max_results` of `runs/search` at most, as MLflow's.
pub const MAX_SEARCH_RUNS_RESULTS: i64 = 50_000;
/// `max_results` of the search calls when absent, as MLflow's.
const DEFAULT_MAX_RESULTS: i64 = 1000;

pub const OPERATIONS: &[Operation] = &[
    op!("createExperiment", Post, "/experiments/create", Writer, create_experiment, proto),
    op!("getExperiment", Get, "/experiments/get", Reader, get_experiment, proto),
    op!("getExperimentByName", Get, "/experiments/get-by-name", Reader, get_experiment_by_name, proto),
    op!("searchExperiments", Post, "/experiments/search", Reader, search_experiments, proto),
    op!("searchExperimentsGet", Get, "/experiments/search", Reader, search_experiments, proto),
    op!("updateExperiment", Post, "/experiments/update", Writer, update_experiment, proto),
    op!("deleteExperiment", Post, "/experiments/delete", Admin, delete_experiment, proto),
    op!("restoreExperiment", Post, "/experiments/restore", Writer, restore_experiment, proto),
    op!("setExperimentTag", Post, "/experiments/set-experiment-tag", Writer, set_experiment_tag, proto),
    op!("createRun", Post, "/runs/create", Writer, create_run, proto),
    op!("getRun", Get, "/runs/get", Reader, get_run, proto),
    op!("updateRun", Post, "/runs/update", Writer, update_run, proto),
    op!("deleteRun", Post, "/runs/delete", Admin, delete_run, proto),
    op!("restoreRun", Post, "/runs/restore", Writer, restore_run, proto),
    op!("searchRuns", Post, "/runs/search", Reader, search_runs, proto),
    op!("logMetric", Post, "/runs/log-metric", Writer, log_metric, proto),
    op!("logParam", Post, "/runs/log-parameter", Writer, log_param, proto),
    op!("logBatch", Post, "/runs/log-batch", Writer, log_batch, proto),
    op!("logInputs", Post, "/runs/log-inputs", Writer, log_inputs, proto),
    op!("setTag", Post, "/runs/set-tag", Writer, set_tag, proto),
    op!("deleteTag", Post, "/runs/delete-tag", Writer, delete_tag, proto),
    op!("getMetricHistory", Get, "/metrics/get-history", Reader, get_metric_history, proto),
    op!(
        "getMetricHistoryBulkInterval",
        Get,
        "/metrics/get-history-bulk-interval",
        Reader,
        super::bulk_history::get_metric_history_bulk_interval,
        proto
    ),
];

/// A reply as MLflow's proto3 JSON writes it: unset fields (null) and empty lists left out.
pub(super) fn proto_json(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null() && !v.as_array().is_some_and(Vec::is_empty))
                .map(|(k, v)| (k, proto_json(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(proto_json).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------- ids, values, lists

/// An MLflow id this server gave out is a registry id; any other string names nothing.
fn id_of(raw: &str, not_found: impl FnOnce() -> MlflowError) -> Result<i64, MlflowError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(not_found)
}

fn run_not_found(run_id: &str) -> MlflowError {
    MlflowError::not_found(format!("Run with id={run_id} not found"))
}

fn experiment_not_found(id: &str) -> MlflowError {
    MlflowError::not_found(format!("No Experiment with id={id} exists"))
}

/// A registry read whose 404 is MLflow's message for that entity.
fn or_missing<T>(result: Result<T, Error>, not_found: impl FnOnce() -> MlflowError) -> Result<T, MlflowError> {
    match result {
        Err(Error::NotFound(_)) => Err(not_found()),
        other => other.map_err(MlflowError::from),
    }
}

fn string_value(value: &str) -> Value {
    json!({"metadataType": "MetadataStringValue", "string_value": value})
}

/// The string custom properties of a registry entity as MLflow tags.
fn tags_of(entity: &Value) -> Vec<Value> {
    let Some(custom) = entity.get("customProperties").and_then(Value::as_object) else { return Vec::new() };
    custom
        .iter()
        .filter_map(|(key, v)| v.get("string_value").and_then(Value::as_str).map(|value| json!({"key": key, "value": value})))
        .collect()
}

/// A `{key, value}` list from the request (`tags`), as custom properties.
fn tags_param(params: &Params, field: &str) -> Result<Map<String, Value>, MlflowError> {
    let mut custom = Map::new();
    for tag in params.list(field) {
        let key = tag.get("key").and_then(Value::as_str).ok_or_else(|| missing(&format!("{field}.key")))?;
        let value = tag.get("value").and_then(Value::as_str).unwrap_or_default();
        custom.insert(key.to_owned(), string_value(value));
    }
    Ok(custom)
}

fn millis(entity: &Value, field: &str) -> Option<i64> {
    match entity.get(field)? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn lifecycle(entity: &Value) -> &'static str {
    if entity.get("state").and_then(Value::as_str) == Some("ARCHIVED") {
        "deleted"
    } else {
        "active"
    }
}

/// Every item of a registry list (a page or a stream).
async fn items(listing: Listing) -> Result<Vec<Value>, MlflowError> {
    let document = match listing {
        Listing::Page(value) => value,
        Listing::Stream(mut pieces) => {
            let mut bytes = Vec::new();
            while let Some(piece) = pieces.recv().await {
                bytes.extend(piece?);
            }
            serde_json::from_slice(&bytes).map_err(|e| MlflowError::new(ErrorCode::InternalError, e.to_string()))?
        }
    };
    Ok(document.get("items").and_then(Value::as_array).cloned().unwrap_or_default())
}

fn page_of(size: usize) -> ListParams {
    ListParams { page_size: Some(size.to_string()), ..ListParams::default() }
}

// ---------------------------------------------------------------- experiments

/// MLflow's id of a registry experiment: `0` for the "Default" one, else its registry id.
pub(super) fn mlflow_experiment_id(e: &Value) -> &str {
    if e.get("name").and_then(Value::as_str) == Some(DEFAULT_EXPERIMENT) {
        DEFAULT_ID
    } else {
        e.get("id").and_then(Value::as_str).unwrap_or_default()
    }
}

fn experiment_json(e: &Value) -> Value {
    let id = mlflow_experiment_id(e);
    json!({
        "experiment_id": id,
        "name": e.get("name").cloned().unwrap_or_default(),
        "artifact_location": format!("mlflow-artifacts:/{id}"),
        "lifecycle_stage": lifecycle(e),
        "creation_time": millis(e, "createTimeSinceEpoch"),
        "last_update_time": millis(e, "lastUpdateTimeSinceEpoch"),
        "tags": tags_of(e),
        // MLflow 3's workspaces: everything here is in its default one.
        "workspace": "default",
    })
}

/// MLflow's "Default" experiment, id `0`: the registry's experiment of that name, created on
/// first use (registry ids start at 1). MLflow clients see it as `0` everywhere (its runs'
/// `experiment_id`, artifact locations); Kubeflow clients see its registry id.
pub const DEFAULT_EXPERIMENT: &str = "Default";
const DEFAULT_ID: &str = "0";

/// The registry id of the "Default" experiment, if it exists yet.
async fn default_registry_id(registry: &Registry) -> Result<Option<String>, MlflowError> {
    let query = ListParams { name: Some(DEFAULT_EXPERIMENT.into()), ..ListParams::default() };
    match registry.find(&[EntityKind::Experiment], &query).await {
        Err(Error::NotFound(_)) => Ok(None),
        other => Ok(other?["id"].as_str().map(str::to_owned)),
    }
}

/// An experiment by MLflow's id (`0` is "Default", created on first use).
pub(super) async fn experiment(registry: &Registry, raw: &str) -> Result<Value, MlflowError> {
    if raw == DEFAULT_ID {
        let query = ListParams { name: Some(DEFAULT_EXPERIMENT.into()), ..ListParams::default() };
        return match registry.find(&[EntityKind::Experiment], &query).await {
            Err(Error::NotFound(_)) => {
                let body = json!({"name": DEFAULT_EXPERIMENT});
                match registry.create(EntityKind::Experiment, Schema::Create, &body, None).await {
                    // Created meanwhile by another request.
                    Err(Error::Conflict(_)) => Ok(registry.find(&[EntityKind::Experiment], &query).await?),
                    other => Ok(other?),
                }
            }
            other => Ok(other?),
        };
    }
    id_of(raw, || experiment_not_found(raw))?;
    or_missing(registry.get(EntityKind::Experiment, raw).await, || experiment_not_found(raw))
}

async fn create_experiment(ctx: Ctx, params: Params) -> Reply {
    let name = params.str("name")?;
    if name.is_empty() {
        return Err(MlflowError::invalid("Invalid experiment name: ''"));
    }
    if params.opt_str("artifact_location")?.is_some_and(|l| !l.is_empty()) {
        return Err(MlflowError::invalid(
            "artifact_location is not supported: this server keeps every experiment's artifacts under its --artifacts-destination",
        ));
    }
    let body = json!({"name": name, "customProperties": tags_param(&params, "tags")?});
    let created = ctx.registry.create(EntityKind::Experiment, Schema::Create, &body, None).await.map_err(|e| match e {
        Error::Conflict(_) => MlflowError::new(ErrorCode::ResourceAlreadyExists, format!("Experiment '{name}' already exists.")),
        e => e.into(),
    })?;
    Ok(json!({"experiment_id": mlflow_experiment_id(&created)}))
}

async fn get_experiment(ctx: Ctx, params: Params) -> Reply {
    let id = params.str("experiment_id")?;
    Ok(json!({"experiment": experiment_json(&experiment(&ctx.registry, &id).await?)}))
}

async fn get_experiment_by_name(ctx: Ctx, params: Params) -> Reply {
    let name = params.str("experiment_name")?;
    let query = ListParams { name: Some(name.clone()), ..ListParams::default() };
    let found = or_missing(ctx.registry.find(&[EntityKind::Experiment], &query).await, || {
        MlflowError::not_found(format!("Could not find experiment with name '{name}'"))
    })?;
    Ok(json!({"experiment": experiment_json(&found)}))
}

fn max_results(params: &Params, limit: i64) -> Result<usize, MlflowError> {
    let n = params.opt_int("max_results")?.unwrap_or(DEFAULT_MAX_RESULTS);
    if !(1..=limit).contains(&n) {
        return Err(MlflowError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be at most {limit}."
        )));
    }
    Ok(n as usize)
}

/// `view_type` / `run_view_type`: which lifecycle stages a search returns.
fn view_keeps(params: &Params, field: &str, entity: &Value) -> Result<bool, MlflowError> {
    let stage = lifecycle(entity);
    Ok(match params.opt_str(field)?.as_deref().unwrap_or("ACTIVE_ONLY") {
        "ACTIVE_ONLY" | "1" => stage == "active",
        "DELETED_ONLY" | "2" => stage == "deleted",
        "ALL" | "3" => true,
        other => return Err(MlflowError::invalid(format!("Invalid value {other} for parameter '{field}' supplied."))),
    })
}

async fn search_experiments(ctx: Ctx, params: Params) -> Reply {
    let limit = max_results(&params, 50_000)?;
    let filter = params.opt_str("filter")?.filter(|f| !f.trim().is_empty());
    let name_filter = filter.as_deref().map(parse_name_filter).transpose()?;
    let mut listed = ListParams { page_size: Some(limit.to_string()), ..ListParams::default() };
    listed.next_page_token = params.opt_str("page_token")?.filter(|t| !t.is_empty());
    let all = ctx.registry.list(&[EntityKind::Experiment], None, &listed).await?;
    let (items, next) = match all {
        Listing::Page(page) => {
            let next = page.get("nextPageToken").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_owned);
            (page.get("items").and_then(Value::as_array).cloned().unwrap_or_default(), next)
        }
        stream => (items(stream).await?, None),
    };
    let mut experiments = Vec::new();
    for e in &items {
        if view_keeps(&params, "view_type", e)?
            && name_filter.as_ref().is_none_or(|(op, value)| name_matches(op, value, e["name"].as_str().unwrap_or_default()))
        {
            experiments.push(experiment_json(e));
        }
    }
    let mut reply = json!({"experiments": experiments});
    if let Some(next) = next {
        reply["next_page_token"] = next.into();
    }
    Ok(reply)
}

/// The one experiment filter supported: `name = '...'`, `name != '...'`, `name LIKE '...'`,
/// `name ILIKE '...'`.
fn parse_name_filter(filter: &str) -> Result<(String, String), MlflowError> {
    let unsupported =
        || MlflowError::invalid(format!("Unsupported experiment filter {filter:?}: only name = / != / LIKE / ILIKE '<value>'"));
    let rest =
        filter.trim().strip_prefix("name").or_else(|| filter.trim().strip_prefix("attributes.name")).ok_or_else(unsupported)?;
    let rest = rest.trim_start();
    let (op, value) = ["!=", "=", "ILIKE", "LIKE"]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|v| (op.to_string(), v.trim())))
        .ok_or_else(unsupported)?;
    let value = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
        .ok_or_else(unsupported)?;
    Ok((op, value.to_owned()))
}

fn name_matches(op: &str, pattern: &str, name: &str) -> bool {
    match op {
        "=" => name == pattern,
        "!=" => name != pattern,
        "LIKE" => super::run_search::like(pattern, name),
        _ => super::run_search::like(&pattern.to_lowercase(), &name.to_lowercase()),
    }
}

async fn patch_experiment(ctx: &Ctx, raw: &str, body: Value) -> Reply {
    let id = experiment(&ctx.registry, raw).await?["id"].as_str().unwrap_or_default().to_owned();
    ctx.registry.update(&[EntityKind::Experiment], &id, &body).await?;
    Ok(json!({}))
}

async fn update_experiment(ctx: Ctx, params: Params) -> Reply {
    let id = params.str("experiment_id")?;
    let name = params.str("new_name")?;
    patch_experiment(&ctx, &id, json!({"name": name})).await
}

async fn delete_experiment(ctx: Ctx, params: Params) -> Reply {
    let id = params.str("experiment_id")?;
    patch_experiment(&ctx, &id, json!({"state": "ARCHIVED"})).await
}

async fn restore_experiment(ctx: Ctx, params: Params) -> Reply {
    let id = params.str("experiment_id")?;
    patch_experiment(&ctx, &id, json!({"state": "LIVE"})).await
}

async fn set_experiment_tag(ctx: Ctx, params: Params) -> Reply {
    let id = params.str("experiment_id")?;
    let (key, value) = (params.str("key")?, params.opt_str("value")?.unwrap_or_default());
    let current = experiment(&ctx.registry, &id).await?;
    let mut custom = current.get("customProperties").and_then(Value::as_object).cloned().unwrap_or_default();
    custom.insert(key, string_value(&value));
    patch_experiment(&ctx, &id, json!({"customProperties": custom})).await
}

// ---------------------------------------------------------------- runs

async fn run(registry: &Registry, raw: &str) -> Result<Value, MlflowError> {
    id_of(raw, || run_not_found(raw))?;
    or_missing(registry.get(EntityKind::ExperimentRun, raw).await, || run_not_found(raw))
}

/// A run's info; `default` is the "Default" experiment's registry id, shown as `0`.
fn run_info(r: &Value, default: Option<&str>) -> Value {
    let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
    let experiment = r.get("experimentId").and_then(Value::as_str).unwrap_or_default();
    let experiment = if Some(experiment) == default { DEFAULT_ID } else { experiment };
    json!({
        "run_id": id,
        "run_uuid": id,
        "run_name": r.get("name").cloned().unwrap_or_default(),
        "experiment_id": experiment,
        "user_id": r.get("owner").cloned().unwrap_or(json!("")),
        "status": r.get("status").cloned().unwrap_or(json!("RUNNING")),
        "start_time": millis(r, "startTimeSinceEpoch"),
        "end_time": millis(r, "endTimeSinceEpoch"),
        "artifact_uri": format!("mlflow-artifacts:/{experiment}/{id}/artifacts"),
        "lifecycle_stage": lifecycle(r),
    })
}

/// A run's latest metrics and its params, as MLflow's `RunData` lists them.
async fn run_data(registry: &Registry, run_id: i64) -> Result<(Vec<Value>, Vec<Value>), MlflowError> {
    let kinds = [EntityKind::Metric, EntityKind::Parameter];
    let logged = items(registry.list(&kinds, Some((Link::Attribution, run_id)), &page_of(MAX_RUN_DATA)).await?).await?;
    let (mut metrics, mut params) = (Vec::new(), Vec::new());
    for a in &logged {
        match a.get("artifactType").and_then(Value::as_str) {
            Some("metric") => metrics.push(metric_json(a)),
            Some("parameter") => params.push(param_json(a)),
            _ => {}
        }
    }
    Ok((metrics, params))
}

/// A registry metric as MLflow's `Metric`.
fn metric_json(a: &Value) -> Value {
    json!({
        "key": a.get("name").cloned().unwrap_or_default(),
        "value": a.get("value").cloned().unwrap_or_default(),
        "timestamp": millis(a, "timestamp").unwrap_or_default(),
        "step": millis(a, "step").unwrap_or_default(),
    })
}

/// A registry parameter as MLflow's `Param`.
fn param_json(a: &Value) -> Value {
    json!({"key": a.get("name").cloned().unwrap_or_default(), "value": a.get("value").cloned().unwrap_or_default()})
}

async fn run_json(registry: &Registry, r: &Value, default: Option<&str>) -> Result<Value, MlflowError> {
    let id: i64 = r.get("id").and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or_default();
    let (metrics, params) = run_data(registry, id).await?;
    Ok(run_with_data(r, metrics, params, default))
}

/// `default` is the "Default" experiment's registry id, shown as `0`.
fn run_with_data(r: &Value, metrics: Vec<Value>, params: Vec<Value>, default: Option<&str>) -> Value {
    json!({
        "info": run_info(r, default),
        "data": {"metrics": metrics, "params": params, "tags": tags_of(r)},
        "inputs": {},
        "outputs": {},
    })
}

async fn create_run(ctx: Ctx, params: Params) -> Reply {
    let experiment_id = params.opt_str("experiment_id")?.unwrap_or_else(|| "0".into());
    let parent = experiment(&ctx.registry, &experiment_id).await?;
    let experiment_id = parent["id"].as_str().unwrap_or_default().to_owned();
    let default = (mlflow_experiment_id(&parent) == DEFAULT_ID).then_some(experiment_id.as_str());
    let mut custom = tags_param(&params, "tags")?;
    let name = params
        .opt_str("run_name")?
        .filter(|n| !n.is_empty())
        .or_else(|| custom.get("mlflow.runName").and_then(|v| v["string_value"].as_str()).map(str::to_owned))
        .unwrap_or_else(|| format!("run-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
    custom.insert("mlflow.runName".into(), string_value(&name));
    let start = params.opt_int("start_time")?.unwrap_or_else(now_ms);
    let mut body = json!({
        "name": name,
        "experimentId": experiment_id,
        "status": "RUNNING",
        "startTimeSinceEpoch": start.to_string(),
        "customProperties": custom,
    });
    if let Some(user) = params.opt_str("user_id")?.filter(|u| !u.is_empty()) {
        body["owner"] = user.into();
    }
    let created = ctx.registry.create(EntityKind::ExperimentRun, Schema::Create, &body, None).await?;
    let mut run = run_json(&ctx.registry, &created, default).await?;
    // MLflow's `CreateRun` answers without the (empty) outputs its `GetRun` has.
    run.as_object_mut().map(|r| r.remove("outputs"));
    Ok(json!({ "run": run }))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

async fn get_run(ctx: Ctx, params: Params) -> Reply {
    let id = params.opt_str("run_id")?.or(params.opt_str("run_uuid")?).ok_or_else(|| missing("run_id"))?;
    let r = run(&ctx.registry, &id).await?;
    let default = default_registry_id(&ctx.registry).await?;
    Ok(json!({"run": run_json(&ctx.registry, &r, default.as_deref()).await?}))
}

fn run_id_param(params: &Params) -> Result<String, MlflowError> {
    params.opt_str("run_id")?.or(params.opt_str("run_uuid")?).ok_or_else(|| missing("run_id"))
}

async fn update_run(ctx: Ctx, params: Params) -> Reply {
    let id = run_id_param(&params)?;
    let current = run(&ctx.registry, &id).await?;
    let mut body = json!({});
    if let Some(status) = params.opt_str("status")? {
        body["status"] = status.into();
    }
    if let Some(end) = params.opt_int("end_time")? {
        body["endTimeSinceEpoch"] = end.to_string().into();
    }
    if let Some(name) = params.opt_str("run_name")?.filter(|n| !n.is_empty()) {
        let mut custom = current.get("customProperties").and_then(Value::as_object).cloned().unwrap_or_default();
        custom.insert("mlflow.runName".into(), string_value(&name));
        body["name"] = name.into();
        body["customProperties"] = custom.into();
    }
    let updated = ctx.registry.update(&[EntityKind::ExperimentRun], &id, &body).await?;
    let default = default_registry_id(&ctx.registry).await?;
    Ok(json!({"run_info": run_info(&updated, default.as_deref())}))
}

async fn set_run_state(ctx: Ctx, params: Params, state: &str) -> Reply {
    let id = run_id_param(&params)?;
    run(&ctx.registry, &id).await?;
    ctx.registry.update(&[EntityKind::ExperimentRun], &id, &json!({"state": state})).await?;
    Ok(json!({}))
}

async fn delete_run(ctx: Ctx, params: Params) -> Reply {
    set_run_state(ctx, params, "ARCHIVED").await
}

async fn restore_run(ctx: Ctx, params: Params) -> Reply {
    set_run_state(ctx, params, "LIVE").await
}

/// A run that may be logged to: it exists and is not deleted.
async fn active_run(registry: &Registry, raw: &str) -> Result<Value, MlflowError> {
    let r = run(registry, raw).await?;
    if lifecycle(&r) != "active" {
        return Err(MlflowError::invalid(format!("The run {raw} must be in the 'active' state. Current state is deleted.")));
    }
    Ok(r)
}

fn metric_of(value: &Value, path: &str) -> Result<MetricPoint, MlflowError> {
    let params = Params(value.as_object().cloned().unwrap_or_default());
    let key = params.opt_str("key")?.ok_or_else(|| missing(&format!("{path}key")))?;
    let number = match params.0.get("value") {
        Some(Value::Number(n)) => n.as_f64(),
        // MLflow's JSON writes NaN and the infinities as strings.
        Some(Value::String(s)) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            s => s.parse().ok(),
        },
        _ => None,
    }
    .ok_or_else(|| MlflowError::invalid(format!("Missing value for required parameter '{path}value'.")))?;
    if !number.is_finite() {
        return Err(MlflowError::invalid(format!("Metric '{key}' has a value of {number}, which this server cannot store")));
    }
    let timestamp = params.opt_int("timestamp")?.ok_or_else(|| missing(&format!("{path}timestamp")))?;
    let step = params.opt_int("step")?.unwrap_or(0);
    Ok(MetricPoint { key, value: number, timestamp, step })
}

/// Writes one logging call to the run in one transaction (`registry/service/runlog.rs`).
async fn log_to_run(ctx: &Ctx, run_id: &str, log: RunLog) -> Reply {
    id_of(run_id, || run_not_found(run_id))?;
    ctx.registry.mlflow_log_run(run_id, log).await?;
    Ok(json!({}))
}

async fn log_metric(ctx: Ctx, params: Params) -> Reply {
    let id = run_id_param(&params)?;
    let metric = metric_of(&Value::Object(params.0.clone()), "")?;
    log_to_run(&ctx, &id, RunLog { metrics: vec![metric], ..RunLog::default() }).await
}

fn param_of(value: &Value, path: &str) -> Result<(String, String), MlflowError> {
    let params = Params(value.as_object().cloned().unwrap_or_default());
    let key = params.opt_str("key")?.ok_or_else(|| missing(&format!("{path}key")))?;
    let value = params.opt_str("value")?.unwrap_or_default();
    if value.chars().count() > MAX_PARAM_VAL_LENGTH {
        return Err(MlflowError::invalid(format!(
            "Param value '{}...' had length {}, which exceeded length limit of {MAX_PARAM_VAL_LENGTH}",
            value.chars().take(20).collect::<String>(),
            value.chars().count()
        )));
    }
    Ok((key, value))
}

async fn log_param(ctx: Ctx, params: Params) -> Reply {
    let id = run_id_param(&params)?;
    let param = param_of(&Value::Object(params.0.clone()), "")?;
    log_to_run(&ctx, &id, RunLog { params: vec![param], ..RunLog::default() }).await
}

fn batch_limit(entity: &str, limit: usize, length: usize) -> Result<(), MlflowError> {
    if length > limit {
        return Err(MlflowError::invalid(format!(
            "A batch logging request can contain at most {limit} {entity}. Got {length} {entity}. Please split up {entity} across multiple requests and try again."
        )));
    }
    Ok(())
}

async fn log_batch(ctx: Ctx, params: Params) -> Reply {
    let id = run_id_param(&params)?;
    let (metrics, new_params, tags) = (params.list("metrics"), params.list("params"), params.list("tags"));
    batch_limit("metrics", MAX_METRICS_PER_BATCH, metrics.len())?;
    batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, new_params.len())?;
    batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, tags.len())?;
    batch_limit("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, metrics.len() + new_params.len() + tags.len())?;
    let metrics =
        metrics.iter().enumerate().map(|(i, m)| metric_of(m, &format!("metrics[{i}]."))).collect::<Result<Vec<_>, _>>()?;
    let params_logged =
        new_params.iter().enumerate().map(|(i, p)| param_of(p, &format!("params[{i}]."))).collect::<Result<Vec<_>, _>>()?;
    let mut tag_list = Vec::new();
    for tag in &tags {
        let key = tag.get("key").and_then(Value::as_str).ok_or_else(|| missing("tags.key"))?;
        tag_list.push((key.to_owned(), tag.get("value").and_then(Value::as_str).unwrap_or_default().to_owned()));
    }
    log_to_run(&ctx, &id, RunLog { params: params_logged, metrics, tags: tag_list }).await
}

/// Datasets are not kept (the registry has no place for MLflow's dataset inputs yet); the call
/// succeeds so that autologging goes on.
async fn log_inputs(ctx: Ctx, params: Params) -> Reply {
    let id = run_id_param(&params)?;
    active_run(&ctx.registry, &id).await?;
    Ok(json!({}))
}

async fn set_tag(ctx: Ctx, params: Params) -> Reply {
    let id = run_id_param(&params)?;
    let (key, value) = (params.str("key")?, params.opt_str("value")?.unwrap_or_default());
    log_to_run(&ctx, &id, RunLog { tags: vec![(key, value)], ..RunLog::default() }).await
}

async fn delete_tag(ctx: Ctx, params: Params) -> Reply {
    let id = run_id_param(&params)?;
    let key = params.str("key")?;
    let current = active_run(&ctx.registry, &id).await?;
    let mut custom = current.get("customProperties").and_then(Value::as_object).cloned().unwrap_or_default();
    if custom.remove(&key).is_none() {
        return Err(MlflowError::not_found(format!("No tag with name: {key} in run with id {id}")));
    }
    ctx.registry.update(&[EntityKind::ExperimentRun], &id, &json!({"customProperties": custom})).await?;
    Ok(json!({}))
}

async fn get_metric_history(ctx: Ctx, params: Params) -> Reply {
    let id = run_id_param(&params)?;
    let key = params.str("metric_key")?;
    run(&ctx.registry, &id).await?;
    let size = params.opt_int("max_results")?.filter(|n| *n > 0).unwrap_or(25_000);
    let query = ListParams {
        name: Some(key.clone()),
        page_size: Some(size.to_string()),
        next_page_token: params.opt_str("page_token")?.filter(|t| !t.is_empty()),
        ..ListParams::default()
    };
    let rows = items(ctx.registry.metric_history(Some(&id), &query).await?).await?;
    let metrics: Vec<Value> = rows
        .iter()
        // The name's LIKE ignores case on SQLite and in MariaDB's collation; MLflow's keys do not.
        .filter(|m| m.get("name").and_then(Value::as_str) == Some(key.as_str()))
        .map(|m| {
            json!({
                "key": key,
                "value": m.get("value").cloned().unwrap_or_default(),
                "timestamp": millis(m, "timestamp").unwrap_or_default(),
                "step": millis(m, "step").unwrap_or_default(),
            })
        })
        .collect();
    Ok(json!({"metrics": metrics}))
}

// ---------------------------------------------------------------- run search

/// The registry ids of a search's `experiment_ids`: `0` is the Default experiment; an id
/// naming nothing finds no runs, as in MLflow.
async fn searched_experiments(registry: &Registry, params: &Params) -> Result<Vec<i64>, MlflowError> {
    let mut ids = Vec::new();
    for raw in params.list("experiment_ids") {
        let raw = raw.as_str().map(str::to_owned).unwrap_or_else(|| raw.to_string());
        let id = raw.parse::<i64>().map_err(|_| {
            MlflowError::invalid(format!("Invalid experiment ID '{raw}'. Experiment ID must be a valid integer."))
        })?;
        if id == 0 {
            ids.extend(experiment(registry, "0").await?["id"].as_str().and_then(|s| s.parse::<i64>().ok()));
        } else if id > 0 {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

async fn search_runs(ctx: Ctx, params: Params) -> Reply {
    let limit = max_results(&params, MAX_SEARCH_RUNS_RESULTS)?;
    let conditions = super::run_search::parse_filter(params.opt_str("filter")?.as_deref().unwrap_or_default())?;
    let order = super::run_search::parse_order(&params.list("order_by"))?;
    let offset = super::search::parse_token(params.opt_str("page_token")?.as_deref())?;
    let view = match params.opt_str("run_view_type")?.as_deref().unwrap_or("ACTIVE_ONLY") {
        "ACTIVE_ONLY" | "1" => RunView::Active,
        "DELETED_ONLY" | "2" => RunView::Deleted,
        "ALL" | "3" => RunView::All,
        other => return Err(MlflowError::invalid(format!("Invalid value {other} for parameter 'run_view_type' supplied."))),
    };
    let search = RunSearch {
        experiments: searched_experiments(&ctx.registry, &params).await?,
        conditions,
        order,
        view,
        offset,
        limit: limit as u32,
        data_per_run: MAX_RUN_DATA as u32,
    };
    let (found, more) = ctx.registry.mlflow_search_runs(&search).await?;
    let default = default_registry_id(&ctx.registry).await?;
    let runs: Vec<Value> = found
        .iter()
        .map(|f| {
            run_with_data(
                &f.run,
                f.metrics.iter().map(metric_json).collect(),
                f.params.iter().map(param_json).collect(),
                default.as_deref(),
            )
        })
        .collect();
    let mut reply = json!({"runs": runs});
    if more {
        reply["next_page_token"] = super::search::page_token(offset.saturating_add(limit as u32)).into();
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_name_filters() {
        assert_eq!(parse_name_filter("name = 'iris'").unwrap(), ("=".into(), "iris".into()));
        assert_eq!(parse_name_filter("name LIKE 'ir%'").unwrap(), ("LIKE".into(), "ir%".into()));
        assert!(parse_name_filter("tags.x = 'y'").is_err());
    }
}
