//! The three workloads, and the closed-loop runner that times them.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use crate::api::{Api, ApiError, Model};

/// Concurrent requests used to create the models W3 walks over (not measured).
const SEED_WORKERS: usize = 8;
/// Latencies are recorded in microseconds, from 1 µs to 60 s.
const MAX_LATENCY_MICROS: u64 = 60_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Register,
    PointRead,
    ListWalk,
}

impl Workload {
    pub fn label(self) -> &'static str {
        match self {
            Workload::Register => "W1 register",
            Workload::PointRead => "W2 point reads",
            Workload::ListWalk => "W3 list walk",
        }
    }
}

/// Why an op failed.
#[derive(Debug, Clone)]
pub enum OpError {
    Api(ApiError),
    /// A 2xx answer with the wrong content.
    WrongAnswer(String),
}

impl From<ApiError> for OpError {
    fn from(error: ApiError) -> Self {
        OpError::Api(error)
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::Api(error) => error.fmt(f),
            OpError::WrongAnswer(text) => f.write_str(text),
        }
    }
}

/// The measurements of one (workload, clients) run.
#[derive(Debug)]
pub struct RunResult {
    pub workload: Workload,
    pub clients: u32,
    pub elapsed: Duration,
    /// Latency of every successful op, in microseconds.
    pub latency: Histogram<u64>,
    pub errors: u64,
    /// The earliest failure.
    pub first_error: Option<OpError>,
}

impl RunResult {
    pub fn ops(&self) -> u64 {
        self.latency.len()
    }

    pub fn ops_per_sec(&self) -> f64 {
        self.ops() as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at `quantile` (0.0..=1.0), in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// W1: each op registers a new model with one version holding one ONNX model artifact.
/// Returns the models created, including those whose version or artifact then failed.
pub async fn register(api: &Api, clients: u32, duration: Duration) -> (RunResult, Vec<Model>) {
    let workers = (0..clients)
        .map(|_| Worker::Register {
            created: Vec::new(),
        })
        .collect();
    let (result, workers) = run(api, Workload::Register, workers, duration).await;
    let created = workers
        .into_iter()
        .flat_map(|worker| match worker {
            Worker::Register { created } => created,
            _ => Vec::new(),
        })
        .collect();
    (result, created)
}

/// W2: each op reads one of `models`, alternately by id and by name; the clients start at
/// evenly spread positions in the list.
pub async fn point_reads(
    api: &Api,
    models: &[Model],
    clients: u32,
    duration: Duration,
) -> RunResult {
    let models: Arc<[Model]> = models.into();
    let workers = (0..clients as usize)
        .map(|i| Worker::PointRead {
            models: Arc::clone(&models),
            next: i * models.len() / clients as usize,
        })
        .collect();
    run(api, Workload::PointRead, workers, duration).await.0
}

/// W3: each op fetches the next page of 100 models in id order; a complete walk must see
/// `expected` models.
pub async fn list_walk(api: &Api, expected: usize, clients: u32, duration: Duration) -> RunResult {
    let workers = (0..clients)
        .map(|_| Worker::ListWalk {
            expected,
            token: String::new(),
            seen: 0,
        })
        .collect();
    run(api, Workload::ListWalk, workers, duration).await.0
}

/// Creates `count` registered models (untimed); any failure is an error.
pub async fn seed_models(api: &Api, count: usize) -> anyhow::Result<Vec<Model>> {
    let mut workers = JoinSet::new();
    for worker in 0..SEED_WORKERS {
        let share = count / SEED_WORKERS + usize::from(worker < count % SEED_WORKERS);
        let api = api.clone();
        workers.spawn(async move {
            let mut models = Vec::with_capacity(share);
            for _ in 0..share {
                models.push(api.create_model(&unique_name()).await?);
            }
            Ok::<_, ApiError>(models)
        });
    }
    let mut models = Vec::with_capacity(count);
    while let Some(done) = workers.join_next().await {
        models.extend(done?.context("seeding registered models for W3")?);
    }
    Ok(models)
}

/// One client of a workload, with what it keeps between its ops.
#[derive(Debug)]
enum Worker {
    Register {
        created: Vec<Model>,
    },
    PointRead {
        models: Arc<[Model]>,
        next: usize,
    },
    ListWalk {
        expected: usize,
        token: String,
        seen: usize,
    },
}

impl Worker {
    async fn op(&mut self, api: &Api) -> Result<(), OpError> {
        match self {
            Worker::Register { created } => register_model(api, created).await,
            Worker::PointRead { models, next } => {
                let model = &models[*next % models.len()];
                let by_name = *next % 2 == 1;
                *next += 1;
                read_model(api, model, by_name).await
            }
            Worker::ListWalk {
                expected,
                token,
                seen,
            } => walk_page(api, *expected, token, seen).await,
        }
    }
}

async fn register_model(api: &Api, created: &mut Vec<Model>) -> Result<(), OpError> {
    let model = api.create_model(&unique_name()).await?;
    let model_id = model.id.clone();
    created.push(model);
    let version_id = api.create_version(&model_id, "v1").await?;
    api.create_model_artifact(&version_id, "model", "s3://bench/model.onnx")
        .await?;
    Ok(())
}

async fn read_model(api: &Api, model: &Model, by_name: bool) -> Result<(), OpError> {
    let found = if by_name {
        api.find_model(&model.name).await?
    } else {
        api.get_model(&model.id).await?
    };
    if found.id != model.id || found.name != model.name {
        return Err(OpError::WrongAnswer(format!(
            "asked for registered model {} ({}), got {} ({})",
            model.id, model.name, found.id, found.name
        )));
    }
    Ok(())
}

/// Fetches the page after `token`; at the end of the list checks the walk's count and starts
/// over.
async fn walk_page(
    api: &Api,
    expected: usize,
    token: &mut String,
    seen: &mut usize,
) -> Result<(), OpError> {
    let page = api.list_models(token).await?;
    *seen += page.items.len();
    if !page.next_page_token.is_empty() {
        *token = page.next_page_token;
        return Ok(());
    }
    token.clear();
    let walked = std::mem::take(seen);
    if walked != expected {
        return Err(OpError::WrongAnswer(format!(
            "a full walk of GET /registered_models?pageSize=100 saw {walked} models, {expected} exist"
        )));
    }
    Ok(())
}

/// A registered model name no other op uses. Only `[a-z0-9-]`: `/registered_model?name=`
/// matches with SQL `LIKE`, where `_` and `%` are wildcards.
fn unique_name() -> String {
    format!("bench-{}", uuid::Uuid::new_v4().simple())
}

/// Runs every worker in its own task, each sending its next op as soon as the previous one is
/// answered, until `duration` has passed; returns the merged measurements and the workers.
async fn run(
    api: &Api,
    workload: Workload,
    workers: Vec<Worker>,
    duration: Duration,
) -> (RunResult, Vec<Worker>) {
    let clients = u32::try_from(workers.len()).expect("at most 256 clients");
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|worker| tokio::spawn(drive(api.clone(), worker, deadline)))
        .collect();
    let mut total = Tally::new();
    let mut workers = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (tally, worker) = task.await.expect("a client task panicked");
        total.merge(tally);
        workers.push(worker);
    }
    let result = RunResult {
        workload,
        clients,
        elapsed: started.elapsed(),
        latency: total.latency,
        errors: total.errors,
        first_error: total.first_error.map(|(_, error)| error),
    };
    (result, workers)
}

async fn drive(api: Api, mut worker: Worker, deadline: Instant) -> (Tally, Worker) {
    let mut tally = Tally::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        match worker.op(&api).await {
            Ok(()) => tally.succeeded(started.elapsed()),
            Err(error) => tally.failed(started, error),
        }
    }
    (tally, worker)
}

/// What one client (or, merged, all of them) measured.
struct Tally {
    latency: Histogram<u64>,
    errors: u64,
    first_error: Option<(Instant, OpError)>,
}

impl Tally {
    fn new() -> Tally {
        let latency =
            Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3).expect("valid histogram bounds");
        Tally {
            latency,
            errors: 0,
            first_error: None,
        }
    }

    fn succeeded(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency.saturating_record(micros.max(1));
    }

    fn failed(&mut self, at: Instant, error: OpError) {
        self.errors += 1;
        self.first_error.get_or_insert((at, error));
    }

    fn merge(&mut self, other: Tally) {
        self.latency
            .add(&other.latency)
            .expect("histograms with the same bounds");
        self.errors += other.errors;
        self.first_error = match (self.first_error.take(), other.first_error) {
            (Some(mine), Some(theirs)) => Some(if theirs.0 < mine.0 { theirs } else { mine }),
            (mine, theirs) => mine.or(theirs),
        };
    }
}
