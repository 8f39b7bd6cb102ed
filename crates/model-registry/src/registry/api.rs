//! The REST API versions served side by side on one database, and what differs between them.

use super::spec::EntityKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// Clients up to 0.3.14: experiments, runs and metric history included.
    V1Alpha3,
    /// Every client since: no experiment tracking, `Metric.step` as decimal text.
    V1,
}

impl ApiVersion {
    pub const ALL: [ApiVersion; 2] = [ApiVersion::V1Alpha3, ApiVersion::V1];

    /// The version segment of the base path, also the document's `info.version`.
    pub fn name(self) -> &'static str {
        match self {
            ApiVersion::V1Alpha3 => "v1alpha3",
            ApiVersion::V1 => "v1",
        }
    }

    pub fn base_path(self) -> String {
        format!("/api/model_registry/{}", self.name())
    }

    /// Experiment tracking (experiments, runs, metric history, the artifacts' experiment
    /// links) exists where the entity table serves runs.
    pub fn has_experiments(self) -> bool {
        self.serves(EntityKind::ExperimentRun)
    }

    pub fn serves(self, kind: EntityKind) -> bool {
        kind.spec().rest.apis.contains(&self)
    }

    /// v1 writes integer fields (`Metric.step`) as int64 decimal text, v1alpha3 as JSON numbers.
    pub fn integers_as_text(self) -> bool {
        self == ApiVersion::V1
    }
}
