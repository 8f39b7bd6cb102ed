//! The app in-process on a real socket and a fresh database of one backend.

use std::sync::Arc;
use std::time::Duration;

use model_registry::{App, ServerConfig};
use reqwest::Method;
use serde_json::Value;
use testkit::{Backend, TestDb};

#[derive(Clone)]
pub struct Api {
    /// The API base URL (`http://127.0.0.1:<port>/api/model_registry/v1alpha3`).
    pub base: String,
    pub http: reqwest::Client,
    pub db: Arc<TestDb>,
}

impl Api {
    pub async fn start(backend: Backend) -> Api {
        Api::start_on(TestDb::new(backend).await).await
    }

    pub async fn start_on(db: TestDb) -> Api {
        let pooler = if db.behind_pooler() { embedmd::dsn::Pooler::Transaction } else { embedmd::dsn::Pooler::None };
        let datastore = embedmd::dsn::resolve(None, Some(&db.app_url()), &embedmd::TlsConfig::default())
            .unwrap()
            .with_pooler(pooler)
            .unwrap();
        let app = App::build(ServerConfig::new("127.0.0.1", 0, datastore)).await.unwrap();
        let root = format!("http://{}", app.local_addr());
        tokio::spawn(app.run_until(std::future::pending()));
        let http = reqwest::Client::new();
        for _ in 0..500 {
            if http.get(format!("{root}/readyz/health")).send().await.is_ok_and(|r| r.status() == 200) {
                return Api { base: format!("{root}/api/model_registry/v1alpha3"), http, db: Arc::new(db) };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("app not ready");
    }

    /// The same server and database through another API version (`v1`, `v1alpha3`).
    pub fn on(&self, version: &str) -> Api {
        let root = self.base.rsplit_once('/').expect("a versioned base").0;
        Api { base: format!("{root}/{version}"), ..self.clone() }
    }

    /// Any request; the answer's status and JSON (a body that is not JSON comes back as a string).
    pub async fn request(&self, method: Method, path: &str, query: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query).unwrap();
        super::send(self.http.request(method, url), body).await
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.request(method, path, &[], body).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// A POST that must answer 201; returns the body.
    pub async fn created(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.post(path, body).await;
        assert_eq!(status, 201, "{path}: {value}");
        value
    }
}
