//! The server's life cycle: bind at once, reach the datastore in the background (retrying with
//! backoff), serve 503 until it is migrated and ready, stop gracefully within a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::serve::Listener;
use embedmd::{ConnectTarget, Datastore, MigrateError, PoolConfig};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::artifacts::{ArtifactStore, Destination};
use crate::config::{self, HttpTimeouts, ServerConfig};
use crate::http;
use crate::metrics::Metrics;
use crate::registry::{mlmd_types, public_reason, Registry};

const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(15);
/// The first failed attempts to reach the datastore are logged one by one...
pub const LOGGED_RETRIES: u32 = 3;
/// ...and then one line per this interval (or when the error changes), so that the log shows a
/// server that keeps retrying without a line per retry.
pub const RETRY_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// Where the datastore stands; read by every request.
#[derive(Debug)]
pub enum StoreState {
    /// Not usable yet; the text says why (unreachable, dirty schema, ...) in words fit for
    /// clients.
    Starting(String),
    Ready(Registry),
}

/// Shared by all handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    store: Arc<RwLock<Arc<StoreState>>>,
    metrics: Metrics,
    artifacts: ArtifactStore,
    /// Artifact uploads and downloads under way, at most [`http::mlflow::artifacts::MAX_TRANSFERS`].
    artifact_transfers: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    fn new(artifacts: ArtifactStore) -> Self {
        AppState {
            store: Arc::new(RwLock::new(Arc::new(StoreState::Starting("connecting to the database".into())))),
            metrics: Metrics::default(),
            artifacts,
            artifact_transfers: Arc::new(tokio::sync::Semaphore::new(http::mlflow::artifacts::MAX_TRANSFERS)),
        }
    }

    /// MLflow's artifact proxy (`--artifacts-destination`).
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    pub fn artifact_transfers(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.artifact_transfers
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn store(&self) -> Arc<StoreState> {
        self.store.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, state: StoreState) {
        *self.store.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
    }
}

pub struct App {
    listener: TcpListener,
    /// `/metrics` on its own port (`--metrics-port`), then not on the API's.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    datastore: ConnectTarget,
    max_concurrent_requests: u32,
    pool: PoolConfig,
    timeouts: HttpTimeouts,
    /// Whether the web UI is served (`--ui`).
    ui: bool,
    auth: crate::auth::Auth,
    tls: Option<http::Tls>,
}

impl App {
    /// Binds the listener before anything else, so the port is known (and answering) at once.
    pub async fn build(config: ServerConfig) -> Result<App, BindError> {
        let listener = bind(&config.hostname, config.port, Endpoint::Api).await?;
        let metrics_listener = match config.metrics_port {
            Some(port) => Some(bind(&config.hostname, port, Endpoint::Metrics).await?),
            None => None,
        };
        let ServerConfig { datastore, pool, timeouts, max_concurrent_requests, ui, auth, tls, artifacts_destination, .. } =
            config;
        Ok(App {
            listener,
            metrics_listener,
            state: AppState::new(ArtifactStore::new(artifacts_destination)),
            datastore,
            pool,
            timeouts,
            max_concurrent_requests,
            ui,
            auth,
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish within the
    /// shutdown deadline and closes the pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let App { listener, metrics_listener, state, datastore, pool, timeouts, max_concurrent_requests, ui, auth, tls } = self;
        tracing::info!(
            address = %listener.local_addr()?,
            datastore = %datastore.describe(),
            auth = %auth.mode(),
            https = tls.is_some(),
            artifacts = %state.artifacts().destination(),
            "listening"
        );
        if ui {
            let scheme = if tls.is_some() { "https" } else { "http" };
            tracing::info!(url = %format!("{scheme}://{}/", listener.local_addr()?), "web UI");
        }
        let connector = tokio::spawn(connect_until_ready(datastore, pool, state.clone()));
        let artifacts = state.artifacts().clone();
        // At start (a local destination not made yet has none), then at each new upload:
        // uploads a client abandoned part way.
        let fresh = matches!(artifacts.destination(), Destination::Directory(dir) if !dir.exists());
        tokio::spawn(async move {
            if fresh {
                return;
            }
            match artifacts.remove_abandoned_uploads().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed abandoned multipart uploads"),
                Err(e) => tracing::warn!(error = %e, "could not remove abandoned multipart uploads"),
            }
        });
        let observe = axum::middleware::from_fn_with_state(state.metrics().clone(), http::observe);
        let auth = auth.serving_https(tls.is_some());
        let router = http::router(state.clone(), max_concurrent_requests, ui, auth, metrics_listener.is_none());
        // The metrics server stops when the API's has: `stop` is dropped then.
        let (stop, stopped) = tokio::sync::watch::channel(());
        let metrics_server = match metrics_listener {
            Some(metrics_listener) => {
                tracing::info!(address = %metrics_listener.local_addr()?, "serving /metrics");
                let metrics_router = http::metrics_router(state.clone()).layer(observe.clone());
                let timeouts = timeouts.clone();
                let mut stopped = stopped;
                Some(tokio::spawn(async move {
                    serve(metrics_listener, None, metrics_router, &timeouts, async move {
                        let _ = stopped.changed().await;
                    })
                    .await;
                }))
            }
            None => None,
        };
        let router = router
            .layer(axum::middleware::from_fn_with_state(timeouts.request, http::deadline))
            // Outermost, so that a request cut off by the deadline is logged and counted too.
            .layer(observe);
        serve(listener, tls, router, &timeouts, shutdown).await;
        drop(stop);
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
        connector.abort();
        if let StoreState::Ready(registry) = &*state.store() {
            registry.datastore().close().await;
        }
        Ok(())
    }
}

/// Which of the server's listeners could not be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Api,
    Metrics,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Endpoint::Api => "the API",
            Endpoint::Metrics => "/metrics",
        })
    }
}

/// A listener that could not be bound, with the address as given (host name and port).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} for {endpoint}: {source}")]
pub struct BindError {
    pub endpoint: Endpoint,
    pub address: String,
    pub port: u16,
    pub source: std::io::Error,
}

async fn bind(hostname: &str, port: u16, endpoint: Endpoint) -> Result<TcpListener, BindError> {
    TcpListener::bind((hostname, port)).await.map_err(|source| BindError {
        endpoint,
        address: format!("{hostname}:{port}"),
        port,
        source,
    })
}

/// HTTP/1.1 (as upstream serves it) with a header-read timeout, which hyper also applies to a
/// keep-alive connection waiting for its next request: a client that sends nothing, or headers
/// that never end, loses its connection instead of holding it forever. With TLS the handshake
/// gets the same time.
async fn serve(
    mut listener: TcpListener,
    tls: Option<http::Tls>,
    router: axum::Router,
    timeouts: &HttpTimeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(timeouts.read_header);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let service = TowerToHyperService::new(router.clone());
        let Some(tls) = &tls else {
            let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            connections.spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "connection closed with an error");
                }
            });
            continue;
        };
        let (acceptor, builder, watcher, handshake_timeout) =
            (tls.0.clone(), builder.clone(), graceful.watcher(), timeouts.read_header);
        connections.spawn(async move {
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return tracing::debug!(%error, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            if let Err(error) = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(timeouts.shutdown, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            deadline = ?timeouts.shutdown,
            "shutdown deadline passed; closing the connections still open"
        );
    }
    connections.shutdown().await;
}

/// Opens (migrating and syncing types) until it works. Every failure is worth another try: the
/// database may come up later, and a dirty schema may be forced by an operator meanwhile.
async fn connect_until_ready(target: ConnectTarget, pool: PoolConfig, state: AppState) {
    let mut delay = FIRST_RETRY;
    let mut retries = RetryLog::default();
    loop {
        match Datastore::open(&target, &pool, &mlmd_types()).await {
            Ok((store, report)) => {
                if report.no_change() {
                    tracing::info!(version = ?report.to, dialect = ?store.dialect(), "database schema is up to date");
                } else {
                    tracing::info!(from = ?report.from, to = ?report.to, applied = report.applied.len(), dialect = ?store.dialect(), "database schema migrated");
                }
                state.metrics.set_schema(report.to, false);
                state.set(StoreState::Ready(Registry::new(store)));
                tracing::info!(failed_attempts = retries.failed, "ready");
                return;
            }
            Err(e) => {
                match &e {
                    embedmd::Error::Migrate(MigrateError::Dirty { version }) => {
                        state.metrics.set_schema(u64::try_from(*version).ok(), true);
                    }
                    embedmd::Error::Migrate(MigrateError::StepFailed { version, .. }) => {
                        state.metrics.set_schema(Some(*version), true);
                    }
                    _ => {}
                }
                let message = config::open_error(&e, &target);
                let line = retries.failed_now(Instant::now(), &message);
                let failed = retries.failed;
                // The state first: what the log reports, readiness already answers.
                state.set(StoreState::Starting(format!("{}; retrying (failed attempts: {failed})", public_reason(&e))));
                match line {
                    RetryLine::Quiet => {}
                    RetryLine::Attempt if failed == LOGGED_RETRIES => tracing::error!(
                        attempt = failed,
                        error = %message,
                        retry_in = ?delay,
                        later_retries = %format_args!("logged every {RETRY_LOG_INTERVAL:?}, or when the error changes"),
                        "datastore not ready"
                    ),
                    RetryLine::Attempt => {
                        tracing::error!(attempt = failed, error = %message, retry_in = ?delay, "datastore not ready")
                    }
                    RetryLine::Summary { failing_for } => tracing::error!(
                        failed_attempts = failed,
                        failing_for = %humantime::format_duration(failing_for),
                        last_error = %message,
                        retry_in = ?delay,
                        "datastore still not ready"
                    ),
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(LONGEST_RETRY);
            }
        }
    }
}

/// Which failed attempts to reach the datastore get a log line: the first [`LOGGED_RETRIES`] and
/// any whose error differs from the last one logged, else one summary per
/// [`RETRY_LOG_INTERVAL`]. Retries themselves are at least [`FIRST_RETRY`] apart.
#[derive(Debug, Default)]
struct RetryLog {
    failed: u32,
    first_failure: Option<Instant>,
    last_logged: Option<(Instant, String)>,
}

#[derive(Debug, PartialEq, Eq)]
enum RetryLine {
    Attempt,
    /// Attempts have failed since `failing_for` ago (whole seconds).
    Summary {
        failing_for: Duration,
    },
    Quiet,
}

impl RetryLog {
    fn failed_now(&mut self, now: Instant, error: &str) -> RetryLine {
        self.failed += 1;
        let since = *self.first_failure.get_or_insert(now);
        let line = match &self.last_logged {
            _ if self.failed <= LOGGED_RETRIES => RetryLine::Attempt,
            Some((_, logged)) if logged != error => RetryLine::Attempt,
            Some((at, _)) if now.duration_since(*at) < RETRY_LOG_INTERVAL => return RetryLine::Quiet,
            _ => RetryLine::Summary { failing_for: Duration::from_secs(now.duration_since(since).as_secs()) },
        };
        self.last_logged = Some((now, error.to_owned()));
        line
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_logged_one_by_one_then_once_per_interval_or_when_the_error_changes() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut log = RetryLog::default();
        let mut lines: Vec<RetryLine> = (0..LOGGED_RETRIES).map(|i| log.failed_now(at(u64::from(i)), "refused")).collect();
        assert!(lines.iter().all(|l| *l == RetryLine::Attempt), "{lines:?}");
        lines.clear();
        let last_loud = u64::from(LOGGED_RETRIES - 1);
        // Every second for two intervals: quiet but for one summary per interval.
        for s in last_loud + 1..=last_loud + 2 * RETRY_LOG_INTERVAL.as_secs() {
            lines.push(log.failed_now(at(s), "refused"));
        }
        let summaries: Vec<(usize, &RetryLine)> = lines.iter().enumerate().filter(|(_, l)| **l != RetryLine::Quiet).collect();
        let interval = RETRY_LOG_INTERVAL.as_secs();
        assert_eq!(
            summaries,
            [
                (interval as usize - 1, &RetryLine::Summary { failing_for: Duration::from_secs(last_loud + interval) }),
                (2 * interval as usize - 1, &RetryLine::Summary { failing_for: Duration::from_secs(last_loud + 2 * interval) }),
            ]
        );
        let now = last_loud + 2 * interval + 1;
        assert_eq!(log.failed_now(at(now), "dirty"), RetryLine::Attempt, "a new error is logged at once");
        assert_eq!(log.failed_now(at(now + 1), "dirty"), RetryLine::Quiet);
        assert_eq!(log.failed, LOGGED_RETRIES + 2 * interval as u32 + 2);
    }
}
