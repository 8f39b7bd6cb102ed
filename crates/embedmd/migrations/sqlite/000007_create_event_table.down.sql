-- Drops the `Event` table, its indexes and its data.
DROP TABLE IF EXISTS `Event`;
