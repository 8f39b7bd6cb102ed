//! Command line, as upstream's cobra/viper one: every flag also comes from `MR_<FLAG>` and from
//! the `--config` YAML file. Precedence: flag > environment > file > default.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use embedmd::PoolConfig;

#[derive(Debug, Parser)]
#[command(name = "model-registry", version, about = "Kubeflow Model Registry server on an embedded MLMD datastore")]
pub struct Cli {
    /// YAML file whose keys are flag names (default: ~/.model-registry.yaml when it exists).
    #[arg(short = 'c', long, global = true, env = "MR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log lines as text for people or as one JSON object per line for collectors.
    #[arg(long, global = true, env = "MR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Least severe level logged: error, warn, info, debug or trace; RUST_LOG directives, when
    /// set, override it (per module, or wholly).
    #[arg(long, global = true, env = "MR_LOG_LEVEL", default_value = "info", value_parser = parse_log_level, value_name = "LEVEL")]
    pub log_level: tracing::Level,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Model Registry REST API.
    Proxy(Box<ProxyArgs>),
    /// Inspect or move the database schema (golang-migrate compatible).
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Write the whole registry (every MLMD table, ids and times as stored) as JSON Lines, from
    /// one consistent snapshot while servers keep serving.
    Export(ExportArgs),
    /// Load an export into an empty database of any type: migrated first, then every row in
    /// one transaction, ids kept.
    Import(ImportArgs),
    /// Copy an SQLite database to a new file while servers keep writing to it.
    Backup(BackupArgs),
    /// Helpers for `--auth-mode token`.
    Auth {
        #[command(subcommand)]
        action: AuthAction,
    },
}

#[derive(Debug, Subcommand, Clone, PartialEq, Eq)]
pub enum AuthAction {
    /// Read a token on stdin (never on the command line, where `ps` shows it) and print its
    /// SHA-256, or the token file's line for it when --name and --role are given.
    HashToken {
        #[arg(long, requires = "role")]
        name: Option<String>,
        #[arg(long, requires = "name", value_parser = ["reader", "writer", "admin"])]
        role: Option<String>,
    },
}

#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct ExportArgs {
    /// The file to write (replaced once the export is complete), or `-` for stdout.
    #[arg(short = 'o', long, env = "MR_OUTPUT", value_name = "FILE|-")]
    pub output: String,
}

#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct ImportArgs {
    /// The export to read, or `-` for stdin.
    #[arg(short = 'i', long, env = "MR_INPUT", value_name = "FILE|-")]
    pub input: String,
}

#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct BackupArgs {
    /// The copy to create; it must not exist yet.
    #[arg(short = 'o', long, env = "MR_OUTPUT", value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address to listen on.
    #[arg(short = 'n', long, env = "MR_HOSTNAME", default_value = "localhost")]
    pub hostname: String,
    /// Port to listen on.
    #[arg(short = 'p', long, env = "MR_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Serve `/metrics` on this port (same address) instead of the API port.
    #[arg(long, env = "MR_METRICS_PORT", value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// Datastore implementation; `embedmd` is the only one.
    #[arg(long, env = "MR_DATASTORE_TYPE", default_value = "embedmd", value_parser = parse_datastore_type)]
    pub datastore_type: String,
    /// Requests served at once; beyond it a request gets 503 at once instead of a queue.
    #[arg(
        long,
        env = "MR_MAX_CONCURRENT_REQUESTS",
        default_value_t = crate::http::MAX_CONCURRENT_REQUESTS,
        value_parser = clap::value_parser!(u32).range(1..),
        value_name = "N"
    )]
    pub max_concurrent_requests: u32,
    /// Time a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "MR_HTTP_READ_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub http_read_header_timeout: Duration,
    /// Time a request may take from its headers to its response (body included); beyond it: 503.
    #[arg(long, env = "MR_HTTP_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub http_request_timeout: Duration,
    /// After SIGTERM/SIGINT, in-flight requests get this long before the server exits anyway.
    #[arg(long, env = "MR_HTTP_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub http_shutdown_timeout: Duration,
    /// Serve the web UI at `/` and `/ui/` (`--ui=false` turns it off).
    #[arg(long, env = "MR_UI", default_value_t = true, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub ui: bool,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Serve HTTPS with this PEM certificate chain (re-read when it changes); HTTP without it.
    #[arg(long, env = "MR_TLS_CERT_FILE", value_name = "FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of --tls-cert-file.
    #[arg(long, env = "MR_TLS_KEY_FILE", value_name = "FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Where MLflow's artifact proxy keeps files: a directory, file://, s3://, gs:// or az://
    /// (credentials from the cloud's usual environment variables) [default: `mlartifacts`
    /// beside the SQLite file; in the working directory for MySQL and PostgreSQL].
    #[arg(long, env = "MR_ARTIFACTS_DESTINATION", value_name = "DIR|URL")]
    pub artifacts_destination: Option<crate::artifacts::Destination>,
}

/// Who may call the server (docs/security.md).
#[derive(Debug, Args, Clone)]
pub struct AuthArgs {
    /// How callers' bearer tokens are checked: none (upstream's behaviour), token, oidc or kubernetes.
    #[arg(long, env = "MR_AUTH_MODE", value_enum, default_value_t = crate::auth::Mode::None)]
    pub auth_mode: crate::auth::Mode,
    /// token mode: lines of `name role sha256-of-token` (`model-registry auth hash-token`).
    #[arg(long, env = "MR_AUTH_TOKEN_FILE", value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// oidc mode: the issuer URL, whose discovery document names the keys.
    #[arg(long, env = "MR_AUTH_OIDC_ISSUER", value_name = "URL")]
    pub auth_oidc_issuer: Option<String>,
    /// oidc mode: the audience tokens must name in `aud`.
    #[arg(long, env = "MR_AUTH_OIDC_AUDIENCE", value_name = "AUD")]
    pub auth_oidc_audience: Option<String>,
    /// oidc mode: a CA certificate (PEM) trusted for the issuer, besides the system's.
    #[arg(long, env = "MR_AUTH_OIDC_CA_FILE", value_name = "FILE")]
    pub auth_oidc_ca_file: Option<PathBuf>,
    /// oidc mode: the claim holding groups or roles (a dotted path reaches nested claims).
    #[arg(long, env = "MR_AUTH_OIDC_ROLE_CLAIM", default_value = "groups", value_name = "CLAIM")]
    pub auth_oidc_role_claim: String,
    /// oidc mode: roles by claim value, e.g. `admin=ops,writer=ml-engineers,reader=*` (`*`: any valid token).
    #[arg(long, env = "MR_AUTH_OIDC_ROLES", value_name = "ROLE=VALUE,...", value_parser = crate::auth::parse_roles)]
    pub auth_oidc_roles: Option<crate::auth::RoleMap>,
    /// kubernetes mode: the API server (default: from KUBERNETES_SERVICE_HOST/PORT in a pod).
    #[arg(long, env = "MR_AUTH_KUBERNETES_API_SERVER", value_name = "URL")]
    pub auth_kubernetes_api_server: Option<String>,
    /// kubernetes mode: the token the reviews are sent with (default: the pod's service account's).
    #[arg(long, env = "MR_AUTH_KUBERNETES_TOKEN_FILE", value_name = "FILE")]
    pub auth_kubernetes_token_file: Option<PathBuf>,
    /// kubernetes mode: the API server's CA (default: the pod's service account's ca.crt).
    #[arg(long, env = "MR_AUTH_KUBERNETES_CA_FILE", value_name = "FILE")]
    pub auth_kubernetes_ca_file: Option<PathBuf>,
    /// kubernetes mode: namespace of the resource checked (default: the pod's).
    #[arg(long, env = "MR_AUTH_KUBERNETES_NAMESPACE", value_name = "NAMESPACE")]
    pub auth_kubernetes_namespace: Option<String>,
    /// kubernetes mode: the resource type of the SubjectAccessReview.
    #[arg(long, env = "MR_AUTH_KUBERNETES_RESOURCE", default_value = "services", value_name = "RESOURCE")]
    pub auth_kubernetes_resource: String,
    /// kubernetes mode: the resource's name, the registry's Service.
    #[arg(long, env = "MR_AUTH_KUBERNETES_RESOURCE_NAME", default_value = "model-registry", value_name = "NAME")]
    pub auth_kubernetes_resource_name: String,
    /// kubernetes mode: how long a review's decision is reused.
    #[arg(long, env = "MR_AUTH_KUBERNETES_CACHE_TTL", default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub auth_kubernetes_cache_ttl: Duration,
}

/// The database flags, shared by `proxy` and `migrate`.
#[derive(Debug, Args, Clone)]
pub struct DatabaseArgs {
    /// sqlite (default when nothing is configured), mysql or postgres.
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_TYPE", value_name = "TYPE")]
    pub embedmd_database_type: Option<String>,
    /// Data source name: an SQLite path, a Go MySQL DSN (user:pass@tcp(host:port)/db?...), or a
    /// mysql:// / postgres:// URL or libpq key=value string.
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_DSN", value_name = "DSN", hide_env_values = true)]
    pub embedmd_database_dsn: Option<String>,
    /// Client certificate for TLS to the database.
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_SSL_CERT", value_name = "FILE")]
    pub embedmd_database_ssl_cert: Option<PathBuf>,
    /// Client key for TLS to the database.
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_SSL_KEY", value_name = "FILE")]
    pub embedmd_database_ssl_key: Option<PathBuf>,
    /// Root certificate to verify the server against (PostgreSQL's sslrootcert).
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_SSL_ROOT_CERT", value_name = "FILE")]
    pub embedmd_database_ssl_root_cert: Option<PathBuf>,
    /// CA certificate to verify the server against (MySQL's ssl-ca).
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_SSL_CA", value_name = "FILE")]
    pub embedmd_database_ssl_ca: Option<PathBuf>,
    /// TLS cipher list (accepted for compatibility; rustls negotiates only modern suites).
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_SSL_CIPHER", value_name = "LIST")]
    pub embedmd_database_ssl_cipher: Option<String>,
    /// Verify the server certificate and host name.
    #[arg(
        long,
        global = true,
        env = "MR_EMBEDMD_DATABASE_SSL_VERIFY_SERVER_CERT",
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub embedmd_database_ssl_verify_server_cert: Option<bool>,
    /// Connections a replica opens at most (MySQL, PostgreSQL); N replicas need N times this
    /// from the server's max_connections.
    #[arg(
        long,
        global = true,
        env = "MR_EMBEDMD_DATABASE_MAX_OPEN_CONNS",
        value_name = "N",
        default_value_t = PoolConfig::DEFAULT_MAX_OPEN,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub embedmd_database_max_open_conns: u32,
    /// Idle connections kept open; a connection released beyond them is closed.
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_MAX_IDLE_CONNS", value_name = "N", default_value_t = PoolConfig::DEFAULT_MAX_IDLE)]
    pub embedmd_database_max_idle_conns: u32,
    /// Age after which a connection is replaced (0: never) [default: 30m].
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_CONN_MAX_LIFETIME", value_name = "DURATION", value_parser = parse_duration)]
    pub embedmd_database_conn_max_lifetime: Option<Duration>,
    /// Time after which an idle connection is closed (0: never) [default: 1m].
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_CONN_MAX_IDLE_TIME", value_name = "DURATION", value_parser = parse_duration)]
    pub embedmd_database_conn_max_idle_time: Option<Duration>,
    /// Longest a statement may run before the database cancels it (0: no limit) [default: 15s].
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_STATEMENT_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub embedmd_database_statement_timeout: Option<Duration>,
    /// What stands between the server and PostgreSQL: `transaction` for PgBouncer's transaction
    /// pooling (no prepared statement kept, session settings per transaction, the migration
    /// lock held by one transaction); `none` for direct connections or session pooling.
    #[arg(long, global = true, env = "MR_EMBEDMD_DATABASE_POOLER", value_name = "MODE", default_value = "none")]
    pub embedmd_database_pooler: embedmd::dsn::Pooler,
}

#[derive(Debug, Subcommand, Clone, PartialEq, Eq)]
pub enum MigrateAction {
    /// Apply all pending migrations, or the next N.
    Up { steps: Option<usize> },
    /// Revert the last N migrations, or all of them with --all --yes.
    Down {
        steps: Option<usize>,
        /// Revert every migration: drops every table, MLMD's data included.
        #[arg(long, conflicts_with = "steps")]
        all: bool,
        /// Confirm `--all`.
        #[arg(long)]
        yes: bool,
    },
    /// Migrate up or down to version V.
    Goto { version: u64 },
    /// Show the current version, whether it is dirty, and what is pending.
    Status,
    /// Record version V (-1 for none) as clean without running anything, after repairing a
    /// failed migration by hand.
    Force {
        #[arg(allow_negative_numbers = true)]
        version: i64,
    },
}

fn parse_datastore_type(value: &str) -> Result<String, String> {
    match value {
        "embedmd" => Ok(value.to_owned()),
        other => Err(format!(
            "unsupported datastore type {other:?}: only \"embedmd\" is supported (this server keeps \
             the MLMD schema itself; there is no MLMD gRPC datastore)"
        )),
    }
}

fn parse_log_level(value: &str) -> Result<tracing::Level, String> {
    value.parse().map_err(|_| format!("unknown level {value:?} (expected error, warn, info, debug or trace)"))
}

/// A humantime duration (`30s`, `5m`, `1h 30m`); `0` means no limit where a flag allows it.
fn parse_duration(value: &str) -> Result<Duration, String> {
    match value.trim() {
        "0" => Ok(Duration::ZERO),
        v => humantime::parse_duration(v).map_err(|e| format!("{e} (expected a duration such as 30s or 5m)")),
    }
}

fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    match parse_duration(value)? {
        Duration::ZERO => Err("must be more than 0".into()),
        d => Ok(d),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error("cannot read config file {path}: {source}; {advice}")]
    ConfigRead { path: PathBuf, source: std::io::Error, advice: &'static str },
    #[error("config file {path}: {message}")]
    ConfigInvalid { path: PathBuf, message: String },
}

/// Parses the command line, then fills every flag that was neither given nor set in the
/// environment from the config file.
pub fn parse_from<I, T>(args: I, home: Option<PathBuf>) -> Result<Cli, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command = Cli::command();
    // A first look only finds the config file and what the command line and environment
    // give: a required flag may still be missing here, to come from the file.
    let matches = command.clone().ignore_errors(true).try_get_matches_from(&args)?;
    let explicit = matches.get_one::<PathBuf>("config").cloned();
    let file = match explicit {
        Some(path) => Some((path, "name a readable file with --config/-c (MR_CONFIG)")),
        None => home
            .map(|h| h.join(".model-registry.yaml"))
            .filter(|p| p.is_file())
            .map(|path| (path, "it is read whenever it exists: make it readable or remove it")),
    };
    let Some((path, advice)) = file else {
        return Ok(Cli::from_arg_matches(&command.try_get_matches_from(&args)?)?);
    };
    let settings = read_config_file(&path, advice)?;

    let leaf = leaf_matches(&matches);
    let invoked = invoked_command(&command, &matches);
    let mut extended = args.clone();
    for (key, value) in settings {
        if flag_id(&command, &key).is_none() {
            return Err(CliError::ConfigInvalid { path, message: format!("unknown key {key:?}") });
        }
        // A key for another subcommand (say `port` while running `migrate`) does not apply.
        let Some(id) = long_flag(invoked, &key).or_else(|| long_flag(&command, &key)) else { continue };
        let given = [leaf, &matches].iter().any(|m| {
            matches!(
                m.try_contains_id(&id).ok().and_then(|_| m.value_source(&id)),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        });
        if !given {
            extended.push(format!("--{key}={value}").into());
        }
    }
    let matches = command.try_get_matches_from(&extended)?;
    Ok(Cli::from_arg_matches(&matches)?)
}

/// The matches of the innermost subcommand, where its own flags live.
fn leaf_matches(matches: &clap::ArgMatches) -> &clap::ArgMatches {
    let mut current = matches;
    while let Some((_, sub)) = current.subcommand() {
        current = sub;
    }
    current
}

/// The subcommand that was invoked.
fn invoked_command<'a>(command: &'a clap::Command, matches: &clap::ArgMatches) -> &'a clap::Command {
    match matches.subcommand() {
        Some((name, sub)) => command.find_subcommand(name).map_or(command, |c| invoked_command(c, sub)),
        None => command,
    }
}

fn long_flag(command: &clap::Command, long: &str) -> Option<String> {
    command.get_arguments().find(|a| a.get_long() == Some(long)).map(|a| a.get_id().to_string())
}

/// The argument id behind a long flag name anywhere in the command tree.
fn flag_id(command: &clap::Command, long: &str) -> Option<String> {
    long_flag(command, long).or_else(|| command.get_subcommands().find_map(|sub| flag_id(sub, long)))
}

/// A flat YAML mapping of flag names to scalars.
fn read_config_file(path: &PathBuf, advice: &'static str) -> Result<BTreeMap<String, String>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::ConfigRead { path: path.clone(), source, advice })?;
    let invalid = |message: String| CliError::ConfigInvalid { path: path.clone(), message };
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let mapping = match value {
        serde_yaml_ng::Value::Null => return Ok(BTreeMap::new()),
        serde_yaml_ng::Value::Mapping(m) => m,
        _ => return Err(invalid("expected a mapping of flag names to values".into())),
    };
    mapping
        .into_iter()
        .map(|(k, v)| {
            let key = k.as_str().ok_or_else(|| invalid("keys must be flag names".into()))?.to_owned();
            let value = match v {
                serde_yaml_ng::Value::String(s) => s,
                serde_yaml_ng::Value::Number(n) => n.to_string(),
                serde_yaml_ng::Value::Bool(b) => b.to_string(),
                _ => return Err(invalid(format!("{key}: expected a single value"))),
            };
            Ok((key, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn yaml(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    fn proxy(cli: &Cli) -> &ProxyArgs {
        match &cli.command {
            Command::Proxy(p) => p,
            other => panic!("expected proxy, got {other:?}"),
        }
    }

    // Environment variables are process-wide; tests that set them run one at a time.
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    struct EnvVar(&'static str);
    impl EnvVar {
        fn set(name: &'static str, value: &str) -> Self {
            std::env::set_var(name, value);
            EnvVar(name)
        }
    }
    impl Drop for EnvVar {
        fn drop(&mut self) {
            std::env::remove_var(self.0);
        }
    }

    #[test]
    fn defaults_match_upstream() {
        let _guard = ENV.lock().unwrap();
        let cli = parse_from(["model-registry", "proxy"], None).unwrap();
        let p = proxy(&cli);
        assert_eq!((p.hostname.as_str(), p.port, p.datastore_type.as_str()), ("localhost", 8080, "embedmd"));
        assert_eq!(cli.database.embedmd_database_type, None);
        assert_eq!(cli.database.embedmd_database_dsn, None);
    }

    #[test]
    fn precedence_is_flag_then_env_then_file_then_default() {
        let _guard = ENV.lock().unwrap();
        let file =
            yaml("port: 9000\nhostname: file-host\nembedmd-database-type: mysql\nembedmd-database-dsn: \"u@tcp(h:1)/f\"\n");
        let config = file.path().to_str().unwrap().to_owned();

        let cli = parse_from(["model-registry", "proxy", "-c", &config], None).unwrap();
        assert_eq!((proxy(&cli).port, proxy(&cli).hostname.as_str()), (9000, "file-host"));
        assert_eq!(cli.database.embedmd_database_dsn.as_deref(), Some("u@tcp(h:1)/f"));

        let _port = EnvVar::set("MR_PORT", "9100");
        let _dsn = EnvVar::set("MR_EMBEDMD_DATABASE_DSN", "u@tcp(h:1)/env");
        let cli = parse_from(["model-registry", "proxy", "-c", &config], None).unwrap();
        assert_eq!((proxy(&cli).port, proxy(&cli).hostname.as_str()), (9100, "file-host"));
        assert_eq!(cli.database.embedmd_database_dsn.as_deref(), Some("u@tcp(h:1)/env"));

        let cli = parse_from(
            ["model-registry", "proxy", "-c", &config, "--port", "9200", "--embedmd-database-dsn", "u@tcp(h:1)/flag"],
            None,
        )
        .unwrap();
        assert_eq!(proxy(&cli).port, 9200);
        assert_eq!(cli.database.embedmd_database_dsn.as_deref(), Some("u@tcp(h:1)/flag"));
        assert_eq!(cli.database.embedmd_database_type.as_deref(), Some("mysql"));
    }

    #[test]
    fn the_home_config_file_is_read_when_it_exists() {
        let _guard = ENV.lock().unwrap();
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".model-registry.yaml"), "port: 7000\n").unwrap();
        let cli = parse_from(["model-registry", "proxy"], Some(home.path().to_owned())).unwrap();
        assert_eq!(proxy(&cli).port, 7000);
        let empty = tempfile::tempdir().unwrap();
        let cli = parse_from(["model-registry", "proxy"], Some(empty.path().to_owned())).unwrap();
        assert_eq!(proxy(&cli).port, 8080);
    }

    #[test]
    fn bad_config_files_and_flags_are_clear_errors() {
        let _guard = ENV.lock().unwrap();
        let unknown = yaml("colour: blue\n");
        let err = parse_from(["model-registry", "proxy", "-c", unknown.path().to_str().unwrap()], None).unwrap_err();
        assert!(err.to_string().contains("unknown key \"colour\""), "{err}");

        let nested = yaml("port: [1, 2]\n");
        let err = parse_from(["model-registry", "proxy", "-c", nested.path().to_str().unwrap()], None).unwrap_err();
        assert!(err.to_string().contains("port: expected a single value"), "{err}");

        let err = parse_from(["model-registry", "proxy", "-c", "/nonexistent/mr.yaml"], None).unwrap_err();
        assert!(err.to_string().contains("cannot read config file /nonexistent/mr.yaml"), "{err}");

        let err = parse_from(["model-registry", "proxy", "--datastore-type", "mlmd"], None).unwrap_err();
        assert!(err.to_string().contains("only \"embedmd\" is supported"), "{err}");

        let err = parse_from(["model-registry", "proxy", "--port", "http"], None).unwrap_err();
        assert!(err.to_string().contains("invalid value 'http'"), "{err}");
    }

    #[test]
    fn auth_and_tls_flags_from_the_file() {
        let _guard = ENV.lock().unwrap();
        let file = yaml(
            "auth-mode: oidc\nauth-oidc-issuer: https://id.example\nauth-oidc-roles: writer=ml,reader=*\n\
             tls-cert-file: /tls/crt\ntls-key-file: /tls/key\n",
        );
        let cli = parse_from(["model-registry", "proxy", "-c", file.path().to_str().unwrap()], None).unwrap();
        let p = proxy(&cli);
        assert_eq!(p.auth.auth_mode, crate::auth::Mode::Oidc);
        assert_eq!(p.auth.auth_oidc_role_claim, "groups");
        let roles = p.auth.auth_oidc_roles.clone().unwrap().0;
        assert_eq!(roles, [(crate::auth::Role::Writer, "ml".to_owned()), (crate::auth::Role::Reader, "*".to_owned())]);
        assert_eq!(p.tls_cert_file.as_deref(), Some(std::path::Path::new("/tls/crt")));
        let defaults = parse_from(["model-registry", "proxy"], None).unwrap();
        assert_eq!(proxy(&defaults).auth.auth_mode, crate::auth::Mode::None);
        let err = parse_from(["model-registry", "proxy", "--tls-cert-file", "/tls/crt"], None).unwrap_err();
        assert!(err.to_string().contains("--tls-key-file"), "{err}");
        let err = parse_from(["model-registry", "proxy", "--auth-oidc-roles", "owner=x"], None).unwrap_err();
        assert!(err.to_string().contains("unknown role"), "{err}");
    }

    #[test]
    fn pool_and_timeout_flags_from_flag_env_and_file() {
        let _guard = ENV.lock().unwrap();
        let cli = parse_from(["model-registry", "proxy"], None).unwrap();
        assert_eq!(crate::config::pool_config(&cli.database), PoolConfig::default());
        let timeouts = crate::config::ServerConfig::from_args(proxy(&cli), &cli.database).unwrap().timeouts;
        assert_eq!(timeouts, crate::config::HttpTimeouts::default());

        let file = yaml(
            "embedmd-database-max-open-conns: 7\nembedmd-database-conn-max-lifetime: 5m\n\
             embedmd-database-statement-timeout: 0\nhttp-shutdown-timeout: 3s\n",
        );
        let _idle = EnvVar::set("MR_EMBEDMD_DATABASE_MAX_IDLE_CONNS", "1");
        let _idle_time = EnvVar::set("MR_EMBEDMD_DATABASE_CONN_MAX_IDLE_TIME", "90s");
        let cli = parse_from(
            ["model-registry", "proxy", "-c", file.path().to_str().unwrap(), "--http-read-header-timeout", "2s"],
            None,
        )
        .unwrap();
        let pool = crate::config::pool_config(&cli.database);
        assert_eq!((pool.max_open, pool.max_idle), (7, 1));
        assert_eq!(pool.max_lifetime, Some(Duration::from_secs(300)));
        assert_eq!(pool.max_idle_time, Some(Duration::from_secs(90)));
        assert_eq!(pool.statement_timeout, None, "0 turns the limit off");
        assert_eq!(pool.acquire_timeout, PoolConfig::DEFAULT_ACQUIRE_TIMEOUT);
        let p = proxy(&cli);
        assert_eq!((p.http_read_header_timeout, p.http_shutdown_timeout), (Duration::from_secs(2), Duration::from_secs(3)));

        let err = parse_from(["model-registry", "proxy", "--embedmd-database-max-open-conns", "0"], None).unwrap_err();
        assert!(err.to_string().contains("embedmd-database-max-open-conns"), "{err}");
        let err = parse_from(["model-registry", "proxy", "--http-request-timeout", "0"], None).unwrap_err();
        assert!(err.to_string().contains("must be more than 0"), "{err}");
        let err = parse_from(["model-registry", "proxy", "--embedmd-database-conn-max-lifetime", "soon"], None).unwrap_err();
        assert!(err.to_string().contains("expected a duration"), "{err}");
    }

    #[test]
    fn log_and_metrics_flags_from_flag_env_and_file() {
        let _guard = ENV.lock().unwrap();
        let cli = parse_from(["model-registry", "proxy"], None).unwrap();
        assert_eq!((cli.log_format, cli.log_level, proxy(&cli).metrics_port), (LogFormat::Text, tracing::Level::INFO, None));

        let file = yaml("log-format: json\nlog-level: debug\nmetrics-port: 9090\n");
        let config = file.path().to_str().unwrap().to_owned();
        let cli = parse_from(["model-registry", "proxy", "-c", &config], None).unwrap();
        assert_eq!(
            (cli.log_format, cli.log_level, proxy(&cli).metrics_port),
            (LogFormat::Json, tracing::Level::DEBUG, Some(9090))
        );

        let _level = EnvVar::set("MR_LOG_LEVEL", "warn");
        let _port = EnvVar::set("MR_METRICS_PORT", "9091");
        let cli = parse_from(["model-registry", "proxy", "-c", &config, "--log-format", "text"], None).unwrap();
        assert_eq!(
            (cli.log_format, cli.log_level, proxy(&cli).metrics_port),
            (LogFormat::Text, tracing::Level::WARN, Some(9091))
        );
        // Global: `migrate` logs the same way.
        let cli = parse_from(["model-registry", "migrate", "status", "--log-format", "json"], None).unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);

        let err = parse_from(["model-registry", "proxy", "--log-level", "loud"], None).unwrap_err();
        assert!(err.to_string().contains("expected error, warn, info, debug or trace"), "{err}");
        let err = parse_from(["model-registry", "proxy", "--log-format", "xml"], None).unwrap_err();
        assert!(err.to_string().contains("xml"), "{err}");
    }

    #[test]
    fn the_ui_is_on_unless_turned_off_by_flag_env_or_file() {
        let _guard = ENV.lock().unwrap();
        let ui = |args: &[&str]| proxy(&parse_from(args.iter().copied(), None).unwrap()).ui;
        assert!(ui(&["model-registry", "proxy"]));
        assert!(!ui(&["model-registry", "proxy", "--ui=false"]));
        assert!(ui(&["model-registry", "proxy", "--ui"]));
        let file = yaml("ui: false\n");
        let config = file.path().to_str().unwrap().to_owned();
        assert!(!ui(&["model-registry", "proxy", "-c", &config]));
        let _env = EnvVar::set("MR_UI", "true");
        assert!(ui(&["model-registry", "proxy", "-c", &config]));
        assert!(!ui(&["model-registry", "proxy", "--ui", "false"]));
    }

    #[test]
    fn migrate_subcommands() {
        let _guard = ENV.lock().unwrap();
        let action = |args: &[&str]| match parse_from(args.iter().copied(), None).unwrap().command {
            Command::Migrate { action } => action,
            other => panic!("{other:?}"),
        };
        assert_eq!(action(&["model-registry", "migrate", "up"]), MigrateAction::Up { steps: None });
        assert_eq!(
            action(&["model-registry", "migrate", "down", "2"]),
            MigrateAction::Down { steps: Some(2), all: false, yes: false }
        );
        assert_eq!(action(&["model-registry", "migrate", "force", "-1"]), MigrateAction::Force { version: -1 });
        let file = yaml("port: 9000\nembedmd-database-type: sqlite\n");
        let cli = parse_from(["model-registry", "migrate", "status", "-c", file.path().to_str().unwrap()], None).unwrap();
        assert_eq!(cli.database.embedmd_database_type.as_deref(), Some("sqlite"));
        let cli = parse_from(
            ["model-registry", "migrate", "status", "--embedmd-database-type", "postgres", "--embedmd-database-dsn", "host=x"],
            None,
        )
        .unwrap();
        assert_eq!(cli.database.embedmd_database_type.as_deref(), Some("postgres"));
        assert!(parse_from(["model-registry", "migrate", "down", "2", "--all"], None).is_err());
    }

    #[test]
    fn transfer_subcommands_take_the_database_flags_anywhere() {
        let _guard = ENV.lock().unwrap();
        let cli = parse_from(["model-registry", "export", "--output", "-", "--embedmd-database-dsn", "a.db"], None).unwrap();
        assert!(matches!(&cli.command, Command::Export(ExportArgs { output }) if output == "-"));
        assert_eq!(cli.database.embedmd_database_dsn.as_deref(), Some("a.db"));
        let cli = parse_from(["model-registry", "--embedmd-database-type", "postgres", "import", "-i", "x.jsonl"], None).unwrap();
        assert!(matches!(&cli.command, Command::Import(ImportArgs { input }) if input == "x.jsonl"));
        assert_eq!(cli.database.embedmd_database_type.as_deref(), Some("postgres"));
        let file = yaml("output: from-file.db\nport: 9000\n");
        let cli = parse_from(["model-registry", "backup", "-c", file.path().to_str().unwrap()], None).unwrap();
        assert!(matches!(&cli.command, Command::Backup(BackupArgs { output }) if output == std::path::Path::new("from-file.db")));
        let err = parse_from(["model-registry", "export"], None).unwrap_err();
        assert!(err.to_string().contains("--output"), "{err}");
    }
}
