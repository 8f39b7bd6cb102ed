-- Removes the nine built-in mlmd.* types from MLMD's type table.
DELETE FROM type
WHERE version IS NULL
  AND ((type_kind = 1 AND name IN ('mlmd.Dataset', 'mlmd.Model', 'mlmd.Metrics', 'mlmd.Statistics'))
    OR (type_kind = 0 AND name IN ('mlmd.Train', 'mlmd.Transform', 'mlmd.Process', 'mlmd.Evaluate', 'mlmd.Deploy')));
