//! The registry's JSON as the templates show it: text fields, times, labels and properties.

use serde_json::{Map, Value as Json};

use crate::registry::{Error, Listing};

/// A text field of an entity, `""` when absent.
pub fn text(entity: &Json, key: &str) -> String {
    match entity.get(key) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// `createTimeSinceEpoch`-style milliseconds as `YYYY-MM-DD HH:MM UTC`.
pub fn time(entity: &Json, key: &str) -> String {
    let Ok(ms) = text(entity, key).parse::<i64>() else { return String::new() };
    let (secs, days) = (ms.div_euclid(1000), ms.div_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let in_day = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", in_day / 3600, in_day % 3600 / 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Whether a URI may be a link: only web addresses, never `javascript:` or `data:`.
pub fn is_web(uri: &str) -> bool {
    let lower = uri.trim_start().get(..8).unwrap_or(uri).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A custom property's value as text (upstream's `MetadataValue` oneOf).
fn metadata_text(value: &Json) -> String {
    for key in ["string_value", "int_value", "double_value", "bool_value", "struct_value", "proto_value"] {
        if let Some(v) = value.get(key) {
            return match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
        }
    }
    value.to_string()
}

/// Labels (string properties with an empty value, as upstream's UI writes them) and the other
/// custom properties as `(name, value)`.
pub fn labels_and_properties(entity: &Json) -> (Vec<String>, Vec<(String, String)>) {
    let mut labels = Vec::new();
    let mut properties = Vec::new();
    if let Some(Json::Object(custom)) = entity.get("customProperties") {
        for (name, value) in custom {
            if value.get("string_value").and_then(Json::as_str) == Some("") {
                labels.push(name.clone());
            } else {
                properties.push((name.clone(), metadata_text(value)));
            }
        }
    }
    (labels, properties)
}

/// The custom properties an edit form sends: its labels and `name=value` lines as strings,
/// and the entity's properties of other types kept as they are (the form cannot edit them).
pub fn edited_properties(current: &Json, labels: &str, properties: &str) -> Result<Json, Error> {
    let mut custom = Map::new();
    if let Some(Json::Object(old)) = current.get("customProperties") {
        for (name, value) in old {
            if value.get("string_value").is_none() {
                custom.insert(name.clone(), value.clone());
            }
        }
    }
    let string = |v: &str| serde_json::json!({ "metadataType": "MetadataStringValue", "string_value": v });
    for label in labels.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        custom.insert(label.to_owned(), string(""));
    }
    for line in properties.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, value) =
            line.split_once('=').ok_or_else(|| Error::bad_request(format!("property line {line:?} is not name=value")))?;
        let (name, value) = (name.trim(), value.trim());
        if value.is_empty() {
            return Err(Error::bad_request(format!("property {name:?} has no value (a label goes in the labels field)")));
        }
        custom.insert(name.to_owned(), string(value));
    }
    Ok(Json::Object(custom))
}

/// The `name=value` lines an edit form starts with.
pub fn property_lines(properties: &[(String, String)]) -> String {
    properties.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
}

/// A list's items and next page token. A UI page is far below a list's chunk, so it comes
/// whole; a streamed one (a longer page) is gathered, bounded by its page size.
pub async fn page(listing: Listing) -> Result<(Vec<Json>, String), Error> {
    let document = match listing {
        Listing::Page(document) => document,
        Listing::Stream(mut pieces) => {
            let mut bytes = Vec::new();
            while let Some(piece) = pieces.recv().await {
                bytes.extend(piece?);
            }
            serde_json::from_slice(&bytes).map_err(|e| Error::bad_request(format!("unreadable list: {e}")))?
        }
    };
    let items = match document.get("items") {
        Some(Json::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    Ok((items, text(&document, "nextPageToken")))
}

/// A string literal of the filter language holding `value` as is.
pub fn filter_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A LIKE pattern matching `value` anywhere, its own `%`, `_` and `\` taken literally.
pub fn contains_pattern(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    filter_literal(&format!("%{escaped}%"))
}

/// `?a=b&c=d` with each value percent-encoded, empty values left out.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.append_pair(k, v);
    }
    let encoded = out.finish();
    if encoded.is_empty() {
        encoded
    } else {
        format!("?{encoded}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(time(&json!({"t": "0"}), "t"), "1970-01-01 00:00 UTC");
        assert_eq!(time(&json!({"t": "1709251200000"}), "t"), "2024-03-01 00:00 UTC");
        assert_eq!(time(&json!({"t": "951782400000"}), "t"), "2000-02-29 00:00 UTC");
        assert_eq!(time(&json!({}), "t"), "");
    }

    #[test]
    fn only_web_addresses_are_links() {
        assert!(is_web("https://example.com/m"));
        assert!(is_web("HTTP://example.com"));
        assert!(!is_web("javascript:alert(1)"));
        assert!(!is_web(" javascript:alert(1)"));
        assert!(!is_web("s3://bucket/model"));
        assert!(!is_web("data:text/html,<script>"));
    }

    #[test]
    fn labels_and_properties_round_trip_through_the_form() {
        let current = json!({"customProperties": {
            "prod": {"metadataType": "MetadataStringValue", "string_value": ""},
            "team": {"metadataType": "MetadataStringValue", "string_value": "a=b"},
            "n": {"metadataType": "MetadataIntValue", "int_value": "3"}
        }});
        let (labels, properties) = labels_and_properties(&current);
        assert_eq!(labels, ["prod"]);
        assert_eq!(properties, [("n".to_owned(), "3".to_owned()), ("team".to_owned(), "a=b".to_owned())]);
        let edited = edited_properties(&current, "prod, new", "team=a=b").unwrap();
        assert_eq!(edited["new"]["string_value"], "");
        assert_eq!(edited["team"]["string_value"], "a=b");
        assert_eq!(edited["n"]["int_value"], "3");
        assert!(edited_properties(&current, "", "novalue").is_err());
    }

    #[test]
    fn search_text_is_literal_in_the_filter() {
        assert_eq!(contains_pattern("a_b%'c\\"), r"'%a\\_b\\%\'c\\\\%'");
        let parsed = filter_query::parse(&format!("name ILIKE {}", contains_pattern("it's 50%_\\"))).unwrap();
        assert!(parsed.is_some());
    }
}
