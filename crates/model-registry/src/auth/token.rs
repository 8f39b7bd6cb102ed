//! `--auth-mode token`: static tokens listed by their SHA-256 in a file that is re-read when it
//! changes, so revoking a token is an edit, not a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{allow, Authenticator, BoxFuture, Denied, Identity, Need, Role};

/// How often the file's modification time and size are looked at (on a request, not in the
/// background): a revocation takes effect within this.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The hex SHA-256 of a token, as the file lists it.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone)]
struct Entry {
    name: Arc<str>,
    role: Role,
    hash: [u8; 32],
}

/// The file's identity on disk: a change of any of these is a new version of it.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Lines of `name role sha256-hex`; `#` starts a comment.
fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, role, hash] = fields[..] else {
            return Err(format!("line {}: expected `name role sha256` (3 fields), found {}", n + 1, fields.len()));
        };
        let role = role.parse::<Role>().map_err(|e| format!("line {}: {e}", n + 1))?;
        let hash = hex::decode(hash).ok().and_then(|h| <[u8; 32]>::try_from(h).ok()).ok_or_else(|| {
            format!("line {}: the third field must be a SHA-256 in hex (64 characters): `model-registry auth hash-token`", n + 1)
        })?;
        entries.push(Entry { name: name.into(), role, hash });
    }
    Ok(entries)
}

struct Loaded {
    stamp: Stamp,
    checked: Instant,
    entries: Arc<Vec<Entry>>,
}

pub struct TokenFile {
    path: PathBuf,
    state: Mutex<Loaded>,
}

impl TokenFile {
    /// Reads the file; a missing or malformed one is an error at start.
    pub fn open(path: &Path) -> anyhow::Result<TokenFile> {
        let stamp = stamp(path);
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the token file {} ({e}): see --auth-token-file", path.display()))?;
        let entries = Arc::new(parse(&text).map_err(|e| anyhow::anyhow!("token file {}: {e}", path.display()))?);
        tracing::info!(path = %path.display(), tokens = entries.len(), "token file read");
        Ok(TokenFile { path: path.to_owned(), state: Mutex::new(Loaded { stamp, checked: Instant::now(), entries }) })
    }

    /// The entries, re-read first when the file changed. A file that became unreadable or
    /// malformed leaves no token valid until it is fixed: a revocation must never be undone by
    /// a typo.
    fn entries(&self) -> Arc<Vec<Entry>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            state.checked = Instant::now();
            let now = stamp(&self.path);
            if now != state.stamp {
                state.stamp = now;
                state.entries = match std::fs::read_to_string(&self.path).map_err(|e| e.to_string()).and_then(|t| parse(&t)) {
                    Ok(entries) => {
                        tracing::info!(path = %self.path.display(), tokens = entries.len(), "token file reloaded");
                        Arc::new(entries)
                    }
                    Err(error) => {
                        tracing::error!(path = %self.path.display(), error, "token file unusable; every token refused until it is fixed");
                        Arc::new(Vec::new())
                    }
                };
            }
        }
        state.entries.clone()
    }

    /// Every entry is compared, each in constant time, so the time taken says nothing about
    /// which hash, or how much of one, matched.
    fn find(&self, token: &str) -> Option<Entry> {
        let hash = Sha256::digest(token.as_bytes());
        let mut found = None;
        for entry in self.entries().iter() {
            if bool::from(entry.hash.ct_eq(hash.as_slice())) {
                found = Some(entry.clone());
            }
        }
        found
    }
}

impl Authenticator for TokenFile {
    fn check<'a>(&'a self, token: &'a str, need: Need<'a>) -> BoxFuture<'a, Result<Identity, Denied>> {
        let result = match self.find(token) {
            Some(entry) => allow(Identity { subject: entry.name, role: Some(entry.role) }, need),
            None => Err(Denied::Unauthenticated("unknown token".into())),
        };
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_a_role_and_a_hash() {
        let hash = hash_token("secret");
        assert_eq!(hash, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
        let entries = parse(&format!("# team tokens\n\nalice writer {hash}  # laptop\nci reader {hash}\n")).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((&*entries[0].name, entries[0].role), ("alice", Role::Writer));
        assert!(parse("alice writer").unwrap_err().contains("line 1"));
        assert!(parse(&format!("alice owner {hash}")).unwrap_err().contains("unknown role"));
        assert!(parse("alice admin secret").unwrap_err().contains("SHA-256"));
    }
}
