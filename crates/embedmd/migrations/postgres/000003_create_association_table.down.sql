-- Drops the "Association" table and its data.
DROP TABLE IF EXISTS "Association";
