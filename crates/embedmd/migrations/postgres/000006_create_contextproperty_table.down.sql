-- Drops the "ContextProperty" table and its data.
DROP TABLE IF EXISTS "ContextProperty";
