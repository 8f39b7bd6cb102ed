-- Creates the "MLMDEnv" table that records the MLMD schema version.
CREATE TABLE IF NOT EXISTS "MLMDEnv" (
    schema_version INTEGER NOT NULL,
    PRIMARY KEY (schema_version)
);
