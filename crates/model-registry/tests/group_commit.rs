//! SQLite's group commit through the real binary: concurrent writes share transactions (one
//! fsync for many, at least [`MIN_WRITES_PER_COMMIT`] under 16 writers), yet each keeps its own
//! answer, a failed one leaves no row, a failed commit (a full disk) answers every write of its
//! group with an error and leaves none of them, and every write acknowledged before a `kill -9`
//! is in the file afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use testkit::{Backend, TestDb};
use tokio::task::JoinSet;

mod support;
use support::server::Server;

/// Writers at once: under the server's concurrency limit (64), so none is refused.
const WRITERS: usize = 48;
const ROUNDS: usize = 8;
/// Registered models the versions hang under.
const PARENTS: usize = 8;
/// Writers that each send their next write as soon as the last one is answered.
const CLOSED_LOOP_WRITERS: usize = 16;
const WRITES_EACH: usize = 25;
/// The grouping the README describes: while a commit waits for its fsync the other writers
/// queue and share the next one, so 16 closed-loop writers average at least this many writes
/// per commit (the bench measured 15.6 at 64 writers).
const MIN_WRITES_PER_COMMIT: u64 = 4;

/// What each write is and what it must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// A registered model under a fresh name: 201.
    Model,
    /// A registered model under a parent's name: 409.
    Duplicate,
    /// A version under a parent: 201.
    Version,
    /// A version under a model that does not exist: 404.
    Orphan,
}

impl Write {
    fn of(n: usize) -> Write {
        [Write::Model, Write::Duplicate, Write::Version, Write::Orphan][n % 4]
    }

    fn expected(self) -> u16 {
        match self {
            Write::Model | Write::Version => 201,
            Write::Duplicate => 409,
            Write::Orphan => 404,
        }
    }
}

/// `model_registry_<name>_total` from a scrape.
fn counter(metrics: &str, name: &str) -> u64 {
    let series = format!("model_registry_{name}_total ");
    let line = metrics.lines().find(|l| l.starts_with(&series)).unwrap_or_else(|| panic!("no {series}in:\n{metrics}"));
    line[series.len()..].trim().parse().unwrap()
}

/// Rows of a query on the SQLite file, every value as text.
async fn rows(db: &TestDb, sql: &str) -> Vec<Vec<Option<String>>> {
    db.query_text(sql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writes_share_commits_and_keep_their_own_answers() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::ready_on(&db, &[]).await;
    let mut parents = Vec::new();
    for p in 0..PARENTS {
        let model = server.write(Method::POST, "/registered_models", json!({ "name": format!("parent-{p}") })).await;
        parents.push(model["id"].as_str().unwrap().to_owned());
    }
    let server = Arc::new(server);
    let mut answers: BTreeMap<usize, (Write, u16, Value)> = BTreeMap::new();
    for round in 0..ROUNDS {
        let mut writers = JoinSet::new();
        for w in 0..WRITERS {
            let n = round * WRITERS + w;
            let (server, parent) = (server.clone(), parents[n % PARENTS].clone());
            writers.spawn(async move {
                let write = Write::of(n);
                let (path, body) = match write {
                    Write::Model => ("/registered_models", json!({ "name": format!("model-{n}") })),
                    Write::Duplicate => ("/registered_models", json!({ "name": format!("parent-{}", n % PARENTS) })),
                    Write::Version => ("/model_versions", json!({ "name": format!("version-{n}"), "registeredModelId": parent })),
                    Write::Orphan => ("/model_versions", json!({ "name": format!("orphan-{n}"), "registeredModelId": "999999" })),
                };
                let (status, body) = server.call(Method::POST, path, Some(body)).await;
                (n, write, status, body)
            });
        }
        while let Some(done) = writers.join_next().await {
            let (n, write, status, body) = done.unwrap();
            answers.insert(n, (write, status, body));
        }
    }

    for (n, (write, status, body)) in &answers {
        assert_eq!(*status, write.expected(), "write {n} ({write:?}): {body}");
        if *status == 201 {
            let name = body["name"].as_str().unwrap();
            assert!(name.ends_with(&format!("-{n}")), "write {n} answered with another write's entity: {body}");
        }
    }
    let metrics = server.get_text("/metrics").await.1;
    let (commits, writes) = (counter(&metrics, "db_commits"), counter(&metrics, "db_committed_writes"));
    let succeeded = PARENTS + answers.values().filter(|(_, status, _)| *status == 201).count();
    // Failed writes roll back to their savepoint and are not counted.
    assert_eq!(writes, succeeded as u64, "{metrics}");
    assert!(commits < writes, "no commit was shared: {commits} commits for {writes} writes");

    let mut server = Arc::into_inner(server).expect("every writer is done");
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // Exactly the acknowledged entities are in the file, each under the id it was answered with.
    let stored: BTreeMap<String, String> = rows(&db, "SELECT id, name FROM Context")
        .await
        .into_iter()
        .map(|r| (r[1].clone().unwrap(), r[0].clone().unwrap()))
        .collect();
    assert_eq!(stored.len(), succeeded, "rows of failed writes were left behind: {stored:?}");
    for (write, status, body) in answers.values() {
        if *status == 201 {
            let id = body["id"].as_str().unwrap();
            let name = body["name"].as_str().unwrap();
            let key = match write {
                Write::Version => format!("{}:{name}", body["registeredModelId"].as_str().unwrap()),
                _ => name.to_owned(),
            };
            assert_eq!(stored.get(&key).map(String::as_str), Some(id), "{key}");
        }
    }
    let links = rows(&db, "SELECT COUNT(*) FROM ParentContext").await[0][0].clone().unwrap();
    let versions = answers.values().filter(|(w, s, _)| *w == Write::Version && *s == 201).count();
    assert_eq!(links, versions.to_string(), "one link per acknowledged version, none for the orphans");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_write_acknowledged_before_a_kill_survives_it() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Arc::new(Server::ready_on(&db, &[]).await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = JoinSet::new();
    for w in 0..WRITERS {
        let (server, stop) = (server.clone(), stop.clone());
        writers.spawn(async move {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("w{w}-{n}");
                let request = server.http.post(server.url("/api/model_registry/v1alpha3/registered_models"));
                // The kill cuts requests off: those have no answer and count as unacknowledged.
                let Ok(response) = request.json(&json!({ "name": name })).send().await else { break };
                match response.status().as_u16() {
                    201 => match response.json::<Value>().await {
                        Ok(body) => acknowledged.push((name, body["id"].as_str().unwrap().to_owned())),
                        Err(_) => break,
                    },
                    other => panic!("{name}: {other}"),
                }
            }
            acknowledged
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL while writes are in flight, then the writers stop.
    let pid = server.child.id();
    std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    while let Some(done) = writers.join_next().await {
        acknowledged.extend(done.unwrap());
    }
    assert!(acknowledged.len() > WRITERS, "too few writes before the kill to tell: {}", acknowledged.len());

    let stored: BTreeMap<String, String> = rows(&db, "SELECT name, id FROM Context")
        .await
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    for (name, id) in &acknowledged {
        assert_eq!(stored.get(name), Some(id), "acknowledged write {name} (id {id}) lost by the kill");
    }
    let integrity = rows(&db, "PRAGMA integrity_check").await;
    assert_eq!(integrity[0][0].as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_closed_loop_writers_share_commits() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Arc::new(Server::ready_on(&db, &[]).await);
    let metrics = server.get_text("/metrics").await.1;
    let (commits_before, writes_before) = (counter(&metrics, "db_commits"), counter(&metrics, "db_committed_writes"));
    let mut writers = JoinSet::new();
    for w in 0..CLOSED_LOOP_WRITERS {
        let server = server.clone();
        writers.spawn(async move {
            for n in 0..WRITES_EACH {
                let body = json!({ "name": format!("w{w}-{n}") });
                let (status, body) = server.call(Method::POST, "/registered_models", Some(body)).await;
                assert_eq!(status, 201, "{body}");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let metrics = server.get_text("/metrics").await.1;
    let commits = counter(&metrics, "db_commits") - commits_before;
    let writes = counter(&metrics, "db_committed_writes") - writes_before;
    assert_eq!(writes, (CLOSED_LOOP_WRITERS * WRITES_EACH) as u64, "{metrics}");
    eprintln!("{writes} writes of {CLOSED_LOOP_WRITERS} closed-loop writers in {commits} commits");
    assert!(
        commits * MIN_WRITES_PER_COMMIT <= writes,
        "{commits} commits for {writes} writes: fewer than {MIN_WRITES_PER_COMMIT} writes per commit"
    );
}

/// A tmpfs of its own, unmounted when dropped (also when the test panics).
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    /// Needs root (as the test machine's user is): a full disk is the real way to make a
    /// commit fail, and a small tmpfs fills without touching anyone else's disk.
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mounting a {size} tmpfs failed (the test needs root): {status:?}");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("--lazy").arg(self.0.path()).status();
    }
}

/// Fills the file system of `path` with one file; ENOSPC ends it.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut filler = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while filler.write_all(&block).is_ok() {}
    let _ = filler.sync_all();
}

/// Models whose description is large enough that a group of them needs new pages in the WAL,
/// which a full disk cannot give: the commit fails, not the writes' statements.
async fn create_many(server: &Arc<Server>, prefix: &str) -> Vec<(String, u16, Value)> {
    let mut writers = JoinSet::new();
    for n in 0..CLOSED_LOOP_WRITERS {
        let server = server.clone();
        let name = format!("{prefix}-{n}");
        writers.spawn(async move {
            let body = json!({ "name": name, "description": "d".repeat(64 * 1024) });
            let (status, body) = server.call(Method::POST, "/registered_models", Some(body)).await;
            (name, status, body)
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = writers.join_next().await {
        answers.push(done.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_group_commit_answers_every_write_with_an_error_and_keeps_none() {
    let disk = Tmpfs::mount("4m");
    let file = disk.0.path().join("registry.db");
    let url = format!("sqlite://{}", file.display());
    let server = Arc::new(Server::ready_with_dsn(&url, &[]).await);
    server.write(Method::POST, "/registered_models", json!({ "name": "before" })).await;

    let filler = disk.0.path().join("filler");
    fill(&filler);
    let refused = create_many(&server, "full").await;
    for (name, status, body) in &refused {
        assert!(*status >= 500, "{name} was answered {status} on a full disk: {body}");
    }
    let log = server.log();
    assert!(log.contains("a group of writes failed to commit"), "the commit is what failed:\n{log}");

    std::fs::remove_file(&filler).unwrap();
    let accepted = create_many(&server, "after").await;
    for (name, status, body) in &accepted {
        assert_eq!(*status, 201, "{name} once the disk has room again: {body}\n{}", server.log());
    }

    let server = Arc::into_inner(server).expect("every writer is done");
    assert!(server.terminate().success());
    let stored: BTreeSet<String> =
        testkit::query_text(&url, "SELECT name FROM Context").await.into_iter().map(|r| r[0].clone().unwrap()).collect();
    for (name, _, _) in &refused {
        assert!(!stored.contains(name), "{name} was refused, yet it is in the file");
    }
    for (name, _, _) in &accepted {
        assert!(stored.contains(name), "{name} was acknowledged, yet it is not in the file");
    }
    assert!(stored.contains("before"));
    assert_eq!(testkit::query_text(&url, "PRAGMA integrity_check").await, vec![vec![Some("ok".to_owned())]]);
}
