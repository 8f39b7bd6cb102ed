-- Drops the "ParentContext" table and its data.
DROP TABLE IF EXISTS "ParentContext";
