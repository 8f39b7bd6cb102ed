//! HTTP benchmark of the model-registry REST API (`/api/model_registry/v1alpha3`).
//!
//! For each backend it creates a fresh database (SQLite: a temporary file; MySQL/MariaDB and
//! PostgreSQL: `CREATE DATABASE mr_bench_<random>` through an admin connection), starts the
//! release server binary on a free loopback port, waits for `GET /readyz/health` to answer 200,
//! runs the workloads below, stops the server with SIGTERM and drops the database.
//!
//! - **W1 register**: `POST /registered_models`, `POST /model_versions` and
//!   `POST /model_versions/{id}/artifacts` (an ONNX model artifact). One op = those three
//!   requests, for a model with a new unique name.
//! - **W2 point reads**: `GET /registered_models/{id}` and `GET /registered_model?name=`,
//!   alternately, over the models W1 created. One op = one request.
//! - **W3 list walk**: every page of
//!   `GET /registered_models?pageSize=100&orderBy=ID&sortOrder=ASC`, following `nextPageToken`
//!   until it is `""`, then again from the first page. One op = one page. Before W3 the
//!   database is topped up to `--seed-models` registered models; each complete walk must see
//!   exactly the models created so far.
//! - **W4 filtered search**: the first page of `GET /registered_models?pageSize=100&filterQuery=`,
//!   alternately `name LIKE 'bench-1%'` (about 1/16 of the models) and
//!   `team = 'a' AND priority > 2` (about 2/15; every model the benchmark creates gets the
//!   custom properties `team`, a string among a/b/c, and `priority`, an int 0..=4). One op =
//!   one request; every item must match and the page must hold min(100, matching) items.
//! - **W5 mixed**: 80 % W2 reads and 20 % W1 register ops (every fifth op), for
//!   `--mixed-secs`. One op = one read or one register op; the read/write split is printed
//!   under the table.
//!
//! PostgreSQL gets an `ANALYZE` before every run, standing in for autovacuum (off in
//! this machine's CI configuration): without it the planner keeps the statistics of the empty
//! database and reads properties with sequential scans, and W2/W3 measure that instead.
//!
//! Every workload runs once per `--clients` value for a fixed `--duration-secs` (W5:
//! `--mixed-secs`). Clients are
//! closed-loop: each sends its next op as soon as its previous one is answered, over one shared
//! HTTP client (connection pool). An op's latency goes into an HDR histogram (microseconds,
//! 3 significant digits); failed ops are counted as errors, not timed. A non-2xx answer, a
//! transport error or a wrong answer is an error; the first one of each run is printed under
//! the table, and the exit status is then 1. An unreachable database, a server that does not
//! become ready or a failed setup step stops the benchmark with exit status 1.
//!
//! Only loopback traffic: the server listens on 127.0.0.1 and the databases are the local ones,
//! reached through `--mysql-admin-dsn` / `--postgres-admin-dsn` (or `MR_TEST_MYSQL_DSN` /
//! `MR_TEST_POSTGRES_DSN`, as for the tests; default: user root on 127.0.0.1).
//!
//! ```sh
//! cargo build --release -p model-registry
//! cargo run --release -p bench -- --backends sqlite,mysql,postgres --clients 1,16 --duration-secs 10 --mixed-secs 30
//! ```

mod api;
mod database;
mod report;
mod server;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use clap::{Parser, ValueEnum};

use crate::api::Api;
use crate::database::{AdminDsns, BenchDb};
use crate::server::Server;
use crate::workload::{RunResult, Workload};

/// The database backends the server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    #[value(name = "mysql")]
    MySql,
    Postgres,
}

impl Backend {
    /// The value of the server's `--embedmd-database-type` flag.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::MySql => "mysql",
            Backend::Postgres => "postgres",
        }
    }
}

/// HTTP benchmark of the model-registry REST API (see the crate documentation).
#[derive(Debug, Parser)]
struct Args {
    /// Backends to benchmark, in this order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sqlite,mysql,postgres")]
    backends: Vec<Backend>,
    /// Concurrent clients; every workload runs once per value.
    #[arg(long, value_delimiter = ',', default_value = "1,16",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    clients: Vec<u32>,
    /// Length of each (workload, clients) run, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    duration_secs: u64,
    /// Length of each W5 (mixed reads/writes) run, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    mixed_secs: u64,
    /// Registered models that exist before the list walk (W3); created if W1 made fewer.
    #[arg(long, default_value_t = 1000)]
    seed_models: usize,
    /// The server binary (`cargo build --release -p model-registry`).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/model-registry"))]
    bin: PathBuf,
    /// Admin connection used to create and drop the MySQL/MariaDB database.
    #[arg(
        long,
        env = "MR_TEST_MYSQL_DSN",
        default_value = "mysql://root@127.0.0.1:3306",
        value_parser = clap::builder::NonEmptyStringValueParser::new()
    )]
    mysql_admin_dsn: String,
    /// Admin connection used to create and drop the PostgreSQL database.
    #[arg(
        long,
        env = "MR_TEST_POSTGRES_DSN",
        default_value = "postgres://root@127.0.0.1:5432/test",
        value_parser = clap::builder::NonEmptyStringValueParser::new()
    )]
    postgres_admin_dsn: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let bin = args.bin.canonicalize().with_context(|| {
        format!(
            "server binary {} not found; build it with `cargo build --release -p model-registry` \
             or pass --bin",
            args.bin.display()
        )
    })?;
    let admin = AdminDsns { mysql: args.mysql_admin_dsn.clone(), postgres: args.postgres_admin_dsn.clone() };
    let settings = Settings {
        clients: args.clients.clone(),
        duration: Duration::from_secs(args.duration_secs),
        mixed: Duration::from_secs(args.mixed_secs),
        seed_models: args.seed_models,
    };

    for &backend in &args.backends {
        admin.check_reachable(backend).await?;
    }

    let mut rows = Vec::new();
    let mut failure = None;
    for &backend in &args.backends {
        match bench_backend(backend, &bin, &admin, &settings).await {
            Ok(results) => rows.extend(results.into_iter().map(|result| (backend, result))),
            Err(error) => {
                failure = Some(error.context(format!("{} benchmark failed", backend.name())));
                break;
            }
        }
    }

    if !rows.is_empty() {
        println!(
            "server {}, {} s per run (W5: {} s), closed-loop clients, W3 over >= {} models\n",
            bin.display(),
            args.duration_secs,
            args.mixed_secs,
            args.seed_models
        );
        print!("{}", report::table(&rows));
    }
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(if rows.iter().any(|(_, result)| result.errors > 0) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// What every backend runs.
struct Settings {
    clients: Vec<u32>,
    duration: Duration,
    mixed: Duration,
    seed_models: usize,
}

/// One backend from start to end: a fresh database, a server on it, the workloads, and the
/// database dropped again whatever happened in between.
async fn bench_backend(backend: Backend, bin: &Path, admin: &AdminDsns, settings: &Settings) -> anyhow::Result<Vec<RunResult>> {
    let db = BenchDb::create(backend, admin).await?;
    let outcome = bench_server(backend, bin, &db, settings).await;
    let dropped = db.drop_database().await;
    let results = outcome?;
    dropped?;
    Ok(results)
}

async fn bench_server(backend: Backend, bin: &Path, db: &BenchDb, settings: &Settings) -> anyhow::Result<Vec<RunResult>> {
    let server = Server::start(bin, backend, db.server_dsn()).await?;
    let api = Api::new(server.base_url())?;
    let outcome = run_workloads(backend, &api, db, settings).await;
    server.stop().await?;
    outcome
}

/// W1 then W2 at every concurrency, then the seeding, then W3, W4 and W5 at every
/// concurrency.
async fn run_workloads(backend: Backend, api: &Api, db: &BenchDb, settings: &Settings) -> anyhow::Result<Vec<RunResult>> {
    let mut results = Vec::new();
    let mut models = Vec::new();
    for &clients in &settings.clients {
        prepare_run(backend, db, Workload::Register, clients, settings.duration).await?;
        let (result, created) = workload::register(api, clients, settings.duration).await;
        models.extend(created);
        results.push(result);
    }
    ensure!(
        !models.is_empty(),
        "W1 created no registered model, nothing to read; first error: {}",
        results.iter().find_map(|r| r.first_error.as_ref()).map_or("none".to_string(), ToString::to_string)
    );

    for &clients in &settings.clients {
        prepare_run(backend, db, Workload::PointRead, clients, settings.duration).await?;
        results.push(workload::point_reads(api, &models, clients, settings.duration).await);
    }

    let missing = settings.seed_models.saturating_sub(models.len());
    eprintln!("[{}] {} registered models exist, seeding {missing} more", backend.name(), models.len());
    models.extend(workload::seed_models(api, missing).await?);

    for &clients in &settings.clients {
        prepare_run(backend, db, Workload::ListWalk, clients, settings.duration).await?;
        results.push(workload::list_walk(api, models.len(), clients, settings.duration).await);
    }

    for &clients in &settings.clients {
        prepare_run(backend, db, Workload::FilteredSearch, clients, settings.duration).await?;
        results.push(workload::filtered_search(api, &models, clients, settings.duration).await);
    }

    for &clients in &settings.clients {
        prepare_run(backend, db, Workload::Mixed, clients, settings.mixed).await?;
        let (result, created) = workload::mixed(api, &models, clients, settings.mixed).await;
        models.extend(created);
        results.push(result);
    }
    Ok(results)
}

/// Refreshes the database's statistics and says what runs next.
async fn prepare_run(backend: Backend, db: &BenchDb, workload: Workload, clients: u32, duration: Duration) -> anyhow::Result<()> {
    db.refresh_statistics().await?;
    eprintln!("[{}] {}, {clients} clients, {} s", backend.name(), workload.label(), duration.as_secs());
    Ok(())
}
