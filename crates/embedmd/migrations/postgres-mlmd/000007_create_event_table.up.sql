-- Creates MLMD's event table (constraint uniqueevent) and its execution_id index, as MLMD itself does.
CREATE TABLE IF NOT EXISTS event (
    id SERIAL PRIMARY KEY,
    artifact_id INT NOT NULL,
    execution_id INT NOT NULL,
    type INT NOT NULL,
    milliseconds_since_epoch BIGINT,
    CONSTRAINT uniqueevent UNIQUE (artifact_id, execution_id, type)
);

CREATE INDEX IF NOT EXISTS idx_event_execution_id ON event (execution_id);
