-- Creates MLMD's attribution table (context <-> artifact links), as MLMD itself does.
CREATE TABLE IF NOT EXISTS attribution (
    id SERIAL PRIMARY KEY,
    context_id INT NOT NULL,
    artifact_id INT NOT NULL,
    UNIQUE (context_id, artifact_id)
);
