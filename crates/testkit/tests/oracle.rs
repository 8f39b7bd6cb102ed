//! The MLMD oracle (e2e/mlmd_oracle.py, ml-metadata 1.17.1) on every backend: seed + verify,
//! roundtrip, dump, MLMD's error messages passed through.

use serde_json::Value;
use testkit::{Backend, TestDb};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("oracle printed invalid JSON ({e}):\n{s}"))
}

async fn seed_verify_roundtrip(backend: Backend) {
    let db = TestDb::new(backend).await;
    let seeded = json(&db.mlmd_ok_async(&["seed"]).await);
    assert_eq!(seeded["artifact_ids"].as_object().unwrap().len(), 2, "{seeded}");
    assert_eq!(seeded["context_ids"].as_object().unwrap().len(), 2, "{seeded}");
    assert_eq!(seeded["execution_ids"].as_object().unwrap().len(), 1, "{seeded}");

    let v = json(&db.mlmd_ok_async(&["verify", "--strict"]).await);
    assert_eq!(v["ok"], true);
    assert_eq!(v["artifact_ids"], seeded["artifact_ids"]);
    assert_eq!(v["events"], 2);
    assert_eq!(v["attributions"], 2);

    let rt = json(&db.mlmd_ok_async(&["roundtrip"]).await);
    assert_eq!(rt["ok"], true);
    let rt2 = json(&db.mlmd_ok_async(&["roundtrip", "--suffix", "fixed"]).await);
    assert_eq!(rt2["suffix"], "fixed");

    // The seed is still intact, but no longer alone.
    db.mlmd_ok_async(&["verify"]).await;
    let err = db.mlmd_err_async(&["verify", "--strict"]).await;
    assert!(err.contains("verify failed") && err.contains("unexpected entities"), "{err}");

    // dump: deterministic, complete.
    let d1 = db.mlmd_ok_async(&["dump"]).await;
    let d2 = db.mlmd_ok_async(&["dump-artifacts"]).await;
    assert_eq!(d1, d2, "dump output must be deterministic");
    let d = json(&d1);
    let artifacts = d["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 4, "2 seeded + 2 roundtrip artifacts");
    let a1 = artifacts.iter().find(|a| a["name"] == "seed-model-1").expect("seed-model-1");
    assert_eq!(a1["type"], "seed.Model");
    assert_eq!(a1["state"], "LIVE");
    assert_eq!(a1["properties"]["size_bytes"], serde_json::json!({"int": 1048576}));
    assert_eq!(a1["properties"]["accuracy"], serde_json::json!({"double": 0.875}));
    assert_eq!(a1["custom_properties"]["c_bool"], serde_json::json!({"bool": true}));
    assert_eq!(
        a1["custom_properties"]["c_struct"],
        serde_json::json!({"struct": {"a": 1.0, "b": ["x", true, null], "c": {"d": "e"}}})
    );
    let types: Vec<&str> = d["artifact_types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    // (MLMD's type listings hide its own simple types mlmd.*)
    for t in ["seed.Model", "rt.Model.fixed"] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    let seed_type = d["artifact_types"].as_array().unwrap().iter().find(|t| t["name"] == "seed.Model").unwrap();
    assert_eq!(seed_type["base_type"], "MODEL");
    assert_eq!(d["parent_contexts"].as_array().unwrap().len(), 3, "1 seeded + 2 roundtrip links");
    assert_eq!(d["events"].as_array().unwrap().len(), 4);
    let ev = d["events"].as_array().unwrap().iter().find(|e| e["type"] == "OUTPUT").unwrap();
    assert_eq!(ev["path"], serde_json::json!([{"index": 0}, {"key": "model"}]));

    // How MLMD stores it: one MLMDEnv row (10), the nine simple types plus ours.
    let dump = db.schema_dump().await;
    let env_line =
        if backend == Backend::Postgres { "DATA mlmdenv.schema_version = [10]" } else { "DATA MLMDEnv.schema_version = [10]" };
    assert!(dump.contains(env_line), "{dump}");
    assert!(dump.contains("  kind=1 name=seed.Model version=NULL"), "{dump}");
    assert!(dump.contains("  kind=1 type=seed.Model version=NULL name=accuracy data_type=2"), "{dump}");
}

async fn verify_detects_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.mlmd_ok_async(&["seed"]).await;
    // Unquoted names work on every backend (PostgreSQL folds them to MLMD's lower case).
    db.execute("UPDATE ArtifactProperty SET string_value = 'tampered' WHERE name = 'framework' AND string_value = 'onnx'").await;
    let err = db.mlmd_err_async(&["verify"]).await;
    assert!(err.contains("verify failed") && err.contains("seed-model-1") && err.contains("tampered"), "{err}");

    let db = TestDb::new(backend).await;
    db.mlmd_ok_async(&["seed"]).await;
    db.execute("DELETE FROM Attribution").await;
    let err = db.mlmd_err_async(&["verify"]).await;
    assert!(err.contains("attributions"), "{err}");

    let db = TestDb::new(backend).await;
    db.mlmd_ok_async(&["create"]).await;
    let err = db.mlmd_err_async(&["verify"]).await;
    assert!(err.contains("verify failed") && err.contains("seed.Model"), "{err}");
}

async fn mlmd_errors_pass_through(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.mlmd_ok_async(&["create"]).await;
    db.execute("UPDATE MLMDEnv SET schema_version = 9").await;
    let err = db.mlmd_err_async(&["create"]).await;
    assert!(err.contains("MLMD database version 9 is older than library version 10"), "{err}");
    db.execute("UPDATE MLMDEnv SET schema_version = 11").await;
    let err = db.mlmd_err_async(&["verify"]).await;
    assert!(err.contains("MLMD database version 11 is greater than library version 10"), "{err}");
    assert!(err.starts_with("mlmd_oracle: "), "{err}");
    let out = db.mlmd_async(&["create"]).await;
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn oracle_sqlite() {
    seed_verify_roundtrip(Backend::Sqlite).await;
}

#[tokio::test]
async fn oracle_mysql() {
    seed_verify_roundtrip(Backend::MySql).await;
}

#[tokio::test]
async fn oracle_postgres() {
    seed_verify_roundtrip(Backend::Postgres).await;
}

#[tokio::test]
async fn oracle_verify_detects_changes_sqlite() {
    verify_detects_changes(Backend::Sqlite).await;
}

#[tokio::test]
async fn oracle_verify_detects_changes_mysql() {
    verify_detects_changes(Backend::MySql).await;
}

#[tokio::test]
async fn oracle_verify_detects_changes_postgres() {
    verify_detects_changes(Backend::Postgres).await;
}

#[tokio::test]
async fn oracle_errors_sqlite() {
    mlmd_errors_pass_through(Backend::Sqlite).await;
}

#[tokio::test]
async fn oracle_errors_mysql() {
    mlmd_errors_pass_through(Backend::MySql).await;
}

#[tokio::test]
async fn oracle_errors_postgres() {
    mlmd_errors_pass_through(Backend::Postgres).await;
}

#[test]
fn sync_helpers_and_bad_arguments() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = rt.block_on(TestDb::new(Backend::Sqlite));
    let out = testkit::mlmd_ok(&["--db", db.url(), "create"]);
    assert_eq!(json(&out)["ok"], true);
    assert_eq!(db.mlmd(&["create"]).status.code(), Some(0));
    // argparse error: exit 2, usage on stderr
    let out = db.mlmd(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    let err = testkit::mlmd_err(&["--db", "oracle://x/y", "create"]);
    assert!(err.contains("unsupported --db url scheme"), "{err}");
}
