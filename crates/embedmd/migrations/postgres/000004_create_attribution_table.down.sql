-- Drops the "Attribution" table and its data.
DROP TABLE IF EXISTS "Attribution";
