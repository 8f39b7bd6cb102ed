-- Creates MLMD's eventpath table (no primary key) and its index idx_eventpath_event_id, as MLMD itself does.
CREATE TABLE IF NOT EXISTS eventpath (
    event_id INT NOT NULL,
    is_index_step BOOLEAN NOT NULL,
    step_index INT,
    step_key TEXT
);

CREATE INDEX IF NOT EXISTS idx_eventpath_event_id ON eventpath (event_id);
