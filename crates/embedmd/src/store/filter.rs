//! A resolved filter (what `filterQuery` becomes once names are mapped to columns and
//! properties) rendered to SQL: every value a bind parameter, identifiers from this file only.

use super::NodeKind;
use crate::arg::Arg;
use crate::dialect::{Dialect, Table};

/// A main-table column a filter may test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    Name,
    ExternalId,
    CreateTime,
    UpdateTime,
    Uri,
    /// `Artifact.state` or `Execution.last_known_state`.
    State,
}

/// A property value column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueColumn {
    Int,
    Double,
    String,
    Bool,
}

impl ValueColumn {
    fn sql(self) -> &'static str {
        match self {
            ValueColumn::Int => "int_value",
            ValueColumn::Double => "double_value",
            ValueColumn::String => "string_value",
            ValueColumn::Bool => "bool_value",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Column(Column),
    /// A property by name; several value columns are alternatives (an integer literal matches
    /// `int_value` or `double_value`).
    Property {
        name: String,
        custom: bool,
        columns: Vec<ValueColumn>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
    In,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Int(i64),
    Double(f64),
    Text(String),
    Bool(bool),
    List(Vec<FilterValue>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// True where the inner filter is not (a property test is false for a node without the
    /// property, so its negation holds there).
    Not(Box<Filter>),
    /// Contexts whose parent (ParentContext) is one of these: one uncorrelated subquery on the
    /// link's parent index, not a probe per row.
    ChildOf(Vec<i64>),
    Compare {
        target: Target,
        op: CmpOp,
        value: FilterValue,
    },
}

impl Filter {
    /// SQL for `WHERE`, over node alias `n`; `next` turns a value into its placeholder.
    pub(crate) fn render(&self, dialect: Dialect, kind: NodeKind, next: &mut dyn FnMut(Arg) -> String) -> String {
        match self {
            Filter::And(parts) => join(parts, " AND ", dialect, kind, next),
            Filter::Or(parts) => join(parts, " OR ", dialect, kind, next),
            Filter::Not(inner) => format!("NOT ({})", inner.render(dialect, kind, next)),
            Filter::ChildOf(parents) if parents.is_empty() => "1 = 0".to_owned(),
            Filter::ChildOf(parents) => {
                let placeholders: Vec<String> = parents.iter().map(|id| next(Arg::from(*id))).collect();
                format!(
                    "n.id IN (SELECT l.context_id FROM {} l WHERE l.parent_context_id IN ({}))",
                    dialect.table(Table::ParentContext),
                    placeholders.join(", ")
                )
            }
            Filter::Compare { target, op, value } => match target {
                Target::Column(column) => {
                    let sql = format!("n.{}", column_sql(*column, kind));
                    compare(dialect, &sql, *op, value, next)
                }
                Target::Property { name, custom, columns } => {
                    let table = dialect.table(kind.property_table());
                    let owner = kind.owner_column();
                    // Binds in the order they appear in the text (`?` placeholders are positional).
                    let tests: Vec<String> =
                        columns.iter().map(|c| compare(dialect, &format!("p.{}", c.sql()), *op, value, next)).collect();
                    let name_p = next(Arg::from(name.as_str()));
                    let custom_p = next(Arg::from(*custom));
                    // The property's key is the table's primary key: at most one row, probed per
                    // node. A scalar subquery stays a per-row probe, where PostgreSQL would turn
                    // an EXISTS into a hash of every matching property row of the table.
                    format!(
                        "COALESCE((SELECT ({}) FROM {table} p WHERE p.{owner} = n.id AND p.name = {name_p} \
                         AND p.is_custom_property = {custom_p}), FALSE)",
                        tests.join(" OR ")
                    )
                }
            },
        }
    }
}

fn join(parts: &[Filter], sep: &str, dialect: Dialect, kind: NodeKind, next: &mut dyn FnMut(Arg) -> String) -> String {
    let rendered: Vec<String> = parts.iter().map(|p| format!("({})", p.render(dialect, kind, next))).collect();
    rendered.join(sep)
}

fn column_sql(column: Column, kind: NodeKind) -> &'static str {
    match column {
        Column::Id => "id",
        Column::Name => "name",
        Column::ExternalId => "external_id",
        Column::CreateTime => "create_time_since_epoch",
        Column::UpdateTime => "last_update_time_since_epoch",
        Column::Uri => "uri",
        Column::State => kind.state_column().unwrap_or("state"),
    }
}

fn arg(value: &FilterValue) -> Arg {
    match value {
        FilterValue::Int(v) => Arg::Int(Some(*v)),
        FilterValue::Double(v) => Arg::Double(Some(*v)),
        FilterValue::Text(v) => Arg::Text(Some(v.clone())),
        FilterValue::Bool(v) => Arg::Bool(Some(*v)),
        FilterValue::List(_) => unreachable!("lists only follow IN"),
    }
}

fn compare(dialect: Dialect, column: &str, op: CmpOp, value: &FilterValue, next: &mut dyn FnMut(Arg) -> String) -> String {
    match (op, value) {
        (CmpOp::In, FilterValue::List(items)) if items.is_empty() => "1 = 0".to_owned(),
        (CmpOp::In, FilterValue::List(items)) => {
            let placeholders: Vec<String> = items.iter().map(|v| next(arg(v))).collect();
            format!("{column} IN ({})", placeholders.join(", "))
        }
        (CmpOp::In, single) => format!("{column} = {}", next(arg(single))),
        (CmpOp::ILike, v) => dialect.like(column, &next(arg(v)), true),
        (CmpOp::Like, v) => dialect.like(column, &next(arg(v)), false),
        (op, v) => {
            let symbol = match op {
                CmpOp::Eq => "=",
                CmpOp::Ne => "<>",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
                CmpOp::Like | CmpOp::ILike | CmpOp::In => unreachable!("handled above"),
            };
            format!("{column} {symbol} {}", next(arg(v)))
        }
    }
}
