//! MLflow's artifact proxy API (`/api/2.0/mlflow-artifacts/...`, as `mlflow server
//! --serve-artifacts` answers it) over [`ArtifactStore`]. Its bodies are files of any size, so
//! its routes stream and sit outside the JSON API's body limit; they have their own bound on
//! transfers at once ([`MAX_TRANSFERS`]) and a per-chunk idle timeout instead of the
//! whole-request deadline.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete as delete_route, get, post, put, MethodRouter};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::{ErrorCode, MlflowError};
use crate::app::AppState;
use crate::artifacts::{ArtifactError, ArtifactPath, ArtifactStore, MAX_PARTS};
use crate::auth::{Access, Guarded, Role};

/// Where MLflow's clients reach the proxy: the SDK, and MLflow's web UI.
pub const PREFIXES: [&str; 2] = ["/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"];

/// Uploads and downloads served at once; each holds up to three 8 MiB chunks, so this bounds
/// the proxy's memory (about 200 MiB). One beyond it is answered 503 at once.
pub const MAX_TRANSFERS: usize = 8;

/// Longest wait for the next piece of an upload's body; a client that stalls longer loses the
/// upload (nothing is written). Transfers have no whole-request deadline: a large file on a
/// slow link may take long, but must keep moving.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest JSON body of the multipart calls (a complete of [`MAX_PARTS`] parts is ~1.5 MiB).
const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

/// Whether a request is an artifact transfer, which the server's request deadline leaves to
/// [`BODY_IDLE_TIMEOUT`].
pub fn is_transfer(path: &str) -> bool {
    PREFIXES.iter().any(|prefix| path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')))
}

/// The proxy's part of the server's state: its store and the transfers under way.
#[derive(Clone)]
struct Proxy {
    store: ArtifactStore,
    transfers: Arc<Semaphore>,
}

impl FromRef<AppState> for Proxy {
    fn from_ref(state: &AppState) -> Proxy {
        Proxy { store: state.artifacts().clone(), transfers: state.artifact_transfers().clone() }
    }
}

impl From<ArtifactError> for MlflowError {
    fn from(e: ArtifactError) -> Self {
        let code = match &e {
            ArtifactError::InvalidPath(_) | ArtifactError::Invalid(_) | ArtifactError::Interrupted(_) => {
                ErrorCode::InvalidParameterValue
            }
            ArtifactError::NotFound(_) => ErrorCode::ResourceDoesNotExist,
            ArtifactError::Unusable => ErrorCode::InternalError,
            ArtifactError::Store(cause) => {
                tracing::error!(error = %cause, "artifact store failed");
                ErrorCode::InternalError
            }
            ArtifactError::Io(cause) => {
                tracing::error!(error = %cause, "artifact store failed");
                ErrorCode::InternalError
            }
        };
        MlflowError::new(code, e.to_string())
    }
}

type Reply = Result<Response, MlflowError>;

fn invalid(message: impl Into<String>) -> MlflowError {
    MlflowError::invalid(message)
}

impl Proxy {
    fn permit(&self) -> Result<OwnedSemaphorePermit, MlflowError> {
        self.transfers.clone().try_acquire_owned().map_err(|_| {
            MlflowError::new(
                ErrorCode::TemporarilyUnavailable,
                format!("{MAX_TRANSFERS} artifact transfers are in progress; retry shortly"),
            )
        })
    }
}

fn parse_path(raw: &str) -> Result<ArtifactPath, MlflowError> {
    ArtifactPath::parse(raw).map_err(|e| invalid(e.to_string()))
}

/// A request's body as it arrives, cut off when it stalls for [`BODY_IDLE_TIMEOUT`].
fn body_stream(request: Request) -> impl Stream<Item = Result<Bytes, String>> + Send {
    let body = request.into_body().into_data_stream();
    stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(body))),
            Ok(Some(Err(e))) => Some((Err(e.to_string()), None)),
            Ok(None) => None,
            Err(_) => Some((Err(format!("no data for {}s", BODY_IDLE_TIMEOUT.as_secs())), None)),
        }
    })
}

async fn read_json<T: serde::de::DeserializeOwned>(request: Request) -> Result<T, MlflowError> {
    let bytes = axum::body::to_bytes(request.into_body(), MAX_JSON_BYTES)
        .await
        .map_err(|_| invalid(format!("the request body is not JSON of at most {MAX_JSON_BYTES} bytes")))?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(format!("malformed request body: {e}")))
}

fn empty() -> Reply {
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    path: Option<String>,
}

/// `GET .../artifacts?path=`: the entries of a directory, as MLflow's `ListArtifacts`.
async fn list(State(proxy): State<Proxy>, Query(query): Query<ListQuery>) -> Reply {
    let dir = parse_path(query.path.as_deref().unwrap_or_default())?;
    let files: Vec<Value> = proxy
        .store
        .list(&dir)
        .await?
        .into_iter()
        .map(|f| {
            let mut file = json!({"path": f.name, "is_dir": f.is_dir});
            // MLflow leaves out a size of zero (proto3's default).
            if let Some(size) = f.size.filter(|s| *s > 0) {
                file["file_size"] = size.into();
            }
            file
        })
        .collect();
    Ok(Json(if files.is_empty() { json!({}) } else { json!({ "files": files }) }).into_response())
}

async fn download(State(proxy): State<Proxy>, Path(raw): Path<String>) -> Reply {
    let path = parse_path(&raw)?;
    let permit = proxy.permit()?;
    let download = proxy.store.get(&path).await?;
    // The permit goes with the body: a download counts until its last byte is sent.
    let bytes = download.bytes.map(move |chunk| {
        let _held = &permit;
        chunk
    });
    let name = path.file_name().unwrap_or("artifact");
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut response = Body::from_stream(bytes).into_response();
    let headers = response.headers_mut();
    // Uploaded bytes are never rendered by a browser as a page of this origin.
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_LENGTH, download.size.into());
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

async fn upload(State(proxy): State<Proxy>, Path(raw): Path<String>, request: Request) -> Reply {
    let path = parse_path(&raw)?;
    let _permit = proxy.permit()?;
    proxy.store.put(&path, body_stream(request)).await?;
    empty()
}

async fn delete(State(proxy): State<Proxy>, Path(raw): Path<String>) -> Reply {
    proxy.store.delete(&parse_path(&raw)?).await?;
    empty()
}

#[derive(Deserialize)]
struct CreateUpload {
    path: Option<String>,
    num_parts: Option<i64>,
}

#[derive(Deserialize)]
struct PartRef {
    part_number: Option<i64>,
}

#[derive(Deserialize)]
struct CompleteUpload {
    path: Option<String>,
    upload_id: Option<String>,
    #[serde(default)]
    parts: Vec<PartRef>,
}

#[derive(Deserialize)]
struct AbortUpload {
    path: Option<String>,
    upload_id: Option<String>,
}

/// The file a multipart call writes: its directory from the URL, its name from the client's
/// local file (`path`), as MLflow's cloud repositories join them.
fn upload_target(dir: &str, local_file: Option<String>) -> Result<ArtifactPath, MlflowError> {
    let local_file = local_file.ok_or_else(|| invalid("Missing value for required parameter 'path'."))?;
    let name = local_file.rsplit(['/', '\\']).next().unwrap_or_default();
    parse_path(dir)?.join(name).map_err(|e| invalid(e.to_string()))
}

/// The address the client used to reach us, for the part URLs it is sent back to.
fn base_url(headers: &HeaderMap, prefix: &str) -> Result<String, MlflowError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', '@', ' ']))
        .ok_or_else(|| invalid("a multipart upload needs the request's Host header"))?;
    let scheme = match headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()) {
        Some("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{host}{prefix}"))
}

async fn create_upload(State(proxy): State<Proxy>, Path(dir): Path<String>, request: Request) -> Reply {
    let prefix = if request.uri().path().starts_with(PREFIXES[1]) { PREFIXES[1] } else { PREFIXES[0] };
    let base = base_url(request.headers(), prefix)?;
    let body: CreateUpload = read_json(request).await?;
    let target = upload_target(&dir, body.path)?;
    let num_parts = body.num_parts.unwrap_or(1);
    let num_parts = u32::try_from(num_parts)
        .ok()
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or_else(|| invalid(format!("num_parts must be between 1 and {MAX_PARTS}, got {num_parts}")))?;
    let upload = proxy.store.create_multipart(&target, num_parts).await?;
    let credentials: Vec<Value> = (1..=upload.num_parts)
        .map(|n| json!({"url": format!("{base}/mpu/parts/{}/{n}", upload.upload_id), "part_number": n, "headers": {}}))
        .collect();
    Ok(Json(json!({"upload_id": upload.upload_id, "credentials": credentials})).into_response())
}

/// `PUT .../mpu/parts/{upload_id}/{part}`: where the part URLs of [`create_upload`] lead.
async fn upload_part(State(proxy): State<Proxy>, Path((upload_id, part)): Path<(String, String)>, request: Request) -> Reply {
    let part_number: u32 = part.parse().map_err(|_| invalid(format!("part number {part:?} is not a number")))?;
    let _permit = proxy.permit()?;
    let size = proxy.store.put_part(&upload_id, part_number, body_stream(request)).await?;
    let mut response = Json(json!({})).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{part_number}-{size}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

async fn complete_upload(State(proxy): State<Proxy>, Path(dir): Path<String>, request: Request) -> Reply {
    let body: CompleteUpload = read_json(request).await?;
    let target = upload_target(&dir, body.path)?;
    let upload_id = body.upload_id.ok_or_else(|| invalid("Missing value for required parameter 'upload_id'."))?;
    let parts = body
        .parts
        .iter()
        .map(|p| p.part_number.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| invalid("every part needs a part_number")))
        .collect::<Result<Vec<u32>, MlflowError>>()?;
    let _permit = proxy.permit()?;
    proxy.store.complete_multipart(&target, &upload_id, &parts).await?;
    empty()
}

async fn abort_upload(State(proxy): State<Proxy>, Path(dir): Path<String>, request: Request) -> Reply {
    let body: AbortUpload = read_json(request).await?;
    let target = upload_target(&dir, body.path)?;
    let upload_id = body.upload_id.ok_or_else(|| invalid("Missing value for required parameter 'upload_id'."))?;
    proxy.store.abort_multipart(&target, &upload_id).await?;
    empty()
}

/// `GET .../presigned/...`: MLflow's direct-download URLs; through a proxy there are none, and
/// the client falls back to streaming through `GET .../artifacts/...` on this answer.
async fn presigned() -> Reply {
    Err(MlflowError::new(ErrorCode::NotImplemented, "Multipart download is not supported for the current artifact repository"))
}

/// Unknown paths under a prefix are MLflow's `ENDPOINT_NOT_FOUND`.
async fn endpoint_not_found(request: Request) -> MlflowError {
    MlflowError::new(ErrorCode::EndpointNotFound, format!("No API endpoint found for {}", request.uri().path()))
}

/// The operation table: method, path (relative to each prefix), the role it needs, handler.
fn operations() -> Vec<(Method, &'static str, Role, MethodRouter<AppState>)> {
    vec![
        (Method::GET, "/artifacts", Role::Reader, get(list)),
        (Method::GET, "/artifacts/{*path}", Role::Reader, get(download)),
        (Method::PUT, "/artifacts/{*path}", Role::Writer, put(upload)),
        (Method::DELETE, "/artifacts/{*path}", Role::Admin, delete_route(delete)),
        (Method::POST, "/mpu/create/{*path}", Role::Writer, post(create_upload)),
        (Method::PUT, "/mpu/parts/{upload_id}/{part}", Role::Writer, put(upload_part)),
        (Method::POST, "/mpu/complete/{*path}", Role::Writer, post(complete_upload)),
        (Method::POST, "/mpu/abort/{*path}", Role::Writer, post(abort_upload)),
        (Method::GET, "/presigned/{*path}", Role::Reader, get(presigned)),
    ]
}

/// The proxy's routes under both prefixes, each declaring its role (refused in MLflow's body);
/// unknown paths are `ENDPOINT_NOT_FOUND` to whoever may read.
pub fn routes() -> Guarded<AppState> {
    let methods = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    let mut routes = Guarded::default();
    for prefix in PREFIXES {
        for (method, path, role, handler) in operations() {
            routes = routes.route(&format!("{prefix}{path}"), &[method], Access::Needs(role), handler);
        }
        let rest = format!("{prefix}/{{*rest}}");
        routes = routes.route(&rest, &methods, Access::Needs(Role::Reader), any(endpoint_not_found));
    }
    routes.refusing_with(super::error::refusal)
}
