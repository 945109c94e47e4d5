//! Loading the version index back from an index folder's `versions`, `version_patients` and
//! `version_references` tables: each version fed to the same index builder an audit of the
//! dumps uses, so the two resolve against the same index. The tables are read a slice of rows
//! at a time, so only the index and one slice of each table are in memory at once.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::history::ToIndex;
use crate::timestamp::Instant;
use crate::version::{Detail, Entry, Source, VersionBatch, VersionFacts, VersionId};

/// Rows read at a time (a few row groups of each table).
const SLICE: usize = 64 * 1024;

const VERSION_COLUMNS: [&str; 12] = [
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
];

/// One table of the index, read a slice at a time.
struct Table<'a> {
    dir: &'a Path,
    name: &'static str,
    columns: &'static [&'static str],
    rows: usize,
    next: usize,
}

impl<'a> Table<'a> {
    fn open(dir: &'a Path, name: &'static str, columns: &'static [&'static str]) -> Result<Table<'a>> {
        let rows = reader(dir, name)?.num_rows().map_err(|e| unreadable(dir, name, &e))?;
        Ok(Table { dir, name, columns, rows, next: 0 })
    }

    /// The next slice, each column in one chunk; `None` at the end.
    fn next_slice(&mut self) -> Result<Option<DataFrame>> {
        if self.next >= self.rows {
            return Ok(None);
        }
        let len = SLICE.min(self.rows - self.next);
        let df = reader(self.dir, self.name)?
            .with_columns(Some(self.columns.iter().map(|c| c.to_string()).collect()))
            .with_slice(Some((self.next, len)))
            .finish()
            .map_err(|e| unreadable(self.dir, self.name, &e))?;
        self.next += len;
        let mut df = df;
        df.rechunk_mut();
        Ok(Some(df))
    }
}

fn reader(dir: &Path, name: &str) -> Result<ParquetReader<File>> {
    let f = File::open(dir.join(format!("{name}.parquet"))).map_err(|e| unreadable(dir, name, &e))?;
    Ok(ParquetReader::new(f))
}

fn unreadable(dir: &Path, name: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Usage(format!("--index {}: {name}.parquet is unreadable ({e}); build the index again", dir.display()))
}

/// The text, number and flag columns of a slice, by name.
struct Slice {
    df: DataFrame,
}

impl Slice {
    fn text(&self, name: &str) -> PolarsResult<&StringChunked> {
        self.df.column(name)?.str()
    }
    fn int(&self, name: &str) -> PolarsResult<&Int64Chunked> {
        self.df.column(name)?.i64()
    }
    fn flag(&self, name: &str) -> PolarsResult<&BooleanChunked> {
        self.df.column(name)?.bool()
    }
}

/// A link table (`version_patients`, `version_references`) in version_key order, walked beside
/// the versions.
struct Links<'a> {
    table: Table<'a>,
    /// The current slice: its keys and its one or two text columns.
    keys: Vec<Option<i64>>,
    first: Option<StringChunked>,
    second: Option<StringChunked>,
    at: usize,
    /// Only some versions are taken: the rows of the others are passed over.
    skipping: bool,
}

impl<'a> Links<'a> {
    fn new(table: Table<'a>, skipping: bool) -> Links<'a> {
        Links { table, keys: Vec::new(), first: None, second: None, at: 0, skipping }
    }

    fn load(&mut self) -> Result<bool> {
        let Some(df) = self.table.next_slice()? else { return Ok(false) };
        let s = Slice { df };
        let bad = |e: PolarsError| unreadable(self.table.dir, self.table.name, &e);
        self.keys = s.int("version_key").map_err(bad)?.iter().collect();
        self.first = Some(s.text(self.table.columns[1]).map_err(bad)?.clone());
        self.second = match self.table.columns.get(2) {
            Some(c) => Some(s.text(c).map_err(bad)?.clone()),
            None => None,
        };
        self.at = 0;
        Ok(true)
    }

    /// Calls `f` with the text columns (1 and, for references, 2) of every row of `key`.
    fn take(&mut self, key: i64, mut f: impl FnMut(&str, Option<&str>)) -> Result<()> {
        loop {
            if self.at >= self.keys.len() && !self.load()? {
                return Ok(());
            }
            while self.at < self.keys.len() {
                match self.keys[self.at] {
                    Some(k) if k == key => {
                        let first = self.first.as_ref().and_then(|c| c.get(self.at)).ok_or_else(|| self.null(1))?;
                        let second = match &self.second {
                            Some(c) => Some(c.get(self.at).ok_or_else(|| self.null(2))?),
                            None => None,
                        };
                        f(first, second);
                        self.at += 1;
                    }
                    Some(k) if k > key => return Ok(()),
                    Some(k) if self.skipping && k >= 0 => self.at += 1,
                    _ => {
                        let row = self.table.next - self.keys.len() + self.at;
                        return Err(unreadable(
                            self.table.dir,
                            self.table.name,
                            &format!("row {row} is out of version_key order"),
                        ));
                    }
                }
            }
        }
    }

    fn null(&self, column: usize) -> Error {
        unreadable(self.table.dir, self.table.name, &format!("a null {}", self.table.columns[column]))
    }

    /// An error when rows are left that no version claimed.
    fn all_claimed(&self) -> Result<()> {
        if !self.skipping && (self.at < self.keys.len() || self.table.next < self.table.rows) {
            return Err(unreadable(
                self.table.dir,
                self.table.name,
                &"rows of versions that are not in versions.parquet",
            ));
        }
        Ok(())
    }
}

/// The index held in `dir`'s tables; `files` are the history files its sources number.
#[cfg(feature = "hooks")]
pub(super) fn history(dir: &Path, files: &[crate::source::InputFile]) -> Result<crate::index::History> {
    let (h, ()) = crate::index::build(|to_index| feed(dir, 0, files.len(), None, to_index))?;
    Ok(h)
}

/// Sends the versions of `dir`'s tables to an index being built (one shard of several: its
/// sources' file numbers, below `files`, are moved up by `first_file`, the number of history
/// files of the shards before it). `only`: the types whose versions are sent (`None`: all).
pub(super) fn feed(
    dir: &Path,
    first_file: u32,
    files: usize,
    only: Option<&BTreeSet<&str>>,
    to_index: &ToIndex,
) -> Result<()> {
    let mut versions = Table::open(dir, "versions", &VERSION_COLUMNS)?;
    let skipping = only.is_some();
    let mut patients = Links::new(Table::open(dir, "version_patients", &["version_key", "patient_id"])?, skipping);
    let mut refs =
        Links::new(Table::open(dir, "version_references", &["version_key", "resource_type", "resource_id"])?, skipping);
    {
        let mut row = 0usize;
        let (mut pats, mut links): (Vec<String>, Vec<(String, String)>) = (Vec::new(), Vec::new());
        while let Some(df) = versions.next_slice()? {
            let s = Slice { df };
            let bad = |e: PolarsError| unreadable(dir, "versions", &e);
            let (key, ty, id, tenant, vid) = (
                s.int("version_key").map_err(bad)?,
                s.text("resource_type").map_err(bad)?,
                s.text("resource_id").map_err(bad)?,
                s.text("tenant").map_err(bad)?,
                s.text("version_id").map_err(bad)?,
            );
            let (from, deleted, file, line, offset, entry, detail) = (
                s.int("valid_from_ns").map_err(bad)?,
                s.flag("deleted").map_err(bad)?,
                s.int("file_number").map_err(bad)?,
                s.int("line").map_err(bad)?,
                s.int("byte_offset").map_err(bad)?,
                s.int("entry").map_err(bad)?,
                s.text("detail").map_err(bad)?,
            );
            let mut batch = VersionBatch::with_capacity(s.df.height());
            let rows = key
                .iter()
                .zip(ty.iter())
                .zip(id.iter())
                .zip(tenant.iter())
                .zip(vid.iter())
                .zip(from.iter())
                .zip(deleted.iter())
                .zip(file.iter())
                .zip(line.iter())
                .zip(offset.iter())
                .zip(entry.iter())
                .zip(detail.iter());
            for (i, (((((((((((k, ty), id), tenant), vid), from), deleted), file), line), offset), entry), detail)) in
                rows.enumerate()
            {
                let missing = |what: &str| unreadable(dir, "versions", &format!("row {} has no {what}", row + i));
                // Keys are the row numbers: each version claims its own links, none twice.
                let k = k
                    .filter(|&k| k == (row + i) as i64)
                    .ok_or_else(|| missing("version_key equal to its row number"))?;
                if only.is_some_and(|types| ty.is_none_or(|t| !types.contains(t))) {
                    continue;
                }
                pats.clear();
                patients.take(k, |p, _| pats.push(p.to_string()))?;
                links.clear();
                // `take` has checked the second column (the id) is not null.
                refs.take(k, |t, id| links.push((t.to_string(), id.unwrap_or_default().to_string())))?;
                let detail: Option<Box<Detail>> = match detail {
                    Some(json) => Some(Box::new(
                        serde_json::from_str(json).map_err(|e| missing(&format!("readable detail ({e})")))?,
                    )),
                    None => None,
                };
                let entry = match entry {
                    Some(n) => Some(
                        usize::try_from(n)
                            .ok()
                            .and_then(|n| Entry::at(n).ok())
                            .ok_or_else(|| missing("readable entry"))?,
                    ),
                    None => None,
                };
                let file = file
                    .and_then(|f| u32::try_from(f).ok())
                    .filter(|&f| (f as usize) < files)
                    .ok_or_else(|| missing("file_number of an indexed file"))?
                    + first_file;
                let facts = VersionFacts {
                    version_id: VersionId::parse(vid.ok_or_else(|| missing("version_id"))?),
                    last_updated: Instant(from.ok_or_else(|| missing("valid_from_ns"))?),
                    deleted: deleted.ok_or_else(|| missing("deleted"))?,
                    source: Source {
                        file,
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
            }
            row += s.df.height();
            to_index.send(vec![batch]).map_err(|_| Error::Internal("the index builder stopped".into()))?;
        }
        patients.all_claimed()?;
        refs.all_claimed()?;
        Ok(())
    }
}
