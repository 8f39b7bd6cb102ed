-- Records MLMD schema version 10 in mlmdenv unless that row is already there.
INSERT INTO mlmdenv (schema_version) VALUES (10) ON CONFLICT DO NOTHING;
