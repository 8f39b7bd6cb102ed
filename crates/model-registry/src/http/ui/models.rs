//! Registered models, their versions and artifacts, the register form, and serving.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::{Extension, Form};
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::view::{self, text, time};
use super::{render, see_other, Chrome, CsrfToken, Ctx, Shown, PAGE_SIZE};
use crate::app::AppState;
use crate::registry::{EntityKind, Error, Link, ListParams, Part, Registering};

use EntityKind::{InferenceService, ModelArtifact, ModelVersion, RegisteredModel, ServingEnvironment};

/// Versions shown on a model's page, artifacts on a version's.
const CHILDREN_SHOWN: u32 = 100;

/// A registered model or a version as its pages show it.
pub struct Entity {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner: String,
    pub author: String,
    pub state: String,
    pub created: String,
    pub modified: String,
    pub labels: Vec<String>,
    pub properties: Vec<(String, String)>,
    pub external_id: String,
}

impl Entity {
    fn of(json: &Json) -> Entity {
        let (labels, properties) = view::labels_and_properties(json);
        Entity {
            id: text(json, "id"),
            name: text(json, "name"),
            description: text(json, "description"),
            owner: text(json, "owner"),
            author: text(json, "author"),
            state: text(json, "state"),
            created: time(json, "createTimeSinceEpoch"),
            modified: time(json, "lastUpdateTimeSinceEpoch"),
            labels,
            properties,
            external_id: text(json, "externalId"),
        }
    }

    fn archived(&self) -> bool {
        self.state == "ARCHIVED"
    }
}

/// An artifact's fields as the version page lists them (every `modelSource*` among them).
pub struct Artifact {
    pub name: String,
    pub kind: String,
    pub uri: String,
    pub uri_is_web: bool,
    pub fields: Vec<(String, String)>,
    pub properties: Vec<(String, String)>,
}

impl Artifact {
    fn of(json: &Json) -> Artifact {
        const SHOWN: [&str; 11] = [
            "modelFormatName",
            "modelFormatVersion",
            "storageKey",
            "storagePath",
            "serviceAccountName",
            "modelSourceKind",
            "modelSourceClass",
            "modelSourceGroup",
            "modelSourceId",
            "modelSourceName",
            "state",
        ];
        let uri = text(json, "uri");
        let (labels, mut properties) = view::labels_and_properties(json);
        properties.extend(labels.into_iter().map(|l| (l, String::new())));
        Artifact {
            name: text(json, "name"),
            kind: text(json, "artifactType"),
            uri_is_web: view::is_web(&uri),
            uri,
            fields: SHOWN.iter().map(|k| (k.to_string(), text(json, k))).filter(|(_, v)| !v.is_empty()).collect(),
            properties,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    pub page: String,
}

/// A line of the models table.
pub struct ModelRow {
    model: Entity,
    latest: Option<Entity>,
}

#[derive(Template)]
#[template(path = "models.html")]
struct ModelsPage {
    chrome: Chrome,
    query: ListQuery,
    rows: Vec<ModelRow>,
    next: String,
    error: String,
}

/// `GET /` and `/ui/`: one page of models and each one's latest version: two registry calls.
pub async fn list(State(state): State<AppState>, Extension(csrf): Extension<CsrfToken>, Query(query): Query<ListQuery>) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let mut conditions = Vec::new();
    if !query.filter.trim().is_empty() {
        conditions.push(format!("({})", query.filter.trim()));
    }
    if !query.q.trim().is_empty() {
        conditions.push(format!("name ILIKE {}", view::contains_pattern(query.q.trim())));
    }
    match query.state.as_str() {
        "" | "LIVE" => conditions.push("state = 'LIVE'".into()),
        "ARCHIVED" => conditions.push("state = 'ARCHIVED'".into()),
        _ => {}
    }
    let params = ListParams {
        filter_query: Some(conditions.join(" AND ")),
        page_size: Some(PAGE_SIZE.to_string()),
        order_by: Some(match query.sort.as_str() {
            "CREATE_TIME" | "LAST_UPDATE_TIME" => query.sort.clone(),
            _ => "ID".into(),
        }),
        // Name order is the UI's own: the REST API has no NAME (upstream has none).
        by_name: query.sort == "NAME",
        sort_order: Some(if query.order == "ASC" { "ASC" } else { "DESC" }.into()),
        next_page_token: Some(query.page.clone()),
        ..ListParams::default()
    };
    // A bad filter or token is shown above the table, next to the box it came from.
    let listed = match ctx.registry.list(&[RegisteredModel], None, &params).await {
        Ok(listing) => view::page(listing).await,
        Err(e) => Err(e),
    };
    let (items, next, error) = match listed {
        Ok((items, next)) => (items, next, String::new()),
        Err(e @ Error::BadRequest(_)) => (Vec::new(), String::new(), e.to_string()),
        Err(e) => return Err(ctx.fail(e)),
    };
    let ids: Vec<String> = items.iter().map(|m| text(m, "id")).collect();
    let mut latest = ctx.registry.newest_children(ModelVersion, &ids).await.map_err(|e| ctx.fail(e))?;
    let rows = items
        .iter()
        .map(|m| ModelRow { model: Entity::of(m), latest: latest.remove(&text(m, "id")).as_ref().map(Entity::of) })
        .collect();
    Ok(render(&ModelsPage { chrome: ctx.chrome, query, rows, next, error }))
}

impl ModelsPage {
    /// The link to the next page, keeping the search.
    fn next_link(&self) -> String {
        let q = &self.query;
        let pairs = [
            ("q", q.q.as_str()),
            ("state", q.state.as_str()),
            ("filter", q.filter.as_str()),
            ("sort", q.sort.as_str()),
            ("order", q.order.as_str()),
            ("page", self.next.as_str()),
        ];
        format!("/ui/{}", view::query_string(&pairs))
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    pub page: String,
}

#[derive(Template)]
#[template(path = "model.html")]
struct ModelPage {
    chrome: Chrome,
    model: Entity,
    versions: Vec<(Entity, String)>,
    next: String,
    confirm: String,
    error: String,
}

/// `GET /ui/models/{id}`: the model and a page of its versions (with each one's format).
pub async fn show(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    model_page(ctx, &id, query, String::new()).await
}

async fn model_page(ctx: Ctx, id: &str, query: ShowQuery, error: String) -> Shown {
    let model = ctx.registry.get(RegisteredModel, id).await.map_err(|e| ctx.fail(e))?;
    let params = ListParams {
        page_size: Some(CHILDREN_SHOWN.to_string()),
        order_by: Some("ID".into()),
        sort_order: Some("DESC".into()),
        next_page_token: Some(query.page.clone()),
        ..ListParams::default()
    };
    let listing = ctx
        .registry
        .list_children(RegisteredModel, id, &[ModelVersion], Link::ParentContext, &params)
        .await
        .map_err(|e| ctx.fail(e))?;
    let (versions, next) = view::page(listing).await.map_err(|e| ctx.fail(e))?;
    let ids: Vec<String> = versions.iter().map(|v| text(v, "id")).collect();
    let formats = formats_of(&ctx, &ids).await?;
    let versions = versions.iter().map(|v| (Entity::of(v), formats.get(&text(v, "id")).cloned().unwrap_or_default())).collect();
    let page = ModelPage { chrome: ctx.chrome, model: Entity::of(&model), versions, next, confirm: query.confirm, error };
    Ok(render(&page))
}

/// The model format of each version (`name version` of its model artifacts): one query.
async fn formats_of(ctx: &Ctx, versions: &[String]) -> Result<HashMap<String, String>, super::UiError> {
    let artifacts = ctx.registry.artifacts_of(&[ModelArtifact], versions, CHILDREN_SHOWN * 4).await.map_err(|e| ctx.fail(e))?;
    let mut formats: HashMap<String, String> = HashMap::new();
    for (version, artifact) in artifacts {
        let format = format!("{} {}", text(&artifact, "modelFormatName"), text(&artifact, "modelFormatVersion"));
        let format = format.trim().to_owned();
        if !format.is_empty() {
            formats.entry(version).or_insert(format);
        }
    }
    Ok(formats)
}

/// The edit form of a model or version: what to change, or which state to move to.
#[derive(Debug, Default, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    author: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    properties: String,
}

/// The PATCH an edit form means for `current`.
fn patch_of(kind: EntityKind, current: &Json, form: &EditForm) -> Result<Json, Error> {
    Ok(match form.action.as_str() {
        "archive" => json!({ "state": "ARCHIVED" }),
        "restore" => json!({ "state": "LIVE" }),
        "edit" => {
            let mut body = json!({
                "description": form.description,
                "customProperties": view::edited_properties(current, &form.labels, &form.properties)?,
            });
            let who = if kind == RegisteredModel { ("owner", &form.owner) } else { ("author", &form.author) };
            body[who.0] = json!(who.1);
            body
        }
        other => return Err(Error::bad_request(format!("unknown action {other:?}"))),
    })
}

/// `POST /ui/models/{id}`: edit, archive or restore; back to the model's page.
pub async fn edit(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let current = ctx.registry.get(RegisteredModel, &id).await.map_err(|e| ctx.fail(e))?;
    let updated = match patch_of(RegisteredModel, &current, &form) {
        Ok(patch) => ctx.registry.update(&[RegisteredModel], &id, &patch).await,
        Err(e) => Err(e),
    };
    match updated {
        Ok(_) => Ok(see_other(&format!("/ui/models/{id}"))),
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_) | Error::Unprocessable(_))) => {
            refused(model_page(ctx, &id, ShowQuery::default(), e.to_string()).await)
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

/// A page shown again with the API's refusal of a form: 400, as the API answers.
fn refused(page: Shown) -> Shown {
    page.map(|mut response| {
        *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
        response
    })
}

/// The register form's fields (a new model with its first version, or a version).
#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    version_description: String,
    #[serde(default)]
    author: String,
    #[serde(default)]
    uri: String,
    #[serde(default)]
    format_name: String,
    #[serde(default)]
    format_version: String,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    chrome: Chrome,
    /// The model a version is added to; `None`: a new model.
    model: Option<Entity>,
    form: RegisterForm,
    /// Field name -> the message shown next to it.
    errors: HashMap<&'static str, String>,
}

impl RegisterPage {
    fn error(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

/// `GET /ui/models/new`.
pub async fn register_form(State(state): State<AppState>, Extension(csrf): Extension<CsrfToken>) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    Ok(render(&RegisterPage { chrome: ctx.chrome, model: None, form: RegisterForm::default(), errors: HashMap::new() }))
}

/// `GET /ui/models/{id}/versions/new`.
pub async fn version_form(State(state): State<AppState>, Extension(csrf): Extension<CsrfToken>, Path(id): Path<String>) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let model = ctx.registry.get(RegisteredModel, &id).await.map_err(|e| ctx.fail(e))?;
    let page = RegisterPage {
        chrome: ctx.chrome,
        model: Some(Entity::of(&model)),
        form: RegisterForm::default(),
        errors: HashMap::new(),
    };
    Ok(render(&page))
}

/// The fields the API requires, checked before anything is written.
fn required(form: &RegisterForm, new_model: bool) -> HashMap<&'static str, String> {
    let mut errors = HashMap::new();
    if new_model && form.name.trim().is_empty() {
        errors.insert("name", "a model needs a name".to_owned());
    }
    if form.version.trim().is_empty() {
        errors.insert("version", "a version needs a name".to_owned());
    }
    if form.uri.trim().is_empty() {
        errors.insert("uri", "the model artifact needs a URI".to_owned());
    }
    errors
}

/// The form's fields that are given, trimmed, into `body`.
fn put_given(body: &mut Json, fields: [(&str, &String); 2]) {
    for (key, value) in fields {
        if !value.trim().is_empty() {
            body[key] = json!(value.trim());
        }
    }
}

/// Registers the form's version and model artifact under `model`: one transaction, so a
/// refusal leaves nothing written. The error is keyed by the field it is about.
async fn register_version(ctx: &Ctx, model: Registering, form: &RegisterForm) -> Result<(i64, i64), (&'static str, Error)> {
    let mut version = json!({ "name": form.version.trim() });
    put_given(&mut version, [("description", &form.version_description), ("author", &form.author)]);
    let mut artifact = json!({ "artifactType": "model-artifact", "name": form.version.trim(), "uri": form.uri.trim() });
    put_given(&mut artifact, [("modelFormatName", &form.format_name), ("modelFormatVersion", &form.format_version)]);
    ctx.registry.register(model, &version, &artifact).await.map_err(|refused| {
        let field = match refused.part {
            Some(Part::Model) => "name",
            Some(Part::Version) | None => "version",
            Some(Part::Artifact) => "uri",
        };
        (field, refused.error)
    })
}

/// An error the form shows next to a field; others are the error page.
fn field_error(e: Error) -> Result<String, Error> {
    match e {
        Error::BadRequest(m) | Error::Conflict(m) | Error::Unprocessable(m) => Ok(m),
        other => Err(other),
    }
}

/// `POST /ui/models/new`: the model, its first version and the version's model artifact in one
/// transaction (all or nothing), then the model's page.
pub async fn register(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Form(form): Form<RegisterForm>,
) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let mut errors = required(&form, true);
    if errors.is_empty() {
        let mut model = json!({ "name": form.name.trim() });
        put_given(&mut model, [("description", &form.description), ("owner", &form.owner)]);
        match register_version(&ctx, Registering::New(model), &form).await {
            Ok((model, _)) => return Ok(see_other(&format!("/ui/models/{model}"))),
            Err((field, e)) => {
                errors.insert(field, field_error(e).map_err(|e| ctx.fail(e))?);
            }
        }
    }
    refused(Ok(render(&RegisterPage { chrome: ctx.chrome, model: None, form, errors })))
}

/// `POST /ui/models/{id}/versions/new`: a version and its model artifact (all or nothing), then
/// the version.
pub async fn add_version(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Form(form): Form<RegisterForm>,
) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let model = ctx.registry.get(RegisteredModel, &id).await.map_err(|e| ctx.fail(e))?;
    let model_id = crate::registry::parse_id(&id, "registered model ID").map_err(|e| ctx.fail(e))?;
    let mut errors = required(&form, false);
    if errors.is_empty() {
        match register_version(&ctx, Registering::Under(model_id), &form).await {
            Ok((_, version)) => return Ok(see_other(&format!("/ui/versions/{version}"))),
            Err((field, e)) => {
                errors.insert(field, field_error(e).map_err(|e| ctx.fail(e))?);
            }
        }
    }
    refused(Ok(render(&RegisterPage { chrome: ctx.chrome, model: Some(Entity::of(&model)), form, errors })))
}

/// An inference service as the version and serving pages list it.
pub struct Service {
    name: String,
    runtime: String,
    desired_state: String,
    environment: String,
    model_id: String,
    model: String,
    version_id: String,
    version: String,
}

#[derive(Template)]
#[template(path = "version.html")]
struct VersionPage {
    chrome: Chrome,
    model: Entity,
    version: Entity,
    artifacts: Vec<Artifact>,
    services: Vec<Service>,
    snippet: String,
    confirm: String,
    error: String,
}

/// `GET /ui/versions/{id}`.
pub async fn version(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    version_page(ctx, &headers, &id, query.confirm, String::new()).await
}

/// Names of entities by id (`id IN (...)`): one list call, at most `ids` long.
async fn names_of(ctx: &Ctx, kind: EntityKind, ids: &[String]) -> Result<HashMap<String, String>, super::UiError> {
    let ids: Vec<&String> = ids.iter().filter(|id| crate::registry::parse_id(id, "id").is_ok()).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let list = ids.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let params = ListParams {
        filter_query: Some(format!("id IN ({list})")),
        page_size: Some(ids.len().to_string()),
        ..ListParams::default()
    };
    let listing = ctx.registry.list(&[kind], None, &params).await.map_err(|e| ctx.fail(e))?;
    let (items, _) = view::page(listing).await.map_err(|e| ctx.fail(e))?;
    Ok(items.iter().map(|i| (text(i, "id"), text(i, "name"))).collect())
}

/// Inference services with their environment's, model's and version's names: three more
/// list calls for the whole page.
async fn services_of(ctx: &Ctx, services: &[Json]) -> Result<Vec<Service>, super::UiError> {
    let ids = |key: &str| {
        let mut ids: Vec<String> = services.iter().map(|s| text(s, key)).filter(|s| !s.is_empty()).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let environments = names_of(ctx, ServingEnvironment, &ids("servingEnvironmentId")).await?;
    let models = names_of(ctx, RegisteredModel, &ids("registeredModelId")).await?;
    let versions = names_of(ctx, ModelVersion, &ids("modelVersionId")).await?;
    let name = |names: &HashMap<String, String>, s: &Json, key: &str| names.get(&text(s, key)).cloned().unwrap_or_default();
    Ok(services
        .iter()
        .map(|s| Service {
            name: text(s, "name"),
            runtime: text(s, "runtime"),
            desired_state: text(s, "desiredState"),
            environment: name(&environments, s, "servingEnvironmentId"),
            model_id: text(s, "registeredModelId"),
            model: name(&models, s, "registeredModelId"),
            version_id: text(s, "modelVersionId"),
            version: name(&versions, s, "modelVersionId"),
        })
        .collect())
}

/// How to load this version with the official Python client, for this server's address.
fn python_snippet(headers: &HeaderMap, model: &str, version: &str) -> String {
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost:8080");
    let (address, port) = host.rsplit_once(':').unwrap_or((host, "80"));
    let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
    format!(
        "from model_registry import ModelRegistry\n\n\
         registry = ModelRegistry({}, {port}, author=\"me\", is_secure=False)\n\
         version = registry.get_model_version({}, {})\n\
         artifact = registry.get_model_artifact({}, {})\n\
         print(artifact.uri)\n",
        quote(&format!("http://{address}")),
        quote(model),
        quote(version),
        quote(model),
        quote(version),
    )
}

async fn version_page(ctx: Ctx, headers: &HeaderMap, id: &str, confirm: String, error: String) -> Shown {
    let version = ctx.registry.get(ModelVersion, id).await.map_err(|e| ctx.fail(e))?;
    let model = ctx.registry.get(RegisteredModel, &text(&version, "registeredModelId")).await.map_err(|e| ctx.fail(e))?;
    let params = ListParams { page_size: Some(CHILDREN_SHOWN.to_string()), ..ListParams::default() };
    let kinds = crate::registry::ARTIFACT_KINDS;
    let listing =
        ctx.registry.list_children(ModelVersion, id, &kinds, Link::Attribution, &params).await.map_err(|e| ctx.fail(e))?;
    let (artifacts, _) = view::page(listing).await.map_err(|e| ctx.fail(e))?;
    let params = ListParams {
        filter_query: Some(format!("modelVersionId = {}", view::filter_literal(id))),
        page_size: Some(CHILDREN_SHOWN.to_string()),
        ..ListParams::default()
    };
    let listing = ctx.registry.list(&[InferenceService], None, &params).await.map_err(|e| ctx.fail(e))?;
    let (services, _) = view::page(listing).await.map_err(|e| ctx.fail(e))?;
    let services = services_of(&ctx, &services).await?;
    let (model, version) = (Entity::of(&model), Entity::of(&version));
    let page = VersionPage {
        snippet: python_snippet(headers, &model.name, &version.name),
        chrome: ctx.chrome,
        model,
        version,
        artifacts: artifacts.iter().map(Artifact::of).collect(),
        services,
        confirm,
        error,
    };
    Ok(render(&page))
}

/// `POST /ui/versions/{id}`: edit, archive or restore; back to the version's page.
pub async fn edit_version(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let current = ctx.registry.get(ModelVersion, &id).await.map_err(|e| ctx.fail(e))?;
    let updated = match patch_of(ModelVersion, &current, &form) {
        Ok(patch) => ctx.registry.update(&[ModelVersion], &id, &patch).await,
        Err(e) => Err(e),
    };
    match updated {
        Ok(_) => Ok(see_other(&format!("/ui/versions/{id}"))),
        Err(e @ (Error::BadRequest(_) | Error::Conflict(_) | Error::Unprocessable(_))) => {
            refused(version_page(ctx, &headers, &id, String::new(), e.to_string()).await)
        }
        Err(e) => Err(ctx.fail(e)),
    }
}

#[derive(Template)]
#[template(path = "serving.html")]
struct ServingPage {
    chrome: Chrome,
    environments: Vec<Entity>,
    services: Vec<Service>,
    next: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    pub page: String,
}

/// `GET /ui/serving`: the serving environments, and a page of inference services with what
/// they serve.
pub async fn serving(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Query(query): Query<PageQuery>,
) -> Shown {
    let ctx = Ctx::new(&state, csrf)?;
    let params = ListParams { page_size: Some(CHILDREN_SHOWN.to_string()), ..ListParams::default() };
    let listing = ctx.registry.list(&[ServingEnvironment], None, &params).await.map_err(|e| ctx.fail(e))?;
    let (environments, _) = view::page(listing).await.map_err(|e| ctx.fail(e))?;
    let params =
        ListParams { page_size: Some(PAGE_SIZE.to_string()), next_page_token: Some(query.page), ..ListParams::default() };
    let listing = ctx.registry.list(&[InferenceService], None, &params).await.map_err(|e| ctx.fail(e))?;
    let (services, next) = view::page(listing).await.map_err(|e| ctx.fail(e))?;
    let services = services_of(&ctx, &services).await?;
    let page = ServingPage { chrome: ctx.chrome, environments: environments.iter().map(Entity::of).collect(), services, next };
    Ok(render(&page))
}
