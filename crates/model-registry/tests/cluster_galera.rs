//! A three-node MariaDB Galera cluster (scripts/cluster/galera.sh): eight replicas started at
//! once across the nodes migrate once (the lock holds cluster-wide), and sixteen writers go on
//! through a node's `kill -9` and its rejoining: no request answered 500, every acknowledged
//! create readable through every node.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;

mod support;
use support::cluster::{write_load, Topology};
use support::server::Server;

const PORTS: [u16; 3] = [3311, 3312, 3313];

/// Replica `i`'s DSN: every node, starting with node `i % 3` (upstream's Go DSN form).
fn dsn(i: usize) -> String {
    let hosts: Vec<String> = (0..3).map(|k| format!("127.0.0.1:{}", PORTS[(i + k) % 3])).collect();
    format!("root:@tcp({})/registry?charset=utf8mb4&parseTime=True&loc=Local", hosts.join(","))
}

async fn ids_on(port: u16) -> HashSet<String> {
    let mut conn = sqlx::MySqlConnection::connect(&format!("mysql://root@127.0.0.1:{port}/registry")).await.unwrap();
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT CAST(id AS SIGNED) FROM Context").fetch_all(&mut conn).await.unwrap();
    rows.into_iter().map(|(id,)| id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_migrate_once_and_writers_survive_a_node_loss() {
    let cluster = Arc::new(Topology::start("galera"));

    let servers: Vec<Server> = (0..8).map(|i| Server::with_dsn(&dsn(i), &[])).collect();
    for server in &servers {
        server.wait_ready(Duration::from_secs(120)).await;
    }
    let steps: Vec<usize> = servers.iter().map(|s| s.log().matches("running migration version=").count()).collect();
    assert_eq!(steps.iter().filter(|&&n| n > 0).count(), 1, "steps run per replica: {steps:?}");

    let servers = Arc::new(servers);
    let load = tokio::spawn(write_load(servers.clone(), 16, Duration::from_secs(45)));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let killed = Instant::now();
    cluster.run("kill 1");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rejoin = {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.run("restart 1"))
    };
    rejoin.await.unwrap();
    let rejoined = killed.elapsed();
    let outcome = load.await.unwrap();

    let statuses = outcome.statuses();
    eprintln!(
        "figures: statuses {statuses:?}; acknowledged {}; failures after the kill (count, first to last) {:?} (per replica, first \
         success after it: {:?}); node back in {rejoined:?}; longest answer {:?}",
        outcome.acknowledged.len(),
        outcome.failures_after(killed),
        (0..servers.len()).map(|s| outcome.first_success_after(s, killed + Duration::from_millis(1))).collect::<Vec<_>>(),
        outcome.longest()
    );
    // A duplicate on an id the database assigned (Galera changes its AUTO_INCREMENT offsets
    // when a node leaves) is run again or answered 503, never a client error.
    let first_hosts: Vec<String> = (0..servers.len()).map(|i| format!("127.0.0.1:{}", PORTS[i % 3])).collect();
    assert!(
        outcome.unexpected.is_empty(),
        "only 201 and 503 expected ({statuses:?}); the others, relative to the kill of node 1 (127.0.0.1:3311):{}",
        outcome.describe_unexpected(&first_hosts, killed)
    );
    assert!(outcome.acknowledged.len() > 100, "{statuses:?}");
    for port in PORTS {
        let stored = ids_on(port).await;
        let missing: Vec<_> = outcome.acknowledged.iter().filter(|(id, _)| !stored.contains(id)).collect();
        assert!(missing.is_empty(), "{} acknowledged creates (id, name) missing on node {port}: {missing:?}", missing.len());
    }
}
