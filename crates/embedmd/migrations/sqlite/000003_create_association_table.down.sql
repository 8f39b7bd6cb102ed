-- Drops the `Association` table, its indexes and its data.
DROP TABLE IF EXISTS `Association`;
