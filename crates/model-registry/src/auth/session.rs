//! The web UI's sign-in: a browser has no bearer token to send, so the UI's login page takes one
//! once, checks it with the mode's authenticator and keeps it in an HttpOnly cookie. The auth
//! layer reads that cookie on the UI's routes only ([`super::Guarded::pages`]): the REST and
//! MLflow APIs stay bearer-only, so no request another site makes a browser send can ride it.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, Method};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{Auth, Denied, Identity, Need, Role, MAX_TOKEN_BYTES};

/// The cookie holding a signed-in browser's token.
pub const SESSION_COOKIE: &str = "mr_session";

/// How long a browser keeps its sign-in (`Max-Age`): a working day. The token's own life (a
/// JWT's `exp`, a line of the token file) still applies on every request.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(8 * 3600);

/// The longest `Set-Cookie` value sent: browsers drop a cookie over 4096 bytes, name and
/// attributes included, and a token that long is better sent by a proxy.
pub const MAX_COOKIE_BYTES: usize = 4000;

/// Where a browser without a token is sent.
pub const LOGIN_PATH: &str = "/ui/login";

/// Where a signed-in browser goes when `next` is missing or refused.
pub const HOME: &str = "/ui/";

/// Bytes a cookie value may not hold as they are (RFC 6265 `cookie-octet`), plus `%`.
const COOKIE_UNSAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a UI route's request carries from the auth layer (in modes other than `none`): the way
/// to check a token the login form was given, and how to word the cookie.
#[derive(Clone)]
pub struct SignIn {
    pub(super) auth: Auth,
}

impl SignIn {
    /// Whether `token` may sign in: whoever it identifies must be a reader at least (in the
    /// kubernetes mode, may `get` the registry's Service).
    pub async fn check(&self, token: &str) -> Result<Identity, Denied> {
        let Some(authenticator) = &self.auth.authenticator else {
            return Err(Denied::Unauthenticated("this server asks for no token".into()));
        };
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(Denied::Unauthenticated(format!("a token is 1 to {MAX_TOKEN_BYTES} bytes")));
        }
        authenticator.check(token, Need { role: Role::Reader, method: &Method::GET }).await
    }

    /// The `Set-Cookie` that keeps `token`; `None` when it would be too long for a browser.
    pub fn keep(&self, token: &str) -> Option<HeaderValue> {
        let value = utf8_percent_encode(token, COOKIE_UNSAFE).to_string();
        let cookie = format!("{SESSION_COOKIE}={value}; Max-Age={}{}", SESSION_MAX_AGE.as_secs(), self.attributes());
        (cookie.len() <= MAX_COOKIE_BYTES).then(|| HeaderValue::from_str(&cookie).expect("percent-encoded text"))
    }

    /// The `Set-Cookie` that signs out.
    pub fn forget(&self) -> HeaderValue {
        forget(self.auth.https)
    }

    fn attributes(&self) -> &'static str {
        attributes(self.auth.https)
    }
}

fn attributes(https: bool) -> &'static str {
    if https {
        "; Path=/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Strict"
    }
}

pub(super) fn forget(https: bool) -> HeaderValue {
    HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Max-Age=0{}", attributes(https))).expect("ASCII")
}

/// Who a UI page's caller is, for its header: signed in by the login cookie (the page offers
/// to sign out) or by a header a proxy set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub subject: Arc<str>,
    pub by_cookie: bool,
}

/// The token the login cookie holds, if any.
pub(super) fn cookie_token(headers: &HeaderMap) -> Option<String> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)?
        .1;
    let token = percent_decode_str(value).decode_utf8().ok()?;
    (!token.is_empty() && token.len() <= MAX_TOKEN_BYTES).then(|| token.into_owned())
}

/// `next` if it is a path of the UI on this server, else [`HOME`]: never another site
/// (`//evil.example`, `/\evil.example`, a scheme), never a path a browser would read otherwise
/// (control characters, which browsers drop).
pub fn local_next(next: &str) -> &str {
    let ui = next == "/" || next.starts_with("/ui/");
    let plain = next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if ui && plain {
        next
    } else {
        HOME
    }
}

/// The login page's address that returns to `path_and_query` after signing in.
pub(super) fn login_location(path_and_query: &str) -> String {
    format!("{LOGIN_PATH}?next={}", utf8_percent_encode(path_and_query, NON_ALPHANUMERIC))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_uis_pages() {
        for ok in ["/", "/ui/", "/ui/models/3?state=ARCHIVED", "/ui/models/%2F%2Fx"] {
            assert_eq!(local_next(ok), ok);
        }
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "/ui/\\..\\",
            "https://evil.example/ui/",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/ui/\n",
            "/api/model_registry/v1alpha3/registered_models",
            "ui/",
            "/uix",
            "/ui/é",
        ] {
            assert_eq!(local_next(bad), HOME, "{bad:?}");
        }
        assert_eq!(login_location("/ui/models?q=a b&x=/"), "/ui/login?next=%2Fui%2Fmodels%3Fq%3Da%20b%26x%3D%2F");
    }

    #[test]
    fn the_cookie_keeps_the_token_as_it_was() {
        let sign_in = SignIn { auth: Auth::default() };
        let token = "a b;c=d%e\"f,g\\h";
        let set = sign_in.keep(token).unwrap();
        let set = set.to_str().unwrap();
        assert!(set.ends_with("; Max-Age=28800; Path=/; HttpOnly; SameSite=Strict"), "{set}");
        let value = set.split(';').next().unwrap();
        let headers = HeaderMap::from_iter([(header::COOKIE, HeaderValue::from_str(&format!("x=1; {value}")).unwrap())]);
        assert_eq!(cookie_token(&headers).as_deref(), Some(token));
        assert!(sign_in.keep(&"t".repeat(MAX_COOKIE_BYTES)).is_none());
        let https = SignIn { auth: Auth { https: true, ..Auth::default() } };
        assert!(https.keep("t").unwrap().to_str().unwrap().ends_with("; Secure"));
        assert!(https.forget().to_str().unwrap().contains("Max-Age=0"));
    }
}
