//! Reading every table from one snapshot, in key order and bounded chunks, straight into lines.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::tables::{Column, Kind, Order, TableSpec, TABLES};
use super::{table_exists, Observer, Source, Summary, TransferError, EXPORT_CHUNK_ROWS, FORMAT_NAME, FORMAT_VERSION};
use crate::arg::{Arg, ArgKind};
use crate::conn::{Conn, Unpooled};
use crate::dialect::{Dialect, Table};
use crate::dsn::ConnectTarget;
use crate::migrate::{MigrationSet, MLMD_SCHEMA_VERSION};
use crate::{Connection, PoolConfig};

pub(super) async fn run(target: &ConnectTarget, out: impl Write, observer: &mut dyn Observer) -> Result<Summary, TransferError> {
    let connection = Connection::open(target, &PoolConfig::default()).await?;
    let dialect = connection.dialect;
    let version = connection.pool.schema_version().await;
    connection.pool.close().await;
    let source = Source { layout: dialect, migration_version: exportable_version(dialect, version?)? };

    let mut conn = Unpooled::open(target).await.map_err(TransferError::db(format!("cannot connect to {}", target.describe())))?;
    let exported = in_snapshot(&mut conn.conn(), dialect, &source, out, observer).await;
    // A read-only transaction: ending it either way keeps nothing.
    let _ = conn.conn().execute_script("ROLLBACK").await;
    conn.close().await;
    exported
}

/// The migration version an export may start from: clean, and one this release knows.
fn exportable_version(dialect: Dialect, version: Option<crate::SchemaVersion>) -> Result<Option<u64>, TransferError> {
    let Some(version) = version else { return Ok(None) };
    let shown = version.version.map_or("none".to_owned(), |v| v.to_string());
    if version.dirty {
        return Err(TransferError::Source(format!(
            "the database schema is dirty at version {shown}: a migration failed part-way; repair it and run \
             `model-registry migrate force <version>` before exporting"
        )));
    }
    match version.version {
        Some(v) if MigrationSet::for_dialect(dialect).get(v).is_none() => Err(TransferError::Source(format!(
            "the database is at migration {v}, which this release does not know: export it with the release that migrated it"
        ))),
        v => Ok(v),
    }
}

async fn in_snapshot(
    conn: &mut Conn<'_>,
    dialect: Dialect,
    source: &Source,
    out: impl Write,
    observer: &mut dyn Observer,
) -> Result<Summary, TransferError> {
    for statement in dialect.snapshot_begin() {
        conn.execute_script(statement).await.map_err(TransferError::db("cannot start a snapshot"))?;
    }
    check_mlmd_env(conn, dialect).await?;
    let mut out = Counting { inner: out, bytes: 0 };
    let write_error = TransferError::io("cannot write the export");
    write_header(&mut out, source).map_err(write_error)?;

    let mut rows = Vec::with_capacity(TABLES.len());
    let mut next_ids = Vec::new();
    let mut total = 0;
    for spec in &TABLES {
        let (count, last_id) = export_table(conn, dialect, spec, &mut out, &mut total, observer).await?;
        rows.push((spec.table, count));
        if spec.has_id() {
            let stored: Option<(Option<i64>,)> = conn
                .fetch_optional(&dialect.next_id_query(spec.table), &[])
                .await
                .map_err(TransferError::db(format!("cannot read the id sequence of {}", spec.table.camel_name())))?;
            let stored = stored.and_then(|(next,)| next);
            // 1 is where every sequence starts: nothing to carry.
            if let Some(next) = stored.max(last_id.map(|id| id + 1)).filter(|next| *next > 1) {
                next_ids.push((spec.table, next));
            }
        }
    }
    write_end(&mut out, &rows, &next_ids).and_then(|()| out.flush()).map_err(TransferError::io("cannot write the export"))?;
    Ok(Summary { rows, bytes: out.bytes, source: source.clone() })
}

/// Exactly one MLMDEnv row, at the schema version this release reads.
async fn check_mlmd_env(conn: &mut Conn<'_>, dialect: Dialect) -> Result<(), TransferError> {
    if !table_exists(conn, dialect, Table::MlmdEnv).await? {
        return Err(TransferError::Source("the database holds no MLMD schema (no MLMDEnv table)".into()));
    }
    let sql = format!("SELECT {} FROM {}", dialect.as_i64("schema_version"), dialect.table(Table::MlmdEnv));
    let versions: Vec<(i64,)> = conn.fetch_all(&sql, &[]).await.map_err(TransferError::db("cannot read MLMDEnv"))?;
    match versions.as_slice() {
        [(v,)] if *v == MLMD_SCHEMA_VERSION => Ok(()),
        other => Err(TransferError::Source(format!(
            "MLMDEnv holds {other:?}; an export needs exactly one row, schema version {MLMD_SCHEMA_VERSION}"
        ))),
    }
}

/// Streams one table to `out`; returns its row count and its highest id.
async fn export_table(
    conn: &mut Conn<'_>,
    dialect: Dialect,
    spec: &TableSpec,
    out: &mut impl Write,
    total: &mut u64,
    observer: &mut dyn Observer,
) -> Result<(u64, Option<i64>), TransferError> {
    // Aliased, so that ORDER BY and WHERE name the columns themselves (and their indexes), not a
    // cast of them that PostgreSQL would sort on its own.
    let columns = spec
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} AS c{i}", if is_integer(c) { dialect.as_i64(c.name) } else { c.name.to_owned() }))
        .collect::<Vec<_>>()
        .join(", ");
    let kinds: Vec<ArgKind> = spec.columns.iter().map(arg_kind).collect();
    let (first, second) = (dialect.placeholder(1), dialect.placeholder(2));
    let mut count = 0u64;
    let mut after = i64::MIN;
    let mut last_id = None;
    let context = format!("cannot read {}", spec.table.camel_name());
    loop {
        let from_key = after;
        // Each chunk is its own statement; the snapshot keeps them consistent with each other.
        let (sql, upper) = match spec.order {
            Order::Id => (
                format!(
                    "SELECT {columns} FROM {} WHERE id > {first} ORDER BY id LIMIT {EXPORT_CHUNK_ROWS}",
                    dialect.table(spec.table)
                ),
                None,
            ),
            Order::Owner { owner, then } => {
                let (from, order) = match then {
                    Some(then) => (dialect.table(spec.table).to_owned(), format!("{owner}, {then}")),
                    None => {
                        let (from, order) = dialect.event_path_scan();
                        (from, order.to_owned())
                    }
                };
                // Whole owners per chunk: the owner of the chunk's last row bounds it.
                let bound = format!(
                    "SELECT {} AS bound FROM {from} WHERE {owner} > {first} ORDER BY {owner} LIMIT 1 OFFSET {}",
                    dialect.as_i64(owner),
                    EXPORT_CHUNK_ROWS - 1
                );
                let upper =
                    conn.fetch_optional_i64(&bound, &[Arg::from(from_key)]).await.map_err(TransferError::db(context.clone()))?;
                let range = if upper.is_some() { format!(" AND {owner} <= {second}") } else { String::new() };
                (format!("SELECT {columns} FROM {from} WHERE {owner} > {first}{range} ORDER BY {order}"), upper)
            }
        };
        let mut chunk = 0usize;
        let mut write = |cells: Vec<Arg>| -> Result<(), TransferError> {
            chunk += 1;
            count += 1;
            *total += 1;
            if let Some(Arg::Int(Some(key))) = cells.first() {
                after = *key;
                if spec.has_id() {
                    last_id = Some(*key);
                }
            }
            write_row(out, spec, &cells).map_err(TransferError::io("cannot write the export"))?;
            observer.row(spec.table, count, *total);
            Ok(())
        };
        let args: Vec<Arg> = std::iter::once(from_key).chain(upper).map(Arg::from).collect();
        conn.fetch_each(&sql, &args, &kinds, |cells| write(proto_messages(dialect, spec, cells)?))
            .await
            .map_err(TransferError::db(context.clone()))??;
        let done = match spec.order {
            Order::Id => chunk < EXPORT_CHUNK_ROWS,
            Order::Owner { .. } => upper.is_none(),
        };
        if done {
            return Ok((count, last_id));
        }
        if let Some(upper) = upper {
            after = upper;
        }
    }
}

fn is_integer(column: &Column) -> bool {
    matches!(column.kind, Kind::Int | Kind::BigInt)
}

/// What a column's cells are read as; integers are selected as 64-bit.
fn arg_kind(column: &Column) -> ArgKind {
    match column.kind {
        Kind::Int | Kind::BigInt => ArgKind::Int,
        Kind::Double => ArgKind::Double,
        Kind::Name | Kind::Text => ArgKind::Text,
        Kind::Bool => ArgKind::Bool,
        Kind::Bytes | Kind::Proto => ArgKind::Bytes,
    }
}

/// Proto values as the messages they are: MLMD's base64 text decoded where it keeps that.
fn proto_messages(dialect: Dialect, spec: &TableSpec, mut cells: Vec<Arg>) -> Result<Vec<Arg>, TransferError> {
    if !dialect.proto_as_base64_text() {
        return Ok(cells);
    }
    for (column, cell) in spec.columns.iter().zip(cells.iter_mut()) {
        let Arg::Bytes(Some(text)) = cell else { continue };
        if column.kind != Kind::Proto {
            continue;
        }
        match BASE64.decode(&*text) {
            // Only what encodes back to the same text: anything else would not survive the trip.
            Ok(message) if BASE64.encode(&message).as_bytes() == text.as_slice() => *text = message,
            _ => {
                let key = match (&cells[0], &cells[1]) {
                    (Arg::Int(Some(owner)), Arg::Text(Some(name))) => {
                        format!("{} {owner}, property {name:?}", spec.columns[0].name)
                    }
                    _ => String::new(),
                };
                return Err(TransferError::Source(format!(
                    "{} ({key}): its proto_value is not the base64 text MLMD writes on {}, so it cannot be carried to \
                     another database",
                    spec.table.camel_name(),
                    dialect.backend()
                )));
            }
        }
    }
    Ok(cells)
}

fn write_header(out: &mut impl Write, source: &Source) -> std::io::Result<()> {
    let exported_at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let header = serde_json::json!({
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "mlmd_schema_version": MLMD_SCHEMA_VERSION,
        "source": {"layout": source.layout.migrations_dir(), "migration_version": source.migration_version},
        "exported_at_ms": exported_at_ms,
        "exporter": concat!("embedmd ", env!("CARGO_PKG_VERSION")),
    });
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n")
}

/// `{"table":"<Table>","<column>":<value>,...}`, NULL columns left out.
fn write_row(out: &mut impl Write, spec: &TableSpec, cells: &[Arg]) -> std::io::Result<()> {
    write!(out, "{{\"table\":\"{}\"", spec.table.camel_name())?;
    for (column, cell) in spec.columns.iter().zip(cells) {
        let name = column.name;
        match cell {
            Arg::Int(Some(v)) => write!(out, ",\"{name}\":{v}")?,
            Arg::Bool(Some(v)) => write!(out, ",\"{name}\":{v}")?,
            Arg::Double(Some(v)) => match non_finite_name(*v) {
                Some(text) => write!(out, ",\"{name}\":\"{text}\"")?,
                None => {
                    write!(out, ",\"{name}\":")?;
                    serde_json::to_writer(&mut *out, v)?;
                }
            },
            Arg::Text(Some(v)) => {
                write!(out, ",\"{name}\":")?;
                serde_json::to_writer(&mut *out, v)?;
            }
            Arg::Bytes(Some(v)) => write!(out, ",\"{name}\":\"{}\"", BASE64.encode(v))?,
            Arg::Int(None) | Arg::Bool(None) | Arg::Double(None) | Arg::Text(None) | Arg::Bytes(None) => {}
        }
    }
    out.write_all(b"}\n")
}

/// JSON has no NaN or infinities; the file spells them as strings.
pub(super) fn non_finite_name(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("Infinity")
    } else if v == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

fn write_end(out: &mut impl Write, rows: &[(Table, u64)], next_ids: &[(Table, i64)]) -> std::io::Result<()> {
    let object = |pairs: Vec<String>| format!("{{{}}}", pairs.join(","));
    let rows = object(rows.iter().map(|(t, n)| format!("\"{}\":{n}", t.camel_name())).collect());
    let next_ids = object(next_ids.iter().map(|(t, n)| format!("\"{}\":{n}", t.camel_name())).collect());
    writeln!(out, "{{\"end\":{{\"rows\":{rows},\"next_ids\":{next_ids}}}}}")
}

/// Counts what passes through, for the summary.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
