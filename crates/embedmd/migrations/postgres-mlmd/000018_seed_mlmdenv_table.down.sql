-- Removes the mlmdenv row for schema version 10.
DELETE FROM mlmdenv WHERE schema_version = 10;
