-- Drops the `ExecutionProperty` table, its indexes and its data.
DROP TABLE IF EXISTS `ExecutionProperty`;
