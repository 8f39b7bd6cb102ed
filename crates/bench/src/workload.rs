//! The five workloads, and the closed-loop runner that times them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hdrhistogram::Histogram;

use crate::api::{Api, ApiError, Model, ModelWithProps, Props};
use crate::mlflow::MlflowWorker;

/// Latencies are recorded in microseconds, from 1 µs to 60 s.
const MAX_LATENCY_MICROS: u64 = 60_000_000;
/// The values of the `team` custom property, given round-robin.
const TEAMS: [&str; 3] = ["a", "b", "c"];
/// W4's filter on the name: `unique_name` is `bench-` and 32 hex digits, so about 1/16 match.
const NAME_FILTER: &str = "name LIKE 'bench-1%'";
const NAME_PREFIX: &str = "bench-1";
/// W4's filter on custom properties: about 2/15 of the models match.
const PROPS_FILTER: &str = "team = 'a' AND priority > 2";
/// W4 asks for pages of this many models.
const FILTER_PAGE_SIZE: usize = 100;
/// In W5, one op in this many is a write (W1's op), the others reads (W2's op).
const MIXED_WRITE_EVERY: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    #[value(name = "w1")]
    Register,
    #[value(name = "w2")]
    PointRead,
    #[value(name = "w3")]
    ListWalk,
    #[value(name = "w4")]
    FilteredSearch,
    #[value(name = "w5")]
    Mixed,
    #[value(name = "w6")]
    UiPages,
    /// MLflow's API (`--mlflow`, [`crate::mlflow`]).
    #[value(name = "m1")]
    MlflowRegister,
    #[value(name = "m2")]
    MlflowAlias,
    #[value(name = "m3")]
    MlflowSearch,
    /// MLflow's tracking API: one `runs/log-metric` per op.
    #[value(name = "m4")]
    MlflowLogMetric,
    /// MLflow's tracking API: one `runs/log-batch` of 10 metrics and a param per op.
    #[value(name = "m5")]
    MlflowLogBatch,
    /// MLflow's tracking API: one `runs/search` over [`crate::mlflow::SEARCHED_RUNS`] runs per op.
    #[value(name = "m6")]
    MlflowSearchRuns,
}

impl Workload {
    pub fn label(self) -> &'static str {
        match self {
            Workload::Register => "W1 register",
            Workload::PointRead => "W2 point reads",
            Workload::ListWalk => "W3 list walk",
            Workload::FilteredSearch => "W4 filtered",
            Workload::Mixed => "W5 mixed 80/20",
            Workload::UiPages => "W6 UI page",
            Workload::MlflowRegister => "M1 register",
            Workload::MlflowAlias => "M2 get by alias",
            Workload::MlflowSearch => "M3 search",
            Workload::MlflowLogMetric => "M4 log-metric",
            Workload::MlflowLogBatch => "M5 log-batch",
            Workload::MlflowSearchRuns => "M6 search-runs",
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
    /// A line to print under the table (W5: the read/write split).
    pub note: Option<String>,
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
    let workers = (0..clients).map(|_| Worker::Register { created: Vec::new() }).collect();
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
pub async fn point_reads(api: &Api, models: &[Model], clients: u32, duration: Duration) -> RunResult {
    let models: Arc<[Model]> = models.into();
    let workers = (0..clients as usize)
        .map(|i| Worker::PointRead { models: Arc::clone(&models), next: i * models.len() / clients as usize })
        .collect();
    run(api, Workload::PointRead, workers, duration).await.0
}

/// W3: each op fetches the next page of 100 models in id order; a complete walk must see
/// `expected` models.
pub async fn list_walk(api: &Api, expected: usize, clients: u32, duration: Duration) -> RunResult {
    let workers = (0..clients).map(|_| Worker::ListWalk { expected, token: String::new(), seen: 0 }).collect();
    run(api, Workload::ListWalk, workers, duration).await.0
}

/// W4: each op is the first page of `GET /registered_models?filterQuery=...&pageSize=100`,
/// alternately [`NAME_FILTER`] and [`PROPS_FILTER`]; every item must match the filter and the
/// page must hold min(100, matching models among `models`) items. `models` must be all the
/// registered models, and none may be created during the run.
pub async fn filtered_search(api: &Api, models: &[Model], clients: u32, duration: Duration) -> RunResult {
    let by_name = models.iter().filter(|m| m.name.starts_with(NAME_PREFIX)).count();
    let by_props = models.iter().filter(|m| props_match(m.props)).count();
    let workers = (0..clients as usize).map(|i| Worker::Filtered { expected: [by_name, by_props], next: i }).collect();
    run(api, Workload::FilteredSearch, workers, duration).await.0
}

/// W5: each client sends W2's reads over `models`, except every fifth op, which is W1's
/// register op. One op = one read or one register op. Returns the models created.
pub async fn mixed(api: &Api, models: &[Model], clients: u32, duration: Duration) -> (RunResult, Vec<Model>) {
    let models: Arc<[Model]> = models.into();
    let workers = (0..clients as usize)
        .map(|i| Worker::Mixed {
            models: Arc::clone(&models),
            next: i * models.len() / clients as usize,
            ops: 0,
            reads: 0,
            writes: 0,
            created: Vec::new(),
        })
        .collect();
    let (mut result, workers) = run(api, Workload::Mixed, workers, duration).await;
    let (mut reads, mut writes, mut created) = (0, 0, Vec::new());
    for worker in workers {
        if let Worker::Mixed { reads: r, writes: w, created: c, .. } = worker {
            reads += r;
            writes += w;
            created.extend(c);
        }
    }
    result.note = Some(format!(
        "{reads} reads ({:.1}/s) + {writes} writes ({:.1}/s, 3 requests each) succeeded",
        reads as f64 / result.elapsed.as_secs_f64(),
        writes as f64 / result.elapsed.as_secs_f64()
    ));
    (result, created)
}

/// The web UI's pages W6 times, one run each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiPage {
    /// `/`: the first page of live models, each with its latest version.
    Models,
    /// `/ui/?q=bench-1`: a name search (about 1/16 of the models match).
    Search,
    /// `/ui/?q=no-such-model`: a name search nothing matches, which reads every model's name.
    SearchMiss,
    /// `/ui/?sort=LAST_UPDATE_TIME`: the most recently modified models.
    Modified,
    /// `/ui/?sort=NAME&order=ASC`: the first page in name order.
    ByName,
    /// `/ui/?sort=NAME&order=ASC&page=...`: a page in name order after one of the models, in
    /// turn (the page token the UI's "Next page" carries).
    ByNameLater,
    /// `/ui/models/{id}`: a model, its versions and their formats.
    Model,
}

impl UiPage {
    pub const ALL: [UiPage; 7] = [
        UiPage::Models,
        UiPage::Search,
        UiPage::SearchMiss,
        UiPage::Modified,
        UiPage::ByName,
        UiPage::ByNameLater,
        UiPage::Model,
    ];

    pub fn label(self) -> &'static str {
        match self {
            UiPage::Models => "/ (models)",
            UiPage::Search => "/ui/?q=bench-1 (search)",
            UiPage::SearchMiss => "/ui/?q=no-such-model (search, no match)",
            UiPage::Modified => "/ui/?sort=LAST_UPDATE_TIME",
            UiPage::ByName => "/ui/?sort=NAME&order=ASC",
            UiPage::ByNameLater => "/ui/?sort=NAME&order=ASC&page={token}",
            UiPage::Model => "/ui/models/{id}",
        }
    }
}

/// W6: each op is one load of the UI page `page` (HTML, answer 200); the model page cycles
/// over `models`.
pub async fn ui_page(api: &Api, page: UiPage, models: &[Model], clients: u32, duration: Duration) -> RunResult {
    let models: Arc<[Model]> = models.into();
    let workers = (0..clients as usize)
        .map(|i| Worker::Ui { page, models: Arc::clone(&models), next: i * models.len() / clients as usize })
        .collect();
    let mut result = run(api, Workload::UiPages, workers, duration).await.0;
    result.note = Some(page.label().to_owned());
    result
}

/// An MLflow workload ([`crate::mlflow`]): each worker sends its ops to its own server.
pub async fn mlflow(api: &Api, workload: Workload, workers: Vec<MlflowWorker>, duration: Duration) -> RunResult {
    run(api, workload, workers.into_iter().map(Worker::Mlflow).collect(), duration).await.0
}

/// One client of a workload, with what it keeps between its ops.
#[derive(Debug)]
enum Worker {
    Mlflow(MlflowWorker),
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
    Filtered {
        /// Matching models for [`NAME_FILTER`] and [`PROPS_FILTER`].
        expected: [usize; 2],
        next: usize,
    },
    Mixed {
        models: Arc<[Model]>,
        next: usize,
        ops: u64,
        reads: u64,
        writes: u64,
        created: Vec<Model>,
    },
    Ui {
        page: UiPage,
        models: Arc<[Model]>,
        next: usize,
    },
}

impl Worker {
    async fn op(&mut self, api: &Api) -> Result<(), OpError> {
        match self {
            Worker::Mlflow(worker) => worker.op().await,
            Worker::Register { created } => register_model(api, created).await,
            Worker::PointRead { models, next } => {
                let model = &models[*next % models.len()];
                let by_name = *next % 2 == 1;
                *next += 1;
                read_model(api, model, by_name).await
            }
            Worker::ListWalk { expected, token, seen } => walk_page(api, *expected, token, seen).await,
            Worker::Filtered { expected, next } => {
                let by_props = *next % 2 == 1;
                *next += 1;
                search(api, by_props, expected[usize::from(by_props)]).await
            }
            Worker::Mixed { models, next, ops, reads, writes, created } => {
                *ops += 1;
                if *ops % MIXED_WRITE_EVERY == 0 {
                    register_model(api, created).await?;
                    *writes += 1;
                } else {
                    let model = &models[*next % models.len()];
                    let by_name = *next % 2 == 1;
                    *next += 1;
                    read_model(api, model, by_name).await?;
                    *reads += 1;
                }
                Ok(())
            }
            Worker::Ui { page, models, next } => {
                let path = match page {
                    UiPage::Models => "/".to_owned(),
                    UiPage::Search => format!("/ui/?q={NAME_PREFIX}"),
                    UiPage::SearchMiss => "/ui/?q=no-such-model".to_owned(),
                    UiPage::Modified => "/ui/?sort=LAST_UPDATE_TIME".to_owned(),
                    UiPage::ByName => "/ui/?sort=NAME&order=ASC".to_owned(),
                    UiPage::ByNameLater => {
                        // The UI's name token: base64 of "<id>:<name>", the last row shown.
                        let model = &models[*next % models.len()];
                        let token = BASE64.encode(format!("{}:{}", model.id, model.name));
                        format!(
                            "/ui/?sort=NAME&order=ASC&page={}",
                            url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
                        )
                    }
                    UiPage::Model => format!("/ui/models/{}", models[*next % models.len()].id),
                };
                *next += 1;
                let html = api.page(&path).await?;
                if !html.trim_end().ends_with("</html>") {
                    return Err(OpError::WrongAnswer(format!("GET {path}: not a whole page")));
                }
                Ok(())
            }
        }
    }
}

async fn register_model(api: &Api, created: &mut Vec<Model>) -> Result<(), OpError> {
    let model = api.create_model(&unique_name(), next_props()).await?;
    let model_id = model.id.clone();
    created.push(model);
    let version_id = api.create_version(&model_id, "v1").await?;
    api.create_model_artifact(&version_id, "model", "s3://bench/model.onnx").await?;
    Ok(())
}

async fn read_model(api: &Api, model: &Model, by_name: bool) -> Result<(), OpError> {
    let found = if by_name { api.find_model(&model.name).await? } else { api.get_model(&model.id).await? };
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
async fn walk_page(api: &Api, expected: usize, token: &mut String, seen: &mut usize) -> Result<(), OpError> {
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

/// One page of a W4 filter: `expected` is the number of matching models.
async fn search(api: &Api, by_props: bool, expected: usize) -> Result<(), OpError> {
    let filter = if by_props { PROPS_FILTER } else { NAME_FILTER };
    let page = api.search_models(filter).await?;
    let want = expected.min(FILTER_PAGE_SIZE);
    if page.items.len() != want {
        return Err(OpError::WrongAnswer(format!(
            "GET /registered_models?filterQuery={filter}&pageSize={FILTER_PAGE_SIZE} returned {} \
             items, expected {want} ({expected} models match)",
            page.items.len()
        )));
    }
    for item in &page.items {
        let matches = if by_props { item_props(item).is_some_and(props_match) } else { item.name.starts_with(NAME_PREFIX) };
        if !matches {
            return Err(OpError::WrongAnswer(format!(
                "GET /registered_models?filterQuery={filter} returned registered model {} ({}) \
                 with customProperties {}, which does not match",
                item.id,
                item.name,
                serde_json::Value::Object(item.custom_properties.clone())
            )));
        }
    }
    Ok(())
}

fn props_match(props: Props) -> bool {
    props.team == "a" && props.priority > 2
}

/// `team` and `priority` as the server returned them; `None` if either is missing or malformed.
fn item_props(item: &ModelWithProps) -> Option<Props> {
    let props = &item.custom_properties;
    let team = props.get("team")?.get("string_value")?.as_str()?;
    let priority = props.get("priority")?.get("int_value")?.as_str()?.parse().ok()?;
    Some(Props { team: TEAMS.into_iter().find(|t| *t == team)?, priority })
}

/// The custom properties of the next model created: `team` round-robin over [`TEAMS`],
/// `priority` = n % 5.
pub(crate) fn next_props() -> Props {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Props { team: TEAMS[(n % TEAMS.len() as u64) as usize], priority: (n % 5) as i64 }
}

/// A registered model name no other op uses. Only `[a-z0-9-]`: `/registered_model?name=`
/// matches with SQL `LIKE`, where `_` and `%` are wildcards.
pub(crate) fn unique_name() -> String {
    format!("bench-{}", uuid::Uuid::new_v4().simple())
}

/// Runs every worker in its own task, each sending its next op as soon as the previous one is
/// answered, until `duration` has passed; returns the merged measurements and the workers.
async fn run(api: &Api, workload: Workload, workers: Vec<Worker>, duration: Duration) -> (RunResult, Vec<Worker>) {
    let clients = u32::try_from(workers.len()).expect("at most 256 clients");
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = workers.into_iter().map(|worker| tokio::spawn(drive(api.clone(), worker, deadline))).collect();
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
        note: None,
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
        let latency = Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3).expect("valid histogram bounds");
        Tally { latency, errors: 0, first_error: None }
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
        self.latency.add(&other.latency).expect("histograms with the same bounds");
        self.errors += other.errors;
        self.first_error = match (self.first_error.take(), other.first_error) {
            (Some(mine), Some(theirs)) => Some(if theirs.0 < mine.0 { theirs } else { mine }),
            (mine, theirs) => mine.or(theirs),
        };
    }
}
