//! MLflow's search syntax for registered models and model versions, parsed into the
//! registry's conditions: `name = 'x'`, `name LIKE 'x%'`, `name ILIKE`, `name IN (...)`,
//! `tags.key = 'v'` (also `` tags.`a key` `` and `tags."a key"`), `run_id`, `source_path`,
//! `version_number`, joined by `AND`. Anything else is `INVALID_PARAMETER_VALUE`; values are
//! bound, never spliced. Also `order_by` clauses and MLflow's offset page tokens.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::error::MlflowError;
use crate::registry::{Condition, SearchField, SearchOp, SearchOrder};

/// Longest filter string accepted: a filter is a few conditions, not a document.
pub const MAX_FILTER_CHARS: usize = 4096;
/// Most values an `IN (...)` list may hold.
pub const MAX_IN_VALUES: usize = 1000;

/// Which search a filter is for: versions know more fields than models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Models,
    Versions,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An identifier, possibly dotted (`tags.key`), with quoted parts unquoted.
    Ident(String),
    Str(String),
    Number(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn invalid(message: impl Into<String>) -> MlflowError {
    MlflowError::invalid(message)
}

/// Reads a quoted run up to its closing `quote` (a doubled quote or a backslash escapes it).
fn quoted(chars: &[char], start: usize, quote: char) -> Result<(String, usize), MlflowError> {
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(chars[i + 1]);
            i += 2;
        } else if c == quote {
            if chars.get(i + 1) == Some(&quote) {
                out.push(quote);
                i += 2;
            } else {
                return Ok((out, i + 1));
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    Err(invalid(format!("Invalid filter string: unterminated {quote} quote")))
}

fn tokens(filter: &str) -> Result<Vec<Token>, MlflowError> {
    let chars: Vec<char> = filter.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::LParen);
                i += 1;
            }
            ')' => {
                out.push(Token::RParen);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
                let op = if matches!(two.as_str(), "!=" | "<=" | ">=" | "==") { two } else { c.to_string() };
                if op == "!" {
                    return Err(invalid("Invalid filter string: '!' must be followed by '='"));
                }
                i += op.chars().count();
                out.push(Token::Op(if op == "==" { "=".into() } else { op }));
            }
            '\'' => {
                let (s, next) = quoted(&chars, i, '\'')?;
                out.push(Token::Str(s));
                i = next;
            }
            // A double-quoted run is a string value, or an identifier part after `tags.`.
            '"' | '`' => {
                let (s, next) = quoted(&chars, i, c)?;
                match out.last_mut() {
                    Some(Token::Ident(id)) if id.ends_with('.') => id.push_str(&s),
                    _ if c == '`' => out.push(Token::Ident(s)),
                    _ => out.push(Token::Str(s)),
                }
                i = next;
            }
            _ if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                out.push(Token::Number(chars[start..i].iter().collect()));
            }
            _ if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.')) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                // `tags.` followed by a quoted part.
                if word.ends_with('.') && matches!(chars.get(i), Some('"' | '`')) {
                    let (s, next) = quoted(&chars, i, chars[i])?;
                    out.push(Token::Ident(format!("{word}{s}")));
                    i = next;
                } else {
                    out.push(Token::Ident(word));
                }
            }
            _ => return Err(invalid(format!("Invalid filter string: unexpected character {c:?}"))),
        }
    }
    Ok(out)
}

fn field(ident: &str, subject: Subject) -> Result<SearchField, MlflowError> {
    let lower = ident.to_ascii_lowercase();
    for prefix in ["tags.", "tag."] {
        if lower.starts_with(prefix) {
            let key = &ident[prefix.len()..];
            if key.is_empty() {
                return Err(invalid(format!("Invalid filter string: empty tag key in {ident:?}")));
            }
            return Ok(SearchField::Tag(key.to_owned()));
        }
    }
    let attribute = ["attributes.", "attribute.", "attr."].iter().find_map(|p| lower.strip_prefix(p)).unwrap_or(&lower);
    match (attribute, subject) {
        ("name", _) => Ok(SearchField::Name),
        ("run_id", Subject::Versions) => Ok(SearchField::RunId),
        ("source_path", Subject::Versions) => Ok(SearchField::Source),
        ("version_number", Subject::Versions) => Ok(SearchField::VersionNumber),
        _ => Err(invalid(format!("Invalid attribute key '{ident}' specified."))),
    }
}

/// Parses a filter (`None` or blank: everything) into ANDed conditions.
pub fn parse_filter(filter: Option<&str>, subject: Subject) -> Result<Vec<Condition>, MlflowError> {
    let filter = filter.unwrap_or_default();
    if filter.chars().count() > MAX_FILTER_CHARS {
        return Err(invalid(format!("Invalid filter string: longer than {MAX_FILTER_CHARS} characters")));
    }
    let tokens = tokens(filter)?;
    let mut conditions = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if !conditions.is_empty() {
            match &tokens[i] {
                Token::Ident(w) if w.eq_ignore_ascii_case("and") => i += 1,
                Token::Ident(w) if w.eq_ignore_ascii_case("or") => {
                    return Err(invalid("Invalid clause(s) in filter string: 'OR' is not supported"));
                }
                other => return Err(invalid(format!("Invalid filter string: expected AND, found {other:?}"))),
            }
        }
        let Some(Token::Ident(ident)) = tokens.get(i) else {
            return Err(invalid(format!("Invalid filter string '{filter}': expected a key")));
        };
        let field = field(ident, subject)?;
        i += 1;
        let op = match tokens.get(i) {
            Some(Token::Op(op)) => op.clone(),
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("not") => {
                i += 1;
                match tokens.get(i) {
                    Some(Token::Ident(w)) if w.eq_ignore_ascii_case("in") => "NOT IN".into(),
                    _ => return Err(invalid("Invalid filter string: NOT must be followed by IN")),
                }
            }
            Some(Token::Ident(w)) => w.to_ascii_uppercase(),
            _ => return Err(invalid(format!("Invalid filter string '{filter}': expected a comparator"))),
        };
        i += 1;
        let op = match op.as_str() {
            "=" => SearchOp::Eq,
            "!=" => SearchOp::Ne,
            "LIKE" => SearchOp::Like,
            "ILIKE" => SearchOp::ILike,
            "IN" => SearchOp::In,
            "NOT IN" => SearchOp::NotIn,
            other => return Err(invalid(format!("Invalid comparator '{other}' for this server's search"))),
        };
        if matches!(op, SearchOp::In | SearchOp::NotIn) {
            if tokens.get(i) != Some(&Token::LParen) {
                return Err(invalid("Invalid filter string: IN must be followed by a parenthesized list"));
            }
            i += 1;
            let mut values = Vec::new();
            loop {
                match tokens.get(i) {
                    Some(Token::Str(s) | Token::Number(s)) => values.push(s.clone()),
                    _ => return Err(invalid("Invalid filter string: expected a quoted value in the IN list")),
                }
                i += 1;
                match tokens.get(i) {
                    Some(Token::Comma) => i += 1,
                    Some(Token::RParen) => {
                        i += 1;
                        break;
                    }
                    _ => return Err(invalid("Invalid filter string: unterminated IN list")),
                }
            }
            if values.len() > MAX_IN_VALUES {
                return Err(invalid(format!("Invalid filter string: more than {MAX_IN_VALUES} values in an IN list")));
            }
            conditions.push(Condition { field, op, values });
            continue;
        }
        let value = match (tokens.get(i), &field) {
            (Some(Token::Str(s)), _) => s.clone(),
            (Some(Token::Number(n)), SearchField::VersionNumber) => n.clone(),
            _ => return Err(invalid(format!("Invalid filter string '{filter}': expected a quoted value"))),
        };
        i += 1;
        if field == SearchField::VersionNumber
            && (value.parse::<i64>().is_err() || matches!(op, SearchOp::Like | SearchOp::ILike))
        {
            return Err(invalid(format!("Invalid value for numeric attribute 'version_number': '{value}'")));
        }
        conditions.push(Condition { field, op, values: vec![value] });
    }
    Ok(conditions)
}

/// Parses `order_by` clauses: the first decides the order; a second may only be MLflow's own
/// tie-breaker (`name`, `version_number`), which creation order stands for here.
pub fn parse_order(clauses: &[String], subject: Subject) -> Result<Option<(SearchOrder, bool)>, MlflowError> {
    let mut parsed = Vec::new();
    for clause in clauses {
        let words: Vec<&str> = clause.split_whitespace().collect();
        let (key, ascending) = match words.as_slice() {
            [key] => (*key, true),
            [key, dir] if dir.eq_ignore_ascii_case("asc") => (*key, true),
            [key, dir] if dir.eq_ignore_ascii_case("desc") => (*key, false),
            _ => return Err(invalid(format!("Invalid order_by clause '{clause}'. Could not be parsed."))),
        };
        let key = key.trim_matches('`');
        let key = ["attributes.", "attribute."].iter().find_map(|p| key.strip_prefix(p)).unwrap_or(key);
        let order = match (key, subject) {
            ("name", _) => SearchOrder::Name,
            ("timestamp" | "last_updated_timestamp", _) => SearchOrder::Updated,
            ("creation_timestamp", Subject::Versions) => SearchOrder::Created,
            ("version_number", Subject::Versions) => SearchOrder::Version,
            _ => return Err(invalid(format!("Invalid order by key '{key}' specified."))),
        };
        if parsed.iter().any(|(o, _)| *o == order) {
            return Err(invalid(format!("`order_by` contains duplicate fields: {clauses:?}")));
        }
        parsed.push((order, !ascending));
    }
    match parsed.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        [first, rest @ ..] if rest.iter().all(|(o, _)| matches!(o, SearchOrder::Name | SearchOrder::Version)) => Ok(Some(*first)),
        _ => Err(invalid("this server orders a search by one key (a second may be name or version_number)")),
    }
}

/// MLflow's page token: base64 of `{"offset": N}`, spaced as Python's `json.dumps` writes it.
pub fn page_token(offset: u32) -> String {
    BASE64.encode(format!("{{\"offset\": {offset}}}"))
}

/// The offset a page token carries (0 without one).
pub fn parse_token(token: Option<&str>) -> Result<u32, MlflowError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else { return Ok(0) };
    let bytes = BASE64.decode(token).map_err(|_| invalid("Invalid page token, could not base64-decode"))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| invalid("Invalid page token, could not decode as JSON"))?;
    value
        .get("offset")
        .and_then(serde_json::Value::as_u64)
        .and_then(|o| u32::try_from(o).ok())
        .ok_or_else(|| invalid(format!("Invalid page token, parsed value={value}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: SearchField, op: SearchOp, values: &[&str]) -> Condition {
        Condition { field, op, values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn parses_mlflows_filters() {
        let got = parse_filter(
            Some("name LIKE 'ab%' and tags.`my key` = \"v'1\" AND run_id IN ('a', 'b') AND version_number = 3"),
            Subject::Versions,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                cond(SearchField::Name, SearchOp::Like, &["ab%"]),
                cond(SearchField::Tag("my key".into()), SearchOp::Eq, &["v'1"]),
                cond(SearchField::RunId, SearchOp::In, &["a", "b"]),
                cond(SearchField::VersionNumber, SearchOp::Eq, &["3"]),
            ]
        );
        assert_eq!(
            parse_filter(Some("tags.\"a b\" != 'x' AND name NOT IN ('m')"), Subject::Models).unwrap(),
            vec![cond(SearchField::Tag("a b".into()), SearchOp::Ne, &["x"]), cond(SearchField::Name, SearchOp::NotIn, &["m"])]
        );
        assert!(parse_filter(Some("  "), Subject::Models).unwrap().is_empty());
    }

    #[test]
    fn refuses_what_it_does_not_support() {
        for bad in [
            "name = 'a' OR name = 'b'",
            "run_id = 'x'",
            "name > 'a'",
            "name = a",
            "name = 'unterminated",
            "foo = 'x'",
            "name = 'a' name = 'b'",
            "(name = 'a')",
        ] {
            let e = parse_filter(Some(bad), Subject::Models).unwrap_err();
            assert_eq!(e.code, super::super::error::ErrorCode::InvalidParameterValue, "{bad}");
        }
        assert!(parse_filter(Some("version_number < 3"), Subject::Versions).is_err());
        assert!(parse_filter(Some("version_number = 'x'"), Subject::Versions).is_err());
    }

    #[test]
    fn order_and_tokens() {
        assert_eq!(parse_order(&["name DESC".into()], Subject::Models).unwrap(), Some((SearchOrder::Name, true)));
        assert_eq!(
            parse_order(&["last_updated_timestamp DESC".into(), "name ASC".into()], Subject::Versions).unwrap(),
            Some((SearchOrder::Updated, true))
        );
        assert!(parse_order(&["creation_timestamp".into()], Subject::Models).is_err());
        assert!(parse_order(&["name".into(), "name".into()], Subject::Models).is_err());
        assert_eq!(parse_token(Some(&page_token(200))).unwrap(), 200);
        assert_eq!(page_token(100), "eyJvZmZzZXQiOiAxMDB9");
        assert!(parse_token(Some("!!")).is_err());
    }
}
