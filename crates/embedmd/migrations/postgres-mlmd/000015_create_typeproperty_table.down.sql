-- Drops the MLMD typeproperty table and its data.
DROP TABLE IF EXISTS typeproperty;
