//! The pool's limits against real servers: the statement timeout, idle connections released,
//! and connections the server refuses counted as a transient unavailability.

use std::time::{Duration, Instant};

use embedmd::store::Conn;
use embedmd::{ConnectTarget, Error, Pool, PoolConfig, TlsConfig};
use testkit::{Backend, TestDb};

/// One test per server backend for each scenario (SQLite has no server whose limits matter).
macro_rules! on_server_backends {
    ($($name:ident),* $(,)?) => {
        mod mysql { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(testkit::Backend::MySql).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(testkit::Backend::Postgres).await } )* }
    };
}

on_server_backends!(
    statements_past_the_timeout_are_cancelled,
    idle_connections_are_released,
    refused_connections_are_retried_then_unavailable,
);

fn target(url: &str) -> ConnectTarget {
    embedmd::dsn::resolve(None, Some(url), &TlsConfig::default()).unwrap()
}

async fn sleep_on(conn: Conn<'_>, seconds: f64) -> Result<(), sqlx::Error> {
    match conn {
        Conn::MySql(c) => sqlx::query("SELECT SLEEP(?)").bind(seconds).execute(c).await.map(drop),
        Conn::Postgres(c) => sqlx::query("SELECT pg_sleep($1)").bind(seconds).execute(c).await.map(drop),
        Conn::Sqlite(_) => unreachable!("server backends only"),
    }
}

/// Connections the server has open to `db`, not counting this query's own.
async fn connections_to(db: &TestDb) -> usize {
    let sql = match db.backend() {
        Backend::Postgres => format!("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{}'", db.name()),
        _ => format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{}'", db.name()),
    };
    db.query_text(&sql).await[0][0].as_deref().unwrap().parse::<usize>().unwrap() - 1
}

async fn statements_past_the_timeout_are_cancelled(backend: Backend) {
    let db = TestDb::new(backend).await;
    let config = PoolConfig { statement_timeout: Some(Duration::from_millis(300)), ..PoolConfig::default() };
    let pool = Pool::connect(&target(db.url()), &config).await.unwrap();
    let mut reader = pool.reader().await.unwrap();
    sleep_on(reader.conn(), 0.05).await.expect("a short statement runs");
    let started = Instant::now();
    let error = Error::from(sleep_on(reader.conn(), 5.0).await.expect_err("cancelled"));
    assert!(started.elapsed() < Duration::from_secs(2), "cancelled after {:?}", started.elapsed());
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    drop(reader);
    pool.close().await;
}

/// Polls until the server counts `expected` connections to `db`; how long that took. A closed
/// connection leaves the server's list when the server has handled the disconnect, a moment
/// after the pool let it go, later still on a loaded machine.
async fn wait_for_connections(db: &TestDb, expected: usize, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let now = connections_to(db).await;
        if now == expected {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{now} connections, not {expected}, after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn idle_connections_are_released(backend: Backend) {
    let db = TestDb::new(backend).await;
    // No idle time here: only `max_idle` closes connections, however slow the machine.
    let config = PoolConfig { max_open: 4, max_idle: 1, max_idle_time: None, ..PoolConfig::default() };
    let pool = Pool::connect(&target(db.url()), &config).await.unwrap();
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(pool.reader().await.unwrap());
    }
    assert_eq!(connections_to(&db).await, 4);
    // One at a time: releases at the very same instant each see the others not idle yet.
    for reader in readers {
        drop(reader);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_connections(&db, 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(connections_to(&db).await, 1, "one idle connection kept");
    pool.close().await;

    // The idle time closes the last one too, and not before it has passed.
    let idle_time = Duration::from_millis(500);
    let config = PoolConfig { max_idle: 1, max_idle_time: Some(idle_time), ..PoolConfig::default() };
    let pool = Pool::connect(&target(db.url()), &config).await.unwrap();
    let reader = pool.reader().await.unwrap();
    wait_for_connections(&db, 1, Duration::from_secs(10)).await;
    drop(reader);
    let closed_after = wait_for_connections(&db, 0, Duration::from_secs(10)).await;
    assert!(closed_after >= idle_time, "the idle connection closed after {closed_after:?}, before its idle time");
    pool.reader().await.expect("connects again when needed");
    pool.close().await;
}

/// A database user allowed one connection: the pool's second one is refused ("too many
/// connections" for the user), which is retried within the acquire timeout, then reported
/// unavailable (a 503 upstream of here), never a plain database error.
async fn refused_connections_are_retried_then_unavailable(backend: Backend) {
    let db = TestDb::new(backend).await;
    let user = format!("{}_one", db.name());
    match backend {
        Backend::MySql => {
            db.execute(&format!("CREATE USER '{user}'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 1")).await;
            db.execute(&format!("GRANT ALL ON {}.* TO '{user}'@'127.0.0.1'", db.name())).await;
        }
        _ => db.execute(&format!("CREATE ROLE {user} LOGIN CONNECTION LIMIT 1")).await,
    }
    let url = db.url().replacen("root@", &format!("{user}@"), 1);
    let acquire_timeout = Duration::from_secs(1);
    let pool = Pool::connect(&target(&url), &PoolConfig { acquire_timeout, ..PoolConfig::default() }).await.unwrap();
    let held = pool.reader().await.unwrap();
    let started = Instant::now();
    let error = pool.reader().await.err().expect("no second connection");
    let waited = started.elapsed();
    assert!(matches!(error, Error::Unavailable(_)), "{error:?}");
    assert!(waited >= acquire_timeout / 2 && waited < acquire_timeout * 2, "gave up after {waited:?}");
    drop(held);
    pool.reader().await.expect("the connection is free again");
    pool.close().await;
    let drop_user = match backend {
        Backend::MySql => format!("DROP USER '{user}'@'127.0.0.1'"),
        _ => format!("DROP ROLE {user}"),
    };
    db.execute(&drop_user).await;
}

/// SQLite connections the pool holds at most (`SQLITE_MAX_CONNECTIONS` in `db.rs`).
const SQLITE_POOL: usize = 16;

/// Every connection of an SQLite pool commits with `synchronous=FULL` (2): each commit waits
/// for its fsync, whatever SQLite's compile-time default is. All of them are held at once, so
/// each one the pool opens is asked.
#[tokio::test(flavor = "multi_thread")]
async fn every_sqlite_connection_is_synchronous_full() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pool = Pool::connect(&target(db.url()), &PoolConfig::default()).await.unwrap();
    let mut readers = Vec::new();
    for _ in 0..SQLITE_POOL {
        readers.push(pool.reader().await.unwrap());
    }
    for (n, reader) in readers.iter_mut().enumerate() {
        let Conn::Sqlite(c) = reader.conn() else { unreachable!("an SQLite pool") };
        let (synchronous,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(&mut *c).await.unwrap();
        assert_eq!(synchronous, 2, "connection {n} has synchronous={synchronous}, not FULL");
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(&mut *c).await.unwrap();
        assert_eq!(mode, "wal", "connection {n}");
    }
    drop(readers);
    pool.close().await;
}

/// A write whose transaction cannot begin is answered with the reason (here the pool is closed:
/// unavailable, a 503 for the API), not dropped unanswered. On SQLite the group committer begins
/// the transaction for the writes it holds, so the reason has to reach each of them.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_cannot_begin_gets_the_reason() {
    for backend in [Backend::Sqlite, Backend::MySql, Backend::Postgres] {
        let db = TestDb::new(backend).await;
        let (datastore, _) = embedmd::Datastore::open(&target(db.url()), &PoolConfig::default(), &[]).await.unwrap();
        datastore.pool().close().await;
        let written = datastore.write(|_| Box::pin(async { Ok::<_, Error>(()) })).await;
        assert!(matches!(written, Err(Error::Unavailable(_))), "{backend:?}: {written:?}");
    }
}
