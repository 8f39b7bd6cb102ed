//! `--auth-mode kubernetes` against a stand-in of the API server's TokenReview and
//! SubjectAccessReview endpoints that answers their documented JSON (authentication.k8s.io/v1,
//! authorization.k8s.io/v1): no API server runs here.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use reqwest::Method;
use serde_json::{json, Value};
use support::server::{Server, API};

/// The server's own credentials, which the stand-in requires as the API server would.
const SERVICE_ACCOUNT_TOKEN: &str = "registry-sa-token";
const NAMESPACE: &str = "team-a";
const SERVICE: &str = "my-registry";
/// Ports this suite may use for its stand-in (the session's range).
const STAND_IN_PORTS: std::ops::Range<u16> = 15250..15290;

#[derive(Default)]
struct Cluster {
    /// (user, verb) pairs RBAC allows on the registry's Service.
    allowed: Mutex<HashSet<(String, String)>>,
    /// Answer every review with 500.
    failing: AtomicBool,
    token_reviews: AtomicUsize,
    access_reviews: AtomicUsize,
    last_access_review: Mutex<Value>,
}

fn user_of(token: &str) -> Option<&'static str> {
    match token {
        "alice-token" => Some("alice"),
        "bob-token" => Some("bob"),
        _ => None,
    }
}

async fn token_review(
    State(cluster): State<Arc<Cluster>>,
    headers: HeaderMap,
    Json(review): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {SERVICE_ACCOUNT_TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"kind": "Status", "code": 401})));
    }
    if cluster.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"kind": "Status", "code": 500})));
    }
    cluster.token_reviews.fetch_add(1, Ordering::SeqCst);
    let status = match user_of(review["spec"]["token"].as_str().unwrap_or_default()) {
        Some(user) => {
            json!({"authenticated": true, "user": {"username": user, "uid": format!("uid-{user}"), "groups": ["system:authenticated"]}})
        }
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
    };
    (StatusCode::CREATED, Json(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status})))
}

async fn access_review(State(cluster): State<Arc<Cluster>>, Json(review): Json<Value>) -> (StatusCode, Json<Value>) {
    if cluster.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"kind": "Status", "code": 500})));
    }
    cluster.access_reviews.fetch_add(1, Ordering::SeqCst);
    let spec = &review["spec"];
    let attributes = &spec["resourceAttributes"];
    let on_registry =
        attributes["namespace"] == NAMESPACE && attributes["resource"] == "services" && attributes["name"] == SERVICE;
    let key = (spec["user"].as_str().unwrap_or_default().to_owned(), attributes["verb"].as_str().unwrap_or_default().to_owned());
    let allowed = on_registry && cluster.allowed.lock().unwrap().contains(&key);
    *cluster.last_access_review.lock().unwrap() = spec.clone();
    let status = json!({"allowed": allowed, "reason": if allowed { "RBAC: allowed" } else { "" }});
    (StatusCode::CREATED, Json(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "status": status})))
}

async fn stand_in(cluster: Arc<Cluster>) -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/apis/authentication.k8s.io/v1/tokenreviews", post(token_review))
        .route("/apis/authorization.k8s.io/v1/subjectaccessreviews", post(access_review))
        .with_state(cluster);
    for port in STAND_IN_PORTS {
        if let Ok(listener) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            return (format!("http://127.0.0.1:{port}"), task);
        }
    }
    panic!("no free port in {STAND_IN_PORTS:?}")
}

async fn call(server: &Server, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    support::send(server.http.request(method, server.url(&format!("{API}{path}"))).bearer_auth(token), body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn reviews_decide_are_cached_for_a_while_and_an_outage_lets_nothing_through() {
    let cluster = Arc::new(Cluster::default());
    cluster.allowed.lock().unwrap().extend(
        [("alice", "get"), ("bob", "get"), ("bob", "create"), ("bob", "update")].map(|(u, v)| (u.to_owned(), v.to_owned())),
    );
    let (api_server, stand_in_task) = stand_in(cluster.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("token");
    std::fs::write(&credentials, format!("{SERVICE_ACCOUNT_TOKEN}\n")).unwrap();
    let ttl = Duration::from_secs(2);
    let server = Server::start_logging(&[
        "--auth-mode",
        "kubernetes",
        "--auth-kubernetes-api-server",
        &api_server,
        "--auth-kubernetes-token-file",
        credentials.to_str().unwrap(),
        "--auth-kubernetes-namespace",
        NAMESPACE,
        "--auth-kubernetes-resource-name",
        SERVICE,
        "--auth-kubernetes-cache-ttl",
        "2s",
    ])
    .await;
    server.wait_ready(Duration::from_secs(30)).await;

    // Allowed and denied, each verb from the operation's role and method.
    assert_eq!(call(&server, Method::GET, "/registered_models", "alice-token", None).await.0, 200);
    let spec = cluster.last_access_review.lock().unwrap().clone();
    assert_eq!(spec["user"], "alice");
    assert_eq!(spec["uid"], "uid-alice");
    assert_eq!(spec["groups"], json!(["system:authenticated"]));
    assert_eq!(
        spec["resourceAttributes"],
        json!({"namespace": NAMESPACE, "verb": "get", "resource": "services", "name": SERVICE})
    );
    let (status, body) = call(&server, Method::POST, "/registered_models", "alice-token", Some(json!({"name": "a"}))).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("Forbidden")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("alice may not create"), "{body}");
    let (status, model) = call(&server, Method::POST, "/registered_models", "bob-token", Some(json!({"name": "b"}))).await;
    assert_eq!(status, 201, "{model}");
    let id = model["id"].as_str().unwrap().to_owned();
    let path = format!("/registered_models/{id}");
    assert_eq!(call(&server, Method::PATCH, &path, "bob-token", Some(json!({"description": "d"}))).await.0, 200);
    assert_eq!(cluster.last_access_review.lock().unwrap()["resourceAttributes"]["verb"], "update");
    let (status, body) = call(&server, Method::GET, "/registered_models", "stolen-token", None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("Unauthorized")), "{body}");

    // The UI's login page asks the cluster the same way: who, and may they `get`.
    let (status, session) = support::auth::sign_in(&server, "alice-token").await;
    assert_eq!(status, 303);
    let (status, page) = support::auth::signed_in_page(&server, &session.unwrap()).await;
    assert!(status == 200 && page.contains("Signed in as <strong>alice</strong>"), "{status} {page}");
    assert_eq!(support::auth::sign_in(&server, "stolen-token").await, (401, None));

    // Cached: the same token and verb again asks nothing...
    let reviews = (cluster.token_reviews.load(Ordering::SeqCst), cluster.access_reviews.load(Ordering::SeqCst));
    for _ in 0..3 {
        assert_eq!(call(&server, Method::GET, "/registered_models", "alice-token", None).await.0, 200);
        assert_eq!(call(&server, Method::GET, "/registered_models", "stolen-token", None).await.0, 401);
    }
    assert_eq!((cluster.token_reviews.load(Ordering::SeqCst), cluster.access_reviews.load(Ordering::SeqCst)), reviews);
    // ...for no longer than the TTL: a revoked permission ends within it.
    assert_eq!(call(&server, Method::POST, "/registered_models", "bob-token", Some(json!({"name": "c"}))).await.0, 201);
    cluster.allowed.lock().unwrap().remove(&("bob".to_owned(), "create".to_owned()));
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(call(&server, Method::POST, "/registered_models", "bob-token", Some(json!({"name": "d"}))).await.0, 403);

    // The reviews failing: 503 with Retry-After, nothing let through, nothing cached.
    cluster.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let response =
        server.http.get(server.url(&format!("{API}/registered_models"))).bearer_auth("alice-token").send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let (status, body) =
        call(&server, Method::PATCH, &path, "bob-token", Some(json!({"description": "during the outage"}))).await;
    assert_eq!(status, 503, "{body}");
    cluster.failing.store(false, Ordering::SeqCst);
    assert_eq!(call(&server, Method::GET, "/registered_models", "alice-token", None).await.0, 200, "asked again once back");
    // The API server unreachable altogether.
    stand_in_task.abort();
    let _ = stand_in_task.await;
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    assert_eq!(call(&server, Method::GET, &path, "bob-token", None).await.0, 503);
    let (status, body) = call(&server, Method::PATCH, &path, "bob-token", Some(json!({"description": "unreachable"}))).await;
    assert_eq!(status, 503, "{body}");

    let metrics = server.http.get(server.url("/metrics")).bearer_auth("carol-token").send().await.unwrap();
    assert_eq!(metrics.status(), 503, "/metrics on the API port needs a reader, whom nobody can confirm now");
    let log = server.stop();
    assert!(!log.contains("bob-token") && !log.contains(SERVICE_ACCOUNT_TOKEN), "a token was logged");
    assert!(log.contains("bob"), "the access line names the subject");
}
