//! What differs in opening a connection, setting up its session and running statements on it.

use std::time::Duration;

use super::Dialect;
use crate::dsn::Backend;

impl Dialect {
    /// Opens a write transaction; SQLite takes its write lock at once rather than at the first
    /// write (`BEGIN IMMEDIATE`), so that nothing can slip in between a check and the writes: a
    /// deferred transaction that reads, then writes, can fail at once with "database is locked"
    /// when another writer got there first.
    pub fn write_begin(self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::MySql | Backend::Postgres => "BEGIN",
        }
    }

    /// Whether the database admits one writer at a time (SQLite): the datastore then runs its
    /// writes through one committer ([`crate::group`]), which also lets them share commits.
    pub fn one_writer_at_a_time(self) -> bool {
        self.backend() == Backend::Sqlite
    }

    /// Whether statements with parameters can go to the database several in one call
    /// ([`crate::conn::Conn::execute_all`]): SQLite's driver prepares and binds them in turn,
    /// `?` counting on across them. Every call there is a hand-off to the connection's thread
    /// and back (about 60 µs on the 2-core machine of docs/benchmarks.md, for a statement that
    /// does nothing). MySQL and PostgreSQL prepare one statement at a time.
    pub fn joins_statements(self) -> bool {
        self.backend() == Backend::Sqlite
    }

    /// What follows an INSERT so that it returns the id of its row, as one 64-bit column; `None`
    /// on MySQL, which has no RETURNING: its driver reports the last id inserted instead.
    pub fn id_returning(self) -> Option<String> {
        match self.backend() {
            Backend::MySql => None,
            Backend::Sqlite | Backend::Postgres => Some(format!("RETURNING {}", self.as_i64("id"))),
        }
    }

    /// What follows a multi-row INSERT of nodes so that it returns each row's `id`, `type_id`
    /// and `name`; `None` on MySQL, whose rows are read back by their unique (type, name) key.
    pub fn keys_returning(self) -> Option<String> {
        self.id_returning().map(|id| format!("{id} AS id, {} AS type_id, name", self.as_i64("type_id")))
    }

    /// A query for the connected database's name and current schema (two text columns), which
    /// golang-migrate folds into its lock ids; `None` on SQLite, whose are both `main`.
    pub fn database_and_schema_query(self) -> Option<&'static str> {
        match self.backend() {
            Backend::Sqlite => None,
            Backend::MySql => Some("SELECT DATABASE(), NULL"),
            Backend::Postgres => Some("SELECT current_database()::text, current_schema()::text"),
        }
    }

    /// The script setting up each of the pool's sessions (not the migrator's own, which may wait
    /// for its lock and run long steps). Session settings rather than startup parameters, which
    /// PgBouncer refuses. `statement_timeout` is the longest a statement may run.
    ///
    /// PostgreSQL's planner is held to the plans the store's statements are written for (see
    /// [`Dialect::unindexed`]):
    /// - `enable_seqscan = off`: every statement reads by key or along an index; a table scan is
    ///   only ever the planner's choice for a table it believes small, and a plan made then
    ///   outlives the belief (a prepared statement keeps its plan for the session).
    /// - `plan_cache_mode = force_generic_plan`: a prepared statement is planned once per
    ///   session, not at every execution (planning was 40 % of PostgreSQL's time in a point
    ///   read); the plans do not depend on the values, `crates/embedmd/tests/plans.rs` checks
    ///   the generic ones.
    /// - `jit = off`: a filtered page's cost estimate (every row of the type, before the LIMIT)
    ///   passes `jit_above_cost` once statistics exist, and compiling took 19 ms of a 22 ms page.
    ///
    /// MariaDB calls the statement limit `max_statement_time` (seconds); MySQL, which does not
    /// know that name, gets [`Dialect::session_settings_fallback`].
    pub fn session_settings(self, statement_timeout: Option<Duration>) -> Option<String> {
        match self.backend() {
            Backend::Sqlite => None,
            Backend::MySql => statement_timeout.map(|t| format!("SET SESSION max_statement_time = {}", t.as_secs_f64())),
            Backend::Postgres => self.settings("SET", statement_timeout),
        }
    }

    /// PostgreSQL's settings (above), each a `verb` (`SET`, or `SET LOCAL` for one transaction).
    pub(super) fn settings(self, verb: &str, statement_timeout: Option<Duration>) -> Option<String> {
        if self.backend() != Backend::Postgres {
            return None;
        }
        let mut settings = format!("{verb} enable_seqscan = off; {verb} plan_cache_mode = force_generic_plan; {verb} jit = off;");
        if let Some(timeout) = statement_timeout {
            settings.push_str(&format!(" {verb} statement_timeout = {};", timeout.as_millis()));
        }
        Some(settings)
    }

    /// The settings for a server that refused a variable of [`Dialect::session_settings`]:
    /// MySQL's `max_execution_time` (milliseconds, SELECTs only).
    pub fn session_settings_fallback(self, statement_timeout: Option<Duration>) -> Option<String> {
        match self.backend() {
            Backend::MySql => statement_timeout.map(|t| format!("SET SESSION max_execution_time = {}", t.as_millis())),
            Backend::Sqlite | Backend::Postgres => None,
        }
    }
}
