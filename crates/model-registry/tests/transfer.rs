//! `export`, `import` and `backup` through the real binary: a registry with every entity kind,
//! custom properties of every value kind, archived states and rows the MLMD library wrote moves
//! between every pair of backends (and out of MLMD's own PostgreSQL layout) with every REST list
//! and get answering the same bytes; the target's schema is a fresh one's, MLMD reads it as it
//! read the source, and new rows get fresh ids. An export while writers run is one snapshot; a
//! backup while 16 writers run holds every acknowledged write; the one-line pipe moves a live
//! SQLite registry to PostgreSQL.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use model_registry::http::resources::{operations, Action, Method};
use model_registry::registry::ApiVersion;
use reqwest::Url;
use serde_json::{json, Value};
use testkit::{Backend, TestDb};

mod support;
use support::app::Api;
use support::server::{database_flags, Server, BIN};

testkit::on_every_backend!(moves_to_every_backend, an_export_while_writers_run_is_one_snapshot);

/// The binary with `args`, `stdin` fed to it; its output. No config file is read.
fn cli(args: &[String], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("HOME", "/nonexistent")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        std::io::Write::write_all(&mut input, bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn cli_ok(args: &[String]) -> Output {
    let output = cli(args, None);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn args(command: &[&str], db: &TestDb) -> Vec<String> {
    command.iter().map(|s| s.to_string()).chain(database_flags(db)).collect()
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("ids are strings").to_owned()
}

/// Every custom property value kind the REST API takes. (Doubles at the edges of the range are
/// in embedmd's transfer tests: MLMD reads doubles through text, f64::MAX as infinity.)
fn every_kind() -> Value {
    let structure = base64::engine::general_purpose::STANDARD.encode(r#"{"a":1,"b":["x",true],"c":{"d":null}}"#);
    json!({
        "int": {"metadataType": "MetadataIntValue", "int_value": "-2147483648"},
        "double": {"metadataType": "MetadataDoubleValue", "double_value": 0.1},
        "negative": {"metadataType": "MetadataDoubleValue", "double_value": -2.5e-10},
        "string": {"metadataType": "MetadataStringValue", "string_value": "ünïcode ✓ \"q\" \\ \n"},
        "bool": {"metadataType": "MetadataBoolValue", "bool_value": false},
        "struct": {"metadataType": "MetadataStructValue", "struct_value": structure},
    })
}

/// A POST that must be taken (200 or 201); the body.
async fn written(api: &Api, path: &str, body: Value) -> Value {
    let (status, value) = api.post(path, body).await;
    assert!(status == 200 || status == 201, "{path}: {status} {value}");
    value
}

/// Every entity kind through the API, archived ones and a metric's history among them.
async fn fill(api: &Api) {
    let m1 = id(&api
        .created(
            "/registered_models",
            json!({"name": "m1", "owner": "o", "description": "d", "language": ["en", "fr"], "tasks": ["nlp"],
                   "externalId": "ext-m1", "customProperties": every_kind()}),
        )
        .await);
    let m2 = id(&api.created("/registered_models", json!({"name": "team:m2", "state": "ARCHIVED"})).await);
    let v1 = id(&api
        .created(
            "/model_versions",
            json!({"name": "v1", "registeredModelId": m1, "author": "a", "customProperties": every_kind()}),
        )
        .await);
    api.created(&format!("/registered_models/{m1}/versions"), json!({"name": "v2", "state": "ARCHIVED"})).await;
    api.created("/model_versions", json!({"name": "v1", "registeredModelId": m2})).await;
    let artifacts = format!("/model_versions/{v1}/artifacts");
    written(
        api,
        &artifacts,
        json!({"artifactType": "model-artifact", "name": "m1", "uri": "s3://b/m1", "modelFormatName": "onnx",
               "modelFormatVersion": "1", "state": "LIVE", "customProperties": every_kind()}),
    )
    .await;
    written(
        api,
        &artifacts,
        json!({"artifactType": "doc-artifact", "name": "readme", "uri": "s3://b/readme", "state": "DELETED"}),
    )
    .await;
    written(api, &artifacts, json!({"artifactType": "dataset-artifact", "name": "ds", "uri": "s3://d", "digest": "sha256:1"}))
        .await;
    written(api, &artifacts, json!({"artifactType": "metric", "name": "acc", "value": 0.9, "step": 3})).await;
    written(api, &artifacts, json!({"artifactType": "parameter", "name": "lr", "value": "0.1", "parameterType": "number"})).await;
    api.created("/model_artifacts", json!({"name": "loose", "uri": "u", "externalId": "ext-loose"})).await;
    api.created("/artifacts", json!({"artifactType": "doc-artifact", "name": "notes"})).await;

    let se1 = id(&api.created("/serving_environments", json!({"name": "se1"})).await);
    let se2 = id(&api.created("/serving_environments", json!({"name": "se2", "externalId": "ext-se2"})).await);
    let is1 = id(&api
        .created("/inference_services", json!({"registeredModelId": m1, "servingEnvironmentId": se1, "modelVersionId": v1}))
        .await);
    api.created(
        &format!("/serving_environments/{se2}/inference_services"),
        json!({"name": "svc", "registeredModelId": m2, "desiredState": "UNDEPLOYED"}),
    )
    .await;
    api.created(&format!("/inference_services/{is1}/serves"), json!({"modelVersionId": v1})).await;

    let e1 = id(&api.created("/experiments", json!({"name": "e1", "owner": "o", "customProperties": every_kind()})).await);
    api.created("/experiments", json!({"name": "e2", "state": "ARCHIVED"})).await;
    let r1 = id(&api.created("/experiment_runs", json!({"experimentId": e1, "startTimeSinceEpoch": "1000"})).await);
    api.created(&format!("/experiments/{e1}/experiment_runs"), json!({"name": "r2", "state": "ARCHIVED"})).await;
    let (status, _) =
        api.patch(&format!("/experiment_runs/{r1}"), json!({"status": "FINISHED", "endTimeSinceEpoch": "2000"})).await;
    assert_eq!(status, 200);
    let run_artifacts = format!("/experiment_runs/{r1}/artifacts");
    for step in 1..=3 {
        tokio::time::sleep(Duration::from_millis(3)).await;
        written(
            api,
            &run_artifacts,
            json!({"artifactType": "metric", "name": "loss", "value": 1.0 / f64::from(step), "step": step}),
        )
        .await;
    }
    written(api, &run_artifacts, json!({"artifactType": "parameter", "name": "epochs", "value": "3"})).await;
    written(api, &run_artifacts, json!({"artifactType": "dataset-artifact", "name": "train", "uri": "s3://train"})).await;
}

/// Runs the MLMD oracle on `db`. MLMD cannot see our PostgreSQL layout's quoted tables; there it
/// goes through lower-case views of them (simple views, so MLMD writes through them too),
/// dropped again afterwards. `mlmd_layout` says the database has MLMD's own tables.
async fn with_mlmd(db: &TestDb, mlmd_layout: bool, commands: &[&[&str]]) -> Vec<String> {
    let views = db.backend() == Backend::Postgres && !mlmd_layout;
    if views {
        for table in embedmd::Table::ALL.map(embedmd::Table::camel_name) {
            db.execute(&format!("CREATE VIEW {} AS SELECT * FROM \"{table}\"", table.to_lowercase())).await;
        }
    }
    let mut outputs = Vec::new();
    for command in commands {
        outputs.push(db.mlmd_ok_async(command).await);
    }
    if views {
        for table in embedmd::Table::ALL.map(embedmd::Table::camel_name) {
            db.execute(&format!("DROP VIEW {}", table.to_lowercase())).await;
        }
    }
    outputs
}

/// What a request answered.
type Answer = (String, u16, String);

/// Every GET of both API versions, for every id the lists show: each list (also paged and in
/// other orders), each entity by id, each find by name, external id and parent, each nested
/// list, each metric history and each inference service's model and version. The requests
/// follow from the answers, so two databases that answer alike are walked alike.
async fn walk(root: &str) -> Vec<Answer> {
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for version in ApiVersion::ALL {
        let base = format!("{root}{}", version.base_path());
        let mut get = async |path: &str, query: &[(&str, &str)]| -> Value {
            let url = Url::parse_with_params(&format!("{base}{path}"), query).unwrap();
            let response = http.get(url.clone()).send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            answers.push((format!("{}?{}", url.path(), url.query().unwrap_or_default()), status, text.clone()));
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        let gets: Vec<_> = operations(version).into_iter().filter(|o| o.method == Method::Get).collect();
        let list_of = |subject: &[model_registry::registry::EntityKind]| {
            gets.iter().find(|o| o.action == Action::List && o.subject == subject).map(|o| o.path.clone())
        };
        let mut items: std::collections::HashMap<String, Vec<Value>> = Default::default();
        for op in gets.iter().filter(|o| o.action == Action::List) {
            let listed = get(&op.path, &[]).await;
            get(&op.path, &[("orderBy", "LAST_UPDATE_TIME"), ("sortOrder", "DESC")]).await;
            let mut token = String::new();
            loop {
                let page = get(&op.path, &[("pageSize", "2"), ("orderBy", "CREATE_TIME"), ("nextPageToken", &token)]).await;
                token = page["nextPageToken"].as_str().unwrap_or_default().to_owned();
                if token.is_empty() {
                    break;
                }
            }
            items.insert(op.path.clone(), listed["items"].as_array().cloned().unwrap_or_default());
        }
        let ids = |path: &Option<String>| -> Vec<String> {
            path.as_ref().and_then(|p| items.get(p)).into_iter().flatten().map(id).collect()
        };
        for op in &gets {
            match op.action {
                Action::Get => {
                    for i in ids(&Some(op.path.replace("/{id}", ""))) {
                        get(&op.path.replace("{id}", &i), &[]).await;
                    }
                }
                Action::Find => {
                    for item in list_of(op.subject).and_then(|p| items.get(&p).cloned()).unwrap_or_default() {
                        let name = item["name"].as_str().unwrap_or_default();
                        get(&op.path, &[("name", name)]).await;
                        if let Some(external) = item["externalId"].as_str() {
                            get(&op.path, &[("externalId", external)]).await;
                        }
                        for parent in ["registeredModelId", "servingEnvironmentId", "experimentId", "modelVersionId"] {
                            if let Some(p) = item[parent].as_str() {
                                get(&op.path, &[("name", name), ("parentResourceId", p)]).await;
                            }
                        }
                    }
                }
                Action::ListChildren { .. } | Action::MetricHistory | Action::ServiceModel | Action::ServiceVersion => {
                    let Some(parent) = op.path_entity() else {
                        get(&op.path, &[]).await;
                        get(&op.path, &[("pageSize", "1")]).await;
                        continue;
                    };
                    for p in ids(&list_of(&[parent])) {
                        let path = op.path.replace("{id}", &p);
                        let children = get(&path, &[]).await;
                        get(&path, &[("pageSize", "1"), ("sortOrder", "DESC")]).await;
                        let finds =
                            gets.iter().filter(|f| f.action == Action::Find && f.subject.iter().any(|k| op.subject.contains(k)));
                        for find in finds {
                            for child in children["items"].as_array().into_iter().flatten() {
                                let name = child["name"].as_str().unwrap_or_default();
                                get(&find.path, &[("name", name), ("parentResourceId", &p)]).await;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    answers
}

fn root_of(api: &Api) -> String {
    api.base.split("/api/").next().unwrap().to_owned()
}

fn assert_same_answers(got: &[Answer], expected: &[Answer], what: &str) {
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(g, e, "{what}: the first answer that differs");
    }
    assert_eq!(got.len(), expected.len(), "{what}: as many requests");
}

/// The rows of an export file (every line but the header, which names the source and the time).
fn rows_of(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file).unwrap().lines().skip(1).map(str::to_owned).collect()
}

/// A schema dump without its type rows (the target's types are the source's).
fn structure(dump: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in dump.lines() {
        if line.starts_with("DATA ") || line.starts_with("TABLE ") || line.starts_with("VIEW ") || line.starts_with("MATVIEW ") {
            skipping = line.starts_with("DATA Type ") || line.starts_with("DATA TypeProperty ");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// An MLMD dump as far as MLMD reads it alike on two backends: unless `exact`, doubles to 12
/// digits and, with `mask_text`, text beyond ASCII (and text MLMD could not decode) masked.
fn as_mlmd_reads(dump: &str, exact: bool, mask_text: bool) -> Value {
    fn mask(value: Value, exact: bool, mask_text: bool) -> Value {
        match value {
            Value::String(s) if mask_text && !s.is_ascii() => json!("<not ascii>"),
            Value::Object(o) if mask_text && o.contains_key("bytes_b64") => json!("<not ascii>"),
            Value::Number(n) if !exact && n.is_f64() => json!(format!("{:.11e}", n.as_f64().unwrap())),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, mask(v, exact, mask_text))).collect()),
            Value::Array(a) => Value::Array(a.into_iter().map(|v| mask(v, exact, mask_text)).collect()),
            other => other,
        }
    }
    mask(serde_json::from_str(dump).unwrap(), exact, mask_text)
}

/// Where two JSON values first differ, and how.
fn first_difference(got: &Value, expected: &Value, path: String) -> Option<String> {
    match (got, expected) {
        (Value::Object(g), Value::Object(e)) => e
            .iter()
            .find_map(|(k, v)| match g.get(k) {
                Some(gv) => first_difference(gv, v, format!("{path}/{k}")),
                None => Some(format!("{path}/{k}: missing")),
            })
            .or_else(|| g.keys().find(|k| !e.contains_key(*k)).map(|k| format!("{path}/{k}: not expected"))),
        (Value::Array(g), Value::Array(e)) if g.len() == e.len() => {
            g.iter().zip(e).enumerate().find_map(|(i, (gv, ev))| first_difference(gv, ev, format!("{path}/{i}")))
        }
        _ if got == expected => None,
        _ => Some(format!("{path}: {got} instead of {expected}")),
    }
}

/// The highest id of `table` in an export file.
fn max_id(file: &str, table: &str) -> i64 {
    table_rows(file, table).iter().filter_map(|r| r["id"].as_i64()).max().unwrap_or(0)
}

/// A registry on `backend` with the API's rows and MLMD's; the MLMD dump of it.
async fn source(backend: Backend) -> (Api, String) {
    let api = Api::start(backend).await;
    fill(&api).await;
    let outputs = with_mlmd(&api.db, false, &[&["seed"], &["seed-values"], &["dump"]]).await;
    (api, outputs[2].clone())
}

async fn moves_to_every_backend(backend: Backend) {
    let (source, mlmd_dump) = source(backend).await;
    check_moves(&source, false, &mlmd_dump).await;
}

/// A PostgreSQL database MLMD created (its lower-case layout) and the older registry filled,
/// then written to through this server.
#[tokio::test(flavor = "multi_thread")]
async fn moves_out_of_an_mlmd_postgres_database() {
    let db = TestDb::new(Backend::Postgres).await;
    with_mlmd(&db, true, &[&["seed-registry"], &["seed"], &["seed-values"]]).await;
    let source = Api::start_on(db).await;
    fill(&source).await;
    let mlmd_dump = with_mlmd(&source.db, true, &[&["dump"]]).await.remove(0);
    check_moves(&source, true, &mlmd_dump).await;
}

/// Exports `source` with the binary, imports it into a fresh database of each backend and
/// checks the target against the source.
async fn check_moves(source: &Api, mlmd_layout: bool, mlmd_dump: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.jsonl");
    let exported = cli_ok(&args(&["export", "--output", file.to_str().unwrap()], &source.db));
    let summary = String::from_utf8(exported.stderr).unwrap();
    assert!(
        summary.contains(&format!("source {}", if mlmd_layout { "postgres-mlmd" } else { source.db.backend().name() })),
        "{summary}"
    );
    let header: Value = serde_json::from_str(std::fs::read_to_string(&file).unwrap().lines().next().unwrap()).unwrap();
    assert!(header["source"]["migration_version"].as_u64().is_some(), "{header}");
    assert_eq!((header["format"].as_str(), header["format_version"].as_u64()), (Some("model-registry-export"), Some(1)));
    let text = std::fs::read_to_string(&file).unwrap();
    let expected = walk(&root_of(source)).await;
    assert!(expected.len() > 250, "the walk covers the registry ({} requests)", expected.len());

    for backend in [Backend::Sqlite, Backend::MySql, Backend::Postgres] {
        let what = format!("{} -> {backend}", source.db.backend());
        let db = TestDb::new(backend).await;
        let imported = cli_ok(&args(&["import", "--input", file.to_str().unwrap()], &db));
        let summary = String::from_utf8(imported.stderr).unwrap();
        assert!(summary.contains("  ContextProperty"), "{summary}");
        let target = Api::start_on(db).await;
        assert_same_answers(&walk(&root_of(&target)).await, &expected, &what);

        let again = dir.path().join(format!("again-{backend}.jsonl"));
        cli_ok(&args(&["export", "--output", again.to_str().unwrap()], &target.db));
        assert_eq!(rows_of(&again), rows_of(&file), "{what}: the target holds the source's rows, and its sequences the source's");

        // MLMD reads doubles through text, to 15 digits on SQLite and 17 elsewhere, and its
        // MySQL client reads text as latin1, so text beyond ASCII reads differently there (as
        // everything this server writes to MySQL does): across backends those are compared
        // as far as MLMD reads them alike; on one backend, everything.
        let same = source.db.backend() == backend;
        let crosses_mysql = (source.db.backend() == Backend::MySql) != (backend == Backend::MySql);
        let target_mlmd = with_mlmd(&target.db, false, &[&["dump"]]).await.remove(0);
        let (got, expected) = (as_mlmd_reads(&target_mlmd, same, crosses_mysql), as_mlmd_reads(mlmd_dump, same, crosses_mysql));
        if let Some(difference) = first_difference(&got, &expected, String::new()) {
            panic!("{what}: MLMD reads the target otherwise than the source: {difference}");
        }
        if !crosses_mysql {
            with_mlmd(&target.db, false, &[&["verify"]]).await;
        }

        let fresh = Api::start(backend).await;
        assert_eq!(structure(&target.db.schema_dump().await), structure(&fresh.db.schema_dump().await), "{what}: the schema");

        // New rows get ids none of the imported ones has, through the API and through MLMD.
        let (contexts, artifacts, executions) = (max_id(&text, "Context"), max_id(&text, "Artifact"), max_id(&text, "Execution"));
        let fresh_id = |value: &Value, above: i64| {
            let new: i64 = id(value).parse().unwrap();
            assert!(new > above, "{what}: new id {new} is not past the imported {above}");
            new.to_string()
        };
        let model = fresh_id(&target.created("/registered_models", json!({"name": "after"})).await, contexts);
        let version =
            fresh_id(&target.created(&format!("/registered_models/{model}/versions"), json!({"name": "v"})).await, contexts);
        let artifact = written(
            &target,
            &format!("/model_versions/{version}/artifacts"),
            json!({"artifactType": "doc-artifact", "uri": "x"}),
        )
        .await;
        fresh_id(&artifact, artifacts);
        let env = fresh_id(&target.created("/serving_environments", json!({"name": "after"})).await, contexts);
        let service =
            target.created("/inference_services", json!({"registeredModelId": model, "servingEnvironmentId": env})).await;
        let service = fresh_id(&service, contexts);
        fresh_id(
            &target.created(&format!("/inference_services/{service}/serves"), json!({"modelVersionId": version})).await,
            executions,
        );
        let roundtrip: Value = serde_json::from_str(&with_mlmd(&target.db, false, &[&["roundtrip"]]).await[0]).unwrap();
        for (ids, above) in [("artifact_ids", artifacts), ("context_ids", contexts), ("execution_ids", executions)] {
            for (_, new) in roundtrip[ids].as_object().unwrap() {
                assert!(new.as_i64().unwrap() > above, "{what}: MLMD's new {ids} {new} collides with the imported ids");
            }
        }
    }
}

/// `model-registry export --output - | model-registry import --input -`, the line in docs/moving-and-backups.md,
/// while the SQLite registry's server keeps serving; a second run is refused by the now
/// non-empty target and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn one_pipe_moves_a_live_sqlite_registry_to_postgres() {
    let (source, _) = source(Backend::Sqlite).await;
    let server = Server::ready_on(&source.db, &[]).await;
    let target = TestDb::new(Backend::Postgres).await;
    let pipe = |source: &TestDb, target: &TestDb| {
        let line = format!(
            "set -o pipefail; {BIN} {} | {BIN} {}",
            shell(&args(&["export", "--output", "-"], source)),
            shell(&args(&["import", "--input", "-"], target))
        );
        Command::new("bash").args(["-c", &line]).env("HOME", "/nonexistent").output().unwrap()
    };
    let moved = pipe(&source.db, &target);
    let stderr = String::from_utf8_lossy(&moved.stderr);
    assert!(moved.status.success(), "{stderr}");
    assert!(stderr.contains("exported sqlite file") && stderr.contains("imported stdin into postgres database"), "{stderr}");
    let expected = walk(&server.base).await;
    let target_dump = target.schema_dump().await;
    let target = Api::start_on(target).await;
    assert_same_answers(&walk(&root_of(&target)).await, &expected, "sqlite -> postgres through a pipe");

    let again = pipe(&source.db, &target.db);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(stderr.contains("error: the target database is not empty: Artifact holds rows"), "{stderr}");
    assert_eq!(target.db.schema_dump().await, target_dump);
    assert_same_answers(&walk(&root_of(&target)).await, &expected, "after the refused second import");
    drop(server);
}

/// Arguments quoted for a shell command line.
fn shell(args: &[String]) -> String {
    args.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ")
}

/// On a terminal (here a pseudo-terminal from `script`) both commands show the rows done and the
/// rate while they run; elsewhere they print only their summary.
#[tokio::test(flavor = "multi_thread")]
async fn progress_shows_on_a_terminal_only() {
    let api = Api::start(Backend::Sqlite).await;
    for i in 0..100 {
        let model = api.created("/registered_models", json!({"name": format!("m{i}")})).await;
        api.created(&format!("/registered_models/{}/versions", id(&model)), json!({"name": "v"})).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.jsonl");
    let on_terminal = |args: Vec<String>| {
        let line = format!("{BIN} {}", shell(&args));
        let output = Command::new("script").args(["-qec", &line, "/dev/null"]).env("HOME", "/nonexistent").output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
        String::from_utf8(output.stdout).unwrap()
    };
    let shown = on_terminal(args(&["export", "--output", file.to_str().unwrap()], &api.db));
    assert!(shown.contains("\r\x1b[Kexporting: 512 rows, ") && shown.contains(" rows/s ("), "{shown:?}");
    assert!(shown.contains("exported sqlite file"), "and the summary: {shown:?}");

    let quiet = cli(&args(&["import", "--input", file.to_str().unwrap()], &TestDb::new(Backend::Sqlite).await), None);
    let stderr = String::from_utf8(quiet.stderr).unwrap();
    assert!(quiet.status.success() && stderr.starts_with("imported "), "{stderr}");
    assert!(!stderr.contains('\r') && !stderr.contains("importing:"), "no progress off a terminal: {stderr:?}");
    let target = TestDb::new(Backend::Postgres).await;
    let shown = on_terminal(args(&["import", "--input", file.to_str().unwrap()], &target));
    assert!(shown.contains("\r\x1b[Kimporting: 512 rows, "), "{shown:?}");
}

/// Model ids acknowledged by the writers, and whether to go on.
#[derive(Default)]
struct Writers {
    acked: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// `n` clients registering models (with a custom property, and a version each) until stopped.
fn write_until_stopped(api: &Api, n: usize, writers: &Arc<Writers>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|w| {
            let (api, writers) = (api.clone(), writers.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !writers.stop.load(Ordering::Relaxed) {
                    i += 1;
                    let body = json!({"name": format!("w{w}-{i}"), "customProperties": {
                        "writer": {"metadataType": "MetadataIntValue", "int_value": w.to_string()}}});
                    let (status, model) = api.post("/registered_models", body).await;
                    assert_eq!(status, 201, "{model}");
                    let (status, version) =
                        api.post(&format!("/registered_models/{}/versions", id(&model)), json!({"name": "v"})).await;
                    assert_eq!(status, 201, "{version}");
                    writers.acked.lock().unwrap().push(id(&model));
                }
            })
        })
        .collect()
}

/// The file's rows of `table`, as JSON.
fn table_rows(file: &str, table: &str) -> Vec<Value> {
    let prefix = format!("{{\"table\":\"{table}\"");
    file.lines().filter(|l| l.starts_with(&prefix)).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// An export read slowly (the binary writes into a pipe that is drained a little at a time,
/// so it reads its tables seconds apart) while four clients keep writing: every property and
/// link in the file points at a row in it, every model acknowledged before the export began is
/// in it, and PostgreSQL, whose foreign keys check exactly that, takes it.
async fn an_export_while_writers_run_is_one_snapshot(backend: Backend) {
    use tokio::io::AsyncReadExt;
    let api = Api::start(backend).await;
    // More than the export's write buffer, most of it in ContextProperty: the export blocks on
    // the pipe between reading Context and reading what points at it.
    for i in 0..200 {
        let model =
            api.created("/registered_models", json!({"name": format!("pre-{i}"), "description": "x".repeat(16_384)})).await;
        api.created(&format!("/registered_models/{}/versions", id(&model)), json!({"name": "v"})).await;
    }
    let writers = Arc::new(Writers::default());
    let tasks = write_until_stopped(&api, 4, &writers);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before: Vec<String> = writers.acked.lock().unwrap().clone();
    let mut child = tokio::process::Command::new(BIN)
        .args(args(&["export", "--output", "-"], &api.db))
        .env("HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut file = Vec::new();
    let mut chunk = vec![0u8; 16_384];
    loop {
        let n = stdout.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        file.extend_from_slice(&chunk[..n]);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = child.wait().await.unwrap();
    let after: HashSet<String> = writers.acked.lock().unwrap().iter().cloned().collect();
    writers.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    assert!(status.success());
    let file = String::from_utf8(file).unwrap();
    assert!(after.len() > before.len() + 20, "writers kept writing during the export ({} -> {})", before.len(), after.len());

    let ids = |table: &str| -> HashSet<i64> { table_rows(&file, table).iter().map(|r| r["id"].as_i64().unwrap()).collect() };
    let (contexts, artifacts) = (ids("Context"), ids("Artifact"));
    for row in table_rows(&file, "ContextProperty") {
        assert!(contexts.contains(&row["context_id"].as_i64().unwrap()), "a property of a context not in the file: {row}");
    }
    for row in table_rows(&file, "ParentContext") {
        for end in ["context_id", "parent_context_id"] {
            assert!(contexts.contains(&row[end].as_i64().unwrap()), "a link to a context not in the file: {row}");
        }
    }
    for row in table_rows(&file, "Attribution") {
        assert!(
            contexts.contains(&row["context_id"].as_i64().unwrap()) && artifacts.contains(&row["artifact_id"].as_i64().unwrap())
        );
    }
    let models: BTreeSet<String> = contexts.iter().map(i64::to_string).collect();
    for acked in &before {
        assert!(models.contains(acked), "model {acked}, acknowledged before the export began, is missing");
    }
    let written_during: Vec<&String> = models.iter().filter(|m| after.contains(*m) && !before.contains(m)).collect();
    for model in table_rows(&file, "Context").iter().filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with('w'))) {
        assert!(after.contains(&model["id"].as_i64().unwrap().to_string()), "{model} was not acknowledged when the export ended");
    }
    // A model is written with its property in one transaction: the file has both or neither.
    let with_property: HashSet<i64> = table_rows(&file, "ContextProperty")
        .iter()
        .filter(|p| p["name"] == "writer")
        .map(|p| p["context_id"].as_i64().unwrap())
        .collect();
    for model in table_rows(&file, "Context").iter().filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with('w'))) {
        assert!(with_property.contains(&model["id"].as_i64().unwrap()), "{model} without its property");
    }
    eprintln!("{} models written during the export are in it", written_during.len());
    let postgres = TestDb::new(Backend::Postgres).await;
    let imported = cli(&args(&["import", "--input", "-"], &postgres), Some(file.as_bytes()));
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
}

/// `model-registry backup` while 16 clients write: the copy passes `integrity_check`, holds
/// every model acknowledged before the backup began, and a server opens it.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_while_16_writers_run_holds_every_acknowledged_write() {
    let api = Api::start(Backend::Sqlite).await;
    // Some 16 MiB to copy, so that the copy takes long enough for writes to land meanwhile.
    for i in 0..16 {
        api.created("/registered_models", json!({"name": format!("big-{i}"), "description": "x".repeat(1 << 20)})).await;
    }
    let writers = Arc::new(Writers::default());
    let tasks = write_until_stopped(&api, 16, &writers);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before: Vec<String> = writers.acked.lock().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    let backup = args(&["backup", "--output", copy.to_str().unwrap()], &api.db);
    // Writes acknowledged between the backup's start and its end: the copy was taken under load.
    let acked_at_start = writers.acked.lock().unwrap().len();
    let output = tokio::task::spawn_blocking(move || cli(&backup, None)).await.unwrap();
    let acked_at_end = writers.acked.lock().unwrap().len();
    writers.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.starts_with("backed up sqlite file"), "{stderr}");
    assert!(acked_at_end > acked_at_start, "no write was acknowledged while the backup ran");
    eprintln!("{} writes acknowledged while the backup ran", acked_at_end - acked_at_start);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no partial file is left");

    let url = format!("sqlite://{}", copy.display());
    assert_eq!(testkit::query_text(&url, "PRAGMA integrity_check").await, vec![vec![Some("ok".to_owned())]]);
    let stored: HashSet<String> =
        testkit::query_text(&url, "SELECT id FROM Context").await.into_iter().map(|r| r[0].clone().unwrap()).collect();
    for acked in &before {
        assert!(stored.contains(acked), "model {acked}, acknowledged before the backup began, is not in the copy");
    }
    let server = Server::ready_with_dsn(&url, &[]).await;
    let listed = server.get_ok("/registered_models?pageSize=1").await;
    assert_eq!(listed["size"], 1);
    let err = cli(&args(&["backup", "--output", copy.to_str().unwrap()], &api.db), None);
    assert!(String::from_utf8_lossy(&err.stderr).contains("exists: backup writes a new file"));
}
