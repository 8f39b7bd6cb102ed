-- Drops the MLMD eventpath table and its data.
DROP TABLE IF EXISTS eventpath;
