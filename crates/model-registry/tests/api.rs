//! The REST API on every backend, through the real app on a real socket: success paths, each
//! error class, paging walks, custom properties of every kind, racing duplicate creates, and
//! what MLMD itself reads back from the tables.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use testkit::{Backend, TestDb};

mod support;
use support::app::Api;

testkit::on_every_backend!(
    registered_models_and_versions,
    artifacts,
    serving,
    errors,
    paging_walks_every_row_once_in_both_orders,
    custom_properties_of_every_kind,
    racing_duplicate_creates_yield_one_201,
    mlmd_reads_what_the_api_wrote,
    serves_what_mlmd_wrote_like_the_older_registry,
    experiments_and_runs,
    run_artifacts_upsert_metrics_and_parameters_by_name,
    filter_queries,
    both_versions_share_one_database,
    upstream_conformance,
    custom_property_names_differing_by_case,
);

fn id(value: &Value) -> &str {
    value["id"].as_str().expect("ids are strings")
}

async fn registered_models_and_versions(backend: Backend) {
    let api = Api::start(backend).await;
    assert_eq!(api.get("/registered_models").await, (200, json!({"items": [], "nextPageToken": "", "pageSize": 0, "size": 0})));

    let model =
        api.created("/registered_models", json!({"name": "m1", "owner": "me", "language": ["en", "fr"], "tasks": ["nlp"]})).await;
    assert_eq!(model["name"], "m1");
    assert_eq!(model["state"], "LIVE");
    assert_eq!(model["language"], json!(["en", "fr"]));
    assert_eq!(model["customProperties"], json!({}));
    assert_eq!(model["createTimeSinceEpoch"], model["lastUpdateTimeSinceEpoch"]);
    let m1 = id(&model).to_owned();

    assert_eq!(api.get(&format!("/registered_models/{m1}")).await, (200, model.clone()));
    assert_eq!(api.get("/registered_model?name=m1").await.1["id"], m1.as_str());

    let (status, patched) =
        api.patch(&format!("/registered_models/{m1}"), json!({"state": "ARCHIVED", "description": "d"})).await;
    assert_eq!(status, 200);
    assert_eq!((patched["state"].as_str(), patched["description"].as_str()), (Some("ARCHIVED"), Some("d")));
    assert!(patched["lastUpdateTimeSinceEpoch"].as_str().unwrap() >= model["createTimeSinceEpoch"].as_str().unwrap());
    // A PATCH changes only what it carries (upstream would reset state to LIVE here).
    let (_, patched) = api.patch(&format!("/registered_models/{m1}"), json!({"owner": "you"})).await;
    assert_eq!((patched["state"].as_str(), patched["owner"].as_str()), (Some("ARCHIVED"), Some("you")));
    assert_eq!(patched["language"], json!(["en", "fr"]));

    let version = api.created("/model_versions", json!({"name": "v1", "registeredModelId": m1, "author": "a"})).await;
    assert_eq!((version["name"].as_str(), version["registeredModelId"].as_str()), (Some("v1"), Some(m1.as_str())));
    let v1 = id(&version).to_owned();
    let other = api.created("/registered_models", json!({"name": "m2"})).await;
    api.created(&format!("/registered_models/{}/versions", id(&other)), json!({"name": "v1"})).await;

    assert_eq!(api.get(&format!("/model_version?name=v1&parentResourceId={m1}")).await.1["id"], v1.as_str());
    let (_, listed) = api.get(&format!("/registered_models/{m1}/versions?name=v1")).await;
    assert_eq!(listed["size"], 1);
    let (_, all) = api.get("/model_versions").await;
    assert_eq!(all["size"], 2);
    let (status, _) = api.patch(&format!("/model_versions/{v1}"), json!({"state": "ARCHIVED"})).await;
    assert_eq!(status, 200);
    assert_eq!(api.get(&format!("/model_versions/{v1}")).await.1["state"], "ARCHIVED");
}

async fn artifacts(backend: Backend) {
    let api = Api::start(backend).await;
    let model = api.created("/registered_models", json!({"name": "m"})).await;
    let version = api.created("/model_versions", json!({"name": "v", "registeredModelId": id(&model)})).await;
    let v = id(&version).to_owned();
    let body = json!({"artifactType": "model-artifact", "name": "m", "uri": "s3://b/k", "modelFormatName": "onnx", "modelFormatVersion": "1", "modelSourceKind": "kfp"});
    let (status, artifact) = api.post(&format!("/model_versions/{v}/artifacts"), body.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(artifact["artifactType"], "model-artifact");
    assert!(artifact.get("state").is_none(), "no default state on the oneOf path: {artifact}");
    assert_eq!(artifact["modelSourceKind"], "kfp");
    let a = id(&artifact).to_owned();

    let mut update = body.clone();
    update["id"] = json!(a);
    update["uri"] = json!("s3://b/k2");
    update["createTimeSinceEpoch"] = artifact["createTimeSinceEpoch"].clone();
    let (status, updated) = api.post(&format!("/model_versions/{v}/artifacts"), update).await;
    assert_eq!((status, updated["uri"].as_str()), (200, Some("s3://b/k2")));
    assert_eq!(api.post(&format!("/model_versions/{v}/artifacts"), body).await.0, 409);

    let (status, doc) = api
        .post(&format!("/model_versions/{v}/artifacts"), json!({"artifactType": "doc-artifact", "name": "m", "uri": "d"}))
        .await;
    assert_eq!(status, 201, "a doc artifact may share the model artifact's name");
    let (status, metric) = api
        .post(
            &format!("/model_versions/{v}/artifacts"),
            json!({"artifactType": "metric", "name": "acc", "value": 0.9, "step": 3}),
        )
        .await;
    assert_eq!(status, 200, "upstream answers 200 for a new metric");
    assert_eq!((metric["value"].as_f64(), metric["step"].as_i64()), (Some(0.9), Some(3)));

    let (_, listed) = api.get(&format!("/model_versions/{v}/artifacts")).await;
    assert_eq!(listed["size"], 3);
    let (_, only_docs) = api.get(&format!("/model_versions/{v}/artifacts?artifactType=doc-artifact")).await;
    assert_eq!(only_docs["items"][0]["id"], doc["id"]);
    assert_eq!(api.get(&format!("/model_artifact?name=m&parentResourceId={v}")).await.1["id"], a.as_str());
    assert_eq!(api.get(&format!("/model_artifacts/{}", id(&doc))).await.0, 404);
    assert_eq!(api.get(&format!("/artifacts/{}", id(&doc))).await.1["artifactType"], "doc-artifact");

    // Parentless artifacts: the same name twice is fine (random prefix), as upstream.
    let first = api.created("/model_artifacts", json!({"name": "loose", "uri": "u"})).await;
    assert_eq!(first["state"], "UNKNOWN");
    api.created("/model_artifacts", json!({"name": "loose"})).await;
    api.created("/artifacts", json!({"artifactType": "dataset-artifact", "name": "ds", "digest": "sha"})).await;
    let (_, page) = api.get("/artifacts?artifactType=dataset-artifact").await;
    assert_eq!(page["items"][0]["digest"], "sha");

    let (status, patched) =
        api.patch(&format!("/artifacts/{a}"), json!({"artifactType": "model-artifact", "state": "LIVE"})).await;
    assert_eq!((status, patched["state"].as_str()), (200, Some("LIVE")));
    let (status, _) = api.patch(&format!("/artifacts/{a}"), json!({"artifactType": "doc-artifact"})).await;
    assert_eq!(status, 400);
    let (status, _) = api.patch(&format!("/model_artifacts/{a}"), json!({"modelFormatName": "tf"})).await;
    assert_eq!(status, 200);
    assert_eq!(api.get(&format!("/model_artifacts/{a}")).await.1["state"], "LIVE", "PATCH leaves state alone");
}

async fn serving(backend: Backend) {
    let api = Api::start(backend).await;
    let model = api.created("/registered_models", json!({"name": "m"})).await;
    let m = id(&model).to_owned();
    let v1 = api.created("/model_versions", json!({"name": "v1", "registeredModelId": m})).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let v2 = api.created("/model_versions", json!({"name": "v2", "registeredModelId": m})).await;
    let env = api.created("/serving_environments", json!({"name": "se"})).await;
    let se = id(&env).to_owned();

    let service = api.created("/inference_services", json!({"registeredModelId": m, "servingEnvironmentId": se})).await;
    assert_eq!(service["desiredState"], "DEPLOYED");
    assert_eq!(service["name"].as_str().unwrap().len(), 36, "a generated UUID name");
    let is = id(&service).to_owned();
    assert_eq!(api.get(&format!("/inference_services/{is}/model")).await.1["id"], m.as_str());
    assert_eq!(api.get(&format!("/inference_services/{is}/version")).await.1["id"], v2["id"], "the newest version");
    let (status, _) = api.patch(&format!("/inference_services/{is}"), json!({"modelVersionId": id(&v1)})).await;
    assert_eq!(status, 200);
    assert_eq!(api.get(&format!("/inference_services/{is}/version")).await.1["id"], v1["id"]);

    let nested = api
        .created(
            &format!("/serving_environments/{se}/inference_services"),
            json!({"name": "svc", "registeredModelId": m, "servingEnvironmentId": "999"}),
        )
        .await;
    assert_eq!(nested["servingEnvironmentId"], se.as_str(), "the path wins");
    let (_, listed) = api.get(&format!("/serving_environments/{se}/inference_services")).await;
    assert_eq!(listed["size"], 2);
    assert_eq!(api.get(&format!("/inference_service?name=svc&parentResourceId={se}")).await.1["id"], nested["id"]);

    let serve = api.created(&format!("/inference_services/{is}/serves"), json!({"modelVersionId": id(&v1)})).await;
    assert_eq!(serve["lastKnownState"], "UNKNOWN");
    let (_, serves) = api.get(&format!("/inference_services/{is}/serves")).await;
    assert_eq!(serves["size"], 1);
    assert_eq!(api.get("/serving_environment?name=se").await.1["id"], se.as_str());
}

async fn errors(backend: Backend) {
    let api = Api::start(backend).await;
    let model = api.created("/registered_models", json!({"name": "m1"})).await;
    let m = id(&model).to_owned();
    let cases: Vec<(u16, (u16, Value))> = vec![
        (409, api.post("/registered_models", json!({"name": "m1"})).await),
        (400, api.post("/registered_models", json!({"name": "m2", "bogus": 1})).await),
        (400, api.post("/registered_models", json!({"name": 7})).await),
        (400, api.post("/registered_models", json!({"name": "m3", "state": "GONE"})).await),
        (422, api.post("/registered_models", json!({"description": "no name"})).await),
        (400, api.get("/registered_models/abc").await),
        (400, api.get("/registered_models/99999999999").await),
        (404, api.get("/registered_models/999999").await),
        (404, api.patch("/registered_models/999999", json!({"description": "x"})).await),
        (400, api.patch(&format!("/registered_models/{m}"), json!({"name": "zz"})).await),
        (404, api.get("/registered_model?name=nope").await),
        (400, api.get("/registered_model").await),
        (400, api.get("/model_version?name=v").await),
        (404, api.post("/model_versions", json!({"name": "v", "registeredModelId": "999999"})).await),
        (422, api.post("/model_versions", json!({"name": "v"})).await),
        (404, api.post("/registered_models/999999/versions", json!({"name": "v"})).await),
        (400, api.post("/model_versions/1/artifacts", json!({"name": "x"})).await),
        (404, api.post("/model_versions/999999/artifacts", json!({"artifactType": "doc-artifact"})).await),
        (404, api.post("/inference_services", json!({"registeredModelId": m, "servingEnvironmentId": "999999"})).await),
        (400, api.get("/registered_models?pageSize=x").await),
        (400, api.get("/registered_models?nextPageToken=!!!").await),
        (400, api.get("/registered_models?filterQuery=name%20%3C%3C%3C").await),
        (400, api.get("/artifacts?artifactType=picture").await),
        (
            400,
            api.post(
                "/registered_models",
                json!({"name": "m4", "customProperties": {"k": {"metadataType": "MetadataIntValue", "int_value": "1e3"}}}),
            )
            .await,
        ),
        (400, api.post("/registered_models", json!({"name": "n".repeat(256)})).await),
        (400, api.post("/registered_models", json!({"name": "m5", "externalId": "e".repeat(256)})).await),
        (400, api.post("/model_versions", json!({"name": "v".repeat(254), "registeredModelId": m})).await),
    ];
    for (expected, (status, body)) in cases {
        assert_eq!(status, expected, "{body}");
        let code = body["code"].as_str().unwrap_or_default();
        assert!(!code.is_empty() && body["message"].as_str().is_some_and(|m| !m.is_empty()), "upstream error body: {body}");
    }
    // Not JSON at all, and a null byte.
    let raw = |body: &'static str| {
        api.http.post(format!("{}/registered_models", api.base)).header("content-type", "application/json").body(body).send()
    };
    assert_eq!(raw("{not json").await.unwrap().status(), 400);
    assert_eq!(raw("{\"name\":\"a\\u0000b\"}").await.unwrap().status(), 400);
    assert_eq!(oversized_post(&api.base).await, 413);
    // Exactly 255 characters fit on every backend.
    api.created("/registered_models", json!({"name": "n".repeat(255)})).await;
    // Nothing half-written: the failed creates left only m1 and the 255-character name.
    assert_eq!(api.get("/registered_models").await.1["size"], 2);
    assert_eq!(api.get("/model_versions").await.1["size"], 0);
}

/// Announces a 5 MiB body and sends none: the limit answers from the headers alone (a client
/// still writing would race the server closing the connection).
async fn oversized_post(base: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(base).unwrap();
    let mut stream = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).await.unwrap();
    let request = format!(
        "POST {}/registered_models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        url.path(),
        5 * 1024 * 1024
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

async fn paging_walks_every_row_once_in_both_orders(backend: Backend) {
    let api = Api::start(backend).await;
    let mut ids = Vec::new();
    for i in 0..23 {
        ids.push(id(&api.created("/registered_models", json!({"name": format!("m{i:02}")})).await).to_owned());
    }
    for (order_by, sort) in [("ID", "ASC"), ("ID", "DESC"), ("CREATE_TIME", "ASC"), ("LAST_UPDATE_TIME", "DESC")] {
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let (status, page) = api
                .get(&format!("/registered_models?pageSize=5&orderBy={order_by}&sortOrder={sort}&nextPageToken={token}"))
                .await;
            assert_eq!(status, 200, "{page}");
            pages += 1;
            assert_eq!(page["pageSize"], 5);
            // A row created mid-walk must not disturb it.
            if pages == 2 {
                api.created("/registered_models", json!({"name": format!("late-{order_by}-{sort}")})).await;
            }
            seen.extend(page["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()));
            token = page["nextPageToken"].as_str().unwrap().to_owned();
            if token.is_empty() {
                break;
            }
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{order_by} {sort}: a row came twice");
        for id in &ids {
            assert!(unique.contains(id), "{order_by} {sort}: {id} skipped");
        }
        let numeric: Vec<i64> = seen.iter().filter(|i| ids.contains(i)).map(|i| i.parse().unwrap()).collect();
        let mut sorted = numeric.clone();
        sorted.sort();
        if sort == "DESC" {
            sorted.reverse();
        }
        assert_eq!(numeric, sorted, "{order_by} {sort}: out of order");
    }
    let (_, first) = api.get("/registered_models?pageSize=2&orderBy=ID&sortOrder=ASC").await;
    let token = base64::engine::general_purpose::STANDARD.decode(first["nextPageToken"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(token).unwrap(), format!("{0}:{0}", ids[1]));
}

async fn custom_properties_of_every_kind(backend: Backend) {
    let api = Api::start(backend).await;
    let structure = base64::engine::general_purpose::STANDARD.encode(r#"{"a":1,"b":["x",true],"c":{"d":null}}"#);
    let custom = json!({
        "int": {"metadataType": "MetadataIntValue", "int_value": "-2147483648"},
        "double": {"metadataType": "MetadataDoubleValue", "double_value": 0.1},
        "string": {"metadataType": "MetadataStringValue", "string_value": "ünïcode ✓"},
        "bool": {"metadataType": "MetadataBoolValue", "bool_value": false},
        "struct": {"metadataType": "MetadataStructValue", "struct_value": structure},
        "long": {"metadataType": "MetadataStringValue", "string_value": "x".repeat(10_000)},
    });
    let model = api.created("/registered_models", json!({"name": "m", "customProperties": custom})).await;
    let (_, read) = api.get(&format!("/registered_models/{}", id(&model))).await;
    let props = &read["customProperties"];
    assert_eq!(props["int"]["int_value"], "-2147483648");
    assert_eq!(props["double"]["double_value"], 0.1);
    assert_eq!(props["string"]["string_value"], "ünïcode ✓");
    assert_eq!(props["bool"]["bool_value"], false);
    assert_eq!(props["struct"]["metadataType"], "MetadataStructValue");
    assert_eq!(
        serde_json::from_str::<Value>(props["struct"]["struct_value"].as_str().unwrap()).unwrap(),
        json!({"a":1,"b":["x",true],"c":{"d":null}})
    );
    assert_eq!(props["long"]["string_value"].as_str().unwrap().len(), 10_000);

    // customProperties in a PATCH replaces the whole map.
    let (_, patched) = api
        .patch(
            &format!("/registered_models/{}", id(&model)),
            json!({"customProperties": {"only": {"metadataType": "MetadataBoolValue", "bool_value": true}}}),
        )
        .await;
    assert_eq!(patched["customProperties"], json!({"only": {"metadataType": "MetadataBoolValue", "bool_value": true}}));
    let (_, cleared) = api.patch(&format!("/registered_models/{}", id(&model)), json!({"customProperties": {}})).await;
    assert_eq!(cleared["customProperties"], json!({}));
}

async fn racing_duplicate_creates_yield_one_201(backend: Backend) {
    let api = std::sync::Arc::new(Api::start(backend).await);
    let racers = (0..8).map(|_| {
        let api = api.clone();
        tokio::spawn(async move { api.post("/registered_models", json!({"name": "same"})).await.0 })
    });
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409, 409, 409]);
}

/// MLMD reads what the API wrote. Our PostgreSQL databases use upstream's quoted layout, which
/// MLMD cannot open, so there the registry writes into a database MLMD created (its lower-case
/// layout, adopted in place).
async fn mlmd_reads_what_the_api_wrote(backend: Backend) {
    let db = TestDb::new(backend).await;
    if backend == Backend::Postgres {
        db.mlmd_ok_async(&["create"]).await;
    }
    let api = Api::start_on(db).await;
    let model = api
        .created(
            "/registered_models",
            json!({"name": "m", "owner": "o", "customProperties": {"k": {"metadataType": "MetadataIntValue", "int_value": "5"}}}),
        )
        .await;
    let version = api.created("/model_versions", json!({"name": "v", "registeredModelId": id(&model)})).await;
    api.created(
        &format!("/model_versions/{}/artifacts", id(&version)),
        json!({"artifactType": "model-artifact", "name": "m", "uri": "s3://x", "state": "LIVE"}),
    )
    .await;
    let dump: Value = serde_json::from_str(&api.db.mlmd_ok_async(&["dump", "--compact"]).await).unwrap();
    let text = dump.to_string();
    for expected in ["kf.RegisteredModel", "kf.ModelVersion", "kf.ModelArtifact", "s3://x", &format!("{}:v", id(&model))] {
        assert!(text.contains(expected), "MLMD does not see {expected}: {text}");
    }
}

/// A database the MLMD-backed registry filled: prefixed names, ParentContext and Attribution
/// links, no `registered_model_id` property. On PostgreSQL these are MLMD's lower-case tables.
async fn serves_what_mlmd_wrote_like_the_older_registry(backend: Backend) {
    let db = TestDb::new(backend).await;
    let ids: Value = serde_json::from_str(&db.mlmd_ok_async(&["seed-registry"]).await).unwrap();
    let (rm, mv, ma) = (ids["registered_model"].to_string(), ids["model_version"].to_string(), ids["model_artifact"].to_string());
    let api = Api::start_on(db).await;

    let (_, model) = api.get("/registered_model?name=legacy-model").await;
    assert_eq!(
        (model["id"].as_str(), model["owner"].as_str(), model["state"].as_str()),
        (Some(rm.as_str()), Some("mlmd"), Some("LIVE"))
    );
    assert_eq!(model["customProperties"]["team"]["string_value"], "vision");
    let (_, version) = api.get(&format!("/model_version?name=v1&parentResourceId={rm}")).await;
    assert_eq!((version["id"].as_str(), version["name"].as_str()), (Some(mv.as_str()), Some("v1")));
    assert_eq!(version["registeredModelId"], rm.as_str(), "taken from the ParentContext link");
    let (_, versions) = api.get(&format!("/registered_models/{rm}/versions")).await;
    assert_eq!(versions["items"][0]["registeredModelId"], rm.as_str());
    let (_, artifacts) = api.get(&format!("/model_versions/{mv}/artifacts")).await;
    let artifact = &artifacts["items"][0];
    assert_eq!((artifact["id"].as_str(), artifact["name"].as_str()), (Some(ma.as_str()), Some("legacy-model")));
    assert_eq!(
        (artifact["uri"].as_str(), artifact["state"].as_str(), artifact["modelFormatName"].as_str()),
        (Some("s3://legacy/model"), Some("LIVE"), Some("onnx"))
    );
    // And the registry keeps working on top of it.
    api.created(&format!("/registered_models/{rm}/versions"), json!({"name": "v2"})).await;
    let (_, versions) = api.get(&format!("/registered_models/{rm}/versions")).await;
    assert_eq!(versions["size"], 2);
    // A run whose experiment is known only by the ParentContext link.
    let (experiment, run) = (ids["experiment"].to_string(), ids["experiment_run"].to_string());
    let (status, shown) = api.get(&format!("/experiment_runs/{run}")).await;
    assert_eq!((status, shown["name"].as_str()), (200, Some("run-1")), "{shown}");
    assert_eq!(shown["experimentId"], experiment.as_str(), "taken from the ParentContext link");
    let (_, runs) = api.get(&format!("/experiments/{experiment}/experiment_runs")).await;
    assert_eq!(runs["items"][0]["experimentId"], experiment.as_str());
    let (_, runs) = api.get("/experiment_runs").await;
    assert_eq!(runs["items"][0]["experimentId"], experiment.as_str());
}

async fn experiments_and_runs(backend: Backend) {
    let api = Api::start(backend).await;
    let experiment = api.created("/experiments", json!({"name": "e", "owner": "o"})).await;
    assert_eq!(experiment["state"], "LIVE");
    let e = id(&experiment).to_owned();
    assert_eq!(api.get("/experiment?name=e").await.1["id"], e.as_str());

    let run = api.created("/experiment_runs", json!({"experimentId": e, "startTimeSinceEpoch": "1000"})).await;
    assert_eq!((run["status"].as_str(), run["state"].as_str()), (Some("RUNNING"), Some("LIVE")));
    assert_eq!(run["name"].as_str().unwrap().len(), 36, "a generated UUID name");
    assert_eq!(run["experimentId"], e.as_str());
    let r = id(&run).to_owned();
    let named = api.created(&format!("/experiments/{e}/experiment_runs"), json!({"name": "r2"})).await;
    assert_eq!(named["experimentId"], e.as_str());
    let (_, runs) = api.get(&format!("/experiments/{e}/experiment_runs")).await;
    assert_eq!(runs["size"], 2);
    assert_eq!(api.get(&format!("/experiment_run?name=r2&parentResourceId={e}")).await.1["id"], named["id"]);

    let (status, finished) =
        api.patch(&format!("/experiment_runs/{r}"), json!({"status": "FINISHED", "endTimeSinceEpoch": "2000"})).await;
    assert_eq!(
        (status, finished["status"].as_str(), finished["endTimeSinceEpoch"].as_str()),
        (200, Some("FINISHED"), Some("2000"))
    );
    assert_eq!(finished["startTimeSinceEpoch"], "1000");
    let (status, body) = api.patch(&format!("/experiment_runs/{r}"), json!({"endTimeSinceEpoch": "500"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        api.patch(&format!("/experiment_runs/{r}"), json!({"startTimeSinceEpoch": "1"})).await.0,
        400,
        "start is create-only"
    );
    assert_eq!(api.post("/experiment_runs", json!({"experimentId": e, "startTimeSinceEpoch": "soon"})).await.0, 400);
    assert_eq!(api.post("/experiment_runs", json!({"experimentId": "999999"})).await.0, 404);
    assert_eq!(api.post("/experiment_runs", json!({"experimentId": e, "status": "PAUSED"})).await.0, 400);
}

async fn run_artifacts_upsert_metrics_and_parameters_by_name(backend: Backend) {
    let api = Api::start(backend).await;
    let experiment = api.created("/experiments", json!({"name": "e"})).await;
    let run = api.created("/experiment_runs", json!({"experimentId": id(&experiment)})).await;
    let r = id(&run).to_owned();
    let path = format!("/experiment_runs/{r}/artifacts");

    let (status, metric) = api.post(&path, json!({"artifactType": "metric", "name": "acc", "value": 0.9, "step": 1})).await;
    assert_eq!(status, 200, "{metric}");
    assert_eq!(
        (metric["experimentId"].as_str(), metric["experimentRunId"].as_str()),
        (experiment["id"].as_str(), Some(r.as_str()))
    );
    assert_eq!(metric["customProperties"], json!({}), "the experiment links stay hidden");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, again) = api.post(&path, json!({"artifactType": "metric", "name": "acc", "value": 0.95, "step": 2})).await;
    assert_eq!(
        (status, again["id"].as_str(), again["value"].as_f64()),
        (200, metric["id"].as_str(), Some(0.95)),
        "updated by name"
    );
    assert_eq!(api.post(&path, json!({"artifactType": "metric", "name": "loss"})).await.0, 400, "metric value is required");
    // Racing first logs of one metric: every one lands, as an update of a single artifact.
    let api = std::sync::Arc::new(api);
    let racers: Vec<_> = (0..8)
        .map(|step| {
            let (api, path) = (api.clone(), path.clone());
            tokio::spawn(async move {
                api.post(&path, json!({"artifactType": "metric", "name": "conc", "value": 0.09090909090909091, "step": step}))
                    .await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for racer in racers {
        let (status, body) = racer.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["value"].as_f64(), Some(0.09090909090909091), "doubles round-trip exactly");
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    let api = std::sync::Arc::try_unwrap(api).ok().expect("racers finished");

    let (_, parameter) =
        api.post(&path, json!({"artifactType": "parameter", "name": "lr", "value": "0.1", "parameterType": "number"})).await;
    let (_, parameter2) = api.post(&path, json!({"artifactType": "parameter", "name": "lr", "value": "0.2"})).await;
    assert_eq!((parameter2["id"].as_str(), parameter2["value"].as_str()), (parameter["id"].as_str(), Some("0.2")));
    assert_eq!(parameter2["parameterType"], "number");

    let (status, _) = api.post(&path, json!({"artifactType": "dataset-artifact", "name": "train", "uri": "s3://d"})).await;
    assert_eq!(status, 200);
    assert_eq!(
        api.post(&path, json!({"artifactType": "dataset-artifact", "name": "train"})).await.0,
        409,
        "only metrics and parameters upsert by name"
    );

    let (_, listed) = api.get(&path).await;
    assert_eq!(listed["size"], 4, "metric history rows are not artifacts of the run's list: {listed}");
    assert_eq!(
        api.post("/experiment_runs/999999/artifacts", json!({"artifactType": "metric", "name": "m", "value": 1})).await.0,
        404
    );

    let types = if backend == Backend::Postgres { ("\"Artifact\"", "\"Type\"") } else { ("Artifact", "Type") };
    let history = api
        .db
        .query_text(&format!(
            "SELECT a.name FROM {} a JOIN {} t ON t.id = a.type_id WHERE t.name = 'kf.MetricHistory' ORDER BY a.id",
            types.0, types.1
        ))
        .await;
    assert_eq!(history.len(), 10, "one history row per metric upsert");
    assert!(history[0][0].as_deref().unwrap().starts_with(&format!("{r}:acc__")), "{history:?}");

    let (status, page) = api.get(&format!("/experiment_runs/{r}/metric_history?name=acc")).await;
    assert_eq!((status, page["size"].as_u64()), (200, Some(2)), "{page}");
    assert_eq!((page["items"][0]["name"].as_str(), page["items"][0]["artifactType"].as_str()), (Some("acc"), Some("metric")));
    assert_eq!(page["items"][0]["experimentRunId"], r.as_str());
    assert_eq!(api.get(&format!("/experiment_runs/{r}/metric_history?name=acc")).await.1["size"], 2);
    assert_eq!(api.get(&format!("/experiment_runs/{r}/metric_history?name=ac")).await.1["size"], 0);
    let (_, step) = api.get(&format!("/experiment_runs/{r}/metric_history?name=acc&stepIds=2,7")).await;
    assert_eq!((step["size"].as_u64(), step["items"][0]["value"].as_f64()), (Some(1), Some(0.95)));
    assert_eq!(api.get(&format!("/experiment_runs/{r}/metric_history?stepIds=1,x")).await.0, 400);
    assert_eq!(api.get(&format!("/experiment_runs/{r}/metric_history")).await.1["size"], 10);
    assert_eq!(api.get("/experiment_runs/metric_history?name=acc").await.1["size"], 2);
    assert_eq!(api.get("/experiment_runs/metric_history?stepIds=7").await.1["size"], 1);
    assert_eq!(api.get("/experiment_runs/999999/metric_history").await.0, 404);
}

async fn filter_queries(backend: Backend) {
    let api = Api::start(backend).await;
    let int = |v: &str| json!({"metadataType": "MetadataIntValue", "int_value": v});
    api.created(
        "/registered_models",
        json!({"name": "model-a", "owner": "ann", "customProperties": {
        "budget": int("1500"), "priority": int("3"), "accuracy": {"metadataType": "MetadataDoubleValue", "double_value": 0.97},
        "framework": {"metadataType": "MetadataStringValue", "string_value": "pytorch"},
        "mlflow.source.type": {"metadataType": "MetadataStringValue", "string_value": "notebook"},
        "prod": {"metadataType": "MetadataBoolValue", "bool_value": true}}}),
    )
    .await;
    api.created("/registered_models", json!({"name": "model-b", "state": "ARCHIVED", "customProperties": {"budget": int("10"), "accuracy": {"metadataType": "MetadataDoubleValue", "double_value": 0.5}}})).await;
    let other = api.created("/registered_models", json!({"name": "Other_1"})).await;
    let version = api.created("/model_versions", json!({"name": "v1", "registeredModelId": id(&other), "author": "bob"})).await;
    api.created("/model_versions", json!({"name": "v2", "registeredModelId": id(&other)})).await;
    api.post(
        &format!("/model_versions/{}/artifacts", id(&version)),
        json!({"artifactType": "model-artifact", "name": "art", "uri": "s3://x/y", "state": "LIVE", "modelFormatName": "onnx"}),
    )
    .await;

    let names = |page: &Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
    };
    let query = |path: &'static str, filter: &'static str| {
        let api = &api;
        async move {
            let url = reqwest::Url::parse_with_params(&format!("{}{path}", api.base), &[("filterQuery", filter)]).unwrap();
            let response = api.http.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let cases: &[(&str, &str, &[&str])] = &[
        ("/registered_models", "name = \"model-a\"", &["model-a"]),
        ("/registered_models", "name='model-a' AND state='LIVE'", &["model-a"]),
        ("/registered_models", "accuracy > 0.95", &["model-a"]),
        ("/registered_models", "name LIKE \"%model%\"", &["model-a", "model-b"]),
        ("/registered_models", "(name = \"model-a\" OR name = \"model-b\") AND state = \"LIVE\"", &["model-a"]),
        ("/registered_models", "framework.string_value = \"pytorch\"", &["model-a"]),
        ("/registered_models", "`mlflow.source.type` = \"notebook\"", &["model-a"]),
        ("/registered_models", "state IN ('LIVE','ARCHIVED')", &["model-a", "model-b", "Other_1"]),
        ("/registered_models", "budget > 1000 AND priority <= 5", &["model-a"]),
        ("/registered_models", "budget >= 10", &["model-a", "model-b"]),
        ("/registered_models", "prod = true", &["model-a"]),
        ("/registered_models", "budget < 100", &["model-b"]),
        ("/registered_models", "accuracy <= 0.5 OR name <> 'model-a' AND owner = 'nobody'", &["model-b"]),
        ("/registered_models", "id > 1 AND id < 3", &["model-b"]),
        ("/registered_models", "externalId = 'none'", &[]),
        ("/registered_models", "owner != 'ann'", &[]),
        ("/registered_models", "name ILIKE 'MODEL-%'", &["model-a", "model-b"]),
        ("/registered_models", "name LIKE 'Other\\_1'", &["Other_1"]),
        ("/registered_models", "name LIKE 'model_a'", &["model-a"]),
        ("/registered_models", "name = 'x'' OR 1=1 --'", &[]),
        ("/registered_models", "id IN ()", &[]),
        ("/model_versions", "name = 'v1'", &["v1"]),
        ("/model_versions", "name LIKE 'v%'", &["v1", "v2"]),
        ("/model_versions", "author = 'bob'", &["v1"]),
        ("/model_artifacts", "state = 'LIVE' AND uri LIKE 's3://%'", &["art"]),
        ("/model_artifacts", "modelFormatName = \"onnx\"", &["art"]),
        ("/artifacts", "state = 'UNKNOWN'", &[]),
    ];
    for (path, filter, expected) in cases {
        let (status, page) = query(path, filter).await;
        if filter.contains("''") {
            assert_eq!(status, 400, "{filter}: {page}");
            continue;
        }
        assert_eq!(status, 200, "{filter}: {page}");
        assert_eq!(names(&page), *expected, "{path} {filter}");
    }
    let (status, body) = query("/registered_models", "invalid <<< syntax").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("invalid filter query"), "{body}");
    // Filtering composes with paging.
    let (_, first) = api.get("/registered_models?filterQuery=name%20LIKE%20%27model%25%27&pageSize=1&orderBy=ID").await;
    assert_eq!(names(&first), ["model-a"]);
    let token = first["nextPageToken"].as_str().unwrap().to_owned();
    let (_, second) = api
        .get(&format!("/registered_models?filterQuery=name%20LIKE%20%27model%25%27&pageSize=1&orderBy=ID&nextPageToken={token}"))
        .await;
    assert_eq!((names(&second), second["nextPageToken"].as_str()), (vec!["model-b".to_owned()], Some("")));
}

/// Objects written through one version read back through the other; v1 has no experiment
/// tracking and writes `Metric.step` as text.
async fn both_versions_share_one_database(backend: Backend) {
    let alpha = Api::start(backend).await;
    let v1 = alpha.on("v1");
    let model = alpha.created("/registered_models", json!({"name": "m", "owner": "o"})).await;
    let m = id(&model).to_owned();
    assert_eq!(v1.get(&format!("/registered_models/{m}")).await, (200, model));
    let version = v1.created("/model_versions", json!({"name": "v", "registeredModelId": m})).await;
    let v = id(&version).to_owned();
    assert_eq!(alpha.get(&format!("/model_versions/{v}")).await, (200, version));

    // A metric written as an integer step through v1alpha3 reads as text through v1, and back.
    let (status, metric) = alpha
        .post(
            &format!("/model_versions/{v}/artifacts"),
            json!({"artifactType": "metric", "name": "acc", "value": 0.5, "step": 3}),
        )
        .await;
    assert_eq!((status, &metric["step"]), (200, &json!(3)), "{metric}");
    let (_, shown) = v1.get(&format!("/artifacts/{}", id(&metric))).await;
    assert_eq!(shown["step"], "3");
    let (status, loss) = v1
        .post(
            &format!("/model_versions/{v}/artifacts"),
            json!({"artifactType": "metric", "name": "loss", "value": 1, "step": "-7"}),
        )
        .await;
    assert_eq!((status, &loss["step"]), (200, &json!("-7")), "{loss}");
    assert_eq!(alpha.get(&format!("/artifacts/{}", id(&loss))).await.1["step"], -7);
    let wrong_kind = |step: Value| json!({"artifactType": "metric", "name": "x", "value": 1, "step": step});
    assert_eq!(v1.post(&format!("/model_versions/{v}/artifacts"), wrong_kind(json!(3))).await.0, 400);
    assert_eq!(alpha.post(&format!("/model_versions/{v}/artifacts"), wrong_kind(json!("3"))).await.0, 400);

    // Run artifacts logged through v1alpha3 are plain artifacts on v1.
    let experiment = alpha.created("/experiments", json!({"name": "e"})).await;
    let run = alpha.created("/experiment_runs", json!({"experimentId": id(&experiment)})).await;
    let (_, param) = alpha
        .post(
            &format!("/experiment_runs/{}/artifacts", id(&run)),
            json!({"artifactType": "parameter", "name": "lr", "value": "0.1"}),
        )
        .await;
    assert_eq!(param["experimentRunId"], id(&run));
    let (status, shown) = v1.get(&format!("/artifacts/{}", id(&param))).await;
    assert_eq!((status, shown["value"].as_str()), (200, Some("0.1")));
    assert!(shown.get("experimentId").is_none() && shown.get("experimentRunId").is_none(), "{shown}");
    let body = json!({"artifactType": "doc-artifact", "uri": "u", "experimentId": id(&experiment)});
    assert_eq!(v1.post("/artifacts", body.clone()).await.0, 400, "v1 artifacts have no experimentId");
    assert_eq!(alpha.post(&format!("/model_versions/{v}/artifacts"), body).await.0, 201);
    let (_, listed) = v1.get("/artifacts?pageSize=100").await;
    assert_eq!(listed["size"], 4, "{listed}");

    // Experiment tracking is not part of v1: 404, as for any unknown path.
    let run_id = id(&run);
    for path in [
        "/experiments".to_owned(),
        "/experiment?name=e".to_owned(),
        "/experiment_runs".to_owned(),
        format!("/experiment_runs/{run_id}"),
        format!("/experiment_runs/{run_id}/artifacts"),
        "/experiment_runs/metric_history".to_owned(),
        format!("/experiment_runs/{run_id}/metric_history"),
    ] {
        assert_eq!(v1.get(&path).await, (404, json!("404 page not found\n")), "{path}");
    }
    assert_eq!(v1.post("/experiments", json!({"name": "e2"})).await.0, 404);
    assert_eq!(alpha.get("/experiments").await.1["size"], 1);

    // Both documents are served, each listing its own operations only.
    for (version, api, operations) in [("v1alpha3", &alpha, 56), ("v1", &v1, 40)] {
        let (status, document) = api.get("/openapi.json").await;
        assert_eq!((status, document["info"]["version"].as_str()), (200, Some(version)));
        let paths = document["paths"].as_object().unwrap();
        assert_eq!(paths.values().map(|p| p.as_object().unwrap().len()).sum::<usize>(), operations);
        let yaml = api.http.get(format!("{}/openapi.yaml", api.base)).send().await.unwrap().text().await.unwrap();
        assert_eq!(serde_yaml_ng::from_str::<Value>(&yaml).unwrap(), document);
    }
}

/// What upstream's own expectations ask of required fields, formats and ids.
async fn upstream_conformance(backend: Backend) {
    let api = Api::start(backend).await;
    let model = api.created("/registered_models", json!({"name": "m"})).await;
    let m = id(&model).to_owned();
    let version = api.created("/model_versions", json!({"name": "v", "registeredModelId": m})).await;
    let v = id(&version).to_owned();
    let environment = api.created("/serving_environments", json!({"name": "se"})).await;
    let se = id(&environment).to_owned();

    // A missing required field: 422 with the body code upstream's client tests assert.
    for (path, body, field) in [
        ("/registered_models", json!({"owner": "o"}), "name"),
        ("/model_versions", json!({"name": "v2"}), "registeredModelId"),
        ("/inference_services", json!({"servingEnvironmentId": se}), "registeredModelId"),
        ("/inference_services", json!({"registeredModelId": m}), "servingEnvironmentId"),
    ] {
        let (status, answer) = api.post(path, body).await;
        assert_eq!(status, 422, "{path}: {answer}");
        assert_eq!(answer["code"], "Bad Request");
        assert_eq!(answer["message"], format!("required field '{field}' is zero value."));
    }
    let (status, answer) = api.post(&format!("/serving_environments/{se}/inference_services"), json!({"name": "is"})).await;
    assert_eq!((status, answer["message"].as_str()), (422, Some("required field 'registeredModelId' is zero value.")));
    let service = api.created(&format!("/serving_environments/{se}/inference_services"), json!({"registeredModelId": m})).await;
    let serves = format!("/inference_services/{}/serves", id(&service));
    let (status, answer) = api.post(&serves, json!({"name": "s"})).await;
    assert_eq!((status, answer["message"].as_str()), (422, Some("required field 'modelVersionId' is zero value.")));
    api.created(&serves, json!({"modelVersionId": v})).await;

    // Every `format: uri` field (upstream marks logo and licenseLink) is refused the same way
    // on create and on update, so that nothing stored breaks the served document.
    for field in ["licenseLink", "logo"] {
        for link in ["", "not a link", "/relative"] {
            let (status, answer) = api.post("/registered_models", json!({"name": "bad-link", field: link})).await;
            assert_eq!(status, 400, "{field} {link:?}: {answer}");
            let message = answer["message"].as_str().unwrap();
            assert_eq!(message.split(" must be ").next(), Some(format!("json: field {field:?}").as_str()), "{answer}");
            assert!(message.contains("an absolute URI"), "{answer}");
            let (status, answer) = api.patch(&format!("/registered_models/{m}"), json!({field: link})).await;
            assert_eq!(status, 400, "{field} {link:?}: {answer}");
        }
        assert_eq!(api.get(&format!("/registered_models/{m}")).await.1.get(field), None, "nothing stored");
    }
    let (license, logo) = ("https://example.org/LICENSE", "data:image/svg+xml;base64,PHN2Zy8+");
    let linked = api.created("/registered_models", json!({"name": "good", "licenseLink": license, "logo": logo})).await;
    assert_eq!((linked["licenseLink"].as_str(), linked["logo"].as_str()), (Some(license), Some(logo)));

    // Ids: a positive decimal within MLMD's INT range, else 400 naming what was wrong.
    for bad in ["0", "-1", "+1", "1.5", "abc", "2147483648", "99999999999999999999", "%20"] {
        let (status, answer) = api.get(&format!("/registered_models/{bad}")).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains("registered model ID"), "{answer}");
        let (status, answer) = api.get(&format!("/registered_models/{bad}/versions")).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        let (status, answer) = api.post("/model_versions", json!({"name": "v3", "registeredModelId": bad})).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains("registeredModelId"), "{answer}");
    }
    assert_eq!(api.get("/registered_models/2147483647").await.0, 404);
    assert_eq!(api.get("/artifacts/2147483647").await.0, 404);
    assert_eq!(api.post("/model_versions/2147483647/artifacts", json!({"artifactType": "doc-artifact"})).await.0, 404);
    assert_eq!(api.get(&format!("/model_versions/{v}/artifacts?pageSize=1")).await.0, 200);
    // Nothing was half-written by the refused requests.
    assert_eq!(api.get("/registered_models").await.1["size"], 2);
    assert_eq!(api.get("/inference_services").await.1["size"], 1);
}

/// `"a"` and `"A"` in one body: SQLite and PostgreSQL keep both; MySQL's collation folds case in
/// property names, so there the body is a 400 that says so, and nothing is written.
async fn custom_property_names_differing_by_case(backend: Backend) {
    let api = Api::start(backend).await;
    let string = |v: &str| json!({"metadataType": "MetadataStringValue", "string_value": v});
    let model = api.created("/registered_models", json!({"name": "m"})).await;
    let m = id(&model).to_owned();
    let version = api.created("/model_versions", json!({"name": "v", "registeredModelId": m})).await;
    let artifacts = format!("/model_versions/{}/artifacts", id(&version));
    // Names MariaDB's default collation (utf8mb4_general_ci) holds as one: case, accents, trailing spaces.
    let pairs = [("a", "A"), ("e", "\u{e9}"), ("k", "k ")];
    let mut both = json!({});
    for (i, (one, other)) in pairs.into_iter().enumerate() {
        both = json!({one: string("first"), other: string("second")});
        let writes = [
            ("POST", "/registered_models".to_owned(), json!({"name": format!("cased-{i}"), "customProperties": both})),
            ("PATCH", format!("/registered_models/{m}"), json!({"customProperties": both})),
            (
                "POST",
                artifacts.clone(),
                json!({"artifactType": "doc-artifact", "name": format!("d{i}"), "customProperties": both}),
            ),
        ];
        for (method, path, body) in writes {
            let (status, answer) = match method {
                "POST" => api.post(&path, body).await,
                _ => api.patch(&path, body).await,
            };
            if backend == Backend::MySql {
                assert_eq!(status, 400, "{method} {path}: {answer}");
                assert_eq!(answer["code"], "Bad Request");
                let message = answer["message"].as_str().unwrap();
                assert!(message.contains("two custom property names are one name to this database"), "{answer}");
                assert!(message.contains(&format!("{one:?}")) && message.contains(&format!("{other:?}")), "{answer}");
            } else {
                assert!(status == 200 || status == 201, "{method} {path}: {answer}");
                assert_eq!(answer["customProperties"], both, "{method} {path}");
            }
        }
    }
    // Nothing of a refused write is left.
    let kept = usize::from(backend != Backend::MySql);
    let (_, models) = api.get("/registered_models").await;
    assert_eq!(models["size"], 1 + kept * pairs.len(), "{models}");
    let (_, read) = api.get(&format!("/registered_models/{m}")).await;
    let expected = if kept == 1 { both } else { json!({}) };
    assert_eq!(read["customProperties"], expected);
    let (_, listed) = api.get(&artifacts).await;
    assert_eq!(listed["size"], kept * pairs.len(), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_an_assigned_id_taken_runs_again_never_a_client_error() {
    an_assigned_id_taken_runs_again_never_a_client_error(Backend::MySql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_an_assigned_id_taken_runs_again_never_a_client_error() {
    an_assigned_id_taken_runs_again_never_a_client_error(Backend::Postgres).await
}

/// A Galera cluster changing its membership can hand out an AUTO_INCREMENT id twice: no client
/// chose it, so the create runs again (201) and, if every attempt meets one, answers 503 with
/// Retry-After; never the 400 of two property names the collation folds, nor a 409. A trigger
/// sets a taken id on the first `clash_limit` inserts into Context (counted outside any
/// transaction, so a rolled-back attempt still counts).
async fn an_assigned_id_taken_runs_again_never_a_client_error(backend: Backend) {
    let api = Api::start(backend).await;
    let taken = id(&api.created("/registered_models", json!({"name": "first"})).await).to_owned();
    let trigger = match backend {
        Backend::MySql => vec![
            "CREATE TABLE clash_uses (n INT) ENGINE=MEMORY".to_owned(),
            "INSERT INTO clash_uses VALUES (0)".into(),
            "CREATE TABLE clash_limit (n INT)".into(),
            "INSERT INTO clash_limit VALUES (1)".into(),
            format!(
                "CREATE TRIGGER clash BEFORE INSERT ON Context FOR EACH ROW BEGIN \
                 UPDATE clash_uses SET n = n + 1; \
                 IF (SELECT n FROM clash_uses) <= (SELECT n FROM clash_limit) THEN SET NEW.id = {taken}; END IF; END"
            ),
        ],
        _ => vec![
            "CREATE SEQUENCE clash_uses".to_owned(),
            "CREATE TABLE clash_limit (n INT)".into(),
            "INSERT INTO clash_limit VALUES (1)".into(),
            format!(
                "CREATE FUNCTION clash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF nextval('clash_uses') <= (SELECT n FROM clash_limit) THEN NEW.id := {taken}; END IF; \
                 RETURN NEW; END $$"
            ),
            "CREATE TRIGGER clash BEFORE INSERT ON \"Context\" FOR EACH ROW EXECUTE FUNCTION clash()".into(),
        ],
    };
    for statement in trigger {
        api.db.execute(&statement).await;
    }

    let (status, second) = api.post("/registered_models", json!({"name": "second"})).await;
    assert_eq!(status, 201, "the first attempt met a taken id, the second drew a new one: {second}");
    assert_ne!(id(&second), taken);

    api.db.execute("UPDATE clash_limit SET n = 1000").await;
    let answer = api.http.post(format!("{}/registered_models", api.base)).json(&json!({"name": "third"})).send().await.unwrap();
    assert_eq!(answer.status(), 503, "every attempt met a taken id");
    assert!(answer.headers().contains_key("retry-after"));
    let names: Vec<Value> =
        api.get("/registered_models").await.1["items"].as_array().unwrap().iter().map(|m| m["name"].clone()).collect();
    assert_eq!(names, [json!("first"), json!("second")], "nothing of the refused create is left");
}
