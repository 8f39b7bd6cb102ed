-- Drops the "Artifact" table and its data.
DROP TABLE IF EXISTS "Artifact";
