-- Drops the MLMD executionproperty table and its data.
DROP TABLE IF EXISTS executionproperty;
