-- Re-creates the three property string_value indexes if they are missing.
CREATE INDEX IF NOT EXISTS idx_artifact_property_string ON artifactproperty (name, is_custom_property, string_value);
CREATE INDEX IF NOT EXISTS idx_context_property_string ON contextproperty (name, is_custom_property, string_value);
CREATE INDEX IF NOT EXISTS idx_execution_property_string ON executionproperty (name, is_custom_property, string_value);
