-- Drops the "Execution" table and its data.
DROP TABLE IF EXISTS "Execution";
