-- Drops the MLMD association table and its data.
DROP TABLE IF EXISTS association;
