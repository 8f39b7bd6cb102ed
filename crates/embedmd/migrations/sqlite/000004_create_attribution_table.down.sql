-- Drops the `Attribution` table, its indexes and its data.
DROP TABLE IF EXISTS `Attribution`;
