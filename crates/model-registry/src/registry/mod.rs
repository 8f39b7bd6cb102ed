//! The Model Registry domain: REST entities mapped onto MLMD nodes, properties and links.

mod api;
mod codec;
mod error;
mod filter;
mod paging;
pub mod schema;
mod service;
mod spec;
mod value;

pub use api::ApiVersion;
pub use codec::{parse_id, Schema};
pub use error::{public_reason, Error, Result};
pub use paging::ListParams;
pub use service::{
    canonical_stage, Condition, FoundRun, HistoryPoint, Listing, MetricPoint, MlModel, MlVersion, NewVersion, Part, Refused,
    Registering, Registry, RunCondition, RunField, RunLog, RunOp, RunOrder, RunSearch, RunValue, RunView, SearchField, SearchOp,
    SearchOrder, SearchPage, Written, MAX_BULK_HISTORY_ROWS, MLFLOW_PREFIX, MLFLOW_STAGES,
};
#[cfg(test)]
pub(crate) use spec::tests::with_gadget;
pub use spec::{mlmd_types, EntityKind, History, Link, Nested, Nouns, ParentSpec, Spec, ARTIFACT_KINDS, ARTIFACT_NOUNS};
