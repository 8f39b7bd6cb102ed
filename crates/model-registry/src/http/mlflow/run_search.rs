//! MLflow's run search syntax (`search_runs(filter_string=..., order_by=...)`): clauses
//! `<metrics|params|tags|attributes>.<key> <op> <value>` joined by `AND`, and `order_by`
//! items `<entity>.<key> [ASC|DESC]`, parsed into the registry's run search terms (which the
//! store runs with every value bound, never spliced into SQL).

use serde_json::Value;

use super::error::MlflowError;
use crate::registry::{RunCondition, RunField, RunOp, RunOrder, RunValue};

/// Clauses one filter may have.
pub const MAX_CLAUSES: usize = 50;
/// Values one `IN (...)` list may have.
pub const MAX_IN_VALUES: usize = 1000;

fn invalid(message: impl Into<String>) -> MlflowError {
    MlflowError::invalid(message)
}

/// `metrics.acc`, `params."lr"`, ``tags.`mlflow.user` ``, `attribute.status`, a bare
/// attribute name, with MLflow's aliases (`created`, `run name`).
fn parse_identifier(text: &str) -> Result<RunField, MlflowError> {
    let (prefix, key) = match text.split_once('.') {
        Some((prefix, key)) => (unquote(prefix).unwrap_or(prefix), key),
        None => ("attribute", text),
    };
    let key = unquote(key).unwrap_or(key).to_owned();
    if key.is_empty() {
        return Err(invalid(format!("Invalid identifier {text:?}")));
    }
    Ok(match prefix {
        "metric" | "metrics" => RunField::Metric(key),
        "param" | "params" | "parameter" | "parameters" => RunField::Param(key),
        "tag" | "tags" => RunField::Tag(key),
        "attribute" | "attributes" | "attr" | "run" => match key.as_str() {
            "status" => RunField::Status,
            "run_name" | "run name" | "Run name" | "Run Name" => RunField::RunName,
            "run_id" => RunField::RunId,
            "user_id" => RunField::UserId,
            "start_time" | "created" | "Created" => RunField::StartTime,
            "end_time" => RunField::EndTime,
            "artifact_uri" => return Err(invalid("Searching or ordering runs by artifact_uri is not supported by this server")),
            _ => {
                return Err(invalid(format!(
                    "Invalid attribute key '{key}' specified. Valid keys are 'run_id', 'run_name', 'user_id', \
                     'status', 'start_time', 'end_time'"
                )))
            }
        },
        "dataset" | "datasets" => return Err(invalid("Searching runs by dataset is not supported by this server")),
        _ => {
            return Err(invalid(format!(
                "Invalid entity type '{prefix}'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"
            )))
        }
    })
}

fn unquote(s: &str) -> Option<&str> {
    ['\'', '"', '`'].iter().find_map(|q| s.strip_prefix(*q).and_then(|r| r.strip_suffix(*q))).filter(|_| s.len() >= 2)
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

/// A quoted string literal (single or double quotes).
fn string_literal(text: &str) -> Option<String> {
    unquote(text).filter(|_| text.starts_with(['\'', '"'])).map(str::to_owned)
}

/// `('a', "b")`: a parenthesized list of string literals.
fn string_list(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    let mut items = Vec::new();
    let (mut current, mut quote) = (String::new(), None);
    for c in inner.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == ',' => {
                items.push(string_literal(current.trim())?);
                current.clear();
                continue;
            }
            None => {}
        }
        current.push(c);
    }
    items.push(string_literal(current.trim())?);
    Some(items)
}

fn number(text: &str) -> Option<RunValue> {
    if !text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
        return None;
    }
    match text.parse::<i64>() {
        Ok(i) => Some(RunValue::Int(i)),
        Err(_) => text.parse::<f64>().ok().filter(|f| f.is_finite()).map(RunValue::Number),
    }
}

fn parse_clause(text: &str) -> Result<RunCondition, MlflowError> {
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
    let field = parse_identifier(identifier)?;
    let rest = rest.trim_start();
    let upper = rest.to_ascii_uppercase();
    let (op, rest) = [
        ("!=", RunOp::Ne),
        (">=", RunOp::Ge),
        ("<=", RunOp::Le),
        ("=", RunOp::Eq),
        (">", RunOp::Gt),
        ("<", RunOp::Lt),
        ("ILIKE ", RunOp::ILike),
        ("LIKE ", RunOp::Like),
        ("NOT IN", RunOp::NotIn),
        ("IN", RunOp::In),
        ("IS NOT NULL", RunOp::IsNotNull),
        ("IS NULL", RunOp::IsNull),
    ]
    .iter()
    .find_map(|(token, op)| upper.starts_with(token).then(|| (*op, &rest[token.len()..])))
    .ok_or_else(bad)?;
    let rest = rest.trim();
    let numeric = matches!(field, RunField::Metric(_) | RunField::StartTime | RunField::EndTime);
    let comparators = match &field {
        RunField::Metric(_) | RunField::StartTime | RunField::EndTime => "'>', '>=', '!=', '=', '<', '<='",
        RunField::Param(_) | RunField::Tag(_) => "'!=', '=', 'LIKE', 'ILIKE', 'IS NULL', 'IS NOT NULL'",
        _ => "'!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'",
    };
    let allowed = match op {
        RunOp::Eq | RunOp::Ne => true,
        RunOp::Lt | RunOp::Le | RunOp::Gt | RunOp::Ge => numeric,
        RunOp::Like | RunOp::ILike => !numeric,
        RunOp::IsNull | RunOp::IsNotNull => matches!(field, RunField::Param(_) | RunField::Tag(_)),
        RunOp::In | RunOp::NotIn => !numeric && !matches!(field, RunField::Param(_) | RunField::Tag(_)),
    };
    if !allowed {
        return Err(invalid(format!("Invalid comparator in {text:?}: not one of {comparators}")));
    }
    let value = match op {
        RunOp::IsNull | RunOp::IsNotNull if rest.is_empty() => RunValue::Nothing,
        RunOp::IsNull | RunOp::IsNotNull => return Err(bad()),
        RunOp::In | RunOp::NotIn => {
            if field != RunField::RunId {
                return Err(invalid("Only ['run_id'] attributes support comparison with a list of quoted string values."));
            }
            let items = string_list(rest).ok_or_else(bad)?;
            if items.len() > MAX_IN_VALUES {
                return Err(invalid(format!("An IN list may have at most {MAX_IN_VALUES} values")));
            }
            RunValue::List(items)
        }
        _ if numeric => match number(rest) {
            Some(RunValue::Int(i)) if matches!(field, RunField::Metric(_)) => RunValue::Number(i as f64),
            Some(n) => n,
            None => return Err(invalid(format!("Expected numeric value type for {text:?}, found {rest}"))),
        },
        _ => RunValue::Text(string_literal(rest).ok_or_else(|| {
            invalid(format!(
                "Parameter value is either not quoted or unidentified quote types used for string value {rest}. \
                 Use either single or double quotes."
            ))
        })?),
    };
    Ok(RunCondition { field, op, value })
}

/// A run search's `filter`, its clauses in order.
pub fn parse_filter(filter: &str) -> Result<Vec<RunCondition>, MlflowError> {
    if filter.trim().is_empty() {
        return Ok(Vec::new());
    }
    let clauses = split_and(filter);
    if clauses.len() > MAX_CLAUSES {
        return Err(invalid(format!("a filter may have at most {MAX_CLAUSES} clauses")));
    }
    clauses.iter().map(|c| parse_clause(c)).collect()
}

/// A run search's `order_by` items; a field named twice is MLflow's error.
pub fn parse_order(items: &[Value]) -> Result<Vec<RunOrder>, MlflowError> {
    let mut out: Vec<RunOrder> = Vec::new();
    for item in items {
        let text = item.as_str().ok_or_else(|| invalid(format!("Invalid order_by clause {item}")))?.trim();
        let upper = text.to_ascii_uppercase();
        let (identifier, descending) = if upper.ends_with(" DESC") {
            (&text[..text.len() - 5], true)
        } else if upper.ends_with(" ASC") {
            (&text[..text.len() - 4], false)
        } else {
            (text, false)
        };
        let field = parse_identifier(identifier.trim())?;
        if out.iter().any(|o| o.field == field) {
            return Err(invalid(format!("`order_by` contains duplicate fields: {items:?}")));
        }
        out.push(RunOrder { field, descending });
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(filter: &str) -> RunCondition {
        let mut parsed = parse_filter(filter).unwrap();
        assert_eq!(parsed.len(), 1, "{filter}");
        parsed.remove(0)
    }

    #[test]
    fn filters_parse_into_run_terms() {
        let c = one("metrics.acc > 0.9");
        assert_eq!((c.field, c.op, c.value), (RunField::Metric("acc".into()), RunOp::Gt, RunValue::Number(0.9)));
        let c = one("metric.`a b`>=1");
        assert_eq!((c.field, c.op, c.value), (RunField::Metric("a b".into()), RunOp::Ge, RunValue::Number(1.0)));
        let c = one("params.lr = \"0.1\"");
        assert_eq!((c.field, c.value), (RunField::Param("lr".into()), RunValue::Text("0.1".into())));
        let c = one("tags.\"mlflow.user\" ILIKE '%an%'");
        assert_eq!((c.field, c.op), (RunField::Tag("mlflow.user".into()), RunOp::ILike));
        assert_eq!(one("attributes.start_time >= 5").value, RunValue::Int(5));
        assert_eq!(one("created < 5").field, RunField::StartTime);
        assert_eq!(one("attributes.`Run Name` LIKE 'a%'").field, RunField::RunName);
        assert_eq!(one("tags.t IS NOT NULL").op, RunOp::IsNotNull);
        assert_eq!(one("params.p is null").op, RunOp::IsNull);
        let c = one("attributes.run_id IN ('1', \"2\")");
        assert_eq!((c.op, c.value), (RunOp::In, RunValue::List(vec!["1".into(), "2".into()])));
        assert_eq!(one("run_id NOT IN ('1')").op, RunOp::NotIn);
        let both = parse_filter("tags.t = 'a AND b' and metrics.m != 2").unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!(both[0].value, RunValue::Text("a AND b".into()));
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in [
            "metrics.acc = 'a'",
            "params.lr > '0.1'",
            "foo.x = 1",
            "metrics.acc",
            "attributes.nope = 'x'",
            "params.lr = 0.1",
            "metrics.acc LIKE '1'",
            "status IN ('A')",
            "metrics.acc IS NULL",
            "attributes.status IS NULL",
            "attributes.artifact_uri = 'x'",
            "attributes.start_time = 'x'",
            "metrics.acc > inf",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_items_parse_and_refuse_duplicates() {
        let order = parse_order(&[json!("metrics.acc DESC"), json!("params.lr"), json!("attributes.start_time asc")]).unwrap();
        assert_eq!(order[0], RunOrder { field: RunField::Metric("acc".into()), descending: true });
        assert_eq!(order[1], RunOrder { field: RunField::Param("lr".into()), descending: false });
        assert_eq!(order[2], RunOrder { field: RunField::StartTime, descending: false });
        assert!(parse_order(&[json!("metrics.a"), json!("metric.a DESC")]).is_err());
        assert!(parse_order(&[json!("nope.a")]).is_err());
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
}
