//! Checking each line against the tables' columns and the target's limits, and writing the rows
//! in multi-row INSERTs inside one transaction.

use std::collections::HashSet;
use std::io::{BufRead, Read};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{Map, Value};

use super::tables::{self, Column, Kind, TableSpec, TABLES};
use super::{
    table_exists, Observer, Source, Summary, TransferError, FORMAT_NAME, FORMAT_VERSION, IMPORT_BATCH_BYTES,
    IMPORT_ROWS_PER_INSERT, MAX_LINE_BYTES,
};
use crate::arg::Arg;
use crate::conn::{Conn, Unpooled};
use crate::dialect::{Dialect, Table};
use crate::dsn::ConnectTarget;
use crate::migrate::{MigrationSet, MLMD_SCHEMA_VERSION};
use crate::types::{TypeSpec, MLMD_SIMPLE_TYPES};
use crate::{Connection, PoolConfig};

pub(super) async fn run(
    target: &ConnectTarget,
    input: impl BufRead,
    types: &[TypeSpec],
    observer: &mut dyn Observer,
) -> Result<Summary, TransferError> {
    let mut lines = Lines { input, number: 0, buf: Vec::new(), bytes: 0, complete: true };
    // A file this release cannot read is refused before the database is touched.
    let source = read_header(&mut lines)?;
    let own: HashSet<&str> = MLMD_SIMPLE_TYPES.iter().map(|(name, _)| *name).chain(types.iter().map(|t| t.name)).collect();
    // The pool only finds the layout: the migrator and the import have connections of their own.
    let Connection { pool, dialect, migrator } = Connection::open(target, &PoolConfig::default()).await?;
    pool.close().await;
    let mut unpooled =
        Unpooled::open(target).await.map_err(TransferError::db(format!("cannot connect to {}", target.describe())))?;
    let mut conn = unpooled.conn();
    let imported = async {
        // Before migrating, so that a refused import leaves a non-empty database as it was.
        check_empty(&mut conn, dialect, &own).await?;
        migrator.up(None).await?;
        conn.execute_script(dialect.write_begin()).await.map_err(TransferError::db("cannot start the transaction"))?;
        match write_all(&mut conn, dialect, &own, &mut lines, observer).await {
            Ok((rows, after_commit)) => {
                conn.execute_script("COMMIT").await.map_err(TransferError::db("cannot commit the import"))?;
                for statement in after_commit {
                    let context = "every row is imported, but an id sequence could not be moved past the source's last id";
                    conn.execute_script(&statement).await.map_err(TransferError::db(context))?;
                }
                Ok(Summary { rows, bytes: lines.bytes, source })
            }
            Err(e) => {
                let _ = conn.execute_script("ROLLBACK").await;
                Err(e)
            }
        }
    }
    .await;
    unpooled.close().await;
    imported
}

/// The lines of the input, numbered from 1, each at most [`MAX_LINE_BYTES`].
struct Lines<R> {
    input: R,
    number: u64,
    buf: Vec<u8>,
    bytes: u64,
    /// Whether the current line ended with a newline (the last one of a cut file does not).
    complete: bool,
}

impl<R: BufRead> Lines<R> {
    /// Moves to the next line that is not blank; `false` at the end of the input.
    fn advance(&mut self) -> Result<bool, TransferError> {
        loop {
            self.buf.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            let read = (&mut self.input)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
                .map_err(TransferError::io(format!("cannot read line {}", self.number + 1)))?;
            if read == 0 {
                return Ok(false);
            }
            self.number += 1;
            self.bytes += read as u64;
            self.complete = self.buf.last() == Some(&b'\n');
            if self.complete {
                self.buf.pop();
            } else if self.buf.len() > MAX_LINE_BYTES {
                return Err(self.error(format!("longer than {} MiB", MAX_LINE_BYTES >> 20)));
            }
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(true);
            }
        }
    }

    fn error(&self, message: impl Into<String>) -> TransferError {
        TransferError::Line { line: self.number, message: message.into() }
    }

    /// The current line as a JSON object.
    fn object(&self) -> Result<Map<String, Value>, TransferError> {
        serde_json::from_slice(&self.buf).map_err(|e| {
            let cut = if self.complete { "" } else { "; the file ends in the middle of this line: it is truncated" };
            self.error(format!("not a JSON object ({e}){cut}"))
        })
    }
}

fn read_header(lines: &mut Lines<impl BufRead>) -> Result<Source, TransferError> {
    if !lines.advance()? {
        return Err(TransferError::Line { line: 1, message: "the file is empty: not a model-registry export".into() });
    }
    let not_an_export =
        || lines.error(format!("not a model-registry export (its first line has no \"format\": \"{FORMAT_NAME}\")"));
    let header = lines.object().map_err(|_| not_an_export())?;
    if header.get("format").and_then(Value::as_str) != Some(FORMAT_NAME) {
        return Err(not_an_export());
    }
    let field = |name: &str| header.get(name).filter(|v| !v.is_null());
    match field("format_version").and_then(Value::as_u64) {
        Some(FORMAT_VERSION) => {}
        Some(other) => {
            return Err(TransferError::Unsupported(format!(
                "the file is in export format version {other}, and this release reads version {FORMAT_VERSION}: \
                 import it with the release that wrote it or a newer one"
            )))
        }
        None => return Err(lines.error("format_version: expected a positive integer")),
    }
    let mlmd = field("mlmd_schema_version").and_then(Value::as_i64);
    if mlmd != Some(MLMD_SCHEMA_VERSION) {
        let found = field("mlmd_schema_version").map_or("none".to_owned(), Value::to_string);
        return Err(TransferError::Unsupported(format!(
            "the file holds MLMD schema version {found}, and this release maps only version {MLMD_SCHEMA_VERSION}"
        )));
    }
    let source = field("source").and_then(Value::as_object).ok_or_else(|| lines.error("source: expected an object"))?;
    let layout_name =
        source.get("layout").and_then(Value::as_str).ok_or_else(|| lines.error("source.layout: expected a string"))?;
    let layout = Dialect::from_layout(layout_name).ok_or_else(|| {
        TransferError::Unsupported(format!("the file comes from a {layout_name:?} database, a layout this release does not know"))
    })?;
    let migration_version = match source.get("migration_version") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| lines.error("source.migration_version: expected an integer or null"))?),
    };
    if let Some(v) = migration_version.filter(|v| MigrationSet::for_dialect(layout).get(*v).is_none()) {
        return Err(TransferError::Unsupported(format!(
            "the file comes from a {layout_name} database at migration {v}, which this release does not know, so it \
             cannot map its tables: import it with a release that knows migration {v}"
        )));
    }
    Ok(Source { layout, migration_version })
}

/// Empty: no node, property, link or event, and no type but those the migrations and this
/// server create.
async fn check_empty(conn: &mut Conn<'_>, dialect: Dialect, own: &HashSet<&str>) -> Result<(), TransferError> {
    let context = "cannot look at the target database";
    // Nodes first, so that the table named is the telling one; types last.
    let data = TABLES.iter().filter(|s| !matches!(s.table, Table::Type | Table::TypeProperty | Table::ParentType));
    for spec in data.chain(tables::by_name("ParentType").map(|(_, s)| s)) {
        if !table_exists(conn, dialect, spec.table).await? {
            continue;
        }
        let sql = format!("SELECT 1 FROM {} LIMIT 1", dialect.table(spec.table));
        if conn.exists(&sql, &[]).await.map_err(TransferError::db(context))? {
            return Err(TransferError::NotEmpty(format!("{} holds rows", spec.table.camel_name())));
        }
    }
    if !table_exists(conn, dialect, Table::Type).await? {
        return Ok(());
    }
    let sql = format!("SELECT name, version FROM {} ORDER BY id", dialect.table(Table::Type));
    let types: Vec<(String, Option<String>)> = conn.fetch_all(&sql, &[]).await.map_err(TransferError::db(context))?;
    match types.into_iter().find(|(name, version)| version.is_some() || !own.contains(name.as_str())) {
        Some((name, version)) => Err(TransferError::NotEmpty(format!(
            "it has the type {name:?}{}, which neither the migrations nor this server create",
            version.map_or(String::new(), |v| format!(" version {v:?}"))
        ))),
        None => Ok(()),
    }
}

/// Rows of one table waiting for their INSERT.
struct Batch {
    spec: &'static TableSpec,
    args: Vec<Arg>,
    rows: usize,
    bytes: usize,
    first_line: u64,
    last_line: u64,
}

/// Writes every row of the file; returns the counts and the statements to run after COMMIT.
async fn write_all(
    conn: &mut Conn<'_>,
    dialect: Dialect,
    own: &HashSet<&str>,
    lines: &mut Lines<impl BufRead>,
    observer: &mut dyn Observer,
) -> Result<(Vec<(Table, u64)>, Vec<String>), TransferError> {
    check_empty(conn, dialect, own).await?;
    // The migrations' and the server's own types give way to the file's, ids and all.
    for table in [Table::ParentType, Table::TypeProperty, Table::Type] {
        let sql = format!("DELETE FROM {}", dialect.table(table));
        conn.execute_script(&sql).await.map_err(TransferError::db("cannot clear the target's types"))?;
    }
    let mut counts = [0u64; TABLES.len()];
    let mut max_ids: [Option<i64>; TABLES.len()] = [None; TABLES.len()];
    let mut current = 0usize;
    let mut batch: Option<Batch> = None;
    let mut total = 0u64;
    let end = loop {
        if !lines.advance()? {
            return Err(TransferError::Line {
                line: lines.number + 1,
                message: format!("the file ends without its end line: it is truncated ({total} rows read)"),
            });
        }
        let mut object = lines.object()?;
        if let Some(end) = object.remove("end") {
            break end;
        }
        let name = match object.remove("table") {
            Some(Value::String(name)) => name,
            _ => return Err(lines.error("expected a row (with \"table\") or the end line (\"end\")")),
        };
        let (index, spec) = tables::by_name(&name).ok_or_else(|| lines.error(format!("unknown table {name:?}")))?;
        if index < current {
            return Err(lines.error(format!(
                "a row of {name} after rows of {}: tables must come in the order an export writes them",
                TABLES[current].table.camel_name()
            )));
        }
        current = index;
        let cells = parse_row(&object, spec, dialect).map_err(|message| lines.error(format!("{name}.{message}")))?;
        if spec.has_id() {
            if let Some(Arg::Int(Some(id))) = cells.first() {
                max_ids[index] = max_ids[index].max(Some(*id));
            }
        }
        if batch.as_ref().is_some_and(|b| b.spec.table != spec.table) {
            flush(conn, dialect, batch.take()).await?;
        }
        let b = batch.get_or_insert_with(|| Batch {
            spec,
            args: Vec::with_capacity(IMPORT_ROWS_PER_INSERT * spec.columns.len()),
            rows: 0,
            bytes: 0,
            first_line: lines.number,
            last_line: lines.number,
        });
        b.bytes += cells.iter().map(cell_bytes).sum::<usize>();
        b.args.extend(cells);
        b.rows += 1;
        b.last_line = lines.number;
        if b.rows == IMPORT_ROWS_PER_INSERT || b.bytes >= IMPORT_BATCH_BYTES {
            flush(conn, dialect, batch.take()).await?;
        }
        counts[index] += 1;
        total += 1;
        observer.row(spec.table, counts[index], total);
    };
    flush(conn, dialect, batch.take()).await?;
    let end_line = lines.number;
    let (rows, next_ids) = parse_end(&end).map_err(|message| lines.error(format!("end.{message}")))?;
    for (index, spec) in TABLES.iter().enumerate() {
        if rows[index] != counts[index] {
            return Err(lines.error(format!(
                "the end line counts {} rows of {}, and the file holds {}: it is damaged",
                rows[index],
                spec.table.camel_name(),
                counts[index]
            )));
        }
    }
    if lines.advance()? {
        return Err(lines.error(format!("nothing may follow the end line (line {end_line})")));
    }

    let mut after_commit = Vec::new();
    for (index, spec) in TABLES.iter().enumerate().filter(|(_, s)| s.has_id()) {
        let stored_next = max_ids[index].map(|id| id + 1);
        let Some(next) = next_ids[index].max(stored_next).filter(|next| *next > 1) else { continue };
        for statement in dialect.set_next_id(spec.table, next) {
            if !dialect.next_id_after_commit() {
                conn.execute_script(&statement).await.map_err(TransferError::db("cannot move an id sequence"))?;
            } else if Some(next) > stored_next {
                after_commit.push(statement);
            }
        }
    }
    Ok((TABLES.iter().map(|s| s.table).zip(counts).collect(), after_commit))
}

async fn flush(conn: &mut Conn<'_>, dialect: Dialect, batch: Option<Batch>) -> Result<(), TransferError> {
    let Some(batch) = batch else { return Ok(()) };
    let width = batch.spec.columns.len();
    let columns = batch.spec.columns.iter().map(|c| c.name).collect::<Vec<_>>().join(", ");
    let rows =
        (0..batch.rows).map(|r| format!("({})", dialect.placeholders(r * width + 1, width))).collect::<Vec<_>>().join(", ");
    let sql = dialect.insert_keeping_ids(batch.spec.table, &columns, &rows);
    let context =
        format!("cannot write the {} rows of lines {}-{}", batch.spec.table.camel_name(), batch.first_line, batch.last_line);
    conn.execute(&sql, &batch.args).await.map(drop).map_err(TransferError::db(context))
}

/// What a value adds to an INSERT's size, near enough.
fn cell_bytes(cell: &Arg) -> usize {
    match cell {
        Arg::Text(Some(v)) => v.len(),
        Arg::Bytes(Some(v)) => v.len(),
        _ => 8,
    }
}

/// The row's cells in column order, checked against the target's limits; errors name the
/// column.
fn parse_row(object: &Map<String, Value>, spec: &TableSpec, dialect: Dialect) -> Result<Vec<Arg>, String> {
    if let Some(unknown) = object.keys().find(|k| spec.column(k).is_none()) {
        return Err(format!("{unknown}: no such column"));
    }
    spec.columns
        .iter()
        .map(|column| parse_cell(column, object.get(column.name), dialect).map_err(|e| format!("{}: {e}", column.name)))
        .collect()
}

fn parse_cell(column: &Column, value: Option<&Value>, dialect: Dialect) -> Result<Arg, String> {
    let value = value.filter(|v| !v.is_null());
    if value.is_none() && column.required {
        return Err("missing; the column is NOT NULL".into());
    }
    let found = |v: &Value| {
        let text = v.to_string();
        match text.char_indices().nth(40) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text,
        }
    };
    Ok(match column.kind {
        Kind::Int | Kind::BigInt => Arg::Int(match value {
            None => None,
            Some(v) => {
                let n = v.as_i64().ok_or_else(|| format!("expected an integer, found {}", found(v)))?;
                if column.kind == Kind::Int && !(dialect.min_int()..=dialect.max_int()).contains(&n) {
                    return Err(format!("{n} does not fit the target's 32-bit INT column"));
                }
                if column.name == "id" && n < 1 {
                    return Err(format!("{n} is not an id (ids start at 1)"));
                }
                Some(n)
            }
        }),
        Kind::Double => Arg::Double(match value {
            None => None,
            Some(v) => {
                let n = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => [f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
                        .into_iter()
                        .find(|x| super::export::non_finite_name(*x) == Some(s.as_str())),
                    _ => None,
                };
                let n =
                    n.ok_or_else(|| format!("expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", found {}", found(v)))?;
                if !n.is_finite() && !dialect.stores_non_finite_doubles() {
                    return Err(format!("{} cannot be stored on MySQL or MariaDB", found(v)));
                }
                Some(n)
            }
        }),
        Kind::Name | Kind::Text => Arg::Text(match value {
            None => None,
            Some(v) => {
                let text = v.as_str().ok_or_else(|| format!("expected a string, found {}", found(v)))?;
                if let Some(max) = dialect.max_name_chars().filter(|_| column.kind == Kind::Name) {
                    let chars = text.chars().count();
                    if chars > max {
                        return Err(format!("{chars} characters do not fit the target's VARCHAR({max})"));
                    }
                }
                Some(text.to_owned())
            }
        }),
        Kind::Bool => Arg::Bool(match value {
            None => None,
            Some(v) => Some(v.as_bool().ok_or_else(|| format!("expected true or false, found {}", found(v)))?),
        }),
        Kind::Bytes | Kind::Proto => match value {
            None => Arg::Bytes(None),
            Some(v) => {
                let text = v.as_str().ok_or_else(|| format!("expected base64 text, found {}", found(v)))?;
                let bytes = BASE64.decode(text).map_err(|e| format!("not base64 ({e})"))?;
                // Where MLMD keeps proto values as base64 text, they are stored as MLMD does.
                match column.kind == Kind::Proto && dialect.proto_as_base64_text() {
                    true => Arg::Text(Some(BASE64.encode(bytes))),
                    false => Arg::Bytes(Some(bytes)),
                }
            }
        },
    })
}

/// The end line's row count per table and, for tables with ids, the next id (in [`TABLES`]
/// order).
type Totals = ([u64; TABLES.len()], [Option<i64>; TABLES.len()]);

fn parse_end(end: &Value) -> Result<Totals, String> {
    let object = |name: &str| end.get(name).and_then(Value::as_object).ok_or_else(|| format!("{name}: expected an object"));
    let table = |name: &str| tables::by_name(name).map(|(i, _)| i).ok_or_else(|| format!("unknown table {name:?}"));
    let mut rows = [None; TABLES.len()];
    for (name, count) in object("rows")? {
        rows[table(name)?] = Some(count.as_u64().ok_or_else(|| format!("rows.{name}: expected a count"))?);
    }
    let mut next_ids = [None; TABLES.len()];
    for (name, next) in object("next_ids")? {
        next_ids[table(name)?] = Some(next.as_i64().ok_or_else(|| format!("next_ids.{name}: expected an id"))?);
    }
    let mut counts = [0; TABLES.len()];
    for (index, spec) in TABLES.iter().enumerate() {
        counts[index] = rows[index].ok_or_else(|| format!("rows: no count for {}", spec.table.camel_name()))?;
    }
    Ok((counts, next_ids))
}
