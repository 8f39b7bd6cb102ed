-- Drops the `Context` table, its indexes and its data.
DROP TABLE IF EXISTS `Context`;
