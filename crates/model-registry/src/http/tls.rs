//! HTTPS: rustls with a certificate that is read again when its files change, so a renewed
//! certificate (cert-manager, a mounted Secret) is served without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// How often a handshake looks at the files' modification times: a renewed certificate is
/// served within this.
pub const CERT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("cannot read the certificate {}: {e}", files.cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", files.cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| format!("cannot read the key {}: {e}", files.key.display()))?;
    let certified = CertifiedKey::from_der(chain, key, &ring::default_provider())
        .map_err(|e| format!("{} and {} do not make a usable certificate: {e}", files.cert.display(), files.key.display()))?;
    Ok(Arc::new(certified))
}

struct Current {
    stamp: Stamp,
    checked: Instant,
    key: Arc<CertifiedKey>,
}

#[derive(Debug)]
struct Reloading {
    files: TlsFiles,
    current: Mutex<Current>,
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Current").field("stamp", &self.stamp).finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.checked.elapsed() >= CERT_CHECK_INTERVAL {
            current.checked = Instant::now();
            let stamp = (modified(&self.files.cert), modified(&self.files.key));
            if stamp != current.stamp {
                // A half-written pair fails to load: the old certificate stays until both agree.
                match load(&self.files) {
                    Ok(key) => {
                        tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                        current.key = key;
                        current.stamp = stamp;
                    }
                    Err(error) => {
                        tracing::warn!(error, "TLS certificate changed but cannot be used yet; serving the previous one")
                    }
                }
            }
        }
        Some(current.key.clone())
    }
}

/// The TLS side of the listener.
#[derive(Clone)]
pub struct Tls(pub TlsAcceptor);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// An unreadable or mismatched pair is an error at start.
    pub fn load(files: &TlsFiles) -> anyhow::Result<Tls> {
        acceptor(files).map(Tls)
    }
}

fn acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let stamp = (modified(&files.cert), modified(&files.key));
    let key = load(files).map_err(anyhow::Error::msg)?;
    let resolver = Reloading { files: files.clone(), current: Mutex::new(Current { stamp, checked: Instant::now(), key }) };
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
