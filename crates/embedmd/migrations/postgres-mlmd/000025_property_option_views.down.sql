-- Drops the two property option materialized views and their JSON helper function.
DROP MATERIALIZED VIEW IF EXISTS context_property_options;
DROP MATERIALIZED VIEW IF EXISTS artifact_property_options;
DROP FUNCTION IF EXISTS property_options_json_array(text);
