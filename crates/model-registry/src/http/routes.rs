//! The router of one API version, built from the operation table: each handler parses, calls
//! the registry, returns JSON.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Bytes, HttpBody};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Json;
use http_body::Frame;
use serde_json::Value;
use tokio::sync::mpsc;

use super::extract::{Body, PathId, Query};
use super::resources::{operations, Action, Operation};
use crate::app::{AppState, StoreState};
use crate::auth::{Access, Guarded};
use crate::registry::{parse_id, ApiVersion, EntityKind, Error, ListParams, Listing, Registry, Schema, Written, ARTIFACT_KINDS};

type Reply = Result<Response, Error>;

/// The registry, extracted before anything else: while the datastore is not ready a request is
/// answered 503 without its body being read or parsed.
struct Ready(Registry);

impl FromRequestParts<AppState> for Ready {
    type Rejection = Error;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, Error> {
        match &*state.store() {
            StoreState::Ready(registry) => Ok(Ready(registry.clone())),
            StoreState::Starting(reason) => Err(Error::Unavailable(reason.clone())),
        }
    }
}

fn ok(value: Value) -> Reply {
    Ok(Json(value).into_response())
}

/// A list: whole, or streamed as the registry reads it.
fn listed(listing: Listing) -> Reply {
    match listing {
        Listing::Page(value) => ok(value),
        Listing::Stream(pieces) => {
            let body = axum::body::Body::new(Streamed(pieces));
            Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
        }
    }
}

/// The pieces of a streamed list as a response body; an error ends it early.
struct Streamed(mpsc::Receiver<Result<Vec<u8>, Error>>);

impl HttpBody for Streamed {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.0.poll_recv(cx).map(|piece| piece.map(|piece| piece.map(|bytes| Frame::data(Bytes::from(bytes)))))
    }
}

fn created(value: Value) -> Reply {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// The kinds a list covers: the operation's own, or for artifacts the one `artifactType` names.
fn listed_kinds(op: &Operation, params: &ListParams) -> Result<Vec<EntityKind>, Error> {
    if op.subject.len() == 1 {
        return Ok(op.subject.to_vec());
    }
    match params.artifact_type.as_deref().filter(|t| !t.is_empty()) {
        None => Ok(ARTIFACT_KINDS.to_vec()),
        Some(t) => EntityKind::from_artifact_type(t).map(|k| vec![k]).ok_or_else(|| {
            Error::bad_request(format!(
                "invalid artifactType {t:?}: expected model-artifact, doc-artifact, dataset-artifact, metric or parameter"
            ))
        }),
    }
}

/// Runs one operation; `id` is the path parameter, `body` the JSON of a POST or PATCH.
async fn run(op: &Operation, registry: Registry, id: Option<String>, params: ListParams, body: Option<Value>) -> Reply {
    let body = body.unwrap_or_default();
    let path_id = id.as_deref().unwrap_or_default();
    match op.action {
        Action::List => listed(registry.list(&listed_kinds(op, &params)?, None, &params).await?),
        Action::Create if op.subject.len() > 1 => created(registry.create_artifact(&body).await?),
        Action::Create => created(registry.create(op.subject[0], Schema::Create, &body, None).await?),
        Action::Get => ok(registry.get_any(op.subject, path_id).await?),
        Action::Update => ok(registry.update(op.subject, path_id, &body).await?),
        Action::Find => ok(registry.find(op.subject, &params).await?),
        Action::ListChildren { parent, link } => {
            listed(registry.list_children(parent, path_id, &listed_kinds(op, &params)?, link, &params).await?)
        }
        Action::CreateChild { parent, schema } => {
            let parent_id = parse_id(path_id, &format!("{} ID", parent.spec().label))?;
            created(registry.create(op.subject[0], schema, &body, Some(parent_id)).await?)
        }
        Action::UpsertArtifact { parent } => match registry.upsert_artifact(parent, path_id, &body).await? {
            (Written::Created, value) => created(value),
            (Written::Updated, value) => ok(value),
        },
        Action::MetricHistory => listed(registry.metric_history(id.as_deref(), &params).await?),
        Action::ServiceModel => ok(registry.inference_service_model(path_id).await?),
        Action::ServiceVersion => ok(registry.inference_service_version(path_id).await?),
    }
}

fn handler(op: Operation, api: ApiVersion) -> MethodRouter<AppState> {
    let filter = MethodFilter::try_from(op.method.http()).expect("GET, POST and PATCH have filters");
    let op = Arc::new(op);
    if op.path.contains("{id}") {
        on(filter, move |Ready(r): Ready, PathId(id): PathId, Query(p): Query<ListParams>, Body(b): Body| async move {
            run(&op, r.for_api(api), Some(id), p, b).await
        })
    } else {
        on(filter, move |Ready(r): Ready, Query(p): Query<ListParams>, Body(b): Body| async move {
            run(&op, r.for_api(api), None, p, b).await
        })
    }
}

/// Every route of `api`, relative to its base path, each needing its operation's role.
pub fn api(api: ApiVersion) -> Guarded<AppState> {
    operations(api).into_iter().fold(Guarded::default(), |routes, op| {
        let (path, method, role) = (op.path.clone(), op.method.http(), op.role());
        routes.route(&path, &[method], Access::Needs(role), handler(op, api))
    })
}
