//! One table: each REST entity, the MLMD type it is stored as, where each of its fields lives
//! (a main-table column or a typed property, and how its JSON is encoded), which ids it
//! references, and how the REST API serves it (nouns, lists, API versions). Routes, documents,
//! readiness and reference checks are derived from it: an entity is one entry here.

use embedmd::store::NodeKind;
use embedmd::types::{DataType, TypeSpec};

use super::api::ApiVersion;
use super::codec::Schema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    RegisteredModel,
    ModelVersion,
    ServingEnvironment,
    InferenceService,
    ServeModel,
    ModelArtifact,
    DocArtifact,
    DataSet,
    Metric,
    Parameter,
    Experiment,
    ExperimentRun,
    /// One row per metric upsert under a run; listed as `metric`.
    MetricHistory,
    /// An entity only the unit tests register, to show that one entry is all an entity takes.
    #[cfg(test)]
    Gadget,
}

/// How a child names and links its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// ParentContext(child, parent).
    ParentContext,
    /// Attribution(parent context, artifact).
    Attribution,
    /// Association(parent context, execution).
    Association,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentSpec {
    pub kind: EntityKind,
    pub link: Link,
    /// The request/response field carrying the parent's id, if any.
    pub field: Option<&'static str>,
}

/// Where a field is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A typed (non-custom) property.
    Property(&'static str),
    /// `Artifact.uri`.
    Uri,
    /// `Artifact.state` or `Execution.last_known_state`, as the index into the enum's values.
    StateColumn,
}

/// How a field's JSON is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Text,
    /// The id of an entity of this kind: a JSON string of an int32, stored as an int.
    Id(EntityKind),
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// A JSON array of strings, stored as a struct `{<field>: [..]}`.
    TextList(&'static str),
    Number,
    /// A JSON integer.
    Integer,
    /// Epoch milliseconds as a JSON string of digits, kept as text.
    Millis,
    /// Text that must be an absolute URI (OpenAPI `format: uri`).
    Link,
}

impl Codec {
    /// The data type the MLMD type declares for a property of this codec. Upstream declares
    /// some properties with a type other than the column it writes (a metric's double value
    /// as PROTO, a run's millisecond text as INT); the declarations are kept as upstream's.
    pub fn declared_type(self) -> DataType {
        match self {
            Codec::Text | Codec::Enum(_) | Codec::Link => DataType::String,
            Codec::Id(_) | Codec::Integer | Codec::Millis => DataType::Int,
            Codec::TextList(_) => DataType::Struct,
            Codec::Number => DataType::Proto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Accepted on create and update.
    Mutable,
    /// Accepted on create only.
    CreateOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub json: &'static str,
    pub place: Place,
    pub codec: Codec,
    pub access: Access,
    /// Value given on create when the body leaves the field out.
    pub default: Option<&'static str>,
    pub required: bool,
}

const fn text(json: &'static str, property: &'static str) -> Field {
    Field { json, place: Place::Property(property), codec: Codec::Text, access: Access::Mutable, default: None, required: false }
}

/// A text field the documents mark `format: uri`: every one is validated the same way.
const fn link(json: &'static str, property: &'static str) -> Field {
    Field { json, place: Place::Property(property), codec: Codec::Link, access: Access::Mutable, default: None, required: false }
}

/// An optional id of another entity, checked to exist when written.
const fn reference(json: &'static str, property: &'static str, kind: EntityKind) -> Field {
    Field {
        json,
        place: Place::Property(property),
        codec: Codec::Id(kind),
        access: Access::Mutable,
        default: None,
        required: false,
    }
}

/// The required, create-only id of the entity a new one hangs under (or is made for).
const fn parent_id(json: &'static str, property: &'static str, kind: EntityKind) -> Field {
    Field {
        json,
        place: Place::Property(property),
        codec: Codec::Id(kind),
        access: Access::CreateOnly,
        default: None,
        required: true,
    }
}

const fn context_state(
    json: &'static str,
    property: &'static str,
    values: &'static [&'static str],
    default: &'static str,
) -> Field {
    Field {
        json,
        place: Place::Property(property),
        codec: Codec::Enum(values),
        access: Access::Mutable,
        default: Some(default),
        required: false,
    }
}

pub const LIVE_ARCHIVED: &[&str] = &["LIVE", "ARCHIVED"];
pub const ARTIFACT_STATES: &[&str] = &["UNKNOWN", "PENDING", "LIVE", "MARKED_FOR_DELETION", "DELETED", "ABANDONED", "REFERENCE"];
pub const EXECUTION_STATES: &[&str] = &["UNKNOWN", "NEW", "RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED"];
const DESIRED_STATES: &[&str] = &["DEPLOYED", "UNDEPLOYED"];
const PARAMETER_TYPES: &[&str] = &["string", "number", "boolean", "object"];
const RUN_STATUSES: &[&str] = &["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];

const URI: Field =
    Field { json: "uri", place: Place::Uri, codec: Codec::Text, access: Access::Mutable, default: None, required: false };
const ARTIFACT_STATE: Field = Field {
    json: "state",
    place: Place::StateColumn,
    codec: Codec::Enum(ARTIFACT_STATES),
    access: Access::Mutable,
    default: Some("UNKNOWN"),
    required: false,
};

/// Everything the registry knows about one entity.
#[derive(Debug)]
pub struct Spec {
    pub kind: EntityKind,
    /// Lower-case noun for messages ("registered model").
    pub label: &'static str,
    pub type_name: &'static str,
    pub node: NodeKind,
    /// `artifactType` discriminator, for artifacts.
    pub artifact_type: Option<&'static str>,
    /// Without a name the server generates a UUID.
    pub name_required: bool,
    pub parent: Option<ParentSpec>,
    pub fields: &'static [Field],
    /// Properties upstream's type declares and never writes.
    pub declared_only: &'static [(&'static str, DataType)],
    /// What logging an artifact under this entity means, if it has rules of its own.
    pub log: Option<LogRules>,
    /// How the REST API serves it.
    pub rest: Rest,
}

/// A collection's nouns: `/{plural}` lists and creates, `/{plural}/{id}` reads and updates,
/// `/{singular}` finds by name or external id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nouns {
    pub plural: &'static str,
    pub singular: &'static str,
}

/// Every artifact kind together, told apart by `artifactType`.
pub const ARTIFACT_NOUNS: Nouns = Nouns { plural: "artifacts", singular: "artifact" };

/// Listed and created under the parent, at `/{parent plural}/{id}/{plural}`, by the operations
/// `get_{owner}_{plural}` and `create_{owner}_{singular}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nested {
    /// The parent's name in the operation names (upstream's: `environment`, not
    /// `serving_environment`).
    pub owner: &'static str,
    pub nouns: Nouns,
    /// The body the create takes.
    pub body: Schema,
}

/// How the REST API serves an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rest {
    /// The name of its schema in the API documents (history rows are shown as metrics).
    pub schema: &'static str,
    /// The API versions serving it.
    pub apis: &'static [ApiVersion],
    /// Its own top-level collection, if it has one.
    pub collection: Option<Nouns>,
    /// Whether `/readyz/health` lists its collection (upstream's checks).
    pub health_checked: bool,
    pub nested: Option<Nested>,
    /// Whether artifacts are listed and upserted under it (`/{plural}/{id}/artifacts`).
    pub holds_artifacts: bool,
}

const EVERY_API: &[ApiVersion] = &ApiVersion::ALL;
/// Experiment tracking is served by v1alpha3 only.
const EXPERIMENT_APIS: &[ApiVersion] = &[ApiVersion::V1Alpha3];

/// An entity without routes of its own: reached through its parent's or `/artifacts`.
const fn unlisted(schema: &'static str, apis: &'static [ApiVersion]) -> Rest {
    Rest { schema, apis, collection: None, health_checked: false, nested: None, holds_artifacts: false }
}

/// An entity with a top-level collection that `/readyz/health` checks.
const fn collection(schema: &'static str, apis: &'static [ApiVersion], plural: &'static str, singular: &'static str) -> Rest {
    Rest { collection: Some(Nouns { plural, singular }), health_checked: true, ..unlisted(schema, apis) }
}

const fn nested(owner: &'static str, plural: &'static str, singular: &'static str, body: Schema) -> Option<Nested> {
    Some(Nested { owner, nouns: Nouns { plural, singular }, body })
}

/// A custom property the server writes on artifacts logged under an experiment run: hidden
/// from `customProperties`, shown (in v1alpha3) as a field of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HiddenLink {
    pub property: &'static str,
    pub json: &'static str,
}

const EXPERIMENT_LINK: HiddenLink = HiddenLink { property: "experiment_id", json: "experimentId" };
const RUN_LINK: HiddenLink = HiddenLink { property: "experiment_run_id", json: "experimentRunId" };
/// Every hidden link, in the order they are shown.
pub const HIDDEN_LINKS: [HiddenLink; 2] = [EXPERIMENT_LINK, RUN_LINK];

/// Upstream's rules for artifacts logged under an experiment run.
#[derive(Debug)]
pub struct LogRules {
    /// The hidden link to the parent itself.
    pub parent_link: HiddenLink,
    /// The hidden link to the parent's own parent (a run's experiment).
    pub grandparent_link: HiddenLink,
    /// Kinds that, logged again under the same name, update the earlier artifact.
    pub upserted_by_name: &'static [EntityKind],
    pub history: Option<History>,
}

/// Each write of one kind under the parent also leaves a row of another (metric history).
#[derive(Debug)]
pub struct History {
    pub of: EntityKind,
    pub row: EntityKind,
    /// The field a logged artifact of this kind must carry.
    pub required: &'static str,
    /// The rows are listed at `/{parent plural}/{segment}` (every parent's) and
    /// `/{parent plural}/{id}/{segment}`.
    pub segment: &'static str,
}

pub const ARTIFACT_KINDS: [EntityKind; 5] =
    [EntityKind::ModelArtifact, EntityKind::DocArtifact, EntityKind::DataSet, EntityKind::Metric, EntityKind::Parameter];

static REGISTERED_MODEL: Spec = Spec {
    kind: EntityKind::RegisteredModel,
    label: "registered model",
    type_name: "kf.RegisteredModel",
    node: NodeKind::Context,
    artifact_type: None,
    name_required: true,
    parent: None,
    fields: &[
        text("owner", "owner"),
        context_state("state", "state", LIVE_ARCHIVED, "LIVE"),
        text("readme", "readme"),
        text("maturity", "maturity"),
        text("provider", "provider"),
        link("logo", "logo"),
        text("license", "license"),
        link("licenseLink", "license_link"),
        text("libraryName", "library_name"),
        Field {
            json: "language",
            place: Place::Property("language"),
            codec: Codec::TextList("language"),
            access: Access::Mutable,
            default: None,
            required: false,
        },
        Field {
            json: "tasks",
            place: Place::Property("tasks"),
            codec: Codec::TextList("tasks"),
            access: Access::Mutable,
            default: None,
            required: false,
        },
    ],
    declared_only: &[],
    log: None,
    rest: collection("RegisteredModel", EVERY_API, "registered_models", "registered_model"),
};

static MODEL_VERSION: Spec = Spec {
    kind: EntityKind::ModelVersion,
    label: "model version",
    type_name: "kf.ModelVersion",
    node: NodeKind::Context,
    artifact_type: None,
    name_required: true,
    parent: Some(ParentSpec { kind: EntityKind::RegisteredModel, link: Link::ParentContext, field: Some("registeredModelId") }),
    fields: &[
        parent_id("registeredModelId", "registered_model_id", EntityKind::RegisteredModel),
        context_state("state", "state", LIVE_ARCHIVED, "LIVE"),
        text("author", "author"),
    ],
    declared_only: &[("model_name", DataType::String), ("version", DataType::String)],
    log: None,
    rest: Rest {
        nested: nested("registered_model", "versions", "version", Schema::Full),
        holds_artifacts: true,
        ..collection("ModelVersion", EVERY_API, "model_versions", "model_version")
    },
};

static SERVING_ENVIRONMENT: Spec = Spec {
    kind: EntityKind::ServingEnvironment,
    label: "serving environment",
    type_name: "kf.ServingEnvironment",
    node: NodeKind::Context,
    artifact_type: None,
    name_required: true,
    parent: None,
    fields: &[],
    declared_only: &[],
    log: None,
    rest: collection("ServingEnvironment", EVERY_API, "serving_environments", "serving_environment"),
};

static INFERENCE_SERVICE: Spec = Spec {
    kind: EntityKind::InferenceService,
    label: "inference service",
    type_name: "kf.InferenceService",
    node: NodeKind::Context,
    artifact_type: None,
    name_required: false,
    parent: Some(ParentSpec {
        kind: EntityKind::ServingEnvironment,
        link: Link::ParentContext,
        field: Some("servingEnvironmentId"),
    }),
    fields: &[
        parent_id("servingEnvironmentId", "serving_environment_id", EntityKind::ServingEnvironment),
        parent_id("registeredModelId", "registered_model_id", EntityKind::RegisteredModel),
        reference("modelVersionId", "model_version_id", EntityKind::ModelVersion),
        text("runtime", "runtime"),
        context_state("desiredState", "desired_state", DESIRED_STATES, "DEPLOYED"),
    ],
    declared_only: &[],
    log: None,
    rest: Rest {
        nested: nested("environment", "inference_services", "inference_service", Schema::Create),
        ..collection("InferenceService", EVERY_API, "inference_services", "inference_service")
    },
};

static SERVE_MODEL: Spec = Spec {
    kind: EntityKind::ServeModel,
    label: "serve model",
    type_name: "kf.ServeModel",
    node: NodeKind::Execution,
    artifact_type: None,
    name_required: false,
    parent: Some(ParentSpec { kind: EntityKind::InferenceService, link: Link::Association, field: None }),
    fields: &[
        parent_id("modelVersionId", "model_version_id", EntityKind::ModelVersion),
        Field {
            json: "lastKnownState",
            place: Place::StateColumn,
            codec: Codec::Enum(EXECUTION_STATES),
            access: Access::Mutable,
            default: Some("UNKNOWN"),
            required: false,
        },
    ],
    declared_only: &[],
    log: None,
    rest: Rest { nested: nested("inference_service", "serves", "serve", Schema::Create), ..unlisted("ServeModel", EVERY_API) },
};

/// Artifacts hang under a model version or an experiment run (the caller names which).
const ARTIFACT_PARENT: Option<ParentSpec> =
    Some(ParentSpec { kind: EntityKind::ModelVersion, link: Link::Attribution, field: None });

static MODEL_ARTIFACT: Spec = Spec {
    kind: EntityKind::ModelArtifact,
    label: "model artifact",
    type_name: "kf.ModelArtifact",
    node: NodeKind::Artifact,
    artifact_type: Some("model-artifact"),
    name_required: false,
    parent: ARTIFACT_PARENT,
    fields: &[
        URI,
        ARTIFACT_STATE,
        text("modelFormatName", "model_format_name"),
        text("modelFormatVersion", "model_format_version"),
        text("storageKey", "storage_key"),
        text("storagePath", "storage_path"),
        text("serviceAccountName", "service_account_name"),
        text("modelSourceKind", "model_source_kind"),
        text("modelSourceClass", "model_source_class"),
        text("modelSourceGroup", "model_source_group"),
        text("modelSourceId", "model_source_id"),
        text("modelSourceName", "model_source_name"),
    ],
    declared_only: &[],
    log: None,
    rest: Rest { health_checked: false, ..collection("ModelArtifact", EVERY_API, "model_artifacts", "model_artifact") },
};

static DOC_ARTIFACT: Spec = Spec {
    kind: EntityKind::DocArtifact,
    label: "doc artifact",
    type_name: "kf.DocArtifact",
    node: NodeKind::Artifact,
    artifact_type: Some("doc-artifact"),
    name_required: false,
    parent: ARTIFACT_PARENT,
    fields: &[URI, ARTIFACT_STATE],
    declared_only: &[],
    log: None,
    rest: unlisted("DocArtifact", EVERY_API),
};

static DATA_SET: Spec = Spec {
    kind: EntityKind::DataSet,
    label: "dataset",
    type_name: "kf.DataSet",
    node: NodeKind::Artifact,
    artifact_type: Some("dataset-artifact"),
    name_required: false,
    parent: ARTIFACT_PARENT,
    fields: &[
        URI,
        ARTIFACT_STATE,
        text("digest", "digest"),
        text("sourceType", "source_type"),
        text("source", "source"),
        text("schema", "schema"),
        text("profile", "profile"),
    ],
    declared_only: &[],
    log: None,
    rest: unlisted("DataSet", EVERY_API),
};

const METRIC_FIELDS: &[Field] = &[
    ARTIFACT_STATE,
    // Declared PROTO by the type, stored in double_value by upstream.
    Field {
        json: "value",
        place: Place::Property("value"),
        codec: Codec::Number,
        access: Access::Mutable,
        default: None,
        required: false,
    },
    text("timestamp", "timestamp"),
    Field {
        json: "step",
        place: Place::Property("step"),
        codec: Codec::Integer,
        access: Access::Mutable,
        default: None,
        required: false,
    },
];

static METRIC_HISTORY: Spec = Spec {
    kind: EntityKind::MetricHistory,
    label: "metric history",
    type_name: "kf.MetricHistory",
    node: NodeKind::Artifact,
    artifact_type: Some("metric"),
    name_required: false,
    parent: Some(ParentSpec { kind: EntityKind::ExperimentRun, link: Link::Attribution, field: None }),
    fields: METRIC_FIELDS,
    declared_only: &[],
    log: None,
    rest: unlisted("Metric", EXPERIMENT_APIS),
};

static METRIC: Spec = Spec {
    kind: EntityKind::Metric,
    label: "metric",
    type_name: "kf.Metric",
    node: NodeKind::Artifact,
    artifact_type: Some("metric"),
    name_required: false,
    parent: ARTIFACT_PARENT,
    fields: METRIC_FIELDS,
    declared_only: &[],
    log: None,
    rest: unlisted("Metric", EVERY_API),
};

static PARAMETER: Spec = Spec {
    kind: EntityKind::Parameter,
    label: "parameter",
    type_name: "kf.Parameter",
    node: NodeKind::Artifact,
    artifact_type: Some("parameter"),
    name_required: false,
    parent: ARTIFACT_PARENT,
    fields: &[
        ARTIFACT_STATE,
        text("value", "value"),
        Field {
            json: "parameterType",
            place: Place::Property("parameter_type"),
            codec: Codec::Enum(PARAMETER_TYPES),
            access: Access::Mutable,
            default: None,
            required: false,
        },
    ],
    declared_only: &[],
    log: None,
    rest: unlisted("Parameter", EVERY_API),
};

static EXPERIMENT: Spec = Spec {
    kind: EntityKind::Experiment,
    label: "experiment",
    type_name: "kf.Experiment",
    node: NodeKind::Context,
    artifact_type: None,
    name_required: true,
    parent: None,
    fields: &[text("owner", "owner"), context_state("state", "state", LIVE_ARCHIVED, "LIVE")],
    declared_only: &[],
    log: None,
    rest: collection("Experiment", EXPERIMENT_APIS, "experiments", "experiment"),
};

static EXPERIMENT_RUN: Spec = Spec {
    kind: EntityKind::ExperimentRun,
    label: "experiment run",
    type_name: "kf.ExperimentRun",
    node: NodeKind::Context,
    artifact_type: None,
    name_required: false,
    parent: Some(ParentSpec { kind: EntityKind::Experiment, link: Link::ParentContext, field: Some("experimentId") }),
    fields: &[
        parent_id("experimentId", "experiment_id", EntityKind::Experiment),
        text("owner", "owner"),
        context_state("state", "state", LIVE_ARCHIVED, "LIVE"),
        context_state("status", "status", RUN_STATUSES, "RUNNING"),
        // Declared INT by the type, stored as text by upstream.
        Field {
            json: "startTimeSinceEpoch",
            place: Place::Property("start_time_since_epoch"),
            codec: Codec::Millis,
            access: Access::CreateOnly,
            default: None,
            required: false,
        },
        Field {
            json: "endTimeSinceEpoch",
            place: Place::Property("end_time_since_epoch"),
            codec: Codec::Millis,
            access: Access::Mutable,
            default: None,
            required: false,
        },
    ],
    declared_only: &[],
    log: Some(LogRules {
        parent_link: RUN_LINK,
        grandparent_link: EXPERIMENT_LINK,
        upserted_by_name: &[EntityKind::Metric, EntityKind::Parameter],
        history: Some(History {
            of: EntityKind::Metric,
            row: EntityKind::MetricHistory,
            required: "value",
            segment: "metric_history",
        }),
    }),
    rest: Rest {
        nested: nested("experiment", "experiment_runs", "experiment_run", Schema::Full),
        holds_artifacts: true,
        ..collection("ExperimentRun", EXPERIMENT_APIS, "experiment_runs", "experiment_run")
    },
};

impl EntityKind {
    /// Every entity, in the order their MLMD types are created in a new database.
    pub const ALL: [EntityKind; 13] = [
        EntityKind::RegisteredModel,
        EntityKind::ModelVersion,
        EntityKind::ServingEnvironment,
        EntityKind::InferenceService,
        EntityKind::Experiment,
        EntityKind::ExperimentRun,
        EntityKind::ModelArtifact,
        EntityKind::DocArtifact,
        EntityKind::DataSet,
        EntityKind::Metric,
        EntityKind::Parameter,
        EntityKind::MetricHistory,
        EntityKind::ServeModel,
    ];

    pub fn spec(self) -> &'static Spec {
        match self {
            EntityKind::RegisteredModel => &REGISTERED_MODEL,
            EntityKind::ModelVersion => &MODEL_VERSION,
            EntityKind::ServingEnvironment => &SERVING_ENVIRONMENT,
            EntityKind::InferenceService => &INFERENCE_SERVICE,
            EntityKind::ServeModel => &SERVE_MODEL,
            EntityKind::ModelArtifact => &MODEL_ARTIFACT,
            EntityKind::DocArtifact => &DOC_ARTIFACT,
            EntityKind::DataSet => &DATA_SET,
            EntityKind::Metric => &METRIC,
            EntityKind::Parameter => &PARAMETER,
            EntityKind::Experiment => &EXPERIMENT,
            EntityKind::ExperimentRun => &EXPERIMENT_RUN,
            EntityKind::MetricHistory => &METRIC_HISTORY,
            #[cfg(test)]
            EntityKind::Gadget => &tests::GADGET,
        }
    }

    /// The name of the entity's schema in the API documents.
    pub fn schema_name(self) -> &'static str {
        self.spec().rest.schema
    }

    /// The artifact kind named by an `artifactType` value.
    pub fn from_artifact_type(value: &str) -> Option<EntityKind> {
        ARTIFACT_KINDS.into_iter().find(|k| k.spec().artifact_type == Some(value))
    }
}

impl Spec {
    pub fn field(&self, json: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.json == json)
    }

    /// The fields naming another entity by id, besides the parent: upstream stores them
    /// unchecked, the registry checks that they exist.
    pub fn references(&self) -> impl Iterator<Item = (&'static Field, EntityKind)> {
        let parent = self.parent.and_then(|p| p.field);
        self.fields.iter().filter_map(move |f| match f.codec {
            Codec::Id(kind) if Some(f.json) != parent => Some((f, kind)),
            _ => None,
        })
    }

    /// The typed property holding the id of a ParentContext parent, if the entity has one.
    pub fn parent_property(&self) -> Option<&'static str> {
        let parent = self.parent.filter(|p| p.link == Link::ParentContext)?;
        match self.field(parent.field?)?.place {
            Place::Property(name) => Some(name),
            Place::Uri | Place::StateColumn => None,
        }
    }

    /// The MLMD type this entity is stored as: its typed properties are its fields', plus
    /// `description`, which every entity has.
    pub fn mlmd_type(&self) -> TypeSpec {
        let mut properties = vec![("description", DataType::String)];
        properties.extend(self.fields.iter().filter_map(|f| match f.place {
            Place::Property(name) => Some((name, f.codec.declared_type())),
            Place::Uri | Place::StateColumn => None,
        }));
        properties.extend_from_slice(self.declared_only);
        TypeSpec { name: self.type_name, kind: self.node.into(), properties }
    }
}

/// The registry's MLMD types, synced into the database at start.
pub fn mlmd_types() -> Vec<TypeSpec> {
    EntityKind::ALL.iter().map(|k| k.spec().mlmd_type()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// A top-level entity of both versions referencing a model version: its one entry below
    /// is all that routes, documents and checks need (see the tests of `http::resources` and
    /// `registry::schema`).
    pub(crate) static GADGET: Spec = Spec {
        kind: EntityKind::Gadget,
        label: "gadget",
        type_name: "test.Gadget",
        node: NodeKind::Context,
        artifact_type: None,
        name_required: true,
        parent: None,
        fields: &[text("colour", "colour"), reference("modelVersionId", "model_version_id", EntityKind::ModelVersion)],
        declared_only: &[],
        log: None,
        rest: collection("Gadget", EVERY_API, "gadgets", "gadget"),
    };

    /// The table with the test-only entity added.
    pub(crate) fn with_gadget() -> Vec<EntityKind> {
        let mut kinds = EntityKind::ALL.to_vec();
        kinds.push(EntityKind::Gadget);
        kinds
    }

    #[test]
    fn references_are_the_id_fields_besides_the_parent() {
        let names = |kind: EntityKind| kind.spec().references().map(|(f, k)| (f.json, k)).collect::<Vec<_>>();
        use EntityKind::{ModelVersion, RegisteredModel};
        assert_eq!(
            names(EntityKind::InferenceService),
            [("registeredModelId", RegisteredModel), ("modelVersionId", ModelVersion)]
        );
        assert_eq!(names(EntityKind::ServeModel), [("modelVersionId", ModelVersion)]);
        assert_eq!(names(EntityKind::ModelVersion), []);
        assert_eq!(names(EntityKind::ExperimentRun), []);
        assert_eq!(names(EntityKind::Gadget), [("modelVersionId", ModelVersion)]);
    }

    /// Upstream's declarations (its Go spec), as `name:data_type` per type.
    const UPSTREAM: &[(&str, &str)] = &[
        ("kf.RegisteredModel", "description:3 owner:3 state:3 language:4 library_name:3 license_link:3 license:3 logo:3 maturity:3 provider:3 readme:3 tasks:4"),
        ("kf.ModelVersion", "author:3 description:3 model_name:3 state:3 version:3"),
        ("kf.ServingEnvironment", "description:3"),
        ("kf.InferenceService", "description:3 desired_state:3 model_version_id:1 registered_model_id:1 runtime:3 serving_environment_id:1"),
        ("kf.Experiment", "description:3 owner:3 state:3"),
        ("kf.ExperimentRun", "description:3 owner:3 state:3 status:3 start_time_since_epoch:1 end_time_since_epoch:1 experiment_id:1"),
        ("kf.ModelArtifact", "description:3 model_format_name:3 model_format_version:3 service_account_name:3 storage_key:3 storage_path:3"),
        ("kf.DocArtifact", "description:3"),
        ("kf.DataSet", "description:3 digest:3 source_type:3 source:3 schema:3 profile:3"),
        ("kf.Metric", "description:3 value:5 timestamp:3 step:1"),
        ("kf.Parameter", "description:3 value:3 parameter_type:3"),
        ("kf.MetricHistory", "description:3 value:5 timestamp:3 step:1"),
        ("kf.ServeModel", "description:3 model_version_id:1"),
    ];

    /// Every upstream declaration is kept; the only additions are the typed properties
    /// upstream writes without declaring them, so that MLMD accepts those rows too.
    #[test]
    fn types_keep_upstreams_declarations_and_declare_what_is_written() {
        let types = mlmd_types();
        assert_eq!(types.len(), UPSTREAM.len());
        let mut added = BTreeSet::new();
        for (t, (name, declared)) in types.iter().zip(UPSTREAM) {
            assert_eq!(t.name, *name, "creation order");
            let ours: BTreeSet<String> = t.properties.iter().map(|(p, d)| format!("{p}:{}", *d as i32)).collect();
            let theirs: BTreeSet<String> = declared.split(' ').map(str::to_owned).collect();
            assert!(ours.is_superset(&theirs), "{name}: missing {:?}", theirs.difference(&ours));
            added.extend(ours.difference(&theirs).map(|p| format!("{name}.{p}")));
        }
        let expected: BTreeSet<String> = [
            "kf.ModelVersion.registered_model_id:1",
            "kf.ModelArtifact.model_source_kind:3",
            "kf.ModelArtifact.model_source_class:3",
            "kf.ModelArtifact.model_source_group:3",
            "kf.ModelArtifact.model_source_id:3",
            "kf.ModelArtifact.model_source_name:3",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(added, expected);
    }

    /// Upstream's documents mark exactly these fields `format: uri`; each is decoded as a link.
    #[test]
    fn the_uri_fields_are_upstreams() {
        let links: BTreeSet<String> = EntityKind::ALL
            .iter()
            .flat_map(|k| {
                k.spec().fields.iter().filter(|f| f.codec == Codec::Link).map(|f| format!("{}.{}", k.schema_name(), f.json))
            })
            .collect();
        assert_eq!(links, BTreeSet::from(["RegisteredModel.licenseLink".to_owned(), "RegisteredModel.logo".to_owned()]));
    }
}
