//! `--auth-mode oidc` against a real OpenID provider (npm oidc-provider, e2e/oidc/), with
//! client-credentials tokens, and tokens forged with its keys that the server must refuse.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};
use support::auth::{sign_in, signed_in_page};
use support::server::{Server, API};

/// Ports this suite may use for its provider (the session's range).
const PROVIDER_PORTS: std::ops::Range<u16> = 15210..15250;
const AUDIENCE: &str = "model-registry";
/// The server fetches keys again for an unknown kid at most this often (oidc::JWKS_MIN_REFRESH).
const MIN_REFRESH: Duration = Duration::from_secs(5);

struct Provider {
    child: Child,
    issuer: String,
    state: tempfile::TempDir,
    http: reqwest::Client,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Runs e2e/oidc/provider.mjs with the machine's Node.js; its npm dependencies must be
    /// installed (`npm ci` in e2e/oidc, as scripts/test does).
    async fn start() -> Provider {
        let dir = testkit::workspace_root().join("e2e/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "e2e/oidc/node_modules missing: run `npm ci` in e2e/oidc (scripts/test does)"
        );
        for port in PROVIDER_PORTS {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let state = tempfile::tempdir().unwrap();
            let log = state.path().join("provider.log");
            let child = Command::new("node")
                .arg(dir.join("provider.mjs"))
                .args([port.to_string(), state.path().to_str().unwrap().to_owned()])
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .expect("node (Node.js 20 or later) runs");
            let mut provider =
                Provider { child, issuer: format!("http://127.0.0.1:{port}"), state, http: reqwest::Client::new() };
            // The provider exits when another process took the port meanwhile: the next is tried.
            let started = Instant::now();
            loop {
                if std::fs::read_to_string(&log).unwrap_or_default().contains("listening") {
                    return provider;
                }
                if provider.child.try_wait().unwrap().is_some() {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(20), "the OpenID provider did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("no free port for the OpenID provider in {PROVIDER_PORTS:?}")
    }

    /// An access token for `client` by client credentials.
    async fn token(&self, client: &str) -> String {
        let response = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[("grant_type", "client_credentials"), ("scope", "api")])
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap_or_else(|| panic!("no token for {client}: {body}")).to_owned()
    }

    fn kid(&self) -> String {
        std::fs::read_to_string(self.state.path().join("kid")).unwrap()
    }

    fn pem(&self, kid: &str, which: &str) -> Vec<u8> {
        std::fs::read(self.state.path().join(format!("{kid}.{which}.pem"))).unwrap()
    }

    /// A token signed with the provider's current private key: what it would issue, but with
    /// `claims` of the test's choosing.
    fn forge(&self, claims: &Value) -> String {
        let kid = self.kid();
        let header = Header { kid: Some(kid.clone()), ..Header::new(Algorithm::RS256) };
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(&self.pem(&kid, "key")).unwrap()).unwrap()
    }

    async fn rotate(&self) -> String {
        self.http.post(format!("{}/rotate", self.issuer)).send().await.unwrap().text().await.unwrap()
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

async fn status(server: &Server, method: Method, token: &str) -> (u16, Value) {
    let request = server.http.request(method.clone(), server.url(&format!("{API}/registered_models"))).bearer_auth(token);
    let body = (method == Method::POST).then(|| json!({"name": format!("m-{}", uuid())}));
    support::send(request, body).await
}

fn uuid() -> String {
    format!("{:x}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos())
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_of_a_real_provider_and_forgeries_of_them() {
    let provider = Provider::start().await;
    let server = Server::start_logging(&[
        "--auth-mode",
        "oidc",
        "--auth-oidc-issuer",
        &provider.issuer,
        "--auth-oidc-audience",
        AUDIENCE,
        "--auth-oidc-roles",
        "admin=ml-admins,writer=ml-engineers,reader=ml-readers",
    ])
    .await;
    server.wait_ready(Duration::from_secs(30)).await;

    let writer = provider.token("writer").await;
    let reader = provider.token("reader").await;
    assert_eq!(status(&server, Method::GET, &writer).await.0, 200);
    assert_eq!(status(&server, Method::POST, &writer).await.0, 201);
    assert_eq!(status(&server, Method::GET, &reader).await.0, 200);
    let (code, body) = status(&server, Method::POST, &reader).await;
    assert_eq!((code, body["code"].as_str()), (403, Some("Forbidden")), "{body}");
    let (code, body) = status(&server, Method::GET, &provider.token("nobody").await).await;
    assert_eq!(code, 403, "a valid token without the role claim has no role: {body}");

    // The UI's login page takes a token of the provider, checked the same way.
    let (code, session) = sign_in(&server, &reader).await;
    assert_eq!(code, 303);
    let (code, page) = signed_in_page(&server, &session.unwrap()).await;
    assert!(code == 200 && page.contains("Signed in as <strong>reader</strong>"), "{code} {page}");
    assert_eq!(sign_in(&server, &provider.token("nobody").await).await, (403, None), "no role, no sign-in");

    let issuer = provider.issuer.as_str();
    let claims = |extra: Value| {
        let mut base = json!({"iss": issuer, "aud": AUDIENCE, "sub": "forger", "groups": ["ml-engineers"], "iat": now(), "exp": now() + 300});
        base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        base
    };
    // The forging itself is sound: with honest claims the server accepts it.
    assert_eq!(status(&server, Method::GET, &provider.forge(&claims(json!({})))).await.0, 200);

    let kid = provider.kid();
    let payload = b64(&claims(json!({})));
    let hs256 = jsonwebtoken::encode(
        &Header { kid: Some(kid.clone()), ..Header::new(Algorithm::HS256) },
        &claims(json!({})),
        &EncodingKey::from_secret(&provider.pem(&kid, "pub")),
    )
    .unwrap();
    let tampered = {
        let mut parts: Vec<String> = reader.split('.').map(str::to_owned).collect();
        let mut body: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        body["groups"] = json!(["ml-admins"]);
        parts[1] = b64(&body);
        parts.join(".")
    };
    let refused = [
        ("expired", provider.forge(&claims(json!({"exp": now() - 120})))),
        ("not yet valid", provider.forge(&claims(json!({"nbf": now() + 120})))),
        ("wrong audience", provider.forge(&claims(json!({"aud": "another-api"})))),
        ("wrong issuer", provider.forge(&claims(json!({"iss": "http://127.0.0.1:1"})))),
        ("no exp", provider.forge(&json!({"iss": issuer, "aud": AUDIENCE, "sub": "forger", "groups": ["ml-engineers"]}))),
        ("alg none", format!("{}.{payload}.", b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})))),
        ("HS256 keyed with the public key", hs256),
        ("tampered payload", tampered),
        ("not a JWT", "abc.def.ghi".to_owned()),
    ];
    for (what, token) in &refused {
        let (code, body) = status(&server, Method::GET, token).await;
        assert_eq!(code, 401, "{what}: {body}");
        assert_eq!(body["code"], "Unauthorized", "{what}: {body}");
    }

    // The provider rotates: its new tokens carry a kid the server has not seen, which it
    // fetches (once the refresh interval since its last fetch has passed).
    tokio::time::sleep(MIN_REFRESH).await;
    let new_kid = provider.rotate().await;
    assert_ne!(new_kid, kid);
    let rotated = provider.token("writer").await;
    assert_eq!(jsonwebtoken::decode_header(&rotated).unwrap().kid, Some(new_kid), "signed with the new key");
    assert_eq!(status(&server, Method::POST, &rotated).await.0, 201, "accepted after the keys are refreshed");
    assert_eq!(status(&server, Method::GET, &writer).await.0, 200, "the old key is still published");

    // The provider gone: a kid the server does not know cannot be checked, and is not let
    // through (503); known keys keep working.
    drop(provider);
    tokio::time::sleep(MIN_REFRESH).await;
    let unknown = format!("{}.{payload}.c2ln", b64(&json!({"alg": "RS256", "typ": "JWT", "kid": "unseen"})));
    let (code, body) = status(&server, Method::GET, &unknown).await;
    assert_eq!(code, 503, "{body}");
    let (code, body) = status(&server, Method::GET, &unknown).await;
    assert_eq!(code, 503, "still unavailable, not 'unknown key', until a fetch succeeds: {body}");
    assert_eq!(status(&server, Method::GET, &rotated).await.0, 200);

    let metrics = server.http.get(server.url("/metrics")).bearer_auth(&rotated).send().await.unwrap().text().await.unwrap();
    let refusals = |status: u16| format!("model_registry_auth_refusals_total{{mode=\"oidc\",status=\"{status}\"}} ");
    assert!(metrics.contains(&format!("{}{}", refusals(401), refused.len())), "{metrics}");
    assert!(metrics.contains(&format!("{}2", refusals(403))), "{metrics}");
    assert!(metrics.contains(&format!("{}2", refusals(503))), "{metrics}");
    let log = server.stop();
    assert!(!log.contains(&writer) && !log.contains(&rotated), "a token was logged");
    assert!(log.contains("writer"), "the access line names the subject:\n{log}");
}
