-- Drops the MLMD mlmdenv table and its data.
DROP TABLE IF EXISTS mlmdenv;
