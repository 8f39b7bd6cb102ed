-- Drops the MLMD artifact table and its data.
DROP TABLE IF EXISTS artifact;
