//! Test support for model-registry-rs.
//!
//! - [`TestDb`]: a fresh, uniquely named, empty database per test on SQLite, MySQL/MariaDB or
//!   PostgreSQL, dropped when the value is dropped.
//! - [`schema_dump`] / [`schema_dump_excluding`]: a normalized dump of a live database in the
//!   format of the reference dumps (`shared/reference/schemas/*.txt`, copies in
//!   `crates/testkit/reference/`), see [`reference_schema`].
//! - [`mlmd`] / [`mlmd_ok`] / [`mlmd_err`] (and `_async` variants, and [`TestDb::mlmd`]...): run
//!   the MLMD oracle `e2e/mlmd_oracle.py` (real ml-metadata 1.17.1) in the project venv made by
//!   `scripts/test-env.sh`.
//!
//! Environment:
//! - `MR_TEST_MYSQL_DSN` (default `mysql://root@127.0.0.1:3306/test`) and
//!   `MR_TEST_POSTGRES_DSN` (default `postgres://root@127.0.0.1:5432/test`): admin connections
//!   used to create and drop the per-test databases. An unreachable server makes
//!   [`TestDb::new`] panic (tests never skip).
//! - `MR_TEST_POSTGRES_POOLER_DSN` (e.g. `postgres://root@127.0.0.1:6433/test`): a transaction
//!   pooler (PgBouncer) in front of that PostgreSQL. When set, [`TestDb::app_url`] goes through
//!   it and [`TestDb::behind_pooler`] says so: the server under test then runs in its
//!   transaction-pooler mode, while the test's own checks keep the direct [`TestDb::url`].
//! - `MR_TEST_KEEP_DB=1`: keep every database (and SQLite file) for debugging; the location is
//!   printed on stderr.
//! - `MR_TEST_VENV`: the venv holding ml-metadata (default `<workspace>/.venv`).

use std::fmt;
use std::path::{Path, PathBuf};

use sqlx::Connection;

mod dump;
mod oracle;

pub use dump::{
    assert_dump_eq, dump_diff, execute_sql, query_text, reference_schema, reference_schema_path, schema_dump,
    schema_dump_excluding, strip_dump_header, try_schema_dump,
};
pub use oracle::{mlmd, mlmd_async, mlmd_err, mlmd_err_async, mlmd_ok, mlmd_ok_async, oracle_script, venv_python};

/// The backends are embedmd's own.
pub use embedmd::Backend;

/// The admin DSN used to create/drop test databases (`None` for SQLite): the value of
/// `MR_TEST_MYSQL_DSN` / `MR_TEST_POSTGRES_DSN`, or the local default.
pub fn admin_dsn(backend: Backend) -> Option<String> {
    let (var, default) = match backend {
        Backend::Sqlite => return None,
        Backend::MySql => ("MR_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test"),
        Backend::Postgres => ("MR_TEST_POSTGRES_DSN", "postgres://root@127.0.0.1:5432/test"),
    };
    Some(std::env::var(var).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string()))
}

fn pooler_dsn() -> Option<String> {
    std::env::var("MR_TEST_POSTGRES_POOLER_DSN").ok().filter(|v| !v.trim().is_empty())
}

/// Generates one `#[tokio::test]` per backend (modules `sqlite`, `mysql`, `postgres`) for each
/// scenario `async fn name(backend: Backend)` in scope.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name($crate::Backend::Sqlite).await } )* }
        mod mysql { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name($crate::Backend::MySql).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name($crate::Backend::Postgres).await } )* }
    };
}

/// The workspace root (`crates/testkit/../..`).
pub fn workspace_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

fn keep_requested() -> bool {
    matches!(std::env::var("MR_TEST_KEEP_DB").as_deref().map(str::trim), Ok("1") | Ok("true") | Ok("yes"))
}

/// A fresh, empty, uniquely named database for one test.
///
/// MySQL/PostgreSQL: `CREATE DATABASE mrt_<12 hex>` through the admin DSN, dropped on `Drop`
/// (`DROP DATABASE IF EXISTS`, PostgreSQL `WITH (FORCE)`). SQLite: an empty file
/// `mrt_<id>.db` in a fresh directory under the system temp dir, removed on `Drop`.
/// `Drop` works inside or outside a tokio runtime (it runs on its own thread).
pub struct TestDb {
    backend: Backend,
    name: String,
    url: String,
    admin_dsn: Option<String>,
    dir: Option<PathBuf>,
    keep: bool,
}

impl fmt::Debug for TestDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDb").field("backend", &self.backend).field("url", &self.url).field("keep", &self.keep).finish()
    }
}

impl TestDb {
    /// Create a fresh database. Panics (naming the DSN) if the server is unreachable or the
    /// database cannot be created.
    pub async fn new(backend: Backend) -> TestDb {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("mrt_{}", &id[..12]);
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("testkit: cannot create {}: {e}", dir.display()));
                let file = dir.join(format!("{name}.db"));
                // An empty file is a valid empty SQLite database; creating it lets plain
                // `sqlite://<path>` URLs open it without `mode=rwc`.
                std::fs::File::create(&file).unwrap_or_else(|e| panic!("testkit: cannot create {}: {e}", file.display()));
                let path = file.to_string_lossy().into_owned();
                TestDb {
                    backend,
                    url: format!("sqlite://{path}"),
                    name: path,
                    admin_dsn: None,
                    dir: Some(dir),
                    keep: keep_requested(),
                }
            }
            Backend::MySql | Backend::Postgres => {
                let admin = admin_dsn(backend).expect("server backend");
                let url = derive_url(&admin, &name);
                let sql = format!("CREATE DATABASE {name}");
                let res = match backend {
                    Backend::MySql => match sqlx::MySqlConnection::connect(&admin).await {
                        Ok(mut c) => {
                            let r = sqlx::raw_sql(&sql).execute(&mut c).await.map(|_| ());
                            let _ = c.close().await;
                            r
                        }
                        Err(e) => panic!(
                            "testkit: cannot connect to MySQL/MariaDB admin DSN {admin} \
                             (set MR_TEST_MYSQL_DSN; is the server running?): {e}"
                        ),
                    },
                    _ => match sqlx::PgConnection::connect(&admin).await {
                        Ok(mut c) => {
                            let r = sqlx::raw_sql(&sql).execute(&mut c).await.map(|_| ());
                            let _ = c.close().await;
                            r
                        }
                        Err(e) => panic!(
                            "testkit: cannot connect to PostgreSQL admin DSN {admin} \
                             (set MR_TEST_POSTGRES_DSN; is the server running?): {e}"
                        ),
                    },
                };
                if let Err(e) = res {
                    panic!("testkit: `{sql}` failed on {admin}: {e}");
                }
                TestDb { backend, name, url, admin_dsn: Some(admin), dir: None, keep: keep_requested() }
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A sqlx-style URL for this database: `sqlite:///tmp/mrt_x/mrt_x.db`,
    /// `mysql://root@127.0.0.1:3306/mrt_x`, `postgres://root@127.0.0.1:5432/mrt_x` (user,
    /// password, host, port and query string taken from the admin DSN).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL the server under test is given: [`TestDb::url`], or through the transaction
    /// pooler `MR_TEST_POSTGRES_POOLER_DSN` names for PostgreSQL.
    pub fn app_url(&self) -> String {
        match pooler_dsn().filter(|_| self.backend == Backend::Postgres) {
            Some(pooler) => derive_url(&pooler, &self.name),
            None => self.url.clone(),
        }
    }

    /// Whether [`TestDb::app_url`] leads through a transaction pooler.
    pub fn behind_pooler(&self) -> bool {
        self.backend == Backend::Postgres && pooler_dsn().is_some()
    }

    /// The database name (MySQL/PostgreSQL) or the absolute file path (SQLite).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Go (go-sql-driver/mysql) DSN of this database, as upstream's server takes it:
    /// `root:@tcp(127.0.0.1:3306)/mrt_x?charset=utf8mb4&parseTime=True&loc=Local`.
    /// Panics for other backends.
    pub fn go_mysql_dsn(&self) -> String {
        assert_eq!(self.backend, Backend::MySql, "go_mysql_dsn() is for MySQL TestDbs only");
        let u = url::Url::parse(&self.url).expect("valid MySQL URL");
        let dec = percent_decode;
        let host = u.host_str().unwrap_or("127.0.0.1");
        let port = u.port().unwrap_or(3306);
        format!(
            "{}:{}@tcp({}:{})/{}?charset=utf8mb4&parseTime=True&loc=Local",
            dec(u.username()),
            dec(u.password().unwrap_or("")),
            host,
            port,
            self.name
        )
    }

    /// Do not drop this database (or delete the SQLite file) when the value is dropped; its
    /// location is printed on stderr at that point. `MR_TEST_KEEP_DB=1` does this for all.
    pub fn keep(mut self) -> TestDb {
        self.keep = true;
        self
    }

    /// Run the MLMD oracle against this database: `mlmd(["--db", url, args...])`.
    /// Blocking; in async code prefer [`TestDb::mlmd_async`].
    pub fn mlmd(&self, args: &[&str]) -> std::process::Output {
        mlmd(&self.oracle_args(args))
    }

    /// [`TestDb::mlmd`], panicking (with stderr) unless it exits 0; returns stdout.
    pub fn mlmd_ok(&self, args: &[&str]) -> String {
        mlmd_ok(&self.oracle_args(args))
    }

    /// [`TestDb::mlmd`], panicking if it exits 0; returns stderr (for asserting on MLMD errors).
    pub fn mlmd_err(&self, args: &[&str]) -> String {
        mlmd_err(&self.oracle_args(args))
    }

    pub async fn mlmd_async(&self, args: &[&str]) -> std::process::Output {
        mlmd_async(&self.oracle_args(args)).await
    }

    pub async fn mlmd_ok_async(&self, args: &[&str]) -> String {
        mlmd_ok_async(&self.oracle_args(args)).await
    }

    pub async fn mlmd_err_async(&self, args: &[&str]) -> String {
        mlmd_err_async(&self.oracle_args(args)).await
    }

    fn oracle_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--db", self.url.as_str()];
        v.extend_from_slice(args);
        v
    }

    /// Run SQL on this database (see [`execute_sql`]).
    pub async fn execute(&self, sql: &str) {
        execute_sql(&self.url, sql).await
    }

    /// Rows of a query on this database, every value as text (see [`query_text`]).
    pub async fn query_text(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        query_text(&self.url, sql).await
    }

    /// [`schema_dump`] of this database.
    pub async fn schema_dump(&self) -> String {
        schema_dump(&self.url).await
    }

    /// [`schema_dump_excluding`] of this database.
    pub async fn schema_dump_excluding(&self, exclude: &[&str]) -> String {
        schema_dump_excluding(&self.url, exclude).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("testkit: keeping {} database {} ({})", self.backend, self.name, self.url);
            return;
        }
        match self.backend {
            Backend::Sqlite => {
                if let Some(dir) = &self.dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
            Backend::MySql | Backend::Postgres => {
                let backend = self.backend;
                let admin = self.admin_dsn.clone().expect("admin dsn");
                let name = self.name.clone();
                let handle = std::thread::Builder::new().name(format!("testkit-drop-{name}")).spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
                    rt.block_on(drop_database(backend, &admin, &name))
                });
                let res = match handle {
                    Ok(h) => h.join().unwrap_or_else(|_| Err("drop thread panicked".into())),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = res {
                    eprintln!("testkit: WARNING: could not drop {backend} database {}: {e}", self.name);
                }
            }
        }
    }
}

async fn drop_database(backend: Backend, admin: &str, name: &str) -> Result<(), String> {
    match backend {
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(admin).await.map_err(|e| e.to_string())?;
            // Do not hang forever behind a leaked transaction's metadata lock.
            sqlx::raw_sql("SET SESSION lock_wait_timeout = 30").execute(&mut c).await.map_err(|e| e.to_string())?;
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{name}`")).execute(&mut c).await.map_err(|e| e.to_string())?;
            let _ = c.close().await;
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(admin).await.map_err(|e| e.to_string())?;
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            let _ = c.close().await;
        }
        Backend::Sqlite => {}
    }
    Ok(())
}

/// The admin DSN with its database (path) replaced by `name`.
fn derive_url(admin: &str, name: &str) -> String {
    match url::Url::parse(admin) {
        Ok(mut u) => {
            u.set_path(&format!("/{name}"));
            u.to_string()
        }
        Err(e) => panic!("testkit: cannot parse admin DSN {admin}: {e}"),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_url_keeps_credentials_and_query() {
        assert_eq!(derive_url("mysql://root@127.0.0.1:3306/test", "mrt_x"), "mysql://root@127.0.0.1:3306/mrt_x");
        assert_eq!(
            derive_url("postgres://u:p%40ss@db:5433/test?sslmode=disable", "mrt_y"),
            "postgres://u:p%40ss@db:5433/mrt_y?sslmode=disable"
        );
        assert_eq!(percent_decode("p%40ss"), "p@ss");
        assert_eq!(percent_decode("abc%"), "abc%");
    }
}
