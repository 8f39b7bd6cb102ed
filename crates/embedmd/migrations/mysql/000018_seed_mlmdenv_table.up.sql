-- Records MLMD schema version 10 in MLMDEnv unless that row is already there.
INSERT IGNORE INTO `MLMDEnv` (`schema_version`) VALUES (10);
