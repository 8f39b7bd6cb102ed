//! Signing in for browsers: the login page takes a token once, checks it as the API would and
//! keeps it in the login cookie (`auth::SESSION_COOKIE`); signing out forgets it. In mode `none`
//! there is nothing to sign in to and both go back to the models.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;

use super::{render, see_other, Chrome, CsrfToken};
use crate::app::{AppState, StoreState};
use crate::auth::{local_next, Denied, SignIn};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    error: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

fn page(state: &AppState, csrf: &CsrfToken, next: &str, status: StatusCode, error: String) -> Response {
    let registry = match &*state.store() {
        StoreState::Ready(registry) => Some(registry.clone()),
        StoreState::Starting(_) => None,
    };
    let mut response = render(&LoginPage { chrome: Chrome::new(registry.as_ref(), csrf), next: next.to_owned(), error });
    *response.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"model-registry\""));
    }
    response
}

/// `GET /ui/login?next=/ui/...`.
pub async fn form(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    sign_in: Option<Extension<SignIn>>,
    Query(query): Query<LoginForm>,
) -> Response {
    let next = local_next(&query.next);
    match sign_in {
        Some(_) => page(&state, &csrf, next, StatusCode::OK, String::new()),
        None => see_other(next),
    }
}

/// `POST /ui/login`: the cookie and back to `next` when the token signs in; the form again with
/// the reason when not, and nothing set.
pub async fn sign_in(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    sign_in: Option<Extension<SignIn>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = local_next(&form.next);
    let Some(Extension(sign_in)) = sign_in else { return see_other(next) };
    let token = form.token.trim();
    let (status, error) = match sign_in.check(token).await {
        Ok(identity) => match sign_in.keep(token) {
            Some(cookie) => {
                tracing::info!(subject = &*identity.subject, "signed in to the web UI");
                let mut response = see_other(next);
                response.headers_mut().append(header::SET_COOKIE, cookie);
                return response;
            }
            None => (
                StatusCode::BAD_REQUEST,
                "This token is too long for a browser cookie: reach the UI through a proxy that sends it.".to_owned(),
            ),
        },
        Err(Denied::Unauthenticated(why)) => (StatusCode::UNAUTHORIZED, format!("This token is not accepted: {why}.")),
        Err(Denied::Forbidden { message, .. }) => {
            (StatusCode::FORBIDDEN, format!("This token may not read the registry: {message}."))
        }
        Err(Denied::Unavailable(why)) => (StatusCode::SERVICE_UNAVAILABLE, format!("The token cannot be checked now: {why}.")),
    };
    page(&state, &csrf, next, status, error)
}

/// `POST /ui/logout`: forgets the browser's token.
pub async fn sign_out(sign_in: Option<Extension<SignIn>>) -> Response {
    let Some(Extension(sign_in)) = sign_in else { return see_other(local_next("")) };
    let mut response = see_other(crate::auth::LOGIN_PATH);
    response.headers_mut().append(header::SET_COOKIE, sign_in.forget());
    response
}
