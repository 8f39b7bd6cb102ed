-- Drops the MLMD attribution table and its data.
DROP TABLE IF EXISTS attribution;
