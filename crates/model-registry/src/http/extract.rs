//! Extractors whose rejections are the API's own 400s instead of axum's plain-text ones.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::registry::Error;

/// The JSON body of a POST or PATCH (a GET has none), decoded loosely here and strictly by
/// the registry's codec.
pub struct Body(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        if request.method() == axum::http::Method::GET {
            return Ok(Body(None));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge
            } else {
                Error::bad_request(format!("cannot read the request body: {e}"))
            }
        })?;
        if bytes.contains(&0) {
            return Err(Error::bad_request("Request body contains null bytes which are not allowed"));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))?;
        if value.to_string().contains("\\u0000") {
            return Err(Error::bad_request("Request body contains null bytes which are not allowed"));
        }
        Ok(Body(Some(value)))
    }
}

/// Query parameters; malformed ones are a 400 naming the problem.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let axum::extract::Query(value) = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::bad_request(format!("invalid query parameters: {}", e.body_text())))?;
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(Error::bad_request("query parameters contain null bytes which are not allowed"));
        }
        Ok(Query(value))
    }
}

/// The one path parameter; a malformed one (bad percent-encoding) is a 400 with the API's body.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let axum::extract::Path(id) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| Error::bad_request(format!("invalid path parameter: {}", e.body_text())))?;
        Ok(PathId(id))
    }
}
