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
//!   until it is `""`, then again from the first page. One op = one page. Each complete walk must
//!   see exactly the models created so far.
//! - **W4 filtered search**: the first page of `GET /registered_models?pageSize=100&filterQuery=`,
//!   alternately `name LIKE 'bench-1%'` (about 1/16 of the models) and
//!   `team = 'a' AND priority > 2` (about 2/15; every model the benchmark creates gets the
//!   custom properties `team`, a string among a/b/c, and `priority`, an int 0..=4). One op =
//!   one request; every item must match and the page must hold min(100, matching) items.
//! - **W5 mixed**: 80 % W2 reads and 20 % W1 register ops (every fifth op), for
//!   `--mixed-secs`. One op = one read or one register op; the read/write split is printed
//!   under the table.
//! - **W6 UI pages** (only when asked for, `--workloads w6`): one run per web UI page, `/`
//!   (the first 25 live models with each one's latest version), `/ui/?q=bench-1` (a name
//!   search), `/ui/?q=no-such-model` (a search nothing matches), `/ui/?sort=LAST_UPDATE_TIME`,
//!   `/ui/?sort=NAME&order=ASC` (first page by name), the page by name after each model in turn
//!   (its page token) and `/ui/models/{id}` (over the models, in turn). One op = one whole HTML
//!   page.
//!
//! W2, W3, W4 and W6 run at every size of `--seed-models` (ascending): before each size the
//! database is topped up to that many registered models through SQL in bulk ([`seed`]: each
//! model with a version holding a model artifact, rows as the server writes them), then W5 runs
//! at the largest size. With `--analyze with` the database's statistics are refreshed before
//! each size's runs (`ANALYZE` on PostgreSQL and SQLite, `ANALYZE TABLE` on MySQL); with
//! `without` they are left as the database keeps them itself (none on SQLite, none on a
//! PostgreSQL whose autovacuum has not run yet, InnoDB's own on MySQL). Each mode gets a
//! fresh database and server.
//!
//! The server's resident memory is read from `/proc`: once ready and idle, and the largest
//! value sampled during W5.
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
//! cargo run --release -p bench -- --backends sqlite,mysql,postgres --clients 1,16 --duration-secs 10 \
//!     --mixed-secs 30 --seed-models 4000,100000 --analyze without,with
//! ```
//!
//! Through a database topology (docs/scaling.md): `--server-hosts` puts the topology's hosts in
//! the server's DSN while the bench creates, seeds and drops the database through the admin DSN,
//! and `--server-arg` passes the server what else it needs (the bench clears `MR_*`):
//!
//! ```sh
//! cargo run --release -p bench -- --backends mysql --mysql-admin-dsn mysql://root@127.0.0.1:3311 \
//!     --server-hosts 127.0.0.1:3311,127.0.0.1:3312,127.0.0.1:3313          # Galera
//! cargo run --release -p bench -- --backends postgres --server-hosts 127.0.0.1:6433 \
//!     --server-arg=--embedmd-database-pooler=transaction                   # PgBouncer
//! ```
//!
//! With `--transfer` it measures `model-registry export` and `import` instead ([`transfer`]); with
//! `--mlflow`, MLflow's Model Registry API, optionally beside MLflow's own server ([`mlflow`]).

mod api;
mod database;
mod mlflow;
mod report;
mod seed;
mod server;
mod transfer;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
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

/// Whether the database's statistics are refreshed before the reads at each size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Statistics {
    /// As the database keeps them itself.
    Without,
    /// `ANALYZE` (MySQL: `ANALYZE TABLE`) before each size's runs.
    With,
}

impl Statistics {
    pub fn label(self) -> &'static str {
        match self {
            Statistics::Without => "without",
            Statistics::With => "analyzed",
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
    /// Registered models W2, W3 and W4 run over, one round per size; the database is topped up
    /// to each through SQL in bulk.
    #[arg(long, value_delimiter = ',', default_value = "4000,100000",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    seed_models: Vec<u64>,
    /// Workloads to run (the others are skipped; the seeding still happens).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "w1,w2,w3,w4,w5")]
    workloads: Vec<Workload>,
    /// Statistics modes, each on a fresh database and server.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "without,with")]
    analyze: Vec<Statistics>,
    /// Instead of the HTTP workloads: on each backend, seed the largest --seed-models size and
    /// time `model-registry export` of it and `import` of the file into a fresh database.
    #[arg(long)]
    transfer: bool,
    /// A flag for the server, repeatable (e.g. `--server-arg=--auth-mode=token
    /// --server-arg=--auth-token-file=tokens`, to measure what checking tokens costs).
    #[arg(long = "server-arg", value_name = "FLAG", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Hosts (`host:port,...`) the server's DSN names instead of the admin DSN's host, e.g. a
    /// Galera cluster's nodes or a PgBouncer in front of the admin DSN's PostgreSQL (with
    /// `--server-arg=--embedmd-database-pooler=transaction`). The database is still created,
    /// seeded, analyzed and dropped through the admin DSN.
    #[arg(long, value_name = "HOSTS")]
    server_hosts: Option<String>,
    /// A file whose content every request sends as `Authorization: Bearer <content>`.
    #[arg(long, value_name = "FILE")]
    bearer_token_file: Option<PathBuf>,
    /// Instead of the HTTP workloads: MLflow's API (M1-M3, [`mlflow`]) on each backend.
    #[arg(long)]
    mlflow: bool,
    /// With --mlflow: also run M1-M3 against MLflow's own server at this URL.
    #[arg(long)]
    mlflow_url: Option<String>,
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

/// One line of the results table.
pub struct Row {
    pub backend: Backend,
    pub statistics: Statistics,
    /// Registered models during the run (at its start, for the runs that add some).
    pub models: usize,
    pub result: RunResult,
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
    let admin = AdminDsns {
        mysql: args.mysql_admin_dsn.clone(),
        postgres: args.postgres_admin_dsn.clone(),
        server_hosts: args.server_hosts.clone(),
    };
    let mut sizes: Vec<usize> = args.seed_models.iter().map(|&n| n as usize).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let settings = Settings {
        clients: args.clients.clone(),
        duration: Duration::from_secs(args.duration_secs),
        mixed: Duration::from_secs(args.mixed_secs),
        sizes,
        workloads: args.workloads.clone(),
        server_args: args.server_args.clone(),
        token: match &args.bearer_token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --bearer-token-file {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => None,
        },
    };

    for &backend in &args.backends {
        admin.check_reachable(backend).await?;
    }

    if args.transfer {
        let models = *settings.sizes.last().context("--seed-models names no size")?;
        let rows = transfer::run(&bin, &admin, &args.backends, models).await?;
        print!("{}", transfer::table(&rows));
        return Ok(ExitCode::SUCCESS);
    }

    if args.mlflow {
        let mut rows = Vec::new();
        for &backend in &args.backends {
            let db = BenchDb::create(backend, &admin).await?;
            let outcome = async {
                let server = Server::start(&bin, backend, db.server_dsn(), &[]).await?;
                let results = mlflow::bench(server.base_url(), &settings.clients, settings.duration, &args.workloads).await;
                server.stop().await?;
                results
            }
            .await;
            db.drop_database().await?;
            rows.extend(outcome?.into_iter().map(|r| (format!("model-registry {}", backend.name()), r)));
        }
        if let Some(url) = &args.mlflow_url {
            rows.extend(
                mlflow::bench(url, &settings.clients, settings.duration, &args.workloads)
                    .await?
                    .into_iter()
                    .map(|r| ("mlflow server".into(), r)),
            );
        }
        print!("{}", mlflow::table(&rows));
        return Ok(if rows.iter().any(|(_, r)| r.errors > 0) { ExitCode::FAILURE } else { ExitCode::SUCCESS });
    }

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut failure = None;
    'backends: for &backend in &args.backends {
        for &statistics in &args.analyze {
            let run = Run { backend, statistics, settings: &settings };
            match run.bench(&bin, &admin).await {
                Ok((results, run_notes)) => {
                    rows.extend(results);
                    notes.extend(run_notes);
                }
                Err(error) => {
                    failure =
                        Some(error.context(format!("{} benchmark ({} statistics) failed", backend.name(), statistics.label())));
                    break 'backends;
                }
            }
        }
    }

    if !rows.is_empty() {
        println!("server {}, {} s per run (W5: {} s), closed-loop clients\n", bin.display(), args.duration_secs, args.mixed_secs);
        print!("{}", report::table(&rows));
        if !notes.is_empty() {
            println!();
            for note in &notes {
                println!("{note}");
            }
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(if rows.iter().any(|row| row.result.errors > 0) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// What every backend runs.
struct Settings {
    clients: Vec<u32>,
    duration: Duration,
    mixed: Duration,
    /// Ascending.
    sizes: Vec<usize>,
    workloads: Vec<Workload>,
    /// Extra server flags (`--server-arg`).
    server_args: Vec<String>,
    /// The bearer token every request sends.
    token: Option<String>,
}

/// What the server's commit counters say of a run.
fn writes_per_commit(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> String {
    let Some(((commits_before, writes_before), (commits, writes))) = before.zip(after) else {
        return "writes per commit not reported by this build".to_string();
    };
    let (commits, writes) = (commits - commits_before, writes - writes_before);
    format!("{writes} writes in {commits} commits, {:.1} per commit", writes as f64 / commits.max(1) as f64)
}

/// One backend in one statistics mode, from start to end.
struct Run<'a> {
    backend: Backend,
    statistics: Statistics,
    settings: &'a Settings,
}

impl Run<'_> {
    /// A fresh database, a server on it, the workloads, and the database dropped again whatever
    /// happened in between.
    async fn bench(&self, bin: &Path, admin: &AdminDsns) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
        let db = BenchDb::create(self.backend, admin).await?;
        let outcome = self.bench_server(bin, &db).await;
        let dropped = db.drop_database().await;
        let results = outcome?;
        dropped?;
        Ok(results)
    }

    async fn bench_server(&self, bin: &Path, db: &BenchDb) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
        let mut server = Server::start(bin, self.backend, db.server_dsn(), &self.settings.server_args).await?;
        let mut api = Api::new(server.base_url(), self.settings.token.as_deref())?;
        let mut notes = vec![self.note(format!("idle RSS after start {:.1} MiB", server.rss_mib()?))];
        let outcome = self.workloads(&mut api, &mut server, db, &mut notes).await;
        server.stop().await?;
        Ok((outcome?, notes))
    }

    fn note(&self, text: String) -> String {
        format!("{} ({} statistics): {text}", self.backend.name(), self.statistics.label())
    }

    fn row(&self, models: usize, result: RunResult) -> Row {
        Row { backend: self.backend, statistics: self.statistics, models, result }
    }

    /// W1 at every concurrency; then, for each size, the seeding and W2, W3 and W4 at every
    /// concurrency; then W5 at every concurrency.
    async fn workloads(
        &self,
        api: &mut Api,
        server: &mut Server,
        db: &BenchDb,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<Vec<Row>> {
        let settings = self.settings;
        let mut rows = Vec::new();
        let mut models = Vec::new();
        for &clients in self.clients(Workload::Register) {
            self.announce(Workload::Register, clients, settings.duration);
            let before = api.commit_totals().await?;
            let (mut result, created) = workload::register(api, clients, settings.duration).await;
            result.note = Some(writes_per_commit(before, api.commit_totals().await?));
            rows.push(self.row(models.len(), result));
            models.extend(created);
        }

        for &size in &settings.sizes {
            let missing = size.saturating_sub(models.len());
            eprintln!("[{}] {} registered models exist, seeding {missing} more", self.backend.name(), models.len());
            let seeded = seed::seed(self.backend, db.direct_dsn(), missing).await?;
            notes.push(self.note(format!(
                "seeded {missing} models ({} rows) in {:.1} s, {:.0} rows/s",
                seeded.rows,
                seeded.elapsed.as_secs_f64(),
                seeded.rows as f64 / seeded.elapsed.as_secs_f64()
            )));
            models.extend(seeded.models);
            if self.statistics == Statistics::With {
                // Sessions opened before may keep the plans (and, on SQLite, the statistics)
                // they had: the server starts again after the ANALYZE.
                db.analyze().await?;
                server.restart().await?;
                *api = Api::new(server.base_url(), self.settings.token.as_deref())?;
            }
            for &clients in self.clients(Workload::PointRead) {
                self.announce(Workload::PointRead, clients, settings.duration);
                rows.push(self.row(models.len(), workload::point_reads(api, &models, clients, settings.duration).await));
            }
            for &clients in self.clients(Workload::ListWalk) {
                self.announce(Workload::ListWalk, clients, settings.duration);
                rows.push(self.row(models.len(), workload::list_walk(api, models.len(), clients, settings.duration).await));
            }
            for &clients in self.clients(Workload::FilteredSearch) {
                self.announce(Workload::FilteredSearch, clients, settings.duration);
                rows.push(self.row(models.len(), workload::filtered_search(api, &models, clients, settings.duration).await));
            }
            for &clients in self.clients(Workload::UiPages) {
                for page in workload::UiPage::ALL {
                    self.announce(Workload::UiPages, clients, settings.duration);
                    rows.push(self.row(models.len(), workload::ui_page(api, page, &models, clients, settings.duration).await));
                }
            }
        }

        let mut peak_rss: f64 = 0.0;
        for &clients in self.clients(Workload::Mixed) {
            self.announce(Workload::Mixed, clients, settings.mixed);
            let before = api.commit_totals().await?;
            let (mut result, created) =
                server.sampling_rss(workload::mixed(api, &models, clients, settings.mixed), &mut peak_rss).await?;
            let commits = writes_per_commit(before, api.commit_totals().await?);
            result.note = Some(format!("{}; {commits}", result.note.unwrap_or_default()));
            rows.push(self.row(models.len(), result));
            models.extend(created);
        }
        if settings.workloads.contains(&Workload::Mixed) {
            notes.push(self.note(format!("largest RSS sampled during W5 {peak_rss:.1} MiB")));
        }
        Ok(rows)
    }

    /// The client counts `workload` runs at: none when it was not asked for.
    fn clients(&self, workload: Workload) -> &[u32] {
        match self.settings.workloads.contains(&workload) {
            true => &self.settings.clients,
            false => &[],
        }
    }

    fn announce(&self, workload: Workload, clients: u32, duration: Duration) {
        eprintln!(
            "[{} {}] {}, {clients} clients, {} s",
            self.backend.name(),
            self.statistics.label(),
            workload.label(),
            duration.as_secs()
        );
    }
}
