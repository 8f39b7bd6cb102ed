//! Every operation of the REST API in one table, per API version: the router and the OpenAPI
//! documents are both built from it, so what is served and what is documented cannot drift.

use crate::auth::Role;
use crate::registry::{
    ApiVersion, EntityKind, History, Link, Nested, Nouns, ParentSpec, Schema, Spec, ARTIFACT_KINDS, ARTIFACT_NOUNS,
};

use EntityKind::{InferenceService, ModelVersion, RegisteredModel};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Patch,
}

impl Method {
    pub fn http(self) -> axum::http::Method {
        match self {
            Method::Get => axum::http::Method::GET,
            Method::Post => axum::http::Method::POST,
            Method::Patch => axum::http::Method::PATCH,
        }
    }
}

/// What an operation does with its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    Create,
    Get,
    Update,
    /// By `name` (with `parentResourceId` for children) or `externalId`; one match or 404.
    Find,
    ListChildren {
        parent: EntityKind,
        link: Link,
    },
    CreateChild {
        parent: EntityKind,
        schema: Schema,
    },
    /// Create or update an artifact under a parent.
    UpsertArtifact {
        parent: EntityKind,
    },
    /// The metric history of one run (the path names it) or of all runs.
    MetricHistory,
    /// An inference service's registered model.
    ServiceModel,
    /// An inference service's model version.
    ServiceVersion,
}

#[derive(Debug, Clone)]
pub struct Operation {
    /// Upstream's operation name in snake case (`get_registered_models`).
    pub name: String,
    pub method: Method,
    /// Relative to the version's base path; `{id}` is the one path parameter.
    pub path: String,
    /// The entity kinds the operation reads or writes (all artifact kinds for `/artifacts`).
    pub subject: &'static [EntityKind],
    pub action: Action,
}

const ARTIFACTS: &[EntityKind] = &ARTIFACT_KINDS;

impl Operation {
    /// The role a caller needs: the Kubeflow API only reads (GET) or creates and updates; it has
    /// no deletes.
    pub fn role(&self) -> Role {
        match self.method {
            Method::Get => Role::Reader,
            Method::Post | Method::Patch => Role::Writer,
        }
    }

    fn new(
        name: impl Into<String>,
        method: Method,
        path: impl Into<String>,
        subject: &'static [EntityKind],
        action: Action,
    ) -> Self {
        Operation { name: name.into(), method, path: path.into(), subject, action }
    }

    /// The entity whose id the path carries, if it carries one (`None` for `/artifacts/{id}`,
    /// whose kind the id alone decides).
    pub fn path_entity(&self) -> Option<EntityKind> {
        if !self.path.contains("{id}") {
            return None;
        }
        match self.action {
            Action::ListChildren { parent, .. } | Action::CreateChild { parent, .. } | Action::UpsertArtifact { parent } => {
                Some(parent)
            }
            // The history rows' parent.
            Action::MetricHistory => self.subject[0].spec().parent.map(|p| p.kind),
            Action::ServiceModel | Action::ServiceVersion => Some(InferenceService),
            Action::Get | Action::Update if self.subject.len() == 1 => Some(self.subject[0]),
            _ => None,
        }
    }
}

/// A top-level collection: one entity's, or every artifact kind's (`/artifacts`).
#[derive(Debug, Clone, Copy)]
pub struct Collection {
    pub nouns: Nouns,
    pub subject: &'static [EntityKind],
    /// Whether `/readyz/health` lists it.
    pub health_checked: bool,
}

/// The collections of the entities `kinds` (whatever the version), from their table entries.
pub fn collections(kinds: &[EntityKind]) -> Vec<Collection> {
    let own = kinds.iter().filter_map(|k| {
        let spec = k.spec();
        let nouns = spec.rest.collection?;
        Some(Collection { nouns, subject: std::slice::from_ref(&spec.kind), health_checked: spec.rest.health_checked })
    });
    let artifacts = Collection { nouns: ARTIFACT_NOUNS, subject: ARTIFACTS, health_checked: true };
    own.chain([artifacts]).collect()
}

/// The five operations of a top-level collection: list, create, get, update and find.
fn collection(ops: &mut Vec<Operation>, Nouns { plural, singular }: Nouns, subject: &'static [EntityKind]) {
    ops.push(Operation::new(format!("get_{plural}"), Method::Get, format!("/{plural}"), subject, Action::List));
    ops.push(Operation::new(format!("create_{singular}"), Method::Post, format!("/{plural}"), subject, Action::Create));
    ops.push(Operation::new(format!("get_{singular}"), Method::Get, format!("/{plural}/{{id}}"), subject, Action::Get));
    ops.push(Operation::new(format!("update_{singular}"), Method::Patch, format!("/{plural}/{{id}}"), subject, Action::Update));
    ops.push(Operation::new(format!("find_{singular}"), Method::Get, format!("/{singular}"), subject, Action::Find));
}

/// Listing and creating an entity's children under its parent, from the child's entry
/// (`/registered_models/{id}/versions`).
fn nested(ops: &mut Vec<Operation>, child: &'static Spec) {
    let (Some(Nested { owner, nouns, body }), Some(ParentSpec { kind: parent, link, .. })) = (child.rest.nested, child.parent)
    else {
        return;
    };
    let path = format!("/{}/{{id}}/{}", nouns_of(parent).plural, nouns.plural);
    let subject = std::slice::from_ref(&child.kind);
    let list = format!("get_{owner}_{}", nouns.plural);
    ops.push(Operation::new(list, Method::Get, path.clone(), subject, Action::ListChildren { parent, link }));
    let create = format!("create_{owner}_{}", nouns.singular);
    ops.push(Operation::new(create, Method::Post, path, subject, Action::CreateChild { parent, schema: body }));
}

/// The nouns of an entity with routes under it.
fn nouns_of(kind: EntityKind) -> Nouns {
    kind.spec().rest.collection.expect("an entity with routes under it has a collection")
}

/// A parent's artifacts: listed (optionally by `artifactType`) and upserted.
fn artifacts_of(ops: &mut Vec<Operation>, Nouns { plural, singular }: Nouns, parent: EntityKind) {
    let path = format!("/{plural}/{{id}}/artifacts");
    let link = Link::Attribution;
    let list = format!("get_{singular}_artifacts");
    ops.push(Operation::new(list, Method::Get, path.clone(), ARTIFACTS, Action::ListChildren { parent, link }));
    let upsert = format!("upsert_{singular}_artifact");
    ops.push(Operation::new(upsert, Method::Post, path, ARTIFACTS, Action::UpsertArtifact { parent }));
}

/// The history rows of every parent and of one (`/experiment_runs[/{id}]/metric_history`).
fn history_of(ops: &mut Vec<Operation>, Nouns { plural, singular }: Nouns, history: &History) {
    let subject = std::slice::from_ref(&history.row.spec().kind);
    let segment = history.segment;
    let all = format!("get_{plural}_{segment}");
    ops.push(Operation::new(all, Method::Get, format!("/{plural}/{segment}"), subject, Action::MetricHistory));
    let one = format!("get_{singular}_{segment}");
    ops.push(Operation::new(one, Method::Get, format!("/{plural}/{{id}}/{segment}"), subject, Action::MetricHistory));
}

/// Every operation `api` serves.
pub fn operations(api: ApiVersion) -> Vec<Operation> {
    operations_of(api, &EntityKind::ALL)
}

/// The operations `api` serves for the entities `kinds`: each entity's own routes come from
/// its table entry; the inference service lookups are the one pair of routes of their own.
fn operations_of(api: ApiVersion, kinds: &[EntityKind]) -> Vec<Operation> {
    let mut ops = Vec::new();
    for c in collections(kinds).into_iter().filter(|c| c.subject.iter().all(|k| api.serves(*k))) {
        collection(&mut ops, c.nouns, c.subject);
    }
    for spec in kinds.iter().map(|k| k.spec()).filter(|s| api.serves(s.kind)) {
        nested(&mut ops, spec);
        if spec.rest.holds_artifacts {
            artifacts_of(&mut ops, nouns_of(spec.kind), spec.kind);
        }
        if let Some(history) = spec.log.as_ref().and_then(|l| l.history.as_ref()).filter(|h| api.serves(h.row)) {
            history_of(&mut ops, nouns_of(spec.kind), history);
        }
    }
    let services = nouns_of(InferenceService).plural;
    let (model, version) = ("get_inference_service_model", "get_inference_service_version");
    ops.push(Operation::new(model, Method::Get, format!("/{services}/{{id}}/model"), &[RegisteredModel], Action::ServiceModel));
    ops.push(Operation::new(
        version,
        Method::Get,
        format!("/{services}/{{id}}/version"),
        &[ModelVersion],
        Action::ServiceVersion,
    ));
    ops
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::registry::with_gadget;

    #[test]
    fn each_version_has_upstreams_operation_count_with_unique_names_and_routes() {
        for (api, count) in [(ApiVersion::V1Alpha3, 56), (ApiVersion::V1, 40)] {
            let ops = operations(api);
            assert_eq!(ops.len(), count, "{api:?}");
            assert_eq!(ops.iter().map(|o| &o.name).collect::<HashSet<_>>().len(), count);
            assert_eq!(ops.iter().map(|o| (o.method, &o.path)).collect::<HashSet<_>>().len(), count);
        }
    }

    /// An entity registered in the table gets its collection's five routes, named from its
    /// nouns, and a place in the health check.
    #[test]
    fn an_entity_is_one_table_entry() {
        for api in ApiVersion::ALL {
            let before: HashSet<(String, String)> = operations(api).into_iter().map(|o| (o.name, o.path)).collect();
            let after: HashSet<(String, String)> =
                operations_of(api, &with_gadget()).into_iter().map(|o| (o.name, o.path)).collect();
            let added: HashSet<(&str, &str)> = after.difference(&before).map(|(n, p)| (n.as_str(), p.as_str())).collect();
            let expected = HashSet::from([
                ("get_gadgets", "/gadgets"),
                ("create_gadget", "/gadgets"),
                ("get_gadget", "/gadgets/{id}"),
                ("update_gadget", "/gadgets/{id}"),
                ("find_gadget", "/gadget"),
            ]);
            assert_eq!(added, expected, "{api:?}");
            assert!(before.is_subset(&after));
        }
        let checked = |kinds: &[EntityKind]| {
            collections(kinds).into_iter().filter(|c| c.health_checked).map(|c| c.nouns.plural).collect::<Vec<_>>()
        };
        let mut expected = checked(&EntityKind::ALL);
        assert_eq!(expected.len(), 7, "upstream's health check lists seven collections: {expected:?}");
        assert!(!expected.contains(&"model_artifacts"));
        expected.insert(expected.len() - 1, "gadgets");
        assert_eq!(checked(&with_gadget()), expected);
    }

    #[test]
    fn reads_need_a_reader_and_writes_a_writer() {
        for op in operations(ApiVersion::V1Alpha3) {
            let expected = if op.method == Method::Get { Role::Reader } else { Role::Writer };
            assert_eq!(op.role(), expected, "{}", op.name);
        }
        assert!(Role::Reader < Role::Writer && Role::Writer < Role::Admin);
    }

    #[test]
    fn v1_has_no_experiment_tracking() {
        for op in operations(ApiVersion::V1) {
            assert!(!op.path.contains("experiment"), "{}", op.path);
            assert!(op.subject.iter().all(|k| ApiVersion::V1.serves(*k)), "{}", op.name);
        }
    }
}
