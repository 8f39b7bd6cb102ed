-- Drops the `ArtifactProperty` table, its indexes and its data.
DROP TABLE IF EXISTS `ArtifactProperty`;
