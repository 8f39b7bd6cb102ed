//! The JSON schemas of the API documents, derived from the entity table: for each entity the
//! full object, its `Create` and `Update` bodies and its list page, plus the artifact unions,
//! `MetadataValue` and `Error`. What the codec accepts and writes is what these describe.

use std::collections::BTreeSet;

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, Discriminator, ObjectBuilder, OneOfBuilder, Ref, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;

use super::api::ApiVersion;
use super::codec::Schema as Body;
use super::spec::{Access, Codec, EntityKind, Field, Spec, ARTIFACT_KINDS, HIDDEN_LINKS};

/// The pattern of an id, upstream's: MLMD ids are positive 32-bit integers, and every id up to
/// 999999999 matches (larger ones up to 2147483647 are accepted too).
pub const ID_PATTERN: &str = "^[1-9][0-9]{0,8}$";

fn reference(name: &str) -> RefOr<Schema> {
    Ref::from_schema_name(name).into()
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn id_string() -> ObjectBuilder {
    string().pattern(Some(ID_PATTERN))
}

/// `GET` list pages and the schema of their items.
pub fn list_schema_name(item: &str) -> String {
    format!("{item}List")
}

/// The name of a body schema of an entity (`RegisteredModelCreate`) or of all artifacts.
pub fn body_schema_name(kinds: &[EntityKind], body: Body) -> String {
    let base = if kinds.len() > 1 { "Artifact" } else { kinds[0].schema_name() };
    match body {
        Body::Full => base.to_owned(),
        Body::Create => format!("{base}Create"),
        Body::Update => format!("{base}Update"),
    }
}

fn field_schema(api: ApiVersion, field: &Field) -> RefOr<Schema> {
    let schema = match field.codec {
        Codec::Text => string(),
        Codec::Id(_) => id_string(),
        Codec::Enum(values) => string().enum_values(Some(values.iter().copied())),
        Codec::TextList(_) => return ArrayBuilder::new().items(string()).into(),
        Codec::Number => ObjectBuilder::new().schema_type(Type::Number),
        Codec::Integer if api.integers_as_text() => string().pattern(Some("^-?[0-9]{1,10}$")),
        Codec::Integer => ObjectBuilder::new().schema_type(Type::Integer).format(Some(SchemaFormat::Custom("int32".into()))),
        Codec::Millis => string().pattern(Some("^[0-9]{1,19}$")),
        Codec::Link => string().format(Some(SchemaFormat::Custom("uri".into()))),
    };
    schema.into()
}

/// An entity's full object (`Body::Full`), create body or update body.
fn entity_schema(api: ApiVersion, spec: &Spec, body: Body) -> Schema {
    let custom = ObjectBuilder::new().additional_properties(Some(reference("MetadataValue")));
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .property("customProperties", custom)
        .property("description", string())
        .property("externalId", string());
    if body != Body::Update {
        object = object.property("name", string().min_length(Some(1)));
        if spec.name_required {
            object = object.required("name");
        }
    }
    if body == Body::Full {
        object = object
            .property("id", id_string().read_only(true))
            .property("createTimeSinceEpoch", string().read_only(true))
            .property("lastUpdateTimeSinceEpoch", string().read_only(true));
    }
    if let Some(artifact_type) = spec.artifact_type {
        let discriminator = string().enum_values(Some([artifact_type])).default(Some(artifact_type.into()));
        object = object.property("artifactType", discriminator);
        if body == Body::Full && api.has_experiments() {
            for link in HIDDEN_LINKS {
                object = object.property(link.json, id_string().read_only(true));
            }
        }
    }
    for field in spec.fields {
        if body == Body::Update && field.access != Access::Mutable {
            continue;
        }
        object = object.property(field.json, field_schema(api, field));
        // A parent named by the path of a nested create is not required in the body.
        if field.required && body == Body::Create {
            object = object.required(field.json);
        }
    }
    object.build().into()
}

/// The Artifact union of one body kind, told apart by `artifactType`.
fn artifact_union(body: Body) -> Schema {
    let names: Vec<String> = ARTIFACT_KINDS.iter().map(|k| body_schema_name(&[*k], body)).collect();
    let mapping = ARTIFACT_KINDS
        .iter()
        .zip(&names)
        .map(|(k, name)| (k.spec().artifact_type.unwrap_or_default(), format!("#/components/schemas/{name}")));
    let union = names.iter().fold(OneOfBuilder::new(), |union, name| union.item(reference(name)));
    union.discriminator(Some(Discriminator::with_mapping("artifactType", mapping))).build().into()
}

fn list_schema(item: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("nextPageToken", string().description(Some("Token of the next page; empty on the last page.")))
        .property("pageSize", ObjectBuilder::new().schema_type(Type::Integer).format(Some(SchemaFormat::Custom("int32".into()))))
        .property("size", ObjectBuilder::new().schema_type(Type::Integer).format(Some(SchemaFormat::Custom("int32".into()))))
        .property("items", ArrayBuilder::new().items(reference(item)))
        .required("nextPageToken")
        .required("pageSize")
        .required("size")
        .required("items")
        .build()
        .into()
}

/// `MetadataValue` and its kinds: the value of a custom property.
fn metadata_values() -> Vec<(String, Schema)> {
    let kinds: [(&str, &str, ObjectBuilder); 5] = [
        ("MetadataIntValue", "int_value", string().pattern(Some("^-?[0-9]{1,10}$"))),
        ("MetadataDoubleValue", "double_value", ObjectBuilder::new().schema_type(Type::Number)),
        ("MetadataStringValue", "string_value", string()),
        ("MetadataStructValue", "struct_value", string().description(Some("Base64 of a JSON object."))),
        ("MetadataBoolValue", "bool_value", ObjectBuilder::new().schema_type(Type::Boolean)),
    ];
    let value_kind = |name: &str, fields: Vec<(&str, ObjectBuilder)>| {
        let tag = string().enum_values(Some([name])).default(Some(name.into()));
        let object = fields.into_iter().fold(ObjectBuilder::new().schema_type(Type::Object), |object, (field, schema)| {
            object.property(field, schema).required(field)
        });
        let object = object
            .property("metadataType", tag)
            .required("metadataType")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        (name.to_owned(), Schema::from(object.build()))
    };
    let mut schemas: Vec<(String, Schema)> =
        kinds.into_iter().map(|(name, field, schema)| value_kind(name, vec![(field, schema)])).collect();
    let mapping = schemas.iter().map(|(name, _)| (name.clone(), format!("#/components/schemas/{name}"))).collect::<Vec<_>>();
    let union = schemas.iter().fold(OneOfBuilder::new(), |union, (name, _)| union.item(reference(name)));
    let union = union.discriminator(Some(Discriminator::with_mapping("metadataType", mapping)));
    schemas.push(("MetadataValue".into(), union.build().into()));
    // Upstream's clients know proto values; MLMD keeps them, but the registry neither accepts
    // nor shows them, so the union leaves this kind out.
    let (name, proto) =
        value_kind("MetadataProtoValue", vec![("type", string()), ("proto_value", string().description(Some("Base64.")))]);
    schemas.push((name, proto));
    schemas
}

fn error_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("code", string().description(Some("The HTTP status's reason phrase (`Bad Request`, `Not Found`, ...).")))
        .property("message", string())
        .required("code")
        .required("message")
        .build()
        .into()
}

/// Whether an entity has a list document of its own: it has a collection, is listed under
/// its parent, or is the history row of another entity in `kinds`.
fn listed(kinds: &[EntityKind], kind: EntityKind) -> bool {
    let rest = kind.spec().rest;
    let history_row = kinds.iter().any(|k| k.spec().log.as_ref().and_then(|l| l.history.as_ref()).is_some_and(|h| h.row == kind));
    rest.collection.is_some() || rest.nested.is_some() || history_row
}

/// Every component schema of `api`'s document.
pub fn components(api: ApiVersion) -> Vec<(String, Schema)> {
    components_of(api, &EntityKind::ALL)
}

/// The component schemas of the entities `kinds`, as served by `api`. Entities shown under
/// one schema (history rows as metrics) give it once.
fn components_of(api: ApiVersion, kinds: &[EntityKind]) -> Vec<(String, Schema)> {
    let served: Vec<EntityKind> = kinds.iter().copied().filter(|k| api.serves(*k)).collect();
    let mut shown = BTreeSet::new();
    let mut schemas = Vec::new();
    for kind in served.iter().copied().filter(|k| shown.insert(k.schema_name())) {
        for body in [Body::Full, Body::Create, Body::Update] {
            schemas.push((body_schema_name(&[kind], body), entity_schema(api, kind.spec(), body)));
        }
    }
    for body in [Body::Full, Body::Create, Body::Update] {
        schemas.push((body_schema_name(&ARTIFACT_KINDS, body), artifact_union(body)));
    }
    let lists: BTreeSet<&str> = served.iter().filter(|k| listed(kinds, **k)).map(|k| k.schema_name()).collect();
    for item in lists.into_iter().chain(["Artifact"]) {
        schemas.push((list_schema_name(item), list_schema(item)));
    }
    schemas.extend(metadata_values());
    schemas.push(("Error".into(), error_schema()));
    schemas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::with_gadget;

    fn names(schemas: &[(String, Schema)]) -> BTreeSet<String> {
        schemas.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Only what differs between the API versions: experiment tracking's schemas.
    #[test]
    fn v1_leaves_out_experiment_tracking() {
        let (old, new) = (names(&components(ApiVersion::V1Alpha3)), names(&components(ApiVersion::V1)));
        let dropped: Vec<&String> = old.difference(&new).collect();
        let expected = [
            "Experiment",
            "ExperimentCreate",
            "ExperimentList",
            "ExperimentRun",
            "ExperimentRunCreate",
            "ExperimentRunList",
            "ExperimentRunUpdate",
            "ExperimentUpdate",
            "MetricList",
        ];
        assert_eq!(dropped, expected);
        assert!(new.is_subset(&old));
    }

    /// An entity registered in the table gets its object, bodies and list page, with its fields.
    #[test]
    fn an_entity_is_one_table_entry() {
        for api in ApiVersion::ALL {
            let schemas = components_of(api, &with_gadget());
            let added: BTreeSet<String> = names(&schemas).difference(&names(&components(api))).cloned().collect();
            let expected = ["Gadget", "GadgetCreate", "GadgetList", "GadgetUpdate"].map(String::from);
            assert_eq!(added, BTreeSet::from(expected), "{api:?}");
            let gadget = schemas.iter().find(|(name, _)| name == "Gadget").map(|(_, s)| serde_json::to_value(s).unwrap());
            let properties = &gadget.unwrap()["properties"];
            assert_eq!(properties["colour"]["type"], "string");
            assert_eq!(properties["modelVersionId"]["pattern"], ID_PATTERN);
        }
    }
}
