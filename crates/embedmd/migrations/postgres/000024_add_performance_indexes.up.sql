-- Adds indexes for the catalog's type_id filters and its Attribution/ArtifactProperty joins.
CREATE INDEX IF NOT EXISTS idx_context_type_id ON "Context" (type_id);
CREATE INDEX IF NOT EXISTS idx_attribution_context_artifact ON "Attribution" (context_id, artifact_id);
CREATE INDEX IF NOT EXISTS idx_artifact_property_artifact_id ON "ArtifactProperty" (artifact_id);
