//! Hostile inputs on every backend: each is a 4xx whose message names the culprit, never a
//! database error, and nothing is half-written; the largest allowed values still work.

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Map, Value};
use testkit::Backend;

mod support;
use support::app::Api;

testkit::on_every_backend!(filter_queries_are_typed_and_bounded, bodies_fit_every_backend, the_largest_allowed_inputs_work);

/// The longest uri (bytes) and filterQuery (bytes), and the comparison and IN-list limits.
const MAX_URI_BYTES: usize = 2692;
const MAX_QUERY_BYTES: usize = filter_query::MAX_QUERY_BYTES;
const MAX_COMPARISONS: usize = filter_query::MAX_COMPARISONS;
const MAX_LIST_ITEMS: usize = filter_query::MAX_LIST_ITEMS;

async fn filtered(api: &Api, path: &str, filter: &str) -> (u16, Value) {
    api.request(Method::GET, path, &[("filterQuery", filter)], None).await
}

/// A filter sent as it is (spaces aside): percent-encoding would take long queries past the
/// client's 64 KiB URL limit.
async fn raw_filter(api: &Api, path: &str, filter: &str) -> (u16, Value) {
    let url = format!("{}{path}?filterQuery={}", api.base, filter.replace(' ', "%20"));
    let response = api.http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A POST or PATCH that must succeed; returns the body.
async fn ok(api: &Api, method: Method, path: &str, body: Value) -> Value {
    let (status, value) = api.call(method, path, Some(body)).await;
    assert!(matches!(status, 200 | 201), "{path}: {status} {value}");
    value
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("ids are strings").to_owned()
}

/// Asserts a 400 whose message contains every one of `culprits`.
#[track_caller]
fn refused(case: &str, (status, body): (u16, Value), culprits: &[&str]) {
    let message = body["message"].as_str().unwrap_or_default();
    assert_eq!(status, 400, "{case}: {body}");
    for culprit in culprits {
        assert!(message.contains(culprit), "{case}: {message:?} does not name {culprit:?}");
    }
}

/// Text that no database compresses (PostgreSQL compresses long index entries).
fn incompressible(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

async fn filter_queries_are_typed_and_bounded(backend: Backend) {
    let api = Api::start(backend).await;
    let int = |v: &str| json!({"metadataType": "MetadataIntValue", "int_value": v});
    let model =
        ok(&api, Method::POST, "/registered_models", json!({"name": "m", "customProperties": {"f": int("1"), "g": int("2")}}))
            .await;
    let m = id(&model);
    ok(&api, Method::POST, "/registered_models", json!({"name": "x_y"})).await;
    ok(&api, Method::POST, "/model_versions", json!({"name": "v", "registeredModelId": m})).await;
    let experiment = ok(&api, Method::POST, "/experiments", json!({"name": "e"})).await;
    let run = ok(&api, Method::POST, "/experiment_runs", json!({"experimentId": id(&experiment)})).await;
    let r = id(&run);

    let cases: &[(&str, &str, &[&str])] = &[
        // Each of these was a 500 on PostgreSQL and a backend-specific 200 elsewhere.
        ("/registered_models", "name = 5", &["\"name = 5\"", "name is text"]),
        ("/registered_models", "id LIKE '1%'", &["id LIKE '1%'", "LIKE and ILIKE apply to text only"]),
        ("/registered_models", "f.bool_value = 1", &["f.bool_value = 1", "f.bool_value is a boolean"]),
        ("/registered_models", "createTimeSinceEpoch > 'x'", &["createTimeSinceEpoch > 'x'", "is an integer"]),
        ("/registered_models", "state = 'LIVE' AND id = 'one'", &["id = 'one'", "at position 19"]),
        ("/registered_models", "f.int_value = 1.5", &["f.int_value is an integer"]),
        ("/registered_models", "f.double_value = 'x'", &["f.double_value is a number"]),
        ("/registered_models", "f.string_value = 3", &["f.string_value is text"]),
        ("/registered_models", r"f.string_value ILIKE 'a\\\\\\'", &["unescaped backslash"]),
        ("/registered_models", r"name LIKE 'a\\'", &["name LIKE", "unescaped backslash"]),
        ("/registered_models", "f IN (1, 'a')", &["f IN (1, 'a')", "mixes"]),
        ("/registered_models", "owner IN ('a', 2)", &["owner is text"]),
        ("/registered_models", "f > true OR f.int_value IN (1, false)", &["f.int_value IN (1, FALSE)"]),
        ("/model_versions", "registeredModelId = 'abc'", &["registeredModelId is an integer"]),
        ("/model_versions", "name = 1", &["name is text"]),
        ("/model_artifacts", "state LIKE 'LI%'", &["state is a state"]),
        ("/model_artifacts", "uri > 3", &["uri is text"]),
        ("/experiment_runs", "startTimeSinceEpoch > 5", &["startTimeSinceEpoch is text"]),
        ("/artifacts", "experimentRunId = true", &["experimentRunId is an integer"]),
    ];
    for (path, filter, culprits) in cases {
        refused(filter, filtered(&api, path, filter).await, culprits);
    }

    // Limits: SQLite's expression depth (~1000 OR-ed terms) and bind count (32766) are never
    // reached; each limit is named.
    let or_terms = |n: usize| vec!["f = 1"; n].join(" OR ");
    refused(
        "1100 terms",
        filtered(&api, "/registered_models", &or_terms(1100)).await,
        &["too many comparisons", "the limit is 64"],
    );
    refused("65 terms", filtered(&api, "/registered_models", &or_terms(MAX_COMPARISONS + 1)).await, &["the limit is 64"]);
    let in_list = |n: usize| format!("f IN ({})", vec!["1"; n].join(","));
    let limit = format!("the limit is {MAX_LIST_ITEMS}");
    refused("1001 values", filtered(&api, "/registered_models", &in_list(MAX_LIST_ITEMS + 1)).await, &["IN list", &limit]);
    let limit = format!("the limit is {MAX_QUERY_BYTES}");
    refused("16500 values", raw_filter(&api, "/registered_models", &in_list(16_500)).await, &["bytes long", &limit]);
    let long = format!("name = '{}'", "x".repeat(MAX_QUERY_BYTES));
    refused("long query", filtered(&api, "/registered_models", &long).await, &["bytes long", &limit]);
    let nested = |n: usize| format!("{}f = 1{}", "(".repeat(n), ")".repeat(n));
    refused("65 deep", filtered(&api, "/registered_models", &nested(65)).await, &["nested too deeply", "64"]);
    refused("20000 deep", raw_filter(&api, "/registered_models", &nested(20_000)).await, &["bytes long"]);

    let history = format!("/experiment_runs/{r}/metric_history");
    let steps = vec!["1"; MAX_LIST_ITEMS + 1].join(",");
    refused("stepIds", api.request(Method::GET, &history, &[("stepIds", &steps)], None).await, &["stepIds", "1000"]);
    refused("stepIds", api.request(Method::GET, &history, &[("stepIds", "1,x")], None).await, &["stepIds"]);
    let huge = "9".repeat(30);
    refused("pageSize", api.request(Method::GET, "/registered_models", &[("pageSize", &huge)], None).await, &["pageSize"]);
    for token in ["%%%", "OTk5OTk5OTk5OTk5OTk5OTk5Ojk5", "LTE6LTE=x"] {
        let answer = api.request(Method::GET, "/registered_models", &[("nextPageToken", token)], None).await;
        refused(token, answer, &["nextPageToken"]);
    }

    // The same answers on every backend for what is allowed.
    let names = |page: &Value| page["items"].as_array().unwrap().iter().map(|i| i["name"].clone()).collect::<Vec<_>>();
    for (filter, expected) in [
        ("id = '1' AND createTimeSinceEpoch > '0'", json!(["m"])),
        ("f IN (1, 2.5) AND g.double_value IN ()", json!([])),
        ("f IN (1, 2.5)", json!(["m"])),
        ("f IN (2.5)", json!([])),
        ("f = 1 AND g IN (2, 3)", json!(["m"])),
        // Backslash escapes on every backend, ILIKE included.
        (r"name ILIKE 'X\_Y'", json!(["x_y"])),
        (r"name LIKE 'x\\y'", json!([])),
    ] {
        let (status, page) = filtered(&api, "/registered_models", filter).await;
        assert_eq!((status, json!(names(&page))), (200, expected), "{filter}: {page}");
    }
    let (status, page) = filtered(&api, "/registered_models", "f.int_value = 1 AND f.double_value IN (1)").await;
    assert_eq!((status, page["size"].as_u64()), (200, Some(0)), "{page}");
}

async fn bodies_fit_every_backend(backend: Backend) {
    let api = Api::start(backend).await;
    let model = ok(&api, Method::POST, "/registered_models", json!({"name": "m"})).await;
    let version = ok(&api, Method::POST, "/model_versions", json!({"name": "v", "registeredModelId": id(&model)})).await;
    let v = id(&version);
    let artifacts = format!("/model_versions/{v}/artifacts");
    let art = ok(&api, Method::POST, &artifacts, json!({"artifactType": "model-artifact", "name": "a", "uri": "s3://b/k"})).await;
    let a = id(&art);

    let limit = format!("at most {MAX_URI_BYTES} are allowed");
    for (what, uri) in [
        ("limit + 1", incompressible(MAX_URI_BYTES + 1)),
        ("8 kB", incompressible(8 * 1024)),
        ("93 kB", incompressible(93 * 1024)),
        ("multi-byte", "é".repeat(MAX_URI_BYTES / 2 + 1)),
    ] {
        let bytes = format!("uri is {} bytes long", uri.len());
        let body = json!({"artifactType": "model-artifact", "name": format!("long-{what}"), "uri": uri});
        refused(what, api.request(Method::POST, &artifacts, &[], Some(body.clone())).await, &[&bytes, &limit]);
        refused(what, api.request(Method::POST, "/model_artifacts", &[], Some(body)).await, &[&bytes]);
        let patch = json!({"artifactType": "model-artifact", "uri": uri});
        refused(what, api.request(Method::PATCH, &format!("/artifacts/{a}"), &[], Some(patch)).await, &[&bytes]);
    }

    let string = |v: &str| json!({"metadataType": "MetadataStringValue", "string_value": v});
    // 34 objects deep: once stored, prost could not decode it again (its recursion limit).
    let deep = base64::engine::general_purpose::STANDARD.encode(format!("{}1{}", r#"{"a":"#.repeat(34), "}".repeat(34)));
    let body_cases: Vec<(&str, &str, Value, &[&str])> = vec![
        ("name", "/registered_models", json!({"name": "n".repeat(256)}), &["name is 256 characters long"]),
        ("externalId", "/registered_models", json!({"name": "x", "externalId": "e".repeat(256)}), &["externalId"]),
        (
            "property name",
            "/registered_models",
            json!({"name": "x", "customProperties": {"k".repeat(256): string("v")}}),
            &["custom property name is 256 characters long"],
        ),
        (
            "int32",
            "/registered_models",
            json!({"name": "x", "customProperties": {"big": {"metadataType": "MetadataIntValue", "int_value": "2147483648"}}}),
            &["\"big\"", "not a 32-bit integer"],
        ),
        (
            "double as text",
            "/registered_models",
            json!({"name": "x", "customProperties": {"d": {"metadataType": "MetadataDoubleValue", "double_value": "NaN"}}}),
            &["\"d\"", "double_value must be a number"],
        ),
        (
            "struct too deep",
            "/registered_models",
            json!({"name": "x", "customProperties": {"deep": {"metadataType": "MetadataStructValue", "struct_value": deep}}}),
            &["\"deep\"", "nested too deeply"],
        ),
        ("child name", "/model_versions", json!({"name": "v".repeat(254), "registeredModelId": id(&model)}), &["name"]),
        ("step", &artifacts, json!({"artifactType": "metric", "name": "s", "value": 1, "step": 4_294_967_296_i64}), &["step"]),
    ];
    for (what, path, body, culprits) in body_cases {
        refused(what, api.request(Method::POST, path, &[], Some(body)).await, culprits);
    }

    // A metric logged under a run leaves a history row "<run id>:<name>__<update time>" that
    // must fit 255 characters: a name that does not is refused before anything is written.
    let experiment = ok(&api, Method::POST, "/experiments", json!({"name": "e"})).await;
    let run = ok(&api, Method::POST, "/experiment_runs", json!({"experimentId": id(&experiment)})).await;
    let r = id(&run);
    let logged = format!("/experiment_runs/{r}/artifacts");
    let room = 255 - format!("{r}:").len() - "__".len() - 13;
    let metric = json!({"artifactType": "metric", "name": "m".repeat(250), "value": 1.0});
    let limit = format!("at most {room} are allowed");
    refused("250-character metric", api.request(Method::POST, &logged, &[], Some(metric)).await, &["name is 250", &limit]);
    let metric = json!({"artifactType": "metric", "name": "m".repeat(room + 1), "value": 1.0});
    refused("metric one too long", api.request(Method::POST, &logged, &[], Some(metric)).await, &[&limit]);
    let (status, listed) = api.request(Method::GET, &logged, &[], None).await;
    assert_eq!((status, listed["size"].as_u64()), (200, Some(0)), "nothing half-written: {listed}");
    let (_, history) = api.request(Method::GET, &format!("/experiment_runs/{r}/metric_history"), &[], None).await;
    assert_eq!(history["size"], 0, "{history}");
    let (_, all) = api.request(Method::GET, "/artifacts", &[], None).await;
    assert_eq!(all["size"], 1, "only the first model artifact: {all}");
}

async fn the_largest_allowed_inputs_work(backend: Backend) {
    let api = Api::start(backend).await;
    let model = ok(&api, Method::POST, "/registered_models", json!({"name": "m"})).await;
    let version = ok(&api, Method::POST, "/model_versions", json!({"name": "v", "registeredModelId": id(&model)})).await;
    let artifacts = format!("/model_versions/{}/artifacts", id(&version));

    // A uri of exactly the limit, in bytes, stored and read back.
    for (name, uri) in [("ascii", incompressible(MAX_URI_BYTES)), ("utf8", "é".repeat(MAX_URI_BYTES / 2))] {
        let created =
            ok(&api, Method::POST, &artifacts, json!({"artifactType": "model-artifact", "name": name, "uri": uri})).await;
        let (_, read) = api.request(Method::GET, &format!("/model_artifacts/{}", id(&created)), &[], None).await;
        assert_eq!(read["uri"].as_str(), Some(uri.as_str()));
    }

    // 10 000 custom properties in one body: stored in chunks below every bind limit.
    let many: Map<String, Value> =
        (0..10_000).map(|i| (format!("p{i}"), json!({"metadataType": "MetadataIntValue", "int_value": i.to_string()}))).collect();
    let created = ok(&api, Method::POST, "/registered_models", json!({"name": "many", "customProperties": many})).await;
    let many_id = id(&created);
    let (_, read) = api.request(Method::GET, &format!("/registered_models/{many_id}"), &[], None).await;
    assert_eq!(read["customProperties"].as_object().map(Map::len), Some(10_000));
    assert_eq!(read["customProperties"]["p9999"]["int_value"], "9999");
    let patched = ok(&api, Method::PATCH, &format!("/registered_models/{many_id}"), json!({"customProperties": many})).await;
    assert_eq!(patched["customProperties"].as_object().map(Map::len), Some(10_000));

    // A filter at every limit at once still runs, and matches as expected.
    let page = |filter: String| {
        let api = &api;
        async move {
            let (status, page) = filtered(api, "/registered_models", &filter).await;
            assert_eq!(status, 200, "{page}");
            page["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    let terms: Vec<String> = (0..MAX_COMPARISONS).map(|i| format!("p{i} = {i}")).collect();
    assert_eq!(page(terms.join(" OR ")).await, ["many"]);
    assert_eq!(page(terms.join(" AND ")).await, ["many"]);
    let items: Vec<String> = (0..MAX_LIST_ITEMS).map(|i| (i * 7).to_string()).collect();
    assert_eq!(page(format!("p7 IN ({})", items.join(","))).await, ["many"]);
    // 64 parentheses deep, 64 comparisons.
    let nested = (0..63).fold("(p1 = 1)".to_owned(), |inner, depth| {
        let op = if depth % 2 == 0 { "OR" } else { "AND" };
        format!("(p{depth} = {depth} {op} {inner})")
    });
    assert_eq!(page(nested).await, ["many"]);
    let padding = MAX_QUERY_BYTES - "name = ''".len();
    assert_eq!(page(format!("name = '{}'", "x".repeat(padding))).await, Vec::<String>::new());

    // The longest metric name a run can log, and the most step ids.
    let experiment = ok(&api, Method::POST, "/experiments", json!({"name": "e"})).await;
    let run = ok(&api, Method::POST, "/experiment_runs", json!({"experimentId": id(&experiment)})).await;
    let r = id(&run);
    let room = 255 - format!("{r}:").len() - "__".len() - 13;
    let name = "m".repeat(room);
    ok(
        &api,
        Method::POST,
        &format!("/experiment_runs/{r}/artifacts"),
        json!({"artifactType": "metric", "name": name, "value": 1.0, "step": 3}),
    )
    .await;
    let steps: Vec<String> = (0..MAX_LIST_ITEMS).map(|i| i.to_string()).collect();
    let history = format!("/experiment_runs/{r}/metric_history");
    let (status, rows) = api.request(Method::GET, &history, &[("stepIds", &steps.join(","))], None).await;
    assert_eq!((status, rows["size"].as_u64()), (200, Some(1)), "{rows}");
    assert_eq!(rows["items"][0]["name"].as_str(), Some(name.as_str()));
}
