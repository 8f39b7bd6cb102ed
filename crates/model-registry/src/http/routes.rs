//! The REST API's routes: each handler parses, calls the registry, returns JSON.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::extract::{Body, Query};
use crate::app::{AppState, StoreState};
use crate::registry::{parse_id, EntityKind, Error, FindParams, Link, ListParams, Registry, Schema, Written, ARTIFACT_KINDS};

use EntityKind::{
    Experiment, ExperimentRun, InferenceService, ModelArtifact, ModelVersion, RegisteredModel, ServeModel, ServingEnvironment,
};

type Reply = Result<Response, Error>;

fn registry(state: &AppState) -> Result<Registry, Error> {
    match &*state.store() {
        StoreState::Ready(registry) => Ok(registry.clone()),
        StoreState::Starting(reason) => Err(Error::Unavailable(reason.clone())),
    }
}

fn ok(value: Value) -> Reply {
    Ok(Json(value).into_response())
}

fn created(value: Value) -> Reply {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// The artifact kinds a list covers: all, or the one `artifactType` names.
fn artifact_kinds(params: &ListParams) -> Result<Vec<EntityKind>, Error> {
    match params.artifact_type.as_deref().filter(|t| !t.is_empty()) {
        None => Ok(ARTIFACT_KINDS.to_vec()),
        Some(t) => EntityKind::from_artifact_type(t).map(|k| vec![k]).ok_or_else(|| {
            Error::bad_request(format!(
                "invalid artifactType {t:?}: expected model-artifact, doc-artifact, dataset-artifact, metric or parameter"
            ))
        }),
    }
}

/// `GET /things`, `POST /things`, `GET /things/{id}`, `PATCH /things/{id}` and the find
/// endpoint `GET /thing` for one entity kind.
fn collection(router: Router<AppState>, plural: &str, singular: &str, kind: EntityKind) -> Router<AppState> {
    router
        .route(
            plural,
            get(move |State(s): State<AppState>, Query(p): Query<ListParams>| async move {
                ok(registry(&s)?.list(&[kind], None, &p).await?)
            })
            .post(move |State(s): State<AppState>, Body(body): Body| async move {
                created(registry(&s)?.create(kind, Schema::Create, &body, None).await?)
            }),
        )
        .route(
            &format!("{plural}/{{id}}"),
            get(move |State(s): State<AppState>, Path(id): Path<String>| async move { ok(registry(&s)?.get(kind, &id).await?) })
                .patch(move |State(s): State<AppState>, Path(id): Path<String>, Body(body): Body| async move {
                    ok(registry(&s)?.update(&[kind], &id, &body).await?)
                }),
        )
        .route(
            singular,
            get(move |State(s): State<AppState>, Query(p): Query<FindParams>| async move {
                ok(registry(&s)?.find(&[kind], &p).await?)
            }),
        )
}

/// `GET` and `POST` on the children of one parent (`/registered_models/{id}/versions`, ...).
fn children(
    router: Router<AppState>,
    path: &str,
    parent: EntityKind,
    child: EntityKind,
    link: Link,
    schema: Schema,
) -> Router<AppState> {
    router.route(
        path,
        get(move |State(s): State<AppState>, Path(id): Path<String>, Query(p): Query<ListParams>| async move {
            ok(registry(&s)?.list_children(parent, &id, &[child], link, &p).await?)
        })
        .post(move |State(s): State<AppState>, Path(id): Path<String>, Body(body): Body| async move {
            let parent_id = parse_id(&id, &format!("{} ID", parent.spec().label))?;
            created(registry(&s)?.create(child, schema, &body, Some(parent_id)).await?)
        }),
    )
}

/// `GET` (optionally by `artifactType`) and the upserting `POST` on a parent's artifacts.
fn artifacts_of(router: Router<AppState>, path: &str, parent: EntityKind) -> Router<AppState> {
    router.route(
        path,
        get(move |State(s): State<AppState>, Path(id): Path<String>, Query(p): Query<ListParams>| async move {
            let kinds = artifact_kinds(&p)?;
            ok(registry(&s)?.list_children(parent, &id, &kinds, Link::Attribution, &p).await?)
        })
        .post(move |State(s): State<AppState>, Path(id): Path<String>, Body(body): Body| async move {
            match registry(&s)?.upsert_artifact(parent, &id, &body).await? {
                (Written::Created, value) => created(value),
                (Written::Updated, value) => ok(value),
            }
        }),
    )
}

pub fn api() -> Router<AppState> {
    let mut router = Router::new();
    for (plural, singular, kind) in [
        ("/registered_models", "/registered_model", RegisteredModel),
        ("/model_versions", "/model_version", ModelVersion),
        ("/model_artifacts", "/model_artifact", ModelArtifact),
        ("/serving_environments", "/serving_environment", ServingEnvironment),
        ("/inference_services", "/inference_service", InferenceService),
        ("/experiments", "/experiment", Experiment),
        ("/experiment_runs", "/experiment_run", ExperimentRun),
    ] {
        router = collection(router, plural, singular, kind);
    }
    router =
        children(router, "/registered_models/{id}/versions", RegisteredModel, ModelVersion, Link::ParentContext, Schema::Full);
    router = children(
        router,
        "/serving_environments/{id}/inference_services",
        ServingEnvironment,
        InferenceService,
        Link::ParentContext,
        Schema::Create,
    );
    router = children(router, "/experiments/{id}/experiment_runs", Experiment, ExperimentRun, Link::ParentContext, Schema::Full);
    router = artifacts_of(router, "/model_versions/{id}/artifacts", ModelVersion);
    router = artifacts_of(router, "/experiment_runs/{id}/artifacts", ExperimentRun);
    router = children(router, "/inference_services/{id}/serves", InferenceService, ServeModel, Link::Association, Schema::Create);
    router
        .route(
            "/experiment_runs/metric_history",
            get(|State(s): State<AppState>, Query(p): Query<ListParams>| async move {
                ok(registry(&s)?.metric_history(None, &p).await?)
            }),
        )
        .route(
            "/experiment_runs/{id}/metric_history",
            get(|State(s): State<AppState>, Path(id): Path<String>, Query(p): Query<ListParams>| async move {
                ok(registry(&s)?.metric_history(Some(&id), &p).await?)
            }),
        )
        .route(
            "/artifacts",
            get(|State(s): State<AppState>, Query(p): Query<ListParams>| async move {
                let kinds = artifact_kinds(&p)?;
                ok(registry(&s)?.list(&kinds, None, &p).await?)
            })
            .post(|State(s): State<AppState>, Body(body): Body| async move {
                created(registry(&s)?.create_artifact(&body).await?)
            }),
        )
        .route(
            "/artifacts/{id}",
            get(|State(s): State<AppState>, Path(id): Path<String>| async move {
                ok(registry(&s)?.get_any(&ARTIFACT_KINDS, &id).await?)
            })
            .patch(|State(s): State<AppState>, Path(id): Path<String>, Body(body): Body| async move {
                ok(registry(&s)?.update(&ARTIFACT_KINDS, &id, &body).await?)
            }),
        )
        .route(
            "/artifact",
            get(|State(s): State<AppState>, Query(p): Query<FindParams>| async move {
                ok(registry(&s)?.find(&ARTIFACT_KINDS, &p).await?)
            }),
        )
        .route(
            "/inference_services/{id}/model",
            get(|State(s): State<AppState>, Path(id): Path<String>| async move {
                ok(registry(&s)?.inference_service_model(&id).await?)
            }),
        )
        .route(
            "/inference_services/{id}/version",
            get(|State(s): State<AppState>, Path(id): Path<String>| async move {
                ok(registry(&s)?.inference_service_version(&id).await?)
            }),
        )
}
