//! The one table from errors to HTTP statuses, with upstream's body `{code, message}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::registry::Error;

/// What a 503 asks clients to wait before retrying: about one pool acquire timeout, by which
/// a database that refused connections has usually freed some.
pub const RETRY_AFTER_SECONDS: u64 = 2;

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) | Error::InUse(_) => StatusCode::CONFLICT,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unavailable(_) | Error::Contended(_) | Error::Overloaded | Error::DeadlineExceeded(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Internal(e) => {
                // The cause goes to the log only: driver messages are not for clients.
                tracing::error!(error = %e, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        // Upstream answers a missing required field with 422 and the body code of a 400.
        let code = match &self {
            Error::Unprocessable(_) => "Bad Request",
            _ => status.canonical_reason().unwrap_or_default(),
        };
        let body = ErrorBody { code, message: self.to_string() };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
        }
        response
    }
}
