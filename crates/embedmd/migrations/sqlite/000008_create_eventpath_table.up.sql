-- Creates MLMD's `EventPath` table (event path steps; no primary key) and its event_id index, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `EventPath` (
  `event_id` INT NOT NULL,
  `is_index_step` TINYINT(1) NOT NULL,
  `step_index` INT,
  `step_key` TEXT
);

CREATE INDEX IF NOT EXISTS `idx_eventpath_event_id` ON `EventPath` (`event_id`);
