//! The real `model-registry` binary guarding itself: racing writes to one row lose nothing,
//! writes without a JSON content type are refused, no internals in error bodies or readiness,
//! concurrency and memory stay bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::{Backend, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;
use support::server::{Server, API};

testkit::on_every_backend!(
    racing_writes_to_one_row_keep_every_change,
    lists_longer_than_a_chunk_stream_every_row_once,
    first_logs_under_many_runs_at_once_all_land,
);

/// The SQLite file of a fresh test database (the HTTP edge is the same on every backend).
async fn sqlite() -> TestDb {
    TestDb::new(Backend::Sqlite).await
}

/// Rounds of each race; each round is one pair of concurrent writes.
const ROUNDS: usize = 40;

fn id(value: &Value) -> String {
    value["id"].as_str().expect("ids are strings").to_owned()
}

/// Runs two writes at once.
async fn race(server: &Arc<Server>, a: (reqwest::Method, String, Value), b: (reqwest::Method, String, Value)) {
    let first = {
        let server = server.clone();
        tokio::spawn(async move { server.write(a.0, &a.1, a.2).await })
    };
    server.write(b.0, &b.1, b.2).await;
    first.await.unwrap();
}

/// Each round two writers change different fields of one row at once (a PATCH, an upsert by
/// id, an upsert by name against a PATCH); both changes must be there after every round.
async fn racing_writes_to_one_row_keep_every_change(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Arc::new(Server::ready_with_dsn(db.url(), &[]).await);
    let (post, patch) = (reqwest::Method::POST, reqwest::Method::PATCH);
    let model = id(&server.write(post.clone(), "/registered_models", json!({"name": "m"})).await);
    let version = id(&server.write(post.clone(), "/model_versions", json!({"name": "v", "registeredModelId": model})).await);
    let artifacts = format!("/model_versions/{version}/artifacts");
    let artifact = id(&server.write(post.clone(), &artifacts, json!({"artifactType": "model-artifact", "name": "a"})).await);
    let experiment = id(&server.write(post.clone(), "/experiments", json!({"name": "e"})).await);
    let run = id(&server.write(post.clone(), "/experiment_runs", json!({"experimentId": experiment})).await);
    let logs = format!("/experiment_runs/{run}/artifacts");
    let metric = json!({"artifactType": "metric", "name": "acc", "value": 0.0, "step": 0});
    let metric = id(&server.write(post.clone(), &logs, metric).await);

    for round in 0..ROUNDS {
        let (d, o) = (format!("d{round}"), format!("o{round}"));
        let model_path = format!("/registered_models/{model}");
        race(
            &server,
            (patch.clone(), model_path.clone(), json!({"description": d})),
            (patch.clone(), model_path.clone(), json!({"owner": o})),
        )
        .await;
        let got = server.get_ok(&model_path).await;
        assert_eq!((got["description"].as_str(), got["owner"].as_str()), (Some(d.as_str()), Some(o.as_str())), "round {round}");

        let uri = format!("s3://b/{round}");
        race(
            &server,
            (post.clone(), artifacts.clone(), json!({"artifactType": "model-artifact", "id": artifact, "description": d})),
            (post.clone(), artifacts.clone(), json!({"artifactType": "model-artifact", "id": artifact, "uri": uri})),
        )
        .await;
        let got = server.get_ok(&format!("/artifacts/{artifact}")).await;
        assert_eq!((got["description"].as_str(), got["uri"].as_str()), (Some(d.as_str()), Some(uri.as_str())), "round {round}");

        let value = round as f64;
        race(
            &server,
            (patch.clone(), format!("/artifacts/{metric}"), json!({"artifactType": "metric", "description": d})),
            (post.clone(), logs.clone(), json!({"artifactType": "metric", "name": "acc", "value": value, "step": round})),
        )
        .await;
        let got = server.get_ok(&format!("/artifacts/{metric}")).await;
        assert_eq!((got["description"].as_str(), got["value"].as_f64()), (Some(d.as_str()), Some(value)), "round {round}");
    }
}

/// Sends `head` (and `body`) on a fresh connection and reads one response: status and body.
async fn raw(base: &str, head: &str, body: &[u8]) -> (u16, String) {
    let address = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()));
            if n == 0 || length.is_some_and(|len| rest.len() >= len) {
                return (head[9..12].parse().unwrap(), rest.to_owned());
            }
        }
        assert!(n > 0, "connection closed before a response: {text}");
    }
}

/// Writes are refused with upstream's 415 body unless they say JSON; what a cross-origin page
/// can send without a preflight (text/plain, forms) creates nothing; no CORS answers.
#[tokio::test(flavor = "multi_thread")]
async fn writes_need_a_json_content_type_and_there_is_no_cors() {
    let db = sqlite().await;
    let server = Server::ready_with_dsn(db.url(), &[]).await;
    let url = format!("{}{API}/registered_models", server.base);
    let body = r#"{"name": "m"}"#;
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        Some("text/json"),
        None,
    ] {
        let mut request = server.http.post(&url).header("origin", "https://evil.example").body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
        assert!(response.headers().get("access-control-allow-origin").is_none());
        let error: Value = response.json().await.unwrap();
        assert_eq!(error, json!({"code": "Unsupported Media Type", "message": "Content-Type must be application/json"}));
    }
    let model = server.get_ok("/registered_models").await;
    assert_eq!(model["size"], 0, "nothing created: {model}");
    let (status, _) = raw(
        &server.base,
        &format!("PATCH {API}/registered_models/1 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n"),
        b"{}",
    )
    .await;
    assert_eq!(status, 415, "PATCH too");

    for (i, content_type) in
        ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]
            .iter()
            .enumerate()
    {
        let response = server
            .http
            .post(&url)
            .header("content-type", *content_type)
            .body(format!(r#"{{"name": "m{i}"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{content_type}");
    }
    // A CORS preflight finds no CORS: the browser then sends nothing.
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_ne!(preflight.status(), 200);
    assert!(preflight.headers().keys().all(|k| !k.as_str().starts_with("access-control-")), "{:?}", preflight.headers());
}

/// While the datastore is not ready, a write is answered 503 from its headers alone (its body
/// is never awaited), and neither that answer nor readiness names users, hosts, databases or
/// files; the log has the details.
#[tokio::test(flavor = "multi_thread")]
async fn not_ready_answers_503_at_once_and_names_nothing_internal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leakydir/missing/x.db");
    let dsns = [
        ("mysql://leakyuser:leakypass@127.0.0.1:3306/leakydb".to_owned(), "database error: see the server log"),
        ("postgres://leakyuser:leakypass@127.0.0.1:5432/leakydb".to_owned(), "database error: see the server log"),
        (format!("sqlite://{}?mode=rw", file.display()), "database error: see the server log"),
        ("postgres://leakyuser:leakypass@127.0.0.1:1/leakydb".to_owned(), "database unreachable"),
    ];
    for (dsn, reason) in dsns {
        let server = Server::with_dsn(&dsn, &[]);
        let deadline = Instant::now() + Duration::from_secs(20);
        let health = loop {
            if let Ok(response) = server.http.get(format!("{}/readyz/health", server.base)).send().await {
                let text = response.text().await.unwrap();
                if text.contains(reason) {
                    break text;
                }
            }
            assert!(Instant::now() < deadline, "{dsn}: no generic reason:\n{}", server.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // A body announced and never sent: only an answer from the headers arrives.
        let head = format!(
            "POST {API}/registered_models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        );
        let (status, body) = tokio::time::timeout(Duration::from_secs(5), raw(&server.base, &head, b"")).await.expect("answered");
        assert_eq!(status, 503, "{body}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["code"], "Service Unavailable");
        let dirty =
            server.http.get(format!("{}/readyz/isDirty?format=json", server.base)).send().await.unwrap().text().await.unwrap();
        for text in [&health, &body, &dirty] {
            assert!(text.contains(reason), "{dsn}: {text}");
            for secret in ["leaky", "127.0.0.1", "3306", "5432", "root", dir.path().to_str().unwrap()] {
                assert!(!text.contains(secret), "{dsn}: {secret:?} in {text}");
            }
        }
        assert!(server.log().contains("datastore not ready"), "the details are logged:\n{}", server.log());
    }
}

/// Beyond `--max-concurrent-requests` a request is answered 503 at once, with the API's error
/// body; once the others are done, requests are served again.
#[tokio::test(flavor = "multi_thread")]
async fn requests_beyond_the_concurrency_limit_get_503_at_once() {
    let db = sqlite().await;
    let server = Server::ready_with_dsn(db.url(), &["--max-concurrent-requests", "2"]).await;
    let address = server.base.strip_prefix("http://").unwrap().to_owned();
    // Two writes whose bodies never finish hold both permits.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST {API}/registered_models HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        holders.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (status, body) = server.call(reqwest::Method::GET, "/registered_models", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "answered at once, not queued");
    assert_eq!(body, json!({"code": "Service Unavailable", "message": "too many concurrent requests: retry later"}));
    let (status, _) = server.call(reqwest::Method::GET, "/readyz/health", None).await;
    assert_eq!(status, 503, "an overloaded replica is not ready either");
    drop(holders);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.call(reqwest::Method::GET, "/registered_models", None).await.0 != 200 {
        assert!(Instant::now() < deadline, "permits never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kilobytes of a process's `VmRSS` or `VmHWM` (its peak) line.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Bodies of the maximum size (4 MiB): one long string; as many small objects as a body may
/// hold (each costs about half a KiB once parsed) padded with a string; a flood of objects
/// beyond the item limit.
fn maximum_bodies() -> Vec<Vec<u8>> {
    const SIZE: usize = 4 * 1024 * 1024 - 64;
    let pad = |mut body: String, close: &str| {
        body.push_str(r#""pad": ""#);
        body.push_str(&"x".repeat(SIZE - body.len() - 2 - close.len()));
        body.push('"');
        body.push_str(close);
        assert_eq!(body.len(), SIZE - 1);
        body.into_bytes()
    };
    let mut objects = String::from(r#"{"name": "m", "customProperties": {"#);
    for i in 0..21_000 {
        objects.push_str(&format!(r#""k{i}": {{"metadataType": "MetadataIntValue", "int_value": "{i}"}}, "#));
    }
    let flood = format!("{{\"name\": \"m\", \"bogus\": [{}{{}}]}}", r#"{"a":0},"#.repeat((SIZE - 40) / 8));
    vec![pad(String::from("{"), "}"), pad(objects, "}}"), flood.into_bytes()]
}

/// 64 clients send maximum-size bodies at once, one of each kind: the server's peak RSS stays
/// under the bound (the default concurrency limit admits all 64; their raw bodies alone are
/// 256 MiB, and each parse is bounded by the item limit).
#[tokio::test(flavor = "multi_thread")]
async fn memory_stays_bounded_while_64_clients_send_maximum_size_bodies() {
    const CLIENTS: usize = 64;
    const BOUND_MIB: u64 = 512;
    let db = sqlite().await;
    let server = Server::ready_with_dsn(db.url(), &[]).await;
    let pid = server.child.id();
    let idle = memory_kib(pid, "VmRSS:");
    let bodies = Arc::new(maximum_bodies());
    let url = format!("{}{API}/registered_models", server.base);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (http, url, bodies) = (server.http.clone(), url.clone(), bodies.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for round in 0..bodies.len() {
                    let body = bodies[(client + round) % bodies.len()].clone();
                    let response = http.post(&url).header("content-type", "application/json").body(body).send().await.unwrap();
                    statuses.push(response.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for client in clients {
        statuses.extend(client.await.unwrap());
    }
    let peak = memory_kib(pid, "VmHWM:");
    let after = memory_kib(pid, "VmRSS:");
    eprintln!("RSS idle {} MiB, peak {} MiB, after {} MiB", idle / 1024, peak / 1024, after / 1024);
    assert!(statuses.iter().all(|s| *s == 400), "each is refused by validation: {statuses:?}");
    assert!(peak / 1024 < BOUND_MIB, "peak RSS {} MiB", peak / 1024);
    assert_eq!(server.get_ok("/registered_models").await["size"], 0);
}

/// Lists longer than the registry's chunk (500 rows) are streamed: every row once, in order,
/// with or without `pageSize`, and page tokens where a page ends inside, at or past a chunk.
async fn lists_longer_than_a_chunk_stream_every_row_once(backend: Backend) {
    const ROWS: usize = 1_100;
    let db = TestDb::new(backend).await;
    let server = Arc::new(Server::ready_with_dsn(db.url(), &[]).await);
    let creators: Vec<_> = (0..8)
        .map(|creator| {
            let server = server.clone();
            tokio::spawn(async move {
                for i in (creator..ROWS).step_by(8) {
                    server.write(reqwest::Method::POST, "/registered_models", json!({"name": format!("m{i}")})).await;
                }
            })
        })
        .collect();
    for creator in creators {
        creator.await.unwrap();
    }
    let ids = |page: &Value| -> Vec<i64> {
        page["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().parse().unwrap()).collect()
    };

    let response = server.http.get(format!("{}{API}/registered_models", server.base)).send().await.unwrap();
    assert!(response.headers().get("content-length").is_none(), "streamed, not buffered");
    let all: Value = response.json().await.unwrap();
    assert_eq!(
        (all["size"].as_u64(), all["pageSize"].as_i64(), all["nextPageToken"].as_str()),
        (Some(ROWS as u64), Some(0), Some(""))
    );
    let every = ids(&all);
    assert!(every.windows(2).all(|w| w[0] < w[1]), "in id order, each once");

    for (size, order) in
        [(500, "ID&sortOrder=ASC"), (499, "CREATE_TIME&sortOrder=DESC"), (1_000, "LAST_UPDATE_TIME"), (1_100, "ID")]
    {
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = server.get_ok(&format!("/registered_models?pageSize={size}&orderBy={order}&nextPageToken={token}")).await;
            pages += 1;
            let got = ids(&page);
            assert_eq!(page["size"].as_u64(), Some(got.len() as u64));
            seen.extend(got);
            token = page["nextPageToken"].as_str().unwrap().to_owned();
            if token.is_empty() {
                break;
            }
            assert_eq!(page["size"].as_u64(), Some(size as u64), "only the last page is short");
        }
        assert_eq!(pages, ROWS.div_ceil(size), "pageSize {size}");
        if order.ends_with("DESC") {
            seen.reverse();
        }
        if order.starts_with("ID") {
            assert_eq!(seen, every, "pageSize {size}: every row once, in order");
        } else {
            seen.sort();
            assert_eq!(seen, every, "pageSize {size}: every row once");
        }
    }
}

/// First logs of new metrics under many runs at once: each run's lock covers its own logs only,
/// so none waits for or deadlocks with another (MySQL would lock the index gap a missing name
/// falls in, and two such gaps are where both inserts go).
async fn first_logs_under_many_runs_at_once_all_land(backend: Backend) {
    const RUNS: usize = 8;
    let db = TestDb::new(backend).await;
    let server = Arc::new(Server::ready_with_dsn(db.url(), &[]).await);
    let experiment = id(&server.write(reqwest::Method::POST, "/experiments", json!({"name": "e"})).await);
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        runs.push(id(&server.write(reqwest::Method::POST, "/experiment_runs", json!({"experimentId": experiment})).await));
    }
    for round in 0..20 {
        let loggers: Vec<_> = runs
            .iter()
            .map(|run| {
                let (server, path) = (server.clone(), format!("/experiment_runs/{run}/artifacts"));
                tokio::spawn(async move {
                    let metric = json!({"artifactType": "metric", "name": format!("loss{round}"), "value": 1.0, "step": 1});
                    server.call(reqwest::Method::POST, &path, Some(metric)).await
                })
            })
            .collect();
        for logger in loggers {
            let (status, body) = logger.await.unwrap();
            assert_eq!(status, 200, "round {round}: {body}");
        }
    }
}
