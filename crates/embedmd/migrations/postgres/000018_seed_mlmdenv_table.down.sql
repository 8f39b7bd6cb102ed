-- Removes the "MLMDEnv" row for schema version 10.
DELETE FROM "MLMDEnv" WHERE schema_version = 10;
