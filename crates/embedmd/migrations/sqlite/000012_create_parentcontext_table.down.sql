-- Drops the `ParentContext` table, its indexes and its data.
DROP TABLE IF EXISTS `ParentContext`;
