//! Moving a whole registry between databases of any dialect, and online copies of SQLite files.
//!
//! The export file is JSON Lines, format version [`FORMAT_VERSION`]:
//!
//! ```text
//! {"format":"model-registry-export","format_version":1,"mlmd_schema_version":10,"source":{"layout":"sqlite","migration_version":21},"exported_at_ms":1796000000000,"exporter":"embedmd 0.1.0"}
//! {"table":"Type","id":1,"name":"mlmd.Dataset","type_kind":1}
//! {"table":"ArtifactProperty","artifact_id":4,"name":"c","is_custom_property":true,"byte_value":"AP8="}
//! ...
//! {"end":{"rows":{"Type":16,"TypeProperty":80,...},"next_ids":{"Type":17,"Artifact":5,...}}}
//! ```
//!
//! One row per line, tables in [`TABLES`] order, each row's columns under MLMD's names with
//! values as stored: integers as JSON integers, doubles as the shortest JSON number that reads
//! back the same bits (`"NaN"`, `"Infinity"`, `"-Infinity"` as strings), bytes in base64, NULL
//! columns left out. The end line counts the rows of every table, so a file cut at a line
//! boundary is told from a whole one, and gives the id each table's sequence hands out next.

mod export;
mod import;
pub mod tables;

use std::io::{BufRead, Write};
use std::path::Path;

pub use tables::{Column, Kind, Order, TableSpec, TABLES};

use crate::arg::Arg;
use crate::conn::{Conn, Unpooled};
use crate::dialect::Table;
use crate::dsn::ConnectTarget;
use crate::migrate::MigrateError;
use crate::types::TypeSpec;

/// The `format` of every export's header.
pub const FORMAT_NAME: &str = "model-registry-export";

/// The layout of the lines; an import refuses any other.
pub const FORMAT_VERSION: u64 = 1;

/// Rows per SELECT while exporting. The rows stream to the file as they arrive, so this bounds
/// the length of each statement (a server-wide statement timeout never sees a long one), not
/// memory.
pub const EXPORT_CHUNK_ROWS: usize = 10_000;

/// Rows per INSERT while importing: 9 000 bind values for the widest table, under SQLite's
/// 32 766 per statement (MySQL and PostgreSQL allow 65 535).
pub const IMPORT_ROWS_PER_INSERT: usize = 1_000;

/// An INSERT is sent once its values reach this size: under MariaDB's default
/// `max_allowed_packet` (16 MiB) whatever the rows hold.
pub const IMPORT_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The longest line an import reads. A line holds one row, whose longest value is a
/// `MEDIUMTEXT` or a base64 `MEDIUMBLOB` (16 MiB on MySQL).
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

const SQLITE_MAX_BINDS: usize = 32_766;
const _: () = assert!(IMPORT_ROWS_PER_INSERT * tables::MAX_COLUMNS <= SQLITE_MAX_BINDS);

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The file is malformed at this line (1-based).
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    /// The file is well formed but cannot be imported by this release.
    #[error("{0}")]
    Unsupported(String),
    /// The import target holds data (named).
    #[error("the target database is not empty: {0}; import writes only into an empty database")]
    NotEmpty(String),
    /// The database cannot be exported or backed up as it is.
    #[error("{0}")]
    Source(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Datastore(#[from] crate::Error),
    #[error("{context}: {source}{}", hint(source))]
    Db { context: String, source: sqlx::Error },
}

/// What a database's refusal most likely means for rows that another dialect accepted.
fn hint(error: &sqlx::Error) -> &'static str {
    let Some(db) = error.as_database_error() else { return "" };
    if db.is_unique_violation() {
        " (MySQL and MariaDB compare names case-insensitively: names that differ only in case collide there)"
    } else if db.is_foreign_key_violation() {
        " (PostgreSQL's foreign keys refuse rows whose owner is missing, which SQLite and MySQL keep)"
    } else {
        ""
    }
}

impl TransferError {
    fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> TransferError {
        let context = context.into();
        move |source| TransferError::Db { context, source }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TransferError {
        let what = what.into();
        move |source| TransferError::Io { what, source }
    }
}

/// Rows moved, per table in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub rows: Vec<(Table, u64)>,
    /// Bytes of the file written or read.
    pub bytes: u64,
    /// The source's layout and migration version, as the header names them.
    pub source: Source,
}

impl Summary {
    pub fn total_rows(&self) -> u64 {
        self.rows.iter().map(|(_, n)| n).sum()
    }
}

/// Where an export came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub layout: crate::Dialect,
    pub migration_version: Option<u64>,
}

/// Told of every row as it is written or read.
pub trait Observer {
    fn row(&mut self, table: Table, rows_of_table: u64, rows: u64);
}

/// For callers that need no progress.
impl Observer for () {
    fn row(&mut self, _: Table, _: u64, _: u64) {}
}

/// Writes the whole database to `out` from one consistent snapshot, while others keep
/// writing. Reads on a connection of its own, in chunks of [`EXPORT_CHUNK_ROWS`].
pub async fn export(target: &ConnectTarget, out: impl Write, observer: &mut dyn Observer) -> Result<Summary, TransferError> {
    export::run(&existing(target)?, out, observer).await
}

/// Loads an export into an empty database (migrated first), in one transaction: everything
/// or, on any error, no row. `types` are the caller's MLMD types: a database holding only
/// those, MLMD's simple types and no other row counts as empty; its types are replaced by the
/// file's, so every row keeps its type id.
pub async fn import(
    target: &ConnectTarget,
    input: impl BufRead,
    types: &[TypeSpec],
    observer: &mut dyn Observer,
) -> Result<Summary, TransferError> {
    import::run(target, input, types, observer).await
}

/// Copies an SQLite database to a new file at `output` with `VACUUM INTO`, a consistent
/// snapshot taken while writers go on. The copy appears under its name only once complete.
/// Returns its size.
pub async fn backup(target: &ConnectTarget, output: &Path) -> Result<u64, TransferError> {
    let ConnectTarget::Sqlite(_) = target else {
        return Err(TransferError::Source(format!(
            "backup copies SQLite files, and this is a {}: back it up with the database's own tools \
             (mariadb-backup or mysqldump, pg_basebackup or pg_dump), or move it with `model-registry export`",
            target.describe()
        )));
    };
    if output.exists() {
        return Err(TransferError::Source(format!("{} exists: backup writes a new file", output.display())));
    }
    let name = output.file_name().ok_or_else(|| TransferError::Source(format!("{} is not a file name", output.display())))?;
    let partial = output.with_file_name(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    let copied = match existing(target) {
        Ok(source) => vacuum_into(&source, &partial).await,
        Err(e) => Err(e),
    };
    let finished = copied.and_then(|()| {
        let file = std::fs::File::open(&partial).map_err(TransferError::io(format!("cannot open {}", partial.display())))?;
        file.sync_all().map_err(TransferError::io(format!("cannot sync {}", partial.display())))?;
        std::fs::rename(&partial, output).map_err(TransferError::io(format!("cannot rename to {}", output.display())))?;
        sync_parent(output)?;
        Ok(file.metadata().map_err(TransferError::io(format!("cannot read {}", output.display())))?.len())
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    finished
}

async fn vacuum_into(target: &ConnectTarget, partial: &Path) -> Result<(), TransferError> {
    let mut conn = Unpooled::open(target).await.map_err(TransferError::db(format!("cannot open {}", target.describe())))?;
    let path = partial.to_string_lossy().into_owned();
    let copied = conn.conn().execute("VACUUM INTO ?", &[Arg::from(path.as_str())]).await;
    conn.close().await;
    copied.map(drop).map_err(TransferError::db(format!("cannot copy {} to {path}", target.describe())))
}

/// Whether `table` exists (in the current schema, on PostgreSQL).
async fn table_exists(conn: &mut Conn<'_>, dialect: crate::Dialect, table: Table) -> Result<bool, TransferError> {
    let name = dialect.catalog_name(table);
    let found = conn.exists(dialect.table_exists_query(), &[Arg::from(name)]).await;
    found.map_err(TransferError::db("cannot read the database's tables"))
}

/// Makes a rename durable: the directory entry is data too.
fn sync_parent(path: &Path) -> Result<(), TransferError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::File::open(parent).map_err(TransferError::io(format!("cannot open {}", parent.display())))?;
    dir.sync_all().map_err(TransferError::io(format!("cannot sync {}", parent.display())))
}

/// The target as a source: an SQLite file that is missing is an error, not a new database.
fn existing(target: &ConnectTarget) -> Result<ConnectTarget, TransferError> {
    match target {
        ConnectTarget::Sqlite(o) if !o.get_filename().is_file() => {
            Err(TransferError::Source(format!("there is no SQLite database at {}", o.get_filename().display())))
        }
        ConnectTarget::Sqlite(o) => Ok(ConnectTarget::Sqlite(o.clone().create_if_missing(false))),
        other => Ok(other.clone()),
    }
}
