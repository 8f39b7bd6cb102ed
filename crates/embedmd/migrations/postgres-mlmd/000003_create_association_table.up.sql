-- Creates MLMD's association table (context <-> execution links), as MLMD itself does.
CREATE TABLE IF NOT EXISTS association (
    id SERIAL PRIMARY KEY,
    context_id INT NOT NULL,
    execution_id INT NOT NULL,
    UNIQUE (context_id, execution_id)
);
