//! What differs when the database is more than one server: how a host is judged fit to take
//! the pool (a PostgreSQL standby or a Galera node still joining is not), and what a
//! transaction pooler between the server and PostgreSQL requires of each transaction.

use super::Dialect;
use crate::conn::TextRows;
use crate::dsn::Backend;

impl Dialect {
    /// A script (text protocol) telling whether a host can take the pool's work, judged by
    /// [`Dialect::host_usable`]: libpq asks `SHOW transaction_read_only` for
    /// `target_session_attrs=read-write`; a Galera node (`wsrep_on`) says `wsrep_ready`, which
    /// a MariaDB outside a cluster reports `OFF` and MySQL not at all.
    pub fn host_probe(self) -> Option<&'static str> {
        match self.backend() {
            Backend::Sqlite => None,
            Backend::MySql => Some("SHOW VARIABLES LIKE 'wsrep_on'; SHOW GLOBAL STATUS LIKE 'wsrep_ready'"),
            Backend::Postgres => Some("SHOW transaction_read_only"),
        }
    }

    /// Whether the answer to [`Dialect::host_probe`] lets a host take writes.
    pub fn host_usable(self, rows: &TextRows) -> bool {
        let named = |name: &str| {
            let row = rows.iter().find(|r| r.first().and_then(|v| v.as_deref()).is_some_and(|v| v.eq_ignore_ascii_case(name)));
            row.and_then(|r| r.get(1)).and_then(|v| v.as_deref()).is_some_and(|v| v.eq_ignore_ascii_case("ON"))
        };
        match self.backend() {
            Backend::Sqlite => true,
            Backend::MySql => !named("wsrep_on") || named("wsrep_ready"),
            Backend::Postgres => rows.first().and_then(|r| r.first()).and_then(|v| v.as_deref()) == Some("off"),
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

/// Whether a MySQL/MariaDB server is a Galera node: one row, `ON` in its second column.
pub const GALERA_PROBE: &str = "SHOW VARIABLES LIKE 'wsrep_on'";

/// The migration lock of a Galera cluster. `GET_LOCK` holds only on the node that took it, and
/// a row lock of an open transaction is not seen by the other nodes either (certification
/// happens at commit); a committed row is. The holder inserts the row (autocommit: two nodes
/// inserting at once are told apart by certification, the loser answered a deadlock; later
/// ones a duplicate key) and deletes it when done. A holder that died leaves the row until it
/// expires, [`GALERA_LOCK_LEASE_SECS`] after it was taken.
pub struct RowLock;

/// How long a Galera migration lock holds without its holder: longer than any migration runs.
pub const GALERA_LOCK_LEASE_SECS: i64 = 600;

impl RowLock {
    pub const CREATE: &'static str = "CREATE TABLE IF NOT EXISTS schema_migrations_lock \
         (id INT NOT NULL PRIMARY KEY, holder VARCHAR(64) NOT NULL, expires BIGINT NOT NULL)";
    /// Clears a lock whose holder is gone.
    pub const CLEAR_EXPIRED: &'static str = "DELETE FROM schema_migrations_lock WHERE id = 1 AND expires < UNIX_TIMESTAMP()";
    /// Takes the lock for the holder named by the first parameter, for the lease of the second.
    pub const TAKE: &'static str = "INSERT INTO schema_migrations_lock (id, holder, expires) VALUES (1, ?, UNIX_TIMESTAMP() + ?)";
    pub const RELEASE: &'static str = "DELETE FROM schema_migrations_lock WHERE id = 1 AND holder = ?";
    /// Reads on the session wait until the node has applied every write committed before them
    /// anywhere in the cluster: the previous holder's migrations.
    pub const CAUSAL_READS: &'static str = "SET SESSION wsrep_sync_wait = 1";
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rows(cells: &[&[&str]]) -> TextRows {
        cells.iter().map(|row| row.iter().map(|c| Some((*c).to_owned())).collect()).collect()
    }

    #[test]
    fn a_host_is_usable_when_it_takes_writes() {
        assert!(Dialect::Postgres.host_usable(&rows(&[&["off"]])));
        assert!(!Dialect::Postgres.host_usable(&rows(&[&["on"]])));
        assert!(Dialect::MySql.host_usable(&Vec::new()), "MySQL");
        assert!(Dialect::MySql.host_usable(&rows(&[&["wsrep_on", "OFF"], &["wsrep_ready", "OFF"]])), "MariaDB alone");
        assert!(Dialect::MySql.host_usable(&rows(&[&["wsrep_on", "ON"], &["wsrep_ready", "ON"]])));
        assert!(!Dialect::MySql.host_usable(&rows(&[&["wsrep_on", "ON"], &["wsrep_ready", "OFF"]])), "a node not synced");
    }

    #[test]
    fn behind_a_transaction_pooler_settings_hold_for_one_transaction() {
        let begin = Dialect::Postgres.pooled_begin(Some(Duration::from_millis(1500)));
        assert!(begin.starts_with("BEGIN; SET LOCAL enable_seqscan = off;"), "{begin}");
        assert!(begin.ends_with("SET LOCAL statement_timeout = 1500;"), "{begin}");
        assert!(!begin.contains("SET enable"), "{begin}");
    }
}
