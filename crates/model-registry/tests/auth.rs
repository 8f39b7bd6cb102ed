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

/// A browser on the UI: no redirects followed, its cookies kept by hand.
struct Browser<'a> {
    server: &'a Server,
    http: reqwest::Client,
    csrf: String,
    session: Option<String>,
}

impl<'a> Browser<'a> {
    /// A browser that has opened the login page (and so holds its form token).
    async fn open(server: &'a Server) -> Browser<'a> {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let response = http.get(server.url("/ui/login")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let csrf = cookie_of(response.headers(), "mr_csrf").unwrap().split(';').next().unwrap().to_owned();
        Browser { server, http, csrf, session: None }
    }

    fn cookies(&self) -> String {
        let mut cookies = format!("mr_csrf={}", self.csrf);
        if let Some(session) = &self.session {
            cookies.push_str(&format!("; mr_session={session}"));
        }
        cookies
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.server.url(path)).header("cookie", self.cookies()).send().await.unwrap()
    }

    /// A form of the UI's own pages (same origin, the form token), with `fields`.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form = fields.to_vec();
        form.push(("csrf", &self.csrf));
        let request = self.http.post(self.server.url(path)).header("cookie", self.cookies());
        request.header("origin", &self.server.base).form(&form).send().await.unwrap()
    }

    /// Signs in with `token`, returning to `next`; the answer, with the session kept if one was set.
    async fn sign_in(&mut self, token: &str, next: &str) -> reqwest::Response {
        let response = self.post("/ui/login", &[("token", token), ("next", next)]).await;
        if let Some(set) = cookie_of(response.headers(), "mr_session") {
            self.session = Some(set.split(';').next().unwrap().to_owned());
        }
        response
    }
}

/// The value and attributes of the `Set-Cookie` naming `name`, without `name=`.
fn cookie_of(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()["location"].to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn browsers_sign_in_on_the_login_page_and_the_cookie_serves_the_ui_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), &[("alice", "writer", ALICE), ("bob", "reader", BOB)]);
    let server = token_server(&file).await;
    let (_, model) = call(&server, Method::POST, "/registered_models", Some(ALICE), Some(json!({"name": "signed"}))).await;
    let model = model["id"].as_str().unwrap().to_owned();
    let page = format!("/ui/models/{model}?state=LIVE");

    // No token: a page sends the browser to the login page, which will return it there.
    let mut browser = Browser::open(&server).await;
    let response = browser.get(&page).await;
    assert_eq!(response.status(), 303);
    let login = location(&response).to_owned();
    assert_eq!(login, format!("/ui/login?next=%2Fui%2Fmodels%2F{model}%3Fstate%3DLIVE"));
    let form = browser.get(&login).await.text().await.unwrap();
    assert!(form.contains(r#"name="token" type="password""#), "{form}");
    assert!(form.contains(&format!(r#"name="next" value="/ui/models/{model}?state=LIVE""#)), "{form}");
    // A form post without a token is refused, not sent to the login page.
    assert_eq!(browser.post(&format!("/ui/models/{model}"), &[("action", "archive")]).await.status(), 401);

    // A wrong token: the form again with the reason, nothing set.
    let wrong = browser.sign_in("not-a-token", &page).await;
    assert_eq!(wrong.status(), 401);
    assert!(cookie_of(wrong.headers(), "mr_session").is_none());
    assert!(wrong.text().await.unwrap().contains("This token is not accepted"));
    // The login form is a form like the others: not from this site, refused.
    let forged = browser.http.post(server.url("/ui/login")).header("cookie", browser.cookies());
    let forged = forged.header("origin", "http://evil.example").form(&[("token", BOB), ("csrf", &browser.csrf)]);
    let forged = forged.send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert!(cookie_of(forged.headers(), "mr_session").is_none());

    // Bob's token: kept in the cookie, back to the page.
    let signed = browser.sign_in(BOB, &page).await;
    assert_eq!(signed.status(), 303);
    assert_eq!(location(&signed), page);
    let cookie = cookie_of(signed.headers(), "mr_session").unwrap();
    let attributes: Vec<&str> = cookie.split("; ").skip(1).collect();
    assert_eq!(attributes, ["Max-Age=28800", "Path=/", "HttpOnly", "SameSite=Strict"], "{cookie}");
    let shown = browser.get(&page).await;
    assert_eq!(shown.status(), 200);
    let shown = shown.text().await.unwrap();
    assert!(shown.contains("Signed in as <strong>bob</strong>") && shown.contains("Sign out"), "{shown}");

    // The cookie is no token for the APIs: a request another site makes the browser send gets nothing.
    let session = browser.session.clone().unwrap();
    for path in [format!("{API}/registered_models"), "/api/2.0/mlflow/registered-models/search".to_owned(), "/metrics".into()] {
        let response = server.http.get(server.url(&path)).header("cookie", format!("mr_session={session}")).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }

    // A reader's edit is refused; the roles are the API's.
    let edit = [("action", "edit"), ("description", "by bob")];
    assert_eq!(browser.post(&format!("/ui/models/{model}"), &edit).await.status(), 403);
    let mut alice = Browser::open(&server).await;
    assert_eq!(alice.sign_in(ALICE, "/ui/").await.status(), 303);
    let edit = [("action", "edit"), ("description", "by alice")];
    assert_eq!(alice.post(&format!("/ui/models/{model}"), &edit).await.status(), 303);
    assert_eq!(
        call(&server, Method::GET, &format!("/registered_models/{model}"), Some(BOB), None).await.1["description"],
        "by alice"
    );

    // Only this server's UI pages are somewhere to go after signing in.
    for next in
        ["//evil.example/ui/", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "javascript:alert(1)", "/api/x"]
    {
        let response = Browser::open(&server).await.sign_in(BOB, next).await;
        assert_eq!((response.status().as_u16(), location(&response)), (303, "/ui/"), "{next:?}");
        let form = browser.get(&format!("/ui/login?next={}", url_encode(next))).await.text().await.unwrap();
        assert!(form.contains(r#"name="next" value="/ui/""#), "{next:?}");
    }

    // A proxy that sends the token: the UI with no login, and nothing to sign out of.
    let proxied = server.http.get(server.url("/ui/")).bearer_auth(BOB).send().await.unwrap();
    assert_eq!(proxied.status(), 200);
    let proxied = proxied.text().await.unwrap();
    assert!(proxied.contains("Signed in as <strong>bob</strong>") && !proxied.contains("Sign out"), "{proxied}");

    // Signing out is a form like the others, and forgets the cookie.
    let forged = browser.http.post(server.url("/ui/logout")).header("cookie", browser.cookies()).form(&[("csrf", "0")]);
    assert_eq!(forged.send().await.unwrap().status(), 403);
    let out = browser.post("/ui/logout", &[]).await;
    assert_eq!((out.status().as_u16(), location(&out)), (303, "/ui/login"));
    assert!(cookie_of(out.headers(), "mr_session").unwrap().starts_with("; Max-Age=0; Path=/"));

    // A revoked token's cookie: refused and forgotten; a page sends the browser to sign in again.
    token_file(dir.path(), &[("alice", "writer", ALICE)]);
    let revoked = Instant::now();
    loop {
        let response = browser.get("/ui/").await;
        if response.status() == 303 {
            assert_eq!(location(&response), "/ui/login?next=%2Fui%2F");
            assert!(cookie_of(response.headers(), "mr_session").unwrap().starts_with("; Max-Age=0"));
            break;
        }
        assert!(revoked.elapsed() < Duration::from_secs(5), "a revoked token's cookie still works after 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = alice.http.post(server.url(&format!("/ui/models/{model}")));
    let response =
        response.header("cookie", format!("mr_csrf={}; mr_session={session}", alice.csrf)).header("origin", &server.base);
    let response = response.form(&[("action", "archive"), ("csrf", &alice.csrf)]).send().await.unwrap();
    assert_eq!(response.status(), 401, "a revoked token's cookie cannot post");

    let log = server.stop();
    for token in [ALICE, BOB] {
        assert!(!log.contains(token), "a token was logged:\n{log}");
    }
    assert!(log.contains("signed in to the web UI"), "{log}");
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
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
    // The login page, signing out and the style sheet the login page needs.
    let ui_open = ["GET /ui/login", "POST /ui/login", "POST /ui/logout", "GET /ui/static/ui.css"];
    for (method, path, access) in &declared {
        if *access == Access::Open {
            let document = path.ends_with("/openapi.json") || path.ends_with("/openapi.yaml");
            assert!(document || ui_open.contains(&format!("{method} {path}").as_str()), "{method} {path} is open");
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
    // Served over HTTPS, the login cookie is Secure.
    let csrf = "0123456789abcdef0123456789abcdef";
    let browser = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.ca_pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = browser.post(format!("{https}/ui/login")).header("origin", &https).header("cookie", format!("mr_csrf={csrf}"));
    let login = login.form(&[("token", ALICE), ("csrf", csrf), ("next", "/ui/")]).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let cookie = cookie_of(login.headers(), "mr_session").unwrap();
    assert!(cookie.ends_with("; Path=/; HttpOnly; SameSite=Strict; Secure"), "{cookie}");
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
