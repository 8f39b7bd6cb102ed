-- Creates MLMD's `ParentContext` table (child -> parent context links) and its parent index, as MLMD itself does.
CREATE TABLE IF NOT EXISTS `ParentContext` (
  `context_id` INT NOT NULL,
  `parent_context_id` INT NOT NULL,
  PRIMARY KEY (`context_id`, `parent_context_id`)
);

CREATE INDEX IF NOT EXISTS `idx_parentcontext_parent_context_id` ON `ParentContext` (`parent_context_id`);
