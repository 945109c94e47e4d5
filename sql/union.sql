-- sql/union.sql: the version tables of an index in shards seen as one index, for sql/audit.sql.
-- Each shard's tables are registered under shard_versions, shard_version_patients and
-- shard_version_references with the shard's place in the union (`shard`, 0, 1, …, in the order
-- `audit --index` takes them); an index of one piece is a union of one shard. Each view below is
-- one SELECT, after a `-- view: NAME` line; DuckDB and Spark SQL run them unchanged.
--
-- A version is keyed by shard * 2^40 + its key in its shard. A version in several shards counts
-- once, the copy of the earliest shard (as `audit --index` keeps it). valid_to is recomputed over
-- the union: the next version's lastUpdated in (lastUpdated, versionId) order, versionIds compared
-- as numbers when they are (version_number), else as text. resource_rank is the key of the
-- resource's first version: resources equal in (type, id) (two tenants) keep the order of the
-- index. What the copies of one version in two shards do not agree on is the binary's
-- version-conflict; the SQL takes the kept copy as the binary does, and sql/audit.sql finds the
-- conflicts among version_copies (the copies of versions held more than once).

-- view: versions
SELECT c.shard * 1099511627776 + c.version_key AS version_key,
       c.resource_type, c.resource_id, c.tenant, c.version_id,
       c.valid_from, c.valid_from_ns,
       LEAD(c.valid_from_ns) OVER (
           PARTITION BY c.resource_type, c.resource_id, c.tenant
           ORDER BY c.valid_from_ns, c.version_number NULLS LAST, c.version_id) AS valid_to_ns,
       c.deleted, c.source,
       MIN(c.shard * 1099511627776 + c.version_key) OVER (
           PARTITION BY c.resource_type, c.resource_id, c.tenant) AS resource_rank
FROM (
    SELECT s.shard, s.version_key, s.resource_type, s.resource_id, s.tenant, s.version_id,
           s.version_number, s.valid_from, s.valid_from_ns, s.deleted, s.source,
           ROW_NUMBER() OVER (
               PARTITION BY s.resource_type, s.resource_id, s.tenant, s.version_id
               ORDER BY s.shard, s.version_key) AS copy
    FROM shard_versions s
) c
WHERE c.copy = 1

-- view: version_patients
SELECT shard * 1099511627776 + version_key AS version_key, patient_id FROM shard_version_patients

-- view: version_references
SELECT shard * 1099511627776 + version_key AS version_key, resource_type, resource_id
FROM shard_version_references

-- view: version_copies
-- Every copy of a version some shard holds again, numbered in union order (copy 1 is kept), of
-- the types `bulk-audit plan` does not read (it finds their conflicts itself: SMALL_TYPES in
-- src/index_files/plan.rs).
SELECT c.shard * 1099511627776 + c.version_key AS version_key,
       c.resource_type, c.resource_id, c.tenant, c.version_id, c.valid_from_ns, c.deleted, c.source, c.copy
FROM (
    SELECT s.shard, s.version_key, s.resource_type, s.resource_id, s.tenant, s.version_id,
           s.valid_from_ns, s.deleted, s.source,
           ROW_NUMBER() OVER (
               PARTITION BY s.resource_type, s.resource_id, s.tenant, s.version_id
               ORDER BY s.shard, s.version_key) AS copy,
           COUNT(*) OVER (PARTITION BY s.resource_type, s.resource_id, s.tenant, s.version_id) AS copies
    FROM shard_versions s
    WHERE s.resource_type NOT IN ('AccessPolicy', 'BulkExportStatus', 'Client', 'Group', 'Patient')
) c
WHERE c.copies > 1
