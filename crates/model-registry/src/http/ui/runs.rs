//! Experiments and their runs: the runs table with chosen parameters and metrics as columns,
//! a run's page with a chart per metric over its steps, and several runs in one chart.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use askama::Template;
use axum::extract::{Path, Query, RawQuery, State};
use axum::Extension;
use serde_json::Value as Json;

use super::chart::{chart, Chart};
use super::models::PageQuery;
use super::view::{self, text, time};
use super::{render, Chrome, CsrfToken, Ctx, Shown, UiError, PAGE_SIZE};
use crate::app::AppState;
use crate::registry::{EntityKind, Error, Link, ListParams};

use EntityKind::{Experiment, ExperimentRun, Metric, Parameter};

/// History points read per run; a longer history is cut (the page says so).
pub const MAX_HISTORY_POINTS: u32 = 2000;
/// Runs one comparison may hold.
pub const MAX_COMPARED_RUNS: usize = 8;
/// Parameters and metrics read for a page of runs (their columns).
const MAX_RUN_VALUES: u32 = 5000;
/// Columns of each kind the runs table offers when none are chosen.
const DEFAULT_COLUMNS: usize = 6;

/// A run or experiment line.
pub struct Row {
    id: String,
    name: String,
    owner: String,
    state: String,
    status: String,
    created: String,
    extra: String,
}

impl Row {
    fn of(json: &Json) -> Row {
        Row {
            id: text(json, "id"),
            name: text(json, "name"),
            owner: text(json, "owner"),
            state: text(json, "state"),
            status: text(json, "status"),
            created: time(json, "createTimeSinceEpoch"),
            extra: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "experiments.html")]
struct ExperimentsPage {
    chrome: Chrome,
    experiments: Vec<Row>,
    next: String,
}

/// `GET /ui/experiments`: a page of experiments with each one's latest run.
pub async fn experiments(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Query(query): Query<PageQuery>,
) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let params = ListParams {
        page_size: Some(PAGE_SIZE.to_string()),
        sort_order: Some("DESC".into()),
        next_page_token: Some(query.page),
        ..ListParams::default()
    };
    let listing = ctx.registry.list(&[Experiment], None, &params).await.map_err(|e| ctx.fail(e))?;
    let (items, next) = view::page(listing).await.map_err(|e| ctx.fail(e))?;
    let ids: Vec<String> = items.iter().map(|e| text(e, "id")).collect();
    let latest = ctx.registry.newest_children(ExperimentRun, &ids).await.map_err(|e| ctx.fail(e))?;
    let experiments = items
        .iter()
        .map(|e| Row { extra: latest.get(&text(e, "id")).map(|r| text(r, "name")).unwrap_or_default(), ..Row::of(e) })
        .collect();
    Ok(render(&ExperimentsPage { chrome: ctx.chrome, experiments, next }))
}

/// A run in the runs table: its line, and its chosen parameters and last metric values.
pub struct RunRow {
    row: Row,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "experiment.html")]
struct ExperimentPage {
    chrome: Chrome,
    experiment: Row,
    params: Vec<(String, bool)>,
    metrics: Vec<(String, bool)>,
    columns: Vec<String>,
    runs: Vec<RunRow>,
    next: String,
}

/// The values of a repeated query key (`param=a&param=b`).
fn repeated(query: &Option<String>, key: &str) -> Vec<String> {
    let query = query.as_deref().unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == key).map(|(_, v)| v.into_owned()).collect()
}

fn single(query: &Option<String>, key: &str) -> String {
    repeated(query, key).pop().unwrap_or_default()
}

/// A metric's or parameter's value as a cell shows it.
fn value_text(artifact: &Json) -> String {
    text(artifact, "value")
}

/// `GET /ui/experiments/{id}?param=..&metric=..`: a page of runs; the chosen parameters and
/// metrics (by default the first few of each) as columns. Three registry calls.
pub async fn experiment(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let experiment = ctx.registry.get(Experiment, &id).await.map_err(|e| ctx.fail(e))?;
    let params = ListParams {
        page_size: Some(PAGE_SIZE.to_string()),
        sort_order: Some("DESC".into()),
        next_page_token: Some(single(&query, "page")),
        ..ListParams::default()
    };
    let listing = ctx
        .registry
        .list_children(Experiment, &id, &[ExperimentRun], Link::ParentContext, &params)
        .await
        .map_err(|e| ctx.fail(e))?;
    let (runs, next) = view::page(listing).await.map_err(|e| ctx.fail(e))?;
    let ids: Vec<String> = runs.iter().map(|r| text(r, "id")).collect();
    let values = ctx.registry.artifacts_of(&[Parameter, Metric], &ids, MAX_RUN_VALUES).await.map_err(|e| ctx.fail(e))?;
    // (run, "param"/"metric", name) -> value
    let mut cells: HashMap<(String, &'static str, String), String> = HashMap::new();
    let (mut param_names, mut metric_names) = (BTreeSet::new(), BTreeSet::new());
    for (run, artifact) in &values {
        let name = text(artifact, "name");
        let kind = if text(artifact, "artifactType") == "parameter" { "param" } else { "metric" };
        if kind == "param" { &mut param_names } else { &mut metric_names }.insert(name.clone());
        cells.insert((run.clone(), kind, name), value_text(artifact));
    }
    let chosen = |kind: &str, names: &BTreeSet<String>| {
        let asked = repeated(&query, kind);
        let shown: Vec<String> = if asked.is_empty() { names.iter().take(DEFAULT_COLUMNS).cloned().collect() } else { asked };
        let offered = names.iter().map(|n| (n.clone(), shown.contains(n))).collect::<Vec<_>>();
        (shown, offered)
    };
    let (shown_params, params) = chosen("param", &param_names);
    let (shown_metrics, metrics) = chosen("metric", &metric_names);
    let columns: Vec<(&'static str, String)> =
        shown_params.into_iter().map(|p| ("param", p)).chain(shown_metrics.into_iter().map(|m| ("metric", m))).collect();
    let runs = runs
        .iter()
        .map(|r| {
            let run = text(r, "id");
            let cells = columns
                .iter()
                .map(|(kind, name)| cells.get(&(run.clone(), *kind, name.clone())).cloned().unwrap_or_default())
                .collect();
            RunRow { row: Row::of(r), cells }
        })
        .collect();
    let columns = columns.into_iter().map(|(kind, name)| format!("{name} ({kind})")).collect();
    let page = ExperimentPage { chrome: ctx.chrome, experiment: Row::of(&experiment), params, metrics, columns, runs, next };
    Ok(render(&page))
}

/// A history row's metric name: the row is named `<name>__<update time>`.
fn metric_name(row: &Json) -> String {
    let name = text(row, "name");
    match name.rsplit_once("__") {
        Some((metric, time)) if !time.is_empty() && time.bytes().all(|b| b.is_ascii_digit()) => metric.to_owned(),
        _ => name,
    }
}

fn number(json: &Json, key: &str) -> Option<f64> {
    match json.get(key)? {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A run's metric history by metric name, as `(step, value)` points, and whether it was cut.
async fn history(ctx: &Ctx, run: &str) -> Result<(BTreeMap<String, Vec<(i64, f64)>>, bool), UiError> {
    let params = ListParams { page_size: Some(MAX_HISTORY_POINTS.to_string()), ..ListParams::default() };
    let listing = ctx.registry.metric_history(Some(run), &params).await.map_err(|e| ctx.fail(e))?;
    let (rows, next) = view::page(listing).await.map_err(|e| ctx.fail(e))?;
    let mut by_metric: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for row in &rows {
        if let Some(value) = number(row, "value") {
            let step = number(row, "step").unwrap_or(0.0) as i64;
            by_metric.entry(metric_name(row)).or_default().push((step, value));
        }
    }
    Ok((by_metric, !next.is_empty()))
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    chrome: Chrome,
    experiment: Row,
    run: Row,
    params: Vec<(String, String)>,
    metrics: Vec<(String, String, String)>,
    artifacts: Vec<(String, String, String, bool)>,
    charts: Vec<Chart>,
    cut: bool,
}

/// `GET /ui/runs/{id}`: a run's parameters, metrics, other artifacts, and a chart per metric.
pub async fn run(State(state): State<AppState>, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let run = ctx.registry.get(ExperimentRun, &id).await.map_err(|e| ctx.fail(e))?;
    let experiment = ctx.registry.get(Experiment, &text(&run, "experimentId")).await.map_err(|e| ctx.fail(e))?;
    let params = ListParams { page_size: Some(MAX_RUN_VALUES.to_string()), ..ListParams::default() };
    let kinds = crate::registry::ARTIFACT_KINDS;
    let listing =
        ctx.registry.list_children(ExperimentRun, &id, &kinds, Link::Attribution, &params).await.map_err(|e| ctx.fail(e))?;
    let (artifacts, _) = view::page(listing).await.map_err(|e| ctx.fail(e))?;
    let (mut params, mut metrics, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for a in &artifacts {
        match text(a, "artifactType").as_str() {
            "parameter" => params.push((text(a, "name"), value_text(a))),
            "metric" => metrics.push((text(a, "name"), value_text(a), text(a, "step"))),
            kind => {
                let uri = text(a, "uri");
                let web = view::is_web(&uri);
                others.push((text(a, "name"), kind.to_owned(), uri, web));
            }
        }
    }
    let (history, cut) = history(&ctx, &id).await?;
    let label = text(&run, "name");
    let charts = history.into_iter().map(|(metric, points)| chart(&metric, vec![(label.clone(), points)])).collect();
    let page = RunPage {
        chrome: ctx.chrome,
        experiment: Row::of(&experiment),
        run: Row::of(&run),
        params,
        metrics,
        artifacts: others,
        charts,
        cut,
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    chrome: Chrome,
    runs: Vec<Row>,
    charts: Vec<Chart>,
    cut: bool,
}

/// `GET /ui/compare?run=1&run=2`: one chart per metric, a line per run; two registry calls per
/// run, at most [`MAX_COMPARED_RUNS`] runs.
pub async fn compare(State(state): State<AppState>, Extension(csrf): Extension<CsrfToken>, RawQuery(query): RawQuery) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let mut ids = repeated(&query, "run");
    ids.dedup();
    if ids.len() > MAX_COMPARED_RUNS {
        let message = format!("{} runs chosen; a comparison holds at most {MAX_COMPARED_RUNS}", ids.len());
        return Err(ctx.fail(Error::bad_request(message)));
    }
    let (mut runs, mut per_metric, mut cut) = (Vec::new(), BTreeMap::<String, Vec<_>>::new(), false);
    for id in &ids {
        let run = ctx.registry.get(ExperimentRun, id).await.map_err(|e| ctx.fail(e))?;
        let (history, run_cut) = history(&ctx, id).await?;
        cut |= run_cut;
        let label = text(&run, "name");
        for (metric, points) in history {
            per_metric.entry(metric).or_default().push((label.clone(), points));
        }
        runs.push(Row::of(&run));
    }
    let charts = per_metric.into_iter().map(|(metric, series)| chart(&metric, series)).collect();
    Ok(render(&ComparePage { chrome: ctx.chrome, runs, charts, cut }))
}
