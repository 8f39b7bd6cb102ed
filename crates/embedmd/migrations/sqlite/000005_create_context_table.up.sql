-- Creates MLMD's `Context` table (unique external_id and (type_id, name)) and its lookup indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `Context` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT,
  `type_id` INT NOT NULL,
  `name` VARCHAR(255) NOT NULL,
  `external_id` VARCHAR(255) UNIQUE,
  `create_time_since_epoch` INT NOT NULL DEFAULT 0,
  `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,
  UNIQUE (`type_id`, `name`)
);

CREATE INDEX IF NOT EXISTS `idx_context_create_time_since_epoch` ON `Context` (`create_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_context_last_update_time_since_epoch` ON `Context` (`last_update_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_context_external_id` ON `Context` (`external_id`);
