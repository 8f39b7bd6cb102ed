-- Drops the TypeProperty table and its data.
DROP TABLE IF EXISTS `TypeProperty`;
