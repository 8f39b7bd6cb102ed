//! The OpenAPI 3.1 document of each API version, built from the operation table and the
//! entity schemas, and served as JSON and YAML beside the API.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Required, ResponseBuilder,
};

use super::resources::{operations, Action, Method, Operation};
use crate::app::AppState;
use crate::auth::{Access, Guarded};
use crate::registry::schema::{self, body_schema_name, list_schema_name};
use crate::registry::{ApiVersion, EntityKind, Schema as Body};

const JSON: &str = "application/json";

/// Statuses every operation may answer with an `Error` body, and what they mean here.
const ERRORS: &[(&str, &str)] = &[
    ("400", "Bad request: malformed id, parameter or body"),
    ("404", "Not found"),
    ("409", "Conflict: the name or external id is taken"),
    ("413", "Request body too large"),
    ("415", "A write without a JSON Content-Type"),
    ("422", "A required field is missing"),
    ("500", "Internal error"),
    ("503", "The datastore is not ready or unreachable, or the server has too many requests in flight"),
];

/// The path parameter's name in upstream's document: `registeredmodelId` in v1alpha3,
/// `registered_model_id` in v1; plain `id` for `/artifacts/{id}`.
fn parameter_name(api: ApiVersion, entity: Option<EntityKind>) -> String {
    let Some(entity) = entity else { return "id".into() };
    let label = entity.spec().label;
    match api {
        ApiVersion::V1Alpha3 => format!("{}Id", label.replace(' ', "")),
        ApiVersion::V1 => format!("{}_id", label.replace(' ', "_")),
    }
}

/// Upstream's patterns for query parameters: printable ASCII for names and filters.
const PRINTABLE: &str = "^[\\x20-\\x7E]+$";
const PRINTABLE_OR_EMPTY: &str = "^[\\x20-\\x7E]*$";
const STEP_IDS: &str = "^[0-9]{1,9}(,[0-9]{1,9})*$";

fn string_parameter(name: &str, description: &str) -> ParameterBuilder {
    pattern_parameter(name, description, None)
}

fn pattern_parameter(name: &str, description: &str, pattern: Option<&str>) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).pattern(pattern)))
}

fn enum_parameter(name: &str, description: &str, values: &[&str]) -> ParameterBuilder {
    let schema = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied()));
    string_parameter(name, description).schema(Some(schema))
}

fn paging_parameters() -> Vec<ParameterBuilder> {
    vec![
        pattern_parameter(
            "filterQuery",
            "A filter in the filterQuery language (`name = 'x' AND state = 'LIVE'`).",
            Some(PRINTABLE_OR_EMPTY),
        ),
        pattern_parameter("pageSize", "Items per page; all items when absent.", Some(schema::ID_PATTERN)),
        enum_parameter("orderBy", "The sort column.", &["CREATE_TIME", "LAST_UPDATE_TIME", "ID"]),
        enum_parameter("sortOrder", "The sort direction.", &["ASC", "DESC"]),
        string_parameter("nextPageToken", "The token of the previous page's answer."),
    ]
}

/// The query parameters an operation reads.
fn query_parameters(op: &Operation) -> Vec<ParameterBuilder> {
    let name = || pattern_parameter("name", "Name of the entity to search.", Some(PRINTABLE));
    let external_id = || pattern_parameter("externalId", "External id of the entity to search.", Some(PRINTABLE));
    let artifact_types: Vec<&str> = crate::registry::ARTIFACT_KINDS.iter().filter_map(|k| k.spec().artifact_type).collect();
    let artifact_type = || enum_parameter("artifactType", "Only artifacts of this type.", &artifact_types);
    let mut parameters = match op.action {
        Action::List | Action::ListChildren { .. } | Action::MetricHistory => paging_parameters(),
        Action::Find => {
            let mut find = vec![name(), external_id()];
            if op.subject[0].spec().parent.is_some() {
                find.push(pattern_parameter("parentResourceId", "Id of the parent, with `name`.", Some(schema::ID_PATTERN)));
            }
            find
        }
        _ => Vec::new(),
    };
    match op.action {
        Action::ListChildren { .. } => parameters.extend([name(), external_id()]),
        Action::MetricHistory => {
            parameters.push(pattern_parameter("name", "Only the history of the metric of this name.", Some(PRINTABLE)));
            parameters.push(pattern_parameter("stepIds", "Only these steps, comma-separated (`1,2,3`).", Some(STEP_IDS)));
        }
        _ => {}
    }
    if op.subject.len() > 1 && matches!(op.action, Action::List | Action::ListChildren { .. }) {
        parameters.push(artifact_type());
    }
    parameters
}

/// The schema of the body an operation takes, if it takes one.
fn request_schema(op: &Operation) -> Option<String> {
    let body = match op.action {
        Action::Create => Body::Create,
        Action::Update => Body::Update,
        Action::CreateChild { schema, .. } => schema,
        Action::UpsertArtifact { .. } => Body::Full,
        _ => return None,
    };
    Some(body_schema_name(op.subject, body))
}

/// The schema of an operation's successful answer.
fn response_schema(op: &Operation) -> String {
    let item = if op.subject.len() > 1 { "Artifact" } else { op.subject[0].schema_name() };
    match op.action {
        Action::List | Action::ListChildren { .. } | Action::MetricHistory => list_schema_name(item),
        _ => item.to_owned(),
    }
}

fn success_statuses(op: &Operation) -> &'static [&'static str] {
    match op.action {
        Action::Create | Action::CreateChild { .. } => &["201"],
        // Upstream answers 201 for new model and doc artifacts, 200 otherwise.
        Action::UpsertArtifact { .. } => &["200", "201"],
        _ => &["200"],
    }
}

fn json_content(schema_name: &str) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(Ref::from_schema_name(schema_name))).build()
}

fn operation(api: ApiVersion, op: &Operation) -> utoipa::openapi::path::Operation {
    let mut builder = OperationBuilder::new().operation_id(Some(camel_case(&op.name))).summary(Some(summary(op)));
    if op.path.contains("{id}") {
        let entity = op.path_entity();
        let label = entity.map_or("artifact", |k| k.spec().label);
        builder = builder.parameter(
            ParameterBuilder::new()
                .name(parameter_name(api, entity))
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(format!("A {label}'s id.")))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some(schema::ID_PATTERN)))),
        );
    }
    builder = builder.parameters(Some(query_parameters(op)));
    if let Some(body) = request_schema(op) {
        let request = RequestBodyBuilder::new().required(Some(Required::True)).content(JSON, json_content(&body));
        builder = builder.request_body(Some(request.build()));
    }
    let answer = response_schema(op);
    for status in success_statuses(op) {
        builder = builder.response(*status, ResponseBuilder::new().description("Success").content(JSON, json_content(&answer)));
    }
    for (status, description) in ERRORS {
        builder =
            builder.response(*status, ResponseBuilder::new().description(*description).content(JSON, json_content("Error")));
    }
    builder.build()
}

fn summary(op: &Operation) -> String {
    let label = if op.subject.len() > 1 { "artifact" } else { op.subject[0].spec().label };
    let a = if label.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    match op.action {
        Action::List => format!("List {label}s"),
        Action::Create => format!("Create {a} {label}"),
        Action::Get => format!("Get {a} {label}"),
        Action::Update => format!("Update {a} {label}"),
        Action::Find => format!("Find {a} {label} by name or external id"),
        Action::ListChildren { parent, .. } => format!("List the {label}s of a {}", parent.spec().label),
        Action::CreateChild { parent, .. } => format!("Create {a} {label} under a {}", parent.spec().label),
        Action::UpsertArtifact { parent } => format!("Create or update an artifact of a {}", parent.spec().label),
        Action::MetricHistory => "List the metric history of experiment runs".into(),
        Action::ServiceModel => "Get an inference service's registered model".into(),
        Action::ServiceVersion => "Get an inference service's model version".into(),
    }
}

/// `get_registered_models` -> `getRegisteredModels`, upstream's operation ids.
fn camel_case(snake: &str) -> String {
    let mut words = snake.split('_');
    let first = words.next().unwrap_or_default().to_owned();
    words.fold(first, |mut out, word| {
        let mut chars = word.chars();
        if let Some(c) = chars.next() {
            out.extend(c.to_uppercase());
            out.push_str(chars.as_str());
        }
        out
    })
}

/// The whole document of `api`.
pub fn document(api: ApiVersion) -> OpenApi {
    let base = api.base_path();
    let mut items: BTreeMap<String, PathItem> = BTreeMap::new();
    for op in operations(api) {
        let path = format!("{base}{}", op.path.replace("{id}", &format!("{{{}}}", parameter_name(api, op.path_entity()))));
        let method = match op.method {
            Method::Get => HttpMethod::Get,
            Method::Post => HttpMethod::Post,
            Method::Patch => HttpMethod::Patch,
        };
        let item = PathItem::new(method, operation(api, &op));
        match items.get_mut(&path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                items.insert(path, item);
            }
        }
    }
    let paths = items.into_iter().fold(PathsBuilder::new(), |paths, (path, item)| paths.path(path, item));
    let components = schema::components(api)
        .into_iter()
        .fold(ComponentsBuilder::new(), |components, (name, schema)| components.schema(name, schema));
    let info = InfoBuilder::new()
        .title("Model Registry REST API")
        .version(api.name())
        .description(Some("REST API for Model Registry to create and manage ML model metadata (model-registry-rs)."));
    OpenApiBuilder::new().info(info).paths(paths).components(Some(components.build())).build()
}

/// A document rendered once, in both formats.
struct Rendered {
    json: String,
    yaml: String,
}

fn render(api: ApiVersion) -> Rendered {
    let document = document(api);
    Rendered {
        json: serde_json::to_string_pretty(&document).expect("an OpenAPI document serializes"),
        yaml: serde_yaml_ng::to_string(&document).expect("an OpenAPI document serializes"),
    }
}

static RENDERED: LazyLock<[Rendered; 2]> = LazyLock::new(|| ApiVersion::ALL.map(render));

fn rendered(api: ApiVersion) -> &'static Rendered {
    &RENDERED[ApiVersion::ALL.iter().position(|a| *a == api).unwrap_or_default()]
}

/// `GET openapi.json` and `GET openapi.yaml`, relative to the version's base path; they answer
/// while the datastore is still starting.
/// The documents are open in every auth mode: clients read them to know how to call.
pub fn routes(api: ApiVersion) -> Guarded<AppState> {
    let json = move || async move { ([(CONTENT_TYPE, JSON)], rendered(api).json.as_str()).into_response() };
    let yaml = move || async move { ([(CONTENT_TYPE, "application/yaml")], rendered(api).yaml.as_str()).into_response() };
    Guarded::default().route("/openapi.json", &[axum::http::Method::GET], Access::Open, get(json)).route(
        "/openapi.yaml",
        &[axum::http::Method::GET],
        Access::Open,
        get(yaml),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn refs(value: &Value, found: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    found.insert(target.trim_start_matches("#/components/schemas/").to_owned());
                }
                if let Some(Value::Object(mapping)) = map.get("mapping") {
                    mapping.values().filter_map(Value::as_str).for_each(|t| {
                        found.insert(t.trim_start_matches("#/components/schemas/").to_owned());
                    });
                }
                map.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_every_operation_is_documented() {
        for (api, count) in [(ApiVersion::V1Alpha3, 56), (ApiVersion::V1, 40)] {
            let document = serde_json::to_value(document(api)).unwrap();
            let schemas = document["components"]["schemas"].as_object().unwrap();
            let mut found = BTreeSet::new();
            refs(&document, &mut found);
            for name in &found {
                assert!(schemas.contains_key(name), "{api:?}: dangling reference to {name}");
            }
            let paths = document["paths"].as_object().unwrap();
            let operations: usize = paths.values().map(|item| item.as_object().unwrap().len()).sum();
            assert_eq!(operations, count, "{api:?}");
            assert!(paths.keys().all(|p| p.starts_with(&api.base_path())));
            assert!(paths.keys().all(|p| !p.contains("{id}") || p.ends_with("/artifacts/{id}")));
        }
    }

    #[test]
    fn yaml_and_json_renderings_are_the_same_document() {
        for api in ApiVersion::ALL {
            let json: Value = serde_json::from_str(&rendered(api).json).unwrap();
            let yaml: Value = serde_yaml_ng::from_str(&rendered(api).yaml).unwrap();
            assert_eq!(json, yaml);
        }
    }

    #[test]
    fn operation_ids_are_upstreams() {
        assert_eq!(camel_case("get_registered_models"), "getRegisteredModels");
        assert_eq!(parameter_name(ApiVersion::V1Alpha3, Some(EntityKind::ExperimentRun)), "experimentrunId");
        assert_eq!(parameter_name(ApiVersion::V1, Some(EntityKind::ServingEnvironment)), "serving_environment_id");
    }
}
