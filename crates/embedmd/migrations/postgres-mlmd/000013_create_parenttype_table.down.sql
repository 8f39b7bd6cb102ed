-- Drops the MLMD parenttype table and its data.
DROP TABLE IF EXISTS parenttype;
