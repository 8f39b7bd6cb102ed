-- Drops the "ParentType" table and its data.
DROP TABLE IF EXISTS "ParentType";
