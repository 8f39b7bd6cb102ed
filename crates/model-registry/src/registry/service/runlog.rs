//! MLflow's run logging (`runs/log-batch`, `log-metric`, `log-parameter`, `set-tag`): each call
//! is one write transaction, all-or-nothing. The run is locked first, before anything is read:
//! logs to one run then go one after another, on MySQL the reads after the lock see what the
//! previous writer of the run committed, and every writer takes its locks in one order (the
//! run, then its metrics), so concurrent batches neither deadlock nor lose rows. The call's
//! params and metrics are then read by name in one statement, and written together
//! ([`embedmd::store::Store::write_many`]): the statements do not grow with the call's size.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use embedmd::store::{Conn, Filter, ListQuery, NewNode, Node, NodeKind, Parent, Properties, SetProperties, Value};
use serde_json::{json, Value as Json};

use super::history::{name_condition, steps_condition};
use super::mlflow::archived;
use super::write::merge_fields;
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

/// What a logging call writes under its run, in one [`embedmd::store::Store::write_many`].
struct Writes {
    /// The call's time: new params and metrics are created at it, rewritten metrics move to it.
    now: i64,
    new: Vec<NewNode>,
    set: Vec<SetProperties>,
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
        let existing: HashMap<(i64, &str), &Node> =
            existing.iter().filter_map(|n| Some(((n.type_id, n.name.as_deref()?), n))).collect();
        let find = |kind: EntityKind, key: &str| existing.get(&(self.type_id(kind), stored(key).as_str())).copied();

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
        let mut writes = Writes { now: super::now_ms(), new: Vec::new(), set: Vec::new() };
        for (key, value) in new_params {
            let body = json!({"artifactType": "parameter", "name": key, "value": value, "parameterType": "string"});
            writes.new.push(self.new_log(conn, param, &run, &body, writes.now).await?);
        }

        // The metrics by key, in the order of the call.
        let mut by_key: Vec<(&str, Vec<&MetricPoint>)> = Vec::new();
        let mut key_index: HashMap<&str, usize> = HashMap::new();
        for point in &log.metrics {
            match key_index.get(point.key.as_str()) {
                Some(&i) if by_key[i].1.iter().any(|p| p.same(point)) => {}
                Some(&i) => by_key[i].1.push(point),
                None => {
                    key_index.insert(&point.key, by_key.len());
                    by_key.push((&point.key, vec![point]));
                }
            }
        }
        let logged = self.logged_points(conn, run.id, &by_key, |key| find(metric, key)).await?;
        for (key, mut points) in by_key {
            points.retain(|p| !logged.iter().any(|l| l.key == key && l.same(p)));
            self.log_metric(conn, &run, key, find(metric, key), &points, &mut writes).await?;
        }
        // Run first, then its metrics: the order of every writer of both.
        let Writes { new, set, .. } = writes;
        self.store.write_many(conn, NodeKind::Artifact, Parent::Attribution(run.id), &new, &set).await.map_err(|e| {
            let name = new.first().map(|n| codec::bare_name(&n.fields.name)).unwrap_or_default();
            self.conflict(metric.spec(), name, &Properties::default(), e)
        })?;

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
    /// upsert links them; checked, not yet written.
    async fn new_log(&self, conn: &mut Conn<'_>, kind: EntityKind, run: &Node, body: &Json, now: i64) -> Result<NewNode> {
        let spec = kind.spec();
        let rules = EntityKind::ExperimentRun.spec().log.as_ref().expect("runs hold logs");
        let mut draft = codec::decode(self.api, spec, Schema::Full, body)?;
        let custom = draft.custom.get_or_insert_with(Default::default);
        if let Some(experiment) = super::int_property(run, "experiment_id") {
            custom.insert(rules.grandparent_link.property.into(), Value::Int(experiment));
        }
        custom.insert(rules.parent_link.property.into(), Value::Int(run.id));
        let checked = self.check_insert(conn, spec, draft, Some((EntityKind::ExperimentRun, run.id)), false).await?;
        Ok(NewNode { fields: checked.fields, properties: checked.properties, time: now })
    }

    /// One metric's points not logged before: a history row each, and the metric artifact
    /// holding the latest point of all, new or with its changed properties set. The history
    /// rows are named by distinct times up to the artifact's new update time, so the next log
    /// of the metric names its rows after them.
    async fn log_metric(
        &self,
        conn: &mut Conn<'_>,
        run: &Node,
        key: &str,
        stored: Option<&Node>,
        points: &[&MetricPoint],
        writes: &mut Writes,
    ) -> Result<()> {
        let metric = EntityKind::Metric;
        let Some(newest) = points.iter().copied().max_by(|a, b| a.order(b)) else { return Ok(()) };
        let latest = match stored.and_then(|n| MetricPoint::of(key, n)) {
            Some(l) if l.order(newest) != Ordering::Less => l,
            _ => newest.clone(),
        };
        let held = match stored {
            None => self.new_log(conn, metric, run, &latest.body(), writes.now).await?,
            Some(node) => {
                // Update times move forward, one per history row.
                let mut held = NewNode { time: writes.now.max(node.update_time + points.len() as i64), ..NewNode::copy_of(node) };
                merge_fields(&mut held, &codec::decode(self.api, metric.spec(), Schema::Full, &latest.body())?);
                let properties = held.properties.changed_from(&node.properties);
                writes.set.push(SetProperties { id: node.id, time: held.time, properties });
                held
            }
        };
        let first = held.time - points.len() as i64 + 1;
        for (i, point) in points.iter().enumerate() {
            let mut row = NewNode { time: first + i as i64, ..held.clone() };
            merge_fields(&mut row, &codec::decode(self.api, metric.spec(), Schema::Full, &point.body())?);
            writes.new.push(self.history_row(EntityKind::MetricHistory, run.id, row)?);
        }
        if stored.is_none() {
            writes.new.push(held);
        }
        Ok(())
    }

    /// The points of `by_key` that the run logged before, read in one statement per chunk of
    /// steps. Every earlier point of a metric is at most its stored latest one, so only points
    /// not above it are looked for; none when steps go up.
    async fn logged_points<'a>(
        &self,
        conn: &mut Conn<'_>,
        run: i64,
        by_key: &[(&str, Vec<&MetricPoint>)],
        stored: impl Fn(&str) -> Option<&'a Node>,
    ) -> Result<Vec<MetricPoint>> {
        let mut keys = Vec::new();
        let mut steps = Vec::new();
        for (key, points) in by_key {
            let Some(latest) = stored(key).and_then(|n| MetricPoint::of(key, n)) else { continue };
            let before: Vec<i64> = points.iter().filter(|p| p.order(&latest) != Ordering::Greater).map(|p| p.step).collect();
            if !before.is_empty() {
                keys.push(*key);
                steps.extend(before);
            }
        }
        steps.sort_unstable();
        steps.dedup();
        let mut logged = Vec::new();
        let names = Filter::Or(keys.iter().map(|k| name_condition(k)).collect());
        for chunk in steps.chunks(filter_query::MAX_LIST_ITEMS) {
            let query = ListQuery {
                parent: Some(Parent::Attribution(run)),
                filter: Some(Filter::And(vec![names.clone(), steps_condition(chunk)])),
                ..ListQuery::of(vec![self.type_id(EntityKind::MetricHistory)])
            };
            for row in self.store.list(conn, NodeKind::Artifact, &query).await? {
                let name = row.name.as_deref().map(codec::bare_name).unwrap_or_default();
                let key = name.rsplit_once("__").map_or(name, |(key, _)| key);
                logged.extend(MetricPoint::of(key, &row));
            }
        }
        Ok(logged)
    }
}
