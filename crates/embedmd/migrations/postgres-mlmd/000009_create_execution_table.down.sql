-- Drops the MLMD execution table and its data.
DROP TABLE IF EXISTS execution;
