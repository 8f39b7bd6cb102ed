-- Creates MLMD's `Attribution` table (context <-> artifact links), as MLMD itself does.
CREATE TABLE IF NOT EXISTS `Attribution` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT,
  `context_id` INT NOT NULL,
  `artifact_id` INT NOT NULL,
  UNIQUE (`context_id`, `artifact_id`)
);
