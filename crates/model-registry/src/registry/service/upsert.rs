//! Artifact upserts under a model version or an experiment run: locks, by-name lookups and
//! the retry when another write took the name meanwhile.

use embedmd::store::{Conn, Node, Parent, Value};
use serde_json::Value as Json;

use super::write::{artifact_kind, Written};
use super::{int_property, Registry};
use crate::registry::codec::{self, parse_id, Draft, Schema};
use crate::registry::error::{Error, Result};
use crate::registry::spec::{EntityKind, ARTIFACT_KINDS};

/// One try of an artifact upsert.
enum Attempt {
    Done(Written, Node),
    /// Another write took the name since it was looked up: try again with what it holds now.
    Again {
        seen: Option<i64>,
        draft: Draft,
    },
}

impl Registry {
    /// `POST /model_versions/{id}/artifacts` and `POST /experiment_runs/{id}/artifacts`: create
    /// under the parent, or update the artifact named by `id` (or, for a run's metrics and
    /// parameters, by name); either way the artifact ends up attributed to the parent.
    pub async fn upsert_artifact(&self, parent_kind: EntityKind, parent_id: &str, body: &Json) -> Result<(Written, Json)> {
        let parent_label = parent_kind.spec().label;
        let parent_id = parse_id(parent_id, &format!("{parent_label} ID"))?;
        let kind = artifact_kind(body)?;
        let spec = kind.spec();
        let mut draft = codec::decode(self.api, spec, Schema::Full, body)?;
        let rules = parent_kind.spec().log.as_ref();
        let history = rules.and_then(|r| r.history.as_ref()).filter(|h| h.of == kind);
        if let Some(required) = history.map(|h| h.required).filter(|field| draft.get(field).is_none()) {
            return Err(Error::bad_request(format!("{} {required} is required", spec.label)));
        }
        let by_name = rules.is_some_and(|r| r.upserted_by_name.contains(&kind));
        let named = draft.name.as_ref().filter(|_| by_name && draft.id.is_none()).map(|name| format!("{parent_id}:{name}"));
        // The artifact rewritten is locked before anything is read, against a PATCH of it
        // running meanwhile. One the body names is looked up first, outside the transaction:
        // locking a name that does not exist yet would lock an index gap on MySQL, where other
        // runs' first logs then deadlock.
        let mut seen = match (&draft.id, &named) {
            (Some(id), _) => Some(parse_id(id, "artifact ID")?),
            (None, Some(stored)) => self.id_named(&mut self.datastore.reader().await?.conn(), kind, stored).await?,
            (None, None) => None,
        };
        loop {
            let (this, named) = (self.clone(), named.clone());
            let attempt = self
                .datastore
                .write(move |conn| {
                    Box::pin(async move {
                        // Every lock comes before any read, so that MySQL's snapshot is taken after
                        // the waits; parent first, then artifact, so that two upserts cannot deadlock.
                        if rules.is_some() {
                            // Logs to one parent go one at a time: the by-name lookup below then sees
                            // the previous log, and history rows get distinct update times.
                            this.store.lock(conn, parent_kind.spec().node, parent_id).await?;
                        }
                        if let Some(id) = seen {
                            this.store.lock(conn, spec.node, id).await?;
                        }
                        let existing = match &named {
                            Some(stored) => this.id_named(conn, kind, stored).await?,
                            None => seen,
                        };
                        if existing != seen {
                            // Logged under this name since the lookup: once more, with it locked.
                            return Ok(Attempt::Again { seen: existing, draft });
                        }
                        if let Some(rules) = rules {
                            let (_, parent) = this.load(conn, &[parent_kind], parent_id, parent_label).await?;
                            let custom = draft.custom.get_or_insert_with(Default::default);
                            let grandparent = parent_kind.spec().parent_property().and_then(|p| int_property(&parent, p));
                            if let Some(grandparent) = grandparent {
                                custom.insert(rules.grandparent_link.property.into(), Value::Int(grandparent));
                            }
                            custom.insert(rules.parent_link.property.into(), Value::Int(parent_id));
                        }
                        let (written, node) = match existing {
                            Some(id) => {
                                if rules.is_none() {
                                    this.must_exist(conn, parent_kind, parent_id).await?;
                                }
                                let (existing_kind, node) = this.load(conn, &ARTIFACT_KINDS, id, "artifact").await?;
                                if existing_kind != kind {
                                    let (from, to) = (existing_kind.spec().artifact_type, spec.artifact_type);
                                    return Err(codec::type_change(from.unwrap_or_default(), to.unwrap_or_default()));
                                }
                                let node = this.rewrite(conn, spec, node, draft).await?;
                                this.store.link(conn, Parent::Attribution(parent_id), node.id).await?;
                                (Written::Updated, node)
                            }
                            None => {
                                (Written::Created, this.insert(conn, spec, draft, Some((parent_kind, parent_id)), false).await?)
                            }
                        };
                        if let Some(history) = history {
                            this.record_history(conn, history.row, parent_id, &node).await?;
                        }
                        Ok::<_, Error>(Attempt::Done(written, node))
                    })
                })
                .await?;
            match attempt {
                Attempt::Again { seen: now_seen, draft: returned } => (seen, draft) = (now_seen, returned),
                Attempt::Done(written, node) => {
                    // Upstream answers 201 only for new model and doc artifacts.
                    let status = match (written, kind) {
                        (Written::Created, EntityKind::ModelArtifact | EntityKind::DocArtifact) => Written::Created,
                        _ => Written::Updated,
                    };
                    return Ok((status, codec::encode(self.api, spec, &node)));
                }
            }
        }
    }

    /// The id of the artifact of `kind` stored under `name`, if there is one.
    async fn id_named(&self, conn: &mut Conn<'_>, kind: EntityKind, name: &str) -> Result<Option<i64>> {
        let found = self.store.find(conn, kind.spec().node, &[self.type_id(kind)], Some(name), None, 1).await?;
        Ok(found.first().map(|n| n.id))
    }
}
