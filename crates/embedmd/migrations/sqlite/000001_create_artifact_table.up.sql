-- Creates MLMD's `Artifact` table (unique external_id and (type_id, name)) and its lookup indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `Artifact` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT,
  `type_id` INT NOT NULL,
  `uri` TEXT,
  `state` INT,
  `name` VARCHAR(255),
  `external_id` VARCHAR(255) UNIQUE,
  `create_time_since_epoch` INT NOT NULL DEFAULT 0,
  `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,
  UNIQUE (`type_id`, `name`)
);

CREATE INDEX IF NOT EXISTS `idx_artifact_uri` ON `Artifact` (`uri`);
CREATE INDEX IF NOT EXISTS `idx_artifact_create_time_since_epoch` ON `Artifact` (`create_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_artifact_last_update_time_since_epoch` ON `Artifact` (`last_update_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_artifact_external_id` ON `Artifact` (`external_id`);
