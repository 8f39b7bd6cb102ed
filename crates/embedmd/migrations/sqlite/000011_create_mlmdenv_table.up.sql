-- Creates MLMD's `MLMDEnv` table that records the MLMD schema version, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `MLMDEnv` (
  `schema_version` INTEGER PRIMARY KEY
);
