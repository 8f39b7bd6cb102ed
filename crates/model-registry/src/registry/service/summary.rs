//! Reads that summarise a page of entities at once (their newest child, their artifacts), for
//! pages that show one line per entity: a fixed number of queries whatever the page size.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::Registry;
use crate::registry::codec::{self, parse_id};
use crate::registry::error::Result;
use crate::registry::spec::{EntityKind, Link};

impl Registry {
    /// The newest `child` (highest id) of each of `parents` (ids as the API writes them), keyed
    /// by parent id: a model's latest version, an experiment's latest run. Three queries.
    pub async fn newest_children(&self, child: EntityKind, parents: &[String]) -> Result<HashMap<String, Json>> {
        let spec = child.spec();
        debug_assert!(spec.parent.is_some_and(|p| p.link == Link::ParentContext));
        let ids = parents.iter().map(|p| parse_id(p, "parent ID")).collect::<Result<Vec<_>>>()?;
        let mut reader = self.datastore.reader().await?;
        let mut conn = reader.conn();
        let newest = self.store.newest_children(&mut conn, &ids).await?;
        let children: Vec<i64> = newest.values().copied().collect();
        let mut nodes = self.store.get(&mut conn, spec.node, &[self.type_id(child)], &children).await?;
        self.fill_parent_ids(&mut conn, &mut nodes).await?;
        let by_id: HashMap<i64, Json> = nodes.iter().map(|n| (n.id, codec::encode(self.api, spec, n))).collect();
        Ok(newest.into_iter().filter_map(|(parent, child)| Some((parent.to_string(), by_id.get(&child)?.clone()))).collect())
    }

    /// The artifacts of `kinds` attributed to any of `parents`, at most `limit` of them, each
    /// with its parent's id: the parameters and metrics of a page of runs. Two queries.
    pub async fn artifacts_of(&self, kinds: &[EntityKind], parents: &[String], limit: u32) -> Result<Vec<(String, Json)>> {
        let ids = parents.iter().map(|p| parse_id(p, "parent ID")).collect::<Result<Vec<_>>>()?;
        let type_ids: Vec<i64> = kinds.iter().map(|k| self.type_id(*k)).collect();
        let mut reader = self.datastore.reader().await?;
        let rows = self.store.attributed(&mut reader.conn(), &ids, &type_ids, limit).await?;
        Ok(rows
            .into_iter()
            .map(|(parent, node)| {
                let kind = self.kind_of(&node, kinds).expect("type filtered");
                (parent.to_string(), codec::encode(self.api, kind.spec(), &node))
            })
            .collect())
    }
}
