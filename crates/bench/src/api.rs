//! The few REST calls the workloads make, over one pooled HTTP client.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::json;

const API_PREFIX: &str = "/api/model_registry/v1alpha3";

/// A registered model as the workloads need it.
#[derive(Debug, Clone, Deserialize)]
pub struct Model {
    pub id: String,
    pub name: String,
    /// What the benchmark sent when it created the model (not read from answers).
    #[serde(skip)]
    pub props: Props,
}

/// The custom properties every model the benchmark creates gets, for W4's filters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Props {
    /// `team`, a `MetadataStringValue`.
    pub team: &'static str,
    /// `priority`, a `MetadataIntValue`.
    pub priority: i64,
}

/// A registered model with its custom properties, as `GET /registered_models` lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelWithProps {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub custom_properties: serde_json::Map<String, serde_json::Value>,
}

/// One page of `GET /registered_models?filterQuery=`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredPage {
    pub items: Vec<ModelWithProps>,
}

/// One page of `GET /registered_models`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPage {
    pub items: Vec<Model>,
    pub next_page_token: String,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
}

/// A request that failed: no answer, a non-2xx answer, or a 2xx answer that is not the JSON
/// expected.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Method, path with query, and the JSON body if any.
    pub request: String,
    pub status: Option<StatusCode>,
    /// The response body, or what went wrong when there is none.
    pub detail: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "{} -> {status}: {}", self.request, self.detail),
            None => write!(f, "{} -> no response: {}", self.request, self.detail),
        }
    }
}

impl std::error::Error for ApiError {}

/// The REST API of one server.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    /// `http://127.0.0.1:PORT`.
    root: String,
    /// `http://127.0.0.1:PORT/metrics`.
    metrics: String,
}

impl Api {
    /// `server` is the server's root URL (`http://127.0.0.1:PORT`).
    /// `token`, when given, is sent as a bearer token with every request.
    pub fn new(server: &str, token: Option<&str>) -> anyhow::Result<Api> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).default_headers(headers).build()?;
        Ok(Api { http, base: format!("{server}{API_PREFIX}"), root: server.to_owned(), metrics: format!("{server}/metrics") })
    }

    /// A web UI page (`path` from the server's root) as text; a non-2xx answer is an error.
    pub async fn page(&self, path: &str) -> Result<String, ApiError> {
        let failed = |status: Option<StatusCode>, detail: String| ApiError { request: format!("GET {path}"), status, detail };
        let response = self.http.get(format!("{}{path}", self.root)).send().await.map_err(|e| failed(None, e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| failed(Some(status), e.to_string()))?;
        if !status.is_success() {
            return Err(failed(Some(status), text));
        }
        Ok(text)
    }

    pub async fn create_model(&self, name: &str, props: Props) -> Result<Model, ApiError> {
        let body = json!({
            "name": name,
            "customProperties": {
                "team": { "metadataType": "MetadataStringValue", "string_value": props.team },
                "priority": {
                    "metadataType": "MetadataIntValue",
                    "int_value": props.priority.to_string(),
                },
            },
        });
        let mut model: Model = self.call(Method::POST, "/registered_models", &[], Some(body)).await?;
        model.props = props;
        Ok(model)
    }

    /// Returns the new version's id.
    pub async fn create_version(&self, model_id: &str, name: &str) -> Result<String, ApiError> {
        let body = json!({ "name": name, "registeredModelId": model_id });
        let created: Created = self.call(Method::POST, "/model_versions", &[], Some(body)).await?;
        Ok(created.id)
    }

    pub async fn create_model_artifact(&self, version_id: &str, name: &str, uri: &str) -> Result<(), ApiError> {
        let body = json!({
            "artifactType": "model-artifact",
            "name": name,
            "uri": uri,
            "modelFormatName": "onnx",
            "modelFormatVersion": "1",
        });
        let path = format!("/model_versions/{version_id}/artifacts");
        let _: IgnoredAny = self.call(Method::POST, &path, &[], Some(body)).await?;
        Ok(())
    }

    pub async fn get_model(&self, id: &str) -> Result<Model, ApiError> {
        self.call(Method::GET, &format!("/registered_models/{id}"), &[], None).await
    }

    pub async fn find_model(&self, name: &str) -> Result<Model, ApiError> {
        self.call(Method::GET, "/registered_model", &[("name", name)], None).await
    }

    /// One page of 100 models in id order; `token` is `""` for the first page.
    pub async fn list_models(&self, token: &str) -> Result<ModelPage, ApiError> {
        let mut query = vec![("pageSize", "100"), ("orderBy", "ID"), ("sortOrder", "ASC")];
        if !token.is_empty() {
            query.push(("nextPageToken", token));
        }
        self.call(Method::GET, "/registered_models", &query, None).await
    }

    /// The first page of up to 100 models matching `filter` (a `filterQuery`).
    pub async fn search_models(&self, filter: &str) -> Result<FilteredPage, ApiError> {
        let query = [("filterQuery", filter), ("pageSize", "100")];
        self.call(Method::GET, "/registered_models", &query, None).await
    }

    /// The server's write transactions committed and the writes in them, from `/metrics`; `None`
    /// from a build older than these counters (a `--bin` to compare with).
    pub async fn commit_totals(&self) -> anyhow::Result<Option<(u64, u64)>> {
        let text = self.http.get(&self.metrics).send().await?.error_for_status()?.text().await?;
        let total = |name: &str| -> anyhow::Result<Option<u64>> {
            let series = format!("model_registry_{name}_total ");
            let Some(line) = text.lines().find(|l| l.starts_with(&series)) else { return Ok(None) };
            Ok(Some(line[series.len()..].trim().parse()?))
        };
        Ok(total("db_commits")?.zip(total("db_committed_writes")?))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<T, ApiError> {
        let failed = |status: Option<StatusCode>, detail: String| ApiError {
            request: describe(&method, path, query, body.as_ref()),
            status,
            detail,
        };
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base)).query(query);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| failed(None, e.to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| failed(Some(status), e.to_string()))?;
        if !status.is_success() {
            return Err(failed(Some(status), String::from_utf8_lossy(&bytes).into_owned()));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            let text = String::from_utf8_lossy(&bytes);
            failed(Some(status), format!("unexpected body ({e}): {text}"))
        })
    }
}

/// `POST /api/model_registry/v1alpha3/registered_models {"name":"..."}`, for error messages.
fn describe(method: &Method, path: &str, query: &[(&str, &str)], body: Option<&serde_json::Value>) -> String {
    let query: Vec<String> = query.iter().map(|(key, value)| format!("{key}={value}")).collect();
    let mut text = format!("{method} {API_PREFIX}{path}");
    if !query.is_empty() {
        text = format!("{text}?{}", query.join("&"));
    }
    if let Some(body) = body {
        text = format!("{text} {body}");
    }
    text
}
