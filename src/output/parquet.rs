//! Parquet output through polars (the default `parquet` feature): typed columns, timestamps in
//! microseconds UTC, an Arrow schema without types older readers refuse, written a row group at
//! a time.

use std::io::BufWriter;
use std::path::Path;

use polars::polars_utils::compression::ZstdLevel;
use polars::prelude::*;

use super::{create_private, finish_file, Cell, Kind, Rows};
use crate::error::{Error, Result};

/// Rows per Parquet row group: the table is converted and written a group at a time, so memory
/// stays bounded whatever the number of rows.
const ROW_GROUP: usize = 64 * 1024;

/// zstd level 1 rather than polars' default 3: no bigger a file, and less time writing it
/// (measured in BENCHMARKS.md).
const ZSTD_LEVEL: i32 = 1;

pub(crate) fn write(table: &dyn Rows, path: &Path) -> Result<()> {
    write_tagged(table, path, &[])
}

/// As [`write`], with more key-value pairs in the file's metadata (the index's tables carry the
/// identity of the index they belong to).
pub(crate) fn write_tagged(table: &dyn Rows, path: &Path, tags: &[(&str, &str)]) -> Result<()> {
    let err = |e: PolarsError| Error::output(path, e);
    let f = create_private(path)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    {
        let mut group = to_dataframe(table, 0..table.len().min(ROW_GROUP)).map_err(err)?;
        let mut batched = ParquetWriter::new(&mut w)
            .with_compression(ParquetCompression::Zstd(Some(ZstdLevel::try_new(ZSTD_LEVEL).map_err(err)?)))
            .with_key_value_metadata(Some(metadata(group.schema(), tags)))
            .batched(group.schema())
            .map_err(err)?;
        // Each row group is compressed and written while the next one is built.
        let mut start = ROW_GROUP;
        loop {
            let end = (start + ROW_GROUP).min(table.len());
            let (written, next) =
                rayon::join(|| batched.write_batch(&group), || (start < end).then(|| to_dataframe(table, start..end)));
            written.map_err(err)?;
            match next {
                Some(next) => group = next.map_err(err)?,
                None => break,
            }
            start = end;
        }
        batched.finish().map_err(err)?;
    }
    finish_file(w, path)
}

/// The Arrow schema polars keeps in the Parquet footer (`ARROW:schema`), at the oldest Arrow
/// compatibility level: text as `LargeUtf8`, not the string views (Arrow type 24) that pyarrow
/// before 15 and other older readers fail on. The Parquet columns themselves are the same.
fn metadata(schema: &Schema, tags: &[(&str, &str)]) -> KeyValueMetadata {
    let key = polars_parquet::arrow::write::schema_to_metadata_key(&schema.to_arrow(CompatLevel::oldest()));
    let mut pairs = vec![(key.key, key.value.unwrap_or_default())];
    pairs.extend(tags.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    KeyValueMetadata::from_static(pairs)
}

/// The table as a polars DataFrame with typed columns, built row by row: a row's version is
/// reached once for all its columns, and a later row's fetched meanwhile.
pub(crate) fn to_dataframe(table: &dyn Rows, rows: std::ops::Range<usize>) -> PolarsResult<DataFrame> {
    let n = rows.len();
    let schema = table.schema();
    let mut builders: Vec<Builder> = schema
        .iter()
        .map(|&(name, kind)| match kind {
            Kind::Text => Builder::Text(StringChunkedBuilder::new(name.into(), n)),
            Kind::Time | Kind::Int => Builder::Number(Vec::with_capacity(n)),
            Kind::Bool => Builder::Bool(Vec::with_capacity(n)),
            Kind::List => Builder::List(ListStringChunkedBuilder::new(name.into(), n, n * 4)),
        })
        .collect();
    let mut scratch = String::new();
    for row in rows {
        table.prefetch_row(row + 8);
        for (col, builder) in builders.iter_mut().enumerate() {
            scratch.clear();
            let cell = table.cell(row, col, &mut scratch);
            match builder {
                Builder::Text(b) => match cell {
                    Cell::Text(t) => b.append_value(t),
                    _ => b.append_null(),
                },
                Builder::Number(v) => v.push(match cell {
                    Cell::Time(t) | Cell::Int(t) => Some(t),
                    _ => None,
                }),
                Builder::Bool(v) => v.push(match cell {
                    Cell::Bool(b) => Some(b),
                    _ => None,
                }),
                Builder::List(b) => match cell {
                    Cell::List(items) => b.append_values_iter(items.iter().map(String::as_str)),
                    _ => b.append_null(),
                },
            }
        }
    }
    let columns = builders
        .into_iter()
        .zip(schema)
        .map(|(builder, &(name, kind))| {
            match builder {
                Builder::Text(b) => b.finish().into_series(),
                Builder::Number(v) => {
                    let c = Int64Chunked::from_iter_options(name.into(), v.into_iter());
                    if kind == Kind::Time {
                        // Microseconds: Spark refuses nanosecond timestamps. The CSV keeps every
                        // digit; FHIR and Aidbox give microseconds at most.
                        let micros = c.apply_values(|ns| ns.div_euclid(1000));
                        micros.into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)).into_series()
                    } else {
                        c.into_series()
                    }
                }
                Builder::Bool(v) => BooleanChunked::from_iter_options(name.into(), v.into_iter()).into_series(),
                Builder::List(mut b) => b.finish().into_series(),
            }
            .into_column()
        })
        .collect();
    DataFrame::new(n, columns)
}

/// One column being built.
enum Builder {
    Text(StringChunkedBuilder),
    Number(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    List(ListStringChunkedBuilder),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{ColumnData, Table, Values};

    #[test]
    fn dataframe_has_typed_utc_columns() {
        let t = Table::new(vec![
            ColumnData { name: "a", values: Values::Text(vec![Some("x".into()), None]) },
            ColumnData { name: "t", values: Values::Time(vec![Some(1_670_258_070_417_000_000), None]) },
            ColumnData { name: "n", values: Values::Int(vec![Some(3), None]) },
        ]);
        let df = to_dataframe(&t, 0..2).unwrap();
        assert_eq!(df.height(), 2);
        assert!(
            matches!(df.column("t").unwrap().dtype(), DataType::Datetime(TimeUnit::Microseconds, Some(tz)) if *tz == TimeZone::UTC)
        );
        let t = df.column("t").unwrap().as_materialized_series().to_physical_repr().i64().unwrap().get(0);
        assert_eq!(t, Some(1_670_258_070_417_000));
        assert_eq!(df.column("n").unwrap().dtype(), &DataType::Int64);
    }
}
