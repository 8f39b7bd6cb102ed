-- Creates the context_property_options and artifact_property_options materialized views (filter options per type and property) over the CamelCase tables.

-- Returns the text parsed as json when it is a JSON array whose elements unpack as text,
-- otherwise NULL; never raises, so malformed JSON cannot break a REFRESH.
-- Stands in for IS JSON ARRAY, which needs PostgreSQL 16.
-- PARALLEL UNSAFE because the exception handler needs a subtransaction.
CREATE OR REPLACE FUNCTION property_options_json_array(value text) RETURNS json
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL UNSAFE
AS $fn$
DECLARE
    parsed json;
BEGIN
    -- Only text whose first non-blank character is '[' can be an array; skip the rest cheaply.
    IF value !~ '^[[:space:]]*\[' THEN
        RETURN NULL;
    END IF;
    BEGIN
        parsed := value::json;
        IF json_typeof(parsed) <> 'array' THEN
            RETURN NULL;
        END IF;
        -- Valid JSON can still fail to unpack as text (e.g. "\u0000"); reject it here, not in the view.
        PERFORM json_array_elements_text(parsed);
    EXCEPTION WHEN OTHERS THEN
        RETURN NULL;
    END;
    RETURN parsed;
END;
$fn$;

CREATE MATERIALIZED VIEW IF NOT EXISTS context_property_options AS
    -- Plain string values: only short, low-cardinality sets are listed as options.
    SELECT type_id, name, is_custom_property,
           array_agg(string_value ORDER BY string_value) AS string_value,
           NULL::text[] AS array_value,
           NULL::float8 AS min_double_value, NULL::float8 AS max_double_value,
           NULL::integer AS min_int_value, NULL::integer AS max_int_value
    FROM (
        SELECT DISTINCT e.type_id, p.name, p.is_custom_property, p.string_value
        FROM "Context" AS e
        INNER JOIN "ContextProperty" AS p ON e.id = p.context_id
        WHERE p.string_value IS NOT NULL
          AND p.string_value <> ''
          AND property_options_json_array(p.string_value) IS NULL
    ) AS plain_strings
    GROUP BY type_id, name, is_custom_property
    HAVING MAX(CHAR_LENGTH(string_value)) <= 100 AND COUNT(*) < 50

    UNION

    -- Strings holding a JSON array: the distinct elements, same limits.
    SELECT type_id, name, is_custom_property,
           NULL, array_agg(string_value),
           NULL::float8, NULL::float8, NULL::integer, NULL::integer
    FROM (
        SELECT DISTINCT e.type_id, p.name, p.is_custom_property,
               json_array_elements_text(property_options_json_array(p.string_value)) AS string_value
        FROM "Context" AS e
        INNER JOIN "ContextProperty" AS p ON e.id = p.context_id
        WHERE p.string_value IS NOT NULL
    ) AS array_elements
    GROUP BY type_id, name, is_custom_property
    HAVING MAX(CHAR_LENGTH(string_value)) <= 100 AND COUNT(*) < 50

    UNION

    -- Double values: the range.
    SELECT type_id, name, is_custom_property,
           NULL, NULL, min(double_value), max(double_value), NULL, NULL
    FROM (
        SELECT e.type_id, p.name, p.is_custom_property, p.double_value
        FROM "Context" AS e
        INNER JOIN "ContextProperty" AS p ON e.id = p.context_id
        WHERE p.double_value IS NOT NULL
    ) AS double_values
    GROUP BY type_id, name, is_custom_property

    UNION

    -- Integer values: the range.
    SELECT type_id, name, is_custom_property,
           NULL, NULL, NULL, NULL, min(int_value), max(int_value)
    FROM (
        SELECT e.type_id, p.name, p.is_custom_property, p.int_value
        FROM "Context" AS e
        INNER JOIN "ContextProperty" AS p ON e.id = p.context_id
        WHERE p.int_value IS NOT NULL
    ) AS int_values
    GROUP BY type_id, name, is_custom_property;

CREATE MATERIALIZED VIEW IF NOT EXISTS artifact_property_options AS
    -- Plain string values: only short, low-cardinality sets are listed as options.
    SELECT type_id, name, is_custom_property,
           array_agg(string_value ORDER BY string_value) AS string_value,
           NULL::text[] AS array_value,
           NULL::float8 AS min_double_value, NULL::float8 AS max_double_value,
           NULL::integer AS min_int_value, NULL::integer AS max_int_value
    FROM (
        SELECT DISTINCT e.type_id, p.name, p.is_custom_property, p.string_value
        FROM "Artifact" AS e
        INNER JOIN "ArtifactProperty" AS p ON e.id = p.artifact_id
        WHERE p.string_value IS NOT NULL
          AND p.string_value <> ''
          AND property_options_json_array(p.string_value) IS NULL
    ) AS plain_strings
    GROUP BY type_id, name, is_custom_property
    HAVING MAX(CHAR_LENGTH(string_value)) <= 100 AND COUNT(*) < 50

    UNION

    -- Strings holding a JSON array: the distinct elements, same limits.
    SELECT type_id, name, is_custom_property,
           NULL, array_agg(string_value),
           NULL::float8, NULL::float8, NULL::integer, NULL::integer
    FROM (
        SELECT DISTINCT e.type_id, p.name, p.is_custom_property,
               json_array_elements_text(property_options_json_array(p.string_value)) AS string_value
        FROM "Artifact" AS e
        INNER JOIN "ArtifactProperty" AS p ON e.id = p.artifact_id
        WHERE p.string_value IS NOT NULL
    ) AS array_elements
    GROUP BY type_id, name, is_custom_property
    HAVING MAX(CHAR_LENGTH(string_value)) <= 100 AND COUNT(*) < 50

    UNION

    -- Double values: the range.
    SELECT type_id, name, is_custom_property,
           NULL, NULL, min(double_value), max(double_value), NULL, NULL
    FROM (
        SELECT e.type_id, p.name, p.is_custom_property, p.double_value
        FROM "Artifact" AS e
        INNER JOIN "ArtifactProperty" AS p ON e.id = p.artifact_id
        WHERE p.double_value IS NOT NULL
    ) AS double_values
    GROUP BY type_id, name, is_custom_property

    UNION

    -- Integer values: the range.
    SELECT type_id, name, is_custom_property,
           NULL, NULL, NULL, NULL, min(int_value), max(int_value)
    FROM (
        SELECT e.type_id, p.name, p.is_custom_property, p.int_value
        FROM "Artifact" AS e
        INNER JOIN "ArtifactProperty" AS p ON e.id = p.artifact_id
        WHERE p.int_value IS NOT NULL
    ) AS int_values
    GROUP BY type_id, name, is_custom_property;
