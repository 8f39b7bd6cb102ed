-- Drops the `MLMDEnv` table, its indexes and its data.
DROP TABLE IF EXISTS `MLMDEnv`;
