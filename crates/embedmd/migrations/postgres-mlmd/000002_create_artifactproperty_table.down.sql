-- Drops the MLMD artifactproperty table and its data.
DROP TABLE IF EXISTS artifactproperty;
