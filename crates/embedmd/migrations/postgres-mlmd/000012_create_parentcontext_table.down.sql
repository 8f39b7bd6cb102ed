-- Drops the MLMD parentcontext table and its data.
DROP TABLE IF EXISTS parentcontext;
