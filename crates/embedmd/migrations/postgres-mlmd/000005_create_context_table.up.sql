-- Creates MLMD's context table (SERIAL id, unique (type_id, name) and external_id) and its lookup indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS context (
    id SERIAL PRIMARY KEY,
    type_id INT NOT NULL,
    name VARCHAR(255) NOT NULL,
    external_id VARCHAR(255) UNIQUE,
    create_time_since_epoch BIGINT NOT NULL DEFAULT 0,
    last_update_time_since_epoch BIGINT NOT NULL DEFAULT 0,
    UNIQUE (type_id, name)
);

CREATE INDEX IF NOT EXISTS idx_context_create_time_since_epoch ON context (create_time_since_epoch);
CREATE INDEX IF NOT EXISTS idx_context_last_update_time_since_epoch ON context (last_update_time_since_epoch);
CREATE INDEX IF NOT EXISTS idx_context_external_id ON context (external_id);
