-- Drops the EventPath table and its data.
DROP TABLE IF EXISTS `EventPath`;
