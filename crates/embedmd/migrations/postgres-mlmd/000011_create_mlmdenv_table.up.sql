-- Creates MLMD's mlmdenv table that records the MLMD schema version, as MLMD itself does.
CREATE TABLE IF NOT EXISTS mlmdenv (
    schema_version INT PRIMARY KEY
);
