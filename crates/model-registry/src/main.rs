use std::io::IsTerminal;
use std::process::ExitCode;

use embedmd::{Connection, MigrateError};
use model_registry::app::{BindError, Endpoint};
use model_registry::cli::{self, AuthAction, Command, LogFormat, MigrateAction};
use model_registry::config::{self, ServerConfig};
use model_registry::{app, transfer, App};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let home = std::env::var_os("HOME").map(Into::into);
    let cli = match cli::parse_from(std::env::args_os(), home) {
        Ok(cli) => cli,
        Err(cli::CliError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(cli.log_format, cli.log_level);
    let outcome = match &cli.command {
        Command::Proxy(proxy) => serve(proxy, &cli.database).await,
        Command::Migrate { action } => migrate(action, &cli.database).await,
        Command::Export(args) => transfer::export(args, &cli.database).await,
        Command::Import(args) => transfer::import(args, &cli.database).await,
        Command::Backup(args) => transfer::backup(args, &cli.database).await,
        Command::Auth { action: AuthAction::HashToken { name, role } } => hash_token(name.as_deref(), role.as_deref()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Our errors already carry their cause in their own text.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--log-level` for everything; RUST_LOG's directives, when set, come after it and so win.
/// Colours only on a terminal (and without NO_COLOR): a file or a pipe gets plain text, which
/// log collectors would otherwise store with the escape codes.
fn init_logging(format: LogFormat, level: tracing::Level) {
    let refinements = std::env::var("RUST_LOG").unwrap_or_default();
    let filter = EnvFilter::builder().parse_lossy(format!("{},{refinements}", LevelFilter::from_level(level)));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match format {
        LogFormat::Text => logs.init(),
        // The request's span (with its id) on every line of it, the event's fields at the top.
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
}

async fn serve(proxy: &cli::ProxyArgs, database: &cli::DatabaseArgs) -> anyhow::Result<()> {
    let mut config = ServerConfig::from_args(proxy, database)?;
    config.auth = model_registry::auth::Auth::new(&config::auth_settings(&proxy.auth))?;
    if let (Some(cert), Some(key)) = (&proxy.tls_cert_file, &proxy.tls_key_file) {
        let files = model_registry::http::TlsFiles { cert: cert.clone(), key: key.clone() };
        config.tls = Some(model_registry::http::Tls::load(&files)?);
    }
    let app = App::build(config).await.map_err(|e| anyhow::anyhow!("{e}; {}", bind_advice(&e)))?;
    app.run_until(app::shutdown_signal()).await?;
    Ok(())
}

/// One line of stdin (a trailing newline is not part of the token) to its SHA-256.
fn hash_token(name: Option<&str>, role: Option<&str>) -> anyhow::Result<()> {
    let mut token = String::new();
    std::io::stdin().read_line(&mut token)?;
    let token = token.trim_end_matches(['\n', '\r']);
    if token.is_empty() {
        anyhow::bail!("no token on stdin: e.g. `printf %s \"$TOKEN\" | model-registry auth hash-token`");
    }
    let hash = model_registry::auth::hash_token(token);
    match (name, role) {
        (Some(name), Some(role)) => println!("{name} {role} {hash}"),
        _ => println!("{hash}"),
    }
    Ok(())
}

/// What to do about a port that could not be bound, naming the flags and variables that move it.
fn bind_advice(error: &BindError) -> String {
    let cause = match error.source.kind() {
        std::io::ErrorKind::AddrInUse => "another process is listening there: stop it or ",
        std::io::ErrorKind::PermissionDenied if error.port < 1024 => "ports below 1024 need privileges: ",
        std::io::ErrorKind::AddrNotAvailable => "the address is not one of this machine's: ",
        _ => "",
    };
    let port = match error.endpoint {
        Endpoint::Api => "--port/-p (MR_PORT)",
        Endpoint::Metrics => "--metrics-port (MR_METRICS_PORT)",
    };
    format!("{cause}choose another port with {port} or another address with --hostname/-n (MR_HOSTNAME)")
}

async fn migrate(action: &MigrateAction, database: &cli::DatabaseArgs) -> anyhow::Result<()> {
    if let MigrateAction::Down { all: true, yes: false, .. } = action {
        anyhow::bail!("`migrate down --all` drops every table, MLMD's data included; add --yes to confirm");
    }
    if let MigrateAction::Down { steps: None, all: false, .. } = action {
        anyhow::bail!("say how many migrations to revert (`migrate down N`) or `migrate down --all --yes`");
    }
    let target = config::datastore_target(database)?;
    let connection = Connection::open(&target, &config::pool_config(database))
        .await
        .map_err(|e| anyhow::anyhow!(config::open_error(&e, &target)))?;
    let migrator = &connection.migrator;
    let result: Result<(), MigrateError> = async {
        match action {
            MigrateAction::Up { steps } => print_report(migrator.up(*steps).await?),
            MigrateAction::Down { steps, .. } => print_report(migrator.down(*steps).await?),
            MigrateAction::Goto { version } => print_report(migrator.goto(*version).await?),
            MigrateAction::Force { version } => {
                migrator.force(*version).await?;
                println!("forced version {version} (clean)");
            }
            MigrateAction::Status => {
                let status = migrator.status().await?;
                let current = status.current.version.map_or("none".to_owned(), |v| v.to_string());
                println!("layout:  {:?}", status.dialect);
                println!("version: {current}{}", if status.current.dirty { " (dirty)" } else { "" });
                println!("latest:  {}", status.latest.map_or("none".to_owned(), |v| v.to_string()));
                println!("pending: {}", status.pending.len());
            }
        }
        Ok(())
    }
    .await;
    connection.pool.close().await;
    Ok(result?)
}

fn print_report(report: embedmd::Report) {
    let show = |v: Option<u64>| v.map_or("none".to_owned(), |v| v.to_string());
    if report.no_change() {
        println!("no change (version {})", show(report.to));
    } else {
        println!("migrated {} -> {} ({} steps)", show(report.from), show(report.to), report.applied.len());
    }
}
