-- sql/audit.sql: the `resources`, `exports` and `findings` rows of `bulk-audit audit`, as SQL over
-- the tables of `bulk-audit index IDX` (or of an index in shards seen as one through
-- sql/union.sql, with the plan tables of `bulk-audit plan`), each registered as a view of its
-- name. It runs unchanged on DuckDB (scripts/duckdb-audit.py) and on Spark SQL
-- (scripts/spark-audit.py), and gives the binary's rows in the binary's order (tests/all/sql.rs
-- checks both engines against it). Each `-- view: NAME` section is one SELECT registered as a view
-- the later ones read; each `-- table: NAME` section is one output table.
--
-- bulk-audit has settled, per export, what needs the rules' judgement and the small resources
-- only, per kickoff (export_key): the Client's scopes and the exported types (export_types), the
-- Group's members as of T with nested Groups (export_patients), the level's selection and the
-- non-compartment policy (kickoffs), the exports rows but their counts (planned_exports), the
-- findings of those steps (planned_findings) and the matched status's counts (status_counts).
-- What is left is the heavy part, over every version: the as-of selection,
--
--   as-of(T), --boundary strict:    valid_from < T AND (valid_to IS NULL OR valid_to >= T)
--   as-of(T), --boundary inclusive: valid_from <= T AND (valid_to IS NULL OR valid_to > T)
--
-- the counts, and the findings that need the rows or every version. valid_to is the next
-- version's lastUpdated in (lastUpdated, versionId) order, so two versions with the same
-- lastUpdated never both match: the earlier one's interval is empty. Times are compared as exact
-- integer nanoseconds (*_ns); the timestamp columns are microseconds; rfc3339_ns(ns) is the
-- binary's text of a time (RFC 3339, UTC, 0, 3, 6 or 9 fraction digits), which each script
-- registers as a function.
-- Only the subset both engines share: no ASOF JOIN (Spark has none, and DuckDB's cannot break a
-- tie on version id), no list columns in joins, no unnest/explode, no '' inside a text literal
-- (Spark reads 'a''b' as 'ab': chr(39) is the quote). `/*+ BROADCAST(…) */` hints Spark to send
-- the small side of a join to every task (broadcasts are otherwise off: spark-audit.py); DuckDB
-- reads them as comments.

-- view: live
-- Each resolved export's types joined to the version in force at T: not a deletion, within
-- _since/_until, and not another tenant's.
SELECT /*+ BROADCAST(k, t) */ k.export_key, k.selection, k.non_compartment, t.in_compartment,
       v.version_key, v.resource_type, v.resource_id, v.resource_rank, v.tenant IS NULL AS unmarked
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

-- view: compartment_rows
-- Group and patient level: one row per selected patient whose compartment holds the version.
-- A semi-join on both keys at once: an inner join to export_patients lets an optimizer join
-- it on export_key first, pairing every selected patient with every version (quadratic).
SELECT l.export_key, l.version_key, p.patient_id, l.resource_type, l.resource_rank, l.unmarked
FROM live l
JOIN version_patients p ON p.version_key = l.version_key
WHERE l.in_compartment AND l.selection = 'these'
  AND EXISTS (SELECT 1 FROM export_patients s WHERE s.export_key = l.export_key AND s.patient_id = p.patient_id)
UNION ALL
-- System level: one row per patient whose compartment holds the version ...
SELECT l.export_key, l.version_key, p.patient_id, l.resource_type, l.resource_rank, l.unmarked
FROM live l
JOIN version_patients p ON p.version_key = l.version_key
WHERE l.in_compartment AND l.selection = 'every'
UNION ALL
-- ... and one without a patient for a version in no compartment.
SELECT l.export_key, l.version_key, CAST(NULL AS STRING) AS patient_id, l.resource_type, l.resource_rank, l.unmarked
FROM live l
LEFT JOIN version_patients p ON p.version_key = l.version_key
WHERE l.in_compartment AND l.selection = 'every' AND p.version_key IS NULL

-- view: referenced
-- What the exported compartment rows' versions reference (--non-compartment referenced).
SELECT DISTINCT c.export_key, r.resource_type, r.resource_id
FROM (SELECT DISTINCT export_key, version_key FROM compartment_rows) c
JOIN version_references r ON r.version_key = c.version_key

-- view: outside_rows
-- Types outside the patient compartment, under the export's policy (system level: all).
SELECT l.export_key, l.version_key, CAST(NULL AS STRING) AS patient_id, l.resource_type, l.resource_rank, l.unmarked
FROM live l
LEFT JOIN referenced r
  ON r.export_key = l.export_key AND r.resource_type = l.resource_type AND r.resource_id = l.resource_id
WHERE NOT l.in_compartment
  AND (l.non_compartment = 'all' OR (l.non_compartment = 'referenced' AND r.export_key IS NOT NULL))

-- view: exported
-- Every row of every export: (export, version, patient or none), with what the counts need of
-- the version (its type, its resource, whether it has no tenant marker).
SELECT export_key, version_key, patient_id, resource_type, resource_rank, unmarked FROM compartment_rows
UNION ALL
SELECT export_key, version_key, patient_id, resource_type, resource_rank, unmarked FROM outside_rows

-- table: resources
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

-- view: type_counts
-- Per export and type: its distinct resources (resource_rank names a resource).
SELECT export_key, resource_type, COUNT(DISTINCT resource_rank) AS resources
FROM exported
GROUP BY export_key, resource_type

-- view: export_counts
-- Per export: its rows, its distinct resources (a resource has one type), the distinct patients
-- in its rows, and its rows of resources with no tenant marker.
SELECT x.export_key, x.row_count, r.resource_count, x.patient_count, x.unmarked_rows
FROM (
    SELECT export_key, COUNT(*) AS row_count, COUNT(DISTINCT patient_id) AS patient_count,
           SUM(CASE WHEN unmarked THEN 1 ELSE 0 END) AS unmarked_rows
    FROM exported
    GROUP BY export_key
) x
JOIN (SELECT export_key, CAST(SUM(resources) AS BIGINT) AS resource_count FROM type_counts GROUP BY export_key) r
  ON r.export_key = x.export_key

-- view: window_versions
-- The versions of an exported type, not another tenant's, whose lastUpdated lies in the window
-- the as-of rule cannot decide: between T and the end of the kickoff request (strict: [T, end];
-- inclusive: (T, end]). A resolved export whose Group is missing selects nothing, so none.
SELECT /*+ BROADCAST(k, t) */ k.export_key, k.export_id, k.export_time_ns, COALESCE(k.request_end_ns, k.export_time_ns) AS end_ns,
       k.selection, k.non_compartment, t.in_compartment,
       v.resource_type, v.resource_id, v.resource_rank, v.version_id, v.valid_from_ns, v.deleted
FROM kickoffs k
JOIN export_types t ON t.export_key = k.export_key
JOIN versions v ON v.resource_type = t.resource_type
WHERE k.resolved
  AND k.selection <> 'nothing'
  AND ((k.boundary = 'strict' AND v.valid_from_ns >= k.export_time_ns)
    OR (k.boundary = 'inclusive' AND v.valid_from_ns > k.export_time_ns))
  AND v.valid_from_ns <= COALESCE(k.request_end_ns, k.export_time_ns)
  AND (k.tenant IS NULL OR v.tenant IS NULL OR v.tenant = k.tenant)

-- view: touching_selected
-- Of the resources with a version in the window of a group- or patient-level export, those with
-- any version in a selected patient's compartment: the ones the export looked at.
SELECT /*+ BROADCAST(w) */ DISTINCT w.export_key, w.resource_rank
FROM (SELECT DISTINCT export_key, resource_rank FROM window_versions
      WHERE in_compartment AND selection = 'these') w
JOIN versions r ON r.resource_rank = w.resource_rank
JOIN version_patients p ON p.version_key = r.version_key
JOIN export_patients s ON s.export_key = w.export_key AND s.patient_id = p.patient_id

-- view: copy_pairs
-- Each copy of a version after the first, beside the kept one (copy 1).
SELECT k.version_key AS kept_key, o.version_key AS other_key, k.resource_type, k.resource_id, k.version_id,
       k.source AS kept_source, o.source AS other_source,
       (k.valid_from_ns <> o.valid_from_ns OR k.deleted <> o.deleted) AS differs
FROM version_copies k
JOIN version_copies o
  ON o.resource_type = k.resource_type AND o.resource_id = k.resource_id AND o.version_id = k.version_id
 AND (o.tenant = k.tenant OR (o.tenant IS NULL AND k.tenant IS NULL))
WHERE k.copy = 1 AND o.copy > 1

-- view: patient_counts
-- How many patients each version names (the versions of none are absent).
SELECT version_key, COUNT(*) AS n FROM version_patients GROUP BY version_key

-- view: sql_findings
-- boundary-ambiguous: every window version of a resource the export looked at — in the
-- compartment, every one (system level) or those touching a selected patient; outside it, under
-- the export's policy.
SELECT w.export_key, w.export_id, 'boundary-ambiguous' AS kind,
       w.resource_type, w.resource_id, w.version_id,
       CASE WHEN w.deleted THEN 'deletion' ELSE 'version' END || ' at ' || rfc3339_ns(w.valid_from_ns)
           || ' lies between T (' || rfc3339_ns(w.export_time_ns) || ') and the end of the kickoff ('
           || rfc3339_ns(w.end_ns) || '): the server may or may not have included it' AS detail
FROM window_versions w
LEFT JOIN touching_selected s ON s.export_key = w.export_key AND s.resource_rank = w.resource_rank
LEFT JOIN referenced r
  ON r.export_key = w.export_key AND r.resource_type = w.resource_type AND r.resource_id = w.resource_id
WHERE (w.in_compartment AND (w.selection = 'every' OR s.export_key IS NOT NULL))
   OR (NOT w.in_compartment
       AND (w.non_compartment = 'all' OR (w.non_compartment = 'referenced' AND r.export_key IS NOT NULL)))
UNION ALL
-- tenant-unmarked: a tenant's export listing resources with no tenant marker.
SELECT k.export_key, k.export_id, 'tenant-unmarked' AS kind,
       CAST(NULL AS STRING) AS resource_type, CAST(NULL AS STRING) AS resource_id, CAST(NULL AS STRING) AS version_id,
       CAST(c.unmarked_rows AS STRING) || ' rows are of resources with no tenant marker: listed for tenant '
           || k.tenant || ', though they may be another tenant' || chr(39) || 's' AS detail
FROM kickoffs k
JOIN export_counts c ON c.export_key = k.export_key
WHERE k.tenant IS NOT NULL AND c.unmarked_rows > 0
UNION ALL
-- count-mismatch: a type whose count in the matched status differs from the distinct resources
-- listed of it (a type the status lists, or one listed that the status does not).
SELECT m.export_key, k.export_id, 'count-mismatch' AS kind,
       m.resource_type, CAST(NULL AS STRING) AS resource_id, CAST(NULL AS STRING) AS version_id,
       'BulkExportStatus/' || m.status_id || ' reports ' || CAST(m.server AS STRING) || ' ' || m.resource_type
           || ' resources; the reconstruction lists ' || CAST(m.listed AS STRING) AS detail
FROM (
    SELECT s.export_key, s.status_id, s.resource_type, s.count AS server, COALESCE(c.resources, 0) AS listed
    FROM status_counts s
    LEFT JOIN type_counts c ON c.export_key = s.export_key AND c.resource_type = s.resource_type
    UNION ALL
    SELECT c.export_key, st.status_id, c.resource_type, 0 AS server, c.resources AS listed
    FROM type_counts c
    JOIN (SELECT DISTINCT export_key, status_id FROM status_counts) st ON st.export_key = c.export_key
    LEFT JOIN status_counts s ON s.export_key = c.export_key AND s.resource_type = c.resource_type
    WHERE s.export_key IS NULL
) m
JOIN kickoffs k ON k.export_key = m.export_key
WHERE m.server <> m.listed
UNION ALL
-- version-conflict between shards: a copy that differs from the kept one in lastUpdated,
-- deletion or patients (the patients compared by count and by those both hold).
SELECT CAST(NULL AS BIGINT) AS export_key, CAST(NULL AS STRING) AS export_id, 'version-conflict' AS kind,
       c.resource_type, c.resource_id, c.version_id,
       'the same version appears twice with different contents: kept ' || c.kept_source || ', ignored '
           || c.other_source AS detail
FROM copy_pairs c
LEFT JOIN patient_counts kn ON kn.version_key = c.kept_key
LEFT JOIN patient_counts onn ON onn.version_key = c.other_key
LEFT JOIN (
    SELECT c2.kept_key, c2.other_key, COUNT(*) AS n
    FROM copy_pairs c2
    JOIN version_patients a ON a.version_key = c2.kept_key
    JOIN version_patients b ON b.version_key = c2.other_key AND b.patient_id = a.patient_id
    GROUP BY c2.kept_key, c2.other_key
) bn ON bn.kept_key = c.kept_key AND bn.other_key = c.other_key
WHERE c.differs
   OR COALESCE(kn.n, 0) <> COALESCE(onn.n, 0)
   OR COALESCE(bn.n, 0) <> COALESCE(kn.n, 0)

-- view: found
-- Every finding once: the plan's and the SQL's (a Group's boundary-ambiguous may be in both).
SELECT DISTINCT export_key, export_id, kind, resource_type, resource_id, version_id, detail
FROM (
    SELECT export_key, export_id, kind, resource_type, resource_id, version_id, detail FROM planned_findings
    UNION ALL
    SELECT export_key, export_id, kind, resource_type, resource_id, version_id, detail FROM sql_findings
) f

-- table: exports
SELECT p.export_id, p.client_id, p.user_id, p.export_time, p.request_end, p.method, p.url, p.status,
       p.accepted, p.resolved, p.level, p.tenant, p.group_id, p.group_version, p.client_version,
       p.scopes, p.access_policies, p.allowed_types, p.requested_types, p.exported_types,
       p.since, p.until, p.type_filter, p.elements, p.output_format, p.patient_param,
       CASE WHEN p.resolved AND p.level = 'system' THEN COALESCE(c.patient_count, 0) ELSE p.patient_count END
           AS patient_count,
       CASE WHEN p.resolved THEN COALESCE(c.resource_count, 0) END AS resource_count,
       CASE WHEN p.resolved THEN COALESCE(c.row_count, 0) END AS row_count,
       COALESCE(n.finding_count, 0) AS finding_count,
       p.status_resource_id, p.status_resource_status, p.status_transaction_time, p.source,
       p.completeness, p.incomplete_because
FROM planned_exports p
LEFT JOIN export_counts c ON c.export_key = p.export_key
LEFT JOIN (SELECT export_key, COUNT(*) AS finding_count FROM found GROUP BY export_key) n
  ON n.export_key = p.export_key
ORDER BY p.export_time_ns NULLS FIRST, p.export_id, p.export_key

-- table: findings
-- Export by export in the exports' order, each one's by (kind, resource, detail); then those
-- about the inputs as a whole, in the same order.
SELECT f.export_id, f.kind, f.resource_type, f.resource_id, f.version_id, f.detail
FROM found f
LEFT JOIN planned_exports p ON p.export_key = f.export_key
ORDER BY CASE WHEN f.export_key IS NULL THEN 1 ELSE 0 END, p.export_time_ns NULLS FIRST, p.export_id, p.export_key,
         f.kind, COALESCE(f.resource_type, ''), COALESCE(f.resource_id, ''), COALESCE(f.version_id, ''),
         COALESCE(f.detail, '')
