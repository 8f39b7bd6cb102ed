//! Normalized schema dumps of live databases, in the format of the reference dumps
//! (`shared/reference/schemas/README.md`; copies of the dumps in `crates/testkit/reference/`).
//!
//! ```text
//! TABLE <name>                      tables sorted case-insensitively
//!   COL <name> <type> NULL|NOT NULL [DEFAULT x] [AUTO_INCREMENT | GENERATED ... | ROWID AUTOINCREMENT]
//!   PK [<constraint>] (cols)
//!   UNIQUE <name> (cols)            "  [constraint]" marks a UNIQUE constraint (vs a unique index)
//!   INDEX <name> (cols) [WHERE ...]
//!   FK [<name>] (cols) -> <table>(cols) [ON DELETE ...] [ON UPDATE ...]
//!   CHECK <name> <definition>       (PostgreSQL)
//!   OPTIONS engine=... collation=... (MySQL)
//! VIEW|MATVIEW <name>
//! DATA MLMDEnv.schema_version = [10]
//! DATA schema_migrations = [version=21 dirty=false]
//! DATA Type rows=9
//!   kind=0 name=mlmd.Deploy version=NULL
//! DATA TypeProperty rows=N
//!   kind=1 type=<type name> version=<type version|NULL> name=<property> data_type=<n>
//! ```
//!
//! The `#` header lines of the reference files are not produced (they carry server versions);
//! compare against [`reference_schema`] / [`strip_dump_header`]. On PostgreSQL only the
//! current schema (normally `public`) is dumped. SQLite's internal tables (`sqlite_%`) are
//! left out; unique-constraint autoindexes are shown without their generated names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use std::str::FromStr;

use embedmd::conn::TextRows;
use embedmd::{ConnectTarget, Dialect, Unpooled};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::Backend;

/// Normalized dump of the database at `url` (a sqlx URL). Panics on error.
pub async fn schema_dump(url: &str) -> String {
    schema_dump_excluding(url, &[]).await
}

/// [`schema_dump`] leaving out the tables named in `exclude` (compared case-insensitively),
/// both their TABLE block and their DATA line, e.g. `&["schema_migrations"]` to compare
/// "modulo schema_migrations". Panics on error.
pub async fn schema_dump_excluding(url: &str, exclude: &[&str]) -> String {
    match try_schema_dump(url, exclude).await {
        Ok(s) => s,
        Err(e) => panic!("testkit: schema_dump({url}) failed: {e}"),
    }
}

/// Fallible [`schema_dump_excluding`].
pub async fn try_schema_dump(url: &str, exclude: &[&str]) -> Result<String, sqlx::Error> {
    let (backend, mut conn) = Conn::open(url, true).await?;
    let excluded = |name: &str| exclude.iter().any(|x| x.eq_ignore_ascii_case(name));
    let mut rels = match backend {
        Backend::Sqlite => sqlite_relations(&mut conn).await?,
        Backend::MySql => mysql_relations(&mut conn).await?,
        Backend::Postgres => pg_relations(&mut conn).await?,
    };
    rels.retain(|r| !excluded(&r.name));
    rels.sort_by(|a, b| {
        (a.kind != RelKind::Table, a.name.to_lowercase(), &a.name).cmp(&(
            b.kind != RelKind::Table,
            b.name.to_lowercase(),
            &b.name,
        ))
    });
    let mut out = String::new();
    for r in &rels {
        let head = match r.kind {
            RelKind::Table => "TABLE",
            RelKind::View => "VIEW",
            RelKind::MatView => "MATVIEW",
        };
        out.push_str(&format!("{head} {}\n", r.name));
        for l in &r.body {
            out.push_str("  ");
            out.push_str(l);
            out.push('\n');
        }
    }
    let tables: Vec<String> = rels.iter().filter(|r| r.kind == RelKind::Table).map(|r| r.name.clone()).collect();
    for l in data_lines(&mut conn, &tables).await {
        out.push_str(&l);
        out.push('\n');
    }
    conn.close().await;
    Ok(out)
}

/// Run `sql` (one or more statements, no parameters) on the database at `url` in a fresh
/// connection; every value of every returned row as text (`None` for NULL). Panics on error.
/// Handy for setting up or inspecting states in tests: `query_text(url, "SELECT * FROM MLMDEnv")`.
pub async fn query_text(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let res = async {
        let (_, mut conn) = Conn::open(url, false).await?;
        let rows = conn.rows(sql).await;
        conn.close().await;
        rows
    }
    .await;
    res.unwrap_or_else(|e| panic!("testkit: `{sql}` on {url} failed: {e}"))
}

/// Run `sql` (one or more statements) on the database at `url`, ignoring any rows. Panics on
/// error.
pub async fn execute_sql(url: &str, sql: &str) {
    query_text(url, sql).await;
}

/// `text` without its `#` header lines (the form [`schema_dump`] produces).
pub fn strip_dump_header(text: &str) -> String {
    let mut out = String::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Path of a reference dump shipped with testkit: `reference_schema_path("mlmd-sqlite")` ->
/// `crates/testkit/reference/mlmd-sqlite.txt` (copies of `shared/reference/schemas/*.txt`).
pub fn reference_schema_path(name: &str) -> PathBuf {
    let file = if name.ends_with(".txt") { name.to_string() } else { format!("{name}.txt") };
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference").join(file)
}

/// A reference dump without its header lines, comparable with [`schema_dump`]'s output.
/// Names: `mlmd-sqlite`, `mlmd-mysql`, `mlmd-postgres`, `upstream-embedmd-mysql`,
/// `upstream-embedmd-postgres`.
pub fn reference_schema(name: &str) -> String {
    let p = reference_schema_path(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("testkit: cannot read reference dump {}: {e}", p.display()));
    strip_dump_header(&text)
}

/// A line diff of two dumps (`-` expected only, `+` actual only), or `None` when equal.
pub fn dump_diff(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // LCS table; dumps are a few hundred lines.
    let mut l = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            l[i][j] = if a[i] == b[j] { l[i + 1][j + 1] + 1 } else { l[i + 1][j].max(l[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    let mut context: &str = ""; // last TABLE/VIEW/DATA line seen, printed before a change
    let mut printed: &str = "";
    while i < a.len() || j < b.len() {
        let line;
        if i < a.len() && j < b.len() && a[i] == b[j] {
            if !a[i].starts_with("  ") {
                context = a[i];
            }
            i += 1;
            j += 1;
            continue;
        } else if j < b.len() && (i == a.len() || l[i][j + 1] >= l[i + 1][j]) {
            line = format!("+{}", b[j]);
            j += 1;
        } else {
            line = format!("-{}", a[i]);
            i += 1;
        }
        if !context.is_empty() && context != printed {
            out.push_str(&format!("@ {context}\n"));
            printed = context;
        }
        out.push_str(&line);
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("(dumps differ only in line endings)\n");
    }
    Some(out)
}

/// Panic with a line diff unless the two dumps are identical.
#[track_caller]
pub fn assert_dump_eq(expected: &str, actual: &str, what: &str) {
    if let Some(d) = dump_diff(expected, actual) {
        panic!("{what}: schema dumps differ (-expected +actual):\n{d}\n--- full actual dump:\n{actual}");
    }
}

// ------------------------------------------------------------------------------------------
// connection helper

/// One of embedmd's connections, with the dialect the dump's SQL is written in.
struct Conn {
    conn: Unpooled,
    dialect: Dialect,
}

type Rows = TextRows;

impl Conn {
    async fn open(url: &str, read_only: bool) -> Result<(Backend, Conn), sqlx::Error> {
        let backend = embedmd::dsn::infer_backend(url)
            .ok_or_else(|| sqlx::Error::Configuration(format!("unsupported URL {url}").into()))?;
        let target = match backend {
            Backend::Sqlite => ConnectTarget::Sqlite(SqliteConnectOptions::from_str(url)?.read_only(read_only)),
            Backend::MySql => ConnectTarget::MySql(MySqlConnectOptions::from_str(url)?.into()),
            Backend::Postgres => ConnectTarget::Postgres(PgConnectOptions::from_str(url)?.into()),
        };
        let conn = Unpooled::open(&target).await?;
        Ok((backend, Conn { conn, dialect: Dialect::any_layout(backend) }))
    }

    /// Run `sql` (no parameters: text protocol on MySQL, simple query on PostgreSQL) and
    /// return every value as text.
    async fn rows(&mut self, sql: &str) -> Result<Rows, sqlx::Error> {
        self.conn.conn().fetch_script_text(sql).await
    }

    fn ident(&self, name: &str) -> String {
        self.dialect.quote(name)
    }

    fn as_text(&self, expr: &str) -> String {
        self.dialect.as_text(expr)
    }

    async fn close(self) {
        self.conn.close().await
    }
}

/// SQLite/PostgreSQL string literal (no backslash escapes).
fn lit_std(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

fn truthy(v: &Option<String>) -> bool {
    matches!(s(v).to_ascii_lowercase().as_str(), "1" | "t" | "true" | "yes" | "y" | "on")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelKind {
    Table,
    View,
    MatView,
}

struct Rel {
    name: String,
    kind: RelKind,
    body: Vec<String>,
}

/// Body lines of a table in the canonical order.
#[derive(Default)]
struct Body {
    cols: Vec<String>,
    pk: Vec<String>,
    /// (sort key, line)
    uniques: Vec<(String, String)>,
    indexes: Vec<(String, String)>,
    fks: Vec<(String, String)>,
    checks: Vec<(String, String)>,
    options: Vec<String>,
}

impl Body {
    fn lines(mut self) -> Vec<String> {
        let mut v = self.cols;
        v.append(&mut self.pk);
        for group in [&mut self.uniques, &mut self.indexes, &mut self.fks, &mut self.checks] {
            group.sort();
            v.extend(group.drain(..).map(|(_, l)| l));
        }
        v.append(&mut self.options);
        v
    }
}

fn sort_key(name: &str) -> String {
    format!("{}\u{0}{}", name.to_lowercase(), name)
}

// ------------------------------------------------------------------------------------------
// SQLite

async fn sqlite_relations(conn: &mut Conn) -> Result<Vec<Rel>, sqlx::Error> {
    let master = conn
        .rows(
            "SELECT type, name, sql FROM sqlite_master \
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )
        .await?;
    let index_sql: BTreeMap<String, String> = conn
        .rows("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        .await?
        .into_iter()
        .map(|r| (s(&r[0]).to_string(), s(&r[1]).to_string()))
        .collect();
    let mut rels = Vec::new();
    for m in master {
        let (ty, name, sql) = (s(&m[0]), s(&m[1]).to_string(), s(&m[2]).to_string());
        if ty == "view" {
            rels.push(Rel { name, kind: RelKind::View, body: vec![] });
            continue;
        }
        let upper = sql.to_uppercase();
        let mut body = Body::default();
        let cols = conn
            .rows(&format!(
                "SELECT name, type, CAST(\"notnull\" AS TEXT), dflt_value, CAST(pk AS TEXT) \
                 FROM pragma_table_info({}) ORDER BY cid",
                lit_std(&name)
            ))
            .await?;
        let mut pk: Vec<(i64, String, String)> = cols
            .iter()
            .filter_map(|c| {
                let n: i64 = s(&c[4]).parse().unwrap_or(0);
                (n > 0).then(|| (n, s(&c[0]).to_string(), s(&c[1]).to_string()))
            })
            .collect();
        pk.sort();
        let rowid_alias = (pk.len() == 1 && pk[0].2.eq_ignore_ascii_case("INTEGER") && !upper.contains("WITHOUT ROWID"))
            .then(|| pk[0].1.clone());
        for c in &cols {
            let cname = s(&c[0]);
            let ctype = if s(&c[1]).is_empty() { "-" } else { s(&c[1]) };
            if rowid_alias.as_deref() == Some(cname) {
                let auto = if upper.contains("AUTOINCREMENT") { " AUTOINCREMENT" } else { "" };
                body.cols.push(format!("COL {cname} {ctype} ROWID{auto}"));
                continue;
            }
            let mut l = format!("COL {cname} {ctype} {}", if truthy(&c[2]) { "NOT NULL" } else { "NULL" });
            if let Some(d) = c[3].as_deref().filter(|d| !d.eq_ignore_ascii_case("NULL")) {
                l.push_str(&format!(" DEFAULT {d}"));
            }
            body.cols.push(l);
        }
        if !pk.is_empty() {
            let names: Vec<&str> = pk.iter().map(|p| p.1.as_str()).collect();
            body.pk.push(format!("PK ({})", names.join(", ")));
        }
        let idx = conn
            .rows(&format!(
                "SELECT name, CAST(\"unique\" AS TEXT), origin, CAST(partial AS TEXT) \
                 FROM pragma_index_list({})",
                lit_std(&name)
            ))
            .await?;
        for i in idx {
            let (iname, unique, origin, partial) = (s(&i[0]), truthy(&i[1]), s(&i[2]), truthy(&i[3]));
            if origin == "pk" {
                continue;
            }
            let icols: Vec<String> = conn
                .rows(&format!("SELECT name FROM pragma_index_info({}) ORDER BY seqno", lit_std(iname)))
                .await?
                .into_iter()
                .map(|r| r[0].clone().unwrap_or_else(|| "<expr>".into()))
                .collect();
            let cols = icols.join(", ");
            let wh = if partial {
                index_sql.get(iname).and_then(|sql| sqlite_where(sql)).map(|w| format!(" WHERE {w}"))
            } else {
                None
            }
            .unwrap_or_default();
            if origin == "u" {
                // sqlite_autoindex_<table>_<n>: keep constraint order, drop the name.
                let n: u32 = iname.rsplit('_').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                body.uniques.push((format!("sqlite_autoindex\u{0}{n:06}"), format!("UNIQUE ({cols}){wh}  [constraint]")));
            } else if unique {
                body.uniques.push((sort_key(iname), format!("UNIQUE {iname} ({cols}){wh}")));
            } else {
                body.indexes.push((sort_key(iname), format!("INDEX {iname} ({cols}){wh}")));
            }
        }
        let fks = conn
            .rows(&format!(
                "SELECT CAST(id AS TEXT), \"table\", \"from\", \"to\", on_update, on_delete \
                 FROM pragma_foreign_key_list({}) ORDER BY id, seq",
                lit_std(&name)
            ))
            .await?;
        let mut by_id: BTreeMap<String, Vec<Vec<Option<String>>>> = BTreeMap::new();
        for f in fks {
            by_id.entry(s(&f[0]).to_string()).or_default().push(f);
        }
        for (_, parts) in by_id {
            let from: Vec<&str> = parts.iter().map(|p| s(&p[2])).collect();
            let to: Vec<&str> = parts.iter().map(|p| s(&p[3])).collect();
            let mut l = format!("FK ({}) -> {}({})", from.join(", "), s(&parts[0][1]), to.join(", "));
            push_rules(&mut l, s(&parts[0][5]), s(&parts[0][4]), false);
            body.fks.push((l.clone(), l));
        }
        rels.push(Rel { name, kind: RelKind::Table, body: body.lines() });
    }
    Ok(rels)
}

/// The predicate of a partial index from its CREATE INDEX text, without identifier quotes.
fn sqlite_where(sql: &str) -> Option<String> {
    let upper = sql.to_uppercase();
    let bytes = upper.as_bytes();
    let mut pos = None;
    let mut from = 0;
    while let Some(p) = upper[from..].find("WHERE") {
        let at = from + p;
        let before_ok = at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let end = at + 5;
        let after_ok = end >= bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_');
        if before_ok && after_ok {
            pos = Some(end);
        }
        from = end;
    }
    let rest = &sql[pos?..];
    let cleaned: String = rest.chars().filter(|c| !matches!(c, '`' | '"' | '[' | ']')).collect();
    let joined = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(joined.trim_end_matches(';').trim().to_string())
}

fn push_rules(l: &mut String, on_delete: &str, on_update: &str, restrict_is_default: bool) {
    let shown = |r: &str| {
        let u = r.trim().to_uppercase();
        !(u.is_empty() || u == "NO ACTION" || (restrict_is_default && u == "RESTRICT"))
    };
    if shown(on_delete) {
        l.push_str(&format!(" ON DELETE {}", on_delete.trim().to_uppercase()));
    }
    if shown(on_update) {
        l.push_str(&format!(" ON UPDATE {}", on_update.trim().to_uppercase()));
    }
}

// ------------------------------------------------------------------------------------------
// MySQL / MariaDB

/// `int(11)` -> `int`, `bigint(20) unsigned` -> `bigint unsigned`; `tinyint(1)` is kept.
fn mysql_type(t: &str) -> String {
    let t = t.trim();
    for base in ["tinyint", "smallint", "mediumint", "bigint", "int", "year"] {
        if let Some(rest) = t.strip_prefix(base) {
            if let Some(close) = rest.strip_prefix('(').and_then(|r| r.find(')').map(|i| (i, r))) {
                let (i, r) = close;
                let width = &r[..i];
                if width.chars().all(|c| c.is_ascii_digit()) {
                    if base == "tinyint" && width == "1" {
                        return t.to_string();
                    }
                    return format!("{base}{}", &r[i + 1..]);
                }
            }
            return t.to_string();
        }
    }
    t.to_string()
}

async fn mysql_relations(conn: &mut Conn) -> Result<Vec<Rel>, sqlx::Error> {
    let tables = conn
        .rows(
            "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE()",
        )
        .await?;
    let cols = conn
        .rows(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, \
             GENERATION_EXPRESSION FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION",
        )
        .await?;
    let stats = conn
        .rows(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
             ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        )
        .await?;
    let fks = conn
        .rows(
            "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, \
             k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE \
             FROM information_schema.KEY_COLUMN_USAGE k \
             JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
               ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
              AND r.TABLE_NAME = k.TABLE_NAME \
             WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL \
             ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        )
        .await?;
    let mut rels = Vec::new();
    for t in tables {
        let name = s(&t[0]).to_string();
        let kind = match s(&t[1]) {
            "BASE TABLE" | "SYSTEM VERSIONED" => RelKind::Table,
            "VIEW" => RelKind::View,
            _ => continue, // SEQUENCE, ...
        };
        if kind == RelKind::View {
            rels.push(Rel { name, kind, body: vec![] });
            continue;
        }
        let mut body = Body::default();
        for c in cols.iter().filter(|c| s(&c[0]) == name) {
            let mut l =
                format!("COL {} {} {}", s(&c[1]), mysql_type(s(&c[2])), if s(&c[3]) == "YES" { "NULL" } else { "NOT NULL" });
            let extra_raw = s(&c[5]);
            let generated =
                extra_raw.to_uppercase().contains("GENERATED") && !extra_raw.trim().eq_ignore_ascii_case("DEFAULT_GENERATED");
            if let Some(d) = c[4].as_deref().filter(|d| *d != "NULL") {
                if !generated {
                    l.push_str(&format!(" DEFAULT {d}"));
                }
            }
            if generated {
                let how = if extra_raw.to_uppercase().contains("STORED") || extra_raw.to_uppercase().contains("PERSISTENT") {
                    "STORED"
                } else {
                    "VIRTUAL"
                };
                l.push_str(&format!(" GENERATED ALWAYS AS ({}) {how}", s(&c[6])));
            } else {
                let extra: Vec<String> = extra_raw
                    .split_whitespace()
                    .filter(|w| !w.eq_ignore_ascii_case("DEFAULT_GENERATED"))
                    .map(|w| w.to_uppercase())
                    .collect();
                if !extra.is_empty() {
                    l.push(' ');
                    l.push_str(&extra.join(" "));
                }
            }
            body.cols.push(l);
        }
        // indexes, grouped by name in SEQ_IN_INDEX order
        let mut idx: Vec<(String, bool, Vec<String>, String)> = Vec::new();
        for st in stats.iter().filter(|st| s(&st[0]) == name) {
            let iname = s(&st[1]).to_string();
            let col = match (&st[3], &st[4]) {
                (Some(c), Some(p)) => format!("{c}({p})"),
                (Some(c), None) => c.clone(),
                (None, _) => "<expr>".to_string(),
            };
            match idx.iter_mut().find(|i| i.0 == iname) {
                Some(i) => i.2.push(col),
                None => idx.push((iname, s(&st[2]) == "0", vec![col], s(&st[5]).to_string())),
            }
        }
        for (iname, unique, icols, itype) in idx {
            let cols = icols.join(", ");
            let using = match itype.as_str() {
                "FULLTEXT" | "SPATIAL" => format!(" USING {itype}"),
                _ => String::new(),
            };
            if iname == "PRIMARY" {
                body.pk.push(format!("PK ({cols})"));
            } else if unique {
                body.uniques.push((sort_key(&iname), format!("UNIQUE {iname} ({cols}){using}")));
            } else {
                body.indexes.push((sort_key(&iname), format!("INDEX {iname} ({cols}){using}")));
            }
        }
        // FK constraints of this table, columns in ORDINAL_POSITION order (rows are sorted).
        let mut fk_names: Vec<&str> = Vec::new();
        let mine: Vec<&Vec<Option<String>>> = fks.iter().filter(|f| s(&f[0]) == name).collect();
        for f in &mine {
            if !fk_names.contains(&s(&f[1])) {
                fk_names.push(s(&f[1]));
            }
        }
        for cname in fk_names {
            let parts: Vec<&&Vec<Option<String>>> = mine.iter().filter(|f| s(&f[1]) == cname).collect();
            let from: Vec<&str> = parts.iter().map(|f| s(&f[2])).collect();
            let to: Vec<&str> = parts.iter().map(|f| s(&f[4])).collect();
            let mut l = format!("FK {cname} ({}) -> {}({})", from.join(", "), s(&parts[0][3]), to.join(", "));
            push_rules(&mut l, s(&parts[0][5]), s(&parts[0][6]), true);
            body.fks.push((sort_key(cname), l));
        }
        body.options.push(format!("OPTIONS engine={} collation={}", s(&t[2]), s(&t[3])));
        rels.push(Rel { name, kind, body: body.lines() });
    }
    Ok(rels)
}

// ------------------------------------------------------------------------------------------
// PostgreSQL

/// Normalize a column default: `nextval('x_id_seq'::regclass)` -> `nextval(x_id_seq)`,
/// `'0'::bigint` -> `0`, `'a'::text` -> `'a'`, `NULL::...` -> none.
fn pg_default(d: &str) -> Option<String> {
    let d = d.trim();
    if d.starts_with("NULL::") || d.eq_ignore_ascii_case("NULL") {
        return None;
    }
    if d.starts_with("nextval(") {
        return Some(d.replace("::regclass", "").replace('\'', ""));
    }
    if let Some(rest) = d.strip_prefix('\'') {
        // '<literal>'::<type>, literal with '' escapes
        let mut lit = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if let Some((_, '\'')) = chars.peek() {
                    lit.push('\'');
                    chars.next();
                    continue;
                }
                let tail = &rest[i + 1..];
                if tail.is_empty() || tail.starts_with("::") {
                    if !lit.is_empty() && lit.parse::<f64>().is_ok() {
                        return Some(lit);
                    }
                    return Some(format!("'{}'", lit.replace('\'', "''")));
                }
                break;
            }
            lit.push(c);
        }
    }
    Some(d.to_string())
}

fn strip_outer_parens(e: &str) -> String {
    let e = e.trim();
    if e.starts_with('(') && e.ends_with(')') {
        let inner = &e[1..e.len() - 1];
        let mut depth = 0i32;
        for c in inner.chars() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth < 0 {
                        return e.to_string();
                    }
                }
                _ => {}
            }
        }
        if depth == 0 {
            return inner.trim().to_string();
        }
    }
    e.to_string()
}

async fn pg_relations(conn: &mut Conn) -> Result<Vec<Rel>, sqlx::Error> {
    let rels_rows = conn
        .rows(
            "SELECT c.oid::int8::text, c.relname, c.relkind::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm')",
        )
        .await?;
    let cols = conn
        .rows(
            "SELECT a.attrelid::int8::text, a.attname, format_type(a.atttypid, a.atttypmod), \
             a.attnotnull::text, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, \
             a.attgenerated::text \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
               AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attrelid, a.attnum",
        )
        .await?;
    let cons = conn
        .rows(
            "SELECT con.conrelid::int8::text, con.conname, con.contype::text, \
               (SELECT string_agg(a.attname, ', ' ORDER BY k.ord) \
                  FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord) \
                  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum), \
               CASE WHEN con.confrelid <> 0 THEN con.confrelid::regclass::text END, \
               (SELECT string_agg(a.attname, ', ' ORDER BY k.ord) \
                  FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord) \
                  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum), \
               con.confdeltype::text, con.confupdtype::text, con.convalidated::text, \
               pg_get_constraintdef(con.oid) \
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema()",
        )
        .await?;
    let idx = conn
        .rows(
            "SELECT ix.indrelid::int8::text, i.relname, ix.indisunique::text, \
               (SELECT string_agg(pg_get_indexdef(ix.indexrelid, k, true), ', ' ORDER BY k) \
                  FROM generate_series(1, ix.indnkeyatts) k), \
               pg_get_expr(ix.indpred, ix.indrelid), \
               EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid \
                       AND con.conrelid = ix.indrelid AND con.contype IN ('p', 'u', 'x'))::text, \
               am.amname \
             FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
             JOIN pg_class c ON c.oid = ix.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_am am ON am.oid = i.relam \
             WHERE n.nspname = current_schema()",
        )
        .await?;
    let mut rels = Vec::new();
    for r in rels_rows {
        let (oid, name, kind) = (s(&r[0]), s(&r[1]).to_string(), s(&r[2]));
        let kind = match kind {
            "v" => RelKind::View,
            "m" => RelKind::MatView,
            _ => RelKind::Table,
        };
        if kind != RelKind::Table {
            rels.push(Rel { name, kind, body: vec![] });
            continue;
        }
        let mut body = Body::default();
        for c in cols.iter().filter(|c| s(&c[0]) == oid) {
            let mut l = format!("COL {} {} {}", s(&c[1]), s(&c[2]), if truthy(&c[3]) { "NOT NULL" } else { "NULL" });
            let generated = s(&c[6]) == "s";
            if generated {
                l.push_str(&format!(" GENERATED ALWAYS AS ({}) STORED", s(&c[4])));
            } else if let Some(d) = c[4].as_deref().and_then(pg_default) {
                l.push_str(&format!(" DEFAULT {d}"));
            }
            match s(&c[5]) {
                "a" => l.push_str(" GENERATED ALWAYS AS IDENTITY"),
                "d" => l.push_str(" GENERATED BY DEFAULT AS IDENTITY"),
                _ => {}
            }
            body.cols.push(l);
        }
        for k in cons.iter().filter(|k| s(&k[0]) == oid) {
            let (cname, ctype, ccols) = (s(&k[1]), s(&k[2]), s(&k[3]));
            match ctype {
                "p" => body.pk.push(format!("PK {cname} ({ccols})")),
                "u" => body.uniques.push((sort_key(cname), format!("UNIQUE {cname} ({ccols})  [constraint]"))),
                "f" => {
                    let rule = |c: &str| match c {
                        "r" => "RESTRICT",
                        "c" => "CASCADE",
                        "n" => "SET NULL",
                        "d" => "SET DEFAULT",
                        _ => "NO ACTION",
                    };
                    let mut l = format!("FK {cname} ({ccols}) -> {}({})", s(&k[4]), s(&k[5]));
                    push_rules(&mut l, rule(s(&k[6])), rule(s(&k[7])), false);
                    if !truthy(&k[8]) {
                        l.push_str(" NOT VALID");
                    }
                    body.fks.push((sort_key(cname), l));
                }
                "c" => body.checks.push((sort_key(cname), format!("CHECK {cname} {}", s(&k[9])))),
                "x" => body.checks.push((sort_key(cname), format!("EXCLUDE {cname} {}", s(&k[9])))),
                _ => {}
            }
        }
        for i in idx.iter().filter(|i| s(&i[0]) == oid) {
            if truthy(&i[5]) {
                continue; // backs a PK / UNIQUE / EXCLUDE constraint, shown above
            }
            let iname = s(&i[1]);
            let using = if s(&i[6]) == "btree" { String::new() } else { format!(" USING {}", s(&i[6])) };
            let wh = i[4].as_deref().map(|w| format!(" WHERE {}", strip_outer_parens(w))).unwrap_or_default();
            let line = format!("({}){using}{wh}", s(&i[3]));
            if truthy(&i[2]) {
                body.uniques.push((sort_key(iname), format!("UNIQUE {iname} {line}")));
            } else {
                body.indexes.push((sort_key(iname), format!("INDEX {iname} {line}")));
            }
        }
        rels.push(Rel { name, kind, body: body.lines() });
    }
    Ok(rels)
}

// ------------------------------------------------------------------------------------------
// DATA lines

async fn data_lines(conn: &mut Conn, tables: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let named = |n: &str| -> Vec<&String> { tables.iter().filter(|t| t.eq_ignore_ascii_case(n)).collect() };
    for t in named("MLMDEnv") {
        let sql = format!("SELECT {} FROM {}", conn.as_text("schema_version"), conn.ident(t));
        match conn.rows(&sql).await {
            Ok(rows) => {
                let mut v: Vec<String> = rows.iter().map(|r| r[0].clone().unwrap_or("NULL".into())).collect();
                v.sort_by_key(|x| (x.parse::<i64>().unwrap_or(i64::MAX), x.clone()));
                out.push(format!("DATA {t}.schema_version = [{}]", v.join(", ")));
            }
            Err(e) => out.push(format!("DATA {t}.schema_version error: {e}")),
        }
    }
    for t in named("schema_migrations") {
        let sql = format!("SELECT {}, {} FROM {}", conn.as_text("version"), conn.as_text("dirty"), conn.ident(t));
        match conn.rows(&sql).await {
            Ok(rows) => {
                let mut v: Vec<(i64, String)> = rows
                    .iter()
                    .map(|r| {
                        let ver = s(&r[0]).to_string();
                        (ver.parse().unwrap_or(i64::MAX), format!("version={ver} dirty={}", truthy(&r[1])))
                    })
                    .collect();
                v.sort();
                let v: Vec<String> = v.into_iter().map(|x| x.1).collect();
                out.push(format!("DATA {t} = [{}]", v.join(", ")));
            }
            Err(e) => out.push(format!("DATA {t} error: {e}")),
        }
    }
    for t in named("Type") {
        let sql = format!("SELECT {}, name, version FROM {}", conn.as_text("type_kind"), conn.ident(t));
        match conn.rows(&sql).await {
            Ok(rows) => {
                let mut v: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        format!(
                            "  kind={} name={} version={}",
                            r[0].as_deref().unwrap_or("NULL"),
                            r[1].as_deref().unwrap_or("NULL"),
                            r[2].as_deref().unwrap_or("NULL")
                        )
                    })
                    .collect();
                v.sort();
                out.push(format!("DATA {t} rows={}", v.len()));
                out.extend(v);
            }
            Err(e) => out.push(format!("DATA {t} error: {e}")),
        }
    }
    for t in named("TypeProperty") {
        // The Type table of the same spelling family (TypeProperty -> Type, typeproperty -> type).
        let type_table = tables.iter().find(|x| x.as_str() == &t[..t.len() - "Property".len()]);
        let sql = match type_table {
            Some(tt) => format!(
                "SELECT {}, t.name, t.version, p.name, {} FROM {} p LEFT JOIN {} t ON t.id = p.type_id",
                conn.as_text("t.type_kind"),
                conn.as_text("p.data_type"),
                conn.ident(t),
                conn.ident(tt)
            ),
            None => format!("SELECT NULL, NULL, NULL, name, {} FROM {}", conn.as_text("data_type"), conn.ident(t)),
        };
        match conn.rows(&sql).await {
            Ok(rows) => {
                let mut v: Vec<String> = rows
                    .iter()
                    .map(|r| {
                        format!(
                            "  kind={} type={} version={} name={} data_type={}",
                            r[0].as_deref().unwrap_or("NULL"),
                            r[1].as_deref().unwrap_or("NULL"),
                            r[2].as_deref().unwrap_or("NULL"),
                            r[3].as_deref().unwrap_or("NULL"),
                            r[4].as_deref().unwrap_or("NULL")
                        )
                    })
                    .collect();
                v.sort();
                out.push(format!("DATA {t} rows={}", v.len()));
                out.extend(v);
            }
            Err(e) => out.push(format!("DATA {t} error: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_types() {
        assert_eq!(mysql_type("int(11)"), "int");
        assert_eq!(mysql_type("bigint(20) unsigned"), "bigint unsigned");
        assert_eq!(mysql_type("tinyint(1)"), "tinyint(1)");
        assert_eq!(mysql_type("tinyint(4)"), "tinyint");
        assert_eq!(mysql_type("varchar(255)"), "varchar(255)");
        assert_eq!(mysql_type("mediumtext"), "mediumtext");
        assert_eq!(mysql_type("int"), "int");
    }

    #[test]
    fn pg_defaults() {
        assert_eq!(pg_default("nextval('artifact_id_seq'::regclass)").unwrap(), "nextval(artifact_id_seq)");
        assert_eq!(pg_default("'0'::bigint").unwrap(), "0");
        assert_eq!(pg_default("'it''s'::text").unwrap(), "'it''s'");
        assert_eq!(pg_default("0").unwrap(), "0");
        assert_eq!(pg_default("false").unwrap(), "false");
        assert_eq!(pg_default("NULL::character varying"), None);
    }

    #[test]
    fn sqlite_where_clause() {
        assert_eq!(sqlite_where("CREATE INDEX `i`  ON `T`(`a`, `b`)  WHERE `b` IS NOT NULL").unwrap(), "b IS NOT NULL");
        assert_eq!(sqlite_where("CREATE INDEX nowhere ON t(a)"), None);
        assert_eq!(strip_outer_parens("(a IS NOT NULL)"), "a IS NOT NULL");
        assert_eq!(strip_outer_parens("(a) AND (b)"), "(a) AND (b)");
    }

    #[test]
    fn diff_shows_changes() {
        assert_eq!(dump_diff("TABLE a\n  COL x\n", "TABLE a\n  COL x\n"), None);
        let d = dump_diff("TABLE a\n  COL x\n  COL y\n", "TABLE a\n  COL x\n  COL z\n").unwrap();
        assert_eq!(d, "@ TABLE a\n+  COL z\n-  COL y\n");
    }

    #[test]
    fn header_is_stripped() {
        assert_eq!(strip_dump_header("# x\nTABLE a\n# y\n  COL b\n"), "TABLE a\n  COL b\n");
    }

    #[test]
    fn lit_escapes() {
        assert_eq!(lit_std("a'b"), "'a''b'");
    }
}
