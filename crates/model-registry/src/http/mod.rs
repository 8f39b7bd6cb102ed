//! HTTP: routing, readiness, and the one mapping from errors to responses.

mod deadline;
mod error;
mod extract;
pub mod openapi;
mod readiness;
pub mod resources;
mod routes;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::app::{AppState, StoreState};
use crate::registry::{ApiVersion, Error};

pub use deadline::deadline;

/// Requests larger than this get 413.
const BODY_LIMIT: usize = 4 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    ApiVersion::ALL
        .into_iter()
        .fold(Router::new(), |router, api| router.nest(&api.base_path(), routes::api(api).merge(openapi::routes(api))))
        .fallback(dispatch)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(reject_declared_oversize))
        .with_state(state)
        // Failures are logged where they are understood (a 503 while starting is no news).
        .layer(tower_http::trace::TraceLayer::new_for_http().on_failure(()))
}

/// A body whose declared length is over the limit is refused before it is read; bodies
/// without a length are cut off by `DefaultBodyLimit` as they stream in.
async fn reject_declared_oversize(request: Request, next: axum::middleware::Next) -> Response {
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
        return readiness::answer(&state, probe, json).await;
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
