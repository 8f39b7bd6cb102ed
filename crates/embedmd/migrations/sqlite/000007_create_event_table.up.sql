-- Creates MLMD's `Event` table (artifact <-> execution events) and its execution_id index, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `Event` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT,
  `artifact_id` INT NOT NULL,
  `execution_id` INT NOT NULL,
  `type` INT NOT NULL,
  `milliseconds_since_epoch` INT,
  UNIQUE (`artifact_id`, `execution_id`, `type`)
);

CREATE INDEX IF NOT EXISTS `idx_event_execution_id` ON `Event` (`execution_id`);
