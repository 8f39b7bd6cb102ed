-- Drops the "Event" table and its data.
DROP TABLE IF EXISTS "Event";
