//! The migrator, type sync and adoption against real SQLite, MariaDB and PostgreSQL databases,
//! with the real MLMD library (ml-metadata 1.17.1) as the oracle.

use std::time::Duration;

use embedmd::{Connection, Datastore, Dialect, MigrateError, PoolConfig, SchemaVersion, TlsConfig};
use model_registry::registry::mlmd_types;
use testkit::{Backend, TestDb};

testkit::on_every_backend!(
    up_from_empty_then_no_change,
    down_steps_and_down_all_then_up_again,
    failed_step_leaves_dirty_blocks_start_and_force_recovers,
    unknown_newer_version_is_refused,
    mlmd_version_other_than_10_is_refused,
    concurrent_starts_migrate_once,
    waits_for_the_golang_migrate_lock,
    databases_left_at_removed_upstream_slots_still_open,
    legacy_kf_type_rows_are_not_duplicated,
    schema_matches_the_reference,
    adopts_an_mlmd_database_and_mlmd_still_reads_it,
);

const TYPES_SYNCED: usize = 22;

fn target(db: &TestDb) -> embedmd::ConnectTarget {
    embedmd::dsn::resolve(None, Some(db.url()), &TlsConfig::default()).expect("test URL parses")
}

async fn connection(db: &TestDb) -> Connection {
    Connection::open(&target(db), &PoolConfig::default()).await.expect("connects")
}

fn latest(backend: Backend) -> u64 {
    match backend {
        Backend::Postgres => 25,
        Backend::Sqlite | Backend::MySql => 21,
    }
}

async fn version_rows(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.query_text("SELECT version, dirty FROM schema_migrations").await
}

fn row(version: u64, dirty: bool) -> Vec<Vec<Option<String>>> {
    let dirty = match dirty {
        true => "1",
        false => "0",
    };
    vec![vec![Some(version.to_string()), Some(dirty.to_owned())]]
}

/// `dirty` as text differs per driver (`t`/`true`/`1`); normalise to 1/0.
fn normalised(rows: Vec<Vec<Option<String>>>) -> Vec<Vec<Option<String>>> {
    rows.into_iter()
        .map(|r| {
            let dirty = matches!(r[1].as_deref(), Some("1" | "t" | "true" | "TRUE"));
            vec![r[0].clone(), Some(if dirty { "1" } else { "0" }.to_owned())]
        })
        .collect()
}

fn type_table(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "\"Type\"",
        _ => "Type",
    }
}

async fn up_from_empty_then_no_change(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (store, report) =
        Datastore::open(&target(&db), &PoolConfig::default(), &mlmd_types()).await.expect("opens an empty database");
    assert_eq!(report.from, None);
    assert_eq!(report.to, Some(latest(backend)));
    assert_eq!(report.applied, (1..=latest(backend)).collect::<Vec<_>>());
    assert_eq!(store.types().len(), TYPES_SYNCED);
    assert!(store.types().get("kf.RegisteredModel").is_some());
    assert_eq!(store.schema_version().await.unwrap(), Some(SchemaVersion { version: Some(latest(backend)), dirty: false }));
    store.close().await;
    assert_eq!(normalised(version_rows(&db).await), row(latest(backend), false));

    let (store, report) = Datastore::open(&target(&db), &PoolConfig::default(), &mlmd_types()).await.unwrap();
    assert!(report.no_change(), "{report:?}");
    store.close().await;

    let conn = connection(&db).await;
    let status = conn.migrator.status().await.unwrap();
    assert_eq!(status.current, SchemaVersion { version: Some(latest(backend)), dirty: false });
    assert!(status.pending.is_empty());
    let types = db.query_text(&format!("SELECT COUNT(*) FROM {}", type_table(backend))).await;
    assert_eq!(types[0][0].as_deref(), Some("22"));
    let env = db.query_text(&format!("SELECT schema_version FROM {}", mlmd_env(backend, conn.dialect))).await;
    assert_eq!(env, vec![vec![Some("10".to_owned())]]);
}

fn mlmd_env(backend: Backend, dialect: Dialect) -> &'static str {
    match (backend, dialect) {
        (Backend::Postgres, Dialect::Postgres) => "\"MLMDEnv\"",
        _ => "MLMDEnv",
    }
}

async fn down_steps_and_down_all_then_up_again(backend: Backend) {
    let db = TestDb::new(backend).await;
    let conn = connection(&db).await;
    conn.migrator.up(None).await.unwrap();
    let fresh = db.schema_dump().await;

    let report = conn.migrator.down(Some(3)).await.unwrap();
    assert_eq!(report.to, Some(latest(backend) - 3));
    assert_eq!(normalised(version_rows(&db).await), row(latest(backend) - 3, false));

    let report = conn.migrator.down(None).await.unwrap();
    assert_eq!(report.to, None);
    assert!(version_rows(&db).await.is_empty(), "the nil version leaves the table empty");
    assert!(!conn.pool.table_exists(embedmd::Table::Artifact.camel_name()).await.unwrap());
    assert!(!conn.pool.table_exists("MLMDEnv").await.unwrap());

    let report = conn.migrator.up(None).await.unwrap();
    assert_eq!(report.applied.len() as u64, latest(backend));
    assert_eq!(db.schema_dump().await, fresh, "down all then up gives the same schema");

    let report = conn.migrator.goto(5).await.unwrap();
    assert_eq!(report.to, Some(5));
    let report = conn.migrator.goto(latest(backend)).await.unwrap();
    assert_eq!(report.to, Some(latest(backend)));
    conn.pool.close().await;
}

async fn failed_step_leaves_dirty_blocks_start_and_force_recovers(backend: Backend) {
    let db = TestDb::new(backend).await;
    // A foreign `Type` table without MLMD's columns: CREATE TABLE IF NOT EXISTS keeps it, and
    // the first statement that needs its columns fails (an index on PostgreSQL and SQLite at
    // step 14, the seed at step 16 on MySQL, whose indexes are inline).
    db.execute(&format!("CREATE TABLE {} (x INT)", type_table(backend))).await;
    let conn = connection(&db).await;
    let err = conn.migrator.up(None).await.unwrap_err();
    let MigrateError::StepFailed { version, previous, .. } = &err else { panic!("expected a failed step: {err}") };
    let failed = *version;
    assert!(failed == 14 || failed == 16, "failed at {failed}");
    assert_eq!(*previous, failed as i64 - 1);
    let message = err.to_string();
    assert!(message.contains(&format!("dirty at version {failed}")), "{message}");
    assert!(message.contains(&format!("model-registry migrate force {}", failed - 1)), "{message}");
    assert_eq!(normalised(version_rows(&db).await), row(failed, true));

    let err = Datastore::open(&target(&db), &PoolConfig::default(), &mlmd_types()).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&format!("database schema is dirty at version {failed}")), "{message}");
    assert!(message.contains("model-registry migrate force"), "{message}");
    assert_eq!(normalised(version_rows(&db).await), row(failed, true), "a refused start changes nothing");
    let status = conn.migrator.status().await.unwrap();
    assert_eq!(status.current, SchemaVersion { version: Some(failed), dirty: true });

    // The operator repairs the schema, then forces the version it is really at.
    // MLMD's Type table was never created (step 14 kept the foreign one): the schema is at 13.
    db.execute(&format!("DROP TABLE {}", type_table(backend))).await;
    conn.migrator.force(13).await.unwrap();
    assert_eq!(normalised(version_rows(&db).await), row(13, false));
    let (store, report) =
        Datastore::open(&target(&db), &PoolConfig::default(), &mlmd_types()).await.expect("recovers after force");
    assert_eq!(report.to, Some(latest(backend)));
    assert_eq!(store.types().len(), TYPES_SYNCED);
    store.close().await;

    assert!(matches!(conn.migrator.force(99).await, Err(MigrateError::NoSuchVersion(99))));
    conn.pool.close().await;
}

async fn unknown_newer_version_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let conn = connection(&db).await;
    conn.migrator.up(None).await.unwrap();
    db.execute("UPDATE schema_migrations SET version = 99").await;
    let err = Datastore::open(&target(&db), &PoolConfig::default(), &mlmd_types()).await.unwrap_err().to_string();
    assert!(err.contains("no migration found for version 99"), "{err}");
    assert_eq!(normalised(version_rows(&db).await), row(99, false), "left as it was");
    conn.pool.close().await;
}

async fn mlmd_version_other_than_10_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let conn = connection(&db).await;
    conn.migrator.up(None).await.unwrap();
    let env = mlmd_env(backend, conn.dialect);
    db.execute(&format!("UPDATE {env} SET schema_version = 8")).await;
    let err = Datastore::open(&target(&db), &PoolConfig::default(), &mlmd_types()).await.unwrap_err().to_string();
    assert!(err.contains("MLMDEnv is 8, but this server needs 10"), "{err}");
    assert!(err.contains("enable_upgrade_migration"), "{err}");

    db.execute(&format!("UPDATE {env} SET schema_version = 10")).await;
    db.execute(&format!("INSERT INTO {env} (schema_version) VALUES (11)")).await;
    let err = Datastore::open(&target(&db), &PoolConfig::default(), &mlmd_types()).await.unwrap_err().to_string();
    assert!(err.contains("MLMDEnv holds 2 rows"), "{err}");
    conn.pool.close().await;
}

async fn concurrent_starts_migrate_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let starts = (0..8).map(|_| {
        let target = target(&db);
        tokio::spawn(async move { Datastore::open(&target, &PoolConfig::default(), &mlmd_types()).await })
    });
    let mut applied = 0;
    for start in starts {
        let (store, report) = start.await.unwrap().expect("every replica becomes ready");
        applied += report.applied.len();
        assert_eq!(store.types().len(), TYPES_SYNCED);
        store.close().await;
    }
    assert_eq!(applied as u64, latest(backend), "each step ran exactly once");
    assert_eq!(normalised(version_rows(&db).await), row(latest(backend), false));
    let types = db.query_text(&format!("SELECT COUNT(*) FROM {}", type_table(backend))).await;
    assert_eq!(types[0][0].as_deref(), Some("22"), "no type inserted twice");
}

async fn waits_for_the_golang_migrate_lock(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Another migrator (upstream's golang-migrate, say) holds the lock on its own session.
    let holder = match backend {
        Backend::Sqlite => LockHolder::sqlite(&db).await,
        Backend::MySql => {
            let id = embedmd::migrate::advisory_lock_id(&format!("{}:schema_migrations", db.name()), &[]);
            LockHolder::mysql(&db, id).await
        }
        Backend::Postgres => {
            let id = embedmd::migrate::advisory_lock_id(db.name(), &["public", "schema_migrations"]);
            LockHolder::postgres(&db, id).await
        }
    };
    let opening = tokio::spawn({
        let target = target(&db);
        async move { Datastore::open(&target, &PoolConfig::default(), &mlmd_types()).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if opening.is_finished() {
        panic!("must wait while another process holds the lock: {:?}", opening.await.unwrap().map(|(_, r)| r));
    }
    holder.release().await;
    let (store, report) =
        tokio::time::timeout(Duration::from_secs(30), opening).await.expect("proceeds once the lock is free").unwrap().unwrap();
    assert_eq!(report.to, Some(latest(backend)));
    store.close().await;
}

enum LockHolder {
    Sqlite(sqlx::SqliteConnection),
    MySql(sqlx::MySqlConnection, String),
    Postgres(sqlx::PgConnection, i64),
}

impl LockHolder {
    /// Another replica of ours: the same WAL journal, holding SQLite's write lock.
    async fn sqlite(db: &TestDb) -> Self {
        use sqlx::{ConnectOptions, Executor};
        let embedmd::ConnectTarget::Sqlite(options) = target(db) else { unreachable!() };
        let mut c = options.connect().await.unwrap();
        c.execute("BEGIN IMMEDIATE").await.unwrap();
        LockHolder::Sqlite(c)
    }

    async fn mysql(db: &TestDb, id: u32) -> Self {
        use sqlx::Connection;
        let mut c = sqlx::MySqlConnection::connect(db.url()).await.unwrap();
        let got: i64 = sqlx::query_scalar("SELECT GET_LOCK(?, 10)").bind(id.to_string()).fetch_one(&mut c).await.unwrap();
        assert_eq!(got, 1);
        LockHolder::MySql(c, id.to_string())
    }

    async fn postgres(db: &TestDb, id: u32) -> Self {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(db.url()).await.unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)").bind(i64::from(id)).execute(&mut c).await.unwrap();
        LockHolder::Postgres(c, i64::from(id))
    }

    async fn release(self) {
        use sqlx::{Connection, Executor};
        match self {
            LockHolder::Sqlite(mut c) => {
                c.execute("ROLLBACK").await.unwrap();
                c.close().await.unwrap();
            }
            LockHolder::MySql(mut c, id) => {
                sqlx::query("SELECT RELEASE_LOCK(?)").bind(id).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
            LockHolder::Postgres(mut c, id) => {
                sqlx::query("SELECT pg_advisory_unlock($1)").bind(id).execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

async fn databases_left_at_removed_upstream_slots_still_open(backend: Backend) {
    for slot in [17, 19, 20, 21] {
        let db = TestDb::new(backend).await;
        let conn = connection(&db).await;
        conn.migrator.goto(slot).await.unwrap();
        conn.pool.close().await;
        let (store, report) =
            Datastore::open(&target(&db), &PoolConfig::default(), &mlmd_types()).await.expect("opens at a removed slot");
        assert_eq!(report.from, Some(slot));
        assert_eq!(report.to, Some(latest(backend)));
        store.close().await;
    }
}

async fn legacy_kf_type_rows_are_not_duplicated(backend: Backend) {
    let db = TestDb::new(backend).await;
    let conn = connection(&db).await;
    conn.migrator.goto(16).await.unwrap();
    // What upstream's original 000016/000017 seeded, before types moved to code.
    let (types, props) = match backend {
        Backend::Postgres => ("\"Type\"", "\"TypeProperty\""),
        _ => ("Type", "TypeProperty"),
    };
    db.execute(&format!("INSERT INTO {types} (name, type_kind) VALUES ('kf.RegisteredModel', 2), ('kf.ModelVersion', 2)")).await;
    db.execute(&format!(
        "INSERT INTO {props} (type_id, name, data_type) SELECT id, 'state', 3 FROM {types} WHERE name = 'kf.RegisteredModel'"
    ))
    .await;
    conn.migrator.goto(21).await.unwrap();
    conn.pool.close().await;
    let (store, _) = Datastore::open(&target(&db), &PoolConfig::default(), &mlmd_types()).await.unwrap();
    let rows = db.query_text(&format!("SELECT COUNT(*) FROM {types} WHERE name LIKE 'kf.%'")).await;
    assert_eq!(rows[0][0].as_deref(), Some("13"));
    let rows = db
        .query_text(&format!(
            "SELECT COUNT(*) FROM {props} p JOIN {types} t ON t.id = p.type_id WHERE t.name = 'kf.RegisteredModel'"
        ))
        .await;
    assert_eq!(rows[0][0].as_deref(), Some("12"), "missing properties added, the old one kept once");
    store.close().await;
}

/// MySQL and SQLite: exactly MLMD's schema (modulo `schema_migrations`), checked against a
/// database the real MLMD library creates. PostgreSQL: upstream's layout through 24 exactly as
/// the upstream reference dump; 25 adds the two materialized views.
async fn schema_matches_the_reference(backend: Backend) {
    let ours = TestDb::new(backend).await;
    let conn = connection(&ours).await;
    match backend {
        Backend::Sqlite | Backend::MySql => {
            conn.migrator.up(None).await.unwrap();
            let mlmd = TestDb::new(backend).await;
            mlmd.mlmd_ok_async(&["create"]).await;
            testkit::assert_dump_eq(
                &mlmd.schema_dump().await,
                &ours.schema_dump_excluding(&["schema_migrations"]).await,
                "our migrations vs MLMD's own schema",
            );
            if backend == Backend::MySql {
                let reference = testkit::strip_dump_header(&testkit::reference_schema("upstream-embedmd-mysql"));
                testkit::assert_dump_eq(&reference, &ours.schema_dump().await, "our migrations vs upstream's");
            }
        }
        Backend::Postgres => {
            conn.migrator.goto(24).await.unwrap();
            let reference = testkit::strip_dump_header(&testkit::reference_schema("upstream-embedmd-postgres"));
            testkit::assert_dump_eq(&reference, &ours.schema_dump().await, "our migrations vs upstream's (1-24)");
            conn.migrator.up(None).await.unwrap();
            let dump = ours.schema_dump().await;
            assert!(dump.contains("MATVIEW artifact_property_options"), "{dump}");
            assert!(dump.contains("MATVIEW context_property_options"), "{dump}");
        }
    }
    conn.pool.close().await;
}

async fn adopts_an_mlmd_database_and_mlmd_still_reads_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.mlmd_ok_async(&["seed"]).await;
    let before = db.schema_dump().await;

    let (store, report) =
        Datastore::open(&target(&db), &PoolConfig::default(), &mlmd_types()).await.expect("adopts MLMD's database");
    let expected_dialect = match backend {
        Backend::Sqlite => Dialect::Sqlite,
        Backend::MySql => Dialect::MySql,
        Backend::Postgres => Dialect::PostgresMlmd,
    };
    assert_eq!(store.dialect(), expected_dialect);
    assert_eq!(report.to, Some(latest(backend)));
    assert_eq!(store.types().len(), TYPES_SYNCED);
    store.close().await;

    db.mlmd_ok_async(&["verify"]).await;
    db.mlmd_ok_async(&["roundtrip"]).await;
    let env = db.query_text("SELECT schema_version FROM MLMDEnv").await;
    assert_eq!(env, vec![vec![Some("10".to_owned())]], "exactly one MLMDEnv row");
    let duplicates = db.query_text("SELECT name FROM Type WHERE name LIKE 'mlmd.%' GROUP BY name HAVING COUNT(*) > 1").await;
    assert!(duplicates.is_empty(), "{duplicates:?}");

    if backend != Backend::Postgres {
        // Nothing of MLMD's schema changed: only our bookkeeping and the registry's types.
        testkit::assert_dump_eq(
            &strip_type_data(&before),
            &strip_type_data(&db.schema_dump_excluding(&["schema_migrations"]).await),
            "MLMD's schema after adoption",
        );
    } else {
        // Down to 21 leaves exactly MLMD's PostgreSQL schema.
        let conn = connection(&db).await;
        assert_eq!(conn.dialect, Dialect::PostgresMlmd);
        conn.migrator.goto(21).await.unwrap();
        testkit::assert_dump_eq(
            &strip_type_data(&before),
            &strip_type_data(&db.schema_dump_excluding(&["schema_migrations"]).await),
            "MLMD's PostgreSQL schema after adoption, at 21",
        );
        conn.pool.close().await;
        db.mlmd_ok_async(&["verify"]).await;
    }

    // MLMD also opens a database that we created from scratch (on PostgreSQL, upstream's
    // quoted layout is invisible to MLMD; see docs/migrations.md).
    if backend != Backend::Postgres {
        let ours = TestDb::new(backend).await;
        Datastore::open(&target(&ours), &PoolConfig::default(), &mlmd_types()).await.unwrap().0.close().await;
        ours.mlmd_ok_async(&["roundtrip"]).await;
        ours.mlmd_ok_async(&["seed"]).await;
        ours.mlmd_ok_async(&["verify"]).await;
    }
}

/// Type and TypeProperty rows change on purpose (the registry adds its types); compare the rest.
fn strip_type_data(dump: &str) -> String {
    let mut in_type_data = false;
    dump.lines()
        .filter(|line| {
            if line.starts_with("DATA ") {
                in_type_data = line.to_ascii_lowercase().starts_with("data type");
            } else if !line.starts_with("  ") {
                in_type_data = false;
            }
            !in_type_data
        })
        .collect::<Vec<_>>()
        .join("\n")
}
