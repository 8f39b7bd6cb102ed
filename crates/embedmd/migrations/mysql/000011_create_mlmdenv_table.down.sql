-- Drops the MLMDEnv table.
DROP TABLE IF EXISTS `MLMDEnv`;
