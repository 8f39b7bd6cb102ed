//! The binary's metrics and logs: exact counts by route template, `/metrics` while starting,
//! past the concurrency limit and on its own port; JSON logs whose access lines carry the
//! response's request id, and no secret anywhere.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::Connection;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const V1: &str = "/api/model_registry/v1";

mod support;
use support::server::{free_port, Server};

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    response.text().await.unwrap()
}

/// The samples of `name` as (labels, value); enough of a parser for our own label values.
fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Some((labels, value.parse().unwrap()))
        })
        .collect()
}

fn value(text: &str, name: &str) -> f64 {
    let found = samples(text, name);
    assert_eq!(found.len(), 1, "{name} in\n{text}");
    found[0].1
}

type Counts = BTreeMap<(String, String, u16), u64>;

/// Per (method, route, status), readiness polls left out (their number depends on timing).
fn by_request(samples: Vec<(BTreeMap<String, String>, f64)>) -> Counts {
    samples
        .into_iter()
        .filter(|(labels, _)| !labels["route"].starts_with("/readyz/"))
        .map(|(l, v)| ((l["method"].clone(), l["route"].clone(), l["status"].parse().unwrap()), v as u64))
        .collect()
}

#[tokio::test]
async fn metrics_count_each_request_by_method_route_template_and_status() {
    let server = Server::start_logging(&[]).await;
    server.wait_ready(Duration::from_secs(30)).await;
    let http = reqwest::Client::new();
    for name in ["a", "b"] {
        let r = http.post(server.url(&format!("{V1}/registered_models"))).json(&serde_json::json!({ "name": name }));
        assert_eq!(r.send().await.unwrap().status(), 201);
    }
    for (path, status) in [
        (format!("{V1}/registered_models/1"), 200),
        (format!("{V1}/registered_models/2"), 200),
        (format!("{V1}/registered_models/999"), 404),
        ("/api/model_registry/v1alpha3/registered_models".to_owned(), 200),
        ("/no/such/path/42".to_owned(), 404),
    ] {
        assert_eq!(http.get(server.url(&path)).send().await.unwrap().status(), status, "{path}");
    }
    // This scrape is counted in the next one, not in itself.
    scrape(&server.url("/metrics")).await;
    let text = scrape(&server.url("/metrics")).await;

    let request = |method: &str, route: &str, status: u16| (method.to_owned(), route.to_owned(), status);
    let expected: Counts = [
        (request("POST", &format!("{V1}/registered_models"), 201), 2),
        (request("GET", &format!("{V1}/registered_models/{{id}}"), 200), 2),
        (request("GET", &format!("{V1}/registered_models/{{id}}"), 404), 1),
        (request("GET", "/api/model_registry/v1alpha3/registered_models", 200), 1),
        (request("GET", "unmatched", 404), 1),
        (request("GET", "/metrics", 200), 1),
    ]
    .into();
    assert_eq!(by_request(samples(&text, "model_registry_http_requests_total")), expected, "{text}");
    assert_eq!(by_request(samples(&text, "model_registry_http_request_duration_seconds_count")), expected, "{text}");
    let infinite = samples(&text, "model_registry_http_request_duration_seconds_bucket")
        .into_iter()
        .filter_map(|(mut labels, v)| (labels.remove("le")? == "+Inf").then_some((labels, v)))
        .collect();
    assert_eq!(by_request(infinite), expected, "{text}");
    assert!(!text.contains("registered_models/1\"") && !text.contains("/42"), "raw paths in labels:\n{text}");

    assert_eq!(value(&text, "model_registry_http_requests_in_flight"), 1.0, "the scrape itself");
    assert_eq!(value(&text, "model_registry_schema_version"), 21.0);
    assert_eq!(value(&text, "model_registry_schema_dirty"), 0.0);
    assert!(value(&text, "model_registry_db_pool_connections") >= 1.0, "{text}");
    assert_eq!(value(&text, "model_registry_db_pool_waiting"), 0.0);
    let version = format!("model_registry_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    assert!(text.contains(&version), "{text}");
    for kind in ["select", "insert"] {
        let queries = samples(&text, "model_registry_db_queries_total");
        let (_, count) = queries.iter().find(|(l, _)| l["kind"] == kind).unwrap();
        assert!(*count >= 2.0, "{kind}: {count}\n{text}");
    }
}

#[tokio::test]
async fn metrics_answer_past_the_concurrency_limit_and_on_their_own_port() {
    let metrics_port = free_port().to_string();
    let server = Server::start_logging(&["--max-concurrent-requests", "1", "--metrics-port", &metrics_port]).await;
    server.wait_ready(Duration::from_secs(30)).await;
    // Not on the API port once it has its own.
    assert_eq!(reqwest::get(server.url("/metrics")).await.unwrap().status(), 404);
    // Holds the only permit: a body that never completes.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
    let head = format!(
        "POST {V1}/registered_models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(5);
    while value(&scrape(&metrics).await, "model_registry_http_requests_in_flight") != 2.0 {
        assert!(Instant::now() < deadline, "the held request and the scrape never in flight together");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reqwest::get(server.url(&format!("{V1}/registered_models"))).await.unwrap().status(), 503);
    let text = scrape(&metrics).await;
    assert_eq!(value(&text, "model_registry_http_requests_in_flight"), 2.0, "{text}");
    let shed = samples(&text, "model_registry_http_requests_total");
    assert!(shed.iter().any(|(l, _)| l["status"] == "503" && l["route"] == format!("{V1}/registered_models")), "{text}");
    drop(stream);
}

#[tokio::test]
async fn a_dirty_schema_shows_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.db");
    let dsn = file.to_str().unwrap();
    let server = Server::start_logging(&["--embedmd-database-dsn", dsn]).await;
    server.wait_ready(Duration::from_secs(30)).await;
    let text = scrape(&server.url("/metrics")).await;
    assert_eq!((value(&text, "model_registry_schema_version"), value(&text, "model_registry_schema_dirty")), (21.0, 0.0));
    server.stop();

    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite:{dsn}")).await.unwrap();
    sqlx::query("UPDATE schema_migrations SET dirty = TRUE").execute(&mut db).await.unwrap();
    db.close().await.unwrap();
    let server = Server::start_logging(&["--embedmd-database-dsn", dsn]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&server.url("/metrics")).await;
        if value(&text, "model_registry_schema_dirty") == 1.0 {
            assert_eq!(value(&text, "model_registry_schema_version"), 21.0);
            break;
        }
        assert!(Instant::now() < deadline, "never dirty:\n{text}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reqwest::get(server.url("/readyz/health")).await.unwrap().status(), 503);
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_no_secret() {
    // Unreachable: the server stays starting, and says so in its log, DSN described.
    let server = Server::start_logging(&[
        "--log-format",
        "json",
        "--embedmd-database-type",
        "postgres",
        "--embedmd-database-dsn",
        "postgres://registry:hunter2-pw@127.0.0.1:1/registry",
    ])
    .await;
    let http = reqwest::Client::new();
    let mut sent = Vec::new();
    for (method, path, id) in [
        ("GET", "/metrics", None),
        ("GET", "/readyz/health", Some("client-id-1")),
        ("GET", "/api/model_registry/v1/registered_models", Some("not a token")),
        ("POST", "/api/model_registry/v1/registered_models", None),
    ] {
        let mut request = http
            .request(method.parse().unwrap(), server.url(path))
            .header("Authorization", "Bearer secret-token")
            .header("Content-Type", "application/json")
            .body(r#"{"name": "body-secret"}"#);
        if let Some(id) = id {
            request = request.header("X-Request-Id", id);
        }
        let response = request.send().await.unwrap();
        let returned = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        match id {
            Some("client-id-1") => assert_eq!(returned, "client-id-1"),
            _ => assert!(uuid::Uuid::parse_str(&returned).is_ok(), "{returned}"),
        }
        if path == "/metrics" {
            let text = response.text().await.unwrap();
            assert_eq!(value(&text, "model_registry_schema_version"), -1.0, "while starting:\n{text}");
            assert_eq!(value(&text, "model_registry_db_pool_connections"), 0.0);
        } else {
            assert_eq!(response.status(), 503, "{path}");
        }
        sent.push((method, path, returned));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !server.log().contains("datastore not ready") {
        assert!(Instant::now() < deadline, "no connection error logged:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.stop();

    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let access: Vec<_> = lines.iter().filter(|l| l["target"] == "access").collect();
    assert_eq!(access.len(), sent.len(), "{log}");
    for (line, (method, path, id)) in access.iter().zip(&sent) {
        assert_eq!(line["span"]["request_id"], id.as_str(), "{line}");
        assert_eq!(line["method"], *method, "{line}");
        assert_eq!(line["route"], *path, "a template, and these paths are their own\n{line}");
        assert!(line["duration_ms"].is_f64() && line["status"].is_u64(), "{line}");
    }
    assert!(lines.iter().any(|l| l["message"] == "listening"), "{log}");
    assert!(lines.iter().any(|l| l["message"] == "datastore not ready"), "{log}");
    for secret in ["secret-token", "hunter2-pw", "body-secret", "Bearer"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}
