//! MLflow's multipart upload through the proxy (`MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD`): the
//! client asks for an upload of N parts, PUTs each part to the URL it is given, then completes
//! or aborts. MLflow's own server offers it only where the cloud signs part URLs; here the
//! parts come to this server and wait in the destination's staging area
//! (`.mlflow-mpu/<upload id>/<part>`), so it works on every destination. Completing streams
//! the parts, in order, into the file as one upload: the file appears whole or not at all.

use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use futures_util::Stream;
use object_store::path::Path;
use object_store::{ObjectMeta, PutPayload};
use serde::{Deserialize, Serialize};

use super::path::STAGING_DIR;
use super::{ArtifactError, ArtifactPath, ArtifactStore, Opened};

/// Parts one upload may have, as S3 allows.
pub const MAX_PARTS: u32 = 10_000;
/// The upload's record: which file it writes and how many parts it has.
const RECORD: &str = "upload.json";
/// A record is a path and a number; anything larger was not written by this server.
const MAX_RECORD_BYTES: u64 = 4096;
/// An upload none of whose files (record, parts) changed for this long is abandoned: its
/// staging directory is removed when the server starts and whenever an upload is created.
pub const ABANDONED_UPLOAD_AGE: Duration = Duration::from_secs(24 * 3600);

/// A multipart upload just created.
#[derive(Debug, Clone)]
pub struct MultipartUpload {
    pub upload_id: String,
    pub num_parts: u32,
}

#[derive(Serialize, Deserialize)]
struct Record {
    path: String,
    num_parts: u32,
}

fn parse_upload_id(upload_id: &str) -> Result<uuid::Uuid, ArtifactError> {
    upload_id
        .parse::<uuid::Uuid>()
        .map_err(|_| ArtifactError::Invalid(format!("upload_id {upload_id:?} is not an upload this server created")))
}

impl ArtifactStore {
    /// Starts an upload of `num_parts` parts into the file `target`.
    pub async fn create_multipart(&self, target: &ArtifactPath, num_parts: u32) -> Result<MultipartUpload, ArtifactError> {
        self.opened().await?.create_multipart(target, num_parts).await
    }

    /// Stores part `part_number` (from 1) of an upload; sent again, it replaces the first.
    pub async fn put_part<S, E>(&self, upload_id: &str, part_number: u32, body: S) -> Result<u64, ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        self.opened().await?.put_part(upload_id, part_number, body).await
    }

    /// Writes the file from its parts, which must be all of them, in order, each uploaded;
    /// then removes the staging area. On any error the file is left as it was.
    pub async fn complete_multipart(&self, target: &ArtifactPath, upload_id: &str, parts: &[u32]) -> Result<u64, ArtifactError> {
        self.opened().await?.complete_multipart(target, upload_id, parts).await
    }

    /// Drops an upload and its parts; the file is left as it was.
    pub async fn abort_multipart(&self, target: &ArtifactPath, upload_id: &str) -> Result<(), ArtifactError> {
        self.opened().await?.abort_multipart(target, upload_id).await
    }

    /// Removes the staging directories of uploads abandoned for [`ABANDONED_UPLOAD_AGE`]; returns
    /// how many.
    pub async fn remove_abandoned_uploads(&self) -> Result<usize, ArtifactError> {
        self.opened().await?.remove_abandoned_uploads().await
    }
}

impl Opened {
    /// The staging directory of an upload, relative to the destination.
    fn staging(id: uuid::Uuid) -> Path {
        Path::from_iter([STAGING_DIR.to_owned(), id.to_string()])
    }

    fn staged(&self, relative: &Path) -> Path {
        self.prefix.parts().chain(relative.parts()).collect()
    }

    async fn create_multipart(&self, target: &ArtifactPath, num_parts: u32) -> Result<MultipartUpload, ArtifactError> {
        if !(1..=MAX_PARTS).contains(&num_parts) {
            return Err(ArtifactError::Invalid(format!("num_parts must be between 1 and {MAX_PARTS}, got {num_parts}")));
        }
        if target.is_root() {
            return Err(ArtifactError::Invalid("an upload needs a file path".into()));
        }
        self.confine(target).await?;
        // Abandoned uploads would otherwise stay forever: a client that died part way never aborts.
        if let Err(e) = self.remove_abandoned_uploads().await {
            tracing::warn!(error = %e, "could not remove abandoned multipart uploads");
        }
        let id = uuid::Uuid::new_v4();
        let record = serde_json::to_vec(&Record { path: target.to_string(), num_parts }).expect("a record serialises");
        self.store.put(&self.staged(&Self::staging(id).child(RECORD)), PutPayload::from(record)).await?;
        Ok(MultipartUpload { upload_id: id.to_string(), num_parts })
    }

    async fn record(&self, id: uuid::Uuid) -> Result<Record, ArtifactError> {
        let location = self.staged(&Self::staging(id).child(RECORD));
        let found = self.store.get(&location).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                ArtifactError::NotFound(format!("multipart upload {id} does not exist (completed, aborted or never created)"))
            }
            e => e.into(),
        })?;
        if found.meta.size > MAX_RECORD_BYTES {
            return Err(ArtifactError::Invalid(format!("multipart upload {id} has a damaged record")));
        }
        let bytes = found.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|_| ArtifactError::Invalid(format!("multipart upload {id} has a damaged record")))
    }

    async fn put_part<S, E>(&self, upload_id: &str, part_number: u32, body: S) -> Result<u64, ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let id = parse_upload_id(upload_id)?;
        let record = self.record(id).await?;
        if !(1..=record.num_parts).contains(&part_number) {
            return Err(ArtifactError::Invalid(format!(
                "part_number must be between 1 and {} for this upload, got {part_number}",
                record.num_parts
            )));
        }
        let location = self.staged(&Self::staging(id).child(part_number.to_string()));
        self.put_at(&location, body.map_err(|e| ArtifactError::Interrupted(e.to_string()))).await
    }

    async fn complete_multipart(&self, target: &ArtifactPath, upload_id: &str, parts: &[u32]) -> Result<u64, ArtifactError> {
        let id = parse_upload_id(upload_id)?;
        let record = self.record(id).await?;
        if record.path != target.to_string() {
            return Err(ArtifactError::Invalid(format!("multipart upload {id} writes '{}', not '{target}'", record.path)));
        }
        let expected: Vec<u32> = (1..=record.num_parts).collect();
        if parts != expected {
            return Err(ArtifactError::Invalid(format!(
                "parts must list part numbers 1 to {} once each, in order; got {} part(s)",
                record.num_parts,
                parts.len()
            )));
        }
        self.confine(target).await?;
        // Every part is checked with one listing before the file is begun, so a missing part
        // does not even leave the file's directory behind.
        let staged: Vec<ObjectMeta> = self.store.list(Some(&self.staged(&Self::staging(id)))).try_collect().await?;
        if let Some(missing) = parts.iter().find(|n| !staged.iter().any(|o| o.location.filename() == Some(&n.to_string()))) {
            return Err(ArtifactError::Invalid(format!("part {missing} of multipart upload {id} was not uploaded")));
        }
        let store = self.store.clone();
        let locations: Vec<Path> = parts.iter().map(|n| self.staged(&Self::staging(id).child(n.to_string()))).collect();
        // Boxed: the part streams are `'static`, which keeps the whole stream `Send`.
        let part =
            move |location: Path| -> BoxFuture<'static, Result<BoxStream<'static, Result<Bytes, ArtifactError>>, ArtifactError>> {
                let store = store.clone();
                Box::pin(async move {
                    match store.get(&location).await {
                        Ok(found) => Ok(found.into_stream().map_err(ArtifactError::from).boxed()),
                        Err(object_store::Error::NotFound { .. }) => Err(ArtifactError::Invalid(format!(
                            "part {} of multipart upload {id} was not uploaded",
                            location.filename().unwrap_or_default()
                        ))),
                        Err(e) => Err(e.into()),
                    }
                })
            };
        let bytes = stream::iter(locations).then(part).try_flatten().boxed();
        let written = self.put_at(&self.location(target), bytes).await?;
        self.remove_tree(&Self::staging(id)).await?;
        Ok(written)
    }

    /// One listing of the staging area, then a removal per abandoned upload.
    async fn remove_abandoned_uploads(&self) -> Result<usize, ArtifactError> {
        let root = self.staged(&Path::from(STAGING_DIR));
        let mut newest: std::collections::HashMap<String, SystemTime> = Default::default();
        let mut listed = self.store.list(Some(&root));
        while let Some(meta) = listed.next().await {
            let meta = match meta {
                Ok(meta) => meta,
                // Removed meanwhile (completed or aborted).
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(upload) = meta.location.prefix_match(&root).and_then(|mut rest| rest.next()) else { continue };
            let modified: SystemTime = meta.last_modified.into();
            let at = newest.entry(upload.as_ref().to_owned()).or_insert(modified);
            *at = (*at).max(modified);
        }
        let cutoff = SystemTime::now() - ABANDONED_UPLOAD_AGE;
        let mut removed = 0;
        for (upload, at) in newest {
            // Only directories this server names (a UUID each) are touched.
            if at < cutoff && upload.parse::<uuid::Uuid>().is_ok() {
                self.remove_tree(&Path::from_iter([STAGING_DIR.to_owned(), upload])).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn abort_multipart(&self, target: &ArtifactPath, upload_id: &str) -> Result<(), ArtifactError> {
        let id = parse_upload_id(upload_id)?;
        let record = self.record(id).await?;
        if record.path != target.to_string() {
            return Err(ArtifactError::Invalid(format!("multipart upload {id} writes '{}', not '{target}'", record.path)));
        }
        self.remove_tree(&Self::staging(id)).await
    }
}
