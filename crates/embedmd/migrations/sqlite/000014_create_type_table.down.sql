-- Drops the `Type` table, its indexes and its data.
DROP TABLE IF EXISTS `Type`;
