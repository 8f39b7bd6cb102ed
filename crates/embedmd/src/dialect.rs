//! Every SQL difference between the supported databases lives here.

use crate::dsn::Backend;
use crate::store::Arg;

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
    /// dives) and picks well on its own.
    pub fn unindexed(self, condition: &str) -> String {
        match self.backend() {
            Backend::Postgres | Backend::Sqlite => format!("COALESCE(({condition}), FALSE)"),
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
    fn placeholders_follow_the_backend() {
        assert_eq!(Dialect::Postgres.placeholders(2, 3), "$2, $3, $4");
        assert_eq!(Dialect::MySql.placeholders(2, 3), "?, ?, ?");
    }
}
