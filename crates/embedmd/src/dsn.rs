//! Data source names as upstream accepts them, turned into sqlx connect options.
//!
//! Accepted forms:
//! - SQLite: a file path, `file:<path>` or `sqlite:<path>` (`sqlite://<path>`), with optional
//!   `?mode=ro|rw|rwc`.
//! - MySQL/MariaDB: the Go driver's DSN `user:pass@tcp(host:port)/db?param=value` (what upstream
//!   documents) and `mysql://user:pass@host:port/db?...` URLs.
//! - PostgreSQL: `postgres://` / `postgresql://` URLs and libpq `key=value` strings.
//!
//! MySQL and PostgreSQL DSNs may name several hosts, tried in order ([`Hosts`]):
//! `tcp(h1:3306,h2:3306)` and `mysql://u@h1:3306,h2:3306/db`; libpq's `host=h1,h2
//! port=5432,5433` and `postgres://u@h1:5432,h2:5433/db`, with its
//! `target_session_attrs=read-write` (only a host that accepts writes will do).
//!
//! Errors name the part that is wrong and never contain the password.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

/// Which database server the datastore lives in; parsed once from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    MySql,
    Postgres,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::MySql, Backend::Postgres];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::MySql => "mysql",
            Backend::Postgres => "postgres",
        }
    }
}

impl FromStr for Backend {
    type Err = DsnError;

    fn from_str(s: &str) -> Result<Self, DsnError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Ok(Backend::Sqlite),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            "postgres" | "postgresql" | "pg" => Ok(Backend::Postgres),
            other => Err(DsnError::UnknownBackend(other.to_owned())),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DsnError {
    #[error("unknown database type {0:?}: expected one of sqlite, mysql, postgres")]
    UnknownBackend(String),
    #[error("cannot tell the database type from the DSN: set --embedmd-database-type to sqlite, mysql or postgres")]
    Ambiguous,
    #[error("--embedmd-database-dsn is required for database type {0}")]
    Missing(Backend),
    #[error("invalid {backend} DSN: {problem}")]
    Invalid { backend: Backend, problem: String },
}

fn invalid(backend: Backend, problem: impl Into<String>) -> DsnError {
    DsnError::Invalid { backend, problem: problem.into() }
}

/// TLS settings from the `--embedmd-database-ssl-*` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub root_cert: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub cipher: Option<String>,
    pub verify_server_cert: bool,
}

/// How much of the server's certificate TLS checks.
enum Verification {
    /// Encrypt only.
    None,
    /// The chain, against the configured CA.
    Chain,
    /// The chain and the host name.
    Full,
}

impl TlsConfig {
    /// `None` when no TLS flag is set.
    fn verification(&self) -> Option<Verification> {
        let enabled =
            self.cert.is_some() || self.key.is_some() || self.root_cert.is_some() || self.ca.is_some() || self.verify_server_cert;
        enabled.then(|| match (self.verify_server_cert, self.trust_anchor().is_some()) {
            (true, _) => Verification::Full,
            (false, true) => Verification::Chain,
            (false, false) => Verification::None,
        })
    }

    /// MySQL calls the trust anchor "ca", PostgreSQL "root cert": either flag serves both.
    fn trust_anchor(&self) -> Option<&PathBuf> {
        self.ca.as_ref().or(self.root_cert.as_ref())
    }
}

/// A MySQL or PostgreSQL database as a DSN names it: on one host, or on several tried in order
/// (a Galera cluster's nodes, a PostgreSQL primary and its standbys).
#[derive(Clone)]
pub struct Hosts<O> {
    /// One complete set of options per host (credentials, database, TLS), in the DSN's order;
    /// never empty.
    pub each: Vec<O>,
    /// Only a host that accepts writes will do (libpq's `target_session_attrs=read-write`):
    /// a standby, or a Galera node not yet synced, is passed over.
    pub read_write: bool,
    /// What stands between the server and the database ([`Pooler`]).
    pub pooler: Pooler,
}

impl<O> From<O> for Hosts<O> {
    fn from(options: O) -> Self {
        Hosts { each: vec![options], read_write: false, pooler: Pooler::None }
    }
}

impl<O> Hosts<O> {
    /// Whether the pool must choose a host ([`crate::dialect::Dialect::host_probe`]) rather
    /// than take the only one as it is.
    pub fn choose(&self) -> bool {
        self.each.len() > 1 || self.read_write
    }
}

/// A connection pooler between the server and PostgreSQL (`--embedmd-database-pooler`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pooler {
    /// Direct connections, or a pooler in session mode: a connection is one server session.
    #[default]
    None,
    /// PgBouncer's `pool_mode = transaction`: consecutive transactions of one connection may run
    /// on different server sessions, so nothing may outlive a transaction. Every statement runs
    /// inside one, unnamed (no prepared statement is kept), with the session settings as `SET
    /// LOCAL`; the migration lock is a transaction-scoped one held by one transaction.
    Transaction,
}

impl FromStr for Pooler {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "session" => Ok(Pooler::None),
            "transaction" => Ok(Pooler::Transaction),
            other => Err(format!("unknown pooler mode {other:?}: expected none, session or transaction")),
        }
    }
}

/// Everything needed to open the datastore.
// Built once per process and cloned per connection search: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum ConnectTarget {
    Sqlite(SqliteConnectOptions),
    MySql(Hosts<MySqlConnectOptions>),
    Postgres(Hosts<PgConnectOptions>),
}

impl ConnectTarget {
    pub fn backend(&self) -> Backend {
        match self {
            ConnectTarget::Sqlite(_) => Backend::Sqlite,
            ConnectTarget::MySql(_) => Backend::MySql,
            ConnectTarget::Postgres(_) => Backend::Postgres,
        }
    }

    /// A description safe for logs: host and database, never credentials.
    pub fn describe(&self) -> String {
        match self {
            ConnectTarget::Sqlite(o) => format!("sqlite file {}", o.get_filename().display()),
            ConnectTarget::MySql(h) => match h.each[0].get_socket() {
                Some(socket) => {
                    format!("mysql database {:?} via {}", h.each[0].get_database().unwrap_or_default(), socket.display())
                }
                None => format!(
                    "mysql database {:?} at {}",
                    h.each[0].get_database().unwrap_or_default(),
                    self.host_names().join(",")
                ),
            },
            ConnectTarget::Postgres(h) => format!(
                "postgres database {:?} at {}",
                h.each[0].get_database().unwrap_or(h.each[0].get_username()),
                self.host_names().join(",")
            ),
        }
    }

    /// `host:port` of each host, in order (empty for SQLite).
    pub fn host_names(&self) -> Vec<String> {
        match self {
            ConnectTarget::Sqlite(_) => Vec::new(),
            ConnectTarget::MySql(h) => h.each.iter().map(|o| format!("{}:{}", o.get_host(), o.get_port())).collect(),
            ConnectTarget::Postgres(h) => h.each.iter().map(|o| format!("{}:{}", o.get_host(), o.get_port())).collect(),
        }
    }

    /// The pooler between the server and the database ([`Pooler::None`] but on PostgreSQL).
    pub fn pooler(&self) -> Pooler {
        match self {
            ConnectTarget::Postgres(h) => h.pooler,
            _ => Pooler::None,
        }
    }

    /// Says that `pooler` stands between; only PostgreSQL's pooler modes change anything.
    pub fn with_pooler(mut self, pooler: Pooler) -> Result<Self, DsnError> {
        match (&mut self, pooler) {
            (_, Pooler::None) => {}
            (ConnectTarget::Postgres(h), _) => h.pooler = pooler,
            (other, _) => return Err(invalid(other.backend(), "a transaction pooler is supported in front of PostgreSQL only")),
        }
        Ok(self)
    }
}

impl fmt::Debug for ConnectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The SQLite file used when no database is configured at all.
pub const DEFAULT_SQLITE_FILE: &str = "model-registry.db";

/// SQLite waits this long for a lock held by another connection or process.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Rows SQLite's worker thread may read ahead of the task taking them: with sqlx's 50 the two
/// threads hand off every few rows (a list page of 100 nodes is some 400 rows; the export went
/// from 9.6 s to 5.2 s for 1.2 M rows).
const SQLITE_ROW_BUFFER: usize = 1024;

/// Each SQLite connection's page cache, KiB (SQLite's default is 2000). The pool's connections
/// fill their caches on list pages and keep them (16 x 2000 KiB at most): with 1 MiB the bench's
/// W5 peak RSS after its list workloads went from 105-124 MiB to 89-98 MiB; the file's pages stay
/// in the OS cache either way.
const SQLITE_PAGE_CACHE_KIB: u32 = 1024;

/// Resolves the configured type and DSN into connect options.
///
/// With neither, the embedded default is an SQLite file in the working directory. With only a
/// DSN the type is inferred where the form is unambiguous.
pub fn resolve(backend: Option<Backend>, dsn: Option<&str>, tls: &TlsConfig) -> Result<ConnectTarget, DsnError> {
    let dsn = dsn.map(str::trim).filter(|d| !d.is_empty());
    let backend = match (backend, dsn) {
        (Some(b), _) => b,
        (None, Some(d)) => infer_backend(d).ok_or(DsnError::Ambiguous)?,
        (None, None) => Backend::Sqlite,
    };
    match (backend, dsn) {
        (Backend::Sqlite, None) => Ok(ConnectTarget::Sqlite(sqlite_options(DEFAULT_SQLITE_FILE.into()))),
        (Backend::Sqlite, Some(d)) => parse_sqlite(d).map(ConnectTarget::Sqlite),
        (Backend::MySql, Some(d)) => parse_mysql_hosts(d, tls).map(ConnectTarget::MySql),
        (Backend::Postgres, Some(d)) => parse_postgres_hosts(d, tls).map(ConnectTarget::Postgres),
        (b, None) => Err(DsnError::Missing(b)),
    }
}

/// Guesses the backend from the DSN's form; `None` when it could be more than one.
pub fn infer_backend(dsn: &str) -> Option<Backend> {
    let lower = dsn.to_ascii_lowercase();
    if lower.starts_with("mysql://") || lower.starts_with("mariadb://") {
        return Some(Backend::MySql);
    }
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return Some(Backend::Postgres);
    }
    if lower.starts_with("sqlite:") || lower.starts_with("file:") {
        return Some(Backend::Sqlite);
    }
    if lower.contains("@tcp(") || lower.contains("@unix(") || lower.starts_with("tcp(") {
        return Some(Backend::MySql);
    }
    if parse_keyword_values(dsn).is_ok_and(|kv| !kv.is_empty()) {
        return Some(Backend::Postgres);
    }
    if [".db", ".sqlite", ".sqlite3"].iter().any(|ext| lower.ends_with(ext)) {
        return Some(Backend::Sqlite);
    }
    None
}

fn sqlite_options(path: PathBuf) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // Every commit waits for its fsync (a power cut loses no acknowledged write), said
        // here rather than left to SQLite's compile-time default, which a build may lower.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // MLMD's SQLite schema declares no foreign keys and MLMD never enables them.
        .foreign_keys(false)
        .row_buffer_size(SQLITE_ROW_BUFFER)
        .pragma("cache_size", format!("-{SQLITE_PAGE_CACHE_KIB}"))
        // The group commit runs each write in a savepoint, whose journal of the pages it
        // changes is a temporary file by default: a write() per page, in memory instead.
        .pragma("temp_store", "memory")
}

fn parse_sqlite(dsn: &str) -> Result<SqliteConnectOptions, DsnError> {
    let rest = dsn
        .strip_prefix("sqlite://")
        .or_else(|| dsn.strip_prefix("sqlite:"))
        .or_else(|| dsn.strip_prefix("file://"))
        .or_else(|| dsn.strip_prefix("file:"))
        .unwrap_or(dsn);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path =
        percent_decode_str(path).decode_utf8().map_err(|_| invalid(Backend::Sqlite, "the file path is not valid UTF-8"))?;
    if path.is_empty() || path == ":memory:" {
        return Err(invalid(Backend::Sqlite, "a file path is required (an in-memory database would lose every write)"));
    }
    let mut options = sqlite_options(PathBuf::from(path.as_ref()));
    for (key, value) in query_pairs(Backend::Sqlite, query)? {
        match (key.as_str(), value.as_str()) {
            ("mode", "ro") => options = options.read_only(true).create_if_missing(false),
            ("mode", "rw") => options = options.create_if_missing(false),
            ("mode", "rwc") => {}
            ("mode", other) => return Err(invalid(Backend::Sqlite, format!("mode {other:?}: expected ro, rw or rwc"))),
            // Connection-level knobs of other drivers (cache, _busy_timeout, ...) do not apply.
            _ => {}
        }
    }
    Ok(options)
}

fn query_pairs(backend: Backend, query: &str) -> Result<Vec<(String, String)>, DsnError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| invalid(backend, format!("parameter {k:?} is not valid UTF-8")))
            };
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The pieces both MySQL DSN forms carry.
#[derive(Debug, Default, PartialEq, Eq)]
struct MySqlParts {
    user: String,
    password: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    /// Hosts after the first, tried in order after it (`tcp(h1:3306,h2:3306)`).
    others: Vec<(String, Option<u16>)>,
    socket: Option<String>,
    database: String,
    params: Vec<(String, String)>,
}

/// A URL naming several hosts (`scheme://user@h1:1,h2:2/db?...`) as one URL per host, in
/// order; any other DSN as it is.
fn url_per_host(backend: Backend, dsn: &str) -> Result<Vec<String>, DsnError> {
    let Some(scheme_end) = dsn.find("://") else { return Ok(vec![dsn.to_owned()]) };
    let start = scheme_end + 3;
    let end = dsn[start..].find(['/', '?']).map_or(dsn.len(), |i| start + i);
    let hosts_start = dsn[start..end].rfind('@').map_or(start, |at| start + at + 1);
    let hosts = &dsn[hosts_start..end];
    if !hosts.contains(',') {
        return Ok(vec![dsn.to_owned()]);
    }
    if hosts.split(',').any(str::is_empty) {
        return Err(invalid(backend, "an empty entry in the list of hosts"));
    }
    Ok(hosts.split(',').map(|host| format!("{}{host}{}", &dsn[..hosts_start], &dsn[end..])).collect())
}

/// The port of a host listed without one.
const MYSQL_DEFAULT_PORT: u16 = 3306;

fn parse_mysql_hosts(dsn: &str, tls: &TlsConfig) -> Result<Hosts<MySqlConnectOptions>, DsnError> {
    let lower = dsn.to_ascii_lowercase();
    let parts = if lower.starts_with("mysql://") || lower.starts_with("mariadb://") {
        let mut urls = url_per_host(Backend::MySql, dsn)?.into_iter();
        let mut parts = parse_mysql_url(&urls.next().expect("at least one"))?;
        for url in urls {
            let other = parse_mysql_url(&url)?;
            parts.others.push((other.host.unwrap_or_default(), other.port));
        }
        parts
    } else {
        parse_go_mysql_dsn(dsn)?
    };
    let first = mysql_options(&parts, tls)?;
    let mut each = vec![first.clone()];
    for (host, port) in &parts.others {
        each.push(first.clone().host(host).port(port.unwrap_or(MYSQL_DEFAULT_PORT)));
    }
    // Every Galera node takes writes; one not ready for them is passed over anyway.
    Ok(Hosts { read_write: each.len() > 1, each, pooler: Pooler::None })
}

#[cfg(test)]
fn parse_mysql(dsn: &str, tls: &TlsConfig) -> Result<MySqlConnectOptions, DsnError> {
    parse_mysql_hosts(dsn, tls).map(|h| h.each[0].clone())
}

fn mysql_options(parts: &MySqlParts, tls: &TlsConfig) -> Result<MySqlConnectOptions, DsnError> {
    if parts.database.is_empty() {
        return Err(invalid(Backend::MySql, "no database name after '/'"));
    }
    let mut options = MySqlConnectOptions::new().username(&parts.user).database(&parts.database);
    if let Some(password) = &parts.password {
        options = options.password(password);
    }
    if let Some(socket) = &parts.socket {
        options = options.socket(socket);
    }
    if let Some(host) = &parts.host {
        options = options.host(host);
    }
    if let Some(port) = parts.port {
        options = options.port(port);
    }
    for (key, value) in &parts.params {
        options = match key.as_str() {
            "charset" => options.charset(value.split(',').next().unwrap_or(value)),
            "collation" => options.collation(value),
            "tls" | "ssl-mode" | "sslmode" => options.ssl_mode(mysql_ssl_mode(value)?),
            // Go-side conversions (parseTime, loc) and driver timeouts have no counterpart.
            _ => options,
        };
    }
    if let Some(verification) = tls.verification() {
        options = options.ssl_mode(match verification {
            Verification::Full => MySqlSslMode::VerifyIdentity,
            Verification::Chain => MySqlSslMode::VerifyCa,
            Verification::None => MySqlSslMode::Required,
        });
        if let Some(ca) = tls.trust_anchor() {
            options = options.ssl_ca(ca);
        }
        if let Some(cert) = &tls.cert {
            options = options.ssl_client_cert(cert);
        }
        if let Some(key) = &tls.key {
            options = options.ssl_client_key(key);
        }
    }
    Ok(options)
}

fn mysql_ssl_mode(value: &str) -> Result<MySqlSslMode, DsnError> {
    match value.to_ascii_lowercase().as_str() {
        "false" | "disabled" => Ok(MySqlSslMode::Disabled),
        "preferred" => Ok(MySqlSslMode::Preferred),
        "skip-verify" | "required" => Ok(MySqlSslMode::Required),
        "verify_ca" | "verify-ca" => Ok(MySqlSslMode::VerifyCa),
        "true" | "verify_identity" | "verify-identity" => Ok(MySqlSslMode::VerifyIdentity),
        other => Err(invalid(Backend::MySql, format!("tls={other:?}: expected true, false, skip-verify or preferred"))),
    }
}

/// `[user[:password]@][net[(addr)]]/dbname[?param=value&...]`, as go-sql-driver/mysql reads it:
/// the last '/' starts the database, the last '@' before it ends the credentials.
fn parse_go_mysql_dsn(dsn: &str) -> Result<MySqlParts, DsnError> {
    let slash = dsn
        .rfind('/')
        .ok_or_else(|| invalid(Backend::MySql, "missing '/' before the database name (expected user:pass@tcp(host:port)/db)"))?;
    let (head, tail) = (&dsn[..slash], &dsn[slash + 1..]);
    let (credentials, address) = match head.rfind('@') {
        Some(at) => (Some(&head[..at]), &head[at + 1..]),
        None => (None, head),
    };
    // Where a password may be, the network name may hold a piece of it (a `user:pass` missing
    // its '@', or an '@' in the password, split at the last one), so it is not quoted; a '/' in
    // the password moves its '@' past the last '/', which is refused without quoting.
    let unseparated = credentials.is_none() && address.split('(').next().is_some_and(|net| net.contains(':'));
    if unseparated && tail.contains('@') {
        return Err(invalid(Backend::MySql, "the credentials' '@' comes after the last '/' (a '/' in the password?)"));
    }
    let password_given = unseparated || credentials.is_some_and(|c| c.contains(':'));
    let net_named = |net: &str| if password_given { String::new() } else { format!(" {net:?}") };
    let (database, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut parts = MySqlParts {
        database: percent_decode_str(database)
            .decode_utf8()
            .map_err(|_| invalid(Backend::MySql, "the database name is not valid UTF-8"))?
            .into_owned(),
        params: query_pairs(Backend::MySql, query)?,
        ..MySqlParts::default()
    };
    if let Some(credentials) = credentials {
        let (user, password) = match credentials.split_once(':') {
            Some((user, password)) => (user, Some(password.to_owned())),
            None => (credentials, None),
        };
        parts.user = user.to_owned();
        // The Go driver sends no password when it is empty (`root:@tcp(...)`).
        parts.password = password.filter(|p| !p.is_empty());
    }
    if address.is_empty() {
        return Ok(parts);
    }
    let (net, addr) = match address.split_once('(') {
        Some((net, rest)) => {
            let addr = rest.strip_suffix(')').ok_or_else(|| {
                invalid(Backend::MySql, format!("the address after the network{} is missing its closing ')'", net_named(net)))
            })?;
            (net, addr)
        }
        None => (address, ""),
    };
    match net {
        "tcp" | "tcp6" | "tcp4" => {
            if !addr.is_empty() {
                let mut hosts = addr.split(',');
                let (host, port) = split_host_port(Backend::MySql, hosts.next().unwrap_or_default())?;
                parts.host = Some(host);
                parts.port = port;
                for other in hosts {
                    if other.is_empty() {
                        return Err(invalid(Backend::MySql, "an empty entry in the list of hosts"));
                    }
                    parts.others.push(split_host_port(Backend::MySql, other)?);
                }
            }
        }
        "unix" => {
            if addr.is_empty() {
                return Err(invalid(Backend::MySql, "unix(...) needs a socket path"));
            }
            parts.socket = Some(addr.to_owned());
        }
        other => {
            let expected = if unseparated { "user:pass@tcp(host:port)/db" } else { "tcp or unix" };
            return Err(invalid(Backend::MySql, format!("unknown network{}: expected {expected}", net_named(other))));
        }
    }
    Ok(parts)
}

fn split_host_port(backend: Backend, addr: &str) -> Result<(String, Option<u16>), DsnError> {
    // Bracketed IPv6 literal: [::1]:3306
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| invalid(backend, "IPv6 address is missing its closing ']'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(backend, p)?),
            None if after.is_empty() => None,
            None => return Err(invalid(backend, format!("unexpected {after:?} after the IPv6 address"))),
        };
        return Ok((host.to_owned(), port));
    }
    match addr.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_owned(), Some(parse_port(backend, port)?))),
        None => Ok((addr.to_owned(), None)),
    }
}

fn parse_port(backend: Backend, port: &str) -> Result<u16, DsnError> {
    port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| invalid(backend, format!("invalid port {port:?}")))
}

fn parse_mysql_url(dsn: &str) -> Result<MySqlParts, DsnError> {
    let url = url::Url::parse(dsn).map_err(|e| invalid(Backend::MySql, format!("not a valid URL ({e})")))?;
    let decode = |s: &str, what: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| invalid(Backend::MySql, format!("the {what} is not valid UTF-8")))
    };
    Ok(MySqlParts {
        user: decode(url.username(), "user name")?,
        password: url.password().filter(|p| !p.is_empty()).map(|p| decode(p, "password")).transpose()?,
        host: url.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()),
        port: url.port(),
        others: Vec::new(),
        socket: None,
        database: decode(url.path().trim_start_matches('/'), "database name")?,
        params: url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
    })
}

fn parse_postgres_hosts(dsn: &str, tls: &TlsConfig) -> Result<Hosts<PgConnectOptions>, DsnError> {
    let lower = dsn.to_ascii_lowercase();
    let (each, read_write) = if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        let mut read_write = false;
        let mut each = Vec::new();
        for one in url_per_host(Backend::Postgres, dsn)? {
            let mut url = url::Url::parse(&one).map_err(|e| invalid(Backend::Postgres, format!("not a valid URL ({e})")))?;
            let mut pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            if let Some(i) = pairs.iter().position(|(k, _)| k == "target_session_attrs") {
                read_write = target_session_attrs(&pairs.remove(i).1)?;
                url.query_pairs_mut().clear().extend_pairs(&pairs);
            }
            if url.query() == Some("") {
                url.set_query(None);
            }
            let options = PgConnectOptions::from_str(url.as_str())
                .map_err(|e| invalid(Backend::Postgres, scrub(&e.to_string(), url.password())))?;
            each.push(options);
        }
        (each, read_write)
    } else {
        postgres_from_keywords(&parse_keyword_values(dsn)?)?
    };
    let each = each.into_iter().map(|o| postgres_tls(o, tls)).collect();
    Ok(Hosts { each, read_write, pooler: Pooler::None })
}

/// libpq's `target_session_attrs`: whether only a host accepting writes will do.
fn target_session_attrs(value: &str) -> Result<bool, DsnError> {
    match value {
        "any" => Ok(false),
        "read-write" | "primary" => Ok(true),
        other => Err(invalid(Backend::Postgres, format!("target_session_attrs {other:?}: expected any, read-write or primary"))),
    }
}

#[cfg(test)]
fn parse_postgres(dsn: &str, tls: &TlsConfig) -> Result<PgConnectOptions, DsnError> {
    parse_postgres_hosts(dsn, tls).map(|h| h.each[0].clone())
}

fn postgres_tls(mut options: PgConnectOptions, tls: &TlsConfig) -> PgConnectOptions {
    if let Some(verification) = tls.verification() {
        options = options.ssl_mode(match verification {
            Verification::Full => PgSslMode::VerifyFull,
            Verification::Chain => PgSslMode::VerifyCa,
            Verification::None => PgSslMode::Require,
        });
        if let Some(root) = tls.root_cert.as_ref().or(tls.ca.as_ref()) {
            options = options.ssl_root_cert(root);
        }
        if let Some(cert) = &tls.cert {
            options = options.ssl_client_cert(cert);
        }
        if let Some(key) = &tls.key {
            options = options.ssl_client_key(key);
        }
    }
    options
}

/// Removes a password from a driver message, in case the driver quoted its input.
fn scrub(message: &str, password: Option<&str>) -> String {
    match password.filter(|p| !p.is_empty()) {
        Some(p) => message.replace(p, "***"),
        None => message.to_owned(),
    }
}

/// How an error names a keyword: after the password, a "keyword" may be the rest of a password
/// that holds a space and lacks its quotes, so it is never quoted there.
fn keyword_named(key: &str, after_password: bool) -> String {
    if after_password {
        "after the password".to_owned()
    } else {
        format!("{key:?}")
    }
}

/// libpq's `key=value key='quoted value'` connection string, in order.
fn parse_keyword_values(dsn: &str) -> Result<Vec<(String, String)>, DsnError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        let after_password = out.iter().any(|(k, _)| k == "password");
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(invalid(
                Backend::Postgres,
                format!("expected '=' after keyword {}", keyword_named(&key, after_password)),
            ));
        }
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid(Backend::Postgres, format!("invalid keyword {}", keyword_named(&key, after_password))));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        let key = keyword_named(&key, after_password);
                        return Err(invalid(Backend::Postgres, format!("unterminated quoted value for {key}")));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// The options of each host a libpq keyword string names (`host=a,b port=5432,5433`: one
/// port for all, or one per host), and whether only a writable one will do.
fn postgres_from_keywords(kv: &[(String, String)]) -> Result<(Vec<PgConnectOptions>, bool), DsnError> {
    let mut options = PgConnectOptions::new_without_pgpass();
    let (mut hosts, mut ports, mut read_write) = (Vec::new(), Vec::new(), false);
    for (i, (key, value)) in kv.iter().enumerate() {
        options = match key.as_str() {
            "host" | "hostaddr" => {
                hosts = value.split(',').map(str::to_owned).collect();
                options
            }
            "port" => {
                ports = value.split(',').map(|p| parse_port(Backend::Postgres, p)).collect::<Result<_, _>>()?;
                options
            }
            "target_session_attrs" => {
                read_write = target_session_attrs(value)?;
                options
            }
            "dbname" => options.database(value),
            "user" => options.username(value),
            "password" => options.password(value),
            "sslmode" => options.ssl_mode(PgSslMode::from_str(value).map_err(|_| {
                invalid(
                    Backend::Postgres,
                    format!("sslmode {value:?}: expected disable, allow, prefer, require, verify-ca or verify-full"),
                )
            })?),
            "sslrootcert" => options.ssl_root_cert(value),
            "sslcert" => options.ssl_client_cert(value),
            "sslkey" => options.ssl_client_key(value),
            "application_name" => options.application_name(value),
            "options" => options.options(parse_pg_options(value)?),
            "connect_timeout" | "search_path" | "TimeZone" | "timezone" => options,
            other => {
                let after_password = kv[..i].iter().any(|(k, _)| k == "password");
                return Err(invalid(Backend::Postgres, format!("unknown keyword {}", keyword_named(other, after_password))));
            }
        };
    }
    if ports.len() > 1 && ports.len() != hosts.len().max(1) {
        return Err(invalid(
            Backend::Postgres,
            format!("{} hosts but {} ports: give one port, or one per host", hosts.len(), ports.len()),
        ));
    }
    if hosts.iter().any(String::is_empty) && hosts.len() > 1 {
        return Err(invalid(Backend::Postgres, "an empty entry in the list of hosts"));
    }
    if hosts.is_empty() {
        hosts.push(String::new());
    }
    let each = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let mut one = options.clone();
            if host.starts_with('/') {
                one = one.socket(host);
            } else if !host.is_empty() {
                one = one.host(host);
            }
            match if ports.len() == 1 { ports.first() } else { ports.get(i) } {
                Some(port) => one.port(*port),
                None => one,
            }
        })
        .collect();
    Ok((each, read_write))
}

/// libpq's `options` keyword: `-c name=value` settings sent at connect time.
fn parse_pg_options(value: &str) -> Result<Vec<(String, String)>, DsnError> {
    let mut settings = Vec::new();
    let mut words = value.split_whitespace();
    while let Some(word) = words.next() {
        let setting = match word.strip_prefix("-c") {
            Some("") => words.next().unwrap_or_default(),
            Some(inline) => inline,
            None => return Err(invalid(Backend::Postgres, format!("options: expected -c name=value, found {word:?}"))),
        };
        let (name, val) = setting
            .split_once('=')
            .ok_or_else(|| invalid(Backend::Postgres, format!("options: expected name=value after -c, found {setting:?}")))?;
        settings.push((name.to_owned(), val.to_owned()));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_tls() -> TlsConfig {
        TlsConfig::default()
    }

    #[test]
    fn defaults_to_an_sqlite_file_in_the_working_directory() {
        let target = resolve(None, None, &no_tls()).unwrap();
        let ConnectTarget::Sqlite(o) = target else { panic!("expected sqlite") };
        assert_eq!(o.get_filename(), std::path::Path::new(DEFAULT_SQLITE_FILE));
    }

    #[test]
    fn go_mysql_dsn_as_upstream_documents_it() {
        let p = parse_go_mysql_dsn("root:s3cr@t@tcp(db.example:3307)/model_registry?charset=utf8mb4&parseTime=True&loc=Local")
            .unwrap();
        assert_eq!(p.user, "root");
        assert_eq!(p.password.as_deref(), Some("s3cr@t"));
        assert_eq!(p.host.as_deref(), Some("db.example"));
        assert_eq!(p.port, Some(3307));
        assert_eq!(p.database, "model_registry");
        assert!(p.params.contains(&("parseTime".into(), "True".into())));
    }

    #[test]
    fn go_mysql_dsn_variants() {
        let p = parse_go_mysql_dsn("user@unix(/var/run/mysqld.sock)/db").unwrap();
        assert_eq!(p.socket.as_deref(), Some("/var/run/mysqld.sock"));
        assert_eq!(p.password, None);
        let p = parse_go_mysql_dsn("root:@tcp(127.0.0.1:3306)/db").unwrap();
        assert_eq!((p.user.as_str(), p.password), ("root", None));
        let p = parse_go_mysql_dsn("/db").unwrap();
        assert_eq!((p.user.as_str(), p.host, p.database.as_str()), ("", None, "db"));
        let p = parse_go_mysql_dsn("u:p@tcp([::1]:3306)/db").unwrap();
        assert_eq!((p.host.as_deref(), p.port), (Some("::1"), Some(3306)));
        let p = parse_go_mysql_dsn("u:p@tcp(localhost)/db").unwrap();
        assert_eq!((p.host.as_deref(), p.port), (Some("localhost"), None));
        let o = parse_mysql("u:p@tcp(h:1)/db?tls=skip-verify", &no_tls()).unwrap();
        assert!(matches!(o.get_ssl_mode(), MySqlSslMode::Required));
    }

    #[test]
    fn mysql_url() {
        let o = parse_mysql("mysql://root:p%40ss@127.0.0.1:3306/test", &no_tls()).unwrap();
        assert_eq!((o.get_host(), o.get_port(), o.get_username()), ("127.0.0.1", 3306, "root"));
        assert_eq!(o.get_database(), Some("test"));
    }

    fn mysql_error(dsn: &str) -> String {
        parse_mysql(dsn, &no_tls()).unwrap_err().to_string()
    }

    #[test]
    fn malformed_mysql_dsns_name_the_bad_part_and_hide_the_password() {
        let cases = [
            ("root:hunter2@tcp(localhost:3306)", "missing '/' before the database name"),
            ("root:hunter2@tcp(localhost:3306/db", "missing its closing ')'"),
            ("root:hunter2@tcp(localhost:99999)/db", "invalid port \"99999\""),
            ("root:hunter2@tcp(localhost:abc)/db", "invalid port \"abc\""),
            ("root:hunter2@udp(localhost:3306)/db", "unknown network: expected tcp or unix"),
            ("root@udp(localhost:3306)/db", "unknown network \"udp\""),
            ("root:hunter2@tcp(localhost:3306)/", "no database name"),
            ("root:hunter2@tcp(h:1)/db?tls=maybe", "tls=\"maybe\""),
            ("mysql://root:hunter2@localhost:xx/db", "not a valid URL"),
        ];
        for (dsn, expected) in cases {
            let message = mysql_error(dsn);
            assert!(message.contains(expected), "{dsn}: {message}");
            assert!(!message.contains("hunter2"), "{dsn} leaked the password: {message}");
        }
    }

    #[test]
    fn postgres_url_and_keyword_forms() {
        let o = parse_postgres("postgres://root@127.0.0.1:5432/test?sslmode=disable", &no_tls()).unwrap();
        assert_eq!((o.get_host(), o.get_port(), o.get_database()), ("127.0.0.1", 5432, Some("test")));
        let o =
            parse_postgres("host=db port=5433 user=mr password='p w' dbname=model_registry sslmode=require", &no_tls()).unwrap();
        assert_eq!((o.get_host(), o.get_port(), o.get_username()), ("db", 5433, "mr"));
        assert_eq!(o.get_database(), Some("model_registry"));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Require));
    }

    #[test]
    fn malformed_postgres_dsns() {
        let cases = [
            ("host=db port=0 password=hunter2", "invalid port \"0\""),
            ("host=db sslmode=sometimes password=hunter2", "sslmode \"sometimes\""),
            ("host=db password='hunter2", "unterminated quoted value for \"password\""),
            ("host=db frobnicate=1 password=hunter2", "unknown keyword \"frobnicate\""),
            ("postgres://u:hunter2@host:70000/db", "not a valid URL"),
        ];
        for (dsn, expected) in cases {
            let message = parse_postgres(dsn, &no_tls()).unwrap_err().to_string();
            assert!(message.contains(expected), "{dsn}: {message}");
            assert!(!message.contains("hunter2"), "{dsn} leaked the password: {message}");
        }
    }

    /// Passwords holding each printable special character (and a space), in every malformed
    /// form: an error may name the bad part, never any piece of the password.
    #[test]
    fn no_error_quotes_any_piece_of_the_password() {
        let specials = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
        let templates = [
            "root:{pw}@tcp(localhost:3306)",
            "root:{pw}@tcp(localhost:3306/db",
            "root:{pw}@tcp(localhost:99999)/db",
            "root:{pw}@udp(localhost:3306)/db",
            "root:{pw}@tcp(h:1)/",
            "root:{pw}@tcp(h:1)/db?tls=maybe",
            "root:{pw}tcp(h:1)/db",
            "root:{pw}(h:1)/db",
            "root:{pw}/db",
            "mysql://root:{pw}@localhost:xx/db",
            "mysql://root:{pw}@localhost/db?tls=maybe",
            "postgres://u:{pw}@host:70000/db",
            "postgres://u:{pw}@host/db?sslmode=sometimes",
            "host=db password={pw} port=0",
            "host=db password={pw} frobnicate=1",
            "host=db password={pw} sslmode=sometimes",
            "host=db password='{pw}",
            "password={pw}",
        ];
        let mut errors = 0;
        for c in specials.chars() {
            let password = format!("hun{c}ter2");
            for template in templates {
                let dsn = template.replace("{pw}", &password);
                let backend = if template.starts_with("postgres") || template.contains('=') && !template.contains('@') {
                    Backend::Postgres
                } else {
                    Backend::MySql
                };
                if let Err(e) = resolve(Some(backend), Some(&dsn), &no_tls()) {
                    errors += 1;
                    let message = e.to_string();
                    assert!(!message.contains("hun") && !message.contains("ter2"), "{dsn} leaked the password: {message}");
                }
            }
        }
        // Nearly every combination is malformed; the check above ran on each of those.
        assert!(errors > specials.chars().count() * (templates.len() - 2), "{errors} errors");
    }

    #[test]
    fn sqlite_forms() {
        for dsn in ["/tmp/x.db", "file:/tmp/x.db", "sqlite:/tmp/x.db", "sqlite:///tmp/x.db", "file:///tmp/x.db?cache=shared"] {
            let o = parse_sqlite(dsn).unwrap();
            assert_eq!(o.get_filename(), std::path::Path::new("/tmp/x.db"), "{dsn}");
        }
        assert_eq!(parse_sqlite("sqlite:relative.db").unwrap().get_filename(), std::path::Path::new("relative.db"));
        assert!(parse_sqlite("sqlite::memory:").unwrap_err().to_string().contains("file path is required"));
        assert!(parse_sqlite("x.db?mode=rx").unwrap_err().to_string().contains("mode \"rx\""));
    }

    #[test]
    fn inference_from_the_dsn_alone() {
        let cases = [
            ("root@tcp(localhost:3306)/db", Some(Backend::MySql)),
            ("mysql://root@localhost/db", Some(Backend::MySql)),
            ("postgresql://root@localhost/db", Some(Backend::Postgres)),
            ("host=localhost dbname=db", Some(Backend::Postgres)),
            ("sqlite:registry.db", Some(Backend::Sqlite)),
            ("data/registry.sqlite", Some(Backend::Sqlite)),
            ("somewhere", None),
        ];
        for (dsn, expected) in cases {
            assert_eq!(infer_backend(dsn), expected, "{dsn}");
        }
        assert_eq!(resolve(None, Some("somewhere"), &no_tls()).unwrap_err(), DsnError::Ambiguous);
        assert_eq!(resolve(Some(Backend::MySql), None, &no_tls()).unwrap_err(), DsnError::Missing(Backend::MySql));
        assert_eq!(
            Backend::from_str("oracle").unwrap_err().to_string(),
            "unknown database type \"oracle\": expected one of sqlite, mysql, postgres"
        );
    }

    #[test]
    fn tls_flags_select_a_verifying_mode() {
        let tls = TlsConfig { ca: Some("/ca.pem".into()), ..TlsConfig::default() };
        let o = parse_mysql("u@tcp(h:1)/db", &tls).unwrap();
        assert!(matches!(o.get_ssl_mode(), MySqlSslMode::VerifyCa));
        let tls = TlsConfig { root_cert: Some("/ca.pem".into()), verify_server_cert: true, ..TlsConfig::default() };
        let o = parse_postgres("postgres://u@h/db", &tls).unwrap();
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
    }

    fn hosts(target: &ConnectTarget) -> (Vec<String>, bool) {
        let read_write = match target {
            ConnectTarget::MySql(h) => h.read_write,
            ConnectTarget::Postgres(h) => h.read_write,
            ConnectTarget::Sqlite(_) => false,
        };
        (target.host_names(), read_write)
    }

    #[test]
    fn several_hosts_in_every_form() {
        let go = resolve(None, Some("root:pw@tcp(g1:3311,g2:3312,g3)/db"), &no_tls()).unwrap();
        assert_eq!(hosts(&go), (vec!["g1:3311".into(), "g2:3312".into(), "g3:3306".into()], true));
        let ConnectTarget::MySql(h) = &go else { panic!("mysql") };
        assert!(h.each.iter().all(|o| o.get_database() == Some("db") && o.get_username() == "root"));
        let url = resolve(None, Some("mysql://root:p%40ss@g1:3311,g2:3312/db"), &no_tls()).unwrap();
        assert_eq!(hosts(&url).0, ["g1:3311", "g2:3312"]);
        let kv = "host=p1,p2 port=5433,5434 dbname=db user=u target_session_attrs=read-write";
        assert_eq!(hosts(&resolve(None, Some(kv), &no_tls()).unwrap()), (vec!["p1:5433".into(), "p2:5434".into()], true));
        let one_port = resolve(None, Some("host=p1,p2 port=5433 dbname=db"), &no_tls()).unwrap();
        assert_eq!(hosts(&one_port), (vec!["p1:5433".into(), "p2:5433".into()], false));
        let pg_url = "postgres://u:pw@p1:5433,p2:5434/db?target_session_attrs=read-write&sslmode=disable";
        let target = resolve(None, Some(pg_url), &no_tls()).unwrap();
        assert_eq!(hosts(&target), (vec!["p1:5433".into(), "p2:5434".into()], true));
        let ConnectTarget::Postgres(h) = &target else { panic!("postgres") };
        assert!(h.each.iter().all(|o| o.get_database() == Some("db") && matches!(o.get_ssl_mode(), PgSslMode::Disable)));
        assert_eq!(target.describe(), "postgres database \"db\" at p1:5433,p2:5434");
        let single = resolve(None, Some("postgres://u@p1:5433/db"), &no_tls()).unwrap();
        assert_eq!(hosts(&single), (vec!["p1:5433".into()], false));
    }

    #[test]
    fn malformed_host_lists() {
        let cases = [
            ("host=a,b,c port=1,2 password=hunter2", "3 hosts but 2 ports"),
            ("host=a port=1,2", "1 hosts but 2 ports"),
            ("host=a target_session_attrs=standby", "target_session_attrs \"standby\""),
            ("postgres://u:hunter2@a:1,,b:2/db", "an empty entry"),
            ("root:hunter2@tcp(a:1,)/db", "an empty entry"),
            ("mysql://root:hunter2@a:1,b:x/db", "not a valid URL"),
        ];
        for (dsn, expected) in cases {
            let message = resolve(None, Some(dsn), &no_tls()).unwrap_err().to_string();
            assert!(message.contains(expected), "{dsn}: {message}");
            assert!(!message.contains("hunter2"), "{dsn} leaked the password: {message}");
        }
        let mysql = resolve(None, Some("root@tcp(a:1)/db"), &no_tls()).unwrap();
        assert!(mysql.with_pooler(Pooler::Transaction).is_err(), "a transaction pooler is for PostgreSQL");
        assert_eq!("transaction".parse(), Ok(Pooler::Transaction));
        assert!("statement".parse::<Pooler>().is_err());
    }

    #[test]
    fn descriptions_never_carry_credentials() {
        let t = resolve(Some(Backend::MySql), Some("root:hunter2@tcp(h:3306)/db"), &no_tls()).unwrap();
        assert_eq!(t.describe(), "mysql database \"db\" at h:3306");
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
