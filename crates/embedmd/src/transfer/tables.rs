//! The fourteen MLMD tables an export carries (MLMDEnv travels as the header's schema version),
//! their columns under MLMD's names, which are the same in every dialect, and the order each is
//! read in.

use crate::dialect::Table;

/// What a column holds, as far as moving it between dialects goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `INT`: 32 bits on MySQL and PostgreSQL, 64 on SQLite (ids, type ids, states, codes,
    /// `int_value`).
    Int,
    /// `BIGINT`: times in milliseconds.
    BigInt,
    /// `VARCHAR(255)`: names, versions, external ids (255 characters on MySQL and PostgreSQL;
    /// SQLite does not enforce it).
    Name,
    Text,
    Double,
    Bool,
    /// `BLOB`/`bytea`/`MEDIUMBLOB`: base64 in the file.
    Bytes,
    /// `proto_value`: a serialized `google.protobuf.Any`, base64 in the file. MLMD stores the
    /// message itself on PostgreSQL but its base64 text on SQLite and MySQL
    /// ([`crate::Dialect::proto_as_base64_text`]); the file holds the message either way.
    Proto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// `NOT NULL`: a row must carry it.
    pub required: bool,
}

/// How a table is read in bounded chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By the surrogate `id` (the first column), which a sequence hands out.
    Id,
    /// By the column naming the row's owner, a whole owner per chunk, then by the rest of the
    /// primary key (`None`: EventPath, which has no key and whose steps keep the order they were
    /// written in).
    Owner { owner: &'static str, then: Option<&'static str> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    pub table: Table,
    pub columns: &'static [Column],
    pub order: Order,
}

impl TableSpec {
    pub fn has_id(&self) -> bool {
        self.order == Order::Id
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, required: false }
}

const fn req(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, required: true }
}

use Kind::{BigInt, Bool, Bytes, Double, Int, Name, Proto, Text};

const NODE_TIMES: [Column; 2] = [req("create_time_since_epoch", BigInt), req("last_update_time_since_epoch", BigInt)];

/// A property table: its owner column, then MLMD's value columns.
const fn property_columns(owner: &'static str) -> [Column; 9] {
    [
        req(owner, Int),
        req("name", Name),
        req("is_custom_property", Bool),
        col("int_value", Int),
        col("double_value", Double),
        col("string_value", Text),
        col("byte_value", Bytes),
        col("proto_value", Proto),
        col("bool_value", Bool),
    ]
}

/// The widest table's columns (the property tables'), which bounds an INSERT's bind values.
pub const MAX_COLUMNS: usize = property_columns("").len();

const PROPERTY_ORDER: Option<&str> = Some("name, is_custom_property");

static ARTIFACT_PROPERTY: [Column; 9] = property_columns("artifact_id");
static EXECUTION_PROPERTY: [Column; 9] = property_columns("execution_id");
static CONTEXT_PROPERTY: [Column; 9] = property_columns("context_id");

/// Every table in the order of the file: owners before what points at them, so that
/// PostgreSQL's foreign keys accept each INSERT as it comes.
pub static TABLES: [TableSpec; 14] = [
    TableSpec {
        table: Table::Type,
        columns: &[
            req("id", Int),
            req("name", Name),
            col("version", Name),
            req("type_kind", Int),
            col("description", Text),
            col("input_type", Text),
            col("output_type", Text),
            col("external_id", Name),
        ],
        order: Order::Id,
    },
    TableSpec {
        table: Table::TypeProperty,
        columns: &[req("type_id", Int), req("name", Name), col("data_type", Int)],
        order: Order::Owner { owner: "type_id", then: Some("name") },
    },
    TableSpec {
        table: Table::ParentType,
        columns: &[req("type_id", Int), req("parent_type_id", Int)],
        order: Order::Owner { owner: "type_id", then: Some("parent_type_id") },
    },
    TableSpec {
        table: Table::Artifact,
        columns: &[
            req("id", Int),
            req("type_id", Int),
            col("uri", Text),
            col("state", Int),
            col("name", Name),
            col("external_id", Name),
            NODE_TIMES[0],
            NODE_TIMES[1],
        ],
        order: Order::Id,
    },
    TableSpec {
        table: Table::ArtifactProperty,
        columns: &ARTIFACT_PROPERTY,
        order: Order::Owner { owner: "artifact_id", then: PROPERTY_ORDER },
    },
    TableSpec {
        table: Table::Execution,
        columns: &[
            req("id", Int),
            req("type_id", Int),
            col("last_known_state", Int),
            col("name", Name),
            col("external_id", Name),
            NODE_TIMES[0],
            NODE_TIMES[1],
        ],
        order: Order::Id,
    },
    TableSpec {
        table: Table::ExecutionProperty,
        columns: &EXECUTION_PROPERTY,
        order: Order::Owner { owner: "execution_id", then: PROPERTY_ORDER },
    },
    TableSpec {
        table: Table::Context,
        columns: &[
            req("id", Int),
            req("type_id", Int),
            req("name", Name),
            col("external_id", Name),
            NODE_TIMES[0],
            NODE_TIMES[1],
        ],
        order: Order::Id,
    },
    TableSpec {
        table: Table::ContextProperty,
        columns: &CONTEXT_PROPERTY,
        order: Order::Owner { owner: "context_id", then: PROPERTY_ORDER },
    },
    TableSpec {
        table: Table::ParentContext,
        columns: &[req("context_id", Int), req("parent_context_id", Int)],
        order: Order::Owner { owner: "context_id", then: Some("parent_context_id") },
    },
    TableSpec {
        table: Table::Attribution,
        columns: &[req("id", Int), req("context_id", Int), req("artifact_id", Int)],
        order: Order::Id,
    },
    TableSpec {
        table: Table::Association,
        columns: &[req("id", Int), req("context_id", Int), req("execution_id", Int)],
        order: Order::Id,
    },
    TableSpec {
        table: Table::Event,
        columns: &[
            req("id", Int),
            req("artifact_id", Int),
            req("execution_id", Int),
            req("type", Int),
            col("milliseconds_since_epoch", BigInt),
        ],
        order: Order::Id,
    },
    TableSpec {
        table: Table::EventPath,
        columns: &[req("event_id", Int), req("is_index_step", Bool), col("step_index", Int), col("step_key", Text)],
        order: Order::Owner { owner: "event_id", then: None },
    },
];

/// The spec of a table by its MLMD name (as the file writes it).
pub fn by_name(name: &str) -> Option<(usize, &'static TableSpec)> {
    TABLES.iter().enumerate().find(|(_, t)| t.table.camel_name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mlmd_table_but_mlmdenv_once_in_table_order() {
        let expected: Vec<Table> = Table::ALL.into_iter().filter(|t| *t != Table::MlmdEnv).collect();
        assert_eq!(TABLES.iter().map(|t| t.table).collect::<Vec<_>>(), expected);
        for spec in &TABLES {
            assert!(spec.columns.len() <= MAX_COLUMNS, "{:?}", spec.table);
            assert_eq!(spec.has_id(), spec.columns[0].name == "id", "{:?}", spec.table);
            if let Order::Owner { owner, .. } = spec.order {
                assert_eq!(spec.columns[0].name, owner, "{:?}", spec.table);
            }
        }
    }
}
