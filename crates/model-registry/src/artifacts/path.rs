//! Artifact paths as clients send them, parsed once into a path that cannot leave the
//! destination.

use object_store::path::Path;

/// The reserved first segment under which multipart uploads keep their parts until they are
/// completed; no client path may name it.
pub const STAGING_DIR: &str = ".mlflow-mpu";

/// Longest artifact path accepted, in bytes (most file systems cap a path at 4 KiB).
pub const MAX_PATH_BYTES: usize = 1024;

/// Why a client path was refused; the edge answers it with MLflow's `INVALID_PARAMETER_VALUE`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Invalid path: {0}")]
pub struct InvalidPath(&'static str);

/// A relative path below the destination: no `..` or `.` segment, not absolute, no empty
/// segment, no backslash, control character or `#` (the local store names its half-written
/// files `<name>#<n>`), not under [`STAGING_DIR`]. The empty path is the destination itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPath(Path);

impl ArtifactPath {
    /// The destination's root.
    pub fn root() -> Self {
        ArtifactPath(Path::default())
    }

    /// Parses a path as it arrives (already percent-decoded from the URL). A trailing `/` is
    /// allowed, as the client sends one for a run's root.
    pub fn parse(raw: &str) -> Result<Self, InvalidPath> {
        if raw.len() > MAX_PATH_BYTES {
            return Err(InvalidPath("longer than 1024 bytes"));
        }
        if raw.starts_with('/') {
            return Err(InvalidPath("absolute paths are not allowed"));
        }
        if raw.chars().any(|c| c.is_control()) {
            return Err(InvalidPath("control characters are not allowed"));
        }
        if raw.contains('\\') || raw.contains('#') {
            return Err(InvalidPath("'\\' and '#' are not allowed"));
        }
        // A Windows drive (`C:`) is absolute there; MLflow refuses it everywhere.
        if raw.as_bytes().get(1) == Some(&b':') && raw.as_bytes()[0].is_ascii_alphabetic() {
            return Err(InvalidPath("absolute paths are not allowed"));
        }
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        if trimmed.is_empty() {
            return Ok(Self::root());
        }
        let segments: Vec<&str> = trimmed.split('/').collect();
        if segments.iter().any(|s| *s == ".." || *s == ".") {
            return Err(InvalidPath("'..' and '.' segments are not allowed"));
        }
        if segments.iter().any(|s| s.is_empty()) {
            return Err(InvalidPath("empty segments are not allowed"));
        }
        if segments[0] == STAGING_DIR {
            return Err(InvalidPath("the directory .mlflow-mpu is reserved"));
        }
        // Kept as sent (no percent-encoding), so names list back as the client wrote them.
        Path::parse(trimmed).map(ArtifactPath).map_err(|_| InvalidPath("not a valid path"))
    }

    pub fn is_root(&self) -> bool {
        self.0.as_ref().is_empty()
    }

    /// The path joined with one more checked segment (a file name the client sends).
    pub fn join(&self, name: &str) -> Result<Self, InvalidPath> {
        let name = ArtifactPath::parse(name)?;
        Ok(ArtifactPath(self.0.parts().chain(name.0.parts()).collect()))
    }

    pub fn as_store_path(&self) -> &Path {
        &self.0
    }

    /// The last segment, for a download's file name.
    pub fn file_name(&self) -> Option<&str> {
        self.0.filename()
    }

    /// The segments as the file system sees them (each one plain, checked by `parse`).
    pub fn segments(&self) -> impl Iterator<Item = String> + '_ {
        self.0.parts().map(|p| p.as_ref().to_owned())
    }
}

impl std::fmt::Display for ArtifactPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_are_kept() {
        for (raw, kept) in [
            ("a", "a"),
            ("1/abc/artifacts/model/MLmodel", "1/abc/artifacts/model/MLmodel"),
            ("dir/", "dir"),
            ("with space/ü.txt", "with space/ü.txt"),
            ("..x/y..", "..x/y.."),
        ] {
            assert_eq!(ArtifactPath::parse(raw).unwrap().to_string(), kept, "{raw}");
        }
        assert!(ArtifactPath::parse("").unwrap().is_root());
    }

    #[test]
    fn escapes_and_odd_paths_are_refused() {
        for raw in [
            "..",
            "../etc/passwd",
            "a/../../b",
            "a/..",
            "./a",
            "/etc/passwd",
            "//server/share",
            "C:/Windows",
            "c:x",
            "a\\..\\b",
            "a//b",
            "a/#1",
            "a\0b",
            "a\nb",
            ".mlflow-mpu/x/1",
            ".mlflow-mpu",
        ] {
            assert!(ArtifactPath::parse(raw).is_err(), "{raw:?} was accepted");
        }
        assert!(ArtifactPath::parse(&"a/".repeat(600)).is_err());
    }

    #[test]
    fn join_checks_the_segment_too() {
        let dir = ArtifactPath::parse("run/artifacts").unwrap();
        assert_eq!(dir.join("model.pkl").unwrap().to_string(), "run/artifacts/model.pkl");
        assert!(dir.join("../x").is_err());
        assert!(dir.join("/x").is_err());
        assert_eq!(ArtifactPath::root().join("f").unwrap().to_string(), "f");
    }
}
