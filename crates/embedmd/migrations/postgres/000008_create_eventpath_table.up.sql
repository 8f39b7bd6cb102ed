-- Creates the "EventPath" table (event path steps; no primary key) and its event_id index.
CREATE TABLE IF NOT EXISTS "EventPath" (
    event_id INTEGER NOT NULL,
    is_index_step BOOLEAN NOT NULL,
    step_index INTEGER,
    step_key TEXT
);

CREATE INDEX IF NOT EXISTS idx_event_path_event_id ON "EventPath" (event_id);
