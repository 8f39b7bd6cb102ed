//! Who is asking and what they may do. Every edge (Kubeflow REST, MLflow REST, the UI) names the
//! role each of its operations needs in its own operation table and declares it where it
//! registers the route ([`Guarded::route`]); nothing else lists paths. One layer ([`enforce`])
//! finds the caller's [`Identity`] through the configured mode ([`Authenticator`]) and checks it
//! against the route's declared [`Access`]; a route that declared none is refused.

mod kubernetes;
mod oidc;
mod session;
mod token;

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use serde::Serialize;

pub use kubernetes::KubernetesSettings;
pub use oidc::{parse_roles, OidcSettings, RoleMap};
pub use session::{local_next, SignIn, SignedIn, LOGIN_PATH, MAX_COOKIE_BYTES, SESSION_COOKIE, SESSION_MAX_AGE};
pub use token::{hash_token, TokenFile};

use crate::metrics::Metrics;

/// What an operation needs of its caller. Ordered: each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads and searches.
    Reader,
    /// Reader, plus creates, updates and logging.
    Writer,
    /// Writer, plus deletes.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Reader, Role::Writer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (expected reader, writer or admin)"))
    }
}

/// How callers are identified (`--auth-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Mode {
    /// Nothing is checked (upstream's behaviour: a proxy in front decides).
    #[default]
    None,
    /// Static tokens from `--auth-token-file`.
    Token,
    /// JWTs signed by an OpenID provider (`--auth-oidc-*`).
    Oidc,
    /// Kubernetes TokenReview and SubjectAccessReview (`--auth-kubernetes-*`).
    Kubernetes,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Token => "token",
            Mode::Oidc => "oidc",
            Mode::Kubernetes => "kubernetes",
        }
    }
}

/// Who is calling, as the mode established it. Put in the request's extensions for handlers and
/// in the response's for the access line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// A token's name, a JWT's `sub`, a Kubernetes user name. Never the token. Shared: a
    /// request copies it to its access line and pages, and cached identities are handed out
    /// per request.
    pub subject: Arc<str>,
    /// The role the mode granted, where the mode grants roles itself (token, OIDC); the
    /// kubernetes mode asks the cluster per operation instead.
    pub role: Option<Role>,
}

/// Why a request is not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No usable token, or one the mode does not accept: 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// A known caller whose role does not allow the operation: 403.
    #[error("{message}")]
    Forbidden { subject: String, message: String },
    /// What decides (the OpenID provider, the Kubernetes API) cannot be asked now: 503, and
    /// nothing is let through.
    #[error("{0}")]
    Unavailable(String),
}

/// The operation a caller wants: the role its table names and the HTTP method (the kubernetes
/// mode derives the review's verb from both).
#[derive(Debug, Clone, Copy)]
pub struct Need<'a> {
    pub role: Role,
    pub method: &'a Method,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One way of telling who presents a bearer token and whether they may do an operation.
pub trait Authenticator: Send + Sync + 'static {
    fn check<'a>(&'a self, token: &'a str, need: Need<'a>) -> BoxFuture<'a, Result<Identity, Denied>>;
}

/// The role check of the modes that grant a role with the identity.
fn allow(identity: Identity, need: Need<'_>) -> Result<Identity, Denied> {
    match identity.role {
        Some(role) if role >= need.role => Ok(identity),
        granted => {
            let has = granted.map_or("no role".to_owned(), |r| format!("role {}", r.as_str()));
            Err(Denied::Forbidden {
                message: format!("{} has {has}; this operation needs {}", identity.subject, need.role.as_str()),
                subject: identity.subject.to_string(),
            })
        }
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, in every mode: readiness probes, the OpenAPI documents.
    Open,
    /// Callers with at least this role.
    Needs(Role),
}

/// How an edge words a refusal (401, 403, 503) in its API's error body; the layer adds the
/// headers. Kubeflow's ([`upstream_refusal`]) unless the edge says otherwise
/// ([`Guarded::refusing_with`]).
pub type Refusal = fn(StatusCode, String) -> Response;

/// Upstream's `{code, message}`.
pub fn upstream_refusal(status: StatusCode, message: String) -> Response {
    (status, Json(ErrorBody { code: status.canonical_reason().unwrap_or_default(), message })).into_response()
}

/// What a route declared: its access, its edge's way of refusing, and whether it is a page of
/// the web UI (where the login cookie stands for a bearer token).
#[derive(Clone, Copy)]
struct Declared {
    access: Access,
    refusal: Refusal,
    page: bool,
}

/// The access each route declared, by method and route template (as axum matched it). A route
/// missing here is refused in every mode but `none`.
#[derive(Clone, Default)]
pub struct AccessTable(HashMap<(Method, String), Declared>);

impl AccessTable {
    /// HEAD is served by GET's handler, so it needs what GET needs.
    fn get(&self, method: &Method, path: &str) -> Option<Declared> {
        let method = if method == Method::HEAD { &Method::GET } else { method };
        self.0.get(&(method.clone(), path.to_owned())).copied()
    }

    /// Both tables' routes: routers served apart (with different limits) behind one gate.
    pub fn merged(mut self, other: AccessTable) -> AccessTable {
        self.0.extend(other.0);
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Method, &str, Access)> {
        self.0.iter().map(|((m, p), d)| (m, p.as_str(), d.access))
    }
}

/// A router whose routes each declared their access where they were registered.
pub struct Guarded<S> {
    pub router: Router<S>,
    pub access: AccessTable,
}

impl<S: Clone + Send + Sync + 'static> Default for Guarded<S> {
    fn default() -> Self {
        Guarded { router: Router::new(), access: AccessTable::default() }
    }
}

impl<S: Clone + Send + Sync + 'static> Guarded<S> {
    /// `handler` serving `methods` at `path`, each needing `access`.
    pub fn route(mut self, path: &str, methods: &[Method], access: Access, handler: MethodRouter<S>) -> Self {
        for method in methods {
            let declared = Declared { access, refusal: upstream_refusal, page: false };
            self.access.0.insert((method.clone(), path.to_owned()), declared);
        }
        self.router = self.router.route(path, handler);
        self
    }

    /// Refusals of the routes declared so far worded by `refusal` (an edge with its own error
    /// format, such as MLflow's `{error_code, message}`).
    pub fn refusing_with(mut self, refusal: Refusal) -> Self {
        self.access.0.values_mut().for_each(|d| d.refusal = refusal);
        self
    }

    /// The routes declared so far are the web UI's pages: a browser signed in on the login page
    /// is identified by its cookie there (and only there), and one that is not is sent to the
    /// login page.
    pub fn pages(mut self) -> Self {
        self.access.0.values_mut().for_each(|d| d.page = true);
        self
    }

    pub fn nest(mut self, prefix: &str, other: Guarded<S>) -> Self {
        for ((method, path), declared) in other.access.0 {
            self.access.0.insert((method, format!("{prefix}{path}")), declared);
        }
        self.router = self.router.nest(prefix, other.router);
        self
    }

    pub fn merge(mut self, other: Guarded<S>) -> Self {
        self.access.0.extend(other.access.0);
        self.router = self.router.merge(other.router);
        self
    }
}

/// The configured mode, ready to check requests. Clones share it.
#[derive(Clone, Default)]
pub struct Auth {
    mode: Mode,
    authenticator: Option<Arc<dyn Authenticator>>,
    /// Whether the server serves HTTPS: the login cookie is then `Secure`.
    https: bool,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("mode", &self.mode).finish_non_exhaustive()
    }
}

/// Everything a mode needs, from the flags.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub mode: Mode,
    pub token_file: Option<std::path::PathBuf>,
    pub oidc: OidcSettings,
    pub kubernetes: KubernetesSettings,
}

impl Auth {
    /// Reads what the mode needs at start (the token file, CA files), so that a mistake stops the
    /// server before it listens; the OpenID provider and the Kubernetes API are asked later.
    pub fn new(settings: &Settings) -> anyhow::Result<Auth> {
        let authenticator: Option<Arc<dyn Authenticator>> = match settings.mode {
            Mode::None => None,
            Mode::Token => {
                let path = settings
                    .token_file
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("--auth-mode token needs --auth-token-file (MR_AUTH_TOKEN_FILE)"))?;
                Some(Arc::new(TokenFile::open(path)?))
            }
            Mode::Oidc => Some(Arc::new(oidc::Oidc::new(&settings.oidc)?)),
            Mode::Kubernetes => Some(Arc::new(kubernetes::Kubernetes::new(&settings.kubernetes)?)),
        };
        Ok(Auth { mode: settings.mode, authenticator, https: false })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Marks the login cookie `Secure` when the server serves HTTPS.
    pub fn serving_https(self, https: bool) -> Auth {
        Auth { https, ..self }
    }
}

/// What the layer needs: the mode, the routes' declared access, the counters.
#[derive(Clone)]
pub struct Gate {
    pub auth: Auth,
    pub access: Arc<AccessTable>,
    pub metrics: Metrics,
}

/// The subject of a request, for the access line.
#[derive(Debug, Clone)]
pub struct Subject(pub Arc<str>);

/// Longest bearer token accepted; JWTs with many groups are a few KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Denied> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| Denied::Unauthenticated("the Authorization header is not text".into()))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Denied::Unauthenticated("expected Authorization: Bearer <token>".into()));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Denied::Unauthenticated(format!("the token is longer than {MAX_TOKEN_BYTES} bytes")));
    }
    Ok(Some(token))
}

/// Readiness is answered by the fallback on any path ending so (as upstream), with no route.
fn is_probe(path: &str) -> bool {
    path.ends_with("/readyz/isDirty") || path.ends_with("/readyz/health")
}

/// The layer: applied to the whole router with `Router::layer`, so it runs after routing and
/// sees the matched route template.
pub async fn enforce(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let Some(authenticator) = &gate.auth.authenticator else { return next.run(request).await };
    let needs = |access| Some(Declared { access, refusal: upstream_refusal, page: false });
    let declared = match request.extensions().get::<MatchedPath>() {
        Some(route) => gate.access.get(request.method(), route.as_str()),
        None if is_probe(request.uri().path()) => needs(Access::Open),
        // No route (404, or 503 while starting): told only to callers who could read.
        None => needs(Access::Needs(Role::Reader)),
    };
    let refusal = declared.map_or(upstream_refusal as Refusal, |d| d.refusal);
    let page = declared.is_some_and(|d| d.page);
    if page {
        request.extensions_mut().insert(SignIn { auth: gate.auth.clone() });
    }
    let denied = |denied: Denied| deny(&gate, refusal, denied);
    let role = match declared.map(|d| d.access) {
        Some(Access::Open) => return next.run(request).await,
        Some(Access::Needs(role)) => Some(role),
        None => None,
    };
    let (token, by_cookie) = match bearer(request.headers()) {
        Ok(Some(token)) => (Cow::Borrowed(token), false),
        Ok(None) => match page.then(|| session::cookie_token(request.headers())).flatten() {
            Some(token) => (Cow::Owned(token), true),
            None if page && is_read(request.method()) => return sign_in_first(&gate, &request, false),
            None => return denied(Denied::Unauthenticated("a bearer token is required".into())),
        },
        Err(e) => return denied(e),
    };
    let Some(role) = role else {
        // A route registered without declaring its access: a bug, refused rather than served.
        let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
        tracing::error!(method = %request.method(), route, "route declares no access; refused");
        return denied(Denied::Forbidden { subject: String::new(), message: "this operation declares no role".into() });
    };
    let method = request.method().clone();
    match authenticator.check(&token, Need { role, method: &method }).await {
        Ok(identity) => {
            let subject = Subject(identity.subject.clone());
            if page {
                request.extensions_mut().insert(SignedIn { subject: identity.subject.clone(), by_cookie });
            }
            request.extensions_mut().insert(identity);
            let mut response = next.run(request).await;
            response.extensions_mut().insert(subject);
            response
        }
        // A sign-in that no longer holds (a revoked token, an expired JWT): forgotten, and a
        // page asked for is the login page again.
        Err(Denied::Unauthenticated(_)) if by_cookie && is_read(&method) => sign_in_first(&gate, &request, true),
        Err(e @ Denied::Unauthenticated(_)) if by_cookie => {
            let mut response = denied(e);
            response.headers_mut().append(header::SET_COOKIE, session::forget(gate.auth.https));
            response
        }
        Err(e) => denied(e),
    }
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// A browser asking for a UI page without a token (or with a sign-in that no longer holds,
/// then forgotten): 303 to the login page, which returns it here. Counted as a 401.
fn sign_in_first(gate: &Gate, request: &Request, forget: bool) -> Response {
    gate.metrics.record_auth_refusal(gate.auth.mode.as_str(), StatusCode::UNAUTHORIZED.as_u16());
    let here = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = HeaderValue::from_str(&session::login_location(here)).expect("percent-encoded text");
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if forget {
        response.headers_mut().append(header::SET_COOKIE, session::forget(gate.auth.https));
    }
    response
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
}

/// The route's error body; 401 with the challenge of RFC 6750, counted by mode.
fn deny(gate: &Gate, refusal: Refusal, denied: Denied) -> Response {
    let status = match &denied {
        Denied::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Denied::Forbidden { .. } => StatusCode::FORBIDDEN,
        Denied::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    gate.metrics.record_auth_refusal(gate.auth.mode.as_str(), status.as_u16());
    let mut response = refusal(status, denied.to_string());
    let headers = response.headers_mut();
    match &denied {
        Denied::Unauthenticated(_) => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"model-registry\""));
        }
        Denied::Forbidden { subject, .. } => {
            if !subject.is_empty() {
                response.extensions_mut().insert(Subject(subject.as_str().into()));
            }
        }
        Denied::Unavailable(reason) => {
            tracing::warn!(reason, "authentication unavailable");
            headers.insert(header::RETRY_AFTER, crate::http::RETRY_AFTER_SECONDS.into());
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    /// Grants `reader` to the token "r" and `writer` to "w".
    struct Fixed;

    impl Authenticator for Fixed {
        fn check<'a>(&'a self, token: &'a str, need: Need<'a>) -> BoxFuture<'a, Result<Identity, Denied>> {
            Box::pin(async move {
                let role = match token {
                    "r" => Role::Reader,
                    "w" => Role::Writer,
                    _ => return Err(Denied::Unauthenticated("unknown".into())),
                };
                allow(Identity { subject: token.into(), role: Some(role) }, need)
            })
        }
    }

    async fn status(router: &Router, method: Method, path: &str, token: Option<&str>) -> u16 {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap().status().as_u16()
    }

    fn router(mode: Mode) -> Router {
        let declared = Guarded::default()
            .route("/things", &[Method::GET], Access::Needs(Role::Reader), get(|| async { "list" }))
            .route("/things", &[Method::POST], Access::Needs(Role::Writer), post(|| async { "made" }))
            .route("/doc", &[Method::GET], Access::Open, get(|| async { "doc" }));
        let mlflowish = Guarded::default()
            .route("/own", &[Method::GET], Access::Needs(Role::Reader), get(|| async { "own" }))
            .refusing_with(|status, message| (status, format!("own format: {message}")).into_response());
        let nested = Guarded::default().nest("/api", declared.merge(mlflowish));
        // Registered without declaring its access.
        let router = nested.router.route("/forgotten", get(|| async { "oops" }));
        let authenticator: Option<Arc<dyn Authenticator>> = (mode != Mode::None).then(|| Arc::new(Fixed) as _);
        let gate = Gate {
            auth: Auth { mode, authenticator, https: false },
            access: Arc::new(nested.access),
            metrics: Metrics::default(),
        };
        router.layer(axum::middleware::from_fn_with_state(gate, enforce))
    }

    #[tokio::test]
    async fn routes_get_the_role_they_declared_and_undeclared_ones_are_refused() {
        let app = router(Mode::Token);
        assert_eq!(status(&app, Method::GET, "/api/things", None).await, 401);
        assert_eq!(status(&app, Method::GET, "/api/things", Some("x")).await, 401);
        assert_eq!(status(&app, Method::GET, "/api/things", Some("r")).await, 200);
        assert_eq!(status(&app, Method::HEAD, "/api/things", Some("r")).await, 200);
        assert_eq!(status(&app, Method::POST, "/api/things", Some("r")).await, 403);
        assert_eq!(status(&app, Method::POST, "/api/things", Some("w")).await, 200);
        assert_eq!(status(&app, Method::GET, "/api/doc", None).await, 200);
        assert_eq!(status(&app, Method::GET, "/x/readyz/health", None).await, 404, "open, then not found");
        assert_eq!(status(&app, Method::GET, "/nowhere", None).await, 401);
        assert_eq!(status(&app, Method::GET, "/forgotten", None).await, 401);
        assert_eq!(status(&app, Method::GET, "/forgotten", Some("w")).await, 403);
        assert_eq!(status(&app, Method::PUT, "/api/things", Some("w")).await, 403, "a method nobody declared");

        let own = app.clone().oneshot(Request::get("/api/own").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(own.status(), 401);
        assert!(own.headers().contains_key(header::WWW_AUTHENTICATE));
        let body = axum::body::to_bytes(own.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"own format: a bearer token is required");

        let open = router(Mode::None);
        assert_eq!(status(&open, Method::POST, "/api/things", None).await, 200);
        assert_eq!(status(&open, Method::GET, "/forgotten", None).await, 200);
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let headers = |v: &str| HeaderMap::from_iter([(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap())]);
        assert_eq!(bearer(&HeaderMap::new()), Ok(None));
        assert_eq!(bearer(&headers("Bearer abc")), Ok(Some("abc")));
        assert_eq!(bearer(&headers("bearer  abc ")), Ok(Some("abc")));
        assert!(bearer(&headers("Basic abc")).is_err());
        assert!(bearer(&headers("Bearer")).is_err());
        assert!(bearer(&headers(&format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1)))).is_err());
    }
}
