//! What differs when the database is more than one server: how a host is judged fit to take
//! the pool (a PostgreSQL standby or a Galera node still joining is not), and what a
//! transaction pooler between the server and PostgreSQL requires of each transaction.

use super::Dialect;
use crate::conn::TextRows;
use crate::dsn::Backend;

impl Dialect {
    /// A query (text protocol) telling whether a host can take the pool's work, judged by
    /// [`Dialect::host_usable`]: libpq asks `SHOW transaction_read_only` for
    /// `target_session_attrs=read-write`; a Galera node says `wsrep_ready` (no row on a server
    /// outside a cluster). `None` on SQLite.
    pub fn host_probe(self) -> Option<&'static str> {
        match self.backend() {
            Backend::Sqlite => None,
            Backend::MySql => Some("SHOW GLOBAL STATUS LIKE 'wsrep_ready'"),
            Backend::Postgres => Some("SHOW transaction_read_only"),
        }
    }

    /// Whether the answer to [`Dialect::host_probe`] lets a host take writes.
    pub fn host_usable(self, rows: &TextRows) -> bool {
        let value = |column: usize| rows.first().and_then(|r| r.get(column)).and_then(|v| v.as_deref());
        match self.backend() {
            Backend::Sqlite => true,
            Backend::MySql => rows.is_empty() || value(1).is_some_and(|v| v.eq_ignore_ascii_case("ON")),
            Backend::Postgres => value(0) == Some("off"),
        }
    }

    /// Opens a transaction behind a transaction pooler ([`crate::dsn::Pooler::Transaction`]):
    /// the session settings, which would leak to other clients' transactions (and be lost for
    /// this one's next), are set for this transaction only, in the same round trip.
    pub fn pooled_begin(self, statement_timeout: Option<std::time::Duration>) -> String {
        match self.settings("SET LOCAL", statement_timeout) {
            Some(settings) => format!("{}; {settings}", self.write_begin()),
            None => self.write_begin().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rows(cells: &[&str]) -> TextRows {
        vec![cells.iter().map(|c| Some((*c).to_owned())).collect()]
    }

    #[test]
    fn a_host_is_usable_when_it_takes_writes() {
        assert!(Dialect::Postgres.host_usable(&rows(&["off"])));
        assert!(!Dialect::Postgres.host_usable(&rows(&["on"])));
        assert!(Dialect::MySql.host_usable(&Vec::new()), "a server outside a Galera cluster");
        assert!(Dialect::MySql.host_usable(&rows(&["wsrep_ready", "ON"])));
        assert!(!Dialect::MySql.host_usable(&rows(&["wsrep_ready", "OFF"])));
    }

    #[test]
    fn behind_a_transaction_pooler_settings_hold_for_one_transaction() {
        let begin = Dialect::Postgres.pooled_begin(Some(Duration::from_millis(1500)));
        assert!(begin.starts_with("BEGIN; SET LOCAL enable_seqscan = off;"), "{begin}");
        assert!(begin.ends_with("SET LOCAL statement_timeout = 1500;"), "{begin}");
        assert!(!begin.contains("SET enable"), "{begin}");
    }
}
