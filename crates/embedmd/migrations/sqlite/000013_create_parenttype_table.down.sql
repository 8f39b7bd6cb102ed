-- Drops the `ParentType` table, its indexes and its data.
DROP TABLE IF EXISTS `ParentType`;
