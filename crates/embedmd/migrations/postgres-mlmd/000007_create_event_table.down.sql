-- Drops the MLMD event table and its data.
DROP TABLE IF EXISTS event;
