//! MLflow's run search syntax (`search_runs(filter_string=..., order_by=...)`): clauses
//! `<metrics|params|tags|attributes>.<key> <op> <value>` joined by `AND`, and `order_by`
//! items `<entity>.<key> [ASC|DESC]`. Evaluated over runs as MLflow's JSON shows them.

use std::cmp::Ordering;

use serde_json::Value;

use super::error::MlflowError;

/// Clauses one filter may have.
pub const MAX_CLAUSES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone)]
struct Clause {
    entity: Entity,
    key: String,
    op: Op,
    value: Literal,
}

#[derive(Debug, Clone, Default)]
pub struct Filter(Vec<Clause>);

/// Attributes that hold numbers (compared as numbers).
const NUMERIC_ATTRIBUTES: &[&str] = &["start_time", "end_time"];
const TEXT_ATTRIBUTES: &[&str] = &["status", "run_name", "run_id", "user_id", "artifact_uri", "lifecycle_stage"];

fn invalid(message: impl Into<String>) -> MlflowError {
    MlflowError::invalid(message)
}

/// `metrics.acc`, `params."lr"`, ``tags.`mlflow.user` ``, `attribute.status`, a bare
/// attribute name.
fn parse_identifier(text: &str) -> Result<(Entity, String), MlflowError> {
    let (entity, key) = match text.split_once('.') {
        Some((prefix, key)) => {
            let entity = match prefix {
                "metric" | "metrics" => Entity::Metric,
                "param" | "params" | "parameter" | "parameters" => Entity::Param,
                "tag" | "tags" => Entity::Tag,
                "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
                _ => (Entity::Attribute, text).0,
            };
            if entity == Entity::Attribute && !matches!(prefix, "attribute" | "attributes" | "attr" | "run") {
                return Err(invalid(format!(
                    "Invalid entity type '{prefix}'. Valid values are ['metric', 'parameter', 'tag', 'attribute']"
                )));
            }
            (entity, key)
        }
        None => (Entity::Attribute, text),
    };
    let key = unquote(key).unwrap_or(key).to_owned();
    if key.is_empty() {
        return Err(invalid(format!("Invalid identifier {text:?}")));
    }
    if entity == Entity::Attribute && !NUMERIC_ATTRIBUTES.contains(&key.as_str()) && !TEXT_ATTRIBUTES.contains(&key.as_str()) {
        return Err(invalid(format!("Invalid attribute key '{key}' specified.")));
    }
    Ok((entity, key))
}

fn unquote(s: &str) -> Option<&str> {
    ['\'', '"', '`'].iter().find_map(|q| s.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
}

/// Splits on ` AND ` outside quotes (case-insensitive).
fn split_and(filter: &str) -> Vec<String> {
    let (mut parts, mut current, mut quote) = (Vec::new(), String::new(), None);
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '\'' | '"' | '`') => quote = Some(c),
            None => {
                let rest: String = chars[i..chars.len().min(i + 5)].iter().collect();
                if rest.len() == 5 && rest.eq_ignore_ascii_case(" AND ") {
                    parts.push(std::mem::take(&mut current));
                    i += 5;
                    continue;
                }
            }
        }
        current.push(c);
        i += 1;
    }
    parts.push(current);
    parts
}

fn parse_clause(text: &str) -> Result<Clause, MlflowError> {
    let text = text.trim();
    let bad = || invalid(format!("Invalid clause {text:?}: expected <entity>.<key> <op> <value>"));
    // The identifier ends at the first space or comparison character outside quotes.
    let mut end = 0;
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '\'' | '"' | '`') => quote = Some(c),
            None if c == ' ' || "=!<>".contains(c) => {
                end = i;
                break;
            }
            None => {}
        }
        end = i + c.len_utf8();
    }
    let (identifier, rest) = text.split_at(end);
    let (entity, key) = parse_identifier(identifier)?;
    let rest = rest.trim_start();
    let upper = rest.to_ascii_uppercase();
    let (op, rest) = [
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("=", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("ILIKE ", Op::ILike),
        ("LIKE ", Op::Like),
    ]
    .iter()
    .find_map(|(token, op)| upper.starts_with(token).then(|| (*op, &rest[token.len()..])))
    .ok_or_else(bad)?;
    let rest = rest.trim();
    let value = match unquote(rest) {
        Some(s) if rest.starts_with(['\'', '"']) => Literal::Text(s.to_owned()),
        _ => Literal::Number(rest.parse().map_err(|_| bad())?),
    };
    let numeric = entity == Entity::Metric || (entity == Entity::Attribute && NUMERIC_ATTRIBUTES.contains(&key.as_str()));
    match (&value, numeric, op) {
        (Literal::Number(_), false, _) => {
            return Err(invalid(format!("Parameter value is either not quoted or unidentified quote types used for string value {rest}. Use either single or double quotes.")))
        }
        (Literal::Text(_), true, _) => return Err(invalid(format!("Expected numeric value type for metric or time attribute, got {rest}"))),
        (_, true, Op::Like | Op::ILike) => return Err(invalid("LIKE and ILIKE compare strings, not numbers")),
        (_, false, Op::Gt | Op::Ge | Op::Lt | Op::Le) => {
            return Err(invalid("Invalid comparator for a string: use =, !=, LIKE or ILIKE"))
        }
        _ => {}
    }
    Ok(Clause { entity, key, op, value })
}

impl Filter {
    pub fn parse(filter: &str) -> Result<Self, MlflowError> {
        if filter.trim().is_empty() {
            return Ok(Filter::default());
        }
        let clauses = split_and(filter);
        if clauses.len() > MAX_CLAUSES {
            return Err(invalid(format!("a filter may have at most {MAX_CLAUSES} clauses")));
        }
        clauses.iter().map(|c| parse_clause(c)).collect::<Result<Vec<_>, _>>().map(Filter)
    }

    pub fn matches(&self, run: &Value) -> bool {
        self.0.iter().all(|clause| {
            let Some(actual) = lookup(run, clause.entity, &clause.key) else { return false };
            match (&actual, &clause.value) {
                (Literal::Number(a), Literal::Number(b)) => compare(a.partial_cmp(b), clause.op),
                (Literal::Text(a), Literal::Text(b)) => match clause.op {
                    Op::Like => like(b, a),
                    Op::ILike => like(&b.to_lowercase(), &a.to_lowercase()),
                    op => compare(Some(a.cmp(b)), op),
                },
                _ => false,
            }
        })
    }
}

fn compare(ordering: Option<Ordering>, op: Op) -> bool {
    let Some(o) = ordering else { return false };
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Like | Op::ILike => false,
    }
}

/// SQL's LIKE: `%` any run of characters, `_` any one.
pub(super) fn like(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '_' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '%' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '%')
}

fn lookup(run: &Value, entity: Entity, key: &str) -> Option<Literal> {
    let in_list = |list: &str| run["data"][list].as_array()?.iter().find(|e| e["key"] == key).map(|e| e["value"].clone());
    let value = match entity {
        Entity::Metric => in_list("metrics")?,
        Entity::Param => in_list("params")?,
        Entity::Tag => in_list("tags")?,
        Entity::Attribute => run["info"].get(key)?.clone(),
    };
    match value {
        Value::Number(n) => n.as_f64().map(Literal::Number),
        Value::String(s) => Some(Literal::Text(s)),
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct Order {
    entity: Entity,
    key: String,
    descending: bool,
}

impl Order {
    pub fn parse_all(items: &[Value]) -> Result<Vec<Order>, MlflowError> {
        items
            .iter()
            .map(|item| {
                let text = item.as_str().ok_or_else(|| invalid(format!("Invalid order_by clause {item}")))?.trim();
                let upper = text.to_ascii_uppercase();
                let (identifier, descending) = if upper.ends_with(" DESC") {
                    (&text[..text.len() - 5], true)
                } else if upper.ends_with(" ASC") {
                    (&text[..text.len() - 4], false)
                } else {
                    (text, false)
                };
                let (entity, key) = parse_identifier(identifier.trim())?;
                Ok(Order { entity, key, descending })
            })
            .collect()
    }
}

/// Orders runs as MLflow does: by each `order_by` item (runs without the key last), then by
/// start time, newest first, then by run id.
pub fn sort(runs: &mut [Value], order: &[Order]) {
    let key_of = |run: &Value, o: &Order| lookup(run, o.entity, &o.key);
    runs.sort_by(|a, b| {
        for o in order {
            let ordering = match (key_of(a, o), key_of(b, o)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(x), Some(y)) => {
                    let natural = match (x, y) {
                        (Literal::Number(x), Literal::Number(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                        (Literal::Text(x), Literal::Text(y)) => x.cmp(&y),
                        _ => Ordering::Equal,
                    };
                    if o.descending {
                        natural.reverse()
                    } else {
                        natural
                    }
                }
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        let start = |r: &Value| r["info"]["start_time"].as_i64().unwrap_or_default();
        start(b).cmp(&start(a)).then_with(|| a["info"]["run_id"].as_str().cmp(&b["info"]["run_id"].as_str()))
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(acc: f64, lr: &str, tag: &str, start: i64) -> Value {
        json!({
            "info": {"run_id": start.to_string(), "status": "FINISHED", "start_time": start},
            "data": {"metrics": [{"key": "acc", "value": acc}], "params": [{"key": "lr", "value": lr}], "tags": [{"key": "t", "value": tag}]},
        })
    }

    #[test]
    fn filters_match_metrics_params_tags_and_attributes() {
        let r = run(0.95, "0.1", "x", 10);
        for (filter, expected) in [
            ("metrics.acc > 0.9", true),
            ("metrics.acc >= 0.96", false),
            ("params.lr = '0.1'", true),
            ("params.lr = \"0.2\"", false),
            ("tags.t = 'x' and metrics.acc < 1", true),
            ("attributes.status = 'FINISHED'", true),
            ("attributes.start_time > 5", true),
            ("tags.`t` LIKE 'x%'", true),
            ("params.missing = 'a'", false),
        ] {
            assert_eq!(Filter::parse(filter).unwrap().matches(&r), expected, "{filter}");
        }
        for bad in
            ["metrics.acc = 'a'", "params.lr > '0.1'", "foo.x = 1", "metrics.acc", "attributes.nope = 'x'", "params.lr = 0.1"]
        {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn like_matches_as_sql_does() {
        assert!(like("ir%", "iris"));
        assert!(like("%is", "iris"));
        assert!(like("i_is", "iris"));
        assert!(!like("i_s", "iris"));
        assert!(like("%", ""));
        assert!(!like("a%", "b"));
    }

    #[test]
    fn order_by_metric_descending_then_newest_first() {
        let mut runs = vec![run(0.5, "a", "", 1), run(0.9, "b", "", 2), run(0.7, "c", "", 3)];
        sort(&mut runs, &Order::parse_all(&[json!("metrics.acc DESC")]).unwrap());
        let accs: Vec<f64> = runs.iter().map(|r| r["data"]["metrics"][0]["value"].as_f64().unwrap()).collect();
        assert_eq!(accs, [0.9, 0.7, 0.5]);
        sort(&mut runs, &[]);
        let starts: Vec<i64> = runs.iter().map(|r| r["info"]["start_time"].as_i64().unwrap()).collect();
        assert_eq!(starts, [3, 2, 1]);
    }
}
