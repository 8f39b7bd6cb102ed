//! `MetadataValue` (customProperties values) and protobuf `Struct` values as MLMD stores them.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use embedmd::store::Value;
use prost::Message;
use prost_types::value::Kind;
use serde_json::{json, Map, Number, Value as Json};

use super::error::{Error, Result};

/// MLMD's marker for a `google.protobuf.Struct` kept in `string_value`.
const STRUCT_PREFIX: &str = "mlmd-struct::";

/// Parses one `MetadataValue` from a request.
pub fn decode_metadata_value(key: &str, value: &Json) -> Result<Value> {
    let bad = |what: &str| Error::bad_request(format!("invalid custom property {key:?}: {what}"));
    let object = value.as_object().ok_or_else(|| bad("expected an object with a metadataType"))?;
    let kind = object.get("metadataType").and_then(Json::as_str).ok_or_else(|| bad("metadataType not found"))?;
    let field = |name: &str| object.get(name).filter(|v| !v.is_null());
    match kind {
        "MetadataIntValue" => {
            let text = field("int_value").and_then(Json::as_str).ok_or_else(|| bad("int_value must be a string"))?;
            let parsed: i32 = text.parse().map_err(|_| bad(&format!("int_value {text:?} is not a 32-bit integer")))?;
            Ok(Value::Int(i64::from(parsed)))
        }
        "MetadataDoubleValue" => {
            let v = field("double_value").and_then(Json::as_f64).ok_or_else(|| bad("double_value must be a number"))?;
            Ok(Value::Double(v))
        }
        "MetadataStringValue" => {
            let v = field("string_value").and_then(Json::as_str).ok_or_else(|| bad("string_value must be a string"))?;
            Ok(Value::String(v.to_owned()))
        }
        "MetadataBoolValue" => {
            let v = field("bool_value").and_then(Json::as_bool).ok_or_else(|| bad("bool_value must be a boolean"))?;
            Ok(Value::Bool(v))
        }
        "MetadataStructValue" => {
            let encoded = field("struct_value").and_then(Json::as_str).ok_or_else(|| bad("struct_value must be a string"))?;
            let bytes = BASE64.decode(encoded).map_err(|_| bad("struct_value is not base64"))?;
            let parsed: Json = serde_json::from_slice(&bytes).map_err(|_| bad("struct_value is not base64 of a JSON object"))?;
            let object = parsed.as_object().ok_or_else(|| bad("struct_value is not base64 of a JSON object"))?;
            let encoded = encode_struct(object);
            // prost refuses to decode messages nested past its recursion limit (objects about
            // 34 deep): such a value would be stored and never shown again.
            if decode_struct(&encoded).is_none() {
                return Err(bad("struct_value is nested too deeply"));
            }
            Ok(Value::String(encoded))
        }
        _ => Err(bad("metadataType not found")),
    }
}

/// Renders a stored value as a `MetadataValue`; `None` for values the API cannot show.
pub fn encode_metadata_value(value: &Value) -> Option<Json> {
    Some(match value {
        Value::Int(v) => json!({"metadataType": "MetadataIntValue", "int_value": v.to_string()}),
        Value::Double(v) => json!({"metadataType": "MetadataDoubleValue", "double_value": v}),
        Value::Bool(v) => json!({"metadataType": "MetadataBoolValue", "bool_value": v}),
        Value::String(s) => match decode_struct(s) {
            Some(object) => json!({"metadataType": "MetadataStructValue", "struct_value": Json::Object(object).to_string()}),
            None => json!({"metadataType": "MetadataStringValue", "string_value": s}),
        },
        Value::Bytes(bytes) => {
            let text = serde_json::to_string(bytes).ok()?;
            json!({"metadataType": "MetadataStructValue", "struct_value": BASE64.encode(text)})
        }
    })
}

/// `mlmd-struct::` + base64 of the serialized `google.protobuf.Struct`.
pub fn encode_struct(object: &Map<String, Json>) -> String {
    let message = prost_types::Struct { fields: object.iter().map(|(k, v)| (k.clone(), to_proto(v))).collect() };
    format!("{STRUCT_PREFIX}{}", BASE64.encode(message.encode_to_vec()))
}

/// The JSON object of a stored struct, if `stored` is one.
pub fn decode_struct(stored: &str) -> Option<Map<String, Json>> {
    let encoded = stored.strip_prefix(STRUCT_PREFIX)?;
    let bytes = BASE64.decode(encoded).ok()?;
    let message = prost_types::Struct::decode(bytes.as_slice()).ok()?;
    Some(message.fields.iter().map(|(k, v)| (k.clone(), from_proto(v))).collect())
}

fn to_proto(value: &Json) -> prost_types::Value {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(prost_types::ListValue { values: items.iter().map(to_proto).collect() }),
        Json::Object(map) => {
            Kind::StructValue(prost_types::Struct { fields: map.iter().map(|(k, v)| (k.clone(), to_proto(v))).collect() })
        }
    };
    prost_types::Value { kind: Some(kind) }
}

fn from_proto(value: &prost_types::Value) -> Json {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::ListValue(list)) => Json::Array(list.values.iter().map(from_proto).collect()),
        Some(Kind::StructValue(s)) => Json::Object(s.fields.iter().map(|(k, v)| (k.clone(), from_proto(v))).collect()),
    }
}

/// Protobuf numbers are doubles; whole ones read back as JSON integers, as Go's encoder writes them.
fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        Json::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let cases = [
            json!({"metadataType": "MetadataIntValue", "int_value": "-7"}),
            json!({"metadataType": "MetadataDoubleValue", "double_value": 0.25}),
            json!({"metadataType": "MetadataStringValue", "string_value": "x"}),
            json!({"metadataType": "MetadataBoolValue", "bool_value": true}),
        ];
        for case in cases {
            let stored = decode_metadata_value("k", &case).unwrap();
            assert_eq!(encode_metadata_value(&stored).unwrap(), case);
        }
    }

    #[test]
    fn structs_go_in_as_base64_json_and_come_out_as_json_text() {
        let input = json!({"metadataType": "MetadataStructValue", "struct_value": BASE64.encode(r#"{"a":1,"b":["x",true]}"#)});
        let stored = decode_metadata_value("k", &input).unwrap();
        let Value::String(text) = &stored else { panic!() };
        assert!(text.starts_with("mlmd-struct::"));
        let out = encode_metadata_value(&stored).unwrap();
        assert_eq!(out["struct_value"], r#"{"a":1,"b":["x",true]}"#);
    }

    /// A JSON object `depth` objects deep.
    fn nested(depth: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    }

    #[test]
    fn structs_as_deep_as_the_decoder_reads_are_kept() {
        let input = json!({"metadataType": "MetadataStructValue", "struct_value": BASE64.encode(nested(33))});
        let stored = decode_metadata_value("k", &input).unwrap();
        assert_eq!(encode_metadata_value(&stored).unwrap()["metadataType"], "MetadataStructValue");
    }

    #[test]
    fn bad_values_are_rejected_with_the_reason() {
        let cases = [
            (json!({"metadataType": "MetadataIntValue", "int_value": "4294967296"}), "not a 32-bit integer"),
            (json!({"metadataType": "MetadataIntValue", "int_value": 3}), "int_value must be a string"),
            (json!({"metadataType": "MetadataStructValue", "struct_value": "!!"}), "not base64"),
            (json!({"metadataType": "MetadataStructValue", "struct_value": BASE64.encode("[1]")}), "JSON object"),
            (json!({"metadataType": "MetadataStructValue", "struct_value": BASE64.encode(nested(34))}), "nested too deeply"),
            (json!({"metadataType": "MetadataProtoValue", "type": "t", "proto_value": ""}), "metadataType not found"),
            (json!({"int_value": "1"}), "metadataType not found"),
            (json!("x"), "expected an object"),
        ];
        for (input, expected) in cases {
            let err = decode_metadata_value("k", &input).unwrap_err().to_string();
            assert!(err.contains(expected), "{input}: {err}");
        }
    }
}
