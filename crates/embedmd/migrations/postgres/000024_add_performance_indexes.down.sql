-- Drops the three indexes added by the up step.
DROP INDEX IF EXISTS idx_context_type_id;
DROP INDEX IF EXISTS idx_attribution_context_artifact;
DROP INDEX IF EXISTS idx_artifact_property_artifact_id;
