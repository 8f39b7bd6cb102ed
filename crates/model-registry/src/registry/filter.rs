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

/// Numbers given as strings (`id = '5'`, times) compare as numbers.
fn numeric(value: FilterValue) -> FilterValue {
    match value {
        FilterValue::Text(s) => s.parse::<i64>().map_or(FilterValue::Text(s), FilterValue::Int),
        FilterValue::List(items) => FilterValue::List(items.into_iter().map(numeric).collect()),
        other => other,
    }
}

/// Enum names stored as integer codes; an unknown name matches nothing (-1), as upstream.
fn state_code(values: &[&str], value: FilterValue) -> FilterValue {
    match value {
        FilterValue::Text(s) => FilterValue::Int(values.iter().position(|v| *v == s).map_or(-1, |i| i as i64)),
        FilterValue::List(items) => FilterValue::List(items.into_iter().map(|v| state_code(values, v)).collect()),
        other => other,
    }
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
    let value = value(&comparison.value);
    let name = comparison.property.name();
    let spec = kinds[0].spec();
    if let Some(value_type) = comparison.property.value_type {
        let column = match value_type {
            ValueType::String => ValueColumn::String,
            ValueType::Int => ValueColumn::Int,
            ValueType::Double => ValueColumn::Double,
            ValueType::Bool => ValueColumn::Bool,
        };
        return Ok(property(&name, true, vec![column], op, value));
    }
    // Artifacts logged under a run keep their run and experiment as hidden custom properties.
    if let Some(link) = HIDDEN_LINKS.iter().find(|link| link.json == name).filter(|_| spec.artifact_type.is_some()) {
        return Ok(property(link.property, true, vec![ValueColumn::Int], op, numeric(value)));
    }
    let is_child = spec.parent.is_some();
    Ok(match name.as_str() {
        "id" => column(Column::Id, op, numeric(value)),
        "name" if is_child => child_name(op, value),
        "name" => column(Column::Name, op, value),
        "externalId" => column(Column::ExternalId, op, value),
        "createTimeSinceEpoch" => column(Column::CreateTime, op, numeric(value)),
        "lastUpdateTimeSinceEpoch" => column(Column::UpdateTime, op, numeric(value)),
        _ => match kinds.iter().find_map(|k| k.spec().field(&name)) {
            Some(field) => match (field.place, field.codec) {
                (Place::Uri, _) => column(Column::Uri, op, value),
                (Place::StateColumn, _) => {
                    let states = if spec.artifact_type.is_some() { ARTIFACT_STATES } else { EXECUTION_STATES };
                    column(Column::State, op, state_code(states, value))
                }
                (Place::Property(p), Codec::Id | Codec::Integer) => {
                    property(p, false, vec![ValueColumn::Int], op, numeric(value))
                }
                (Place::Property(p), Codec::Number) => property(p, false, vec![ValueColumn::Double], op, value),
                (Place::Property(p), _) => property(p, false, vec![ValueColumn::String], op, value),
            },
            None => {
                let columns = match &value {
                    FilterValue::Text(_) => vec![ValueColumn::String],
                    FilterValue::Double(_) => vec![ValueColumn::Double],
                    FilterValue::Bool(_) => vec![ValueColumn::Bool],
                    FilterValue::Int(_) => vec![ValueColumn::Int, ValueColumn::Double],
                    FilterValue::List(items) => match items.first() {
                        Some(FilterValue::Int(_)) => vec![ValueColumn::Int, ValueColumn::Double],
                        Some(FilterValue::Double(_)) => vec![ValueColumn::Double],
                        Some(FilterValue::Bool(_)) => vec![ValueColumn::Bool],
                        _ => vec![ValueColumn::String],
                    },
                };
                property(&name, true, columns, op, value)
            }
        },
    })
}
