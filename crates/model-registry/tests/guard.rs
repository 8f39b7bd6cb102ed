//! The real `model-registry` binary guarding itself: racing writes to one row lose nothing,
//! writes without a JSON content type are refused, no internals in error bodies or readiness,
//! concurrency and memory stay bounded.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_model-registry");
const API: &str = "/api/model_registry/v1alpha3";

testkit::on_every_backend!(racing_writes_to_one_row_keep_every_change,);

/// Rounds of each race; each round is one pair of concurrent writes.
const ROUNDS: usize = 40;

struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
    log: tempfile::NamedTempFile,
}

impl Server {
    fn start(dsn: &str, extra: &[&str]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(BIN)
            .args(["proxy", "--hostname", "127.0.0.1", "--port", &port.to_string(), "--embedmd-database-dsn", dsn])
            .args(extra)
            .env("HOME", "/nonexistent")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("the binary starts");
        Server { child, base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new(), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    async fn ready(dsn: &str, extra: &[&str]) -> Server {
        let server = Server::start(dsn, extra);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if server.http.get(format!("{}/readyz/health", server.base)).send().await.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            assert!(Instant::now() < deadline, "not ready:\n{}", server.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{API}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A POST or PATCH that must succeed; returns the body.
    async fn write(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let (status, body) = self.call(method.clone(), path, Some(body)).await;
        assert!(status == 200 || status == 201, "{method} {path}: {status} {body}");
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let server = Arc::new(Server::ready(db.url(), &[]).await);
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
        let got = server.get(&model_path).await;
        assert_eq!((got["description"].as_str(), got["owner"].as_str()), (Some(d.as_str()), Some(o.as_str())), "round {round}");

        let uri = format!("s3://b/{round}");
        race(
            &server,
            (post.clone(), artifacts.clone(), json!({"artifactType": "model-artifact", "id": artifact, "description": d})),
            (post.clone(), artifacts.clone(), json!({"artifactType": "model-artifact", "id": artifact, "uri": uri})),
        )
        .await;
        let got = server.get(&format!("/artifacts/{artifact}")).await;
        assert_eq!((got["description"].as_str(), got["uri"].as_str()), (Some(d.as_str()), Some(uri.as_str())), "round {round}");

        let value = round as f64;
        race(
            &server,
            (patch.clone(), format!("/artifacts/{metric}"), json!({"artifactType": "metric", "description": d})),
            (post.clone(), logs.clone(), json!({"artifactType": "metric", "name": "acc", "value": value, "step": round})),
        )
        .await;
        let got = server.get(&format!("/artifacts/{metric}")).await;
        assert_eq!((got["description"].as_str(), got["value"].as_f64()), (Some(d.as_str()), Some(value)), "round {round}");
    }
}
