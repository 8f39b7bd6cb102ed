//! Every request gets an id, a span that carries it onto each log line emitted while serving
//! it, one access line and its count in the request series.

use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::metrics::{Metrics, RequestLabels};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client's id longer than this is replaced: it ends up in every log line of the request.
const MAX_REQUEST_ID: usize = 128;

/// The route label of a response no route matched but the fallback understood (readiness).
#[derive(Clone, Copy, Debug)]
pub struct RouteLabel(pub &'static str);

/// Label of requests that match no route: the raw path would make a series per path.
const UNMATCHED: &str = "unmatched";

/// Methods outside the standard ones are labelled `other`: a client must not be able to create
/// series at will.
fn method_label(method: &Method) -> &'static str {
    ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].into_iter().find(|m| *m == method.as_str()).unwrap_or("other")
}

/// A client's id is kept when it is a token that is safe to log and return as is.
fn is_sane(id: &HeaderValue) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len()) && id.as_bytes().iter().all(|b| b.is_ascii_graphic())
}

pub async fn observe(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = match request.headers().get(&REQUEST_ID) {
        Some(id) if is_sane(id) => id.clone(),
        _ => HeaderValue::try_from(uuid::Uuid::new_v4().to_string()).expect("a uuid is a valid header value"),
    };
    let method = method_label(request.method());
    let matched = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let span = tracing::info_span!("request", request_id = id.to_str().expect("checked or generated as ASCII"));
    let in_flight = metrics.in_flight();
    let mut response = next.run(request).instrument(span.clone()).await;
    drop(in_flight);
    let elapsed = started.elapsed();
    let route = matched
        .or_else(|| response.extensions().get::<RouteLabel>().map(|r| r.0.to_owned()))
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let status = response.status().as_u16();
    // Known for bodies built whole; a streamed list's is not known before it is sent.
    let bytes = response.body().size_hint().exact();
    // Who the auth layer found; absent in mode none and for anonymous requests.
    let subject = response.extensions().get::<crate::auth::Subject>().map(|s| s.0.clone());
    let subject = subject.as_deref();
    span.in_scope(|| {
        tracing::info!(
            target: "access",
            method,
            route,
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            bytes,
            subject,
            "request"
        );
    });
    metrics.record(RequestLabels { method, route, status }, elapsed);
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::TRACE), "other");
    }

    #[test]
    fn only_short_visible_ascii_ids_are_kept() {
        assert!(is_sane(&HeaderValue::from_static("abc-123_x.Y")));
        assert!(!is_sane(&HeaderValue::from_static("")));
        assert!(!is_sane(&HeaderValue::from_static("two words")));
        assert!(!is_sane(&HeaderValue::from_str(&"x".repeat(MAX_REQUEST_ID + 1)).unwrap()));
        assert!(!is_sane(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()));
    }
}
