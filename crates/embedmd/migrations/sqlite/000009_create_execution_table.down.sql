-- Drops the `Execution` table, its indexes and its data.
DROP TABLE IF EXISTS `Execution`;
