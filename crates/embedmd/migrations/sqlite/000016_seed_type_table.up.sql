-- Adds MLMD's nine built-in mlmd.* types in MLMD's order, skipping any that already exist.
INSERT INTO `Type` (`name`, `version`, `type_kind`)
SELECT `seed`.`name`, NULL, `seed`.`type_kind`
FROM (
  SELECT 1 AS `pos`, 'mlmd.Dataset' AS `name`, 1 AS `type_kind`
  UNION ALL SELECT 2, 'mlmd.Model', 1
  UNION ALL SELECT 3, 'mlmd.Metrics', 1
  UNION ALL SELECT 4, 'mlmd.Statistics', 1
  UNION ALL SELECT 5, 'mlmd.Train', 0
  UNION ALL SELECT 6, 'mlmd.Transform', 0
  UNION ALL SELECT 7, 'mlmd.Process', 0
  UNION ALL SELECT 8, 'mlmd.Evaluate', 0
  UNION ALL SELECT 9, 'mlmd.Deploy', 0
) AS `seed`
WHERE NOT EXISTS (
  SELECT 1 FROM `Type` AS `existing`
  WHERE `existing`.`name` = `seed`.`name` AND `existing`.`version` IS NULL
)
ORDER BY `seed`.`pos`;
