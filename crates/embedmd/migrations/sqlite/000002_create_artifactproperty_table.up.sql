-- Creates MLMD's `ArtifactProperty` table (artifact property values) and its partial value indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `ArtifactProperty` (
  `artifact_id` INT NOT NULL,
  `name` VARCHAR(255) NOT NULL,
  `is_custom_property` TINYINT(1) NOT NULL,
  `int_value` INT,
  `double_value` DOUBLE,
  `string_value` TEXT,
  `byte_value` BLOB,
  `proto_value` BLOB,
  `bool_value` BOOLEAN,
  PRIMARY KEY (`artifact_id`, `name`, `is_custom_property`)
);

CREATE INDEX IF NOT EXISTS `idx_artifact_property_int` ON `ArtifactProperty` (`name`, `is_custom_property`, `int_value`) WHERE `int_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_artifact_property_double` ON `ArtifactProperty` (`name`, `is_custom_property`, `double_value`) WHERE `double_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_artifact_property_string` ON `ArtifactProperty` (`name`, `is_custom_property`, `string_value`) WHERE `string_value` IS NOT NULL;
