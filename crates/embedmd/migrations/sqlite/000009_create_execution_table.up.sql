-- Creates MLMD's `Execution` table (unique external_id and (type_id, name)) and its lookup indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `Execution` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT,
  `type_id` INT NOT NULL,
  `last_known_state` INT,
  `name` VARCHAR(255),
  `external_id` VARCHAR(255) UNIQUE,
  `create_time_since_epoch` INT NOT NULL DEFAULT 0,
  `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,
  UNIQUE (`type_id`, `name`)
);

CREATE INDEX IF NOT EXISTS `idx_execution_create_time_since_epoch` ON `Execution` (`create_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_execution_last_update_time_since_epoch` ON `Execution` (`last_update_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_execution_external_id` ON `Execution` (`external_id`);
