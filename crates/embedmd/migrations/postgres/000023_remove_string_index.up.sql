-- Drops the three property string_value indexes: a btree entry cannot exceed about 2.7 kB, so long strings failed to insert.
DROP INDEX IF EXISTS idx_artifact_property_string;
DROP INDEX IF EXISTS idx_context_property_string;
DROP INDEX IF EXISTS idx_execution_property_string;
