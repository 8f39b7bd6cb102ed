//! What the real binary tells the person who starts it: a port it cannot bind, a config file
//! it cannot read and an SQLite directory it cannot use, each named with what to do; retries
//! while the database is down, logged at a bounded rate; plain-text logs off a terminal.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use model_registry::app::LOGGED_RETRIES;
use testkit::{Backend, TestDb};
use tokio::net::{TcpSocket, TcpStream};

mod support;
use support::server::{Server, BIN};

/// Runs the binary to its exit, which must come within 10 s; returns its output.
fn run_to_exit(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after 10 s: {:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_port_in_use_is_named_with_the_flags_and_variables_that_change_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();

    let out = run_to_exit(&["proxy", "--hostname", "127.0.0.1", "--port", &port]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains(&format!("cannot listen on 127.0.0.1:{port} for the API: Address already in use")), "{text}");
    assert!(text.contains("another process is listening there"), "{text}");
    assert!(text.contains("--port/-p (MR_PORT)") && text.contains("--hostname/-n (MR_HOSTNAME)"), "{text}");

    let out = run_to_exit(&["proxy", "--hostname", "127.0.0.1", "--port", "0", "--metrics-port", &port]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains(&format!("cannot listen on 127.0.0.1:{port} for /metrics")), "{text}");
    assert!(text.contains("--metrics-port (MR_METRICS_PORT)"), "{text}");
}

#[test]
fn an_unreadable_config_file_is_named_with_its_path() {
    let out = run_to_exit(&["proxy", "--config", "/nonexistent/mr.yaml"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("cannot read config file /nonexistent/mr.yaml: No such file or directory"), "{text}");
    assert!(text.contains("--config/-c (MR_CONFIG)"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let out = run_to_exit(&["proxy", "--config", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("cannot read config file {}:", dir.path().display())), "{}", stderr(&out));
}

/// Polls the log until it has `wanted`, within 15 s; the log then.
async fn log_with(log: impl Fn() -> String, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = log();
        if text.contains(wanted) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {wanted:?} in the log:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_missing_sqlite_directory_is_named_in_the_log_but_not_in_answers() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-there");
    let server = Server::with_dsn(&missing.join("registry.db").display().to_string(), &[]);
    server.wait_listening().await;
    let wanted = format!("the SQLite directory {} cannot be used (No such file or directory", missing.display());
    let log = log_with(|| server.log(), &wanted).await;
    assert!(log.contains("create it or choose another file with --embedmd-database-dsn (MR_EMBEDMD_DATABASE_DSN)"), "{log}");
    let (status, body) = server.get_text("/readyz/health").await;
    assert_eq!(status, 503);
    assert!(body.starts_with("database is not ready: database error: see the server log; retrying"), "{body}");
    assert!(!body.contains("not-there"), "{body}");

    // Once the directory exists the same server becomes ready.
    std::fs::create_dir(&missing).unwrap();
    server.wait_ready(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn an_unwritable_sqlite_directory_is_named_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("read-only");
    std::fs::create_dir(&locked).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["proxy", "--hostname", "127.0.0.1", "--port", "0", "--embedmd-database-dsn"])
        .arg(locked.join("registry.db"))
        .current_dir(dir.path())
        .env("HOME", "/nonexistent")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap());
    // A privileged user writes anywhere: the server then runs as nobody.
    if tempfile::tempfile_in(&locked).is_ok() {
        command.uid(65534).gid(65534);
    }
    let mut child = command.spawn().unwrap();
    let text = log_with(|| std::fs::read_to_string(log.path()).unwrap(), "is not writable").await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains(&format!("the SQLite directory {} is not writable (Permission denied", locked.display())), "{text}");
    assert!(text.contains("make it writable for the server's user or choose another file with --embedmd-database-dsn"), "{text}");
    assert_eq!(std::fs::read_dir(&locked).unwrap().count(), 0, "the probe leaves nothing behind");
}

#[test]
fn migrate_names_a_missing_sqlite_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("not-there");
    let dsn = missing.join("registry.db").display().to_string();
    let out = run_to_exit(&["migrate", "up", "--embedmd-database-dsn", &dsn]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains(&format!("the SQLite directory {} cannot be used", missing.display())), "{text}");
    assert!(text.contains("create it or choose another file with --embedmd-database-dsn"), "{text}");
}

#[test]
fn import_names_a_missing_sqlite_directory() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.db").display().to_string();
    let file = dir.path().join("registry.jsonl").display().to_string();
    assert!(run_to_exit(&["migrate", "up", "--embedmd-database-dsn", &source]).status.success());
    let exported = run_to_exit(&["export", "-o", &file, "--embedmd-database-dsn", &source]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let missing = dir.path().join("not-there");
    let dsn = missing.join("registry.db").display().to_string();
    let out = run_to_exit(&["import", "-i", &file, "--embedmd-database-dsn", &dsn]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains(&format!("the SQLite directory {} cannot be used", missing.display())), "{text}");
    assert!(text.contains("create it or choose another file with --embedmd-database-dsn"), "{text}");
}

/// Forwards every connection to `target` (the real database), from the moment it is called.
fn forward(socket: TcpSocket, target: String) {
    let listener = socket.listen(64).unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
}

/// The database is down (its port bound, refusing connections) for at least 5 s and more
/// failed attempts than are logged one by one; then it comes up behind that port.
#[tokio::test(flavor = "multi_thread")]
async fn retries_are_logged_at_a_bounded_rate_while_the_database_is_down() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut url = url::Url::parse(db.url()).unwrap();
    let real = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    // Bound and not listening: connections are refused, and no one else can take the port.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    url.set_port(Some(socket.local_addr().unwrap().port())).unwrap();
    url.set_password(Some("hunter2-pw")).unwrap(); // trust authentication ignores it
    let flags = ["--embedmd-database-dsn".to_owned(), url.to_string()];
    let server = Server::start(&flags);
    server.wait_listening().await;

    let started = Instant::now();
    let mut failed = 0;
    while started.elapsed() < Duration::from_secs(5) || failed <= LOGGED_RETRIES {
        assert!(started.elapsed() < Duration::from_secs(60), "too few retries:\n{}", server.log());
        let (status, body) = server.get_text("/readyz/health").await;
        assert_eq!(status, 503, "{body}");
        if let Some(attempts) = body.strip_prefix("database is not ready: database unreachable; retrying (failed attempts: ") {
            failed = attempts.trim_end_matches(')').parse().unwrap();
        } else {
            assert_eq!(body, "database is not ready: connecting to the database", "before the first attempt fails");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    forward(socket, real);
    server.wait_ready(Duration::from_secs(30)).await;
    let log = server.stop();

    let logged: Vec<&str> = log.lines().filter(|l| l.contains("datastore not ready")).collect();
    assert_eq!(logged.len(), LOGGED_RETRIES as usize, "only the first few attempts have a line each:\n{log}");
    for (i, line) in logged.iter().enumerate() {
        assert!(line.contains(&format!("attempt={}", i + 1)) && line.contains("retry_in="), "{line}");
        assert!(line.contains("error=database"), "{line}");
    }
    assert!(logged[logged.len() - 1].contains("later_retries=logged every 30s, or when the error changes"), "{log}");
    let ready = log.lines().find(|l| l.contains("app: ready ")).unwrap_or_else(|| panic!("no ready line:\n{log}"));
    let failed_total: u32 = ready.split("failed_attempts=").nth(1).unwrap().trim().parse().unwrap();
    assert!(failed_total >= failed && failed_total > LOGGED_RETRIES, "{ready}");
    assert!(!log.contains("hunter2-pw"), "{log}");
}

#[tokio::test]
async fn text_logs_to_a_file_have_no_colour_escapes() {
    let server = Server::start_logging(&["--log-format", "text"]).await;
    server.wait_ready(Duration::from_secs(30)).await;
    let log = server.stop();
    assert!(log.contains("listening") && log.contains("ready"), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");
}

/// On a terminal (a pseudo-terminal from `script`) the same lines keep their colours.
#[test]
fn text_logs_on_a_terminal_keep_their_colours() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("registry.db");
    let command = format!("timeout -s INT 3 {BIN} proxy --hostname 127.0.0.1 --port 0 --embedmd-database-dsn {}", db.display());
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("HOME", "/nonexistent")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("listening"), "{text}");
    assert!(text.contains("\x1b["), "{text:?}");
}

/// A write that succeeds leaves no warning behind: a warning in every write's log hides the ones
/// that matter (the group committer once built its "stopped" error, which logs, for each write).
#[tokio::test]
async fn a_successful_write_logs_no_warning() {
    let server = Server::start_logging(&["--log-format", "text"]).await;
    server.wait_ready(Duration::from_secs(30)).await;
    for name in ["first", "second"] {
        server.write(reqwest::Method::POST, "/registered_models", serde_json::json!({ "name": name })).await;
    }
    let log = server.stop();
    assert!(log.contains("status=201"), "{log}");
    assert!(!log.contains("WARN"), "{log}");
}
