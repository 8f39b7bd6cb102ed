-- Drops the "MLMDEnv" table and its data.
DROP TABLE IF EXISTS "MLMDEnv";
