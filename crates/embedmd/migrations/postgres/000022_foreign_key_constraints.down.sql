-- Drops the eight foreign keys added by the up step.
ALTER TABLE "ArtifactProperty" DROP CONSTRAINT IF EXISTS "ArtifactProperty_artifact_id_fkey";
ALTER TABLE "Association" DROP CONSTRAINT IF EXISTS "Association_context_id_fkey";
ALTER TABLE "Association" DROP CONSTRAINT IF EXISTS "Association_execution_id_fkey";
ALTER TABLE "Attribution" DROP CONSTRAINT IF EXISTS "Attribution_context_id_fkey";
ALTER TABLE "Attribution" DROP CONSTRAINT IF EXISTS "Attribution_artifact_id_fkey";
ALTER TABLE "ContextProperty" DROP CONSTRAINT IF EXISTS "ContextProperty_context_id_fkey";
ALTER TABLE "ExecutionProperty" DROP CONSTRAINT IF EXISTS "ExecutionProperty_execution_id_fkey";
ALTER TABLE "TypeProperty" DROP CONSTRAINT IF EXISTS "TypeProperty_type_id_fkey";
