//! The real `model-registry proxy` binary as a child process on a free port, its log in a file.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use testkit::{Backend, TestDb};

pub const BIN: &str = env!("CARGO_BIN_EXE_model-registry");
pub const API: &str = "/api/model_registry/v1alpha3";

/// A port free right now; another process may take it before it is bound, so a server started
/// on it is checked to listen there itself ([`Server::spawn_listening`]).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Ports tried before a test gives up on starting its server.
const PORT_ATTEMPTS: usize = 5;

/// The inodes of the sockets listening on `port` on 127.0.0.1 or any address (`/proc/net/tcp`).
fn listening_inodes(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            // sl, local address:port (hex), remote, state (0A: LISTEN), ..., inode (10th).
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(fields.get(1)?.rsplit_once(':')?.1, 16).ok()?;
            let listening = local_port == port && *fields.get(3)? == "0A";
            listening.then(|| fields.get(9).map(|inode| inode.to_string()))?
        })
        .collect()
}

/// Whether process `pid` itself holds a socket listening on `port`.
fn listens_on(pid: u32, port: u16) -> bool {
    let inodes = listening_inodes(port);
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .any(|target| inodes.iter().any(|inode| target.to_string_lossy() == format!("socket:[{inode}]")))
}

/// The flags an operator would pass; MySQL in the Go driver's DSN form, as upstream documents.
pub fn database_flags(db: &TestDb) -> Vec<String> {
    let dsn = match db.backend() {
        Backend::MySql => db.go_mysql_dsn(),
        _ => db.app_url(),
    };
    let mut flags = vec!["--embedmd-database-type".into(), db.backend().name().into(), "--embedmd-database-dsn".into(), dsn];
    if db.behind_pooler() {
        flags.extend(["--embedmd-database-pooler".into(), "transaction".into()]);
    }
    flags
}

pub struct Server {
    pub child: Child,
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub http: reqwest::Client,
    log: tempfile::NamedTempFile,
    /// The working directory the server was given, if it has its own.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start(args: &[String]) -> Server {
        Server::start_in(args, None)
    }

    /// Started in `cwd` (where the default SQLite file goes).
    pub fn start_in(args: &[String], cwd: Option<&Path>) -> Server {
        Server::spawn_listening(None, |port, log| {
            let mut command = Command::new(BIN);
            command
                .arg("proxy")
                .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
                .args(args)
                .env("HOME", "/nonexistent")
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log.reopen().unwrap());
            if let Some(cwd) = cwd {
                command.current_dir(cwd);
            }
            command
        })
    }

    /// Spawns the command `make` builds for a free port until the child itself listens there:
    /// a port another process took between [`free_port`] and the child's bind makes the child
    /// exit, and the next port is tried, so a test never talks to another test's server.
    fn spawn_listening(dir: Option<tempfile::TempDir>, make: impl Fn(u16, &tempfile::NamedTempFile) -> Command) -> Server {
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let log = tempfile::NamedTempFile::new().unwrap();
            let child = make(port, &log).spawn().expect("the binary starts");
            let mut server =
                Server { child, port, base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new(), log, _dir: None };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if listens_on(server.child.id(), port) {
                    server._dir = dir;
                    return server;
                }
                if !server.running() {
                    let log = server.log();
                    assert!(log.contains("in use"), "the server exited before listening:\n{log}");
                    break;
                }
                assert!(Instant::now() < deadline, "server never listened on {port}:\n{}", server.log());
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("no free port in {PORT_ATTEMPTS} tries")
    }

    /// Started in a fresh directory of its own (an SQLite file there unless `args` name another
    /// database), logging as its own flags say (no `RUST_LOG`), stdout and stderr both in the
    /// log; returns once it accepts connections, without sending it a request.
    pub async fn start_logging(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().to_owned();
        Server::spawn_listening(Some(dir), |port, log| {
            let mut command = Command::new(BIN);
            command
                .arg("proxy")
                .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
                .args(args)
                .current_dir(&cwd)
                .env("HOME", "/nonexistent")
                .env_remove("RUST_LOG")
                .stdout(log.reopen().unwrap())
                .stderr(log.reopen().unwrap());
            command
        })
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Started on `dsn` with `extra` flags.
    pub fn with_dsn(dsn: &str, extra: &[&str]) -> Server {
        let mut args = vec!["--embedmd-database-dsn".to_owned(), dsn.to_owned()];
        args.extend(extra.iter().map(|a| a.to_string()));
        Server::start(&args)
    }

    /// Started on `dsn` and ready.
    pub async fn ready_with_dsn(dsn: &str, extra: &[&str]) -> Server {
        let server = Server::with_dsn(dsn, extra);
        server.wait_ready(Duration::from_secs(30)).await;
        server
    }

    /// Started on `db` with an operator's flags plus `extra`, and ready.
    pub async fn ready_on(db: &TestDb, extra: &[&str]) -> Server {
        let mut args = database_flags(db);
        args.extend(extra.iter().map(|a| a.to_string()));
        let server = Server::start(&args);
        server.wait_ready(Duration::from_secs(30)).await;
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Polls the log until it contains `needle` (an event the test waits for, rather than a
    /// sleep that a loaded machine outlasts); the log.
    pub async fn wait_log(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "{needle:?} not logged within {within:?}:\n{log}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until the server answers at all (it binds before touching the database).
    pub async fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.http.get(format!("{}/readyz/health", self.base)).send().await.is_err() {
            assert!(Instant::now() < deadline, "server never listened:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls readiness; how long it took.
    pub async fn wait_ready(&self, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.http.get(format!("{}/readyz/health", self.base)).send().await.is_ok_and(|r| r.status() == 200) {
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "server not ready after {within:?}:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A GET of any path; status and text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.http.get(format!("{}{path}", self.base)).send().await.expect("server answers");
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// A request under the v1alpha3 API; status and JSON (text that is not JSON as a string).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        super::send(self.http.request(method, format!("{}{API}{path}", self.base)), body).await
    }

    /// A GET under the API that must answer 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A POST or PATCH under the API that must succeed; returns the body.
    pub async fn write(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, body) = self.call(method.clone(), path, Some(body)).await;
        assert!(status == 200 || status == 201, "{method} {path}: {status} {body}");
        body
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn sigterm(&self) {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// SIGTERM, then the whole log once the process has exited.
    pub fn stop(mut self) -> String {
        self.sigterm();
        self.child.wait().unwrap();
        self.log()
    }

    /// SIGTERM, then the exit status within 10 s.
    pub fn terminate(mut self) -> ExitStatus {
        self.sigterm();
        self.wait_exit(Duration::from_secs(10)).unwrap_or_else(|| panic!("no exit 10 s after SIGTERM:\n{}", self.log()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
