-- Drops the "ExecutionProperty" table and its data.
DROP TABLE IF EXISTS "ExecutionProperty";
