//! Harnesses shared by the integration tests: the app in-process on a fresh database
//! ([`app::Api`]) and the real binary as a child process ([`server::Server`]).
// Each test binary compiles this module and uses only a part of it.
#![allow(dead_code)]

pub mod app;
pub mod auth;
pub mod cluster;
pub mod server;

use serde_json::Value;

/// Sends a request with an optional JSON body; the status and the answer as JSON (text that is
/// not JSON comes back as a string).
pub async fn send(request: reqwest::RequestBuilder, body: Option<Value>) -> (u16, Value) {
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}
