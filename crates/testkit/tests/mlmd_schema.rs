//! The MLMD oracle creates a database on each backend; `schema_dump` of it must equal the
//! reference dump `mlmd-<backend>.txt` (header lines aside) exactly.

use testkit::{assert_dump_eq, reference_schema, Backend, TestDb};

async fn mlmd_created_db_matches_reference(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.mlmd_ok_async(&["create"]).await;
    let dump = db.schema_dump().await;
    let expected = reference_schema(&format!("mlmd-{}", backend.name()));
    assert_dump_eq(&expected, &dump, &format!("MLMD-created {backend} database vs reference"));

    // Opening again is a no-op for the schema and the seed types.
    db.mlmd_ok_async(&["create"]).await;
    assert_dump_eq(&expected, &db.schema_dump().await, "after a second MLMD open");

    // A golang-migrate bookkeeping table is invisible to MLMD, and the dump can leave it out.
    db.execute("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)").await;
    db.execute("INSERT INTO schema_migrations VALUES (21, false)").await;
    db.mlmd_ok_async(&["create"]).await;
    let full = db.schema_dump().await;
    assert!(full.contains("\nTABLE schema_migrations\n"), "{full}");
    assert!(full.contains("\nDATA schema_migrations = [version=21 dirty=false]\n"), "{full}");
    let modulo = db.schema_dump_excluding(&["schema_migrations"]).await;
    assert_dump_eq(&expected, &modulo, "modulo schema_migrations");
}

#[tokio::test]
async fn mlmd_schema_sqlite() {
    mlmd_created_db_matches_reference(Backend::Sqlite).await;
}

#[tokio::test]
async fn mlmd_schema_mysql() {
    mlmd_created_db_matches_reference(Backend::MySql).await;
}

#[tokio::test]
async fn mlmd_schema_postgres() {
    mlmd_created_db_matches_reference(Backend::Postgres).await;
}
