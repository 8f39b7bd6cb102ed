//! `filterQuery` resolution: REST names become columns, typed properties or custom properties
//! of the listed entities (contract section 5.2), ready for the store to render as SQL.

use embedmd::store::{CmpOp, Column, Filter, FilterValue, Target, ValueColumn};
use filter_query::{Comparison, Expr, Literal, Op, ValueType};

use super::error::{Error, Result};
use super::spec::{Codec, EntityKind, Place, ARTIFACT_STATES, EXECUTION_STATES, HIDDEN_LINKS};

/// Parses and resolves a filter for a list of `kinds` (several for `/artifacts`).
pub fn resolve(kinds: &[EntityKind], query: Option<&str>) -> Result<Option<Filter>> {
    let Some(expr) = filter_query::parse(query.unwrap_or_default()).map_err(|e| Error::bad_request(e.to_string()))? else {
        return Ok(None);
    };
    resolve_expr(kinds, &expr).map(Some)
}

fn resolve_expr(kinds: &[EntityKind], expr: &Expr) -> Result<Filter> {
    Ok(match expr {
        Expr::And(parts) => Filter::And(parts.iter().map(|p| resolve_expr(kinds, p)).collect::<Result<_>>()?),
        Expr::Or(parts) => Filter::Or(parts.iter().map(|p| resolve_expr(kinds, p)).collect::<Result<_>>()?),
        Expr::Compare(comparison) => resolve_comparison(kinds, comparison)?,
    })
}

fn op(op: Op) -> CmpOp {
    match op {
        Op::Eq => CmpOp::Eq,
        Op::Ne => CmpOp::Ne,
        Op::Lt => CmpOp::Lt,
        Op::Le => CmpOp::Le,
        Op::Gt => CmpOp::Gt,
        Op::Ge => CmpOp::Ge,
        Op::Like => CmpOp::Like,
        Op::ILike => CmpOp::ILike,
        Op::In => CmpOp::In,
    }
}

fn value(literal: &Literal) -> FilterValue {
    match literal {
        Literal::String(s) => FilterValue::Text(s.clone()),
        Literal::Int(i) => FilterValue::Int(*i),
        Literal::Float(f) => FilterValue::Double(*f),
        Literal::Bool(b) => FilterValue::Bool(*b),
        Literal::List(items) => FilterValue::List(items.iter().map(value).collect()),
    }
}

/// What a name holds, which decides the literals it may be compared with: every backend
/// then runs the same comparison (PostgreSQL refuses mixed types, SQLite and MySQL convert
/// each in their own way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// Integers, and strings of digits (ids and times travel as strings in this API).
    Int,
    /// Numbers; integers are compared as doubles.
    Double,
    Bool,
    /// An enum stored as the index of its name; an unknown name matches nothing (-1), as
    /// upstream.
    State(&'static [&'static str]),
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Text => "text, compare it with a quoted string",
            Kind::Int => "an integer, compare it with an integer or a quoted string of digits",
            Kind::Double => "a number, compare it with a number",
            Kind::Bool => "a boolean, compare it with true or false",
            Kind::State(_) => "a state, compare it with a quoted state name",
        }
    }

    /// The value as the target holds it; `None` if the literal does not fit the target.
    fn coerce(self, value: FilterValue) -> Option<FilterValue> {
        match (self, value) {
            (_, FilterValue::List(items)) => {
                items.into_iter().map(|v| self.coerce(v)).collect::<Option<_>>().map(FilterValue::List)
            }
            (Kind::Text, v @ FilterValue::Text(_)) | (Kind::Int, v @ FilterValue::Int(_)) => Some(v),
            (Kind::Double, v @ FilterValue::Double(_)) | (Kind::Bool, v @ FilterValue::Bool(_)) => Some(v),
            (Kind::Int, FilterValue::Text(s)) => s.parse().ok().map(FilterValue::Int),
            (Kind::Double, FilterValue::Int(i)) => Some(FilterValue::Double(i as f64)),
            (Kind::State(values), FilterValue::Text(s)) => {
                Some(FilterValue::Int(values.iter().position(|v| *v == s).map_or(-1, |i| i as i64)))
            }
            _ => None,
        }
    }

    /// The kind a literal picks for a custom property without a type suffix; `None` for a
    /// list that mixes kinds (integers and floats together are numbers).
    fn of_literal(value: &FilterValue) -> Option<Kind> {
        let scalar = |v: &FilterValue| match v {
            FilterValue::Text(_) | FilterValue::List(_) => Kind::Text,
            FilterValue::Int(_) => Kind::Int,
            FilterValue::Double(_) => Kind::Double,
            FilterValue::Bool(_) => Kind::Bool,
        };
        let FilterValue::List(items) = value else { return Some(scalar(value)) };
        items
            .iter()
            .map(scalar)
            .try_fold(None, |found, kind| match (found, kind) {
                (None, kind) => Some(Some(kind)),
                (Some(a), b) if a == b => Some(Some(a)),
                (Some(Kind::Int | Kind::Double), Kind::Int | Kind::Double) => Some(Some(Kind::Double)),
                _ => None,
            })
            .map(|kind| kind.unwrap_or(Kind::Text))
    }
}

/// A comparison that cannot be run: 400 naming the term and what it needed.
fn invalid(comparison: &Comparison, why: impl std::fmt::Display) -> Error {
    const MAX_SHOWN: usize = 60;
    let mut term = comparison.to_string();
    if term.chars().count() > MAX_SHOWN {
        term = format!("{}...", term.chars().take(MAX_SHOWN).collect::<String>());
    }
    Error::bad_request(format!("invalid filter query: {term:?} at position {}: {why}", comparison.position))
}

/// Checks the comparison against what `name` holds and converts its value.
fn typed(comparison: &Comparison, kind: Kind) -> Result<FilterValue> {
    let name = comparison.property.to_string();
    if matches!(comparison.op, Op::Like | Op::ILike) {
        if kind != Kind::Text {
            return Err(invalid(
                comparison,
                format_args!("LIKE and ILIKE apply to text only, and {name} is {}", kind.expected()),
            ));
        }
        if let Literal::String(pattern) = &comparison.value {
            // PostgreSQL refuses a pattern ending in its escape character; MySQL matches it.
            if pattern.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1 {
                return Err(invalid(comparison, "the pattern ends with an unescaped backslash (write \\\\ for a backslash)"));
            }
        }
    }
    kind.coerce(value(&comparison.value)).ok_or_else(|| invalid(comparison, format_args!("{name} is {}", kind.expected())))
}

fn column(column: Column, op: CmpOp, value: FilterValue) -> Filter {
    Filter::Compare { target: Target::Column(column), op, value }
}

fn property(name: &str, custom: bool, columns: Vec<ValueColumn>, op: CmpOp, value: FilterValue) -> Filter {
    Filter::Compare { target: Target::Property { name: name.to_owned(), custom, columns }, op, value }
}

/// `text` matched literally inside a LIKE pattern (backslash is the escape on every backend).
pub fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Children are stored as `<parent id>:<name>`: `name = 'x'` means `LIKE '%:x'`, and a LIKE
/// pattern without a colon is matched against the part after the prefix.
fn child_name(op: CmpOp, value: FilterValue) -> Filter {
    match (op, value) {
        (CmpOp::Eq, FilterValue::Text(s)) => {
            column(Column::Name, CmpOp::Like, FilterValue::Text(format!("%:{}", like_literal(&s))))
        }
        (CmpOp::Like | CmpOp::ILike, FilterValue::Text(s)) if !s.contains(':') && !s.starts_with('%') => {
            column(Column::Name, op, FilterValue::Text(format!("%:{s}")))
        }
        (op, value) => column(Column::Name, op, value),
    }
}

fn resolve_comparison(kinds: &[EntityKind], comparison: &Comparison) -> Result<Filter> {
    let op = op(comparison.op);
    let name = comparison.property.name();
    let spec = kinds[0].spec();
    if let Some(value_type) = comparison.property.value_type {
        let (column, kind) = match value_type {
            ValueType::String => (ValueColumn::String, Kind::Text),
            ValueType::Int => (ValueColumn::Int, Kind::Int),
            ValueType::Double => (ValueColumn::Double, Kind::Double),
            ValueType::Bool => (ValueColumn::Bool, Kind::Bool),
        };
        return Ok(property(&name, true, vec![column], op, typed(comparison, kind)?));
    }
    // Artifacts logged under a run keep their run and experiment as hidden custom properties.
    if let Some(link) = HIDDEN_LINKS.iter().find(|link| link.json == name).filter(|_| spec.artifact_type.is_some()) {
        return Ok(property(link.property, true, vec![ValueColumn::Int], op, typed(comparison, Kind::Int)?));
    }
    let is_child = spec.parent.is_some();
    Ok(match name.as_str() {
        "id" => column(Column::Id, op, typed(comparison, Kind::Int)?),
        "name" if is_child => child_name(op, typed(comparison, Kind::Text)?),
        "name" => column(Column::Name, op, typed(comparison, Kind::Text)?),
        "externalId" => column(Column::ExternalId, op, typed(comparison, Kind::Text)?),
        "createTimeSinceEpoch" => column(Column::CreateTime, op, typed(comparison, Kind::Int)?),
        "lastUpdateTimeSinceEpoch" => column(Column::UpdateTime, op, typed(comparison, Kind::Int)?),
        _ => match kinds.iter().find_map(|k| k.spec().field(&name)) {
            Some(field) => match (field.place, field.codec) {
                (Place::Uri, _) => column(Column::Uri, op, typed(comparison, Kind::Text)?),
                (Place::StateColumn, _) => {
                    let states = if spec.artifact_type.is_some() { ARTIFACT_STATES } else { EXECUTION_STATES };
                    column(Column::State, op, typed(comparison, Kind::State(states))?)
                }
                (Place::Property(p), Codec::Id(_) | Codec::Integer) => {
                    property(p, false, vec![ValueColumn::Int], op, typed(comparison, Kind::Int)?)
                }
                (Place::Property(p), Codec::Number) => {
                    property(p, false, vec![ValueColumn::Double], op, typed(comparison, Kind::Double)?)
                }
                (Place::Property(p), _) => property(p, false, vec![ValueColumn::String], op, typed(comparison, Kind::Text)?),
            },
            None => {
                let literal = value(&comparison.value);
                let kind = Kind::of_literal(&literal)
                    .ok_or_else(|| invalid(comparison, "the IN list mixes strings, numbers and booleans"))?;
                let has_int = match &literal {
                    FilterValue::List(items) => items.iter().any(|v| matches!(v, FilterValue::Int(_))),
                    v => matches!(v, FilterValue::Int(_)),
                };
                // An integer matches a property stored as an int or as a double.
                let columns = match kind {
                    Kind::Text | Kind::State(_) => vec![ValueColumn::String],
                    Kind::Int | Kind::Double if has_int => vec![ValueColumn::Int, ValueColumn::Double],
                    Kind::Int | Kind::Double => vec![ValueColumn::Double],
                    Kind::Bool => vec![ValueColumn::Bool],
                };
                property(&name, true, columns, op, typed(comparison, kind)?)
            }
        },
    })
}
