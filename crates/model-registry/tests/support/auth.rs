//! What the auth suites share: the walk over every declared route, the official Python client,
//! a test CA.

use std::path::Path;
use std::process::Command;

use model_registry::auth::Access;
use model_registry::http::guarded_routes;
use reqwest::Method;

use super::server::Server;

/// Every route the server declares (each API's operation table, the OpenAPI documents,
/// `/metrics`), with its access; `{id}`-like parameters filled with `1`.
pub fn declared_routes() -> Vec<(Method, String, Access)> {
    let mut routes: Vec<(Method, String, Access)> = guarded_routes(true, true)
        .access
        .iter()
        .map(|(method, path, access)| {
            let path = path.split('/').map(|seg| if seg.starts_with('{') { "1" } else { seg }).collect::<Vec<_>>().join("/");
            (method.clone(), path, access)
        })
        .collect();
    routes.sort_by(|a, b| (a.1.as_str(), a.0.as_str()).cmp(&(b.1.as_str(), b.0.as_str())));
    routes
}

/// Every declared route asked without a token: when `refused`, 401 with the challenge and its
/// API's error body (a UI page: sent to the login page) unless it is open; never 401 otherwise
/// (mode none); an open route never 401 or 403 (but the login forms' 403 without their form
/// token). Returns how many routes were walked.
pub async fn walk_anonymously(server: &Server, refused: bool) -> usize {
    let routes = declared_routes();
    for (method, path, access) in &routes {
        let mut request = server.http.request(method.clone(), server.url(path));
        if *method != Method::GET {
            request = request.json(&serde_json::json!({}));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let final_path = response.url().path().to_owned();
        let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let ui = path == "/" || path.starts_with("/ui/");
        match access {
            // A browser asking for a page is sent to the login page (followed here).
            Access::Needs(_) if refused && ui && *method == Method::GET => {
                assert_eq!((status, final_path.as_str()), (200, "/ui/login"), "{method} {path}");
            }
            Access::Needs(_) if refused => {
                assert_eq!(status, 401, "{method} {path}: {body}");
                assert_eq!(challenge.as_deref(), Some("Bearer realm=\"model-registry\""), "{method} {path}");
                // MLflow's routes and its artifact proxy's refuse in MLflow's body.
                if path.contains("/2.0/mlflow") {
                    assert_eq!(body["error_code"], "UNAUTHENTICATED", "{method} {path}: {body}");
                } else {
                    assert_eq!(body["code"], "Unauthorized", "{method} {path}: {body}");
                }
                assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} {path}: {body}");
            }
            // The login and logout forms refuse a post without the form token (403).
            Access::Open if ui && *method == Method::POST => assert_eq!(status, 403, "{method} {path}"),
            Access::Open => assert!(status != 401 && status != 403, "{method} {path}: {status} {body}"),
            // Mode none asks for no token (the UI's forms still refuse a post without their
            // cross-site token: 403).
            Access::Needs(_) => assert_ne!(status, 401, "{method} {path}: {body}"),
        }
    }
    routes.len()
}

/// Runs `script` with the official v1 client's venv (`.venv-v1`, scripts/test-env.sh); its
/// output. A missing venv fails the test.
pub fn python(script: &str, env: &[(&str, &str)]) -> std::process::Output {
    let venv = std::env::var("MR_TEST_VENV_V1")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| testkit::workspace_root().join(".venv-v1"));
    let python = venv.join("bin/python");
    assert!(python.exists(), "{} missing: run scripts/test-env.sh (or set MR_TEST_VENV_V1)", python.display());
    Command::new(python).arg("-c").arg(script).envs(env.iter().copied()).output().unwrap()
}

/// Registers a model through the official client (`ModelRegistry(user_token=...)`) and reads it
/// back; prints the model's id.
pub const REGISTER_WITH_CLIENT: &str = r#"
import os, uuid
from model_registry import ModelRegistry
secure = os.environ.get("MR_SECURE") == "1"
registry = ModelRegistry(
    os.environ["MR_ADDRESS"], int(os.environ["MR_PORT"]), author="auth-test", is_secure=secure,
    user_token=os.environ.get("MR_TOKEN") or None, custom_ca=os.environ.get("MR_CA") or None,
)
name = "auth-" + uuid.uuid4().hex[:8]
registry.register_model(name, "s3://bucket/model.onnx", version="v1", model_format_name="onnx", model_format_version="1")
print(registry.get_registered_model(name).id)
"#;

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it, as PEM.
pub struct TestCa {
    pub ca_pem: String,
    ca: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let ca = params.self_signed(&key).unwrap();
        TestCa { ca_pem: ca.pem(), ca, key }
    }

    /// Writes a server certificate and its key to `cert` and `key`.
    pub fn issue(&self, cert: &Path, key: &Path) {
        let server_key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let server = params.signed_by(&server_key, &self.ca, &self.key).unwrap();
        // Key first, then the certificate: the server reloads once both have changed.
        std::fs::write(key, server_key.serialize_pem()).unwrap();
        std::fs::write(cert, server.pem()).unwrap();
    }
}

/// Signs in on the UI's login page with `token` as a browser would (same origin, a form token);
/// the status and the login cookie's value, if one was set.
pub async fn sign_in(server: &Server, token: &str) -> (u16, Option<String>) {
    let csrf = "0123456789abcdef0123456789abcdef";
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let request =
        browser.post(server.url("/ui/login")).header("origin", &server.base).header("cookie", format!("mr_csrf={csrf}"));
    let response = request.form(&[("token", token), ("csrf", csrf), ("next", "/ui/")]).send().await.unwrap();
    let session = response.headers().get_all("set-cookie").iter().find_map(|v| {
        let value = v.to_str().ok()?.strip_prefix("mr_session=")?;
        Some(value.split(';').next()?.to_owned())
    });
    (response.status().as_u16(), session)
}

/// The UI's models page for a browser holding the login cookie `session`: its status and text.
pub async fn signed_in_page(server: &Server, session: &str) -> (u16, String) {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = browser.get(server.url("/ui/")).header("cookie", format!("mr_session={session}")).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}
