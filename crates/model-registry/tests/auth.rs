//! Authentication and authorization with static tokens (`--auth-mode token`), the walk over
//! every declared route in every mode, and HTTPS. The real binary on SQLite: what is checked
//! is the edge, the same on every backend.

mod support;

use std::time::{Duration, Instant};

use model_registry::auth::{hash_token, Access};
use model_registry::http::resources::operations;
use model_registry::registry::ApiVersion;
use reqwest::Method;
use serde_json::{json, Value};
use support::auth::{declared_routes, python, walk_anonymously, TestCa, REGISTER_WITH_CLIENT};
use support::server::{Server, API};

const ALICE: &str = "alice-writes-0123456789";
const BOB: &str = "bob-reads-0123456789";
const CAROL: &str = "carol-administers-0123456789";

fn token_file(dir: &std::path::Path, lines: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let path = dir.join("tokens");
    let text: String = lines.iter().map(|(name, role, token)| format!("{name} {role} {}\n", hash_token(token))).collect();
    std::fs::write(&path, format!("# name role sha256\n{text}")).unwrap();
    path
}

async fn token_server(file: &std::path::Path) -> Server {
    let server = Server::start_logging(&["--auth-mode", "token", "--auth-token-file", file.to_str().unwrap()]).await;
    server.wait_ready(Duration::from_secs(30)).await;
    server
}

async fn call(server: &Server, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = server.http.request(method, server.url(&format!("{API}{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    support::send(request, body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_grant_their_roles_and_an_edit_of_the_file_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), &[("alice", "writer", ALICE), ("bob", "reader", BOB), ("carol", "admin", CAROL)]);
    let server = token_server(&file).await;
    let model = json!({"name": "guarded"});

    let response = server.http.get(server.url(&format!("{API}/registered_models"))).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"model-registry\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "Unauthorized", "{body}");
    let (status, body) = call(&server, Method::GET, "/registered_models", Some("not-a-token"), None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("Unauthorized")), "{body}");

    assert_eq!(call(&server, Method::GET, "/registered_models", Some(BOB), None).await.0, 200);
    let (status, body) = call(&server, Method::POST, "/registered_models", Some(BOB), Some(model.clone())).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("Forbidden")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("needs writer"), "{body}");
    let (status, created) = call(&server, Method::POST, "/registered_models", Some(ALICE), Some(model)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, _) =
        call(&server, Method::PATCH, &format!("/registered_models/{id}"), Some(CAROL), Some(json!({"description": "d"}))).await;
    assert_eq!(status, 200, "an admin may do what a writer may");

    // The OpenAPI documents and readiness stay open; /metrics needs a reader on the API port.
    assert_eq!(server.http.get(server.url(&format!("{API}/openapi.yaml"))).send().await.unwrap().status(), 200);
    assert_eq!(server.http.get(server.url("/readyz/isDirty")).send().await.unwrap().status(), 200);
    assert_eq!(server.http.get(server.url("/metrics")).send().await.unwrap().status(), 401);
    let metrics = server.http.get(server.url("/metrics")).bearer_auth(BOB).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    for line in [
        "model_registry_auth_refusals_total{mode=\"token\",status=\"401\"} 3",
        "model_registry_auth_refusals_total{mode=\"token\",status=\"403\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    // Alice's line goes; her token is refused without a restart, Bob's still works.
    token_file(dir.path(), &[("bob", "reader", BOB), ("carol", "admin", CAROL)]);
    let revoked = Instant::now();
    while call(&server, Method::GET, "/registered_models", Some(ALICE), None).await.0 != 401 {
        assert!(revoked.elapsed() < Duration::from_secs(5), "a revoked token still works after 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(call(&server, Method::GET, "/registered_models", Some(BOB), None).await.0, 200);

    // A file made unusable refuses every token until it is fixed.
    std::fs::write(&file, "bob reader not-a-hash\n").unwrap();
    let broken = Instant::now();
    while call(&server, Method::GET, "/registered_models", Some(BOB), None).await.0 != 401 {
        assert!(broken.elapsed() < Duration::from_secs(5), "a malformed token file still lets tokens in");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let log = server.stop();
    for token in [ALICE, BOB, CAROL] {
        assert!(!log.contains(token), "a token was logged:\n{log}");
    }
    let access = |subject: &str| log.lines().any(|l| l.contains("access") && l.contains("status=201") && l.contains(subject));
    assert!(access("subject=\"alice\"") || access("subject=alice"), "the access line names the subject:\n{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_python_client_sends_its_user_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), &[("alice", "writer", ALICE), ("bob", "reader", BOB)]);
    let server = token_server(&file).await;
    let port = server.port.to_string();
    let run = |token: &str| {
        python(REGISTER_WITH_CLIENT, &[("MR_ADDRESS", "http://127.0.0.1"), ("MR_PORT", &port), ("MR_TOKEN", token)])
    };
    let writer = run(ALICE);
    assert!(writer.status.success(), "{}", String::from_utf8_lossy(&writer.stderr));
    let reader = run(BOB);
    let stderr = String::from_utf8_lossy(&reader.stderr);
    assert!(!reader.status.success() && stderr.contains("403"), "a reader cannot register: {stderr}");
    let nobody = run("");
    let stderr = String::from_utf8_lossy(&nobody.stderr);
    assert!(!nobody.status.success() && stderr.contains("401"), "no token, no access: {stderr}");
}

/// Every operation of both API versions and every page of the web UI declares its table's
/// role; nothing else is open but the OpenAPI documents.
#[test]
fn every_operation_declares_its_tables_role() {
    let declared = declared_routes();
    for api in ApiVersion::ALL {
        for op in operations(api) {
            let path = format!("{}{}", api.base_path(), op.path.replace("{id}", "1"));
            let method = op.method.http();
            let found = declared.iter().find(|(m, p, _)| *m == method && *p == path);
            assert_eq!(found.map(|f| f.2), Some(Access::Needs(op.role())), "{method} {path}");
        }
    }
    // The web UI's page table.
    for page in model_registry::http::ui::PAGES {
        let path = page.path.split('/').map(|s| if s.starts_with('{') { "1" } else { s }).collect::<Vec<_>>().join("/");
        let found = declared.iter().find(|(m, p, _)| *m == page.method.http() && *p == path);
        assert_eq!(found.map(|f| f.2), Some(Access::Needs(page.role)), "{:?} {}", page.method, page.path);
    }
    for (method, path, access) in &declared {
        if *access == Access::Open {
            assert!(path.ends_with("/openapi.json") || path.ends_with("/openapi.yaml"), "{method} {path} is open");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_declared_route_refuses_anonymous_callers_in_every_mode_but_none() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), &[("bob", "reader", BOB)]);
    let credentials = dir.path().join("sa-token");
    std::fs::write(&credentials, "registry-sa-token").unwrap();
    // Nothing listens on port 9 (discard): an anonymous request must be refused before any
    // provider or API server is asked.
    let modes: [(&str, Vec<&str>); 4] = [
        ("none", vec![]),
        ("token", vec!["--auth-token-file", file.to_str().unwrap()]),
        ("oidc", vec!["--auth-oidc-issuer", "http://127.0.0.1:9", "--auth-oidc-audience", "mr", "--auth-oidc-roles", "reader=*"]),
        (
            "kubernetes",
            vec![
                "--auth-kubernetes-api-server",
                "http://127.0.0.1:9",
                "--auth-kubernetes-namespace",
                "ns",
                "--auth-kubernetes-token-file",
                credentials.to_str().unwrap(),
            ],
        ),
    ];
    for (mode, flags) in modes {
        let mut args = vec!["--auth-mode", mode];
        args.extend(flags);
        let server = Server::start_logging(&args).await;
        server.wait_ready(Duration::from_secs(30)).await;
        let walked = walk_anonymously(&server, mode != "none").await;
        assert!(walked > 96, "{mode}: {walked} routes");
        // A path no route serves is not told apart from one that needs a token.
        let unknown = server.http.get(server.url(&format!("{API}/nothing_here"))).send().await.unwrap().status();
        assert_eq!(unknown, if mode == "none" { 404 } else { 401 }, "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_on_their_own_port_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), &[("bob", "reader", BOB)]);
    let metrics_port = support::server::free_port().to_string();
    let args = ["--auth-mode", "token", "--auth-token-file", file.to_str().unwrap(), "--metrics-port", &metrics_port];
    let server = Server::start_logging(&args).await;
    server.wait_ready(Duration::from_secs(30)).await;
    let scraped = server.http.get(format!("http://127.0.0.1:{metrics_port}/metrics")).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert_eq!(server.http.get(server.url("/metrics")).bearer_auth(BOB).send().await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_test_ca_and_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"), dir.path().join("ca.crt"));
    let ca = TestCa::new("registry test CA");
    ca.issue(&cert, &key);
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let file = token_file(dir.path(), &[("alice", "writer", ALICE)]);
    let server = Server::start_logging(&[
        "--auth-mode",
        "token",
        "--auth-token-file",
        file.to_str().unwrap(),
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
    ])
    .await;
    let trusting = |pem: &str| {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    };
    let https = format!("https://localhost:{}", server.port);
    let client = trusting(&ca.ca_pem);
    let started = Instant::now();
    while !client.get(format!("{https}/readyz/health")).send().await.is_ok_and(|r| r.status() == 200) {
        assert!(started.elapsed() < Duration::from_secs(30), "not ready over HTTPS:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("{https}{API}/registered_models");
    assert_eq!(client.get(&url).bearer_auth(ALICE).send().await.unwrap().status(), 200);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 401);
    assert!(server.http.get(server.url("/readyz/health")).send().await.is_err(), "plain HTTP is not served");

    let port = server.port.to_string();
    let secure = [
        ("MR_ADDRESS", "https://localhost"),
        ("MR_PORT", port.as_str()),
        ("MR_TOKEN", ALICE),
        ("MR_SECURE", "1"),
        ("MR_CA", ca_file.to_str().unwrap()),
    ];
    let out = python(REGISTER_WITH_CLIENT, &secure);
    assert!(out.status.success(), "the client with is_secure=True: {}", String::from_utf8_lossy(&out.stderr));

    // A certificate from another CA replaces the first: new connections get it without a restart.
    let renewed = TestCa::new("renewed CA");
    let renewed_client = trusting(&renewed.ca_pem);
    assert!(renewed_client.get(&url).bearer_auth(ALICE).send().await.is_err());
    renewed.issue(&cert, &key);
    let swapped = Instant::now();
    loop {
        // A fresh client each time: a pooled connection keeps its handshake.
        if trusting(&renewed.ca_pem).get(&url).bearer_auth(ALICE).send().await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(swapped.elapsed() < Duration::from_secs(10), "the renewed certificate is not served:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(trusting(&ca.ca_pem).get(&url).bearer_auth(ALICE).send().await.is_err(), "the old certificate is gone");
}

#[test]
fn hash_token_prints_the_token_files_line() {
    use std::io::Write;
    let mut child = std::process::Command::new(support::server::BIN)
        .args(["auth", "hash-token", "--name", "ci", "--role", "reader"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("ci reader {}\n", hash_token("s3cret")));
}
