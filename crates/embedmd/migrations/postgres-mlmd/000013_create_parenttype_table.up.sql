-- Creates MLMD's parenttype table (type -> base type links), as MLMD itself does.
CREATE TABLE IF NOT EXISTS parenttype (
    type_id INT NOT NULL,
    parent_type_id INT NOT NULL,
    PRIMARY KEY (type_id, parent_type_id)
);
