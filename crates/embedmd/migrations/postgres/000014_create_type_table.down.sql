-- Drops the "Type" table and its data.
DROP TABLE IF EXISTS "Type";
