//! Extractors whose rejections are the API's own 400s instead of axum's plain-text ones.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::registry::Error;

/// The JSON body of a POST or PATCH (a GET has none), decoded loosely here and strictly by
/// the registry's codec. Its content type is checked before it is read.
pub struct Body(pub Option<Value>);

/// Items (values and object members) a body may hold. Parsed, each costs far more than its
/// bytes (a small object over half a KiB), so their number, not only the body's size, bounds
/// the memory of a request. Ten thousand custom properties take about 30 000.
const MAX_JSON_ITEMS: usize = 65_536;

/// An upper bound of a JSON text's items: each one but the first follows a ',', '[' or '{'.
/// One pass over the bytes, before anything is allocated for them.
fn json_items(bytes: &[u8]) -> usize {
    let (mut items, mut in_string, mut escaped) = (1, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b',' | b'[' | b'{' => items += 1,
                _ => {}
            }
        }
    }
    items
}

/// `application/json` or `application/<subtype>+json`, with any parameters (`charset`).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || essence.strip_prefix("application/").is_some_and(|subtype| subtype.ends_with("+json"))
}

/// Whether a string anywhere in the document holds U+0000.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Error> {
        if request.method() == axum::http::Method::GET {
            return Ok(Body(None));
        }
        if !is_json(request.headers()) {
            return Err(Error::UnsupportedMediaType);
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
        if json_items(&bytes) > MAX_JSON_ITEMS {
            return Err(Error::bad_request(format!("request body has more than {MAX_JSON_ITEMS} JSON values and members")));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))?;
        if has_nul(&value) {
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
