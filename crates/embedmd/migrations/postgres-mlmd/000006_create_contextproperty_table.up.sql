-- Creates MLMD's contextproperty table (context property values) and its value indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS contextproperty (
    context_id INT NOT NULL,
    name VARCHAR(255) NOT NULL,
    is_custom_property BOOLEAN NOT NULL,
    int_value INT,
    double_value DOUBLE PRECISION,
    string_value TEXT,
    byte_value BYTEA,
    proto_value BYTEA,
    bool_value BOOLEAN,
    PRIMARY KEY (context_id, name, is_custom_property)
);

CREATE INDEX IF NOT EXISTS idx_context_property_int ON contextproperty (name, is_custom_property, int_value);
CREATE INDEX IF NOT EXISTS idx_context_property_double ON contextproperty (name, is_custom_property, double_value);
CREATE INDEX IF NOT EXISTS idx_context_property_string ON contextproperty (name, is_custom_property, string_value);
