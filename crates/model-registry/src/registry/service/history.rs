//! Metric history: the row each metric logged under a run leaves, and its lists.

use embedmd::store::{CmpOp, Column, Conn, Filter, FilterValue, Node, NodeFields, Parent, Target, Under, ValueColumn};

use super::list::Listing;
use super::Registry;
use crate::registry::codec;
use crate::registry::error::{Error, Result};
use crate::registry::filter;
use crate::registry::paging::ListParams;
use crate::registry::spec::{EntityKind, Link};

impl Registry {
    /// A history row of a logged artifact (a metric under a run), named
    /// `<parent id>:<name>__<update time>`, attributed to the parent.
    pub(super) async fn record_history(&self, conn: &mut Conn<'_>, row: EntityKind, parent_id: i64, logged: &Node) -> Result<()> {
        let name = codec::bare_name(logged.name.as_deref().unwrap_or_default()).to_owned();
        let stored = format!("{parent_id}:{name}__{}", logged.update_time);
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
        let fields = NodeFields { type_id: self.type_id(row), name: stored, external_id: None, uri: None, state: logged.state };
        let run = EntityKind::ExperimentRun;
        let under = Under { parent: Parent::Attribution(parent_id), parent_types: vec![self.type_id(run)] };
        match self.store.insert(conn, row.spec().node, &fields, &logged.properties, logged.update_time, Some(&under)).await? {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!("no {} found for id {parent_id}", run.spec().label))),
        }
    }

    /// `GET /experiment_runs[/{id}]/metric_history`: the rows each metric upsert left, by metric
    /// `name` and by `stepIds` (`1,2,3`), shown as metrics.
    pub async fn metric_history(&self, run: Option<&str>, params: &ListParams) -> Result<Listing> {
        let mut conditions = Vec::new();
        if let Some(name) = params.name.as_deref().filter(|n| !n.is_empty()) {
            conditions.push(Filter::Compare {
                target: Target::Column(Column::Name),
                op: CmpOp::Like,
                value: FilterValue::Text(format!("%:{}\\_\\_%", filter::like_literal(name))),
            });
        }
        if let Some(steps) = params.step_ids.as_deref().filter(|s| !s.is_empty()) {
            // As long as an IN list may be: each step is a bind value.
            let count = steps.split(',').count();
            if count > filter_query::MAX_LIST_ITEMS {
                let limit = filter_query::MAX_LIST_ITEMS;
                return Err(Error::bad_request(format!("stepIds has {count} values (the limit is {limit})")));
            }
            let ids = steps
                .split(',')
                .map(|s| s.trim().parse::<i32>().map(|v| FilterValue::Int(i64::from(v))))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| Error::bad_request(format!("invalid stepIds {steps:?}: expected integers separated by commas")))?;
            conditions.push(Filter::Compare {
                target: Target::Property { name: "step".into(), custom: false, columns: vec![ValueColumn::Int] },
                op: CmpOp::In,
                value: FilterValue::List(ids),
            });
        }
        // `name` is the metric's name here, not a stored name.
        let params = ListParams { name: None, external_id: None, ..params.clone() };
        let parent = match run {
            Some(run) => Some((Link::Attribution, self.existing(EntityKind::ExperimentRun, run).await?)),
            None => None,
        };
        self.list_filtered(&[EntityKind::MetricHistory], parent, &params, conditions).await
    }
}
