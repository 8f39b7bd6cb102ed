-- Drops the `ContextProperty` table, its indexes and its data.
DROP TABLE IF EXISTS `ContextProperty`;
