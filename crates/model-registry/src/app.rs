//! The server's life cycle: bind at once, reach the datastore in the background (retrying with
//! backoff), serve 503 until it is migrated and ready, stop gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use embedmd::{ConnectTarget, Datastore};
use tokio::net::TcpListener;

use crate::config::ServerConfig;
use crate::http;
use crate::registry::{mlmd_types, public_reason, Registry};

const FIRST_RETRY: Duration = Duration::from_millis(250);
const LONGEST_RETRY: Duration = Duration::from_secs(15);

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
}

impl AppState {
    fn new() -> Self {
        AppState { store: Arc::new(RwLock::new(Arc::new(StoreState::Starting("connecting to the database".into())))) }
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
    state: AppState,
    datastore: ConnectTarget,
    max_concurrent_requests: u32,
}

impl App {
    /// Binds the listener before anything else, so the port is known (and answering) at once.
    pub async fn build(config: ServerConfig) -> std::io::Result<App> {
        let listener = TcpListener::bind((config.hostname.as_str(), config.port)).await?;
        Ok(App {
            listener,
            state: AppState::new(),
            datastore: config.datastore,
            max_concurrent_requests: config.max_concurrent_requests,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests and closes the pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let App { listener, state, datastore, max_concurrent_requests } = self;
        tracing::info!(address = %listener.local_addr()?, datastore = %datastore.describe(), "listening");
        let connector = tokio::spawn(connect_until_ready(datastore, state.clone()));
        let served =
            axum::serve(listener, http::router(state.clone(), max_concurrent_requests)).with_graceful_shutdown(shutdown).await;
        connector.abort();
        if let StoreState::Ready(registry) = &*state.store() {
            registry.datastore().close().await;
        }
        served
    }
}

/// Opens (migrating and syncing types) until it works. Every failure is worth another try: the
/// database may come up later, and a dirty schema may be forced by an operator meanwhile.
async fn connect_until_ready(target: ConnectTarget, state: AppState) {
    let mut delay = FIRST_RETRY;
    let mut last_error = String::new();
    loop {
        match Datastore::open(&target, &mlmd_types()).await {
            Ok((store, report)) => {
                if report.no_change() {
                    tracing::info!(version = ?report.to, dialect = ?store.dialect(), "database schema is up to date");
                } else {
                    tracing::info!(from = ?report.from, to = ?report.to, applied = report.applied.len(), dialect = ?store.dialect(), "database schema migrated");
                }
                state.set(StoreState::Ready(Registry::new(store)));
                tracing::info!("ready");
                return;
            }
            Err(e) => {
                let message = e.to_string();
                if message != last_error {
                    tracing::error!(error = %message, retry_in = ?delay, "datastore not ready");
                    last_error.clone_from(&message);
                }
                state.set(StoreState::Starting(public_reason(&e)));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(LONGEST_RETRY);
            }
        }
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
