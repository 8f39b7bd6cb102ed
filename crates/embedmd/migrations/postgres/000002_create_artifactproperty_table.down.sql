-- Drops the "ArtifactProperty" table and its data.
DROP TABLE IF EXISTS "ArtifactProperty";
