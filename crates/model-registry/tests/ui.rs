//! The web UI on every backend, through the real app on a real socket: every page's status and
//! headers, escaping of hostile data, refused cross-site form posts, the forms' writes, and a
//! fixed number of statements per page whatever the number of rows.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use embedmd::store::{query_totals, QueryKind};
use model_registry::{App, ServerConfig};
use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, REFERER, SET_COOKIE};
use serde_json::{json, Value};
use testkit::{Backend, TestDb};

mod support;
use support::app::Api;

testkit::on_every_backend!(
    every_page_answers_with_its_status_and_headers,
    hostile_data_is_text,
    cross_site_posts_are_refused_and_change_nothing,
    forms_register_edit_and_archive,
    registering_is_all_or_nothing,
    models_sort_by_name_across_pages,
    pages_cost_the_same_statements_for_few_and_many_rows,
);

/// The UI beside an [`Api`]: its root URL and a client that does not follow redirects.
struct Ui {
    api: Api,
    root: String,
    http: reqwest::Client,
}

impl Ui {
    async fn start(backend: Backend) -> Ui {
        let api = Api::start(backend).await;
        let root = api.base.split("/api/").next().unwrap().to_owned();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Ui { api, root, http }
    }

    async fn get(&self, path: &str) -> (u16, HeaderMap, String) {
        let response = self.http.get(format!("{}{path}", self.root)).send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }

    /// The token a page gave this browser (its cookie).
    async fn token(&self) -> String {
        let (_, headers, _) = self.get("/ui/models/new").await;
        let cookie = headers.get(SET_COOKIE).unwrap().to_str().unwrap();
        cookie.strip_prefix("mr_csrf=").unwrap().split(';').next().unwrap().to_owned()
    }

    /// A form post as a browser on `origin` sends it, with `cookie` (a token) if any.
    async fn post(
        &self,
        path: &str,
        origin: Option<&str>,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, HeaderMap, String) {
        let mut request = self.http.post(format!("{}{path}", self.root)).form(form);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        if let Some(token) = cookie {
            request = request.header(COOKIE, format!("mr_csrf={token}"));
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }

    /// A post from the UI's own page: same origin, the cookie and the field.
    async fn submit(&self, path: &str, form: &[(&str, &str)]) -> (u16, HeaderMap, String) {
        let token = self.token().await;
        let mut form = form.to_vec();
        form.push(("csrf", &token));
        self.post(path, Some(&self.root), Some(&token), &form).await
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

/// A model with a version and artifact, an experiment with a run and metric history, a serving
/// environment and an inference service of the version; the ids of model, version,
/// experiment and run.
async fn seed(api: &Api) -> [String; 4] {
    let model = id(&api.created("/registered_models", json!({"name": "m", "owner": "o"})).await);
    let version =
        api.created(&format!("/registered_models/{model}/versions"), json!({"name": "v1", "registeredModelId": model})).await;
    let version = id(&version);
    let artifact =
        json!({"artifactType": "model-artifact", "name": "a", "uri": "https://example.com/m.onnx", "modelFormatName": "onnx"});
    api.created(&format!("/model_versions/{version}/artifacts"), artifact).await;
    let experiment = id(&api.created("/experiments", json!({"name": "e"})).await);
    let run = api
        .created(&format!("/experiments/{experiment}/experiment_runs"), json!({"name": "r", "experimentId": experiment}))
        .await;
    let run = id(&run);
    for (step, value) in [(0, 1.0), (1, 0.5)] {
        let metric = json!({"artifactType": "metric", "name": "loss", "value": value, "step": step});
        api.post(&format!("/experiment_runs/{run}/artifacts"), metric).await;
    }
    let env = id(&api.created("/serving_environments", json!({"name": "env"})).await);
    let service = json!({"name": "svc", "servingEnvironmentId": env, "registeredModelId": model, "modelVersionId": version});
    api.created("/inference_services", service).await;
    [model, version, experiment, run]
}

async fn every_page_answers_with_its_status_and_headers(backend: Backend) {
    let ui = Ui::start(backend).await;
    let [model, version, experiment, run] = seed(&ui.api).await;
    let pages = [
        "/".to_owned(),
        "/ui/".into(),
        "/ui/?state=ARCHIVED&sort=CREATE_TIME&order=ASC&q=m".into(),
        "/ui/models/new".into(),
        format!("/ui/models/{model}"),
        format!("/ui/models/{model}?confirm=archive"),
        format!("/ui/models/{model}/versions/new"),
        format!("/ui/versions/{version}"),
        "/ui/experiments".into(),
        format!("/ui/experiments/{experiment}"),
        format!("/ui/runs/{run}"),
        format!("/ui/compare?run={run}"),
        "/ui/serving".into(),
    ];
    for page in &pages {
        let (status, headers, body) = ui.get(page).await;
        assert_eq!(status, 200, "{page}: {body}");
        assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8", "{page}");
        let csp = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{page}: {csp}");
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe-inline"), "{page}: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY", "{page}");
        assert!(body.contains("<main id=\"main\">") && body.contains("/metrics"), "{page}");
    }
    let (_, _, versions) = ui.get(&format!("/ui/models/{model}")).await;
    assert!(versions.contains(&format!("href=\"/ui/versions/{version}\"")) && versions.contains("onnx"));
    let (_, _, serving) = ui.get("/ui/serving").await;
    assert!(serving.contains(&format!("href=\"/ui/versions/{version}\">v1</a>")), "{serving}");
    assert!(serving.contains("<td>svc</td><td>env</td>"), "names resolved in one list each: {serving}");
    let (_, _, run_page) = ui.get(&format!("/ui/runs/{run}")).await;
    assert!(run_page.contains("data-step=\"0\" data-value=\"1\"") && run_page.contains("data-step=\"1\" data-value=\"0.5\""));

    for (page, status) in [
        ("/ui/nope", 404),
        ("/ui/models/999999", 404),
        ("/ui/models/abc", 400),
        ("/ui/runs/999999", 404),
        ("/ui/?page=%25%25", 200),
    ] {
        let (got, headers, body) = ui.get(page).await;
        assert_eq!(got, status, "{page}: {body}");
        assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8", "{page}");
    }
    let (_, _, body) = ui.get("/ui/models/999999").await;
    assert!(body.contains("no registered model found for id 999999"), "the API's message: {body}");
    let (_, _, body) = ui.get("/ui/?filter=name%20%3D").await;
    assert!(body.contains("invalid filter query"), "{body}");
    // The static style sheet, and the API and /metrics as before.
    let (status, headers, _) = ui.get("/ui/static/ui.css").await;
    assert_eq!((status, headers[CONTENT_TYPE].to_str().unwrap()), (200, "text/css; charset=utf-8"));
    let (status, headers, script) = ui.get("/ui/static/search.js").await;
    assert_eq!((status, headers[CONTENT_TYPE].to_str().unwrap()), (200, "text/javascript; charset=utf-8"));
    assert!(script.contains("DEBOUNCE_MS"));
    let (_, _, models) = ui.get("/ui/").await;
    assert!(models.contains("<script src=\"/ui/static/search.js\" defer></script>"));
    assert!(!models.replace("<script src=\"/ui/static/search.js\" defer></script>", "").contains("<script"), "no inline script");
    assert_eq!(ui.get("/api/model_registry/v1alpha3/nope").await.0, 404);
    assert_eq!(ui.get("/api/model_registry/v1alpha3/nope").await.2, "404 page not found\n");
    assert_eq!(ui.get("/metrics").await.0, 200);
    assert_eq!(ui.api.get("/registered_models").await.0, 200);
}

async fn hostile_data_is_text(backend: Backend) {
    let ui = Ui::start(backend).await;
    let hostile = "<img src=x onerror=alert(1)>";
    let model = json!({"name": hostile, "description": "<script>alert(2)</script>", "owner": "\"'><b>o</b>",
        "customProperties": {"<i>k</i>": {"metadataType": "MetadataStringValue", "string_value": "<svg onload=alert(3)>"}}});
    let model = id(&ui.api.created("/registered_models", model).await);
    let version = json!({"name": "</title><script>x</script>", "registeredModelId": model});
    let version = id(&ui.api.created(&format!("/registered_models/{model}/versions"), version).await);
    let artifact = json!({"artifactType": "model-artifact", "name": "a", "uri": "javascript:alert(4)"});
    ui.api.created(&format!("/model_versions/{version}/artifacts"), artifact).await;
    for page in ["/ui/".to_owned(), format!("/ui/models/{model}"), format!("/ui/versions/{version}")] {
        let (status, _, body) = ui.get(&page).await;
        assert_eq!(status, 200, "{page}");
        for raw in ["<img src=x", "<script>", "<svg onload", "<i>k</i>", "<b>o</b>", "href=\"javascript:", "\"'>"] {
            assert!(!body.contains(raw), "{page} holds {raw:?} unescaped");
        }
        assert!(body.contains("&#60;img src=x onerror=alert(1)&#62;"), "{page}: the name is shown as text");
    }
    let (_, _, body) = ui.get(&format!("/ui/versions/{version}")).await;
    assert!(body.contains("<code>javascript:alert(4)</code>"), "a javascript: URI is text, not a link");
}

async fn cross_site_posts_are_refused_and_change_nothing(backend: Backend) {
    let ui = Ui::start(backend).await;
    let token = ui.token().await;
    let form = [("csrf", token.as_str()), ("name", "evil"), ("version", "v"), ("uri", "s3://x")];
    let own = ui.root.clone();
    type Case<'a> = (Option<&'a str>, Option<&'a str>, &'a [(&'a str, &'a str)]);
    let cases: [Case; 5] = [
        (Some("http://evil.example"), Some(&token), &form),
        (Some(&format!("{own}.evil.example")), Some(&token), &form),
        (None, Some(&token), &form),
        (Some(&own), None, &form),
        (
            Some(&own),
            Some(&token),
            &[("csrf", "0123456789abcdef0123456789abcdef"), ("name", "evil"), ("version", "v"), ("uri", "u")],
        ),
    ];
    for (i, (origin, cookie, form)) in cases.into_iter().enumerate() {
        let (status, _, body) = ui.post("/ui/models/new", origin, cookie, form).await;
        assert_eq!(status, 403, "case {i}: {body}");
    }
    // A cross-site archive of an existing model is refused too.
    let model = id(&ui.api.created("/registered_models", json!({"name": "kept"})).await);
    let archive = [("csrf", token.as_str()), ("action", "archive")];
    let (status, _, _) = ui.post(&format!("/ui/models/{model}"), Some("http://evil.example"), Some(&token), &archive).await;
    assert_eq!(status, 403);
    let (_, models) = ui.api.get("/registered_models").await;
    assert_eq!(models["size"], 1, "nothing was created: {models}");
    assert_eq!(models["items"][0]["state"], "LIVE", "nothing was archived");
    // A Referer of this server stands in for a missing Origin.
    let response = ui
        .http
        .post(format!("{own}/ui/models/{model}"))
        .header(REFERER, format!("{own}/ui/models/{model}"))
        .header(COOKIE, format!("mr_csrf={token}"))
        .form(&archive)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(ui.api.get(&format!("/registered_models/{model}")).await.1["state"], "ARCHIVED");
}

async fn forms_register_edit_and_archive(backend: Backend) {
    let ui = Ui::start(backend).await;
    let form = [
        ("name", "demo"),
        ("owner", "al"),
        ("version", "v1"),
        ("uri", "s3://b/m"),
        ("format_name", "onnx"),
        ("format_version", "1"),
    ];
    let (status, headers, body) = ui.submit("/ui/models/new", &form).await;
    assert_eq!(status, 303, "{body}");
    let location = headers[LOCATION].to_str().unwrap().to_owned();
    let model = location.strip_prefix("/ui/models/").unwrap().to_owned();
    let (_, found) = ui.api.get(&format!("/registered_models/{model}")).await;
    assert_eq!((found["name"].as_str(), found["owner"].as_str()), (Some("demo"), Some("al")));
    let (_, versions) = ui.api.get(&format!("/registered_models/{model}/versions")).await;
    let version = id(&versions["items"][0]);
    let (_, artifacts) = ui.api.get(&format!("/model_versions/{version}/artifacts")).await;
    assert_eq!(artifacts["items"][0]["uri"], "s3://b/m");
    assert_eq!(artifacts["items"][0]["modelFormatName"], "onnx");

    // The API's refusals, next to the field they are about; nothing more is written.
    let (status, _, body) = ui.submit("/ui/models/new", &form).await;
    assert_eq!(status, 400);
    assert!(body.contains("id=\"name-error\"") && body.contains("already exists"), "{body}");
    let (status, _, body) = ui.submit("/ui/models/new", &[("name", ""), ("version", ""), ("uri", "")]).await;
    assert_eq!(status, 400);
    for field in ["name", "version", "uri"] {
        assert!(body.contains(&format!("id=\"{field}-error\"")), "{field}: {body}");
    }
    assert_eq!(ui.api.get("/registered_models").await.1["size"], 1);

    let (status, headers, _) =
        ui.submit(&format!("/ui/models/{model}/versions/new"), &[("version", "v2"), ("uri", "https://h/m2")]).await;
    assert_eq!(status, 303);
    assert!(headers[LOCATION].to_str().unwrap().starts_with("/ui/versions/"));
    assert_eq!(ui.api.get(&format!("/registered_models/{model}/versions")).await.1["size"], 2);
    let (_, _, list) = ui.get("/ui/").await;
    assert!(list.contains(">v2</a>"), "the latest version is listed: {list}");

    let edit = [("action", "edit"), ("description", "d"), ("owner", "bo"), ("labels", "prod, nlp"), ("properties", "team=ml")];
    assert_eq!(ui.submit(&format!("/ui/models/{model}"), &edit).await.0, 303);
    let (_, edited) = ui.api.get(&format!("/registered_models/{model}")).await;
    assert_eq!(edited["owner"], "bo");
    assert_eq!(edited["customProperties"]["nlp"]["string_value"], "");
    assert_eq!(edited["customProperties"]["team"]["string_value"], "ml");
    let (_, _, page) = ui.get(&format!("/ui/models/{model}")).await;
    assert!(page.contains("<li>nlp</li>") && page.contains("<li>prod</li>"), "labels as chips");

    let (status, _, body) = ui.submit(&format!("/ui/models/{model}"), &[("action", "edit"), ("properties", "no value")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("is not name=value"), "{body}");
    assert_eq!(ui.submit(&format!("/ui/models/{model}"), &[("action", "archive")]).await.0, 303);
    assert!(!ui.get("/ui/").await.2.contains(">demo</a>"), "an archived model leaves the live list");
    assert!(ui.get("/ui/?state=ARCHIVED").await.2.contains(">demo</a>"));
    assert_eq!(ui.submit(&format!("/ui/models/{model}"), &[("action", "restore")]).await.0, 303);
    assert!(ui.get("/ui/").await.2.contains(">demo</a>"));
    assert_eq!(ui.submit(&format!("/ui/versions/{version}"), &[("action", "archive")]).await.0, 303);
    assert_eq!(ui.api.get(&format!("/model_versions/{version}")).await.1["state"], "ARCHIVED");
}

/// How many models, versions and artifacts the API lists.
async fn counts(api: &Api) -> [u64; 3] {
    let mut counts = [0; 3];
    for (count, path) in counts.iter_mut().zip(["/registered_models", "/model_versions", "/artifacts"]) {
        *count = api.get(path).await.1["size"].as_u64().unwrap();
    }
    counts
}

async fn registering_is_all_or_nothing(backend: Backend) {
    let ui = Ui::start(backend).await;
    let long_uri = format!("s3://b/{}", "x".repeat(3000));
    // The artifact, written last, is refused: the model and version written before it go too.
    let form = [("name", "whole"), ("version", "v1"), ("uri", long_uri.as_str())];
    let (status, _, body) = ui.submit("/ui/models/new", &form).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("id=\"uri-error\"") && body.contains("at most 2692 are allowed"), "{body}");
    assert_eq!(counts(&ui.api).await, [0, 0, 0], "nothing of the registration is left");
    // The same form with a URI the API takes registers all three.
    let form = [("name", "whole"), ("version", "v1"), ("uri", "s3://b/m")];
    assert_eq!(ui.submit("/ui/models/new", &form).await.0, 303);
    assert_eq!(counts(&ui.api).await, [1, 1, 1]);
    let model = id(&ui.api.get("/registered_models").await.1["items"][0]);

    // A new version: a refused artifact takes the version back, a taken name writes nothing.
    let path = format!("/ui/models/{model}/versions/new");
    let (status, _, body) = ui.submit(&path, &[("version", "v2"), ("uri", long_uri.as_str())]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("id=\"uri-error\""), "{body}");
    let (status, _, body) = ui.submit(&path, &[("version", "v1"), ("uri", "s3://b/other")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("id=\"version-error\"") && body.contains("already exists"), "{body}");
    assert_eq!(counts(&ui.api).await, [1, 1, 1], "neither version nor artifact is left");
    let (_, artifacts) = ui.api.get("/artifacts").await;
    assert_eq!(artifacts["items"][0]["uri"], "s3://b/m", "the first version's artifact is as it was");
    // Once refused, the name is free: the version registers whole.
    assert_eq!(ui.submit(&path, &[("version", "v2"), ("uri", "s3://b/m2")]).await.0, 303);
    assert_eq!(counts(&ui.api).await, [1, 2, 2]);
    // A model that is not there: 404, nothing written.
    assert_eq!(ui.submit("/ui/models/999999/versions/new", &[("version", "v"), ("uri", "s3://x")]).await.0, 404);
    assert_eq!(counts(&ui.api).await, [1, 2, 2]);
}

/// The model names of a models page, and the address of its next page if it has one.
fn names_and_next(page: &str) -> (Vec<String>, Option<String>) {
    let table = page.split("<tbody>").nth(1).unwrap().split("</tbody>").next().unwrap();
    let names = table
        .split("<a href=\"/ui/models/")
        .skip(1)
        .map(|cell| cell.split_once("\">").unwrap().1.split("</a>").next().unwrap().to_owned())
        .collect();
    let next = page.split("rel=\"next\" href=\"").nth(1).map(|rest| rest.split('"').next().unwrap().replace("&#38;", "&"));
    (names, next)
}

/// Every page of models from `first` on, following "Next page".
async fn every_page(ui: &Ui, first: &str) -> Vec<Vec<String>> {
    let (mut pages, mut next) = (Vec::new(), Some(first.to_owned()));
    while let Some(address) = next {
        let (status, _, body) = ui.get(&address).await;
        assert_eq!(status, 200, "{address}: {body}");
        let (names, following) = names_and_next(&body);
        pages.push(names);
        next = following;
    }
    pages
}

async fn models_sort_by_name_across_pages(backend: Backend) {
    let ui = Ui::start(backend).await;
    // Mixed case and shared prefixes, none the same name ignoring case (MySQL's collation
    // would hold two such as one).
    let prefixes = ["m", "M", "model-", "Model", "mo"];
    let mut live = Vec::new();
    for i in 0..60 {
        let name = format!("{}{i}", prefixes[i % prefixes.len()]);
        let model = id(&ui.api.created("/registered_models", json!({"name": name})).await);
        if i % 20 == 7 {
            ui.api.patch(&format!("/registered_models/{model}"), json!({"state": "ARCHIVED"})).await;
        } else {
            live.push(name);
        }
    }
    // The database's order: MySQL's collation ignores case, the others' (SQLite's binary,
    // testkit's PostgreSQL C.UTF-8) compare code points.
    let key = |name: &String| if backend == Backend::MySql { name.to_lowercase() } else { name.clone() };
    live.sort_by_key(key);
    let pages = every_page(&ui, "/ui/?sort=NAME&order=ASC").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [25, 25, 7], "{pages:?}");
    assert_eq!(pages.concat(), live, "ascending, page after page");
    let pages = every_page(&ui, "/ui/?sort=NAME&order=DESC").await;
    live.reverse();
    assert_eq!(pages.concat(), live, "descending");
    // Archived ones too, and a search within name order.
    assert_eq!(every_page(&ui, "/ui/?sort=NAME&order=ASC&state=ALL").await.concat().len(), 60);
    let found = every_page(&ui, "/ui/?sort=NAME&order=ASC&q=model").await.concat();
    let mut expected: Vec<String> = live.iter().filter(|n| n.to_lowercase().starts_with("model")).cloned().collect();
    expected.sort_by_key(key);
    assert_eq!(found, expected);
    // A name token is the UI's: the REST API orders by id for NAME (as upstream) and refuses it.
    let (_, _, page) = ui.get("/ui/?sort=NAME&order=ASC").await;
    let next = names_and_next(&page).1.unwrap();
    let token = next.split("page=").nth(1).unwrap();
    let (status, body) = ui.api.get(&format!("/registered_models?orderBy=NAME&nextPageToken={token}")).await;
    assert_eq!(status, 400, "{body}");
    let (_, by_id) = ui.api.get("/registered_models?orderBy=NAME&pageSize=2").await;
    assert_eq!(by_id["items"][0]["name"], "m0", "orderBy=NAME is id order over the API: {by_id}");
}

/// Statements run by the whole process (nextest runs each test in its own). `Other` (session
/// set-up of a new pool connection, which a page opens when the pool has dropped one beyond
/// its idle limit) is left out: it depends on the pool's state, not on the page.
fn statements() -> u64 {
    QueryKind::ALL.into_iter().filter(|k| *k != QueryKind::Other).map(|k| query_totals(k).0).sum()
}

/// The fewest statements of five loads of a page.
async fn statements_for(ui: &Ui, page: &str) -> u64 {
    let mut fewest = u64::MAX;
    for _ in 0..5 {
        let before = statements();
        let (status, _, body) = ui.get(page).await;
        assert_eq!(status, 200, "{page}: {body}");
        fewest = fewest.min(statements() - before);
    }
    fewest
}

/// `count` more models with two versions each, runs with a parameter, and experiments.
async fn add_rows(api: &Api, experiment: &str, from: usize, count: usize) {
    for i in from..from + count {
        let model = id(&api.created("/registered_models", json!({"name": format!("m{i}")})).await);
        for v in 0..2 {
            let version = json!({"name": format!("v{v}"), "registeredModelId": model});
            api.created(&format!("/registered_models/{model}/versions"), version).await;
        }
        let run = json!({"name": format!("r{i}"), "experimentId": experiment});
        let run = id(&api.created(&format!("/experiments/{experiment}/experiment_runs"), run).await);
        let param = json!({"artifactType": "parameter", "name": "lr", "value": "0.1", "parameterType": "number"});
        api.post(&format!("/experiment_runs/{run}/artifacts"), param).await;
        api.created("/experiments", json!({"name": format!("e{i}")})).await;
    }
}

async fn pages_cost_the_same_statements_for_few_and_many_rows(backend: Backend) {
    let ui = Ui::start(backend).await;
    let [_, _, experiment, _] = seed(&ui.api).await;
    // A read of one or two nodes takes one statement, of more two: "few" is past that.
    add_rows(&ui.api, &experiment, 0, 3).await;
    let pages = [
        "/ui/".to_owned(),
        "/ui/?sort=NAME&order=ASC".into(),
        // The page after "m" in name order, by the token its "Next page" link carries.
        format!("/ui/?sort=NAME&order=ASC&page={}", STANDARD.encode("1:m")),
        format!("/ui/experiments/{experiment}"),
        "/ui/experiments".into(),
        "/ui/serving".into(),
    ];
    let mut few = Vec::new();
    for page in &pages {
        few.push(statements_for(&ui, page).await);
    }
    add_rows(&ui.api, &experiment, 3, 20).await;
    for (page, few) in pages.iter().zip(few) {
        let many = statements_for(&ui, page).await;
        assert_eq!(many, few, "{page}: {few} statements for a few rows, {many} for many");
        assert!(many <= 12, "{page}: {many} statements");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_false_serves_no_pages_and_the_api_as_before() {
    let db = TestDb::new(Backend::Sqlite).await;
    let datastore = embedmd::dsn::resolve(None, Some(db.url()), &embedmd::TlsConfig::default()).unwrap();
    let app = App::build(ServerConfig { ui: false, ..ServerConfig::new("127.0.0.1", 0, datastore) }).await.unwrap();
    let root = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..500 {
        if http.get(format!("{root}/readyz/health")).send().await.is_ok_and(|r| r.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready);
    for path in ["/", "/ui/", "/ui/models/new", "/ui/static/ui.css"] {
        let response = http.get(format!("{root}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.text().await.unwrap(), "404 page not found\n", "{path}");
    }
    let models = http.get(format!("{root}/api/model_registry/v1alpha3/registered_models")).send().await.unwrap();
    assert_eq!(models.status(), 200);
}
