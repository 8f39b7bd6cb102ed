-- Creates MLMD's execution table (SERIAL id, constraint uniqueexecutiontypename) and its lookup indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS execution (
    id SERIAL PRIMARY KEY,
    type_id INT NOT NULL,
    last_known_state INT,
    name VARCHAR(255),
    external_id VARCHAR(255) UNIQUE,
    create_time_since_epoch BIGINT NOT NULL DEFAULT 0,
    last_update_time_since_epoch BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT uniqueexecutiontypename UNIQUE (type_id, name)
);

CREATE INDEX IF NOT EXISTS idx_execution_create_time_since_epoch ON execution (create_time_since_epoch);
CREATE INDEX IF NOT EXISTS idx_execution_last_update_time_since_epoch ON execution (last_update_time_since_epoch);
CREATE INDEX IF NOT EXISTS idx_execution_external_id ON execution (external_id);
