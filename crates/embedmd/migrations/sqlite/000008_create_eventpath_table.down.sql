-- Drops the `EventPath` table, its indexes and its data.
DROP TABLE IF EXISTS `EventPath`;
