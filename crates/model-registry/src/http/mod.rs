//! HTTP: routing, readiness, and the one mapping from errors to responses.

mod deadline;
mod error;
mod extract;
pub mod mlflow;
mod observe;
pub mod openapi;
mod readiness;
pub mod resources;
mod routes;
mod tls;
pub mod ui;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::app::{AppState, StoreState};
use crate::auth::{Access, Auth, Gate, Guarded, Role};
use crate::registry::{ApiVersion, Error};

pub use deadline::deadline;
pub use error::RETRY_AFTER_SECONDS;
pub use observe::observe;
pub use tls::{Tls, TlsFiles, CERT_CHECK_INTERVAL};

/// Requests larger than this get 413.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Requests served at once, by default (`--max-concurrent-requests`). Each may hold a body of
/// up to [`BODY_LIMIT`] and its parse, so this bounds the server's memory; a request beyond it
/// is answered 503 at once rather than queued.
pub const MAX_CONCURRENT_REQUESTS: u32 = 64;

/// Every route with the access it declared: both REST APIs, MLflow's and its artifact proxy, the
/// web UI's pages when `ui`, `/metrics` unless it has a port of its own (then it needs a reader
/// here).
pub fn guarded_routes(ui: bool, with_metrics: bool) -> Guarded<AppState> {
    api_routes(ui, with_metrics).merge(mlflow::artifacts::routes())
}

/// The routes behind the JSON APIs' body limit and request permits: all but the artifact proxy's.
fn api_routes(ui: bool, with_metrics: bool) -> Guarded<AppState> {
    let mut routes = ApiVersion::ALL
        .into_iter()
        .fold(Guarded::default(), |routes, api| routes.nest(&api.base_path(), routes::api(api).merge(openapi::routes(api))));
    routes = routes.merge(mlflow::routes());
    if ui {
        routes = routes.merge(ui::routes());
    }
    if !with_metrics {
        return routes;
    }
    routes.merge(Guarded::default().route(
        "/metrics",
        &[axum::http::Method::GET],
        Access::Needs(Role::Reader),
        axum::routing::get(metrics),
    ))
}

/// No CORS layer: browsers keep cross-origin pages from reading answers, and writes need a JSON
/// content type, which a cross-origin page cannot send without a preflight nobody answers.
pub fn router(state: AppState, max_concurrent_requests: u32, ui: bool, auth: Auth, with_metrics: bool) -> Router {
    let permits = Arc::new(Semaphore::new(max_concurrent_requests as usize));
    let routes = api_routes(ui, with_metrics);
    // Outside the JSON API's body limit and request permits (transfers stream, with their own),
    // behind the same gate.
    let artifacts = mlflow::artifacts::routes();
    let access = routes.access.merged(artifacts.access);
    let gate = Gate { auth, access: Arc::new(access), metrics: state.metrics().clone() };
    let gate = axum::middleware::from_fn_with_state(gate, crate::auth::enforce);
    let artifacts = artifacts.router.layer(gate.clone()).with_state(state.clone());
    routes
        .router
        .fallback(dispatch)
        .layer(gate)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(reject_declared_oversize))
        .layer(axum::middleware::from_fn_with_state(permits, shed_load))
        .with_state(state)
        .merge(artifacts)
}

/// `GET /metrics` on its own port, outside the concurrency limit and open: a server shedding
/// load is when its metrics matter most. It answers while the datastore is starting.
pub fn metrics_router(state: AppState) -> Router {
    Router::new().route("/metrics", axum::routing::get(metrics)).with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics().render(&state.store());
    ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

/// Serves a request if a permit is free, else 503 at once: waiting requests would queue
/// without bound, each holding its socket and buffers.
async fn shed_load(State(permits): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    match permits.try_acquire_owned() {
        Ok(permit) => next.run(request).await.map(|body| Body::new(Permitted { body, _permit: permit })),
        Err(_) => Error::Overloaded.into_response(),
    }
}

/// A response body holding its request's permit until it is sent: a streamed list counts
/// against the limit for as long as it is being read.
struct Permitted {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl HttpBody for Permitted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A body whose declared length is over the limit is refused before it is read; bodies
/// without a length are cut off by `DefaultBodyLimit` as they stream in.
async fn reject_declared_oversize(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > BODY_LIMIT) {
        return Error::PayloadTooLarge.into_response();
    }
    next.run(request).await
}

/// Upstream answers readiness on any path that ends in `/readyz/...`, and the API with 503
/// until the datastore is ready.
async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    let readiness = if path.ends_with("/readyz/isDirty") {
        Some(readiness::Probe::IsDirty)
    } else if path.ends_with("/readyz/health") {
        Some(readiness::Probe::Health)
    } else {
        None
    };
    if let Some(probe) = readiness {
        if request.method() != Method::GET {
            return (StatusCode::METHOD_NOT_ALLOWED, "method not allowed").into_response();
        }
        let json = request.uri().query().is_some_and(|q| q.split('&').any(|p| p == "format=json"));
        let route = match probe {
            readiness::Probe::IsDirty => "/readyz/isDirty",
            readiness::Probe::Health => "/readyz/health",
        };
        let mut response = readiness::answer(&state, probe, json).await;
        response.extensions_mut().insert(observe::RouteLabel(route));
        return response;
    }
    let under_api = ApiVersion::ALL.iter().any(|api| {
        let base = api.base_path();
        path == base || path.strip_prefix(&base).is_some_and(|rest| rest.starts_with('/'))
    });
    if under_api {
        return match &*state.store() {
            StoreState::Starting(reason) => Error::Unavailable(reason.clone()).into_response(),
            StoreState::Ready(_) => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
        };
    }
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}
