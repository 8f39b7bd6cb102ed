//! The `export`, `import` and `backup` commands: files, progress and summaries around
//! [`embedmd::transfer`], on the database the usual flags name.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use embedmd::transfer::{self, Observer, Summary};
use embedmd::Table;

use crate::cli::{BackupArgs, DatabaseArgs, ExportArgs, ImportArgs};
use crate::config;
use crate::registry::mlmd_types;

/// Buffers between the database and the file.
const FILE_BUFFER_BYTES: usize = 1 << 20;

/// The progress line is redrawn at most this often...
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// ...and the clock looked at once per this many rows.
const PROGRESS_CHECK_ROWS: u64 = 512;

pub async fn export(args: &ExportArgs, database: &DatabaseArgs) -> anyhow::Result<()> {
    let target = config::datastore_target(database)?;
    let started = Instant::now();
    let summary = if args.output == "-" {
        // The reading end (an import, say) shows progress: two lines on one terminal would fight.
        let out = BufWriter::with_capacity(FILE_BUFFER_BYTES, std::io::stdout().lock());
        transfer::export(&target, out, &mut ()).await?
    } else {
        let path = Path::new(&args.output);
        let partial = partial_name(path)?;
        let mut progress = Progress::new("exporting");
        let written = write_file(&target, &partial, &mut progress).await;
        progress.clear();
        let finished = written.and_then(|s| {
            std::fs::rename(&partial, path).with_context(|| format!("cannot rename to {}", path.display())).map(|()| s)
        });
        if finished.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        finished?
    };
    let to = if args.output == "-" { "stdout".to_owned() } else { args.output.clone() };
    report(&format!("exported {} to {to}", target.describe()), &summary, started.elapsed());
    Ok(())
}

/// The export in a file of its own, synced, so that the final name only ever shows a whole one.
async fn write_file(target: &embedmd::ConnectTarget, partial: &Path, progress: &mut Progress) -> anyhow::Result<Summary> {
    let file = File::create(partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let summary = transfer::export(target, BufWriter::with_capacity(FILE_BUFFER_BYTES, &file), progress).await?;
    file.sync_all().with_context(|| format!("cannot sync {}", partial.display()))?;
    Ok(summary)
}

fn partial_name(path: &Path) -> anyhow::Result<PathBuf> {
    let name = path.file_name().with_context(|| format!("{} is not a file name", path.display()))?;
    Ok(path.with_file_name(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id())))
}

pub async fn import(args: &ImportArgs, database: &DatabaseArgs) -> anyhow::Result<()> {
    let target = config::datastore_target(database)?;
    let started = Instant::now();
    let mut progress = Progress::new("importing");
    let imported = if args.input == "-" {
        transfer::import(&target, std::io::stdin().lock(), &mlmd_types(), &mut progress).await
    } else {
        let file = File::open(&args.input).with_context(|| format!("cannot open {}", args.input))?;
        transfer::import(&target, BufReader::with_capacity(FILE_BUFFER_BYTES, file), &mlmd_types(), &mut progress).await
    };
    progress.clear();
    // The target may be a new SQLite file: its directory is the usual problem.
    let summary = imported.map_err(|e| anyhow::anyhow!(config::open_error(&e, &target)))?;
    let from = if args.input == "-" { "stdin" } else { &args.input };
    report(&format!("imported {from} into {}", target.describe()), &summary, started.elapsed());
    Ok(())
}

pub async fn backup(args: &BackupArgs, database: &DatabaseArgs) -> anyhow::Result<()> {
    let target = config::datastore_target(database)?;
    let started = Instant::now();
    let bytes = transfer::backup(&target, &args.output).await?;
    eprintln!(
        "backed up {} to {} ({}) in {:.1} s",
        target.describe(),
        args.output.display(),
        size(bytes),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What was moved, on stderr (stdout may be carrying the export).
fn report(what: &str, summary: &Summary, elapsed: Duration) {
    let rows = summary.total_rows();
    let seconds = elapsed.as_secs_f64();
    let mut text = format!(
        "{what}: {rows} rows, {} in {seconds:.1} s ({:.0} rows/s); source {} at migration {}\n",
        size(summary.bytes),
        rows as f64 / seconds.max(f64::EPSILON),
        summary.source.layout.migrations_dir(),
        summary.source.migration_version.map_or("none".to_owned(), |v| v.to_string()),
    );
    for (table, count) in &summary.rows {
        text.push_str(&format!("  {:<18} {count:>10}\n", table.camel_name()));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} bytes"),
    }
}

/// Rows done and the rate, redrawn in place on stderr when it is a terminal; nothing otherwise.
struct Progress {
    verb: &'static str,
    enabled: bool,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    fn new(verb: &'static str) -> Self {
        Progress { verb, enabled: std::io::stderr().is_terminal(), started: Instant::now(), drawn: None }
    }

    fn clear(&mut self) {
        if self.drawn.take().is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

impl Observer for Progress {
    fn row(&mut self, table: Table, rows_of_table: u64, rows: u64) {
        if !self.enabled || !rows.is_multiple_of(PROGRESS_CHECK_ROWS) {
            return;
        }
        let now = Instant::now();
        if self.drawn.is_some_and(|at| now - at < PROGRESS_INTERVAL) {
            return;
        }
        self.drawn = Some(now);
        let rate = rows as f64 / (now - self.started).as_secs_f64().max(f64::EPSILON);
        eprint!("\r\x1b[K{}: {rows} rows, {rate:.0} rows/s ({} {rows_of_table})", self.verb, table.camel_name());
    }
}
