//! Prometheus metrics: the HTTP series are recorded as requests end; the database's are read
//! from the pool and the datastore when scraped.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use embedmd::store::{query_totals, QueryKind};
use embedmd::PoolStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::app::StoreState;

/// prometheus-client writes OpenMetrics text (Prometheus' text format with `# EOF`, `info`
/// and `_total` counters), which Prometheus scrapes when told so by the content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// A standard method, or `other`.
    pub method: &'static str,
    /// The route template (`/api/model_registry/v1/registered_models/{id}`), never the path.
    pub route: String,
    pub status: u16,
}

/// A request the auth layer refused: 401, 403, or 503 when what decides could not be asked.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    mode: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The server's series; clones share them.
#[derive(Clone, Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    in_flight: Gauge,
    auth_refusals: Family<AuthLabels, Counter>,
    schema_version: Gauge,
    schema_dirty: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let schema_version = Gauge::default();
        // No schema seen yet.
        schema_version.set(-1);
        Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            in_flight: Gauge::default(),
            auth_refusals: Family::default(),
            schema_version,
            schema_dirty: Gauge::default(),
        }
    }
}

/// Counts a request in flight until dropped (also when its future is cancelled).
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    pub fn record(&self, labels: RequestLabels, elapsed: Duration) {
        self.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    pub fn record_auth_refusal(&self, mode: &'static str, status: u16) {
        self.auth_refusals.get_or_create(&AuthLabels { mode, status }).inc();
    }

    /// The schema version found (`None`: no migration recorded) and whether a failed migration
    /// left it dirty.
    pub fn set_schema(&self, version: Option<u64>, dirty: bool) {
        self.schema_version.set(version.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX)));
        self.schema_dirty.set(i64::from(dirty));
    }

    /// The text exposition. The registry is assembled per scrape: the recorded series are
    /// shared handles, and the database's are taken from the pool as it is now.
    pub fn render(&self, store: &StoreState) -> String {
        let mut registry = Registry::with_prefix("model_registry");
        registry.register("build", "The server's version", Info::new([("version", env!("CARGO_PKG_VERSION"))]));
        registry.register("http_requests", "HTTP requests answered, by method, route template and status", self.requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's headers to its response, by method, route template and status",
            self.latency.clone(),
        );
        registry.register("http_requests_in_flight", "HTTP requests being served", self.in_flight.clone());
        registry.register(
            "auth_refusals",
            "Requests refused by authentication or authorization, by auth mode and status (401, 403, 503)",
            self.auth_refusals.clone(),
        );
        registry.register(
            "schema_version",
            "The database's migration version (-1 before the database was read)",
            self.schema_version.clone(),
        );
        registry.register("schema_dirty", "1 when a failed migration left the schema dirty", self.schema_dirty.clone());

        let queries = Family::<KindLabels, Counter>::default();
        let query_seconds = Family::<KindLabels, Counter<f64, AtomicU64>>::default();
        for kind in QueryKind::ALL {
            let (count, spent) = query_totals(kind);
            let labels = KindLabels { kind: kind.as_str() };
            queries.get_or_create(&labels).inc_by(count);
            query_seconds.get_or_create(&labels).inc_by(spent.as_secs_f64());
        }
        registry.register("db_queries", "Statements run, by kind (first keyword)", queries);
        registry.register("db_query_seconds", "Time spent in statements, by kind (first keyword)", query_seconds);
        let (commits, writes) = embedmd::group::commit_totals();
        let counter = |value: u64| {
            let counter = Counter::<u64>::default();
            counter.inc_by(value);
            counter
        };
        registry.register("db_commits", "Write transactions committed", counter(commits));
        registry.register("db_committed_writes", "Writes committed (on SQLite several share one commit)", counter(writes));

        // No pool before the datastore is ready: zeros then.
        let pool = match store {
            StoreState::Ready(registry) => registry.datastore().pool().stats(),
            StoreState::Starting(_) => PoolStats::default(),
        };
        let gauge = |value: usize| {
            let gauge = Gauge::<i64>::default();
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
            gauge
        };
        registry.register("db_pool_connections", "Connections open, in use or idle", gauge(pool.size as usize));
        registry.register("db_pool_idle_connections", "Connections open and idle", gauge(pool.idle));
        registry.register("db_pool_waiting", "Callers waiting for a connection", gauge(pool.waiting));

        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("writing to a String does not fail");
        text
    }
}
