-- Creates MLMD's artifact table (SERIAL id, constraint uniqueartifacttypename) and its lookup indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS artifact (
    id SERIAL PRIMARY KEY,
    type_id INT NOT NULL,
    uri TEXT,
    state INT,
    name VARCHAR(255),
    external_id VARCHAR(255) UNIQUE,
    create_time_since_epoch BIGINT NOT NULL DEFAULT 0,
    last_update_time_since_epoch BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT uniqueartifacttypename UNIQUE (type_id, name)
);

CREATE INDEX IF NOT EXISTS idx_artifact_uri ON artifact (uri);
CREATE INDEX IF NOT EXISTS idx_artifact_create_time_since_epoch ON artifact (create_time_since_epoch);
CREATE INDEX IF NOT EXISTS idx_artifact_last_update_time_since_epoch ON artifact (last_update_time_since_epoch);
CREATE INDEX IF NOT EXISTS idx_artifact_external_id ON artifact (external_id);
