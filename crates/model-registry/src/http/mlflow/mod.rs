//! MLflow's REST API over the same registry the Kubeflow API serves: one operation table
//! (path, method, role, handler) from which the router is built under both of MLflow's
//! prefixes, the request parameters as MLflow's server reads them, and its error body
//! (`error.rs`). Handlers parse, call `registry/`, and answer MLflow's JSON; no SQL here.

/// One entry of an operation table: name, method, path, role and handler; `proto` answers with
/// proto3 JSON (unset fields and empty lists left out), as MLflow's tracking server does.
macro_rules! op {
    ($name:literal, $method:ident, $path:literal, $role:ident, $handler:path) => {
        op!(@entry $name, $method, $path, $role, |ctx, params| Box::pin($handler(ctx, params)))
    };
    ($name:literal, $method:ident, $path:literal, $role:ident, $handler:path, proto) => {
        op!(@entry $name, $method, $path, $role, |ctx, params| {
            Box::pin(async move { $handler(ctx, params).await.map(super::tracking::proto_json) })
        })
    };
    (@entry $name:literal, $method:ident, $path:literal, $role:ident, $handler:expr) => {
        super::Operation {
            name: $name,
            method: super::Method::$method,
            path: $path,
            role: crate::auth::Role::$role,
            handler: $handler,
        }
    };
}

pub mod artifacts;
mod bulk_history;
pub mod error;
mod logged_models;
mod model_registry;
mod run_search;
mod search;
mod tracking;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Json;
use serde_json::{Map, Value};

use crate::app::{AppState, StoreState};
use crate::auth::{Access, Guarded, Role};
use crate::registry::{Error, Registry};
use error::{ErrorCode, MlflowError};

/// Where MLflow's clients send requests: `/api/2.0/mlflow` (the SDK) and `/ajax-api/2.0/mlflow`
/// (MLflow's own web UI); both serve every operation.
pub const PREFIXES: [&str; 2] = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Patch => MethodFilter::PATCH,
            Method::Delete => MethodFilter::DELETE,
        }
    }

    fn http(self) -> axum::http::Method {
        match self {
            Method::Get => axum::http::Method::GET,
            Method::Post => axum::http::Method::POST,
            Method::Patch => axum::http::Method::PATCH,
            Method::Delete => axum::http::Method::DELETE,
        }
    }
}

/// What a handler answers: the response message as JSON, or MLflow's error.
pub type Reply = Result<Value, MlflowError>;

/// A handler: the registry and the request's parameters in, the response message out.
pub type Handler = fn(Ctx, Params) -> Pin<Box<dyn Future<Output = Reply> + Send>>;

/// What every handler gets besides its parameters.
#[derive(Clone)]
pub struct Ctx {
    pub registry: Registry,
    pub state: AppState,
}

/// One entry of the table: MLflow's RPC name, its method and path (relative to a prefix), the
/// role a caller needs (deletes are `Admin`) and the handler.
#[derive(Clone, Copy)]
pub struct Operation {
    pub name: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub role: Role,
    pub handler: Handler,
}

/// Every operation of MLflow's API this server answers.
pub fn operations() -> Vec<Operation> {
    model_registry::OPERATIONS.iter().chain(tracking::OPERATIONS).chain(logged_models::OPERATIONS).copied().collect()
}

/// The request message: for a GET the query string (a repeated key is a list), for the other
/// methods the JSON body, as MLflow's server reads them.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Map<String, Value>);

/// Longest JSON integer MLflow's parameters take (`max_results`, `version` numbers).
fn parse_int(field: &str, value: &Value) -> Result<i64, MlflowError> {
    let invalid = || MlflowError::invalid(format!("Invalid value {value} for parameter '{field}' supplied."));
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(invalid),
        Value::String(s) => s.trim().parse().map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

impl Params {
    fn from_query(query: Option<&str>) -> Self {
        let mut map = Map::new();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let value = Value::String(value.into_owned());
            match map.get_mut(key.as_ref()) {
                Some(Value::Array(items)) => items.push(value),
                Some(first) => *first = Value::Array(vec![first.take(), value]),
                None => {
                    map.insert(key.into_owned(), value);
                }
            }
        }
        Params(map)
    }

    /// A string parameter, `None` when absent or null.
    pub fn opt_str(&self, field: &str) -> Result<Option<String>, MlflowError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(MlflowError::invalid(format!("Invalid value {other} for parameter '{field}' supplied."))),
        }
    }

    /// A required string parameter, in MLflow's words when missing.
    pub fn str(&self, field: &str) -> Result<String, MlflowError> {
        self.opt_str(field)?.ok_or_else(|| missing(field))
    }

    pub fn opt_int(&self, field: &str) -> Result<Option<i64>, MlflowError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(v) => parse_int(field, v).map(Some),
        }
    }

    pub fn opt_bool(&self, field: &str) -> Result<Option<bool>, MlflowError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => Err(MlflowError::invalid(format!("Invalid value {other} for parameter '{field}' supplied."))),
        }
    }

    /// A repeated parameter: a list, or one value given once.
    pub fn list(&self, field: &str) -> Vec<Value> {
        match self.0.get(field) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(one) => vec![one.clone()],
        }
    }
}

/// MLflow's message for a required field the request lacks.
pub fn missing(field: &str) -> MlflowError {
    MlflowError::invalid(format!("Missing value for required parameter '{field}'."))
}

/// The registry, or 503 while the datastore is starting.
fn ready(state: &AppState) -> Result<Registry, MlflowError> {
    match &*state.store() {
        StoreState::Ready(registry) => Ok(registry.clone()),
        StoreState::Starting(reason) => Err(Error::Unavailable(reason.clone()).into()),
    }
}

/// Reads the request message: the query of a GET, else the JSON body (checked for size, type
/// and NUL bytes as the Kubeflow API's bodies are); an empty body is an empty message.
async fn params(request: Request, state: &AppState) -> Result<Params, MlflowError> {
    if request.method() == axum::http::Method::GET {
        return Ok(Params::from_query(request.uri().query()));
    }
    let has_body = request.headers().get(axum::http::header::CONTENT_LENGTH).is_none_or(|len| len != "0");
    if !has_body {
        return Ok(Params::default());
    }
    let super::extract::Body(body) = super::extract::Body::from_request(request, state).await?;
    match body {
        None | Some(Value::Null) => Ok(Params::default()),
        Some(Value::Object(map)) => Ok(Params(map)),
        Some(_) => Err(MlflowError::new(ErrorCode::BadRequest, "the request body must be a JSON object")),
    }
}

fn handler(op: Operation) -> MethodRouter<AppState> {
    let op = Arc::new(op);
    on(
        op.method.filter(),
        move |State(state): State<AppState>, path: Option<axum::extract::Path<BTreeMap<String, String>>>, request: Request| async move {
            let reply = async {
                let registry = ready(&state)?;
                let mut params = params(request, &state).await?;
                // Path parameters (`/logged-models/{model_id}`) are fields of the message too.
                for (key, value) in path.map(|p| p.0).unwrap_or_default() {
                    params.0.insert(key, Value::String(value));
                }
                (op.handler)(Ctx { registry, state }, params).await
            };
            match reply.await {
                Ok(value) => Json(value).into_response(),
                Err(e) => e.into_response(),
            }
        },
    )
}

/// Unknown paths under a prefix are MLflow's `ENDPOINT_NOT_FOUND`.
async fn not_found(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    MlflowError::new(ErrorCode::EndpointNotFound, format!("No API endpoint found for {path}")).into_response()
}

/// The routes of every operation under one prefix, each declaring its role; unknown paths are
/// `ENDPOINT_NOT_FOUND` to whoever may read.
fn api() -> Guarded<AppState> {
    let routes = operations()
        .into_iter()
        .fold(Guarded::default(), |routes, op| routes.route(op.path, &[op.method.http()], Access::Needs(op.role), handler(op)));
    let methods = [Method::Get, Method::Post, Method::Patch, Method::Delete].map(Method::http);
    routes.route("/{*rest}", &methods, Access::Needs(Role::Reader), axum::routing::any(not_found)).refusing_with(error::refusal)
}

/// The routes of every operation under both prefixes.
pub fn routes() -> Guarded<AppState> {
    PREFIXES.into_iter().fold(Guarded::default(), |routes, prefix| routes.nest(prefix, api()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn operations_are_unique_and_reads_need_only_a_reader() {
        let ops = operations();
        assert_eq!(ops.iter().map(|o| (o.method, o.path)).collect::<HashSet<_>>().len(), ops.len());
        assert_eq!(ops.iter().map(|o| o.name).collect::<HashSet<_>>().len(), ops.len());
        for op in &ops {
            if op.method == Method::Get {
                assert_eq!(op.role, Role::Reader, "{}", op.name);
            }
            if op.role == Role::Reader {
                assert!(op.name.starts_with("get") || op.name.starts_with("search"), "{}", op.name);
            }
            assert!(op.path.starts_with('/'), "{}", op.path);
        }
    }

    #[test]
    fn a_query_string_is_a_message_with_repeated_keys_as_lists() {
        let p = Params::from_query(Some("name=a%20b&order_by=name&order_by=version_number+DESC&max_results=5"));
        assert_eq!(p.str("name").unwrap(), "a b");
        assert_eq!(p.list("order_by").len(), 2);
        assert_eq!(p.opt_int("max_results").unwrap(), Some(5));
        assert_eq!(p.str("missing").unwrap_err().code, ErrorCode::InvalidParameterValue);
    }
}
