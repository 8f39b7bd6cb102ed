//! `--auth-mode kubernetes`: what kube-rbac-proxy does, in process. A TokenReview tells who
//! presents the token; a SubjectAccessReview on the registry's Service whether they may do the
//! operation's verb. Decisions are cached for a short time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Authenticator, BoxFuture, Denied, Identity, Need, Role};

/// Where a pod finds its service account's credentials.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Decisions cached at most; beyond it expired ones are dropped, and if none were, all.
pub const MAX_CACHED_DECISIONS: usize = 10_000;
/// Time limit of a review.
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default)]
pub struct KubernetesSettings {
    /// The API server (default: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`).
    pub api_server: Option<String>,
    /// The credentials the server sends its reviews with (default: the pod's service account).
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// The namespace of the resource checked (default: the pod's).
    pub namespace: Option<String>,
    /// The resource checked: `services` named after the registry's Service.
    pub resource: String,
    pub resource_name: String,
    /// How long a decision (allowed, denied, or not authenticated) is reused.
    pub cache_ttl: Duration,
}

/// What a review answered for one token and verb.
#[derive(Clone)]
enum Decision {
    Allowed(String),
    Denied(String),
    Unauthenticated,
}

/// A decision and when it was made.
type Cached = (Instant, Decision);

pub struct Kubernetes {
    api_server: String,
    token_file: PathBuf,
    namespace: String,
    resource: String,
    resource_name: String,
    ttl: Duration,
    http: reqwest::Client,
    /// By the token's SHA-256 (the token itself is not kept) and the verb.
    cache: Mutex<HashMap<([u8; 32], &'static str), Cached>>,
}

/// The review verb of an operation: `get` for reads, `create`/`update` for writes, `delete`
/// for what only admins may do.
fn verb(need: Need<'_>) -> &'static str {
    match need.role {
        Role::Reader => "get",
        Role::Writer if *need.method == Method::POST => "create",
        Role::Writer => "update",
        Role::Admin => "delete",
    }
}

impl Kubernetes {
    pub fn new(settings: &KubernetesSettings) -> anyhow::Result<Kubernetes> {
        let dir = Path::new(SERVICE_ACCOUNT_DIR);
        let api_server = match &settings.api_server {
            Some(url) => url.clone(),
            None => match (std::env::var("KUBERNETES_SERVICE_HOST"), std::env::var("KUBERNETES_SERVICE_PORT")) {
                (Ok(host), Ok(port)) => format!("https://{host}:{port}"),
                _ => anyhow::bail!(
                    "--auth-mode kubernetes outside a pod needs --auth-kubernetes-api-server (KUBERNETES_SERVICE_HOST is not set)"
                ),
            },
        };
        let namespace = match &settings.namespace {
            Some(ns) => ns.clone(),
            None => std::fs::read_to_string(dir.join("namespace")).map(|s| s.trim().to_owned()).map_err(|e| {
                anyhow::anyhow!("--auth-mode kubernetes: cannot read the pod's namespace ({e}); set --auth-kubernetes-namespace")
            })?,
        };
        let token_file = settings.token_file.clone().unwrap_or_else(|| dir.join("token"));
        std::fs::metadata(&token_file).map_err(|e| {
            anyhow::anyhow!(
                "--auth-mode kubernetes: cannot read {} ({e}); set --auth-kubernetes-token-file",
                token_file.display()
            )
        })?;
        let default_ca = dir.join("ca.crt");
        let ca_file = settings.ca_file.clone().or_else(|| default_ca.exists().then_some(default_ca));
        let http = super::oidc::http_client(ca_file.as_deref(), REVIEW_TIMEOUT)?;
        Ok(Kubernetes {
            api_server: api_server.trim_end_matches('/').to_owned(),
            token_file,
            namespace,
            resource: settings.resource.clone(),
            resource_name: settings.resource_name.clone(),
            ttl: settings.cache_ttl,
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// POSTs a review; its `status`, or why there is none.
    async fn review(&self, path: &str, body: Value) -> Result<Value, Denied> {
        let unavailable = |e: String| Denied::Unavailable(format!("the Kubernetes API cannot review the request: {e}"));
        // Re-read each time: a projected service-account token is rotated by the kubelet.
        let credentials = std::fs::read_to_string(&self.token_file).map_err(|e| unavailable(e.to_string()))?;
        let response = self
            .http
            .post(format!("{}{path}", self.api_server))
            .bearer_auth(credentials.trim())
            .json(&body)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("{path} answered {}", response.status())));
        }
        let mut answer: Value = response.json().await.map_err(|e| unavailable(e.to_string()))?;
        Ok(answer.get_mut("status").map(Value::take).unwrap_or(Value::Null))
    }

    async fn decide(&self, token: &str, verb: &'static str) -> Result<Decision, Denied> {
        let review = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        });
        let status = self.review("/apis/authentication.k8s.io/v1/tokenreviews", review).await?;
        if status["authenticated"] != Value::Bool(true) {
            return Ok(Decision::Unauthenticated);
        }
        let user = &status["user"];
        let username = user["username"].as_str().unwrap_or_default().to_owned();
        let access = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": username,
                "uid": user["uid"],
                "groups": user["groups"],
                "extra": user["extra"],
                "resourceAttributes": {
                    "namespace": self.namespace,
                    "verb": verb,
                    "resource": self.resource,
                    "name": self.resource_name,
                },
            },
        });
        let status = self.review("/apis/authorization.k8s.io/v1/subjectaccessreviews", access).await?;
        Ok(if status["allowed"] == Value::Bool(true) { Decision::Allowed(username) } else { Decision::Denied(username) })
    }

    async fn cached_decision(&self, token: &str, verb: &'static str) -> Result<Decision, Denied> {
        let key = (<[u8; 32]>::from(Sha256::digest(token.as_bytes())), verb);
        if let Some((at, decision)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            if at.elapsed() < self.ttl {
                return Ok(decision.clone());
            }
        }
        // An outage is never cached: the next request asks again.
        let decision = self.decide(token, verb).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED_DECISIONS {
            cache.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if cache.len() >= MAX_CACHED_DECISIONS {
                cache.clear();
            }
        }
        cache.insert(key, (Instant::now(), decision.clone()));
        Ok(decision)
    }
}

impl Authenticator for Kubernetes {
    fn check<'a>(&'a self, token: &'a str, need: Need<'a>) -> BoxFuture<'a, Result<Identity, Denied>> {
        Box::pin(async move {
            let verb = verb(need);
            match self.cached_decision(token, verb).await? {
                Decision::Allowed(subject) => Ok(Identity { subject: subject.into(), role: None }),
                Decision::Denied(subject) => Err(Denied::Forbidden {
                    message: format!(
                        "{subject} may not {verb} {}/{} in namespace {}",
                        self.resource, self.resource_name, self.namespace
                    ),
                    subject,
                }),
                Decision::Unauthenticated => Err(Denied::Unauthenticated("the token was not authenticated by Kubernetes".into())),
            }
        })
    }
}
