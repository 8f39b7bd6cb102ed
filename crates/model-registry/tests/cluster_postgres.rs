//! A PostgreSQL primary with a synchronous streaming standby (scripts/cluster/postgres.sh):
//! the primary is killed under 16 writers and the standby promoted. Every acknowledged create
//! is on the new primary, and the replicas, given both hosts in libpq's multi-host DSN forms,
//! write again without a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::cluster::{write_load, Topology};
use support::server::Server;

const URL: &str = "postgres://root@127.0.0.1:5433,127.0.0.1:5434/registry?target_session_attrs=read-write";
const KEYWORDS: &str = "host=127.0.0.1,127.0.0.1 port=5433,5434 user=root dbname=registry target_session_attrs=read-write";

/// How soon after the promotion every replica must write again.
const SERVING_AGAIN_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn primary_killed_under_writers_standby_promoted_nothing_acknowledged_lost() {
    let cluster = Topology::start("postgres");
    let mut servers = Vec::new();
    for dsn in [URL, KEYWORDS, URL, KEYWORDS] {
        servers.push(Server::ready_with_dsn(dsn, &[]).await);
    }
    let servers = Arc::new(servers);
    let load = tokio::spawn(write_load(servers.clone(), 16, Duration::from_secs(14)));

    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.run("kill-primary");
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.run("promote");
    let promoted = Instant::now();
    let outcome = load.await.unwrap();

    let statuses = outcome.statuses();
    let first_hosts: Vec<String> = (0..servers.len()).map(|_| "127.0.0.1:5433".to_owned()).collect();
    // The servers' errors say what a status other than 201 and 503 was.
    let errors: Vec<String> = servers
        .iter()
        .flat_map(|s| s.log().lines().filter(|l| l.contains("ERROR")).map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(
        outcome.unexpected.is_empty(),
        "only 201 and 503 expected ({statuses:?}); the others, relative to the kill of the primary:{}\nserver errors:\n{}",
        outcome.describe_unexpected(&first_hosts, killed),
        errors.join("\n")
    );
    let back: Vec<Duration> = (0..servers.len())
        .map(|s| outcome.first_success_after(s, promoted).expect("every replica writes after the promotion"))
        .collect();
    eprintln!(
        "figures: statuses {statuses:?}; acknowledged {}; failures after the kill (count, first to last) {:?}; first write per replica {back:?} after \
         the promotion ({:?} after the kill); longest answer {:?}",
        outcome.acknowledged.len(),
        outcome.failures_after(killed),
        promoted - killed,
        outcome.longest()
    );
    assert!(back.iter().all(|b| *b < SERVING_AGAIN_WITHIN), "writes back {back:?} after the promotion");

    // Every replica serves again, without a restart, and every acknowledged create is there.
    for server in servers.iter() {
        let name = format!("after-{}", server.url(""));
        let (status, body) =
            server.call(reqwest::Method::POST, "/registered_models", Some(serde_json::json!({ "name": name }))).await;
        assert_eq!(status, 201, "{body}");
    }
    let stored: std::collections::HashSet<String> = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect("postgres://root@127.0.0.1:5434/registry").await.unwrap();
        let rows: Vec<(i32,)> = sqlx::query_as("SELECT id FROM \"Context\"").fetch_all(&mut conn).await.unwrap();
        rows.into_iter().map(|(id,)| id.to_string()).collect()
    };
    let lost: Vec<_> = outcome.acknowledged.iter().filter(|(id, _)| !stored.contains(id)).collect();
    assert!(lost.is_empty(), "{} acknowledged creates missing on the new primary: {lost:?}", lost.len());
    drop(cluster);
}
