//! MLflow's artifact proxy (`mlflow server --serve-artifacts`): one store of files over a local
//! directory, S3, GCS or Azure Blob (the `object_store` crate), streamed both ways so a file of
//! any size costs the server a few chunks of memory. Paths are [`ArtifactPath`]s, which cannot
//! name anything outside the destination; on a local directory symbolic links that lead out of
//! it are refused too.

mod multipart;
mod path;

use std::path::{Path as FsPath, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use futures_util::Stream;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreScheme, WriteMultipart};
use url::Url;

pub use multipart::{MultipartUpload, ABANDONED_UPLOAD_AGE, MAX_PARTS};
pub use path::{ArtifactPath, InvalidPath, MAX_PATH_BYTES};

/// Bytes buffered before a chunk is handed to the store; S3's smallest part is 5 MiB.
pub const CHUNK_BYTES: usize = 8 * 1024 * 1024;
/// Chunks of one upload being written at once: with the one being filled, an upload holds at
/// most three chunks (24 MiB) of memory.
pub const CHUNKS_IN_FLIGHT: usize = 2;
/// Entries one listing may return (MLflow's listing has no paging); a directory holding more
/// is refused with a clear error rather than answered with an unbounded body.
pub const MAX_LISTED: usize = 10_000;
/// The default destination's directory name, as `mlflow server`'s (`./mlartifacts`).
pub const DEFAULT_DIR: &str = "mlartifacts";

/// Where artifacts go (`--artifacts-destination`): a directory, or a bucket URL with an
/// optional prefix. Cloud credentials come from the environment, as each SDK reads them
/// (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Directory(PathBuf),
    Bucket(Url),
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("an empty artifacts destination".into());
        }
        if !s.contains("://") {
            return Ok(Destination::Directory(PathBuf::from(s)));
        }
        let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        match url.scheme() {
            "file" => url
                .to_file_path()
                .map(Destination::Directory)
                .map_err(|()| format!("{s:?}: a file:// URL needs an absolute path")),
            "s3" | "gs" | "az" | "abfs" | "abfss" if url.host_str().is_some_and(|h| !h.is_empty()) => {
                Ok(Destination::Bucket(url))
            }
            "s3" | "gs" | "az" | "abfs" | "abfss" => Err(format!("{s:?} names no bucket or container")),
            other => Err(format!("{other}:// is not supported: use a directory, file://, s3://, gs:// or az://")),
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Directory(dir) => write!(f, "{}", dir.display()),
            // Credentials never appear in a bucket URL's log line.
            Destination::Bucket(url) => write!(f, "{}://{}{}", url.scheme(), url.host_str().unwrap_or_default(), url.path()),
        }
    }
}

impl Destination {
    /// Beside the SQLite file when the database is one, else in the working directory, as
    /// `mlflow server` puts it.
    pub fn default_for(target: &embedmd::ConnectTarget) -> Self {
        let base = match target {
            embedmd::ConnectTarget::Sqlite(options) => {
                options.get_filename().parent().map(FsPath::to_path_buf).unwrap_or_default()
            }
            _ => PathBuf::new(),
        };
        Destination::Directory(base.join(DEFAULT_DIR))
    }
}

/// What went wrong with an artifact request; the MLflow edge maps each to its error code.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    InvalidPath(#[from] InvalidPath),
    /// A request that cannot be carried out as sent (INVALID_PARAMETER_VALUE).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The upload's body broke off or stalled: nothing was written.
    #[error("the upload was interrupted before its end ({0}); nothing was written")]
    Interrupted(String),
    /// The store failed; logged, never shown to clients.
    #[error("artifact store error")]
    Store(#[source] object_store::Error),
    #[error("artifact store error")]
    Io(#[source] std::io::Error),
    /// The destination cannot be opened (the cause is in the log).
    #[error("the artifacts destination cannot be used; the server's log says why")]
    Unusable,
}

impl From<object_store::Error> for ArtifactError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => ArtifactError::NotFound(format!("artifact {path} does not exist")),
            e => ArtifactError::Store(e),
        }
    }
}

/// One entry of a listing, as MLflow's `FileInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub is_dir: bool,
    pub size: Option<u64>,
}

/// A download: its size and its bytes as they are read.
pub struct Download {
    pub size: u64,
    pub bytes: BoxStream<'static, Result<Bytes, ArtifactError>>,
}

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    destination: Destination,
    /// Set on first use: a local directory is created then, not at start-up, so a server whose
    /// artifacts are never used leaves no directory behind (and starts where it cannot write);
    /// a destination that cannot be opened is tried again by the next request.
    opened: Arc<tokio::sync::OnceCell<Opened>>,
}

#[derive(Debug)]
struct Opened {
    store: Arc<dyn ObjectStore>,
    /// A bucket URL's path, under which everything is kept.
    prefix: Path,
    /// A local destination's real path, against which symbolic links are checked.
    local_root: Option<PathBuf>,
}

impl ArtifactStore {
    /// The store of `destination`, opened on first use: a local directory is created then, and
    /// a bucket's settings are read from the environment then.
    pub fn new(destination: Destination) -> Self {
        ArtifactStore { destination, opened: Arc::default() }
    }

    fn open_now(&self) -> Result<Opened, String> {
        let destination = &self.destination;
        Ok(match destination {
            Destination::Directory(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create the artifacts directory {}: {e}", dir.display()))?;
                let root = std::fs::canonicalize(dir)
                    .map_err(|e| format!("cannot resolve the artifacts directory {}: {e}", dir.display()))?;
                let store = LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| format!("cannot use the artifacts directory {}: {e}", dir.display()))?
                    // A deleted file's empty parent directories go too, as after MLflow's `rmtree`.
                    .with_automatic_cleanup(true);
                Opened { store: Arc::new(store), prefix: Path::default(), local_root: Some(root) }
            }
            Destination::Bucket(url) => {
                let (scheme, prefix) =
                    ObjectStoreScheme::parse(url).map_err(|e| format!("artifacts destination {destination}: {e}"))?;
                let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match scheme {
                    ObjectStoreScheme::AmazonS3 => {
                        AmazonS3Builder::from_env().with_url(url.as_str()).build().map(|s| Arc::new(s) as _)
                    }
                    ObjectStoreScheme::GoogleCloudStorage => {
                        GoogleCloudStorageBuilder::from_env().with_url(url.as_str()).build().map(|s| Arc::new(s) as _)
                    }
                    ObjectStoreScheme::MicrosoftAzure => {
                        MicrosoftAzureBuilder::from_env().with_url(url.as_str()).build().map(|s| Arc::new(s) as _)
                    }
                    _ => return Err(format!("artifacts destination {destination}: unsupported scheme")),
                };
                let store = built.map_err(|e| format!("artifacts destination {destination}: {e}"))?;
                Opened { store, prefix, local_root: None }
            }
        })
    }

    /// The store, opened on first use; a failure is logged with its cause and tried again by
    /// the next request.
    async fn opened(&self) -> Result<&Opened, ArtifactError> {
        self.opened
            .get_or_try_init(|| async {
                let this = self.clone();
                tokio::task::spawn_blocking(move || this.open_now()).await.unwrap_or_else(|e| Err(e.to_string()))
            })
            .await
            .map_err(|cause| {
                tracing::error!(error = %cause, "artifacts destination unusable");
                ArtifactError::Unusable
            })
    }

    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The `mlflow-artifacts:/` form of a URI inside the destination (one [`Self::uri_of`] gave),
    /// which MLflow's clients download through this proxy; `None` for any other URI.
    pub fn proxied_uri(&self, uri: &str) -> Option<String> {
        let root = self.uri_of(&ArtifactPath::root());
        let rest = uri.strip_prefix(root.trim_end_matches('/'))?.strip_prefix('/')?;
        ArtifactPath::parse(rest).ok().map(|path| format!("mlflow-artifacts:/{path}"))
    }

    /// Where `path` is in the destination itself (`file:///...`, `s3://bucket/...`), for
    /// clients that read the store directly (a Kubeflow model artifact's `uri`, KServe).
    pub fn uri_of(&self, path: &ArtifactPath) -> String {
        match &self.destination {
            Destination::Directory(dir) => {
                let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                format!("file://{}/{path}", dir.display().to_string().trim_end_matches('/'))
            }
            Destination::Bucket(url) => format!(
                "{}://{}/{}",
                url.scheme(),
                url.host_str().unwrap_or_default(),
                [url.path().trim_matches('/'), &path.to_string()]
                    .iter()
                    .filter(|p| !p.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("/")
            ),
        }
    }

    /// Writes `body` to `path`, replacing what was there once the whole body has arrived; a
    /// body that fails part way leaves nothing behind. Returns the bytes written.
    pub async fn put<S, E>(&self, path: &ArtifactPath, body: S) -> Result<u64, ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        self.opened().await?.put(path, body).await
    }

    /// The bytes of the file at `path`.
    pub async fn get(&self, path: &ArtifactPath) -> Result<Download, ArtifactError> {
        self.opened().await?.get(path).await
    }

    /// The entries directly in directory `dir`, sorted by name; none when `dir` is a file or
    /// does not exist, as MLflow answers.
    pub async fn list(&self, dir: &ArtifactPath) -> Result<Vec<FileInfo>, ArtifactError> {
        self.opened().await?.list(dir).await
    }

    /// Deletes the file or the whole directory at `path`; nothing there is not an error, as with
    /// MLflow. The root itself cannot be deleted.
    pub async fn delete(&self, path: &ArtifactPath) -> Result<(), ArtifactError> {
        self.opened().await?.delete(path).await
    }
}

impl Opened {
    fn location(&self, path: &ArtifactPath) -> Path {
        self.prefix.parts().chain(path.as_store_path().parts()).collect()
    }

    /// On a local destination: every existing component of `path` that is a symbolic link must
    /// resolve inside the destination. Checked before each use; a link swapped in between the
    /// check and the use is the local operator's doing, not a client's.
    async fn confine(&self, path: &ArtifactPath) -> Result<(), ArtifactError> {
        let Some(root) = self.local_root.clone() else { return Ok(()) };
        let segments: Vec<String> = path.segments().collect();
        let inside = tokio::task::spawn_blocking(move || {
            let mut at = root.clone();
            for segment in segments {
                at.push(segment);
                match std::fs::symlink_metadata(&at) {
                    Err(_) => return true,
                    Ok(meta) if meta.file_type().is_symlink() => {
                        if !std::fs::canonicalize(&at).is_ok_and(|real| real.starts_with(&root)) {
                            return false;
                        }
                    }
                    Ok(_) => {}
                }
            }
            true
        })
        .await
        .unwrap_or(false);
        if inside {
            Ok(())
        } else {
            Err(ArtifactError::Invalid(format!("Invalid path: {path} leads outside the artifacts destination")))
        }
    }

    async fn put<S, E>(&self, path: &ArtifactPath, body: S) -> Result<u64, ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        if path.is_root() {
            return Err(ArtifactError::Invalid("an upload needs a file path".into()));
        }
        self.confine(path).await?;
        self.put_at(&self.location(path), body.map_err(|e| ArtifactError::Interrupted(e.to_string()))).await
    }

    /// Streams `body` into `location` through the store's multipart upload, which makes the
    /// object appear only when it completes and is aborted on any error.
    async fn put_at(
        &self,
        location: &Path,
        body: impl Stream<Item = Result<Bytes, ArtifactError>> + Send,
    ) -> Result<u64, ArtifactError> {
        let upload = self.store.put_multipart(location).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK_BYTES);
        let mut written = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let ready = match chunk {
                Ok(chunk) => writer.wait_for_capacity(CHUNKS_IN_FLIGHT).await.map(|()| chunk).map_err(ArtifactError::from),
                Err(e) => Err(e),
            };
            match ready {
                Ok(chunk) => {
                    written += chunk.len() as u64;
                    writer.put(chunk);
                }
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            }
        }
        writer.finish().await?;
        Ok(written)
    }

    async fn get(&self, path: &ArtifactPath) -> Result<Download, ArtifactError> {
        self.confine(path).await?;
        let location = self.location(path);
        match self.store.get(&location).await {
            Ok(found) => Ok(Download { size: found.meta.size, bytes: found.into_stream().map_err(ArtifactError::from).boxed() }),
            Err(object_store::Error::NotFound { .. }) if !path.is_root() && self.is_dir(path).await? => {
                Err(ArtifactError::Invalid(format!("Artifact path refers to a directory, not a file: '{path}'")))
            }
            Err(object_store::Error::NotFound { .. }) => {
                Err(ArtifactError::NotFound(format!("artifact '{path}' does not exist")))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn is_dir(&self, path: &ArtifactPath) -> Result<bool, ArtifactError> {
        let listed = self.store.list_with_delimiter(Some(&self.location(path))).await?;
        Ok(!listed.objects.is_empty() || !listed.common_prefixes.is_empty())
    }

    /// The staging area of multipart uploads is not listed.
    async fn list(&self, dir: &ArtifactPath) -> Result<Vec<FileInfo>, ArtifactError> {
        self.confine(dir).await?;
        let location = self.location(dir);
        let listed = match self.store.list_with_delimiter(Some(&location)).await {
            Ok(listed) => listed,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        if listed.objects.len() + listed.common_prefixes.len() > MAX_LISTED {
            return Err(ArtifactError::Invalid(format!(
                "directory '{dir}' holds more than {MAX_LISTED} entries; list its subdirectories"
            )));
        }
        let name_of = |p: &Path| p.filename().map(str::to_owned);
        let mut entries: Vec<FileInfo> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| name_of(p).map(|name| FileInfo { name, is_dir: true, size: None }))
            .chain(
                listed
                    .objects
                    .iter()
                    .filter_map(|o| name_of(&o.location).map(|name| FileInfo { name, is_dir: false, size: Some(o.size) })),
            )
            .filter(|e| !(dir.is_root() && e.name == path::STAGING_DIR))
            .collect();
        if self.local_root.is_some() {
            // The local store follows links when it lists; keep only entries that stay inside.
            let mut kept = Vec::with_capacity(entries.len());
            for entry in entries {
                let inside = match dir.join(&entry.name) {
                    Ok(child) => self.confine(&child).await.is_ok(),
                    Err(_) => false,
                };
                if inside {
                    kept.push(entry);
                }
            }
            entries = kept;
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    async fn delete(&self, path: &ArtifactPath) -> Result<(), ArtifactError> {
        if path.is_root() {
            return Err(ArtifactError::Invalid("the artifacts root cannot be deleted".into()));
        }
        self.confine(path).await?;
        self.remove_tree(path.as_store_path()).await
    }

    /// Removes the object at `relative` (below the destination) and everything below it.
    async fn remove_tree(&self, relative: &Path) -> Result<(), ArtifactError> {
        if let Some(root) = &self.local_root {
            // Not through the store's listing, which follows links: `remove_dir_all` removes a
            // link, never what it points at.
            let mut at = root.clone();
            at.extend(relative.parts().map(|p| p.as_ref().to_owned()));
            let removed = match tokio::fs::symlink_metadata(&at).await {
                Ok(meta) if meta.is_dir() => tokio::fs::remove_dir_all(&at).await,
                Ok(_) => tokio::fs::remove_file(&at).await,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            };
            return removed.map_err(ArtifactError::Io);
        }
        let location: Path = self.prefix.parts().chain(relative.parts()).collect();
        let below = self.store.list(Some(&location)).map_ok(|meta| meta.location);
        let itself = futures_util::stream::once(std::future::ready(Ok(location.clone())));
        let mut deleted = self.store.delete_stream(itself.chain(below).boxed());
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_as_mlflow_names_them() {
        assert_eq!("./arts".parse::<Destination>(), Ok(Destination::Directory("./arts".into())));
        assert_eq!("file:///srv/arts".parse::<Destination>(), Ok(Destination::Directory("/srv/arts".into())));
        assert!(matches!("s3://bucket/prefix".parse::<Destination>(), Ok(Destination::Bucket(_))));
        assert!(matches!("gs://bucket".parse::<Destination>(), Ok(Destination::Bucket(_))));
        assert!(matches!("az://container/p".parse::<Destination>(), Ok(Destination::Bucket(_))));
        for bad in ["", "s3://", "ftp://host/x", "hdfs://nn/x"] {
            assert!(bad.parse::<Destination>().is_err(), "{bad}");
        }
        let url = "s3://bucket/p?x=1".parse::<Destination>().unwrap();
        assert_eq!(url.to_string(), "s3://bucket/p");
    }
}
