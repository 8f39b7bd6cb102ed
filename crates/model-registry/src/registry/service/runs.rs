//! MLflow's run search over experiment runs: its terms become store filters and sort keys, so
//! that the database filters, orders and pages the runs, and a page costs the same few
//! statements whatever the number of runs (docs/mlflow.md, "Run search").

use std::collections::HashMap;

use embedmd::store::{CmpOp, Column, Filter, FilterValue, ListQuery, NodeKind, Parent, SortKey, Target, ValueColumn};
use serde_json::Value as Json;

use super::Registry;
use crate::registry::codec;
use crate::registry::error::{Error, Result};
use crate::registry::spec::EntityKind;

/// What a term of a run search names.
#[derive(Debug, Clone, PartialEq)]
pub enum RunField {
    /// The run's latest value of a metric (its `Metric` artifact).
    Metric(String),
    /// A param (its `Parameter` artifact).
    Param(String),
    /// A tag (a custom property of the run).
    Tag(String),
    Status,
    RunName,
    RunId,
    UserId,
    StartTime,
    EndTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunValue {
    Int(i64),
    Number(f64),
    Text(String),
    List(Vec<String>),
    /// `IS NULL`, `IS NOT NULL`.
    Nothing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunCondition {
    pub field: RunField,
    pub op: RunOp,
    pub value: RunValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunOrder {
    pub field: RunField,
    pub descending: bool,
}

/// Which runs a search sees by their lifecycle (MLflow's `run_view_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunView {
    Active,
    Deleted,
    All,
}

/// A run search, already parsed: runs of `experiments` matching every condition, in `order`,
/// then newest start first, then by id; `limit` of them after skipping `offset`.
#[derive(Debug, Clone)]
pub struct RunSearch {
    pub experiments: Vec<i64>,
    pub conditions: Vec<RunCondition>,
    pub order: Vec<RunOrder>,
    pub view: RunView,
    pub offset: u32,
    pub limit: u32,
    /// Metrics and params read per run of the page (at most, on average over the page).
    pub data_per_run: u32,
}

/// A run of a search's page, in the registry's JSON: the run, its metrics and its params.
#[derive(Debug, Clone)]
pub struct FoundRun {
    pub run: Json,
    pub metrics: Vec<Json>,
    pub params: Vec<Json>,
}

const STATE: &str = "state";
const ARCHIVED: &str = "ARCHIVED";

impl Registry {
    fn run_target(&self, field: &RunField) -> Target {
        let typed = |name: &str, column| Target::Property { name: name.into(), custom: false, columns: vec![column] };
        let logged = |kind, key: &str, column| Target::Named {
            type_id: self.type_id(kind),
            name: key.into(),
            property: "value".into(),
            columns: vec![column],
        };
        match field {
            RunField::Metric(key) => logged(EntityKind::Metric, key, ValueColumn::Double),
            RunField::Param(key) => logged(EntityKind::Parameter, key, ValueColumn::String),
            RunField::Tag(key) => Target::Property { name: key.clone(), custom: true, columns: vec![ValueColumn::String] },
            RunField::Status => typed("status", ValueColumn::String),
            RunField::UserId => typed("owner", ValueColumn::String),
            RunField::StartTime => typed("start_time_since_epoch", ValueColumn::Digits),
            RunField::EndTime => typed("end_time_since_epoch", ValueColumn::Digits),
            RunField::RunName => Target::Column(Column::BareName),
            // Compared as text: MLflow's run ids are strings.
            RunField::RunId => Target::Column(Column::Id),
        }
    }

    fn run_filter(&self, condition: &RunCondition) -> Result<Filter> {
        let target = self.run_target(&condition.field);
        let value = match &condition.value {
            RunValue::Int(v) => FilterValue::Int(*v),
            RunValue::Number(v) => FilterValue::Double(*v),
            RunValue::Text(v) => FilterValue::Text(v.clone()),
            RunValue::List(items) => FilterValue::List(items.iter().cloned().map(FilterValue::Text).collect()),
            RunValue::Nothing => FilterValue::List(Vec::new()),
        };
        let compare = |op| Filter::Compare { target: target.clone(), op, value: value.clone() };
        Ok(match condition.op {
            RunOp::Eq => compare(CmpOp::Eq),
            RunOp::Ne => compare(CmpOp::Ne),
            RunOp::Lt => compare(CmpOp::Lt),
            RunOp::Le => compare(CmpOp::Le),
            RunOp::Gt => compare(CmpOp::Gt),
            RunOp::Ge => compare(CmpOp::Ge),
            RunOp::Like => compare(CmpOp::Like),
            RunOp::ILike => compare(CmpOp::ILike),
            RunOp::In => compare(CmpOp::In),
            RunOp::NotIn => Filter::Not(Box::new(compare(CmpOp::In))),
            RunOp::IsNotNull | RunOp::IsNull if matches!(target, Target::Column(_)) => {
                return Err(Error::bad_request("IS NULL / IS NOT NULL is only supported for tags and params"))
            }
            RunOp::IsNotNull => Filter::Has(target),
            RunOp::IsNull => Filter::Not(Box::new(Filter::Has(target))),
        })
    }

    /// One page of an MLflow run search, with its runs' metrics and params; also whether more
    /// runs follow. Four statements: the runs, their properties, their metrics and params,
    /// and those artifacts' properties.
    pub async fn mlflow_search_runs(&self, search: &RunSearch) -> Result<(Vec<FoundRun>, bool)> {
        let mut filters = search.conditions.iter().map(|c| self.run_filter(c)).collect::<Result<Vec<_>>>()?;
        let archived = || Filter::Compare {
            target: Target::Property { name: STATE.into(), custom: false, columns: vec![ValueColumn::String] },
            op: CmpOp::Eq,
            value: FilterValue::Text(ARCHIVED.into()),
        };
        match search.view {
            RunView::Active => filters.push(Filter::Not(Box::new(archived()))),
            RunView::Deleted => filters.push(archived()),
            RunView::All => {}
        }
        // One experiment's runs through its link (a keyed read); several through one subquery.
        let parent = match search.experiments[..] {
            [one] => Some(Parent::Context(one)),
            _ => {
                filters.push(Filter::ChildOf(search.experiments.clone()));
                None
            }
        };
        let mut sort: Vec<SortKey> =
            search.order.iter().map(|o| SortKey { target: self.run_target(&o.field), descending: o.descending }).collect();
        if !search.order.iter().any(|o| o.field == RunField::StartTime) {
            sort.push(SortKey { target: self.run_target(&RunField::StartTime), descending: true });
        }
        let query = ListQuery {
            parent,
            limit: Some(search.limit.saturating_add(1)),
            offset: Some(search.offset),
            filter: match filters.len() {
                0 => None,
                1 => filters.pop(),
                _ => Some(Filter::And(filters)),
            },
            sort,
            ..ListQuery::of(vec![self.type_id(EntityKind::ExperimentRun)])
        };
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let mut runs = self.store.list(&mut conn, NodeKind::Context, &query).await?;
        let more = runs.len() > search.limit as usize;
        runs.truncate(search.limit as usize);
        let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
        let (metric, param) = (EntityKind::Metric, EntityKind::Parameter);
        let limit = u32::try_from(ids.len()).unwrap_or(u32::MAX).saturating_mul(search.data_per_run);
        let logged = self.store.attributed(&mut conn, &ids, &[self.type_id(metric), self.type_id(param)], limit).await?;
        let mut data: HashMap<i64, (Vec<Json>, Vec<Json>)> = HashMap::new();
        for (run, artifact) in logged {
            let entry = data.entry(run).or_default();
            if artifact.type_id == self.type_id(metric) {
                entry.0.push(codec::encode(self.api, metric.spec(), &artifact));
            } else {
                entry.1.push(codec::encode(self.api, param.spec(), &artifact));
            }
        }
        let spec = EntityKind::ExperimentRun.spec();
        let found = runs
            .iter()
            .map(|r| {
                let (metrics, params) = data.remove(&r.id).unwrap_or_default();
                FoundRun { run: codec::encode(self.api, spec, r), metrics, params }
            })
            .collect();
        Ok((found, more))
    }
}
