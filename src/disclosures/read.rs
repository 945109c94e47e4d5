//! Reading the `resources` table a finished audit wrote: `resources.parquet` or
//! `resources.csv`, the columns the accounting needs, every row or an error naming the file.

use std::path::Path;

use crate::error::{Error, Result};
use crate::timestamp::{self, Zone};

/// The columns of one `resources` row that an accounting of disclosures needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceRow {
    pub(crate) export_id: String,
    pub(crate) client_id: Option<String>,
    /// Nanoseconds since the epoch, UTC.
    pub(crate) export_time: Option<i64>,
    pub(crate) level: String,
    pub(crate) patient_id: Option<String>,
    pub(crate) resource_type: String,
    pub(crate) resource_id: String,
    pub(crate) version_id: String,
}

const COLUMNS: [&str; 8] =
    ["export_id", "client_id", "export_time", "level", "patient_id", "resource_type", "resource_id", "version_id"];

/// The rows of `dir/resources.parquet` or `dir/resources.csv`; a folder with both or neither is an
/// error (which one is the audit's would be a guess).
pub(crate) fn resources(dir: &Path) -> Result<Vec<ResourceRow>> {
    let (parquet, csv) = (dir.join("resources.parquet"), dir.join("resources.csv"));
    if !dir.join(crate::output::MANIFEST).is_file() {
        return Err(Error::Usage(format!(
            "--audit {}: not a bulk-audit output folder (it has no {})",
            dir.display(),
            crate::output::MANIFEST
        )));
    }
    match (parquet.is_file(), csv.is_file()) {
        (true, true) => Err(Error::Usage(format!(
            "--audit {}: holds both resources.parquet and resources.csv; which is this audit's is unclear",
            dir.display()
        ))),
        (false, true) => read_csv(&csv),
        (true, false) => read_parquet(&parquet),
        (false, false) => {
            Err(Error::Usage(format!("--audit {}: holds no resources.parquet or resources.csv", dir.display())))
        }
    }
}

fn read_csv(path: &Path) -> Result<Vec<ResourceRow>> {
    let mut r = csv::Reader::from_path(path).map_err(|e| Error::input(path, 0, 0, e.to_string()))?;
    let headers = r.headers().map_err(|e| Error::input(path, 1, 0, e.to_string()))?.clone();
    let mut index = [0usize; 8];
    for (slot, name) in index.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::input(path, 1, 0, format!("no column {name} in the header")))?;
    }
    let mut rows = Vec::new();
    for (n, record) in r.records().enumerate() {
        let line = n as u64 + 2;
        let record = record.map_err(|e| Error::input(path, line, 0, e.to_string()))?;
        // Cells a spreadsheet would evaluate were written with one `'` before them: taken off.
        let cell = |i: usize| crate::output::unneutralised(record.get(index[i]).unwrap_or("")).to_string();
        // The audit writes these in every row: an empty one means the file is not what it claims.
        for i in [0, 3, 5, 6, 7] {
            if cell(i).is_empty() {
                return Err(Error::input(path, line, 0, format!("column {} is empty", COLUMNS[i])));
            }
        }
        let optional = |i: usize| Some(cell(i)).filter(|s| !s.is_empty());
        let export_time = match optional(2) {
            None => None,
            Some(t) => Some(
                timestamp::parse(&t, &Zone::NONE)
                    .map_err(|e| Error::input(path, line, 0, format!("column export_time: {e}")))?
                    .0,
            ),
        };
        rows.push(ResourceRow {
            export_id: cell(0),
            client_id: optional(1),
            export_time,
            level: cell(3),
            patient_id: optional(4),
            resource_type: cell(5),
            resource_id: cell(6),
            version_id: cell(7),
        });
    }
    Ok(rows)
}

#[cfg(feature = "parquet")]
fn read_parquet(path: &Path) -> Result<Vec<ResourceRow>> {
    use polars::prelude::*;
    let err = |e: PolarsError| Error::input(path, 0, 0, e.to_string());
    let f = std::fs::File::open(path).map_err(|e| Error::input(path, 0, 0, e.to_string()))?;
    // Only the columns needed: a --with-resource audit's bodies are never loaded.
    let df = ParquetReader::new(f)
        .with_columns(Some(COLUMNS.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(err)?;
    let text = |name: &str| -> Result<Vec<Option<String>>> {
        let c = df.column(name).map_err(err)?;
        let s = c.str().map_err(err)?;
        Ok(s.iter().map(|v| v.map(str::to_string)).collect())
    };
    let times: Vec<Option<i64>> = {
        let c = df.column("export_time").map_err(err)?;
        let unit = match c.dtype() {
            DataType::Datetime(TimeUnit::Nanoseconds, _) => 1,
            DataType::Datetime(TimeUnit::Microseconds, _) => 1_000,
            DataType::Datetime(TimeUnit::Milliseconds, _) => 1_000_000,
            other => return Err(Error::input(path, 0, 0, format!("column export_time is {other}, not a timestamp"))),
        };
        let physical = c.as_materialized_series().to_physical_repr();
        let mut times = Vec::with_capacity(df.height());
        for (row, v) in physical.i64().map_err(err)?.iter().enumerate() {
            times.push(match v {
                None => None,
                Some(t) => Some(t.checked_mul(unit).ok_or_else(|| {
                    Error::input(path, 0, 0, format!("row {}: export_time is out of the representable range", row + 1))
                })?),
            });
        }
        times
    };
    let cols: Vec<Vec<Option<String>>> =
        COLUMNS.iter().filter(|c| **c != "export_time").map(|c| text(c)).collect::<Result<_>>()?;
    // A null where the audit always writes a value means the file is not what it claims.
    let required = |c: usize, name: &str, i: usize| {
        cols[c][i].clone().ok_or_else(|| Error::input(path, 0, 0, format!("row {}: column {name} is null", i + 1)))
    };
    (0..df.height())
        .map(|i| {
            Ok(ResourceRow {
                export_id: required(0, "export_id", i)?,
                client_id: cols[1][i].clone(),
                export_time: times[i],
                level: required(2, "level", i)?,
                patient_id: cols[3][i].clone(),
                resource_type: required(4, "resource_type", i)?,
                resource_id: required(5, "resource_id", i)?,
                version_id: required(6, "version_id", i)?,
            })
        })
        .collect()
}

#[cfg(not(feature = "parquet"))]
fn read_parquet(path: &Path) -> Result<Vec<ResourceRow>> {
    Err(Error::input(path, 0, 0, "this build has no Parquet support (the `parquet` feature is off)"))
}

/// Why each export was asked for, as far as the logs show it: its request (`GET url`) and the
/// client's scopes at T, from the audit's `exports` table; by export id.
pub(crate) fn purposes(dir: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    let (parquet, csv) = (dir.join("exports.parquet"), dir.join("exports.csv"));
    let rows: Vec<[String; 4]> = if csv.is_file() {
        let mut r = csv::Reader::from_path(&csv).map_err(|e| Error::input(&csv, 0, 0, e.to_string()))?;
        let headers = r.headers().map_err(|e| Error::input(&csv, 1, 0, e.to_string()))?.clone();
        let at = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| Error::input(&csv, 1, 0, format!("no column {name}")))
        };
        let index = [at("export_id")?, at("method")?, at("url")?, at("scopes")?];
        let mut rows = Vec::new();
        for (n, record) in r.records().enumerate() {
            let record = record.map_err(|e| Error::input(&csv, n as u64 + 2, 0, e.to_string()))?;
            rows.push(index.map(|i| crate::output::unneutralised(record.get(i).unwrap_or("")).to_string()));
        }
        rows
    } else if parquet.is_file() {
        exports_parquet(&parquet)?
    } else {
        return Err(Error::Usage(format!("--audit {}: holds no exports.parquet or exports.csv", dir.display())));
    };
    Ok(rows
        .into_iter()
        .map(|[id, method, url, scopes]| {
            let scopes = if scopes.is_empty() { "none".to_string() } else { scopes };
            (id, format!("request {method} {url}; scopes {scopes}"))
        })
        .collect())
}

#[cfg(feature = "parquet")]
fn exports_parquet(path: &Path) -> Result<Vec<[String; 4]>> {
    use polars::prelude::*;
    let err = |e: PolarsError| Error::input(path, 0, 0, e.to_string());
    let f = std::fs::File::open(path).map_err(|e| Error::input(path, 0, 0, e.to_string()))?;
    let names = ["export_id", "method", "url", "scopes"];
    let df = ParquetReader::new(f)
        .with_columns(Some(names.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(err)?;
    let text = |name: &str| -> Result<Vec<String>> {
        Ok(df
            .column(name)
            .map_err(err)?
            .str()
            .map_err(err)?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let (ids, methods, urls) = (text("export_id")?, text("method")?, text("url")?);
    let lists = df.column("scopes").map_err(err)?.list().map_err(err)?;
    let scopes: Vec<String> = (0..df.height())
        .map(|i| -> Result<String> {
            let Some(list) = lists.get_as_series(i) else { return Ok(String::new()) };
            let items = list.str().map_err(err)?;
            Ok(items.iter().flatten().collect::<Vec<_>>().join(" "))
        })
        .collect::<Result<_>>()?;
    Ok((0..df.height()).map(|i| [ids[i].clone(), methods[i].clone(), urls[i].clone(), scopes[i].clone()]).collect())
}

#[cfg(not(feature = "parquet"))]
fn exports_parquet(path: &Path) -> Result<Vec<[String; 4]>> {
    Err(Error::input(path, 0, 0, "this build has no Parquet support (the `parquet` feature is off)"))
}

/// An export the audit marked incomplete, as its manifest records it.
#[derive(Debug, Clone)]
pub(crate) struct IncompleteExport {
    pub(crate) export_id: String,
    pub(crate) export_time: Option<i64>,
    pub(crate) client_id: Option<String>,
    pub(crate) level: String,
    pub(crate) reasons: Vec<String>,
}

/// The incomplete exports of the audit in `dir` (its `manifest.json`); none for an audit written
/// before completeness was recorded.
pub(crate) fn incomplete_exports(dir: &Path) -> Result<Vec<IncompleteExport>> {
    let path = dir.join(crate::output::MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::input(&path, 1, 0, crate::error::describe_json_error(&e)))?;
    let Some(exports) = manifest["completeness"]["incomplete_exports"].as_object() else { return Ok(Vec::new()) };
    exports
        .iter()
        .map(|(id, x)| {
            let export_time = match x["export_time"].as_str() {
                Some(t) => Some(
                    timestamp::parse(t, &Zone::NONE)
                        .map_err(|e| Error::input(&path, 1, 0, format!("export {id}: export_time: {e}")))?
                        .0,
                ),
                None => None,
            };
            Ok(IncompleteExport {
                export_id: id.clone(),
                export_time,
                client_id: x["client_id"].as_str().map(str::to_string),
                level: x["level"].as_str().unwrap_or_default().to_string(),
                reasons: x["reasons"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}
