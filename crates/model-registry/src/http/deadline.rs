//! The per-request deadline (`--http-request-timeout`).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::registry::Error;

/// Answers 503 when a request outlives `limit`, reading its body included. Dropping the
/// handler's future drops its transaction, which rolls back.
/// Artifact transfers are exempt: they are bounded by an idle timeout instead.
pub async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    if super::mlflow::artifacts::is_transfer(request.uri().path()) {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::DeadlineExceeded(limit).into_response(),
    }
}
