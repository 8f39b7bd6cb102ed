//! MLflow's REST API on every backend, where the Python suites (e2e/mlflow_api) cannot look:
//! deletes leave no row behind in any MLMD table, a served version is not deleted, and a search
//! page costs the same number of queries whatever its size.

use serde_json::{json, Value};
use testkit::Backend;

mod support;
use support::app::Api;

testkit::on_every_backend!(
    deletes_leave_no_row_behind,
    served_versions_and_their_models_are_not_deleted,
    a_search_page_costs_a_fixed_number_of_queries,
    bad_input_is_a_400_never_a_500,
    concurrent_creates_get_distinct_numbers,
);

const TABLES: [&str; 9] = [
    "Context",
    "ContextProperty",
    "ParentContext",
    "Attribution",
    "Association",
    "Artifact",
    "ArtifactProperty",
    "Event",
    "EventPath",
];

/// MLflow's REST API on the same server.
async fn mlflow(api: &Api, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let root = api.base.split("/api/model_registry").next().unwrap();
    let url = format!("{root}/api/2.0/mlflow/{path}");
    let request = if method == reqwest::Method::GET {
        let query: Vec<(String, String)> =
            body.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
        api.http.get(url).query(&query)
    } else {
        api.http.request(method, url).json(&body)
    };
    support::send(request, None).await
}

async fn ok(api: &Api, method: reqwest::Method, path: &str, body: Value) -> Value {
    let (status, value) = mlflow(api, method, path, body.clone()).await;
    assert_eq!(status, 200, "{path} {body}: {value}");
    value
}

async fn rows(api: &Api) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for table in TABLES {
        let name = if api.db.backend() == Backend::Postgres { format!("\"{table}\"") } else { table.to_owned() };
        let count = api.db.query_text(&format!("SELECT COUNT(*) FROM {name}")).await[0][0].clone().unwrap();
        out.push((table, count.parse().unwrap()));
    }
    out
}

async fn deletes_leave_no_row_behind(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    // What must survive: a Kubeflow model with a version and its artifact.
    let keeper = api.created("/registered_models", json!({"name": "keeper"})).await;
    let kept_version =
        api.created(&format!("/registered_models/{}/versions", keeper["id"].as_str().unwrap()), json!({"name": "v1"})).await;
    let path = format!("/model_versions/{}/artifacts", kept_version["id"].as_str().unwrap());
    api.created(&path, json!({"artifactType": "model-artifact", "name": "m", "uri": "s3://keep"})).await;
    let before = rows(&api).await;

    ok(&api, M::POST, "registered-models/create", json!({"name": "gone", "tags": [{"key": "a", "value": "b"}]})).await;
    for i in 1..=3 {
        let body = json!({"name": "gone", "source": format!("s3://b/{i}"), "tags": [{"key": "t", "value": "v"}]});
        ok(&api, M::POST, "model-versions/create", body).await;
    }
    ok(&api, M::POST, "registered-models/alias", json!({"name": "gone", "alias": "champion", "version": "2"})).await;
    // A Kubeflow client adds a second artifact to version 2.
    let (_, model) = api.request(reqwest::Method::GET, "/registered_model", &[("name", "gone")], None).await;
    let model_id = model["id"].as_str().unwrap();
    let (_, found) =
        api.request(reqwest::Method::GET, "/model_version", &[("name", "2"), ("parentResourceId", model_id)], None).await;
    let v2 = found["id"].as_str().expect("version 2 through Kubeflow").to_owned();
    api.created(
        &format!("/model_versions/{v2}/artifacts"),
        json!({"artifactType": "doc-artifact", "name": "card", "uri": "s3://doc"}),
    )
    .await;

    ok(&api, M::DELETE, "model-versions/delete", json!({"name": "gone", "version": "2"})).await;
    let model = ok(&api, M::GET, "registered-models/get", json!({"name": "gone"})).await;
    assert!(model["registered_model"].get("aliases").is_none(), "the alias went with its version: {model}");
    let (status, err) = mlflow(&api, M::GET, "model-versions/get", json!({"name": "gone", "version": "2"})).await;
    assert_eq!((status, err["error_code"].as_str()), (404, Some("RESOURCE_DOES_NOT_EXIST")));
    let (status, _) = api.get(&format!("/model_versions/{v2}")).await;
    assert_eq!(status, 404);

    ok(&api, M::DELETE, "registered-models/delete", json!({"name": "gone"})).await;
    assert_eq!(rows(&api).await, before, "every row the model, its versions and artifacts had is gone");
    let (status, _) = mlflow(&api, M::GET, "registered-models/get", json!({"name": "gone"})).await;
    assert_eq!(status, 404);
    // The Kubeflow API still has no DELETE.
    let (status, _) = api.call(M::DELETE, &format!("/registered_models/{}", keeper["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 405);
    assert_eq!(
        ok(&api, M::GET, "model-versions/get-download-uri", json!({"name": "keeper", "version": "v1"})).await["artifact_uri"],
        "s3://keep"
    );
}

async fn served_versions_and_their_models_are_not_deleted(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    ok(&api, M::POST, "registered-models/create", json!({"name": "served"})).await;
    ok(&api, M::POST, "model-versions/create", json!({"name": "served", "source": "s3://b/1"})).await;
    ok(&api, M::POST, "model-versions/create", json!({"name": "served", "source": "s3://b/2"})).await;
    let (_, model) = api.request(reqwest::Method::GET, "/registered_model", &[("name", "served")], None).await;
    let model_id = model["id"].as_str().unwrap().to_owned();
    let (_, version) =
        api.request(reqwest::Method::GET, "/model_version", &[("name", "1"), ("parentResourceId", &model_id)], None).await;
    let env = api.created("/serving_environments", json!({"name": "prod"})).await;
    let body = json!({"name": "isvc", "servingEnvironmentId": env["id"], "registeredModelId": model_id, "modelVersionId": version["id"]});
    api.created("/inference_services", body).await;
    let before = rows(&api).await;

    let (status, err) = mlflow(&api, M::DELETE, "model-versions/delete", json!({"name": "served", "version": "1"})).await;
    assert_eq!((status, err["error_code"].as_str()), (409, Some("RESOURCE_CONFLICT")), "{err}");
    assert!(err["message"].as_str().unwrap().contains("inference service \"isvc\""), "{err}");
    let (status, err) = mlflow(&api, M::DELETE, "registered-models/delete", json!({"name": "served"})).await;
    assert_eq!((status, err["error_code"].as_str()), (409, Some("RESOURCE_CONFLICT")), "{err}");
    assert_eq!(rows(&api).await, before, "a refused delete writes nothing");
    // A version nothing serves goes.
    ok(&api, M::DELETE, "model-versions/delete", json!({"name": "served", "version": "2"})).await;
}

/// `model_registry_db_queries_total`, all kinds together.
async fn queries(api: &Api) -> f64 {
    let root = api.base.split("/api/model_registry").next().unwrap();
    let text = api.http.get(format!("{root}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("model_registry_db_queries_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn a_search_page_costs_a_fixed_number_of_queries(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    for i in 0..40 {
        let name = format!("m{i:02}");
        ok(&api, M::POST, "registered-models/create", json!({"name": name, "tags": [{"key": "k", "value": "v"}]})).await;
        ok(&api, M::POST, "model-versions/create", json!({"name": name, "source": "s3://b/1", "run_id": "r"})).await;
        ok(&api, M::POST, "model-versions/create", json!({"name": name, "source": "s3://b/2", "run_id": "r"})).await;
    }
    let mut costs = Vec::new();
    // Both sizes above the store's joined read of one or two nodes, which costs one query less.
    for size in ["10", "40"] {
        for (path, filter) in [
            ("registered-models/search", "name LIKE 'm%' AND tags.k = 'v'"),
            ("model-versions/search", "name LIKE 'm%' AND run_id = 'r'"),
        ] {
            let start = queries(&api).await;
            let page = ok(&api, M::GET, path, json!({"filter": filter, "max_results": size})).await;
            let listed = page.as_object().unwrap().values().find_map(Value::as_array).unwrap().len();
            assert_eq!(listed, size.parse::<usize>().unwrap(), "{path}");
            costs.push((path, queries(&api).await - start));
        }
    }
    assert_eq!(costs[0].1, costs[2].1, "{costs:?}");
    assert_eq!(costs[1].1, costs[3].1, "{costs:?}");
    assert!(costs.iter().all(|(_, c)| *c <= 8.0), "{costs:?}");
}

async fn bad_input_is_a_400_never_a_500(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    ok(&api, M::POST, "registered-models/create", json!({"name": "m"})).await;
    ok(&api, M::POST, "registered-models/set-tag", json!({"name": "m", "key": "team", "value": "a"})).await;
    // MySQL's collation holds `Team` and `team` as one property name: a 400 there, a tag elsewhere.
    let (status, body) =
        mlflow(&api, M::POST, "registered-models/set-tag", json!({"name": "m", "key": "Team", "value": "b"})).await;
    let expected = if backend == Backend::MySql { 400 } else { 200 };
    assert_eq!(status, expected, "{body}");
    let long = "x".repeat(300);
    for (path, body) in [
        ("registered-models/set-tag", json!({"name": "m", "key": long, "value": "v"})),
        ("registered-models/rename", json!({"name": "m", "new_name": long})),
        ("registered-models/create", json!({"name": long})),
        ("model-versions/create", json!({"name": "m", "source": format!("s3://b/{}", "y".repeat(3000))})),
        ("model-versions/create", json!({"name": "m", "source": "s3://b/../../etc"})),
        ("model-versions/create", json!({"name": "m"})),
        ("registered-models/alias", json!({"name": "m", "alias": "a b", "version": "1"})),
        ("registered-models/create", json!({"name": "a/b"})),
    ] {
        let (status, err) = mlflow(&api, M::POST, path, body.clone()).await;
        assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{path} {body}: {err}");
    }
    let (status, err) = mlflow(&api, M::GET, "registered-models/search", json!({"filter": "name = 'a' OR name = 'b'"})).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{err}");
    let (status, err) = mlflow(&api, M::GET, "registered-models/search", json!({"page_token": "!!"})).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{err}");
}

async fn concurrent_creates_get_distinct_numbers(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    ok(&api, M::POST, "registered-models/create", json!({"name": "busy"})).await;
    let creates = (0..8).map(|i| {
        let api = api.clone();
        async move { ok(&api, M::POST, "model-versions/create", json!({"name": "busy", "source": format!("s3://b/{i}")})).await }
    });
    let mut numbers: Vec<i64> =
        futures_join(creates).await.iter().map(|v| v["model_version"]["version"].as_str().unwrap().parse().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=8).collect::<Vec<_>>());
}

/// Runs the futures at once (each on its own task) and collects their outputs in order.
async fn futures_join<F: std::future::Future<Output = Value> + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<Value> {
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}
