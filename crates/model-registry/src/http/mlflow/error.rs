//! MLflow's error body `{"error_code": ..., "message": ...}` and its HTTP statuses, mapped from
//! the one domain error type here and nowhere else. Statuses follow MLflow's own table
//! (`ERROR_CODE_TO_HTTP_STATUS` in `mlflow/exceptions.py`): its client raises the exception
//! type and code a script expects only when both match.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::http::error::RETRY_AFTER_SECONDS;
use crate::registry::Error;

/// The `ErrorCode` names of MLflow's `databricks.proto` this API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InternalError,
    TemporarilyUnavailable,
    EndpointNotFound,
    ResourceDoesNotExist,
    ResourceAlreadyExists,
    ResourceConflict,
    InvalidParameterValue,
    BadRequest,
    PermissionDenied,
    Unauthenticated,
    /// What MLflow's proxy answers for presigned downloads, which a proxy cannot give.
    NotImplemented,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::EndpointNotFound | ErrorCode::ResourceDoesNotExist => StatusCode::NOT_FOUND,
            ErrorCode::ResourceConflict => StatusCode::CONFLICT,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            // MLflow answers a duplicate name with 400, not 409.
            ErrorCode::ResourceAlreadyExists | ErrorCode::InvalidParameterValue | ErrorCode::BadRequest => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

/// An MLflow API error: what its handlers return, and what a domain error becomes.
#[derive(Debug)]
pub struct MlflowError {
    pub code: ErrorCode,
    pub message: String,
}

impl MlflowError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        MlflowError { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        MlflowError::new(ErrorCode::InvalidParameterValue, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        MlflowError::new(ErrorCode::ResourceDoesNotExist, message)
    }
}

/// The one mapping from the domain error to MLflow's codes.
impl From<Error> for MlflowError {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::BadRequest(_) | Error::Unprocessable(_) => ErrorCode::InvalidParameterValue,
            Error::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            Error::Conflict(_) => ErrorCode::ResourceAlreadyExists,
            Error::InUse(_) => ErrorCode::ResourceConflict,
            Error::PayloadTooLarge | Error::UnsupportedMediaType => ErrorCode::BadRequest,
            Error::Unavailable(_) | Error::Contended(_) | Error::Overloaded | Error::DeadlineExceeded(_) => {
                ErrorCode::TemporarilyUnavailable
            }
            Error::Internal(cause) => {
                // The cause goes to the log only: driver messages are not for clients.
                tracing::error!(error = %cause, "request failed");
                ErrorCode::InternalError
            }
        };
        MlflowError { code, message: e.to_string() }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error_code: ErrorCode,
    message: &'a str,
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let mut response = (status, Json(ErrorBody { error_code: self.code, message: &self.message })).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
        }
        response
    }
}

/// An authentication layer's refusal (401, 403, 503) in MLflow's words, with the layer's status.
pub fn refusal(status: StatusCode, message: String) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
        StatusCode::FORBIDDEN => ErrorCode::PermissionDenied,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::TemporarilyUnavailable,
        _ => ErrorCode::InternalError,
    };
    (status, Json(ErrorBody { error_code: code, message: &message })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_get_mlflows_codes_and_statuses() {
        let cases = [
            (Error::not_found("x"), "RESOURCE_DOES_NOT_EXIST", 404),
            (Error::Conflict("x".into()), "RESOURCE_ALREADY_EXISTS", 400),
            (Error::bad_request("x"), "INVALID_PARAMETER_VALUE", 400),
            (Error::InUse("x".into()), "RESOURCE_CONFLICT", 409),
            (Error::Overloaded, "TEMPORARILY_UNAVAILABLE", 503),
        ];
        for (error, code, status) in cases {
            let e = MlflowError::from(error);
            assert_eq!(serde_json::to_value(e.code).unwrap(), code);
            assert_eq!(e.code.status().as_u16(), status);
        }
    }
}
