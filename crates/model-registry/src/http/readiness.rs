//! `/readyz/isDirty` (database check) and `/readyz/health` (database + registry checks), with
//! upstream's plain-text and `?format=json` answers.

use std::time::{Instant, SystemTime};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use super::resources::{collections, Collection};
use crate::app::{AppState, StoreState};
use crate::registry::{public_reason, EntityKind, ListParams, Listing};

#[derive(Debug, Clone, Copy)]
pub enum Probe {
    IsDirty,
    Health,
}

/// One check's outcome; upstream serialises Go field names, hence the capitalised keys.
#[derive(Serialize)]
struct Check {
    #[serde(rename = "Name")]
    name: &'static str,
    #[serde(rename = "Status")]
    status: &'static str,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "Details")]
    details: Value,
}

impl Check {
    fn pass(name: &'static str, details: Value) -> Self {
        Check { name, status: "pass", message: String::new(), details }
    }

    fn fail(name: &'static str, message: String, details: Value) -> Self {
        Check { name, status: "fail", message, details }
    }

    fn passed(&self) -> bool {
        self.status == "pass"
    }
}

async fn database_check(state: &AppState) -> Check {
    let store = state.store();
    let registry = match &*store {
        StoreState::Ready(registry) => registry,
        StoreState::Starting(reason) => {
            return Check::fail("database", format!("database is not ready: {reason}"), json!({}));
        }
    };
    match registry.datastore().schema_version().await {
        Ok(Some(v)) => {
            let details = json!({ "schema_version": v.version.map_or(-1, |v| v as i64), "schema_dirty": v.dirty });
            if v.dirty {
                Check::fail("database", "database schema is in dirty state".into(), details)
            } else {
                Check::pass("database", details)
            }
        }
        Ok(None) => Check::fail("database", "database schema has no migration version".into(), json!({})),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            Check::fail("database", format!("database check failed: {}", public_reason(&e)), json!({}))
        }
    }
}

/// As upstream: list one item of each resource; every list must answer.
async fn registry_check(state: &AppState) -> Check {
    let store = state.store();
    let StoreState::Ready(registry) = &*store else {
        return Check::fail("model-registry", "model registry service is not initialized".into(), json!({}));
    };
    let one = ListParams { page_size: Some("1".into()), ..ListParams::default() };
    // The collections upstream's check lists: every one but model artifacts.
    let resources: Vec<Collection> = collections(&EntityKind::ALL).into_iter().filter(|c| c.health_checked).collect();
    let mut details = serde_json::Map::new();
    let mut failure = None;
    for Collection { nouns, subject, .. } in &resources {
        let name = nouns.plural;
        match registry.list(subject, None, &one).await {
            Ok(Listing::Stream(_)) => unreachable!("a page of one row is read in one chunk"),
            Ok(Listing::Page(page)) => {
                details.insert(format!("{name}_accessible"), json!(true));
                details.insert(format!("{name}_count"), page["size"].clone());
            }
            Err(e) => {
                // Its text is a client's (generic); the cause goes to the log.
                tracing::warn!(error = ?e, resource = name, "readiness: registry check failed");
                details.insert(format!("{name}_accessible"), json!(false));
                failure.get_or_insert_with(|| format!("cannot list {name}: {e}"));
            }
        }
    }
    details.insert("total_resources_checked".into(), json!(resources.len()));
    match failure {
        None => Check::pass("model-registry", Value::Object(details)),
        Some(message) => Check::fail("model-registry", message, Value::Object(details)),
    }
}

pub async fn answer(state: &AppState, probe: Probe, json_format: bool) -> Response {
    let started = Instant::now();
    let mut checks = vec![database_check(state).await];
    if let Probe::Health = probe {
        checks.push(registry_check(state).await);
    }
    let failure =
        checks.iter().find(|c| !c.passed()).map(|c| if c.message.is_empty() { "FAIL".to_owned() } else { c.message.clone() });
    let status = if failure.is_some() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    if !json_format {
        return (status, failure.unwrap_or_else(|| "OK".to_owned())).into_response();
    }
    let meta = Check::pass(
        "meta",
        json!({
            "check_duration_ms": started.elapsed().as_millis() as u64,
            "timestamp": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        }),
    );
    checks.push(meta);
    let overall = if failure.is_some() { "fail" } else { "pass" };
    let checks: serde_json::Map<String, Value> =
        checks.into_iter().map(|c| (c.name.to_owned(), serde_json::to_value(&c).unwrap_or_default())).collect();
    (status, Json(json!({ "status": overall, "checks": checks }))).into_response()
}
