-- Creates MLMD's artifactproperty table (artifact property values) and its value indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS artifactproperty (
    artifact_id INT NOT NULL,
    name VARCHAR(255) NOT NULL,
    is_custom_property BOOLEAN NOT NULL,
    int_value INT,
    double_value DOUBLE PRECISION,
    string_value TEXT,
    byte_value BYTEA,
    proto_value BYTEA,
    bool_value BOOLEAN,
    PRIMARY KEY (artifact_id, name, is_custom_property)
);

CREATE INDEX IF NOT EXISTS idx_artifact_property_int ON artifactproperty (name, is_custom_property, int_value);
CREATE INDEX IF NOT EXISTS idx_artifact_property_double ON artifactproperty (name, is_custom_property, double_value);
CREATE INDEX IF NOT EXISTS idx_artifact_property_string ON artifactproperty (name, is_custom_property, string_value);
