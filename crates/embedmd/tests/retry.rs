//! A write transaction the database rolled back for a conflict with another (a deadlock, which
//! Galera answers on a certification conflict; PostgreSQL's serialization failure), or that met
//! an id the database had handed out twice (Galera, while its membership changes), runs again
//! from the start; any other failure, a duplicate of what a client chose among them, does not.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use embedmd::{Datastore, Error, PoolConfig, TlsConfig, WRITE_ATTEMPTS};
use testkit::{Backend, TestDb};

macro_rules! on_server_backends {
    ($($name:ident),* $(,)?) => {
        mod mysql { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(testkit::Backend::MySql).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(testkit::Backend::Postgres).await } )* }
    };
}

on_server_backends!(conflicts_run_again_other_failures_do_not, taken_assigned_ids_run_again_client_duplicates_do_not);

/// A statement failing as a lost conflict does, on `backend`.
fn conflict(backend: Backend) -> &'static str {
    match backend {
        Backend::MySql => "SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'certification conflict'",
        _ => "DO $$ BEGIN RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001'; END $$",
    }
}

/// Runs a write whose first `failing` runs execute `failure`; returns its outcome and the runs.
async fn write(datastore: &Datastore, failure: &'static str, failing: u32) -> (Result<u32, Error>, u32) {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let outcome = datastore
        .write(move |conn| {
            let runs = counted.clone();
            Box::pin(async move {
                let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                if run <= failing {
                    conn.execute_script(failure).await?;
                }
                Ok::<_, Error>(run)
            })
        })
        .await;
    (outcome, runs.load(Ordering::SeqCst))
}

async fn conflicts_run_again_other_failures_do_not(backend: Backend) {
    let db = TestDb::new(backend).await;
    let target = embedmd::dsn::resolve(None, Some(db.url()), &TlsConfig::default()).unwrap();
    let (datastore, _) = Datastore::open(&target, &PoolConfig::default(), &[]).await.unwrap();

    let (outcome, runs) = write(&datastore, conflict(backend), 1).await;
    assert_eq!((outcome.unwrap(), runs), (2, 2), "the second run succeeds");

    let (outcome, runs) = write(&datastore, conflict(backend), u32::MAX).await;
    assert!(outcome.is_err(), "gives up");
    assert_eq!(runs, WRITE_ATTEMPTS);

    let (outcome, runs) = write(&datastore, "SELECT * FROM no_such_table", u32::MAX).await;
    assert!(outcome.is_err());
    assert_eq!(runs, 1, "any other failure is answered at once");
    datastore.close().await;
}

async fn taken_assigned_ids_run_again_client_duplicates_do_not(backend: Backend) {
    let db = TestDb::new(backend).await;
    let target = embedmd::dsn::resolve(None, Some(db.url()), &TlsConfig::default()).unwrap();
    let (datastore, _) = Datastore::open(&target, &PoolConfig::default(), &[]).await.unwrap();
    // An id-keyed table as the database fills it, a property table's composite key, a unique name.
    datastore
        .write(|conn| {
            Box::pin(async move {
                conn.execute_script(
                    "CREATE TABLE node (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL UNIQUE); \
                     CREATE TABLE prop (node_id INTEGER, name VARCHAR(20), PRIMARY KEY (node_id, name)); \
                     INSERT INTO node (id, name) VALUES (17, 'taken'); INSERT INTO prop VALUES (17, 'a')",
                )
                .await
                .map_err(Error::from)
            })
        })
        .await
        .unwrap();

    // Galera handing out id 17 again, as MariaDB reports it: "Duplicate entry '17' for key 'PRIMARY'".
    let id_taken = "INSERT INTO node (id, name) VALUES (17, 'fresh')";
    let (outcome, runs) = write(&datastore, id_taken, 1).await;
    assert_eq!((outcome.unwrap(), runs), (2, 2), "the second run draws another id and succeeds");
    let (outcome, runs) = write(&datastore, id_taken, u32::MAX).await;
    let error = outcome.unwrap_err();
    assert!(matches!(error, Error::AssignedIdTaken(_)) && error.is_retryable(), "{error:?}");
    assert_eq!(runs, WRITE_ATTEMPTS);

    // Two property names the collation holds as one: the body's doing, answered at once.
    let (outcome, runs) = write(&datastore, "INSERT INTO prop VALUES (17, 'a')", u32::MAX).await;
    let error = outcome.unwrap_err();
    assert!(matches!(error, Error::UniqueViolation(_)) && error.is_primary_key_violation(), "{error:?}");
    assert_eq!(runs, 1);
    // A name a client chose twice: a conflict, answered at once.
    let (outcome, runs) = write(&datastore, "INSERT INTO node (id, name) VALUES (18, 'taken')", u32::MAX).await;
    let error = outcome.unwrap_err();
    assert!(matches!(error, Error::UniqueViolation(_)) && !error.is_primary_key_violation(), "{error:?}");
    assert_eq!(runs, 1);
    datastore.close().await;
}
