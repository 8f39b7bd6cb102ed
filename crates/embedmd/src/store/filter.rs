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
    /// A child's name without its parent's `<id>:` prefix.
    BareName,
}

impl Column {
    /// Whether the column holds integers (compared as text with a string).
    fn numeric(self) -> bool {
        matches!(self, Column::Id | Column::CreateTime | Column::UpdateTime | Column::State)
    }
}

/// A property value column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueColumn {
    Int,
    Double,
    String,
    Bool,
    /// `string_value` read as an integer when it is digits (epoch milliseconds kept as text),
    /// NULL otherwise.
    Digits,
}

impl ValueColumn {
    /// The column of the property row `alias`.
    fn sql(self, dialect: Dialect, alias: &str) -> String {
        match self {
            ValueColumn::Int => format!("{alias}.int_value"),
            ValueColumn::Double => format!("{alias}.double_value"),
            ValueColumn::String => format!("{alias}.string_value"),
            ValueColumn::Bool => format!("{alias}.bool_value"),
            ValueColumn::Digits => dialect.digits_as_int(&format!("{alias}.string_value")),
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
    /// A typed property of the artifact of `type_id` stored as `<node id>:<name>`: what the
    /// registry logs by name under a context (a run's metrics and parameters). Found through
    /// the artifact table's `(type_id, name)` key, one probe per node.
    Named {
        type_id: i64,
        name: String,
        property: String,
        columns: Vec<ValueColumn>,
    },
}

/// A term of a list's order before its order column: `target`'s value, nodes without one last
/// whichever the direction.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub target: Target,
    pub descending: bool,
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
    /// Artifacts attributed to one of these contexts: one uncorrelated subquery on the
    /// attribution key, as [`Filter::ChildOf`].
    AttributedTo(Vec<i64>),
    Compare {
        target: Target,
        op: CmpOp,
        value: FilterValue,
    },
    /// True where the property target has a value.
    Has(Target),
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
            Filter::AttributedTo(contexts) if contexts.is_empty() => "1 = 0".to_owned(),
            Filter::AttributedTo(contexts) => {
                let placeholders: Vec<String> = contexts.iter().map(|id| next(Arg::from(*id))).collect();
                format!(
                    "n.id IN (SELECT l.artifact_id FROM {} l WHERE l.context_id IN ({}))",
                    dialect.table(Table::Attribution),
                    placeholders.join(", ")
                )
            }
            Filter::Compare { target: Target::Column(column), op, value } => {
                let mut sql = column_sql(dialect, *column, kind);
                let text = |v: &FilterValue| matches!(v, FilterValue::Text(_));
                let text_value = match value {
                    FilterValue::List(items) => items.iter().any(text),
                    v => text(v),
                };
                if column.numeric() && text_value {
                    sql = dialect.as_text(&sql);
                }
                compare(dialect, &sql, *op, value, next)
            }
            Filter::Compare { target, op, value } => {
                // Binds in the order they appear in the text (`?` placeholders are positional).
                let tests = |next: &mut dyn FnMut(Arg) -> String, columns: &[ValueColumn]| {
                    let tests: Vec<String> =
                        columns.iter().map(|c| compare(dialect, &c.sql(dialect, "p"), *op, value, next)).collect();
                    format!("({})", tests.join(" OR "))
                };
                // The probes below are scalar subqueries, at most one row each, per node:
                // PostgreSQL would turn an EXISTS into a hash of every matching row of the table.
                format!("COALESCE({}, FALSE)", target.probe(dialect, kind, next, &tests))
            }
            Filter::Has(target) => {
                let found = target.probe(dialect, kind, next, &|_, _| "TRUE".to_owned());
                format!("COALESCE({found}, FALSE)")
            }
        }
    }
}

/// What a probe selects from a target's value columns (binding through the given `next`).
type Selected<'a> = dyn Fn(&mut dyn FnMut(Arg) -> String, &[ValueColumn]) -> String + 'a;

impl Target {
    /// `(SELECT <what> FROM <the target's property row p> ...)` for node `n`; `what` renders
    /// the selected value from the target's value columns. A main-table column is no subquery.
    fn probe(&self, dialect: Dialect, kind: NodeKind, next: &mut dyn FnMut(Arg) -> String, what: &Selected<'_>) -> String {
        match self {
            Target::Column(column) => column_sql(dialect, *column, kind),
            Target::Property { name, custom, columns } => {
                let table = dialect.table(kind.property_table());
                let owner = kind.owner_column();
                let selected = what(next, columns);
                let name_p = next(Arg::from(name.as_str()));
                let custom_p = next(Arg::from(*custom));
                // The property's key is the table's primary key: one probe per node.
                format!(
                    "(SELECT {selected} FROM {table} p WHERE p.{owner} = n.id AND p.name = {name_p} \
                     AND p.is_custom_property = {custom_p})"
                )
            }
            Target::Named { type_id, name, property, columns } => {
                let selected = what(next, columns);
                let type_p = next(Arg::from(*type_id));
                let suffix = next(Arg::from(format!(":{name}")));
                let stored = dialect.id_with_suffix("n.id", &suffix);
                let property_p = next(Arg::from(property.as_str()));
                let typed = next(Arg::from(false));
                format!(
                    "(SELECT {selected} FROM {artifacts} a JOIN {properties} p ON p.artifact_id = a.id \
                     WHERE a.type_id = {type_p} AND a.name = {stored} AND p.name = {property_p} \
                     AND p.is_custom_property = {typed})",
                    artifacts = dialect.table(Table::Artifact),
                    properties = dialect.table(Table::ArtifactProperty),
                )
            }
        }
    }

    /// The target's value for node `n` (NULL without one), to order by: the first value
    /// column that is set.
    pub(crate) fn value(&self, dialect: Dialect, kind: NodeKind, next: &mut dyn FnMut(Arg) -> String) -> String {
        self.probe(dialect, kind, next, &|_, columns| match columns {
            [one] => one.sql(dialect, "p"),
            many => format!("COALESCE({})", many.iter().map(|c| c.sql(dialect, "p")).collect::<Vec<_>>().join(", ")),
        })
    }
}

fn join(parts: &[Filter], sep: &str, dialect: Dialect, kind: NodeKind, next: &mut dyn FnMut(Arg) -> String) -> String {
    let rendered: Vec<String> = parts.iter().map(|p| format!("({})", p.render(dialect, kind, next))).collect();
    rendered.join(sep)
}

fn column_sql(dialect: Dialect, column: Column, kind: NodeKind) -> String {
    let name = match column {
        Column::Id => "id",
        Column::Name => "name",
        Column::ExternalId => "external_id",
        Column::CreateTime => "create_time_since_epoch",
        Column::UpdateTime => "last_update_time_since_epoch",
        Column::Uri => "uri",
        Column::State => kind.state_column().unwrap_or("state"),
        Column::BareName => return dialect.after_first_colon("n.name"),
    };
    format!("n.{name}")
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
