//! DSNs naming several hosts against the real servers: a host that refuses connections is
//! passed over for the next, and a PostgreSQL that takes no writes is passed over when the DSN
//! asks for `target_session_attrs=read-write`.

use embedmd::{ConnectTarget, Pool, PoolConfig, TlsConfig};
use testkit::{Backend, TestDb};

/// A local port nothing listens on: connections to it are refused at once.
const DEAD_PORT: u16 = 1;

fn target(dsn: &str) -> ConnectTarget {
    embedmd::dsn::resolve(None, Some(dsn), &TlsConfig::default()).unwrap()
}

/// The port the pool's connections reach, as the server sees it.
async fn server_port(pool: &Pool, backend: Backend) -> String {
    let sql = match backend {
        Backend::Postgres => "SELECT current_setting('port')",
        _ => "SELECT CAST(@@port AS CHAR)",
    };
    let rows = pool.reader().await.unwrap().conn().fetch_script_text(sql).await.unwrap();
    rows[0][0].clone().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_first_host_is_passed_over_on_mysql() {
    let db = TestDb::new(Backend::MySql).await;
    let dsn = format!("root:@tcp(127.0.0.1:{DEAD_PORT},127.0.0.1:3306)/{}", db.name());
    let pool = Pool::connect(&target(&dsn), &PoolConfig::default()).await.expect("the second host");
    assert_eq!(server_port(&pool, Backend::MySql).await, "3306");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_first_host_is_passed_over_on_postgres_in_both_forms() {
    let db = TestDb::new(Backend::Postgres).await;
    let url = format!("postgres://root@127.0.0.1:{DEAD_PORT},127.0.0.1:5432/{}?target_session_attrs=read-write", db.name());
    let keywords =
        format!("host=127.0.0.1,127.0.0.1 port={DEAD_PORT},5432 user=root dbname={} target_session_attrs=read-write", db.name());
    for dsn in [url, keywords] {
        let pool = Pool::connect(&target(&dsn), &PoolConfig::default()).await.expect("the second host");
        assert_eq!(server_port(&pool, Backend::Postgres).await, "5432", "{dsn}");
        pool.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_host_taking_writes_is_unavailable() {
    let db = TestDb::new(Backend::Postgres).await;
    // The session default makes the only host refuse writes, as a standby does.
    let dsn = format!(
        "host=127.0.0.1 port=5432 user=root dbname={} options='-c default_transaction_read_only=on' target_session_attrs=read-write",
        db.name()
    );
    let refused = Pool::connect(&target(&dsn), &PoolConfig::default()).await.expect_err("no writable host");
    assert!(matches!(refused, embedmd::Error::Unavailable(_)), "{refused:?}");
    let any = dsn.replace("read-write", "any");
    Pool::connect(&target(&any), &PoolConfig::default()).await.expect("any host will do").close().await;
}
