-- Creates MLMD's `ContextProperty` table (context property values) and its partial value indexes, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `ContextProperty` (
  `context_id` INT NOT NULL,
  `name` VARCHAR(255) NOT NULL,
  `is_custom_property` TINYINT(1) NOT NULL,
  `int_value` INT,
  `double_value` DOUBLE,
  `string_value` TEXT,
  `byte_value` BLOB,
  `proto_value` BLOB,
  `bool_value` BOOLEAN,
  PRIMARY KEY (`context_id`, `name`, `is_custom_property`)
);

CREATE INDEX IF NOT EXISTS `idx_context_property_int` ON `ContextProperty` (`name`, `is_custom_property`, `int_value`) WHERE `int_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_context_property_double` ON `ContextProperty` (`name`, `is_custom_property`, `double_value`) WHERE `double_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_context_property_string` ON `ContextProperty` (`name`, `is_custom_property`, `string_value`) WHERE `string_value` IS NOT NULL;
