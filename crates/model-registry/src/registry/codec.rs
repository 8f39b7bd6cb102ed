//! Request bodies into drafts, stored nodes into response objects, driven by [`Spec`].

use std::collections::BTreeMap;

use embedmd::store::{Node, Value};
use serde_json::{Map, Value as Json};

use super::api::ApiVersion;
use super::error::{Error, Result};
use super::spec::{Access, Codec, EntityKind, Field, Place, Spec, HIDDEN_LINKS};
use super::value::{decode_metadata_value, decode_struct, encode_metadata_value, encode_struct};

/// Which schema a body follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// `XCreate`: the base create fields plus every settable field.
    Create,
    /// `XUpdate`: no name, nothing immutable.
    Update,
    /// The full entity (nested POSTs, the Artifact oneOf): read-only fields are accepted and
    /// ignored, except `id`, which names the artifact to update in an upsert.
    Full,
}

/// A decoded field value, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Property(Value),
    Uri(String),
    State(i64),
}

/// What a body carries; absent fields are `None`/missing.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Draft {
    pub id: Option<String>,
    pub name: Option<String>,
    pub external_id: Option<String>,
    pub description: Option<String>,
    pub custom: Option<BTreeMap<String, Value>>,
    pub fields: Vec<(&'static Field, Stored)>,
}

impl Draft {
    pub fn get(&self, json: &str) -> Option<&Stored> {
        self.fields.iter().find(|(f, _)| f.json == json).map(|(_, v)| v)
    }
}

/// Decodes a body strictly: unknown fields, wrong JSON types and bad enum values are errors.
pub fn decode(api: ApiVersion, spec: &Spec, schema: Schema, body: &Json) -> Result<Draft> {
    let object = body.as_object().ok_or_else(|| Error::bad_request("request body must be a JSON object"))?;
    let mut draft = Draft::default();
    for (key, value) in object {
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "name" if schema != Schema::Update => draft.name = Some(text(key, value)?),
            "externalId" => draft.external_id = Some(bounded(key, text(key, value)?, MAX_NAME_CHARS)?),
            "description" => draft.description = Some(text(key, value)?),
            "customProperties" => draft.custom = Some(custom_properties(value)?),
            "artifactType" if spec.artifact_type.is_some() => {
                let given = text(key, value)?;
                if Some(given.as_str()) != spec.artifact_type {
                    return Err(type_change(spec.artifact_type.unwrap_or_default(), &given));
                }
            }
            "id" if schema == Schema::Full => draft.id = Some(text(key, value)?),
            "createTimeSinceEpoch" | "lastUpdateTimeSinceEpoch" if schema == Schema::Full => {}
            // Read-only links of logged artifacts, shown by v1alpha3.
            json if schema == Schema::Full && api.has_experiments() && HIDDEN_LINKS.iter().any(|l| l.json == json) => {}
            _ => {
                let field = spec
                    .field(key)
                    .filter(|f| schema != Schema::Update || f.access == Access::Mutable)
                    .ok_or_else(|| Error::bad_request(format!("json: unknown field {key:?}")))?;
                draft.fields.push((field, decode_field(api, field, value)?));
            }
        }
    }
    Ok(draft)
}

/// Names, external ids and property names are `varchar(255)` in MLMD's schema.
pub const MAX_NAME_CHARS: usize = 255;

/// The longest `uri` every backend stores: PostgreSQL's btree index on `Artifact.uri` takes
/// entries of at most 2704 bytes, 12 of them its own headers (an incompressible text of 2693
/// bytes fails). MySQL's `TEXT` column (65 535 bytes) and SQLite hold more.
pub const MAX_URI_BYTES: usize = 2692;

/// `value` if it has at most `max` characters.
pub fn bounded(key: &str, value: String, max: usize) -> Result<String> {
    let length = value.chars().count();
    if length > max {
        return Err(Error::bad_request(format!("{key} is {length} characters long; at most {max} are allowed")));
    }
    Ok(value)
}

/// An artifact keeps the kind it was created with.
pub fn type_change(from: &str, to: &str) -> Error {
    Error::bad_request(format!("cannot change artifact type from {from} to {to}: artifactType is immutable"))
}

fn text(key: &str, value: &Json) -> Result<String> {
    value.as_str().map(str::to_owned).ok_or_else(|| Error::bad_request(format!("json: field {key:?} must be a string")))
}

fn custom_properties(value: &Json) -> Result<BTreeMap<String, Value>> {
    let object = value.as_object().ok_or_else(|| Error::bad_request("json: field \"customProperties\" must be an object"))?;
    object
        .iter()
        .map(|(k, v)| Ok((bounded("a custom property name", k.clone(), MAX_NAME_CHARS)?, decode_metadata_value(k, v)?)))
        .collect()
}

/// The largest id MLMD's `INT` id columns hold.
pub const MAX_ID: i64 = i32::MAX as i64;

/// Parses an id: a positive decimal integer within MLMD's id range, digits only.
pub fn parse_id(value: &str, what: &str) -> Result<i64> {
    let well_formed = !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<i64>() {
        Ok(id) if well_formed && (1..=MAX_ID).contains(&id) => Ok(id),
        _ => Err(Error::bad_request(format!("invalid {what}: {value:?} is not an id (a decimal integer from 1 to {MAX_ID})"))),
    }
}

pub fn decode_field(api: ApiVersion, field: &Field, value: &Json) -> Result<Stored> {
    let key = field.json;
    let wrong = |expected: &str| Error::bad_request(format!("json: field {key:?} must be {expected}"));
    let stored = match field.codec {
        Codec::Text => Value::String(text(key, value)?),
        Codec::Id(_) => Value::Int(parse_id(&text(key, value)?, key)?),
        Codec::Enum(values) => {
            let given = text(key, value)?;
            let index = values
                .iter()
                .position(|v| *v == given)
                .ok_or_else(|| Error::bad_request(format!("invalid {key} {given:?}: expected one of {}", values.join(", "))))?;
            if field.place == Place::StateColumn {
                return Ok(Stored::State(index as i64));
            }
            Value::String(given)
        }
        Codec::TextList(struct_key) => {
            let items = value.as_array().ok_or_else(|| wrong("an array of strings"))?;
            if !items.iter().all(Json::is_string) {
                return Err(wrong("an array of strings"));
            }
            let mut object = Map::new();
            object.insert(struct_key.to_owned(), value.clone());
            Value::String(encode_struct(&object))
        }
        Codec::Number => Value::Double(value.as_f64().ok_or_else(|| wrong("a number"))?),
        Codec::Integer if api.integers_as_text() => {
            let n = text(key, value)?.parse::<i32>().map_err(|_| wrong("a string of a 32-bit decimal integer"))?;
            Value::Int(i64::from(n))
        }
        Codec::Integer => {
            let n = value.as_i64().ok_or_else(|| wrong("an integer"))?;
            Value::Int(i64::from(i32::try_from(n).map_err(|_| wrong("a 32-bit integer"))?))
        }
        Codec::Link => {
            let given = text(key, value)?;
            url::Url::parse(&given).map_err(|e| wrong(&format!("an absolute URI ({e})")))?;
            Value::String(given)
        }
        Codec::Millis => {
            let given = text(key, value)?;
            given.parse::<u64>().map_err(|_| wrong("a string of epoch milliseconds"))?;
            Value::String(given)
        }
    };
    Ok(match field.place {
        Place::Uri => match stored {
            Value::String(uri) if uri.len() > MAX_URI_BYTES => {
                return Err(Error::bad_request(format!("{key} is {} bytes long; at most {MAX_URI_BYTES} are allowed", uri.len())))
            }
            Value::String(uri) => Stored::Uri(uri),
            _ => unreachable!("uri is text"),
        },
        _ => Stored::Property(stored),
    })
}

/// The bare name: stored names of children carry a `<parent id>:` prefix.
pub fn bare_name(stored: &str) -> &str {
    stored.split_once(':').map_or(stored, |(_, name)| name)
}

/// Renders a node as the entity's JSON object.
pub fn encode(api: ApiVersion, spec: &Spec, node: &Node) -> Json {
    let mut out = Map::new();
    out.insert("id".into(), Json::String(node.id.to_string()));
    if let Some(name) = &node.name {
        // Only children carry a "<parent id>:" prefix; a top-level name keeps its colons.
        let mut shown = if spec.parent.is_some() { bare_name(name) } else { name.as_str() };
        // History rows are "<metric>__<update time>"; they show the metric's name.
        if spec.kind == EntityKind::MetricHistory {
            shown = shown.rsplit_once("__").map_or(shown, |(metric, _)| metric);
        }
        out.insert("name".into(), Json::String(shown.to_owned()));
    }
    if let Some(external_id) = &node.external_id {
        out.insert("externalId".into(), Json::String(external_id.clone()));
    }
    if let Some(Value::String(description)) = node.properties.typed.get("description") {
        out.insert("description".into(), Json::String(description.clone()));
    }
    let custom: Map<String, Json> = node
        .properties
        .custom
        .iter()
        .filter(|(k, _)| HIDDEN_LINKS.iter().all(|link| link.property != k.as_str()))
        .filter_map(|(k, v)| Some((k.clone(), encode_metadata_value(v)?)))
        .collect();
    out.insert("customProperties".into(), Json::Object(custom));
    out.insert("createTimeSinceEpoch".into(), Json::String(node.create_time.to_string()));
    out.insert("lastUpdateTimeSinceEpoch".into(), Json::String(node.update_time.to_string()));
    for field in spec.fields {
        if let Some(value) = encode_field(api, field, node) {
            out.insert(field.json.into(), value);
        }
    }
    if let Some(artifact_type) = spec.artifact_type {
        out.insert("artifactType".into(), Json::String(artifact_type.into()));
        let shown: &[_] = if api.has_experiments() { &HIDDEN_LINKS } else { &[] };
        for link in shown {
            if let Some(Value::Int(id)) = node.properties.custom.get(link.property) {
                out.insert(link.json.into(), Json::String(id.to_string()));
            }
        }
    }
    Json::Object(out)
}

fn encode_field(api: ApiVersion, field: &Field, node: &Node) -> Option<Json> {
    let value = match field.place {
        Place::Uri => return node.uri.clone().map(Json::String),
        Place::StateColumn => {
            let Codec::Enum(values) = field.codec else { return None };
            return usize::try_from(node.state?).ok().and_then(|i| values.get(i)).map(|s| Json::String((*s).into()));
        }
        Place::Property(name) => node.properties.typed.get(name)?,
    };
    match (field.codec, value) {
        (Codec::Text | Codec::Enum(_) | Codec::Millis | Codec::Link, Value::String(s)) => Some(Json::String(s.clone())),
        (Codec::Id(_), Value::Int(v)) => Some(Json::String(v.to_string())),
        (Codec::TextList(key), Value::String(s)) => decode_struct(s)?.remove(key),
        (Codec::Number, Value::Double(v)) => serde_json::Number::from_f64(*v).map(Json::Number),
        (Codec::Number, Value::Int(v)) => Some(Json::from(*v)),
        (Codec::Integer, Value::Int(v)) if api.integers_as_text() => Some(Json::String(v.to_string())),
        (Codec::Integer, Value::Int(v)) => Some(Json::from(*v)),
        _ => None,
    }
}
