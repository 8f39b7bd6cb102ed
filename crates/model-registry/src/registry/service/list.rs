//! Lists: a page read in chunks, streamed to the client as each chunk is read.

use embedmd::store::{Filter, ListQuery};
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::{parent_link, Registry};
use crate::registry::codec;
use crate::registry::error::Result;
use crate::registry::filter;
use crate::registry::paging::{encode_token, ListParams, Page};
use crate::registry::spec::{EntityKind, Link};

/// Rows a list reads and encodes at a time: whatever its size, a list holds one chunk.
const LIST_CHUNK: usize = 500;

/// The answer of a list.
#[derive(Debug)]
pub enum Listing {
    /// The whole document, when the first chunk held every row.
    Page(Json),
    /// The document in pieces, each read from the database when the client has taken the one
    /// before. The first chunk was read before: its errors have their status; an error after
    /// it can only cut the stream short.
    Stream(mpsc::Receiver<Result<Vec<u8>>>),
}

/// A list between two chunks.
struct Cursor {
    registry: Registry,
    kinds: Vec<EntityKind>,
    /// Its `after` is the last row read.
    query: ListQuery,
    /// Rows the page still takes; `None`: every row.
    remaining: Option<usize>,
}

impl Cursor {
    /// The next chunk, encoded, and the page token when the list ends with it (`""`: no more
    /// rows).
    async fn next(&mut self) -> Result<(Vec<Json>, Option<String>)> {
        // The page's last chunk reads one row more, to learn whether another page follows.
        let limit = self.remaining.map_or(LIST_CHUNK, |r| (r + 1).min(LIST_CHUNK));
        self.query.limit = Some(limit as u32);
        let registry = &self.registry;
        let mut reader = registry.datastore.reader().await?;
        let mut conn = reader.conn();
        let mut nodes = registry.store.list(&mut conn, self.kinds[0].spec().node, &self.query).await?;
        let fetched = nodes.len();
        if let Some(remaining) = &mut self.remaining {
            nodes.truncate(*remaining);
            *remaining -= nodes.len();
        }
        if let Some(last) = nodes.last() {
            self.query.after = Some((last.id, self.query.order.value_of(last)));
        }
        let end = if fetched < limit {
            Some(String::new())
        } else if self.remaining == Some(0) && fetched > nodes.len() {
            self.query.after.as_ref().map(|(id, value)| encode_token(*id, value))
        } else {
            None
        };
        registry.fill_parent_ids(&mut conn, &mut nodes).await?;
        let items = nodes
            .iter()
            .map(|n| codec::encode(registry.api, registry.kind_of(n, &self.kinds).expect("type filtered").spec(), n))
            .collect();
        Ok((items, end))
    }

    /// Sends the document piece by piece, starting with the first chunk's `items`.
    async fn stream(mut self, mut items: Vec<Json>, page_size: i32, pieces: mpsc::Sender<Result<Vec<u8>>>) {
        // The same bytes as the whole document's (its keys are sorted, `items` first).
        let mut piece = br#"{"items":["#.to_vec();
        let mut size = 0usize;
        let mut end = None;
        loop {
            for item in &items {
                if size > 0 {
                    piece.push(b',');
                }
                serde_json::to_writer(&mut piece, item).expect("a JSON value serializes");
                size += 1;
            }
            if let Some(token) = end {
                let tail = format!(r#"],"nextPageToken":{},"pageSize":{page_size},"size":{size}}}"#, Json::String(token));
                piece.extend_from_slice(tail.as_bytes());
                let _ = pieces.send(Ok(piece)).await;
                return;
            }
            // A client gone away ends the list.
            if pieces.send(Ok(std::mem::take(&mut piece))).await.is_err() {
                return;
            }
            match self.next().await {
                Ok((next, next_end)) => (items, end) = (next, next_end),
                Err(e) => {
                    tracing::error!(error = ?e, "a list failed while streaming");
                    let _ = pieces.send(Err(e)).await;
                    return;
                }
            }
        }
    }
}

impl Registry {
    /// One page of entities of `kinds`, optionally the children of a parent.
    pub async fn list(&self, kinds: &[EntityKind], parent: Option<(Link, i64)>, params: &ListParams) -> Result<Listing> {
        self.list_filtered(kinds, parent, params, Vec::new()).await
    }

    /// [`Registry::list`] with conditions of the endpoint's own ANDed to the filterQuery.
    pub(super) async fn list_filtered(
        &self,
        kinds: &[EntityKind],
        parent: Option<(Link, i64)>,
        params: &ListParams,
        mut conditions: Vec<Filter>,
    ) -> Result<Listing> {
        let page = Page::parse(params)?;
        conditions.extend(filter::resolve(kinds, params.filter_query.as_deref())?);
        let filter = match conditions.len() {
            0 => None,
            1 => conditions.pop(),
            _ => Some(Filter::And(conditions)),
        };
        let prefix = parent.map(|(_, id)| format!("{id}:")).unwrap_or_default();
        let query = ListQuery {
            parent: parent.map(|(link, id)| parent_link(link, id)),
            name: params.name.as_ref().filter(|_| parent.is_some()).map(|n| format!("{prefix}{n}")),
            external_id: params.external_id.clone().filter(|_| parent.is_some()),
            order: page.order,
            descending: page.descending,
            after: page.after.clone(),
            filter,
            ..ListQuery::of(kinds.iter().map(|k| self.type_id(*k)).collect())
        };
        let remaining = usize::try_from(page.size).ok().filter(|s| *s > 0);
        let mut cursor = Cursor { registry: self.clone(), kinds: kinds.to_vec(), query, remaining };
        match cursor.next().await? {
            (items, Some(token)) => {
                Ok(Listing::Page(json!({ "items": items, "nextPageToken": token, "pageSize": page.size, "size": items.len() })))
            }
            (items, None) => {
                // One piece ahead at most: the database is read as fast as the client takes.
                // In the request's span, so that its lines carry the request id.
                let (pieces, receiver) = mpsc::channel(1);
                tokio::spawn(cursor.stream(items, page.size, pieces).in_current_span());
                Ok(Listing::Stream(receiver))
            }
        }
    }

    /// Checks that a parent exists before listing its children (404 otherwise).
    pub async fn list_children(
        &self,
        parent_kind: EntityKind,
        parent_id: &str,
        kinds: &[EntityKind],
        link: Link,
        params: &ListParams,
    ) -> Result<Listing> {
        let id = self.existing(parent_kind, parent_id).await?;
        self.list(kinds, Some((link, id)), params).await
    }
}
