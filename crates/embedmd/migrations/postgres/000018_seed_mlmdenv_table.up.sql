-- Records MLMD schema version 10 in "MLMDEnv" unless that row is already there.
INSERT INTO "MLMDEnv" (schema_version) VALUES (10) ON CONFLICT DO NOTHING;
