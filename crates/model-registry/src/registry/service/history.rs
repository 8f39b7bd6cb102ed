//! Metric history: the row each metric logged under a run leaves, and its lists.

use embedmd::store::{
    CmpOp, Column, Conn, Filter, FilterValue, ListQuery, NewNode, Node, NodeFields, NodeKind, Parent, Target, Under, Value,
    ValueColumn,
};

use super::list::Listing;
use super::Registry;
use crate::registry::codec;
use crate::registry::error::{Error, Result};
use crate::registry::filter;
use crate::registry::paging::ListParams;
use crate::registry::spec::{EntityKind, Link};

/// History rows one bulk read takes at most, every run's together (MLflow's
/// `get-history-bulk-interval` samples them afterwards).
pub const MAX_BULK_HISTORY_ROWS: u32 = 250_000;

/// A logged value of a metric: one history row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryPoint {
    pub run: i64,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

impl Registry {
    /// A history row of a logged artifact (a metric under a run), named
    /// `<parent id>:<name>__<update time>`, attributed to the parent.
    pub(super) async fn record_history(&self, conn: &mut Conn<'_>, row: EntityKind, parent_id: i64, logged: &Node) -> Result<()> {
        let NewNode { fields, properties, time } = self.history_row(row, parent_id, NewNode::copy_of(logged))?;
        let run = EntityKind::ExperimentRun;
        let under = Under { parent: Parent::Attribution(parent_id), parent_types: vec![self.type_id(run)] };
        match self.store.insert(conn, row.spec().node, &fields, &properties, time, Some(&under)).await? {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!("no {} found for id {parent_id}", run.spec().label))),
        }
    }

    /// The history row of `logged`, to be attributed to the parent; refused (nothing written)
    /// when its name does not fit.
    pub(super) fn history_row(&self, row: EntityKind, parent_id: i64, logged: NewNode) -> Result<NewNode> {
        let name = codec::bare_name(&logged.fields.name).to_owned();
        let stored = format!("{parent_id}:{name}__{}", logged.time);
        let room = codec::MAX_NAME_CHARS - (stored.chars().count() - name.chars().count());
        // Refused before anything is committed: the caller's transaction, the logged metric
        // included, rolls back.
        codec::bounded("name", name, room).map_err(|e| {
            let label = row.spec().label;
            Error::bad_request(format!(
                "{e} here: the {label} row \"<run id>:<name>__<update time>\" must fit in {} characters",
                codec::MAX_NAME_CHARS
            ))
        })?;
        let fields =
            NodeFields { type_id: self.type_id(row), name: stored, external_id: None, uri: None, state: logged.fields.state };
        Ok(NewNode { fields, ..logged })
    }

    /// `GET /experiment_runs[/{id}]/metric_history`: the rows each metric upsert left, by metric
    /// `name` and by `stepIds` (`1,2,3`), shown as metrics.
    pub async fn metric_history(&self, run: Option<&str>, params: &ListParams) -> Result<Listing> {
        let mut conditions = Vec::new();
        if let Some(name) = params.name.as_deref().filter(|n| !n.is_empty()) {
            conditions.push(name_condition(name));
        }
        if let Some(steps) = params.step_ids.as_deref().filter(|s| !s.is_empty()) {
            // As long as an IN list may be: each step is a bind value.
            let count = steps.split(',').count();
            if count > filter_query::MAX_LIST_ITEMS {
                let limit = filter_query::MAX_LIST_ITEMS;
                return Err(Error::bad_request(format!("stepIds has {count} values (the limit is {limit})")));
            }
            let ids =
                steps.split(',').map(|s| s.trim().parse::<i32>().map(i64::from)).collect::<Result<Vec<_>, _>>().map_err(
                    |_| Error::bad_request(format!("invalid stepIds {steps:?}: expected integers separated by commas")),
                )?;
            conditions.push(steps_condition(&ids));
        }
        // `name` is the metric's name here, not a stored name.
        let params = ListParams { name: None, external_id: None, ..params.clone() };
        let parent = match run {
            Some(run) => Some((Link::Attribution, self.existing(EntityKind::ExperimentRun, run).await?)),
            None => None,
        };
        self.list_filtered(&[EntityKind::MetricHistory], parent, &params, conditions).await
    }

    /// Every value of metric `key` the runs `runs` logged (with steps in `steps`, inclusive),
    /// in two statements whatever the number of runs; a run that does not exist logged none,
    /// as MLflow's server answers. More than [`MAX_BULK_HISTORY_ROWS`] rows is a 400.
    pub async fn mlflow_history_points(&self, runs: &[i64], key: &str, steps: Option<(i64, i64)>) -> Result<Vec<HistoryPoint>> {
        let step = |op, v| Filter::Compare {
            target: Target::Property { name: "step".into(), custom: false, columns: vec![ValueColumn::Int] },
            op,
            value: FilterValue::Int(v),
        };
        let mut conditions = vec![Filter::AttributedTo(runs.to_vec()), name_condition(key)];
        if let Some((first, last)) = steps {
            conditions.extend([step(CmpOp::Ge, first), step(CmpOp::Le, last)]);
        }
        let query = ListQuery {
            limit: Some(MAX_BULK_HISTORY_ROWS + 1),
            filter: Some(Filter::And(conditions)),
            ..ListQuery::of(vec![self.type_id(EntityKind::MetricHistory)])
        };
        let mut reader = self.datastore.reader().await?;
        let rows = self.store.list(&mut reader.conn(), NodeKind::Artifact, &query).await?;
        if rows.len() > MAX_BULK_HISTORY_ROWS as usize {
            return Err(Error::bad_request(format!(
                "the runs logged more than {MAX_BULK_HISTORY_ROWS} values of {key:?}: narrow start_step and end_step"
            )));
        }
        let int = |node: &Node, name: &str| match node.properties.typed.get(name) {
            Some(Value::Int(v)) => Some(*v),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Ok(rows
            .iter()
            .filter_map(|row| {
                // `<run id>:<key>__<time>`: the LIKE above ignores case on some databases.
                let (run, rest) = row.name.as_deref()?.split_once(':')?;
                let (logged, _) = rest.rsplit_once("__")?;
                let value = match row.properties.typed.get("value") {
                    Some(Value::Double(v)) => *v,
                    Some(Value::Int(v)) => *v as f64,
                    _ => return None,
                };
                (logged == key).then_some(HistoryPoint {
                    run: run.parse().ok()?,
                    value,
                    timestamp: int(row, "timestamp").unwrap_or_default(),
                    step: int(row, "step").unwrap_or_default(),
                })
            })
            .collect())
    }
}

/// The history rows of the metric `name` (rows are named `<run id>:<name>__<update time>`, the
/// time all digits): a LIKE of `:<name>__` that leaves out the rows of keys holding it, whose
/// rest after it is not the time alone (`<name>__x__<time>`, `<name>___<time>`) or which have
/// more before it (`x:<name>__<time>`). LIKE ignores case on SQLite and in MariaDB's collation.
pub(super) fn name_condition(name: &str) -> Filter {
    let like = |pattern: String| Filter::Compare {
        target: Target::Column(Column::Name),
        op: CmpOp::Like,
        value: FilterValue::Text(pattern),
    };
    let key = filter::like_literal(name);
    Filter::And(vec![
        like(format!("%:{key}\\_\\_%")),
        Filter::Not(Box::new(Filter::Or(vec![
            like(format!("%:{key}\\_\\_%\\_\\_%")),
            like(format!("%:{key}\\_\\_\\_%")),
            like(format!("%:%:{key}\\_\\_%")),
        ]))),
    ])
}

/// The history rows of these steps.
pub(super) fn steps_condition(steps: &[i64]) -> Filter {
    Filter::Compare {
        target: Target::Property { name: "step".into(), custom: false, columns: vec![ValueColumn::Int] },
        op: CmpOp::In,
        value: FilterValue::List(steps.iter().map(|s| FilterValue::Int(*s)).collect()),
    }
}
