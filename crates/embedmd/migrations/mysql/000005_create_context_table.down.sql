-- Drops the Context table and its data.
DROP TABLE IF EXISTS `Context`;
