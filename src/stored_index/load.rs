//! Loading the version index back from an index folder's `versions`, `version_patients` and
//! `version_references` tables: each version fed to the same index builder an audit of the
//! dumps uses, so the two resolve against the same index.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::index::{self, History};
use crate::source::InputFile;
use crate::timestamp::Instant;
use crate::version::{Detail, Entry, Source, VersionBatch, VersionFacts, VersionId};

/// Versions per batch sent to the index builder.
const BATCH: usize = 16 * 1024;

fn table(dir: &Path, name: &str, columns: &[&str]) -> Result<DataFrame> {
    let path = dir.join(format!("{name}.parquet"));
    let bad = |e: &dyn std::fmt::Display| {
        Error::Usage(format!("--index {}: {name}.parquet is unreadable ({e}); build the index again", dir.display()))
    };
    let f = File::open(&path).map_err(|e| bad(&e))?;
    ParquetReader::new(f)
        .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(|e| bad(&e))
}

/// The index held in `dir`'s tables; `files` are the history files its sources number.
pub(super) fn history(dir: &Path, files: &[InputFile]) -> Result<History> {
    let mut sw = crate::stopwatch::Stopwatch::new();
    let bad = |what: String| Error::Usage(format!("--index {}: {what}; build the index again", dir.display()));
    let polars_err = |e: PolarsError| bad(e.to_string());
    let versions = table(
        dir,
        "versions",
        &[
            "version_key",
            "resource_type",
            "resource_id",
            "tenant",
            "version_id",
            "valid_from_ns",
            "deleted",
            "file_number",
            "line",
            "byte_offset",
            "entry",
            "detail",
        ],
    )?;
    let patients = table(dir, "version_patients", &["version_key", "patient_id"])?;
    let references = table(dir, "version_references", &["version_key", "resource_type", "resource_id"])?;
    let col = |df: &DataFrame, name: &str| df.column(name).map(|c| c.as_materialized_series().clone());
    let text = |s: &Series| s.str().cloned();
    let int = |s: &Series| s.i64().cloned();
    let get = |df: &DataFrame, name: &str| col(df, name).map_err(polars_err);

    let v_key = int(&get(&versions, "version_key")?).map_err(polars_err)?;
    let v_type = text(&get(&versions, "resource_type")?).map_err(polars_err)?;
    let v_id = text(&get(&versions, "resource_id")?).map_err(polars_err)?;
    let v_tenant = text(&get(&versions, "tenant")?).map_err(polars_err)?;
    let v_vid = text(&get(&versions, "version_id")?).map_err(polars_err)?;
    let v_from = int(&get(&versions, "valid_from_ns")?).map_err(polars_err)?;
    let v_deleted = get(&versions, "deleted")?.bool().cloned().map_err(polars_err)?;
    let v_file = int(&get(&versions, "file_number")?).map_err(polars_err)?;
    let v_line = int(&get(&versions, "line")?).map_err(polars_err)?;
    let v_offset = int(&get(&versions, "byte_offset")?).map_err(polars_err)?;
    let v_entry = int(&get(&versions, "entry")?).map_err(polars_err)?;
    let v_detail = text(&get(&versions, "detail")?).map_err(polars_err)?;
    let p_key = int(&get(&patients, "version_key")?).map_err(polars_err)?;
    let p_id = text(&get(&patients, "patient_id")?).map_err(polars_err)?;
    let r_key = int(&get(&references, "version_key")?).map_err(polars_err)?;
    let r_type = text(&get(&references, "resource_type")?).map_err(polars_err)?;
    let r_id = text(&get(&references, "resource_id")?).map_err(polars_err)?;

    sw.lap("index: read tables");
    let (h, ()) = index::build(|to_index| {
        let mut patients = p_key.iter().zip(p_id.iter()).peekable();
        let mut refs = r_key.iter().zip(r_type.iter().zip(r_id.iter())).peekable();
        let mut batch = VersionBatch::with_capacity(BATCH);
        let (mut pats, mut links): (Vec<&str>, Vec<(&str, &str)>) = (Vec::new(), Vec::new());
        let rows = v_key
            .iter()
            .zip(v_type.iter())
            .zip(v_id.iter())
            .zip(v_tenant.iter())
            .zip(v_vid.iter())
            .zip(v_from.iter())
            .zip(v_deleted.iter())
            .zip(v_file.iter())
            .zip(v_line.iter())
            .zip(v_offset.iter())
            .zip(v_entry.iter())
            .zip(v_detail.iter());
        for (row, (((((((((((key, ty), id), tenant), vid), from), deleted), file), line), offset), entry), detail)) in
            rows.enumerate()
        {
            let missing = |what: &str| bad(format!("versions.parquet row {row} has no {what}"));
            let key = key.ok_or_else(|| missing("version_key"))?;
            pats.clear();
            while let Some((_, p)) = patients.next_if(|(k, _)| *k == Some(key)) {
                pats.push(p.ok_or_else(|| missing("patient_id"))?);
            }
            links.clear();
            while let Some((_, (t, i))) = refs.next_if(|(k, _)| *k == Some(key)) {
                links.push((t.ok_or_else(|| missing("referenced type"))?, i.ok_or_else(|| missing("referenced id"))?));
            }
            let file = file.and_then(|f| u32::try_from(f).ok()).filter(|&f| (f as usize) < files.len());
            let detail: Option<Box<Detail>> = match detail {
                Some(json) => Some(Box::new(
                    serde_json::from_str(json).map_err(|e| bad(format!("versions.parquet row {row}: detail {e}")))?,
                )),
                None => None,
            };
            let entry = match entry {
                Some(n) => Some(
                    usize::try_from(n).ok().and_then(|n| Entry::at(n).ok()).ok_or_else(|| missing("readable entry"))?,
                ),
                None => None,
            };
            let facts = VersionFacts {
                version_id: VersionId::parse(vid.ok_or_else(|| missing("version_id"))?),
                last_updated: Instant(from.ok_or_else(|| missing("valid_from_ns"))?),
                deleted: deleted.ok_or_else(|| missing("deleted"))?,
                source: Source {
                    file: file.ok_or_else(|| missing("file_number of an indexed file"))?,
                    line: line.and_then(|n| u64::try_from(n).ok()).ok_or_else(|| missing("line"))?,
                    offset: offset.and_then(|n| u64::try_from(n).ok()).ok_or_else(|| missing("byte_offset"))?,
                    entry,
                },
                detail,
            };
            batch.push_parts(
                ty.ok_or_else(|| missing("resource_type"))?,
                id.ok_or_else(|| missing("resource_id"))?,
                tenant,
                &pats,
                &links,
                facts,
            );
            if batch.len() >= BATCH {
                let full = std::mem::replace(&mut batch, VersionBatch::with_capacity(BATCH));
                to_index.send(vec![full]).map_err(|_| Error::Internal("the index builder stopped".into()))?;
            }
        }
        if patients.peek().is_some() || refs.peek().is_some() {
            return Err(bad("version_patients or version_references hold a version_key out of order".into()));
        }
        to_index.send(vec![batch]).map_err(|_| Error::Internal("the index builder stopped".into()))?;
        Ok(())
    })?;
    Ok(h)
}
