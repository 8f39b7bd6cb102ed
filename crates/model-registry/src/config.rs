//! From parsed flags to validated settings; DSN problems surface here, before anything starts.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use embedmd::{Backend, ConnectTarget, PoolConfig, TlsConfig};

use crate::artifacts::Destination;
use crate::cli::{AuthArgs, DatabaseArgs, ProxyArgs};

/// Everything `proxy` needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub hostname: String,
    pub port: u16,
    /// Where `/metrics` is served when not on the API port.
    pub metrics_port: Option<u16>,
    pub datastore: ConnectTarget,
    pub max_concurrent_requests: u32,
    pub pool: PoolConfig,
    pub timeouts: HttpTimeouts,
    /// Serve the web UI at `/` and `/ui/`.
    pub ui: bool,
    /// Who may call (`--auth-*`); no checks by default.
    pub auth: crate::auth::Auth,
    /// HTTPS instead of HTTP (`--tls-cert-file`, `--tls-key-file`).
    pub tls: Option<crate::http::Tls>,
    /// Where MLflow's artifact proxy keeps files.
    pub artifacts_destination: Destination,
}

/// The HTTP edge's time limits (see the `--http-*-timeout` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTimeouts {
    pub read_header: Duration,
    pub request: Duration,
    pub shutdown: Duration,
}

impl HttpTimeouts {
    pub const DEFAULT_READ_HEADER: Duration = Duration::from_secs(10);
    pub const DEFAULT_REQUEST: Duration = Duration::from_secs(30);
    pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(20);
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts { read_header: Self::DEFAULT_READ_HEADER, request: Self::DEFAULT_REQUEST, shutdown: Self::DEFAULT_SHUTDOWN }
    }
}

impl ServerConfig {
    /// Defaults for everything but where to listen and which database to use.
    pub fn new(hostname: impl Into<String>, port: u16, datastore: ConnectTarget) -> Self {
        ServerConfig {
            hostname: hostname.into(),
            port,
            metrics_port: None,
            pool: PoolConfig::default(),
            timeouts: HttpTimeouts::default(),
            max_concurrent_requests: crate::http::MAX_CONCURRENT_REQUESTS,
            ui: true,
            auth: crate::auth::Auth::default(),
            tls: None,
            artifacts_destination: Destination::default_for(&datastore),
            datastore,
        }
    }

    pub fn from_args(proxy: &ProxyArgs, database: &DatabaseArgs) -> Result<Self, embedmd::dsn::DsnError> {
        let defaults = ServerConfig::new(proxy.hostname.clone(), proxy.port, datastore_target(database)?);
        Ok(ServerConfig {
            artifacts_destination: proxy.artifacts_destination.clone().unwrap_or(defaults.artifacts_destination.clone()),
            timeouts: HttpTimeouts {
                read_header: proxy.http_read_header_timeout,
                request: proxy.http_request_timeout,
                shutdown: proxy.http_shutdown_timeout,
            },
            pool: pool_config(database),
            max_concurrent_requests: proxy.max_concurrent_requests,
            metrics_port: proxy.metrics_port,
            ui: proxy.ui,
            ..defaults
        })
    }
}

/// The auth flags as one mode's settings.
pub fn auth_settings(args: &AuthArgs) -> crate::auth::Settings {
    crate::auth::Settings {
        mode: args.auth_mode,
        token_file: args.auth_token_file.clone(),
        oidc: crate::auth::OidcSettings {
            issuer: args.auth_oidc_issuer.clone(),
            audience: args.auth_oidc_audience.clone(),
            ca_file: args.auth_oidc_ca_file.clone(),
            role_claim: args.auth_oidc_role_claim.clone(),
            roles: args.auth_oidc_roles.clone().unwrap_or_default(),
        },
        kubernetes: crate::auth::KubernetesSettings {
            api_server: args.auth_kubernetes_api_server.clone(),
            token_file: args.auth_kubernetes_token_file.clone(),
            ca_file: args.auth_kubernetes_ca_file.clone(),
            namespace: args.auth_kubernetes_namespace.clone(),
            resource: args.auth_kubernetes_resource.clone(),
            resource_name: args.auth_kubernetes_resource_name.clone(),
            cache_ttl: args.auth_kubernetes_cache_ttl,
        },
    }
}

/// The pool flags over [`PoolConfig`]'s defaults; a zero duration means "no limit".
pub fn pool_config(args: &DatabaseArgs) -> PoolConfig {
    let defaults = PoolConfig::default();
    let limit = |flag: Option<Duration>, default: Option<Duration>| match flag {
        Some(Duration::ZERO) => None,
        Some(d) => Some(d),
        None => default,
    };
    PoolConfig {
        max_open: args.embedmd_database_max_open_conns,
        max_idle: args.embedmd_database_max_idle_conns,
        max_lifetime: limit(args.embedmd_database_conn_max_lifetime, defaults.max_lifetime),
        max_idle_time: limit(args.embedmd_database_conn_max_idle_time, defaults.max_idle_time),
        statement_timeout: limit(args.embedmd_database_statement_timeout, defaults.statement_timeout),
        ..defaults
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
    embedmd::dsn::resolve(backend, args.embedmd_database_dsn.as_deref(), &tls)?.with_pooler(args.embedmd_database_pooler)
}

/// A failure to open the datastore, with what the file system shows when that names the path
/// and the fix: more than the driver's "unable to open database file".
pub fn open_error(error: &dyn std::fmt::Display, target: &ConnectTarget) -> String {
    match datastore_problem(target) {
        Some(problem) => format!("{error}; {problem}"),
        None => error.to_string(),
    }
}

/// What keeps the datastore's files from being opened, if anything: only SQLite has such problems.
fn datastore_problem(target: &ConnectTarget) -> Option<String> {
    match target {
        ConnectTarget::Sqlite(options) => sqlite_problem(options.get_filename()),
        ConnectTarget::MySql(_) | ConnectTarget::Postgres(_) => None,
    }
}

/// SQLite creates the file, and in WAL mode its `-wal` and `-shm` files, in the file's
/// directory: that directory must exist and be writable, and so must the file if it exists.
fn sqlite_problem(file: &Path) -> Option<String> {
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    let dir = file.parent().unwrap_or(Path::new("/"));
    let elsewhere = "or choose another file with --embedmd-database-dsn (MR_EMBEDMD_DATABASE_DSN)";
    match std::fs::metadata(dir) {
        Err(e) => return Some(format!("the SQLite directory {} cannot be used ({e}): create it {elsewhere}", dir.display())),
        Ok(meta) if !meta.is_dir() => {
            return Some(format!("{} is not a directory: the SQLite file needs one {elsewhere}", dir.display()))
        }
        Ok(_) => {}
    }
    // An unnamed temporary file: what creating the database's files needs, and nothing is left.
    if let Err(e) = tempfile::tempfile_in(dir) {
        return Some(format!(
            "the SQLite directory {} is not writable ({e}): SQLite creates the database and its -wal and -shm files \
             there; make it writable for the server's user {elsewhere}",
            dir.display()
        ));
    }
    match std::fs::OpenOptions::new().read(true).write(true).open(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Some(format!(
            "the SQLite file {} is not writable ({e}): make it writable for the server's user {elsewhere}",
            file.display()
        )),
        _ => None,
    }
}
