-- Drops the MLMD contextproperty table and its data.
DROP TABLE IF EXISTS contextproperty;
