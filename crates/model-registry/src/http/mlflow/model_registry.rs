//! MLflow's Model Registry service (`ModelRegistryService` of `model_registry.proto`):
//! registered models, model versions, their tags and aliases.

use super::Operation;

pub const OPERATIONS: &[Operation] = &[];
