-- Creates MLMD's `Type` table (artifact, execution and context types) and its name/external_id indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `Type` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT,
  `name` VARCHAR(255) NOT NULL,
  `version` VARCHAR(255),
  `type_kind` TINYINT(1) NOT NULL,
  `description` TEXT,
  `input_type` TEXT,
  `output_type` TEXT,
  `external_id` VARCHAR(255) UNIQUE
);

CREATE INDEX IF NOT EXISTS `idx_type_name` ON `Type` (`name`);
CREATE INDEX IF NOT EXISTS `idx_type_external_id` ON `Type` (`external_id`);
