-- Creates MLMD's `Association` table (context <-> execution links), as MLMD itself does.
CREATE TABLE IF NOT EXISTS `Association` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT,
  `context_id` INT NOT NULL,
  `execution_id` INT NOT NULL,
  UNIQUE (`context_id`, `execution_id`)
);
