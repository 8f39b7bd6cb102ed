//! The migration files embedded in the binary, one folder per dialect layout, named as
//! golang-migrate expects: `NNNNNN_<name>.up.sql` and `NNNNNN_<name>.down.sql`.

use include_dir::{include_dir, Dir};

use crate::dialect::Dialect;

static MIGRATIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/migrations");

/// One version: its name and both bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: u64,
    pub name: String,
    pub up: &'static str,
    pub down: &'static str,
}

impl Migration {
    /// A body with nothing but comments and whitespace is not sent: MySQL rejects an empty
    /// query, and the removed upstream slots are comment-only on purpose.
    pub fn has_statements(body: &str) -> bool {
        body.lines().map(str::trim).any(|line| !line.is_empty() && !line.starts_with("--"))
    }
}

/// The ordered migrations of one layout.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    migrations: Vec<Migration>,
}

impl MigrationSet {
    pub fn for_dialect(dialect: Dialect) -> Self {
        let dir = MIGRATIONS
            .get_dir(dialect.migrations_dir())
            .unwrap_or_else(|| panic!("migrations/{} is embedded", dialect.migrations_dir()));
        let mut migrations: Vec<Migration> = Vec::new();
        for file in dir.files() {
            let file_name = file.path().file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let Some((version, name, direction)) = parse_file_name(file_name) else { continue };
            let body = file.contents_utf8().unwrap_or_else(|| panic!("{file_name} is UTF-8"));
            let index = match migrations.iter().position(|m| m.version == version) {
                Some(i) => i,
                None => {
                    migrations.push(Migration { version, name: name.to_owned(), up: "", down: "" });
                    migrations.len() - 1
                }
            };
            let slot = match direction {
                Direction::Up => &mut migrations[index].up,
                Direction::Down => &mut migrations[index].down,
            };
            assert!(slot.is_empty(), "two {direction:?} files for version {version}");
            *slot = body;
        }
        migrations.sort_by_key(|m| m.version);
        Self { migrations }
    }

    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    pub fn latest(&self) -> Option<u64> {
        self.migrations.last().map(|m| m.version)
    }

    pub fn get(&self, version: u64) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.version == version)
    }

    /// Position of `version` in the ordered list.
    pub fn index_of(&self, version: u64) -> Option<usize> {
        self.migrations.iter().position(|m| m.version == version)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// golang-migrate's `^([0-9]+)_(.*)\.(down|up)\.(.*)$`, restricted to `.sql`.
fn parse_file_name(file_name: &str) -> Option<(u64, &str, Direction)> {
    let stem = file_name.strip_suffix(".sql")?;
    let (rest, direction) = if let Some(rest) = stem.strip_suffix(".up") {
        (rest, Direction::Up)
    } else {
        (stem.strip_suffix(".down")?, Direction::Down)
    };
    let (digits, name) = rest.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, name, direction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse_as_golang_migrate_does() {
        assert_eq!(parse_file_name("000001_create_artifact_table.up.sql"), Some((1, "create_artifact_table", Direction::Up)));
        assert_eq!(parse_file_name("000017_seed.down.sql"), Some((17, "seed", Direction::Down)));
        assert_eq!(parse_file_name("README.md"), None);
        assert_eq!(parse_file_name("x1_name.up.sql"), None);
    }

    #[test]
    fn every_layout_has_upstream_numbering_with_both_directions() {
        let expected = [(Dialect::Sqlite, 21), (Dialect::MySql, 21), (Dialect::Postgres, 25), (Dialect::PostgresMlmd, 25)];
        for (dialect, last) in expected {
            let set = MigrationSet::for_dialect(dialect);
            let versions: Vec<u64> = set.migrations().iter().map(|m| m.version).collect();
            assert_eq!(versions, (1..=last).collect::<Vec<_>>(), "{dialect:?}");
            for m in set.migrations() {
                assert!(!m.up.is_empty() && !m.down.is_empty(), "{dialect:?} {} lacks a file", m.version);
            }
        }
    }

    #[test]
    fn removed_upstream_slots_are_comment_only() {
        for dialect in [Dialect::Sqlite, Dialect::MySql, Dialect::Postgres, Dialect::PostgresMlmd] {
            let set = MigrationSet::for_dialect(dialect);
            for version in [17, 19, 20, 21] {
                let m = set.get(version).unwrap();
                assert!(!Migration::has_statements(m.up), "{dialect:?} {version}");
            }
        }
    }
}
