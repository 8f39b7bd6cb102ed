//! Every SQL difference between the supported databases lives here: table names and
//! placeholders below, what connections and sessions need in [`connection`], golang-migrate's
//! bookkeeping and locks in [`migration`]. Other modules ask; none matches on the backend.

mod cluster;
mod connection;
mod migration;

pub use cluster::{RowLock, GALERA_LOCK_LEASE_SECS, GALERA_PROBE};
pub use migration::{advisory_lock_id, LockKey, LockTake, VERSION_TABLE};

use crate::arg::Arg;
use crate::dsn::Backend;

/// A backend together with the table layout found in (or chosen for) the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// MLMD's SQLite schema.
    Sqlite,
    /// MySQL/MariaDB: upstream's schema, identical to MLMD's.
    MySql,
    /// PostgreSQL in upstream's layout: quoted CamelCase tables (what we create).
    Postgres,
    /// PostgreSQL as the MLMD library lays it out: unquoted, hence lower-case, tables. Adopted in
    /// place, since neither MLMD nor upstream can open the other's PostgreSQL layout.
    PostgresMlmd,
}

/// The fifteen MLMD tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Type,
    TypeProperty,
    ParentType,
    Artifact,
    ArtifactProperty,
    Execution,
    ExecutionProperty,
    Context,
    ContextProperty,
    ParentContext,
    Attribution,
    Association,
    Event,
    EventPath,
    MlmdEnv,
}

impl Table {
    pub const ALL: [Table; 15] = [
        Table::Type,
        Table::TypeProperty,
        Table::ParentType,
        Table::Artifact,
        Table::ArtifactProperty,
        Table::Execution,
        Table::ExecutionProperty,
        Table::Context,
        Table::ContextProperty,
        Table::ParentContext,
        Table::Attribution,
        Table::Association,
        Table::Event,
        Table::EventPath,
        Table::MlmdEnv,
    ];

    /// The name as MLMD spells it (and as MySQL, SQLite and upstream PostgreSQL store it).
    pub fn camel_name(self) -> &'static str {
        match self {
            Table::Type => "Type",
            Table::TypeProperty => "TypeProperty",
            Table::ParentType => "ParentType",
            Table::Artifact => "Artifact",
            Table::ArtifactProperty => "ArtifactProperty",
            Table::Execution => "Execution",
            Table::ExecutionProperty => "ExecutionProperty",
            Table::Context => "Context",
            Table::ContextProperty => "ContextProperty",
            Table::ParentContext => "ParentContext",
            Table::Attribution => "Attribution",
            Table::Association => "Association",
            Table::Event => "Event",
            Table::EventPath => "EventPath",
            Table::MlmdEnv => "MLMDEnv",
        }
    }
}

impl Dialect {
    /// A dialect of `backend`, for SQL that is the same in both PostgreSQL layouts.
    pub fn any_layout(backend: Backend) -> Dialect {
        match backend {
            Backend::Sqlite => Dialect::Sqlite,
            Backend::MySql => Dialect::MySql,
            Backend::Postgres => Dialect::Postgres,
        }
    }

    pub fn backend(self) -> Backend {
        match self {
            Dialect::Sqlite => Backend::Sqlite,
            Dialect::MySql => Backend::MySql,
            Dialect::Postgres | Dialect::PostgresMlmd => Backend::Postgres,
        }
    }

    /// The table as it must be written in SQL text.
    pub fn table(self, table: Table) -> &'static str {
        match self {
            Dialect::Sqlite | Dialect::MySql => table.camel_name(),
            Dialect::Postgres => match table {
                Table::Type => "\"Type\"",
                Table::TypeProperty => "\"TypeProperty\"",
                Table::ParentType => "\"ParentType\"",
                Table::Artifact => "\"Artifact\"",
                Table::ArtifactProperty => "\"ArtifactProperty\"",
                Table::Execution => "\"Execution\"",
                Table::ExecutionProperty => "\"ExecutionProperty\"",
                Table::Context => "\"Context\"",
                Table::ContextProperty => "\"ContextProperty\"",
                Table::ParentContext => "\"ParentContext\"",
                Table::Attribution => "\"Attribution\"",
                Table::Association => "\"Association\"",
                Table::Event => "\"Event\"",
                Table::EventPath => "\"EventPath\"",
                Table::MlmdEnv => "\"MLMDEnv\"",
            },
            // Unquoted CamelCase folds to lower case, which is where MLMD's tables are.
            Dialect::PostgresMlmd => table.camel_name(),
        }
    }

    /// An identifier quoted, whatever it holds.
    pub fn quote(self, name: &str) -> String {
        match self.backend() {
            Backend::MySql => format!("`{}`", name.replace('`', "``")),
            Backend::Sqlite | Backend::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// `expr` converted to text.
    pub fn as_text(self, expr: &str) -> String {
        match self.backend() {
            Backend::Sqlite => format!("CAST({expr} AS TEXT)"),
            Backend::MySql => format!("CAST({expr} AS CHAR)"),
            Backend::Postgres => format!("({expr})::text"),
        }
    }

    /// The folder of embedded migrations for this layout.
    pub fn migrations_dir(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::MySql => "mysql",
            Dialect::Postgres => "postgres",
            Dialect::PostgresMlmd => "postgres-mlmd",
        }
    }

    /// The bind placeholder for the `n`-th parameter (1-based).
    pub fn placeholder(self, n: usize) -> String {
        match self.backend() {
            Backend::Postgres => format!("${n}"),
            Backend::Sqlite | Backend::MySql => "?".to_owned(),
        }
    }

    /// `n` comma-separated placeholders starting at parameter `first`.
    pub fn placeholders(self, first: usize, n: usize) -> String {
        (first..first + n).map(|i| self.placeholder(i)).collect::<Vec<_>>().join(", ")
    }

    /// A query, with the table name as its one parameter, that returns a row when the table
    /// exists in the current database (and schema, on PostgreSQL). Names compare exactly, so
    /// PostgreSQL's `MLMDEnv` and `mlmdenv` are told apart.
    pub fn table_exists_query(self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            Backend::MySql => "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
            Backend::Postgres => {
                "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
            }
        }
    }

    /// The name MLMD's catalog shows for `table` (lower case in MLMD's PostgreSQL layout).
    pub fn catalog_name(self, table: Table) -> String {
        match self {
            Dialect::PostgresMlmd => table.camel_name().to_ascii_lowercase(),
            _ => table.camel_name().to_owned(),
        }
    }

    /// `expr` as a 64-bit integer, so one Rust type decodes it everywhere (PostgreSQL's driver
    /// insists on the exact width; MySQL and SQLite widen any integer).
    pub fn as_i64(self, expr: &str) -> String {
        match self.backend() {
            Backend::Postgres => format!("CAST({expr} AS BIGINT)"),
            Backend::Sqlite | Backend::MySql => expr.to_owned(),
        }
    }

    /// `column` matching the LIKE `pattern` (a placeholder), with the backslash escaping `%`
    /// and `_` everywhere: SQLite has no default LIKE escape; MySQL and PostgreSQL use the
    /// backslash. Case-insensitively: PostgreSQL's ILIKE, elsewhere both sides upper-cased.
    pub fn like(self, column: &str, pattern: &str, ignore_case: bool) -> String {
        match (self.backend(), ignore_case) {
            (Backend::Postgres, true) => format!("{column} ILIKE {pattern}"),
            (Backend::MySql, true) => format!("UPPER({column}) LIKE UPPER({pattern})"),
            (Backend::Sqlite, true) => format!("UPPER({column}) LIKE UPPER({pattern}) ESCAPE '\\'"),
            (Backend::Sqlite, false) => format!("{column} LIKE {pattern} ESCAPE '\\'"),
            (Backend::MySql | Backend::Postgres, false) => format!("{column} LIKE {pattern}"),
        }
    }

    /// The integer `id` written as text, followed by the text `suffix`. On MySQL/MariaDB the
    /// integer goes into `CONCAT` as it is: a `CAST(... AS CHAR)` would carry the connection's
    /// collation, which a comparison with a column of another collation refuses.
    pub fn id_with_suffix(self, id: &str, suffix: &str) -> String {
        match self.backend() {
            Backend::MySql => format!("CONCAT({id}, {suffix})"),
            Backend::Sqlite | Backend::Postgres => format!("({} || {suffix})", self.as_text(id)),
        }
    }

    /// The text `expr` holds after its first `:` (all of it without one): a child's name
    /// without its parent's `<id>:` prefix.
    pub fn after_first_colon(self, expr: &str) -> String {
        match self.backend() {
            Backend::Sqlite => format!("substr({expr}, instr({expr}, ':') + 1)"),
            Backend::MySql => format!("SUBSTRING({expr}, LOCATE(':', {expr}) + 1)"),
            Backend::Postgres => format!("substr({expr}, strpos({expr}, ':') + 1)"),
        }
    }

    /// The text `expr` read as a 64-bit integer when it is 1 to 18 digits, else NULL (epoch
    /// milliseconds kept as text): a plain cast fails on PostgreSQL and reads 0 elsewhere.
    pub fn digits_as_int(self, expr: &str) -> String {
        match self.backend() {
            Backend::Sqlite => format!(
                "CASE WHEN length({expr}) BETWEEN 1 AND 18 AND {expr} NOT GLOB '*[^0-9]*' THEN CAST({expr} AS INTEGER) END"
            ),
            Backend::MySql => format!("CASE WHEN {expr} REGEXP '^[0-9]{{1,18}}$' THEN CAST({expr} AS SIGNED) END"),
            Backend::Postgres => format!("CASE WHEN {expr} ~ '^[0-9]{{1,18}}$' THEN CAST({expr} AS BIGINT) END"),
        }
    }

    /// An `ORDER BY` term on `expr` that puts NULLs last whichever the direction. MySQL and
    /// MariaDB have no `NULLS LAST`: a presence term comes first there, on `again()`, the same
    /// expression rendered once more (with binds of its own).
    pub fn nulls_last(self, expr: &str, descending: bool, again: impl FnOnce() -> String) -> String {
        let dir = if descending { "DESC" } else { "ASC" };
        match self.backend() {
            Backend::Sqlite | Backend::Postgres => format!("{expr} {dir} NULLS LAST"),
            // NULL is the smallest value there: last already when descending.
            Backend::MySql if descending => format!("{expr} DESC"),
            Backend::MySql => format!("({}) IS NULL, {expr} ASC", again()),
        }
    }

    /// What follows a property table's `INSERT ... VALUES` so that a row of the same owner,
    /// name and kind (the primary key) is overwritten: its value columns take the new row's.
    pub fn overwriting_property_values(self, owner: &str) -> String {
        let take = |column: &str| match self.backend() {
            Backend::MySql => format!("{column} = VALUES({column})"),
            Backend::Sqlite | Backend::Postgres => format!("{column} = excluded.{column}"),
        };
        // Bytes are never written by the registry: an overwritten row holds none.
        let set = ["int_value", "double_value", "string_value", "bool_value"].map(take).join(", ")
            + ", byte_value = NULL, proto_value = NULL";
        match self.backend() {
            Backend::MySql => format!("ON DUPLICATE KEY UPDATE {set}"),
            Backend::Sqlite | Backend::Postgres => format!("ON CONFLICT ({owner}, name, is_custom_property) DO UPDATE SET {set}"),
        }
    }

    /// An INSERT that skips rows whose key already exists; `head` is `INTO t (cols)` and
    /// `tail` the `VALUES ...` part.
    pub fn insert_ignoring_duplicates(self, head: &str, tail: &str) -> String {
        match self.backend() {
            Backend::Sqlite => format!("INSERT OR IGNORE {head} {tail}"),
            Backend::MySql => format!("INSERT IGNORE {head} {tail}"),
            Backend::Postgres => format!("INSERT {head} {tail} ON CONFLICT DO NOTHING"),
        }
    }
}

/// What moving a registry between databases needs to know about each one
/// ([`crate::transfer`]).
impl Dialect {
    pub const ALL: [Dialect; 4] = [Dialect::Sqlite, Dialect::MySql, Dialect::Postgres, Dialect::PostgresMlmd];

    /// The layout named as its migrations folder is (`sqlite`, `postgres-mlmd`, ...).
    pub fn from_layout(name: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.migrations_dir() == name)
    }

    /// Opens a read-only transaction whose every read sees one snapshot while writers go on:
    /// SQLite's WAL reader keeps the database as of its first read, MySQL's consistent snapshot
    /// and PostgreSQL's REPEATABLE READ as of the first statement. Its reads walk tables in key
    /// order, a chunk at a time: PostgreSQL is kept from sorting, so that it reads each chunk
    /// along the key's index; without statistics (before autovacuum has analyzed a table) it
    /// would scan and sort the whole table for every chunk.
    pub fn snapshot_begin(self) -> &'static [&'static str] {
        match self.backend() {
            Backend::Sqlite => &["BEGIN"],
            Backend::MySql => {
                &["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"]
            }
            Backend::Postgres => &["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "SET LOCAL enable_sort = off"],
        }
    }

    /// An INSERT of rows that bring their own ids: PostgreSQL's identity columns (`GENERATED
    /// ALWAYS`) take them only with `OVERRIDING SYSTEM VALUE`, which its SERIAL columns and
    /// tables without an identity accept as well.
    pub fn insert_keeping_ids(self, table: Table, columns: &str, rows: &str) -> String {
        let overriding = if self.backend() == Backend::Postgres { " OVERRIDING SYSTEM VALUE" } else { "" };
        format!("INSERT INTO {} ({columns}){overriding} VALUES {rows}", self.table(table))
    }

    /// `FROM` and `ORDER BY` reading EventPath event by event, each event's steps in the order
    /// they were stored, as MLMD's reads by event id return them: the table has no key, so the
    /// order is the rowid (SQLite), the heap position (PostgreSQL) or InnoDB's hidden row id,
    /// which entries of `idx_eventpath_event_id` are sorted by within one event (MySQL).
    pub fn event_path_scan(self) -> (String, &'static str) {
        let table = self.table(Table::EventPath);
        match self.backend() {
            Backend::Sqlite => (table.to_owned(), "event_id, rowid"),
            Backend::MySql => (format!("{table} FORCE INDEX (idx_eventpath_event_id)"), "event_id"),
            Backend::Postgres => (table.to_owned(), "event_id, ctid"),
        }
    }

    /// A query for the id `table`'s sequence hands out next (no row, or NULL, when it has
    /// handed out none). MySQL's counter comes from `information_schema`, which MySQL 8 may
    /// cache (`information_schema_stats_expiry`); ids stored are counted separately.
    pub fn next_id_query(self, table: Table) -> String {
        let name = self.catalog_name(table);
        match self.backend() {
            Backend::Sqlite => format!("SELECT seq + 1 FROM sqlite_sequence WHERE name = '{name}'"),
            Backend::MySql => format!(
                "SELECT CAST(AUTO_INCREMENT AS SIGNED) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '{name}'"
            ),
            Backend::Postgres => format!(
                "SELECT CAST(pg_sequence_last_value(pg_get_serial_sequence('{}', 'id')) + 1 AS BIGINT)",
                self.table(table)
            ),
        }
    }

    /// Statements making `next` (above 1) the id `table`'s sequence hands out next. MySQL's is DDL,
    /// which commits the transaction it runs in: see [`Dialect::next_id_after_commit`].
    pub fn set_next_id(self, table: Table, next: i64) -> Vec<String> {
        let name = self.catalog_name(table);
        match self.backend() {
            Backend::Sqlite => vec![
                format!("DELETE FROM sqlite_sequence WHERE name = '{name}'"),
                format!("INSERT INTO sqlite_sequence (name, seq) VALUES ('{name}', {})", next - 1),
            ],
            Backend::MySql => vec![format!("ALTER TABLE {} AUTO_INCREMENT = {next}", self.table(table))],
            // Marked as handed out, so that `pg_sequence_last_value` reads it back.
            Backend::Postgres => {
                vec![format!("SELECT setval(pg_get_serial_sequence('{}', 'id'), {})", self.table(table), next - 1)]
            }
        }
    }

    /// Whether [`Dialect::set_next_id`] must wait until the rows are committed. MySQL moves
    /// its counter past every id inserted by itself, so only a gap the source left after its
    /// last row needs the statement.
    pub fn next_id_after_commit(self) -> bool {
        self.backend() == Backend::MySql
    }

    /// The widest `INT` column value (`int_value`, ids, states): 32 bits on MySQL and
    /// PostgreSQL, 64 on SQLite.
    pub fn max_int(self) -> i64 {
        match self.backend() {
            Backend::Sqlite => i64::MAX,
            Backend::MySql | Backend::Postgres => i64::from(i32::MAX),
        }
    }

    pub fn min_int(self) -> i64 {
        match self.backend() {
            Backend::Sqlite => i64::MIN,
            Backend::MySql | Backend::Postgres => i64::from(i32::MIN),
        }
    }

    /// Characters a `VARCHAR(255)` holds; SQLite does not enforce declared lengths.
    pub fn max_name_chars(self) -> Option<usize> {
        match self.backend() {
            Backend::Sqlite => None,
            Backend::MySql | Backend::Postgres => Some(255),
        }
    }

    /// Whether MLMD keeps a proto value (`proto_value`) as the base64 text of the serialized
    /// message, as it does on SQLite and MySQL, rather than the message's bytes (PostgreSQL).
    pub fn proto_as_base64_text(self) -> bool {
        self.backend() != Backend::Postgres
    }

    /// Whether property names compare ignoring case: MySQL's and MariaDB's default collations
    /// fold it, so `a` and `A` are one key of a node's properties; SQLite and PostgreSQL keep both.
    pub fn property_names_fold_case(self) -> bool {
        self.backend() == Backend::MySql
    }

    /// Whether `DOUBLE` holds NaN and the infinities (MySQL and MariaDB refuse them).
    pub fn stores_non_finite_doubles(self) -> bool {
        self.backend() != Backend::MySql
    }
}

/// How a query reaches rows by key without relying on the planner's statistics. A database
/// that has not been analyzed yet (PostgreSQL before its first autoanalyze, SQLite always) has
/// no idea how selective a condition is; the fragments below give it one sensible plan whatever
/// it believes.
impl Dialect {
    /// The rows of `table`, as `alias`, whose integer `column` is one of `keys` (bound from
    /// parameter `first` on): a `FROM` clause, the condition to AND into `WHERE`, and the
    /// binds. PostgreSQL reads an `IN` list of a page's keys as half the table and scans it;
    /// a lateral subquery it cannot flatten (`OFFSET 0`) probes the key's index once per key.
    pub fn rows_by_keys(self, table: Table, column: &str, alias: &str, keys: &[i64], first: usize) -> (String, String, Vec<Arg>) {
        let table = self.table(table);
        match self.backend() {
            Backend::Postgres => {
                let list = keys.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                let from = format!(
                    "unnest(CAST({} AS BIGINT[])) AS page_keys(id) CROSS JOIN LATERAL \
                     (SELECT * FROM {table} k WHERE k.{column} = page_keys.id OFFSET 0) {alias}",
                    self.placeholder(first)
                );
                (from, "TRUE".to_owned(), vec![Arg::Text(Some(format!("{{{list}}}")))])
            }
            Backend::Sqlite | Backend::MySql => {
                let condition = format!("{alias}.{column} IN ({})", self.placeholders(first, keys.len()));
                (format!("{table} {alias}"), condition, keys.iter().map(|k| Arg::from(*k)).collect())
            }
        }
    }

    /// The rows of `table`, as `alias`, of one of `type_ids` named one of `names` (bound from
    /// parameter `first` on): a `FROM` clause, the condition to AND into `WHERE`, and the
    /// binds. PostgreSQL's generic plan of two `IN` lists probes the (type_id, name) key by type
    /// alone and filters every node of the types by name; a lateral probe per name uses both.
    pub fn rows_by_names(
        self,
        table: Table,
        alias: &str,
        type_ids: &[i64],
        names: &[String],
        first: usize,
    ) -> (String, String, Vec<Arg>) {
        let table = self.table(table);
        let mut args: Vec<Arg> = names.iter().map(|n| Arg::from(n.as_str())).collect();
        let types = self.placeholders(first + names.len(), type_ids.len());
        args.extend(type_ids.iter().map(|t| Arg::from(*t)));
        match self.backend() {
            Backend::Postgres => {
                let values: Vec<String> = (0..names.len()).map(|i| format!("({})", self.placeholder(first + i))).collect();
                let from = format!(
                    "(VALUES {}) AS page_names(name) CROSS JOIN LATERAL \
                     (SELECT * FROM {table} k WHERE k.name = page_names.name AND k.type_id IN ({types}) OFFSET 0) {alias}",
                    values.join(", ")
                );
                (from, "TRUE".to_owned(), args)
            }
            Backend::Sqlite | Backend::MySql => {
                let condition =
                    format!("{alias}.name IN ({}) AND {alias}.type_id IN ({types})", self.placeholders(first, names.len()));
                (format!("{table} {alias}"), condition, args)
            }
        }
    }

    /// The children of one parent, as `n`, through the link table (`l`), whose `owner` column
    /// the caller tests: a `FROM` clause. The link's index finds the few children first, then
    /// each is read by id; PostgreSQL, left to its estimates, scans all the nodes of the type
    /// instead, so it gets a lateral subquery per link row.
    pub fn children(self, nodes: Table, link: Table, child: &str) -> String {
        let (nodes, link) = (self.table(nodes), self.table(link));
        match self.backend() {
            Backend::Postgres => {
                format!("{link} l CROSS JOIN LATERAL (SELECT * FROM {nodes} c WHERE c.id = l.{child} OFFSET 0) n")
            }
            Backend::Sqlite | Backend::MySql => format!("{nodes} n JOIN {link} l ON l.{child} = n.id"),
        }
    }

    /// The properties of each node `n` (a derived table), as `p`, one row per property and one
    /// row of NULLs for a node without any: a join clause to follow `FROM (...) n`. PostgreSQL
    /// probes the property table's key once per node (a lateral subquery it cannot flatten)
    /// rather than maybe hashing the whole table.
    pub fn properties_of_each(self, properties: Table, owner: &str) -> String {
        let table = self.table(properties);
        match self.backend() {
            Backend::Postgres => format!("LEFT JOIN LATERAL (SELECT * FROM {table} k WHERE k.{owner} = n.id OFFSET 0) p ON TRUE"),
            Backend::Sqlite | Backend::MySql => format!("LEFT JOIN {table} p ON p.{owner} = n.id"),
        }
    }

    /// Whether a page of one type in name order bounds the (type_id, name) index with a row
    /// comparison, the type test hidden: PostgreSQL, which given the type test in sight reads
    /// every row of the type through its type_id index and sorts them when it has no
    /// statistics. SQLite and MySQL walk the unique index given the plain type test.
    pub fn bounds_names_by_row(self) -> bool {
        self.backend() == Backend::Postgres
    }

    /// Whether one statement can insert into several tables (PostgreSQL's data-modifying
    /// `WITH`), so that a node, its properties and its link are written in one round trip.
    pub fn writes_with_ctes(self) -> bool {
        self.backend() == Backend::Postgres
    }

    /// `condition` in a form no index can serve, so that a list is read along the index of
    /// its order (bounded by the page) rather than through the type's index and a sort of
    /// every row of the type, which PostgreSQL and SQLite pick when they have no statistics
    /// (and SQLite picks always). They estimate such an opaque condition as true for half the
    /// rows, whatever the data. MySQL's optimizer counts the rows in the index itself (index
    /// dives) and picks well on its own. On SQLite the condition goes under `CASE WHEN`, not
    /// `COALESCE`: SQLite evaluates an `AND` inside a value (a function's argument) in full,
    /// so a property probe after a name test that already failed ran for every row (a name
    /// search matching nothing took 206 ms at 100 000 models); `CASE WHEN` tests it as a
    /// condition, which stops at the first false term.
    pub fn unindexed(self, condition: &str) -> String {
        match self.backend() {
            Backend::Postgres => format!("COALESCE(({condition}), FALSE)"),
            Backend::Sqlite => format!("CASE WHEN ({condition}) THEN TRUE ELSE FALSE END"),
            Backend::MySql => condition.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_layouts_name_tables_differently() {
        assert_eq!(Dialect::Postgres.table(Table::MlmdEnv), "\"MLMDEnv\"");
        assert_eq!(Dialect::PostgresMlmd.table(Table::MlmdEnv), "MLMDEnv");
        assert_eq!(Dialect::MySql.table(Table::EventPath), "EventPath");
    }

    #[test]
    fn layouts_are_named_as_their_migrations() {
        for dialect in Dialect::ALL {
            assert_eq!(Dialect::from_layout(dialect.migrations_dir()), Some(dialect));
        }
        assert_eq!(Dialect::from_layout("oracle"), None);
    }

    #[test]
    fn sequences_are_read_and_moved_per_layout() {
        assert_eq!(
            Dialect::Postgres.set_next_id(Table::Artifact, 7),
            ["SELECT setval(pg_get_serial_sequence('\"Artifact\"', 'id'), 6)"]
        );
        assert!(Dialect::PostgresMlmd.next_id_query(Table::Event).contains("pg_get_serial_sequence('Event', 'id')"));
        assert_eq!(Dialect::MySql.set_next_id(Table::Type, 3), ["ALTER TABLE Type AUTO_INCREMENT = 3"]);
        assert!(Dialect::Sqlite.next_id_query(Table::Artifact).ends_with("name = 'Artifact'"));
    }

    #[test]
    fn like_escapes_with_the_backslash_everywhere() {
        assert_eq!(Dialect::Sqlite.like("n.name", "?", false), "n.name LIKE ? ESCAPE '\\'");
        assert_eq!(Dialect::Sqlite.like("n.name", "?", true), "UPPER(n.name) LIKE UPPER(?) ESCAPE '\\'");
        assert_eq!(Dialect::MySql.like("n.name", "?", true), "UPPER(n.name) LIKE UPPER(?)");
        assert_eq!(Dialect::PostgresMlmd.like("n.name", "$1", true), "n.name ILIKE $1");
        assert_eq!(Dialect::Postgres.like("n.name", "$1", false), "n.name LIKE $1");
    }

    #[test]
    fn sqlite_hides_a_condition_from_indexes_without_evaluating_it_in_full() {
        assert_eq!(Dialect::Sqlite.unindexed("a AND b"), "CASE WHEN (a AND b) THEN TRUE ELSE FALSE END");
        assert_eq!(Dialect::Postgres.unindexed("a AND b"), "COALESCE((a AND b), FALSE)");
        assert_eq!(Dialect::MySql.unindexed("a AND b"), "a AND b");
    }

    #[test]
    fn nulls_sort_last_either_way() {
        assert_eq!(Dialect::Postgres.nulls_last("v", false, || unreachable!()), "v ASC NULLS LAST");
        assert_eq!(Dialect::Sqlite.nulls_last("v", true, || unreachable!()), "v DESC NULLS LAST");
        assert_eq!(Dialect::MySql.nulls_last("v", true, || unreachable!()), "v DESC");
        assert_eq!(Dialect::MySql.nulls_last("v1", false, || "v2".into()), "(v2) IS NULL, v1 ASC");
    }

    #[test]
    fn placeholders_follow_the_backend() {
        assert_eq!(Dialect::Postgres.placeholders(2, 3), "$2, $3, $4");
        assert_eq!(Dialect::MySql.placeholders(2, 3), "?, ?, ?");
    }
}
