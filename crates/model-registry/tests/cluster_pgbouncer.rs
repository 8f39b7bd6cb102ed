//! PgBouncer in transaction pooling (scripts/cluster/pgbouncer.sh) in front of the local
//! PostgreSQL: the statement timeout still cancels a long statement, the session settings do
//! not leak to the pooler's other clients, and replicas starting together through it migrate
//! once. The REST and client suites through it: scripts/cluster/pgbouncer-suites.sh.

use std::time::{Duration, Instant};

use embedmd::dsn::Pooler;
use embedmd::{Datastore, PoolConfig, TlsConfig};
use sqlx::Connection;
use testkit::{Backend, TestDb};

mod support;
use support::cluster::Topology;
use support::server::Server;

fn through_pgbouncer(db: &TestDb) -> String {
    format!("postgres://root@127.0.0.1:6433/{}", db.name())
}

#[tokio::test(flavor = "multi_thread")]
async fn statement_timeout_applies_through_pgbouncer_and_stays_in_its_transaction() {
    let _pgbouncer = Topology::start("pgbouncer");
    let db = TestDb::new(Backend::Postgres).await;
    let target = embedmd::dsn::resolve(None, Some(&through_pgbouncer(&db)), &TlsConfig::default())
        .unwrap()
        .with_pooler(Pooler::Transaction)
        .unwrap();
    let config = PoolConfig { statement_timeout: Some(Duration::from_millis(300)), ..PoolConfig::default() };
    let (datastore, _) = Datastore::open(&target, &config, &[]).await.unwrap();

    let started = Instant::now();
    let mut reader = datastore.reader().await.unwrap();
    let read = reader.conn().execute("SELECT pg_sleep(5)", &[]).await;
    drop(reader);
    assert!(read.is_err(), "a read outlived the statement timeout");
    assert!(started.elapsed() < Duration::from_secs(3), "cancelled after {:?}", started.elapsed());
    let started = Instant::now();
    let write = datastore
        .write(|conn| Box::pin(async move { conn.execute("SELECT pg_sleep(5)", &[]).await.map_err(embedmd::Error::from) }))
        .await;
    assert!(matches!(write, Err(embedmd::Error::Unavailable(_))), "{write:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "cancelled after {:?}", started.elapsed());

    // Another client of the pooler gets the server sessions back as they were: the settings
    // held for one transaction only.
    let mut other = sqlx::PgConnection::connect(&through_pgbouncer(&db)).await.unwrap();
    for _ in 0..10 {
        let settings: Vec<(String,)> =
            sqlx::query_as("SELECT current_setting('statement_timeout') || ' ' || current_setting('enable_seqscan')")
                .persistent(false)
                .fetch_all(&mut other)
                .await
                .unwrap();
        assert_eq!(settings[0].0, "0 on", "a session setting leaked through the pooler");
    }
    datastore.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_starting_together_through_pgbouncer_migrate_once() {
    let _pgbouncer = Topology::start("pgbouncer");
    let db = TestDb::new(Backend::Postgres).await;
    let dsn = through_pgbouncer(&db);
    let servers: Vec<Server> = (0..4).map(|_| Server::with_dsn(&dsn, &["--embedmd-database-pooler", "transaction"])).collect();
    for server in &servers {
        server.wait_ready(Duration::from_secs(60)).await;
    }
    // Each replica logs every step it runs: one replica ran them, the others found them done.
    let applied: Vec<usize> = servers.iter().map(|s| s.log().matches("running migration version=").count()).collect();
    assert_eq!(applied.iter().filter(|&&n| n > 0).count(), 1, "steps run per replica: {applied:?}");
    let versions = db.query_text("SELECT version::text, dirty::text FROM schema_migrations").await;
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0][1].as_deref(), Some("false"), "{versions:?}");
    for (i, server) in servers.iter().enumerate() {
        let model =
            server.write(reqwest::Method::POST, "/registered_models", serde_json::json!({ "name": format!("m{i}") })).await;
        assert_eq!(
            server.get_ok(&format!("/registered_models/{}", model["id"].as_str().unwrap())).await["name"],
            format!("m{i}")
        );
    }
}
