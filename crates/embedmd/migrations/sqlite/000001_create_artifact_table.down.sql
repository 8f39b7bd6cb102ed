-- Drops the `Artifact` table, its indexes and its data.
DROP TABLE IF EXISTS `Artifact`;
