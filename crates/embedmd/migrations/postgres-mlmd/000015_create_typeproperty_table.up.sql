-- Creates MLMD's typeproperty table (declared properties of each type), as MLMD itself does.
CREATE TABLE IF NOT EXISTS typeproperty (
    type_id INT NOT NULL,
    name VARCHAR(255) NOT NULL,
    data_type INT NULL,
    PRIMARY KEY (type_id, name)
);
