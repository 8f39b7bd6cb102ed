//! MLflow's run logging (`runs/log-batch`, `log-metric`, `log-parameter`, `set-tag`): each call
//! is one write transaction, all-or-nothing. The run is locked first, before anything is read:
//! logs to one run then go one after another, on MySQL the reads after the lock see what the
//! previous writer of the run committed, and every writer takes its locks in one order (the
//! run, then its metrics), so concurrent batches neither deadlock nor lose rows. The call's
//! params and metrics are then read by name in one statement, and written.

use std::cmp::Ordering;
use std::sync::Arc;

use embedmd::store::{Conn, ListQuery, Node, NodeKind, Parent, Value};
use serde_json::{json, Value as Json};

use super::history::{name_condition, steps_condition};
use super::mlflow::archived;
use super::Registry;
use crate::registry::codec::{self, Schema};
use crate::registry::error::{Error, Result};
use crate::registry::spec::EntityKind;

/// One point of a metric as MLflow logs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

impl MetricPoint {
    /// MLflow's order of a metric's points: the run's latest value of a metric is its point with
    /// the highest step, then timestamp, then value (not the last one logged).
    fn order(&self, other: &MetricPoint) -> Ordering {
        (self.step, self.timestamp).cmp(&(other.step, other.timestamp)).then(self.value.total_cmp(&other.value))
    }

    fn same(&self, other: &MetricPoint) -> bool {
        self.order(other) == Ordering::Equal
    }

    /// The body of the metric artifact holding this point.
    fn body(&self) -> Json {
        json!({
            "artifactType": "metric",
            "name": self.key,
            "value": self.value,
            "timestamp": self.timestamp.to_string(),
            "step": self.step,
        })
    }

    /// The point a stored metric (or history row) holds.
    fn of(key: &str, node: &Node) -> Option<MetricPoint> {
        let typed = &node.properties.typed;
        let value = match typed.get("value")? {
            Value::Double(v) => *v,
            Value::Int(v) => *v as f64,
            _ => return None,
        };
        let timestamp = match typed.get("timestamp") {
            Some(Value::String(s)) => s.parse().ok()?,
            Some(Value::Int(v)) => *v,
            _ => 0,
        };
        let step = match typed.get("step") {
            Some(Value::Int(v)) => *v,
            _ => 0,
        };
        Some(MetricPoint { key: key.to_owned(), value, timestamp, step })
    }
}

/// What one logging call writes to a run.
#[derive(Debug, Clone, Default)]
pub struct RunLog {
    pub params: Vec<(String, String)>,
    pub metrics: Vec<MetricPoint>,
    pub tags: Vec<(String, String)>,
}

fn run_not_found(run: i64) -> Error {
    Error::not_found(format!("Run with id={run} not found"))
}

impl Registry {
    /// Writes a logging call's params, metrics (each leaving a metric history row) and tags to
    /// the run `run_id` in one transaction. Params are written once: the same value again is
    /// fine, another is MLflow's error. A metric point already logged (same key, value,
    /// timestamp and step) is not logged twice, as in MLflow's store.
    pub async fn mlflow_log_run(&self, run_id: &str, log: RunLog) -> Result<()> {
        let run: i64 = run_id
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| Error::not_found(format!("Run with id={run_id} not found")))?;
        let (this, log) = (self.clone(), Arc::new(log));
        self.datastore.write(move |conn| Box::pin(async move { this.log_run(conn, run, &log).await })).await
    }

    async fn log_run(&self, conn: &mut Conn<'_>, run_id: i64, log: &RunLog) -> Result<()> {
        let run_kind = EntityKind::ExperimentRun;
        self.store.lock(conn, NodeKind::Context, run_id).await?;
        let (_, run) = self.load(conn, &[run_kind], run_id, run_kind.spec().label).await.map_err(|e| match e {
            Error::NotFound(_) => run_not_found(run_id),
            e => e,
        })?;
        if archived(&run) {
            return Err(Error::bad_request(format!("The run {run_id} must be in the 'active' state. Current state is deleted.")));
        }
        let (metric, param) = (EntityKind::Metric, EntityKind::Parameter);
        let stored = |key: &str| format!("{run_id}:{key}");
        let mut names: Vec<String> =
            log.params.iter().map(|(k, _)| stored(k)).chain(log.metrics.iter().map(|m| stored(&m.key))).collect();
        names.sort_unstable();
        names.dedup();
        let existing = self.store.named(conn, NodeKind::Artifact, &[self.type_id(metric), self.type_id(param)], &names).await?;
        let find = |kind: EntityKind, key: &str| {
            let name = stored(key);
            existing.iter().find(|n| n.type_id == self.type_id(kind) && n.name.as_deref() == Some(name.as_str()))
        };

        let mut new_params: Vec<&(String, String)> = Vec::new();
        for entry @ (key, value) in &log.params {
            let logged = find(param, key)
                .and_then(|n| n.properties.typed.get("value").cloned())
                .or_else(|| new_params.iter().find(|(k, _)| k == key).map(|(_, v)| Value::String(v.clone())));
            match logged {
                Some(Value::String(old)) if old == *value => {}
                Some(old) => {
                    let old = match old {
                        Value::String(s) => s,
                        other => format!("{other:?}"),
                    };
                    return Err(Error::bad_request(format!(
                        "Changing param values is not allowed. Param with key='{key}' was already logged with \
                         value='{old}' for run ID='{run_id}'. Attempted logging new value '{value}'."
                    )));
                }
                None => new_params.push(entry),
            }
        }
        for (key, value) in new_params {
            let body = json!({"artifactType": "parameter", "name": key, "value": value, "parameterType": "string"});
            self.log_new(conn, param, &run, &body).await?;
        }

        // The metrics by key, in the order of the call.
        let mut by_key: Vec<(&str, Vec<&MetricPoint>)> = Vec::new();
        for point in &log.metrics {
            match by_key.iter_mut().find(|(k, _)| *k == point.key) {
                Some((_, points)) if points.iter().any(|p| p.same(point)) => {}
                Some((_, points)) => points.push(point),
                None => by_key.push((&point.key, vec![point])),
            }
        }
        for (key, points) in by_key {
            self.log_metric(conn, &run, key, find(metric, key), points).await?;
        }

        if !log.tags.is_empty() {
            let spec = run_kind.spec();
            let mut custom = codec::encode(self.api, spec, &run)["customProperties"].as_object().cloned().unwrap_or_default();
            for (key, value) in &log.tags {
                custom.insert(key.clone(), json!({"metadataType": "MetadataStringValue", "string_value": value}));
            }
            let draft = codec::decode(self.api, spec, Schema::Update, &json!({ "customProperties": custom }))?;
            self.rewrite(conn, spec, run, draft).await?;
        }
        Ok(())
    }

    /// A new param or metric under the run, linked to it and its experiment as the Kubeflow
    /// upsert links them.
    async fn log_new(&self, conn: &mut Conn<'_>, kind: EntityKind, run: &Node, body: &Json) -> Result<Node> {
        let spec = kind.spec();
        let rules = EntityKind::ExperimentRun.spec().log.as_ref().expect("runs hold logs");
        let mut draft = codec::decode(self.api, spec, Schema::Full, body)?;
        let custom = draft.custom.get_or_insert_with(Default::default);
        if let Some(experiment) = super::int_property(run, "experiment_id") {
            custom.insert(rules.grandparent_link.property.into(), Value::Int(experiment));
        }
        custom.insert(rules.parent_link.property.into(), Value::Int(run.id));
        self.insert(conn, spec, draft, Some((EntityKind::ExperimentRun, run.id)), false).await
    }

    /// One metric's points: a history row each (those not logged before), and the metric
    /// artifact holding the latest point of all. The history rows are named by distinct times
    /// up to the artifact's new update time, so the next log of the metric names its rows after.
    async fn log_metric(
        &self,
        conn: &mut Conn<'_>,
        run: &Node,
        key: &str,
        stored: Option<&Node>,
        mut points: Vec<&MetricPoint>,
    ) -> Result<()> {
        let spec = EntityKind::Metric.spec();
        let history = EntityKind::MetricHistory;
        let latest_stored = stored.and_then(|n| MetricPoint::of(key, n));
        // Every earlier point is at most the stored latest one, so only points not above it
        // may have been logged before: those are looked for, one query for all.
        let maybe_logged: Vec<i64> = points
            .iter()
            .filter(|p| latest_stored.as_ref().is_some_and(|l| p.order(l) != Ordering::Greater))
            .map(|p| p.step)
            .collect();
        if stored.is_some() && !maybe_logged.is_empty() {
            let mut steps = maybe_logged;
            steps.sort_unstable();
            steps.dedup();
            let mut logged = Vec::new();
            for chunk in steps.chunks(filter_query::MAX_LIST_ITEMS) {
                let query = ListQuery {
                    parent: Some(Parent::Attribution(run.id)),
                    filter: Some(embedmd::store::Filter::And(vec![name_condition(key), steps_condition(chunk)])),
                    ..ListQuery::of(vec![self.type_id(history)])
                };
                logged.extend(
                    self.store.list(conn, NodeKind::Artifact, &query).await?.iter().filter_map(|n| MetricPoint::of(key, n)),
                );
            }
            points.retain(|p| !logged.iter().any(|l| l.same(p)));
        }
        let Some(newest) = points.iter().copied().max_by(|a, b| a.order(b)) else { return Ok(()) };
        let latest = match &latest_stored {
            Some(l) if l.order(newest) != Ordering::Less => l,
            _ => newest,
        };
        let node = match stored {
            None => self.log_new(conn, EntityKind::Metric, run, &latest.body()).await?,
            Some(node) => {
                // Run first, then the metric: the order of every writer of both.
                self.store.lock(conn, NodeKind::Artifact, node.id).await?;
                let draft = codec::decode(self.api, spec, Schema::Full, &latest.body())?;
                let last = super::now_ms().max(node.update_time + points.len() as i64);
                self.rewrite_at(conn, spec, node.clone(), draft, last).await?
            }
        };
        let first = node.update_time - points.len() as i64 + 1;
        for (i, point) in points.iter().enumerate() {
            let draft = codec::decode(self.api, spec, Schema::Full, &point.body())?;
            let mut row = node.clone();
            row.update_time = first + i as i64;
            super::write::merge_fields(&mut row, &draft);
            self.record_history(conn, history, run.id, &row).await?;
        }
        Ok(())
    }
}
