-- sql/audit.sql: the `resources` rows of `bulk-audit audit`, as one SQL query over the tables of
-- `bulk-audit index IDX` (or of an index in shards seen as one through sql/union.sql, with the
-- kickoff tables of `bulk-audit plan`), each registered as a view of its name. It runs
-- unchanged on DuckDB (scripts/duckdb-audit.py) and on Spark SQL (scripts/spark-audit.py), and
-- gives the binary's rows in the binary's order (tests/all/sql.rs checks both engines against it).
--
-- bulk-audit has settled, per export, what needs the rules' judgement and the whole index at
-- once, per kickoff (export_key): the Client's scopes and the exported types (export_types), the Group's members as of T
-- with nested Groups (export_patients), the level's selection and the non-compartment policy
-- (kickoffs). What is left is the heavy part, the as-of selection over every version:
--
--   as-of(T), --boundary strict:    valid_from < T AND (valid_to IS NULL OR valid_to >= T)
--   as-of(T), --boundary inclusive: valid_from <= T AND (valid_to IS NULL OR valid_to > T)
--
-- valid_to is the next version's lastUpdated in (lastUpdated, versionId) order, so two versions
-- with the same lastUpdated never both match: the earlier one's interval is empty. Times are
-- compared as exact integer nanoseconds (*_ns); the timestamp columns are microseconds.
-- Only the subset both engines share: no ASOF JOIN (Spark has none, and DuckDB's cannot break a
-- tie on version id), no list columns in joins, no unnest/explode.
WITH
live AS (
    -- Each resolved export's types joined to the version in force at T: not a deletion, within
    -- _since/_until, and not another tenant's.
    SELECT k.export_key, k.selection, k.non_compartment, t.in_compartment,
           v.version_key, v.resource_type, v.resource_id
    FROM kickoffs k
    JOIN export_types t ON t.export_key = k.export_key
    JOIN versions v ON v.resource_type = t.resource_type
    WHERE k.resolved
      AND k.selection <> 'nothing'
      AND ((k.boundary = 'strict'
            AND v.valid_from_ns < k.export_time_ns
            AND (v.valid_to_ns IS NULL OR v.valid_to_ns >= k.export_time_ns))
        OR (k.boundary = 'inclusive'
            AND v.valid_from_ns <= k.export_time_ns
            AND (v.valid_to_ns IS NULL OR v.valid_to_ns > k.export_time_ns)))
      AND NOT v.deleted
      AND (k.since_ns IS NULL OR v.valid_from_ns > k.since_ns)
      AND (k.until_ns IS NULL OR v.valid_from_ns < k.until_ns)
      AND (k.tenant IS NULL OR v.tenant IS NULL OR v.tenant = k.tenant)
),
compartment_rows AS (
    -- Group and patient level: one row per selected patient whose compartment holds the version.
    -- A semi-join on both keys at once: an inner join to export_patients lets an optimizer join
    -- it on export_key first, pairing every selected patient with every version (quadratic).
    SELECT l.export_key, l.version_key, p.patient_id
    FROM live l
    JOIN version_patients p ON p.version_key = l.version_key
    WHERE l.in_compartment AND l.selection = 'these'
      AND EXISTS (SELECT 1 FROM export_patients s WHERE s.export_key = l.export_key AND s.patient_id = p.patient_id)
    UNION ALL
    -- System level: one row per patient whose compartment holds the version ...
    SELECT l.export_key, l.version_key, p.patient_id
    FROM live l
    JOIN version_patients p ON p.version_key = l.version_key
    WHERE l.in_compartment AND l.selection = 'every'
    UNION ALL
    -- ... and one without a patient for a version in no compartment.
    SELECT l.export_key, l.version_key, CAST(NULL AS STRING) AS patient_id
    FROM live l
    LEFT JOIN version_patients p ON p.version_key = l.version_key
    WHERE l.in_compartment AND l.selection = 'every' AND p.version_key IS NULL
),
referenced AS (
    -- What the exported compartment rows' versions reference (--non-compartment referenced).
    SELECT DISTINCT c.export_key, r.resource_type, r.resource_id
    FROM (SELECT DISTINCT export_key, version_key FROM compartment_rows) c
    JOIN version_references r ON r.version_key = c.version_key
),
outside_rows AS (
    -- Types outside the patient compartment, under the export's policy (system level: all).
    SELECT l.export_key, l.version_key, CAST(NULL AS STRING) AS patient_id
    FROM live l
    LEFT JOIN referenced r
      ON r.export_key = l.export_key AND r.resource_type = l.resource_type AND r.resource_id = l.resource_id
    WHERE NOT l.in_compartment
      AND (l.non_compartment = 'all' OR (l.non_compartment = 'referenced' AND r.export_key IS NOT NULL))
),
exported AS (
    SELECT export_key, version_key, patient_id FROM compartment_rows
    UNION ALL
    SELECT export_key, version_key, patient_id FROM outside_rows
)
SELECT k.export_id, k.client_id, k.export_time, k.level, k.group_id, x.patient_id,
       v.resource_type, v.resource_id, v.version_id, v.valid_from AS last_updated, v.source
FROM exported x
JOIN kickoffs k ON k.export_key = x.export_key
JOIN versions v ON v.version_key = x.version_key
-- The binary's order: exports by (T, id), then as the logs list them (export ids may repeat:
-- export_key tells them apart); resources in index order, by (type, id), then the first met (two
-- tenants' resources of one id); patients by id, none first.
ORDER BY k.export_time_ns, k.export_id, k.export_key, v.resource_type, v.resource_id, v.resource_rank,
         x.patient_id NULLS FIRST
