//! MLflow's REST API on every backend, where the Python suites (e2e/mlflow_api) cannot look:
//! deletes leave no row behind in any MLMD table, a served version is not deleted, a search
//! page costs the same number of queries whatever its size, and run search filters, orders and
//! pages in the database as MLflow's server does, and metric charts sample each run's history.

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
    run_search_filters_orders_and_pages_as_mlflow,
    run_search_costs_the_same_statements_for_10_and_200_runs,
    bulk_interval_history_samples_each_run,
    a_log_batch_failing_part_way_writes_nothing,
    concurrent_batches_to_one_run_keep_every_row,
    the_latest_metric_has_the_highest_step,
    a_log_batch_costs_the_same_statements_for_10_and_100_metrics,
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
        // A list is a repeated parameter.
        let query: Vec<(String, String)> = body
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(k, v)| match v {
                Value::Array(items) => items.iter().map(|i| (k.clone(), i.as_str().unwrap().to_owned())).collect(),
                v => vec![(k.clone(), v.as_str().unwrap().to_owned())],
            })
            .collect();
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

/// Statements the server has run, as its `/metrics` counts them, but for `kind="other"`: the
/// session set-up of a pool connection, run whenever the pool opens one, whatever the request.
async fn queries(api: &Api) -> f64 {
    let root = api.base.split("/api/model_registry").next().unwrap();
    let text = api.http.get(format!("{root}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("model_registry_db_queries_total{") && !l.contains(r#"kind="other""#))
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

/// A new run in a new experiment; its id.
async fn new_run(api: &Api, experiment: &str) -> String {
    use reqwest::Method as M;
    let created = ok(api, M::POST, "experiments/create", json!({"name": experiment})).await;
    let id = created["experiment_id"].as_str().unwrap();
    let run = ok(api, M::POST, "runs/create", json!({"experiment_id": id, "start_time": 1})).await;
    run["run"]["info"]["run_id"].as_str().unwrap().to_owned()
}

async fn a_log_batch_failing_part_way_writes_nothing(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    let run = new_run(&api, "e").await;
    ok(&api, M::POST, "runs/log-parameter", json!({"run_id": run, "key": "old", "value": "1"})).await;
    ok(&api, M::POST, "runs/log-metric", json!({"run_id": run, "key": "m0", "value": 1.0, "timestamp": 1, "step": 0})).await;
    let before = rows(&api).await;
    // The metric's own name ("<run id>:<key>") fits the name column, its history row's
    // ("<run id>:<key>__<time>") does not: refused only when that row is written, after the
    // params, the other metrics and their history rows.
    let too_long = "k".repeat(255 - run.len() - 1);
    let metrics = |last: &str| {
        let mut m: Vec<Value> =
            (0..20).map(|i| json!({"key": format!("m{}", i % 3), "value": i, "timestamp": 5, "step": i})).collect();
        m.push(json!({"key": last, "value": 1.0, "timestamp": 5, "step": 0}));
        m
    };
    let params = json!([{"key": "new", "value": "x"}, {"key": "old", "value": "1"}]);
    let tags = json!([{"key": "t", "value": "v"}]);
    let (status, err) = mlflow(
        &api,
        M::POST,
        "runs/log-batch",
        json!({"run_id": run, "params": params, "metrics": metrics(&too_long), "tags": tags}),
    )
    .await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{err}");
    assert_eq!(rows(&api).await, before);
    // A tag name longer than the property name column: refused when the run is rewritten, last.
    let tags = json!([{"key": "t", "value": "v"}, {"key": "x".repeat(300), "value": "v"}]);
    let (status, err) =
        mlflow(&api, M::POST, "runs/log-batch", json!({"run_id": run, "params": params, "metrics": metrics("m9"), "tags": tags}))
            .await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{err}");
    assert_eq!(rows(&api).await, before);
    let got = ok(&api, M::GET, "runs/get", json!({"run_id": run})).await;
    assert_eq!(got["run"]["data"]["params"], json!([{"key": "old", "value": "1"}]), "{got}");
    assert_eq!(got["run"]["data"]["metrics"].as_array().unwrap().len(), 1, "{got}");
    assert!(got["run"]["data"]["tags"].as_array().unwrap().iter().all(|t| t["key"] != "t"), "{got}");
    // A changed param refuses the whole batch too.
    let params = json!([{"key": "new", "value": "x"}, {"key": "old", "value": "2"}]);
    let (status, err) =
        mlflow(&api, M::POST, "runs/log-batch", json!({"run_id": run, "params": params, "metrics": metrics("m9")})).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{err}");
    assert_eq!(rows(&api).await, before);
    // The same batch without the bad items is written whole.
    let params = json!([{"key": "new", "value": "x"}, {"key": "old", "value": "1"}]);
    let tags = json!([{"key": "t", "value": "v"}]);
    ok(&api, M::POST, "runs/log-batch", json!({"run_id": run, "params": params, "metrics": metrics("m9"), "tags": tags})).await;
    let got = ok(&api, M::GET, "runs/get", json!({"run_id": run})).await;
    assert_eq!(got["run"]["data"]["params"].as_array().unwrap().len(), 2, "{got}");
    assert_eq!(got["run"]["data"]["metrics"].as_array().unwrap().len(), 4, "{got}");
    let history = ok(&api, M::GET, "metrics/get-history", json!({"run_id": run, "metric_key": "m0"})).await;
    assert_eq!(history["metrics"].as_array().unwrap().len(), 1 + 7, "{history}");
}

/// A batch's statements do not grow with its metrics: new ones, rewritten ones, and re-logged
/// points looked up (of keys whose names hold each other: `m1`, `m1__x`, `m1_`, `x:m1`).
async fn a_log_batch_costs_the_same_statements_for_10_and_100_metrics(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    let batch = |run: &str, keys: usize, step: usize| {
        let mut metrics: Vec<Value> =
            (0..keys).map(|k| json!({"key": format!("m{k}"), "value": k + step, "timestamp": 9, "step": step})).collect();
        for other in ["m1__x", "m1_", "x:m1"] {
            metrics.push(json!({"key": other, "value": 1 + step, "timestamp": 9, "step": step}));
        }
        let params: Vec<Value> = (0..10).map(|k| json!({"key": format!("p{step}_{k}"), "value": "x"})).collect();
        json!({"run_id": run, "metrics": metrics, "params": params})
    };
    let (small, large) = (new_run(&api, "small").await, new_run(&api, "large").await);
    let mut costs = Vec::new();
    // New metrics, then the same metrics at a higher step, then the first step again.
    for step in [1, 2, 1] {
        for (run, keys) in [(&small, 10), (&large, 100)] {
            let start = queries(&api).await;
            ok(&api, M::POST, "runs/log-batch", batch(run, keys, step)).await;
            costs.push(queries(&api).await - start);
        }
    }
    for pair in costs.chunks(2) {
        assert_eq!(pair[0], pair[1], "{costs:?}");
    }
    assert!(costs.iter().all(|c| *c <= 14.0), "{costs:?}");
    // SQLite takes the writes that follow each other in one call: the run, the names, the new
    // rows with the update times, the property rows with the links.
    if backend == Backend::Sqlite {
        assert!(costs.iter().all(|c| *c <= 4.0), "{costs:?}");
    }
    // The re-logged points were found as logged: each metric holds two history rows.
    for key in ["m0", "m1", "m1__x", "m1_", "x:m1", "m99"] {
        let history = ok(&api, M::GET, "metrics/get-history", json!({"run_id": large, "metric_key": key})).await;
        let steps: Vec<i64> = history["metrics"].as_array().unwrap().iter().map(|m| m["step"].as_i64().unwrap()).collect();
        assert_eq!(steps.len(), 2, "{key}: {history}");
    }
    let got = ok(&api, M::GET, "runs/get", json!({"run_id": large})).await;
    let metrics = got["run"]["data"]["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 103, "{got}");
    assert!(metrics.iter().all(|m| m["step"] == 2), "{got}");
    assert_eq!(got["run"]["data"]["params"].as_array().unwrap().len(), 20, "{got}");
    // MLflow's largest batch spans several statements of each kind: every metric keeps its own
    // value and history row.
    let full = new_run(&api, "full").await;
    let metrics: Vec<Value> = (0..1000).map(|k| json!({"key": format!("k{k}"), "value": k, "timestamp": 3, "step": k})).collect();
    ok(&api, M::POST, "runs/log-batch", json!({"run_id": full, "metrics": metrics})).await;
    let got = ok(&api, M::GET, "runs/get", json!({"run_id": full})).await;
    let metrics = got["run"]["data"]["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 1000);
    assert!(metrics.iter().all(|m| m["key"] == format!("k{}", m["value"].as_f64().unwrap())), "{got}");
    let history = ok(&api, M::GET, "metrics/get-history", json!({"run_id": full, "metric_key": "k999"})).await;
    let points = history["metrics"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{history}");
    assert_eq!((points[0]["value"].as_f64(), points[0]["step"].as_i64()), (Some(999.0), Some(999)), "{history}");
}

async fn concurrent_batches_to_one_run_keep_every_row(backend: Backend) {
    use reqwest::Method as M;
    const BATCHES: usize = 16;
    let api = Api::start(backend).await;
    let run = new_run(&api, "busy").await;
    let batches = (0..BATCHES).map(|i| {
        let (api, run) = (api.clone(), run.clone());
        async move {
            let metrics: Vec<Value> =
                (0..10).map(|k| json!({"key": format!("m{k}"), "value": i, "timestamp": 7, "step": i})).collect();
            let body = json!({
                "run_id": run,
                "metrics": metrics,
                "params": [{"key": format!("p{i}"), "value": "x"}, {"key": "shared", "value": "same"}],
                "tags": [{"key": format!("t{i}"), "value": "y"}],
            });
            ok(&api, M::POST, "runs/log-batch", body).await
        }
    });
    futures_join(batches).await;
    let got = ok(&api, M::GET, "runs/get", json!({"run_id": run})).await;
    let data = &got["run"]["data"];
    assert_eq!(data["params"].as_array().unwrap().len(), BATCHES + 1, "{got}");
    let tags = data["tags"].as_array().unwrap();
    assert!((0..BATCHES).all(|i| tags.iter().any(|t| t["key"] == format!("t{i}"))), "{got}");
    let metrics = data["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 10, "{got}");
    assert!(metrics.iter().all(|m| m["step"] == BATCHES as i64 - 1), "{got}");
    for k in 0..10 {
        let history = ok(&api, M::GET, "metrics/get-history", json!({"run_id": run, "metric_key": format!("m{k}")})).await;
        let mut steps: Vec<i64> = history["metrics"].as_array().unwrap().iter().map(|m| m["step"].as_i64().unwrap()).collect();
        steps.sort_unstable();
        assert_eq!(steps, (0..BATCHES as i64).collect::<Vec<_>>(), "m{k}: {history}");
    }
}

async fn the_latest_metric_has_the_highest_step(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    let run = new_run(&api, "order").await;
    let log = |value: f64, timestamp: i64, step: i64| {
        let api = api.clone();
        let body = json!({"run_id": run, "key": "loss", "value": value, "timestamp": timestamp, "step": step});
        async move { ok(&api, M::POST, "runs/log-metric", body).await }
    };
    let latest = |api: Api, run: String| async move {
        let got = ok(&api, M::GET, "runs/get", json!({"run_id": run})).await;
        let m = &got["run"]["data"]["metrics"][0];
        (m["value"].as_f64().unwrap(), m["timestamp"].as_i64().unwrap(), m["step"].as_i64().unwrap())
    };
    log(0.5, 100, 5).await;
    log(0.9, 200, 3).await;
    assert_eq!(latest(api.clone(), run.clone()).await, (0.5, 100, 5));
    // Same step: the later timestamp; same step and timestamp: the larger value.
    log(0.7, 50, 5).await;
    assert_eq!(latest(api.clone(), run.clone()).await, (0.5, 100, 5));
    log(0.4, 100, 5).await;
    assert_eq!(latest(api.clone(), run.clone()).await, (0.5, 100, 5));
    log(0.6, 100, 5).await;
    assert_eq!(latest(api.clone(), run.clone()).await, (0.6, 100, 5));
    // A point logged again is one history row.
    log(0.9, 200, 3).await;
    let history = ok(&api, M::GET, "metrics/get-history", json!({"run_id": run, "metric_key": "loss"})).await;
    assert_eq!(history["metrics"].as_array().unwrap().len(), 5, "{history}");
    // Search filters on the latest point.
    let got = ok(&api, M::GET, "runs/get", json!({"run_id": run})).await;
    let experiment = got["run"]["info"]["experiment_id"].clone();
    for (filter, count) in [("metrics.loss = 0.6", 1), ("metrics.loss = 0.9", 0)] {
        let found = ok(&api, M::POST, "runs/search", json!({"experiment_ids": [experiment], "filter": filter})).await;
        assert_eq!(found["runs"].as_array().map_or(0, Vec::len), count, "{filter}: {found}");
    }
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

/// A run of the search tests, as the test logged it.
#[derive(Debug, Clone)]
struct LoggedRun {
    id: String,
    name: String,
    start: i64,
    user: String,
    finished: bool,
    acc: Option<f64>,
    lr: String,
    tag: Option<String>,
}

/// `count` runs in a new experiment, each with a start time, a user, a param, and (for most)
/// a metric and a tag; every other run finished. One log-batch each.
async fn logged_runs(api: &Api, experiment: &str, count: usize) -> (String, Vec<LoggedRun>) {
    use reqwest::Method as M;
    let exp =
        ok(api, M::POST, "experiments/create", json!({"name": experiment})).await["experiment_id"].as_str().unwrap().to_owned();
    let mut runs = Vec::new();
    for i in 0..count {
        let run = LoggedRun {
            id: String::new(),
            name: format!("run-{i:03}"),
            // Not in creation order, so that ordering by start time is seen.
            start: 1_000_000 + ((i * 7) % count) as i64,
            user: format!("u{}", i % 3),
            finished: i % 2 == 0,
            acc: (i % 4 != 0).then(|| (i % 10) as f64 / 10.0),
            lr: format!("0.{}", i % 3),
            tag: match i % 3 {
                0 => None,
                1 => Some("x".into()),
                _ => Some(format!("Y{i}")),
            },
        };
        let body = json!({"experiment_id": exp, "run_name": run.name, "start_time": run.start, "user_id": run.user});
        let id = ok(api, M::POST, "runs/create", body).await["run"]["info"]["run_id"].as_str().unwrap().to_owned();
        let metrics: Vec<Value> = run.acc.iter().map(|v| json!({"key": "acc", "value": v, "timestamp": 1, "step": 0})).collect();
        let tags: Vec<Value> = run.tag.iter().map(|t| json!({"key": "t", "value": t})).collect();
        let batch = json!({"run_id": id, "metrics": metrics, "params": [{"key": "lr", "value": run.lr}], "tags": tags});
        ok(api, M::POST, "runs/log-batch", batch).await;
        if run.finished {
            ok(api, M::POST, "runs/update", json!({"run_id": id, "status": "FINISHED", "end_time": run.start + 10})).await;
        }
        runs.push(LoggedRun { id, ..run });
    }
    (exp, runs)
}

/// Every page of a search, run names in order, and the pages' sizes.
async fn search_all(api: &Api, exp: &str, filter: &str, order: &[&str], page: usize) -> (Vec<String>, Vec<usize>) {
    let (mut names, mut sizes, mut token) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let mut body = json!({"experiment_ids": [exp], "filter": filter, "order_by": order, "max_results": page});
        if let Some(t) = &token {
            body["page_token"] = t.clone().into();
        }
        let reply = ok(api, reqwest::Method::POST, "runs/search", body).await;
        let runs = reply["runs"].as_array().cloned().unwrap_or_default();
        sizes.push(runs.len());
        names.extend(runs.iter().map(|r| r["info"]["run_name"].as_str().unwrap().to_owned()));
        match reply["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => return (names, sizes),
        }
    }
}

/// MLflow's order: newest start first, then the run id.
fn by_start(runs: &[&LoggedRun]) -> Vec<String> {
    let mut runs = runs.to_vec();
    runs.sort_by(|a, b| b.start.cmp(&a.start).then(a.id.cmp(&b.id)));
    runs.iter().map(|r| r.name.clone()).collect()
}

async fn run_search_filters_orders_and_pages_as_mlflow(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    let (exp, runs) = logged_runs(&api, "search", 12).await;
    // Another experiment's runs are never found.
    logged_runs(&api, "other", 2).await;
    let expect = |keep: &dyn Fn(&LoggedRun) -> bool| by_start(&runs.iter().filter(|r| keep(r)).collect::<Vec<_>>());
    let acc = |r: &LoggedRun| r.acc;
    let cases: Vec<(String, Vec<String>)> = vec![
        ("".into(), expect(&|_| true)),
        ("metrics.acc > 0.5".into(), expect(&|r| acc(r).is_some_and(|a| a > 0.5))),
        ("metrics.acc >= 0.5".into(), expect(&|r| acc(r).is_some_and(|a| a >= 0.5))),
        ("metrics.acc < 0.5".into(), expect(&|r| acc(r).is_some_and(|a| a < 0.5))),
        ("metrics.acc <= 0.5".into(), expect(&|r| acc(r).is_some_and(|a| a <= 0.5))),
        ("metrics.acc = 0.5".into(), expect(&|r| acc(r) == Some(0.5))),
        ("metrics.acc != 0.5".into(), expect(&|r| acc(r).is_some_and(|a| a != 0.5))),
        ("metrics.missing > 0".into(), vec![]),
        ("params.lr = '0.1'".into(), expect(&|r| r.lr == "0.1")),
        ("params.lr != '0.1'".into(), expect(&|r| r.lr != "0.1")),
        ("params.lr LIKE '%.2'".into(), expect(&|r| r.lr == "0.2")),
        ("params.lr ILIKE '0._'".into(), expect(&|_| true)),
        ("params.lr IS NULL".into(), vec![]),
        ("params.lr IS NOT NULL".into(), expect(&|_| true)),
        ("tags.t = 'x'".into(), expect(&|r| r.tag.as_deref() == Some("x"))),
        ("tags.t != 'x'".into(), expect(&|r| r.tag.as_deref().is_some_and(|t| t != "x"))),
        ("tags.t ILIKE 'y%'".into(), expect(&|r| r.tag.as_deref().is_some_and(|t| t.starts_with('Y')))),
        ("tags.t IS NULL".into(), expect(&|r| r.tag.is_none())),
        ("tags.t IS NOT NULL".into(), expect(&|r| r.tag.is_some())),
        ("attributes.status = 'FINISHED'".into(), expect(&|r| r.finished)),
        ("attributes.status != 'FINISHED'".into(), expect(&|r| !r.finished)),
        ("attributes.run_name = 'run-003'".into(), vec!["run-003".into()]),
        ("attributes.run_name LIKE 'run-00%'".into(), expect(&|r| r.name.starts_with("run-00"))),
        ("attributes.`Run Name` ILIKE 'RUN-01%'".into(), expect(&|r| r.name.starts_with("run-01"))),
        ("attributes.user_id = 'u1'".into(), expect(&|r| r.user == "u1")),
        (format!("attributes.run_id = '{}'", runs[4].id), vec!["run-004".into()]),
        (
            format!("attributes.run_id IN ('{}', '{}', 'nope')", runs[1].id, runs[2].id),
            expect(&|r| r.id == runs[1].id || r.id == runs[2].id),
        ),
        (format!("attributes.run_id NOT IN ('{}')", runs[1].id), expect(&|r| r.id != runs[1].id)),
        ("attributes.start_time >= 1000006".into(), expect(&|r| r.start >= 1_000_006)),
        ("attributes.created < 1000003".into(), expect(&|r| r.start < 1_000_003)),
        ("attributes.end_time > 0".into(), expect(&|r| r.finished)),
        (
            "metrics.acc > 0.1 and params.lr = '0.2' AND attributes.status = 'FINISHED'".into(),
            expect(&|r| acc(r).is_some_and(|a| a > 0.1) && r.lr == "0.2" && r.finished),
        ),
    ];
    for (filter, expected) in &cases {
        // Several pages of 5 give the same runs in the same order as one page.
        let (names, sizes) = search_all(&api, &exp, filter, &[], 5).await;
        assert_eq!(&names, expected, "{backend:?} {filter}");
        assert!(sizes.iter().rev().skip(1).all(|s| *s == 5), "{filter}: {sizes:?}");
    }
    // Ordering: runs without the key last either way, ties newest start first.
    let mut with_acc: Vec<&LoggedRun> = runs.iter().filter(|r| r.acc.is_some()).collect();
    let without: Vec<String> = by_start(&runs.iter().filter(|r| r.acc.is_none()).collect::<Vec<_>>());
    for descending in [false, true] {
        with_acc.sort_by(|a, b| {
            let o = a.acc.partial_cmp(&b.acc).unwrap();
            let o = if descending { o.reverse() } else { o };
            o.then(b.start.cmp(&a.start))
        });
        let mut expected: Vec<String> = with_acc.iter().map(|r| r.name.clone()).collect();
        expected.extend(without.clone());
        let order = if descending { "metrics.acc DESC" } else { "metrics.acc" };
        assert_eq!(search_all(&api, &exp, "", &[order], 5).await.0, expected, "{backend:?} {order}");
    }
    let mut expected: Vec<&LoggedRun> = runs.iter().collect();
    expected.sort_by(|a, b| a.lr.cmp(&b.lr).then(b.name.cmp(&a.name)));
    let expected: Vec<String> = expected.iter().map(|r| r.name.clone()).collect();
    let order = ["params.lr ASC", "attributes.run_name DESC"];
    assert_eq!(search_all(&api, &exp, "", &order, 4).await.0, expected, "{backend:?}");
    let mut expected: Vec<&LoggedRun> = runs.iter().collect();
    expected.sort_by_key(|r| r.start);
    let expected: Vec<String> = expected.iter().map(|r| r.name.clone()).collect();
    assert_eq!(search_all(&api, &exp, "", &["attributes.start_time ASC"], 7).await.0, expected);
    // Deleted runs: only with their view type.
    ok(&api, M::POST, "runs/delete", json!({"run_id": runs[0].id})).await;
    let (names, _) = search_all(&api, &exp, "", &[], 100).await;
    assert!(!names.contains(&runs[0].name));
    let deleted = ok(&api, M::POST, "runs/search", json!({"experiment_ids": [exp], "run_view_type": "DELETED_ONLY"})).await;
    assert_eq!(deleted["runs"].as_array().unwrap().len(), 1, "{deleted}");
    // A found run shows its data as runs/get does.
    let one =
        ok(&api, M::POST, "runs/search", json!({"experiment_ids": [exp], "filter": "attributes.run_name = 'run-005'"})).await;
    let got = ok(&api, M::GET, "runs/get", json!({"run_id": runs[5].id})).await;
    assert_eq!(one["runs"][0], got["run"]);
    // Bad input is MLflow's 400.
    for body in [
        json!({"experiment_ids": [exp], "filter": "metrics.acc = 'a'"}),
        json!({"experiment_ids": [exp], "filter": "attributes.nope = 'a'"}),
        json!({"experiment_ids": [exp], "order_by": ["metrics.a", "metrics.a DESC"]}),
        json!({"experiment_ids": [exp], "page_token": "!!"}),
        json!({"experiment_ids": ["abc"]}),
        json!({"experiment_ids": [exp], "max_results": 50001}),
    ] {
        let (status, err) = mlflow(&api, M::POST, "runs/search", body.clone()).await;
        assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{body}: {err}");
    }
}

async fn run_search_costs_the_same_statements_for_10_and_200_runs(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    let (small, _) = logged_runs(&api, "small", 10).await;
    let (large, runs) = logged_runs(&api, "large", 200).await;
    let search = json!({"filter": "metrics.acc >= 0 and params.lr != 'z'", "order_by": ["metrics.acc DESC"], "max_results": 5});
    let mut costs = Vec::new();
    for exp in [&small, &large, &small, &large] {
        let mut body = search.clone();
        body["experiment_ids"] = json!([exp]);
        let start = queries(&api).await;
        let page = ok(&api, M::POST, "runs/search", body).await;
        assert_eq!(page["runs"].as_array().unwrap().len(), 5);
        costs.push(queries(&api).await - start);
    }
    assert_eq!(costs[2], costs[3], "{costs:?}");
    assert!(costs.iter().all(|c| *c <= 6.0), "{costs:?}");
    // Every one of the 200 runs in one page (no cap on the runs looked at), best first.
    let all = json!({"experiment_ids": [large], "order_by": ["metrics.acc DESC"], "max_results": 50000});
    let page = ok(&api, M::POST, "runs/search", all).await;
    let found: Vec<Option<f64>> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["data"]["metrics"].as_array().and_then(|m| m.first()).map(|m| m["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(found.len(), runs.len());
    let mut expected: Vec<Option<f64>> = runs.iter().map(|r| r.acc).collect();
    expected.sort_by(|a, b| match (a, b) {
        (Some(a), Some(b)) => b.partial_cmp(a).unwrap(),
        (a, b) => b.is_some().cmp(&a.is_some()),
    });
    assert_eq!(found, expected);
    assert!(page.get("next_page_token").is_none());
}

async fn bulk_interval_history_samples_each_run(backend: Backend) {
    use reqwest::Method as M;
    let api = Api::start(backend).await;
    let exp = ok(&api, M::POST, "experiments/create", json!({"name": "charts"})).await["experiment_id"].clone();
    let mut runs = Vec::new();
    for (name, count) in [("a", 10), ("b", 3)] {
        let run = ok(&api, M::POST, "runs/create", json!({"experiment_id": exp, "run_name": name})).await;
        let id = run["run"]["info"]["run_id"].as_str().unwrap().to_owned();
        let mut metrics: Vec<Value> =
            (0..count).map(|i| json!({"key": "loss", "value": i as f64, "timestamp": 100 + i, "step": i})).collect();
        // Another key ending in the same name is not this metric.
        metrics.push(json!({"key": "x:loss", "value": 9.0, "timestamp": 1, "step": 0}));
        ok(&api, M::POST, "runs/log-batch", json!({"run_id": id, "metrics": metrics})).await;
        runs.push(id);
    }
    let steps = |reply: &Value, run: &str| -> Vec<i64> {
        let metrics = reply["metrics"].as_array().cloned().unwrap_or_default();
        metrics.iter().filter(|m| m["run_id"] == run).map(|m| m["step"].as_i64().unwrap()).collect()
    };
    let query = |extra: Value| {
        let mut q = json!({"run_ids": runs.clone(), "metric_key": "loss"});
        q.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        q
    };
    let all = ok(&api, M::GET, "metrics/get-history-bulk-interval", query(json!({}))).await;
    assert_eq!((steps(&all, &runs[0]), steps(&all, &runs[1])), ((0..10).collect(), vec![0, 1, 2]), "{all}");
    // NTILE(3) over 10 points starts buckets at 0, 4, 7; the last point takes the last place.
    let sampled = ok(&api, M::GET, "metrics/get-history-bulk-interval", query(json!({"max_results": "3"}))).await;
    assert_eq!((steps(&sampled, &runs[0]), steps(&sampled, &runs[1])), (vec![0, 4, 9], vec![0, 1, 2]), "{sampled}");
    let ranged = query(json!({"max_results": "2", "start_step": "2", "end_step": "6"}));
    let ranged = ok(&api, M::GET, "metrics/get-history-bulk-interval", ranged).await;
    assert_eq!((steps(&ranged, &runs[0]), steps(&ranged, &runs[1])), (vec![2, 6], vec![2]), "{ranged}");
    let (status, err) = mlflow(&api, M::GET, "metrics/get-history-bulk-interval", query(json!({"start_step": "1"}))).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PARAMETER_VALUE")), "{err}");
}
