//! What keeps the UI's pages from being abused from other sites: headers that forbid inline
//! and foreign scripts and framing, and form posts refused unless they come from the UI's own
//! pages (same origin, and the per-browser token the page carried, a double-submit cookie).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::SignedIn;

/// Scripts and styles from the server's own files only (no inline script, none from data),
/// requests back to it only (the models page's search as you type), forms back to it, never
/// in a frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The cookie holding the browser's token; forms repeat it in a field of the same name.
pub const CSRF_COOKIE: &str = "mr_csrf";
pub const CSRF_FIELD: &str = "csrf";

/// A UI form is a few fields; anything larger is refused before it is parsed.
pub const FORM_LIMIT: usize = 64 * 1024;

/// The browser's token (32 hex digits, random), with who the auth layer found it signed in as:
/// what every page's header and forms carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken(pub String, pub Option<Box<SignedIn>>);

impl CsrfToken {
    fn fresh() -> Self {
        CsrfToken(uuid::Uuid::new_v4().simple().to_string(), None)
    }

    fn from_cookies(headers: &HeaderMap) -> Option<Self> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == CSRF_COOKIE)
            .map(|(_, value)| value)
            .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|v| CsrfToken(v.to_owned(), None))
    }

    /// Compares without stopping at the first difference.
    fn matches(&self, other: &str) -> bool {
        self.0.len() == other.len() && self.0.bytes().zip(other.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Whether `origin` (`scheme://host[:port]`, or a URL starting so) names the host the request
/// was sent to.
fn same_origin(origin: &str, host: &str) -> bool {
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        authority.eq_ignore_ascii_case(host)
    })
}

/// A POST is the UI's own if its Origin (or, without one, its Referer) is this server.
fn from_this_site(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let origin = headers.get(header::ORIGIN).or_else(|| headers.get(header::REFERER));
    origin.and_then(|o| o.to_str().ok()).is_some_and(|o| same_origin(o, host))
}

fn refused(why: &'static str) -> Response {
    tracing::warn!(why, "a UI form post was refused");
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("403 Forbidden: {why}\n"))
        .into_response()
}

/// The field `name` of a form body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Checks a form post before its handler runs, gives every page the browser's token (setting
/// the cookie when it has none) and the security headers.
pub async fn guard(mut request: Request, next: Next) -> Response {
    let cookie = CsrfToken::from_cookies(request.headers());
    if request.method() == Method::POST {
        if !from_this_site(request.headers()) {
            return refused("the form was not sent from this server's pages");
        }
        let Some(token) = &cookie else { return refused("no form token cookie: reload the page and try again") };
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else { return refused("the form is too large") };
        if !form_field(&bytes, CSRF_FIELD).is_some_and(|sent| token.matches(&sent)) {
            return refused("the form token does not match: reload the page and try again");
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    let mut token = cookie.clone().unwrap_or_else(CsrfToken::fresh);
    token.1 = request.extensions().get::<SignedIn>().cloned().map(Box::new);
    request.extensions_mut().insert(token.clone());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if cookie.is_none() {
        let cookie = format!("{CSRF_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", token.0);
        headers.append(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("hex is a valid header value"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_name_this_host() {
        assert!(same_origin("http://localhost:8080", "localhost:8080"));
        assert!(same_origin("https://Registry.example/ui/models/new?x", "registry.example"));
        assert!(!same_origin("http://localhost:8080.evil.example", "localhost:8080"));
        assert!(!same_origin("http://evil.example", "localhost:8080"));
        assert!(!same_origin("null", "localhost:8080"));
        assert!(!same_origin("javascript://localhost:8080", "localhost:8080"));
    }

    #[test]
    fn tokens_come_from_the_cookie_and_compare_whole() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=b; mr_csrf=0123456789abcdef0123456789abcdef"));
        let token = CsrfToken::from_cookies(&headers).unwrap();
        assert!(token.matches("0123456789abcdef0123456789abcdef"));
        assert!(!token.matches("0123456789abcdef0123456789abcdee"));
        assert!(!token.matches(""));
        headers.insert(header::COOKIE, HeaderValue::from_static("mr_csrf=<script>"));
        assert_eq!(CsrfToken::from_cookies(&headers), None);
    }
}
