-- Drops the `TypeProperty` table, its indexes and its data.
DROP TABLE IF EXISTS `TypeProperty`;
