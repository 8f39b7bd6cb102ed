//! Every operation of the REST API in one table, per API version: the router and the OpenAPI
//! documents are both built from it, so what is served and what is documented cannot drift.

use crate::registry::{ApiVersion, EntityKind, Link, Schema, ARTIFACT_KINDS};

use EntityKind::{
    Experiment, ExperimentRun, InferenceService, MetricHistory, ModelArtifact, ModelVersion, RegisteredModel, ServeModel,
    ServingEnvironment,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Patch,
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
            Action::MetricHistory => Some(ExperimentRun),
            Action::ServiceModel | Action::ServiceVersion => Some(InferenceService),
            Action::Get | Action::Update if self.subject.len() == 1 => Some(self.subject[0]),
            _ => None,
        }
    }
}

/// The five operations of a top-level collection: list, create, get, update and find.
fn collection(ops: &mut Vec<Operation>, plural: &str, singular: &str, subject: &'static [EntityKind]) {
    ops.push(Operation::new(format!("get_{plural}"), Method::Get, format!("/{plural}"), subject, Action::List));
    ops.push(Operation::new(format!("create_{singular}"), Method::Post, format!("/{plural}"), subject, Action::Create));
    ops.push(Operation::new(format!("get_{singular}"), Method::Get, format!("/{plural}/{{id}}"), subject, Action::Get));
    ops.push(Operation::new(format!("update_{singular}"), Method::Patch, format!("/{plural}/{{id}}"), subject, Action::Update));
    ops.push(Operation::new(format!("find_{singular}"), Method::Get, format!("/{singular}"), subject, Action::Find));
}

/// Listing and creating the children of a parent (`/registered_models/{id}/versions`).
fn nested(
    ops: &mut Vec<Operation>,
    path: &str,
    (list, create): (&str, &str),
    parent: EntityKind,
    subject: &'static [EntityKind],
    schema: Schema,
) {
    // The child's own entry says how it hangs under its parent.
    let link = subject[0].spec().parent.map_or(Link::ParentContext, |p| p.link);
    ops.push(Operation::new(list, Method::Get, path, subject, Action::ListChildren { parent, link }));
    ops.push(Operation::new(create, Method::Post, path, subject, Action::CreateChild { parent, schema }));
}

/// A parent's artifacts: listed (optionally by `artifactType`) and upserted.
fn artifacts_of(ops: &mut Vec<Operation>, path: &str, name: &str, parent: EntityKind) {
    let link = Link::Attribution;
    ops.push(Operation::new(
        format!("get_{name}_artifacts"),
        Method::Get,
        path,
        ARTIFACTS,
        Action::ListChildren { parent, link },
    ));
    ops.push(Operation::new(format!("upsert_{name}_artifact"), Method::Post, path, ARTIFACTS, Action::UpsertArtifact { parent }));
}

/// Every operation `api` serves.
pub fn operations(api: ApiVersion) -> Vec<Operation> {
    let mut ops = Vec::new();
    let collections: [(&str, &str, &'static [EntityKind]); 8] = [
        ("registered_models", "registered_model", &[RegisteredModel]),
        ("model_versions", "model_version", &[ModelVersion]),
        ("model_artifacts", "model_artifact", &[ModelArtifact]),
        ("artifacts", "artifact", ARTIFACTS),
        ("serving_environments", "serving_environment", &[ServingEnvironment]),
        ("inference_services", "inference_service", &[InferenceService]),
        ("experiments", "experiment", &[Experiment]),
        ("experiment_runs", "experiment_run", &[ExperimentRun]),
    ];
    for (plural, singular, subject) in collections {
        if subject.iter().all(|k| api.serves(*k)) {
            collection(&mut ops, plural, singular, subject);
        }
    }
    let versions = ("get_registered_model_versions", "create_registered_model_version");
    nested(&mut ops, "/registered_models/{id}/versions", versions, RegisteredModel, &[ModelVersion], Schema::Full);
    artifacts_of(&mut ops, "/model_versions/{id}/artifacts", "model_version", ModelVersion);
    let services = ("get_environment_inference_services", "create_environment_inference_service");
    let path = "/serving_environments/{id}/inference_services";
    nested(&mut ops, path, services, ServingEnvironment, &[InferenceService], Schema::Create);
    let serves = ("get_inference_service_serves", "create_inference_service_serve");
    nested(&mut ops, "/inference_services/{id}/serves", serves, InferenceService, &[ServeModel], Schema::Create);
    let (model, version) = ("get_inference_service_model", "get_inference_service_version");
    ops.push(Operation::new(model, Method::Get, "/inference_services/{id}/model", &[RegisteredModel], Action::ServiceModel));
    ops.push(Operation::new(version, Method::Get, "/inference_services/{id}/version", &[ModelVersion], Action::ServiceVersion));
    if api.has_experiments() {
        let runs = ("get_experiment_experiment_runs", "create_experiment_experiment_run");
        nested(&mut ops, "/experiments/{id}/experiment_runs", runs, Experiment, &[ExperimentRun], Schema::Full);
        artifacts_of(&mut ops, "/experiment_runs/{id}/artifacts", "experiment_run", ExperimentRun);
        let history: &[EntityKind] = &[MetricHistory];
        let all_runs = "get_experiment_runs_metric_history";
        ops.push(Operation::new(all_runs, Method::Get, "/experiment_runs/metric_history", history, Action::MetricHistory));
        let one_run = "get_experiment_run_metric_history";
        ops.push(Operation::new(one_run, Method::Get, "/experiment_runs/{id}/metric_history", history, Action::MetricHistory));
    }
    ops
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn each_version_has_upstreams_operation_count_with_unique_names_and_routes() {
        for (api, count) in [(ApiVersion::V1Alpha3, 56), (ApiVersion::V1, 40)] {
            let ops = operations(api);
            assert_eq!(ops.len(), count, "{api:?}");
            assert_eq!(ops.iter().map(|o| &o.name).collect::<HashSet<_>>().len(), count);
            assert_eq!(ops.iter().map(|o| (o.method, &o.path)).collect::<HashSet<_>>().len(), count);
        }
    }

    #[test]
    fn v1_has_no_experiment_tracking() {
        for op in operations(ApiVersion::V1) {
            assert!(!op.path.contains("experiment"), "{}", op.path);
            assert!(op.subject.iter().all(|k| ApiVersion::V1.serves(*k)), "{}", op.name);
        }
    }
}
