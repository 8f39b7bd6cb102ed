-- Creates MLMD's `ExecutionProperty` table (execution property values) and its partial value indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `ExecutionProperty` (
  `execution_id` INT NOT NULL,
  `name` VARCHAR(255) NOT NULL,
  `is_custom_property` TINYINT(1) NOT NULL,
  `int_value` INT,
  `double_value` DOUBLE,
  `string_value` TEXT,
  `byte_value` BLOB,
  `proto_value` BLOB,
  `bool_value` BOOLEAN,
  PRIMARY KEY (`execution_id`, `name`, `is_custom_property`)
);

CREATE INDEX IF NOT EXISTS `idx_execution_property_int` ON `ExecutionProperty` (`name`, `is_custom_property`, `int_value`) WHERE `int_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_execution_property_double` ON `ExecutionProperty` (`name`, `is_custom_property`, `double_value`) WHERE `double_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_execution_property_string` ON `ExecutionProperty` (`name`, `is_custom_property`, `string_value`) WHERE `string_value` IS NOT NULL;
