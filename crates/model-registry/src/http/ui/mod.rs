//! The web UI: pages rendered on the server from the registry layer the REST API uses, with
//! templates and the style sheet compiled into the binary. Every page is one entry of
//! [`PAGES`] (path, method, role, handler), so that an authorization layer can check each by
//! role; each handler makes a fixed number of registry calls.

mod chart;
mod login;
mod models;
mod runs;
mod security;
mod view;

use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};

use super::resources::Method;
use crate::app::{AppState, StoreState};
use crate::auth::{Access, Guarded, Role, SignedIn};
use crate::registry::{Error, Registry};

pub use security::CsrfToken;

/// Rows of a listed page (models, versions, runs, services).
pub const PAGE_SIZE: u32 = 25;

/// Where the UI lives besides `/`.
pub const PREFIX: &str = "/ui";

/// One page or form action of the UI.
pub struct Page {
    pub path: &'static str,
    pub method: Method,
    /// What a caller needs to be served this entry.
    pub role: Role,
    route: fn() -> MethodRouter<AppState>,
}

const fn page(path: &'static str, method: Method, role: Role, route: fn() -> MethodRouter<AppState>) -> Page {
    Page { path, method, role, route }
}

use Method::{Get, Post};
use Role::{Reader, Writer};

/// Every page of the UI. Forms that change something are POSTs (a Writer's); the pages that
/// only show a form to fill are a Writer's too, since nothing else can be done with them.
pub static PAGES: &[Page] = &[
    page("/", Get, Reader, || get(models::list)),
    page("/ui/", Get, Reader, || get(models::list)),
    page("/ui/models/new", Get, Writer, || get(models::register_form)),
    page("/ui/models/new", Post, Writer, || post(models::register)),
    page("/ui/models/{id}", Get, Reader, || get(models::show)),
    page("/ui/models/{id}", Post, Writer, || post(models::edit)),
    page("/ui/models/{id}/versions/new", Get, Writer, || get(models::version_form)),
    page("/ui/models/{id}/versions/new", Post, Writer, || post(models::add_version)),
    page("/ui/versions/{id}", Get, Reader, || get(models::version)),
    page("/ui/versions/{id}", Post, Writer, || post(models::edit_version)),
    page("/ui/serving", Get, Reader, || get(models::serving)),
    page("/ui/experiments", Get, Reader, || get(runs::experiments)),
    page("/ui/experiments/{id}", Get, Reader, || get(runs::experiment)),
    page("/ui/runs/{id}", Get, Reader, || get(runs::run)),
    page("/ui/compare", Get, Reader, || get(runs::compare)),
    page("/ui/static/search.js", Get, Reader, || get(search_script)),
    page("/ui/{*rest}", Get, Reader, || get(not_found)),
];

type Route = fn() -> MethodRouter<AppState>;

/// What anyone may ask for: the login page, signing out (which only forgets the browser's
/// cookie) and the style sheet the login page needs.
const OPEN: &[(&str, Method, Route)] = &[
    ("/ui/login", Get, || get(login::form)),
    ("/ui/login", Post, || post(login::sign_in)),
    ("/ui/logout", Post, || post(login::sign_out)),
    ("/ui/static/ui.css", Get, || get(style)),
];

/// The UI's routes, each needing its page's role, with its security headers and cross-site checks.
pub fn routes() -> Guarded<AppState> {
    let pages = PAGES.iter().fold(Guarded::default(), |routes, page| {
        routes.route(page.path, &[page.method.http()], Access::Needs(page.role), (page.route)())
    });
    let pages =
        OPEN.iter().fold(pages, |routes, (path, method, route)| routes.route(path, &[method.http()], Access::Open, route()));
    let pages = pages.pages();
    Guarded { router: pages.router.layer(axum::middleware::from_fn(security::guard)), ..pages }
}

const STYLE: &str = include_str!("static/ui.css");

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLE).into_response()
}

/// Search as you type on the models page (the page works without it).
const SEARCH_SCRIPT: &str = include_str!("static/search.js");

async fn search_script() -> Response {
    let headers = [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")];
    (headers, SEARCH_SCRIPT).into_response()
}

/// What every page's header shows, and the token its forms carry.
pub struct Chrome {
    pub version: &'static str,
    pub database: &'static str,
    pub csrf: String,
    /// Who is signed in, where the mode asks.
    pub user: Option<SignedIn>,
}

impl Chrome {
    fn new(registry: Option<&Registry>, csrf: &CsrfToken) -> Self {
        let database = registry.map_or("starting", |r| match r.datastore().dialect().backend() {
            embedmd::Backend::Sqlite => "SQLite",
            embedmd::Backend::MySql => "MySQL",
            embedmd::Backend::Postgres => "PostgreSQL",
        });
        Chrome { version: env!("CARGO_PKG_VERSION"), database, csrf: csrf.0.clone(), user: csrf.1.as_deref().cloned() }
    }
}

/// A page that could not be shown: the API's error, as an HTML page with the API's status.
#[derive(Debug)]
pub struct UiError {
    error: Error,
    csrf: CsrfToken,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    reason: String,
    message: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let message = self.error.to_string();
        // The API's own status table (it logs an internal error's cause, never shown here).
        let api = self.error.into_response();
        let status = api.status();
        let page = ErrorPage {
            chrome: Chrome::new(None, &self.csrf),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error").to_owned(),
            message,
        };
        let mut response = render(&page).into_response();
        *response.status_mut() = status;
        if let Some(retry) = api.headers().get(header::RETRY_AFTER) {
            response.headers_mut().insert(header::RETRY_AFTER, retry.clone());
        }
        response
    }
}

/// A handler's result.
pub type Shown = Result<Response, UiError>;

/// The request's registry and token; 503 while the datastore is starting.
pub struct Ctx {
    pub registry: Registry,
    pub chrome: Chrome,
    csrf: CsrfToken,
}

impl Ctx {
    pub fn new(state: &AppState, csrf: CsrfToken) -> Result<Ctx, UiError> {
        match &*state.store() {
            StoreState::Ready(registry) => {
                Ok(Ctx { registry: registry.clone(), chrome: Chrome::new(Some(registry), &csrf), csrf })
            }
            StoreState::Starting(reason) => Err(UiError { error: Error::Unavailable(reason.clone()), csrf }),
        }
    }

    /// Turns a registry error into this request's error page.
    pub fn fail(&self, error: Error) -> UiError {
        UiError { error, csrf: self.csrf.clone() }
    }
}

/// A template as a page; a template that cannot render (it cannot, short of a bug) is a 500.
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a UI template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// 303 to another page after a form.
pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response()
}

async fn not_found(State(state): State<AppState>, axum::Extension(csrf): axum::Extension<CsrfToken>) -> Shown {
    let registry = match &*state.store() {
        StoreState::Ready(registry) => Some(registry.clone()),
        StoreState::Starting(_) => None,
    };
    let page = ErrorPage {
        chrome: Chrome::new(registry.as_ref(), &csrf),
        status: 404,
        reason: "Not Found".into(),
        message: "There is no page at this address.".into(),
    };
    let mut response = render(&page);
    *response.status_mut() = StatusCode::NOT_FOUND;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever changes something is a Writer's; the table builds into one router.
    #[test]
    fn every_post_needs_a_writer_and_the_table_routes() {
        for page in PAGES {
            if page.method == Method::Post {
                assert!(page.role >= Role::Writer, "{}", page.path);
            }
            assert!(page.path == "/" || page.path.starts_with(PREFIX), "{}", page.path);
        }
        let _ = routes();
    }
}
