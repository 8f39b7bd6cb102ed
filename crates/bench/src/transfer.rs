//! `--transfer`: the rates of `model-registry export` and `model-registry import`. Per backend:
//! a fresh database, migrated by a server start, seeded in bulk with the largest
//! `--seed-models` size (each model with a version and a model artifact), exported to a file by
//! the binary, and the file imported by the binary into another fresh database of the same
//! backend. Each command's wall time and peak resident memory (`VmHWM`, sampled from `/proc`
//! while it runs) are reported with the file's size.

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tempfile::NamedTempFile;

use crate::database::{AdminDsns, BenchDb};
use crate::server::Server;
use crate::{seed, Backend};

/// How often a command's peak memory is read while it runs.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// One command's run.
struct Timing {
    elapsed: Duration,
    peak_rss_mib: f64,
}

/// One backend's line of the table.
pub struct TransferRow {
    backend: Backend,
    models: usize,
    /// Rows in the file (every MLMD table).
    rows: u64,
    file_bytes: u64,
    export: Timing,
    import: Timing,
}

pub async fn run(bin: &Path, admin: &AdminDsns, backends: &[Backend], models: usize) -> anyhow::Result<Vec<TransferRow>> {
    let mut rows = Vec::new();
    for &backend in backends {
        let source = BenchDb::create(backend, admin).await?;
        let outcome = measure(bin, admin, backend, &source, models).await;
        let dropped = source.drop_database().await;
        rows.push(outcome.with_context(|| format!("{} transfer benchmark failed", backend.name()))?);
        dropped?;
    }
    Ok(rows)
}

async fn measure(
    bin: &Path,
    admin: &AdminDsns,
    backend: Backend,
    source: &BenchDb,
    models: usize,
) -> anyhow::Result<TransferRow> {
    // A server start migrates the database and creates the registry's types.
    Server::start(bin, backend, source.server_dsn(), &[]).await?.stop().await?;
    let seeded = seed::seed(backend, source.direct_dsn(), models).await?;
    eprintln!("[{}] seeded {models} models ({} rows) in {:.1} s", backend.name(), seeded.rows, seeded.elapsed.as_secs_f64());
    let dir = tempfile::Builder::new().prefix("mr_bench_transfer_").tempdir()?;
    let file = dir.path().join("registry.jsonl");
    let file_arg = file.to_str().context("temporary path is not UTF-8")?;
    eprintln!("[{}] export", backend.name());
    let export = timed(bin, &["export", "--output", file_arg], backend, source.server_dsn()).await?;
    let file_bytes = std::fs::metadata(&file)?.len();
    // Every line but the header and the end line is a row.
    let lines = std::io::BufReader::new(std::fs::File::open(&file)?).lines().count() as u64;
    let target = BenchDb::create(backend, admin).await?;
    eprintln!("[{}] import", backend.name());
    let import = timed(bin, &["import", "--input", file_arg], backend, target.server_dsn()).await;
    target.drop_database().await?;
    Ok(TransferRow { backend, models, rows: lines.saturating_sub(2), file_bytes, export, import: import? })
}

/// Runs the binary with `args` on the database; its wall time and peak memory.
async fn timed(bin: &Path, args: &[&str], backend: Backend, dsn: &str) -> anyhow::Result<Timing> {
    let log = NamedTempFile::with_prefix("mr_bench_transfer_")?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bin)
        .args(args)
        .args(["--embedmd-database-type", backend.name(), "--embedmd-database-dsn", dsn])
        .env("RUST_LOG", "warn")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen()?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let pid = child.id().context("the command exited at once")?;
    let mut peak_kib = 0.0f64;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            () = tokio::time::sleep(RSS_SAMPLE_EVERY) => peak_kib = peak_kib.max(peak_rss_kib(pid).unwrap_or(0.0)),
        }
    };
    let elapsed = started.elapsed();
    if !status.success() {
        bail!("`model-registry {}` failed:\n{}", args.join(" "), std::fs::read_to_string(log.path()).unwrap_or_default());
    }
    Ok(Timing { elapsed, peak_rss_mib: peak_kib / 1024.0 })
}

/// `VmHWM` (the resident set's high-water mark) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub fn table(rows: &[TransferRow]) -> String {
    let mut out = format!(
        "{:<9} {:>7} {:>9} {:>9} {:>9} {:>11} {:>10} {:>9} {:>11} {:>10}\n",
        "backend", "models", "rows", "file MiB", "export s", "export r/s", "export MiB", "import s", "import r/s", "import MiB"
    );
    for row in rows {
        let rate = |t: &Timing| row.rows as f64 / t.elapsed.as_secs_f64();
        let _ = writeln!(
            out,
            "{:<9} {:>7} {:>9} {:>9.1} {:>9.1} {:>11.0} {:>10.1} {:>9.1} {:>11.0} {:>10.1}",
            row.backend.name(),
            row.models,
            row.rows,
            row.file_bytes as f64 / f64::from(1 << 20),
            row.export.elapsed.as_secs_f64(),
            rate(&row.export),
            row.export.peak_rss_mib,
            row.import.elapsed.as_secs_f64(),
            rate(&row.import),
            row.import.peak_rss_mib
        );
    }
    out.push_str("\nrows: every MLMD row in the file; MiB columns after a time: the command's peak resident memory (VmHWM)\n");
    out
}
