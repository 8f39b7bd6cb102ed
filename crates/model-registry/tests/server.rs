//! The real `model-registry` binary against real databases: start-up, readiness, retry until
//! the database is reachable, dirty schemas, many replicas at once, the `migrate` commands.

use std::process::{Command, Output};
use std::time::Duration;

use testkit::{Backend, TestDb};

mod support;
use support::server::{database_flags, Server, API, BIN};

testkit::on_every_backend!(
    serves_readiness_and_stops_on_sigterm,
    dirty_database_blocks_start_until_forced,
    eight_servers_start_together_and_migrate_once,
    migrate_commands,
);

fn latest(backend: Backend) -> u64 {
    if backend == Backend::Postgres {
        25
    } else {
        21
    }
}

fn migrate_cli(db: &TestDb, args: &[&str]) -> Output {
    Command::new(BIN).arg("migrate").args(args).args(database_flags(db)).env("HOME", "/nonexistent").output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn serves_readiness_and_stops_on_sigterm(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_in(&database_flags(&db), None);
    server.wait_ready(Duration::from_secs(30)).await;

    assert_eq!(server.get_text("/readyz/isDirty").await, (200, "OK".to_owned()));
    assert_eq!(server.get_text("/readyz/health").await, (200, "OK".to_owned()));
    assert_eq!(server.get_text("/some/prefix/readyz/isDirty").await, (200, "OK".to_owned()));
    let (status, body) = server.get_text("/readyz/health?format=json").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "pass");
    assert_eq!(health["checks"]["database"]["Status"], "pass");
    assert_eq!(health["checks"]["database"]["Details"]["schema_version"], latest(backend));
    assert_eq!(health["checks"]["database"]["Details"]["schema_dirty"], false);
    assert_eq!(health["checks"]["model-registry"]["Status"], "pass");
    let registry = &health["checks"]["model-registry"]["Details"];
    assert_eq!(
        (registry["registered_models_accessible"].as_bool(), registry["registered_models_count"].as_u64()),
        (Some(true), Some(0))
    );
    assert_eq!(registry["total_resources_checked"], 7);
    assert!(health["checks"]["meta"]["Details"]["timestamp"].is_string());

    let response = reqwest::Client::new().post(format!("{}/readyz/health", server.base)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(server.get_text("/nowhere").await, (404, "404 page not found\n".to_owned()));

    let status = server.terminate();
    assert!(status.success(), "graceful exit on SIGTERM, got {status:?}");
}

#[tokio::test]
async fn sqlite_file_in_the_working_directory_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(&[], Some(dir.path()));
    server.wait_ready(Duration::from_secs(30)).await;
    assert!(dir.path().join("model-registry.db").is_file());
    assert!(server.log().contains("sqlite file model-registry.db"), "{}", server.log());
    drop(server);

    // An existing file opens with nothing to migrate.
    let server = Server::start_in(&[], Some(dir.path()));
    server.wait_ready(Duration::from_secs(30)).await;
    assert!(server.log().contains("database schema is up to date"), "{}", server.log());
}

/// The database does not exist yet: the server listens at once, answers 503, retries, and
/// becomes ready without a restart once the database appears.
async fn unreachable_then_ready(backend: Backend) {
    let db = TestDb::new(backend).await;
    let late_name = format!("{}_late", db.name());
    let late_url = db.url().replace(db.name(), &late_name);
    let flags =
        vec!["--embedmd-database-type".to_owned(), backend.name().to_owned(), "--embedmd-database-dsn".to_owned(), late_url];
    let server = Server::start_in(&flags, None);
    server.wait_listening().await;

    let (status, body) = server.get_text("/readyz/health").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = server.get_text(&format!("{API}/registered_models")).await;
    assert_eq!(status, 503);
    let error: serde_json::Value = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(error["code"], "Service Unavailable");
    assert!(error["message"].as_str().unwrap().contains("Datastore service is down or unavailable"), "{body}");

    db.execute(&format!("CREATE DATABASE {late_name}")).await;
    server.wait_ready(Duration::from_secs(40)).await;
    drop(server);
    db.execute(&format!("DROP DATABASE {late_name}")).await;
}

#[tokio::test]
async fn mysql_unreachable_then_ready() {
    unreachable_then_ready(Backend::MySql).await
}

#[tokio::test]
async fn postgres_unreachable_then_ready() {
    unreachable_then_ready(Backend::Postgres).await
}

async fn dirty_database_blocks_start_until_forced(backend: Backend) {
    let db = TestDb::new(backend).await;
    let up = migrate_cli(&db, &["up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    db.execute("UPDATE schema_migrations SET dirty = TRUE").await;

    let server = Server::start_in(&database_flags(&db), None);
    server.wait_listening().await;
    // The connector has found the dirty schema once it logged what to do.
    server.wait_log("migrate force", Duration::from_secs(30)).await;
    let (status, body) = server.get_text("/readyz/isDirty").await;
    assert_eq!(status, 503);
    assert!(body.contains(&format!("dirty at version {}", latest(backend))), "{body}");
    let (status, body) = server.get_text(&format!("{API}/registered_models")).await;
    assert_eq!(status, 503);
    assert!(body.contains("model-registry migrate force"), "{body}");
    assert!(server.log().contains("migrate force"), "the log says what to do:\n{}", server.log());

    let status = migrate_cli(&db, &["status"]);
    assert!(stdout(&status).contains(&format!("version: {} (dirty)", latest(backend))), "{}", stdout(&status));
    let forced = migrate_cli(&db, &["force", &latest(backend).to_string()]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    server.wait_ready(Duration::from_secs(40)).await;
    assert_eq!(server.get_text("/readyz/isDirty").await, (200, "OK".to_owned()));
}

async fn eight_servers_start_together_and_migrate_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let servers: Vec<Server> = (0..8).map(|_| Server::start_in(&database_flags(&db), None)).collect();
    for server in &servers {
        server.wait_ready(Duration::from_secs(60)).await;
    }
    let rows = db.query_text("SELECT version FROM schema_migrations").await;
    assert_eq!(rows, vec![vec![Some(latest(backend).to_string())]]);
    let type_table = if backend == Backend::Postgres { "\"Type\"" } else { "Type" };
    let rows = db.query_text(&format!("SELECT COUNT(*) FROM {type_table}")).await;
    assert_eq!(rows[0][0].as_deref(), Some("22"), "every type inserted exactly once");
    let migrated = servers.iter().filter(|s| s.log().contains("database schema migrated")).count();
    assert_eq!(migrated, 1, "exactly one replica applied the migrations");
}

async fn migrate_commands(backend: Backend) {
    let db = TestDb::new(backend).await;
    let status = migrate_cli(&db, &["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(stdout(&status).contains("version: none"), "{}", stdout(&status));
    assert!(stdout(&status).contains(&format!("pending: {}", latest(backend))), "{}", stdout(&status));

    let up = migrate_cli(&db, &["up", "3"]);
    assert_eq!(stdout(&up).trim(), "migrated none -> 3 (3 steps)");
    let up = migrate_cli(&db, &["up"]);
    assert_eq!(stdout(&up).trim(), format!("migrated 3 -> {} ({} steps)", latest(backend), latest(backend) - 3));
    let up = migrate_cli(&db, &["up"]);
    assert_eq!(stdout(&up).trim(), format!("no change (version {})", latest(backend)));

    let down = migrate_cli(&db, &["down", "2"]);
    assert_eq!(stdout(&down).trim(), format!("migrated {} -> {} (2 steps)", latest(backend), latest(backend) - 2));
    let goto = migrate_cli(&db, &["goto", "10"]);
    assert_eq!(stdout(&goto).trim(), format!("migrated {} -> 10 ({} steps)", latest(backend) - 2, latest(backend) - 12));

    let refused = migrate_cli(&db, &["down", "--all"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("add --yes to confirm"), "{}", stderr(&refused));
    let down = migrate_cli(&db, &["down", "--all", "--yes"]);
    assert_eq!(stdout(&down).trim(), "migrated 10 -> none (10 steps)");

    let forced = migrate_cli(&db, &["force", "-1"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let bad = migrate_cli(&db, &["force", "77"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("version 77 is not one of this release's migrations"), "{}", stderr(&bad));
}

#[test]
fn configuration_errors_are_clear_and_never_show_the_password() {
    let run = |args: &[&str]| Command::new(BIN).args(args).env("HOME", "/nonexistent").output().unwrap();
    let out = run(&["proxy", "--embedmd-database-type", "mysql"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--embedmd-database-dsn is required for database type mysql"), "{}", stderr(&out));

    let out = run(&["proxy", "--embedmd-database-type", "mysql", "--embedmd-database-dsn", "root:hunter2@tcp(localhost:3306"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invalid mysql DSN: missing '/' before the database name"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hunter2"));

    let out = run(&["proxy", "--embedmd-database-type", "oracle"]);
    assert!(stderr(&out).contains("unknown database type \"oracle\""), "{}", stderr(&out));

    let out = run(&["proxy", "--datastore-type", "mlmd"]);
    assert!(stderr(&out).contains("only \"embedmd\" is supported"), "{}", stderr(&out));
}

#[tokio::test]
async fn passwords_never_reach_the_log() {
    let flags = ["--embedmd-database-dsn".to_owned(), "postgres://mr:hunter2@127.0.0.1:1/db".to_owned()];
    let server = Server::start_in(&flags, None);
    server.wait_listening().await;
    // The failed connection attempt, DSN and error included, is in the log before it is checked.
    server.wait_log("datastore not ready", Duration::from_secs(30)).await;
    let (status, body) = server.get_text(&format!("{API}/registered_models")).await;
    assert_eq!(status, 503);
    let log = server.log();
    assert!(log.contains("postgres database \"db\" at 127.0.0.1:1"), "{log}");
    assert!(!log.contains("hunter2") && !body.contains("hunter2"), "{log}\n{body}");
}
