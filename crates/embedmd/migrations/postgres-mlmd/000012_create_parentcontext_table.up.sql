-- Creates MLMD's parentcontext table (child -> parent context links) and its parent index, as MLMD itself does.
CREATE TABLE IF NOT EXISTS parentcontext (
    context_id INT NOT NULL,
    parent_context_id INT NOT NULL,
    PRIMARY KEY (context_id, parent_context_id)
);

CREATE INDEX IF NOT EXISTS idx_parentcontext_parent_context_id ON parentcontext (parent_context_id);
