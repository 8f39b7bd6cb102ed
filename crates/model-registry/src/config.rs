//! From parsed flags to validated settings; DSN problems surface here, before anything starts.

use std::str::FromStr;

use embedmd::{Backend, ConnectTarget, TlsConfig};

use crate::cli::{DatabaseArgs, ProxyArgs};

/// Everything `proxy` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub hostname: String,
    pub port: u16,
    pub datastore: ConnectTarget,
    pub max_concurrent_requests: u32,
}

impl ServerConfig {
    pub fn from_args(proxy: &ProxyArgs, database: &DatabaseArgs) -> Result<Self, embedmd::dsn::DsnError> {
        Ok(ServerConfig {
            hostname: proxy.hostname.clone(),
            port: proxy.port,
            datastore: datastore_target(database)?,
            max_concurrent_requests: proxy.max_concurrent_requests,
        })
    }
}

/// Resolves the database flags into connect options (type inferred from the DSN when absent).
pub fn datastore_target(args: &DatabaseArgs) -> Result<ConnectTarget, embedmd::dsn::DsnError> {
    let backend = args.embedmd_database_type.as_deref().map(Backend::from_str).transpose()?;
    let tls = TlsConfig {
        cert: args.embedmd_database_ssl_cert.clone(),
        key: args.embedmd_database_ssl_key.clone(),
        root_cert: args.embedmd_database_ssl_root_cert.clone(),
        ca: args.embedmd_database_ssl_ca.clone(),
        cipher: args.embedmd_database_ssl_cipher.clone(),
        verify_server_cert: args.embedmd_database_ssl_verify_server_cert.unwrap_or(false),
    };
    if tls.cipher.is_some() {
        tracing::warn!(
            "--embedmd-database-ssl-cipher is accepted but not applied: rustls negotiates only its own modern cipher suites"
        );
    }
    embedmd::dsn::resolve(backend, args.embedmd_database_dsn.as_deref(), &tls)
}
