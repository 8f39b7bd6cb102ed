-- Drops the MLMD type table and its data.
DROP TABLE IF EXISTS type;
