//! `--mlflow`: MLflow's Model Registry REST API (`/api/2.0/mlflow`), on this server over each
//! backend and, with `--mlflow-url`, on MLflow's own server for comparison. Before the runs,
//! [`MODELS`] registered models are created through the API, each with one version (an `s3://`
//! source) and the alias `champion` on it.
//!
//! - **M1 register**: `registered-models/create`, `model-versions/create` and
//!   `registered-models/alias` for a new model. One op = those three requests.
//! - **M2 get by alias**: `GET registered-models/alias?name=&alias=champion` over the prepared
//!   models, in turn. One op = one request; the answer must be that model's version 1.
//! - **M3 search**: alternately `registered-models/search` with `name LIKE 'mlf-1%'`
//!   (about 1/16 of the models, `max_results=100`) and `model-versions/search` with
//!   `name = '<a prepared model>'`. One op = one request; every model must match.
//! - **M4 log-metric**: `runs/log-metric` of one metric (step counting up) to the client's own
//!   run. One op = one request.
//! - **M5 log-batch**: `runs/log-batch` of 10 metrics (keys `m0`..`m9`, the same step) and one new
//!   param to the client's own run. One op = one request.
//!
//! - **M6 search-runs**: `runs/search` over an experiment of [`SEARCHED_RUNS`] runs (each with
//!   a metric `acc`, a param `lr` and a tag `t`, prepared through log-batch), alternately
//!   `metrics.acc > 0.5 and params.lr = '0.1'` ordered by `metrics.acc DESC` and
//!   `tags.t = 'even'` in the default order (newest start first), `max_results=100`. One op =
//!   one request; every run found must match.
//!
//! `--workloads m4,m5` (any of m1-m6) runs only those; by default all six.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::api::{Api, ApiError};
use crate::workload::{self, OpError, RunResult, Workload};

/// Registered models prepared before M2 and M3.
pub const MODELS: usize = 1000;
/// Runs prepared before M6, in one experiment.
pub const SEARCHED_RUNS: usize = 2000;
/// M6's first filter and its order.
const RUN_FILTER: &str = "metrics.acc > 0.5 and params.lr = '0.1'";

/// M3's name filter: names are `mlf-` and 32 hex digits, so about 1/16 match.
const NAME_PREFIX: &str = "mlf-1";

/// MLflow's REST API of one server.
#[derive(Debug, Clone)]
pub struct MlflowApi {
    http: reqwest::Client,
    base: String,
}

impl MlflowApi {
    pub fn new(server: &str) -> anyhow::Result<MlflowApi> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(MlflowApi { http, base: format!("{}/api/2.0/mlflow", server.trim_end_matches('/')) })
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Result<Value, ApiError> {
        let url = format!("{}/{path}", self.base);
        let request = if method == Method::GET {
            let query: Vec<(String, String)> = body
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect())
                .unwrap_or_default();
            self.http.get(&url).query(&query)
        } else {
            self.http.request(method.clone(), &url).json(&body)
        };
        let failed = |status, detail| ApiError { request: format!("{method} {url} {body}"), status, detail };
        let response = request.send().await.map_err(|e| failed(None, e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| failed(Some(status), e.to_string()))?;
        if !status.is_success() {
            return Err(failed(Some(status), text));
        }
        serde_json::from_str(&text).map_err(|e| failed(Some(status), format!("unexpected body ({e}): {text}")))
    }

    /// A new model with version 1 and the alias `champion` on it; returns its name.
    async fn register(&self) -> Result<String, ApiError> {
        let name = format!("mlf-{}", uuid::Uuid::new_v4().simple());
        self.call(Method::POST, "registered-models/create", json!({"name": name, "tags": [{"key": "team", "value": "a"}]}))
            .await?;
        let source = format!("s3://bench/{name}/1");
        let created = self.call(Method::POST, "model-versions/create", json!({"name": name, "source": source})).await?;
        let version = created["model_version"]["version"].as_str().unwrap_or("1").to_owned();
        self.call(Method::POST, "registered-models/alias", json!({"name": name, "alias": "champion", "version": version}))
            .await?;
        Ok(name)
    }
}

/// One client of an MLflow workload, with what it keeps between its ops.
#[derive(Debug)]
pub struct MlflowWorker {
    api: MlflowApi,
    models: Arc<[String]>,
    next: usize,
    workload: Workload,
    /// The run M4 and M5 log to, this client's own.
    run: String,
    /// The experiment M6 searches.
    searched: String,
}

impl MlflowWorker {
    pub async fn op(&mut self) -> Result<(), OpError> {
        let model = &self.models[self.next % self.models.len()];
        self.next += 1;
        match self.workload {
            Workload::MlflowRegister => {
                self.api.register().await?;
            }
            Workload::MlflowAlias => {
                let query = json!({"name": model, "alias": "champion"});
                let found = self.api.call(Method::GET, "registered-models/alias", query).await?;
                if found["model_version"]["name"] != model.as_str() || found["model_version"]["version"] != "1" {
                    return Err(OpError::WrongAnswer(format!("alias champion of {model}: {found}")));
                }
            }
            Workload::MlflowLogMetric => {
                let metric = json!({"run_id": self.run, "key": "loss", "value": 1.0 / self.next as f64, "timestamp": now_ms(), "step": self.next});
                self.api.call(Method::POST, "runs/log-metric", metric).await?;
            }
            Workload::MlflowLogBatch => {
                let (timestamp, step) = (now_ms(), self.next);
                let metrics: Vec<Value> =
                    (0..10).map(|k| json!({"key": format!("m{k}"), "value": k as f64 + step as f64, "timestamp": timestamp, "step": step})).collect();
                let params = [json!({"key": format!("p{step}"), "value": "x"})];
                self.api
                    .call(Method::POST, "runs/log-batch", json!({"run_id": self.run, "metrics": metrics, "params": params}))
                    .await?;
            }
            Workload::MlflowSearchRuns => {
                let by_metric = self.next.is_multiple_of(2);
                let query = if by_metric {
                    json!({"experiment_ids": [self.searched], "filter": RUN_FILTER, "order_by": ["metrics.acc DESC"], "max_results": 100})
                } else {
                    json!({"experiment_ids": [self.searched], "filter": "tags.t = 'even'", "max_results": 100})
                };
                let page = self.api.call(Method::POST, "runs/search", query.clone()).await?;
                let runs = page["runs"].as_array().cloned().unwrap_or_default();
                let wrong = |r: &Value| {
                    let has = |list: &str, key: &str, ok: &dyn Fn(&Value) -> bool| {
                        r["data"][list].as_array().is_some_and(|l| l.iter().any(|e| e["key"] == key && ok(&e["value"])))
                    };
                    if by_metric {
                        !(has("metrics", "acc", &|v| v.as_f64().is_some_and(|a| a > 0.5)) && has("params", "lr", &|v| v == "0.1"))
                    } else {
                        !has("tags", "t", &|v| v == "even")
                    }
                };
                if runs.len() != 100 || runs.iter().any(wrong) {
                    return Err(OpError::WrongAnswer(format!("runs/search {query}: {} runs, or one not matching", runs.len())));
                }
            }
            _ if self.next.is_multiple_of(2) => {
                let query = json!({"filter": format!("name LIKE '{NAME_PREFIX}%'"), "max_results": "100"});
                let page = self.api.call(Method::GET, "registered-models/search", query).await?;
                let items = page["registered_models"].as_array().cloned().unwrap_or_default();
                if items.iter().any(|m| !m["name"].as_str().is_some_and(|n| n.starts_with(NAME_PREFIX))) {
                    return Err(OpError::WrongAnswer(format!("a model not matching {NAME_PREFIX}%: {page}")));
                }
            }
            _ => {
                let query = json!({"filter": format!("name = '{model}'")});
                let page = self.api.call(Method::GET, "model-versions/search", query).await?;
                if page["model_versions"].as_array().map(Vec::len) != Some(1) {
                    return Err(OpError::WrongAnswer(format!("versions of {model}: {page}")));
                }
            }
        }
        Ok(())
    }
}

/// The prepared models, created by 8 clients at once.
pub async fn prepare(api: &MlflowApi) -> anyhow::Result<Vec<String>> {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                let mut names = Vec::new();
                for _ in 0..MODELS / 8 {
                    names.push(api.register().await?);
                }
                Ok::<_, ApiError>(names)
            })
        })
        .collect();
    let mut names = Vec::new();
    for task in tasks {
        names.extend(task.await??);
    }
    Ok(names)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

const ALL: [Workload; 6] = [
    Workload::MlflowRegister,
    Workload::MlflowAlias,
    Workload::MlflowSearch,
    Workload::MlflowLogMetric,
    Workload::MlflowLogBatch,
    Workload::MlflowSearchRuns,
];

/// M6's experiment: [`SEARCHED_RUNS`] runs logged by 8 clients at once; returns its id.
async fn searched_runs(api: &MlflowApi) -> anyhow::Result<String> {
    let name = format!("searched-{}", uuid::Uuid::new_v4().simple());
    let experiment = api.call(Method::POST, "experiments/create", json!({"name": name})).await?;
    let experiment = experiment["experiment_id"].as_str().unwrap_or_default().to_owned();
    let tasks: Vec<_> = (0..8)
        .map(|client| {
            let (api, experiment) = (api.clone(), experiment.clone());
            tokio::spawn(async move {
                for i in (client..SEARCHED_RUNS).step_by(8) {
                    let body = json!({"experiment_id": experiment, "start_time": 1_700_000_000_000_i64 + i as i64});
                    let run = api.call(Method::POST, "runs/create", body).await?;
                    let run = run["run"]["info"]["run_id"].as_str().unwrap_or_default().to_owned();
                    let batch = json!({
                        "run_id": run,
                        "metrics": [{"key": "acc", "value": (i % 100) as f64 / 100.0, "timestamp": 0, "step": 0}],
                        "params": [{"key": "lr", "value": format!("0.{}", i % 4)}],
                        "tags": [{"key": "t", "value": if i % 2 == 0 { "even" } else { "odd" }}],
                    });
                    api.call(Method::POST, "runs/log-batch", batch).await?;
                }
                Ok::<_, ApiError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(experiment)
}

/// A new run (in a new experiment) for each of `n` clients.
async fn runs(api: &MlflowApi, n: usize) -> anyhow::Result<Vec<String>> {
    let experiment =
        api.call(Method::POST, "experiments/create", json!({"name": format!("bench-{}", uuid::Uuid::new_v4().simple())})).await?;
    let mut runs = Vec::new();
    for _ in 0..n {
        let created = api
            .call(Method::POST, "runs/create", json!({"experiment_id": experiment["experiment_id"], "start_time": now_ms()}))
            .await?;
        runs.push(created["run"]["info"]["run_id"].as_str().unwrap_or_default().to_owned());
    }
    Ok(runs)
}

/// M1-M5 (or those of `only` among them) at every client count against the server at `server`.
pub async fn bench(server: &str, clients: &[u32], duration: Duration, only: &[Workload]) -> anyhow::Result<Vec<RunResult>> {
    let chosen: Vec<Workload> = ALL.into_iter().filter(|w| only.contains(w) || !only.iter().any(|o| ALL.contains(o))).collect();
    let api = MlflowApi::new(server)?;
    let registry_workloads = [Workload::MlflowAlias, Workload::MlflowSearch];
    let models: Arc<[String]> = if chosen.iter().any(|w| registry_workloads.contains(w)) {
        prepare(&api).await?.into()
    } else {
        vec![String::new()].into()
    };
    let searched = if chosen.contains(&Workload::MlflowSearchRuns) { searched_runs(&api).await? } else { String::new() };
    // The closed-loop runner takes the Kubeflow client too; MLflow's workers do not use it.
    let runner = Api::new(server, None)?;
    let mut out = Vec::new();
    for workload in chosen {
        for &n in clients {
            eprintln!("[{server}] {}, {n} clients, {} s", workload.label(), duration.as_secs());
            let runs = runs(&api, n as usize).await?;
            let workers = runs
                .into_iter()
                .enumerate()
                .map(|(i, run)| MlflowWorker {
                    api: api.clone(),
                    models: Arc::clone(&models),
                    next: i * models.len() / n as usize,
                    workload,
                    run,
                    searched: searched.clone(),
                })
                .collect();
            out.push(workload::mlflow(&runner, workload, workers, duration).await);
        }
    }
    Ok(out)
}

/// One line per (server, workload, clients).
pub fn table(rows: &[(String, RunResult)]) -> String {
    let mut out = format!(
        "{:<22} {:<18} {:>7} {:>9} {:>10} {:>8} {:>8} {:>7}\n",
        "server", "workload", "clients", "ops", "ops/s", "p50 ms", "p99 ms", "errors"
    );
    for (server, run) in rows {
        let _ = writeln!(
            out,
            "{:<22} {:<18} {:>7} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>7}",
            server,
            run.workload.label(),
            run.clients,
            run.ops(),
            run.ops_per_sec(),
            run.latency_ms(0.50),
            run.latency_ms(0.99),
            run.errors
        );
    }
    for (server, run) in rows {
        if let Some(error) = &run.first_error {
            let _ = write!(out, "\nfirst error, {server} {} with {} clients:\n  {error}\n", run.workload.label(), run.clients);
        }
    }
    out
}
