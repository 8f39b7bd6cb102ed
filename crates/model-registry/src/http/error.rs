use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Every error the API returns; `into_response` is the only place that picks a status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("Datastore service is down or unavailable: {0}")]
    Unavailable(String),
}

/// Upstream's error body: the reason phrase as `code`, the text as `message`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = ErrorBody { code: status.canonical_reason().unwrap_or_default(), message: self.to_string() };
        (status, Json(body)).into_response()
    }
}
