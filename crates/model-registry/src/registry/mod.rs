//! The Model Registry domain: REST entities mapped onto MLMD nodes, properties and links.

mod codec;
mod error;
mod filter;
mod paging;
mod service;
mod spec;
mod value;

pub use codec::{parse_id, Schema};
pub use error::{Error, Result};
pub use paging::ListParams;
pub use service::{FindParams, Registry, Written};
pub use spec::{EntityKind, Link, ARTIFACT_KINDS};
