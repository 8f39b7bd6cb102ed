-- Creates the MLMDEnv table that records the MLMD schema version (no-op if it exists).
CREATE TABLE IF NOT EXISTS `MLMDEnv` (
  `schema_version` int NOT NULL,
  PRIMARY KEY (`schema_version`)
);
