//! Which form a history file is in, told from its first lines, and what each of its lines is: a
//! JSON document, a row of an Aidbox resource table in PostgreSQL's text format (`$dump-sql`
//! TSV, or a data line of a plain `pg_dump`'s `COPY … FROM stdin;` block), or a line read and
//! passed over (a header row, an SQL statement, a row of a table that is no resource table).

use std::borrow::Cow;

use super::pg_text::{self, Columns};
use crate::source;
use crate::timestamp::Zone;

/// The form of a history file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// One JSON document per line.
    JsonLines,
    /// Documents that span lines (pretty-printed JSON, YAML): read whole.
    Documents,
    /// `$dump-sql` TSV: PostgreSQL text-format rows.
    Tsv,
    /// A plain `pg_dump` SQL file.
    Dump,
}

/// Tells a history file's form from the start of its (decompressed) content.
pub(crate) fn detect(start: &[u8]) -> Form {
    let body = source::strip_bom(start);
    let Some(first) = body.split(|&b| b == b'\n').find(|l| !l.iter().all(u8::is_ascii_whitespace)) else {
        return Form::JsonLines;
    };
    let trimmed = first.trim_ascii_start();
    if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") {
        return if serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok() {
            Form::JsonLines
        } else {
            Form::Documents
        };
    }
    let sql = [&b"--"[..], b"SET ", b"COPY ", b"\\restrict", b"CREATE ", b"SELECT ", b"BEGIN"];
    if sql.iter().any(|s| trimmed.starts_with(s)) {
        Form::Dump
    } else if first.contains(&b'\t') {
        Form::Tsv
    } else {
        Form::Documents
    }
}

/// What one line of a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    Json,
    /// A table row, with the index of its columns in the file's layout.
    Row(u32),
    /// Read and passed over.
    Pass,
}

/// Where the rows of a file are and what their columns are: what reading needs, and what
/// re-reading a body needs later.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Layout {
    pub(crate) columns: Vec<Columns>,
    /// Each run of rows: its first and last line (inclusive) and its columns.
    pub(crate) runs: Vec<(u64, u64, u32)>,
    /// A file of YAML documents.
    pub(crate) yaml: bool,
    /// The tables of a dump's COPY blocks of resource rows, as the statements name them
    /// (`public.observation_history`), empty blocks too: what was dumped.
    #[serde(default)]
    pub(crate) tables: Vec<String>,
}

impl Layout {
    /// The columns of the row at `line`, if it is one.
    pub(crate) fn columns_at(&self, line: u64) -> Option<&Columns> {
        let run = self.runs.iter().find(|(first, last, _)| (*first..=*last).contains(&line))?;
        self.columns.get(run.2 as usize)
    }
}

/// The state of reading a file's lines in order, block after block.
pub(crate) struct LineReader {
    form: Form,
    pub(crate) layout: Layout,
    /// A TSV's columns are settled on its first block.
    tsv_ready: bool,
    /// Inside a COPY block: the columns of its table (`None`: a table that is no resource table).
    in_copy: Option<Option<u32>>,
}

impl LineReader {
    pub(crate) fn new(form: Form) -> LineReader {
        LineReader { form, layout: Layout::default(), tsv_ready: false, in_copy: None }
    }

    /// What each line of the next block is (`lines`: number and text, in order). The columns of
    /// a TSV without a header come from `--tsv-columns`, else from its first rows; `Err` says why
    /// they cannot be told.
    pub(crate) fn kinds(
        &mut self,
        lines: &[(u64, &[u8])],
        tsv_columns: Option<&Columns>,
        zone: &Zone,
    ) -> Result<Vec<LineKind>, (u64, String)> {
        match self.form {
            Form::JsonLines | Form::Documents => Ok(vec![LineKind::Json; lines.len()]),
            Form::Tsv => self.tsv(lines, tsv_columns, zone),
            Form::Dump => Ok(lines.iter().map(|&(n, text)| self.dump_line(n, text)).collect()),
        }
    }

    fn tsv(
        &mut self,
        lines: &[(u64, &[u8])],
        given: Option<&Columns>,
        zone: &Zone,
    ) -> Result<Vec<LineKind>, (u64, String)> {
        let mut kinds = vec![LineKind::Row(0); lines.len()];
        if !self.tsv_ready {
            self.tsv_ready = true;
            let first = lines.iter().position(|(_, t)| !t.iter().all(u8::is_ascii_whitespace));
            let header = first
                .and_then(|i| pg_text::fields(source::strip_bom(lines[i].1)).ok().and_then(|f| pg_text::header(&f)));
            let (columns, start) = match (header, given) {
                (Some(h), _) => {
                    let i = first.expect("a header is a line");
                    kinds[i] = LineKind::Pass;
                    (h, lines[i].0 + 1)
                }
                (None, Some(given)) => (given.clone(), 1),
                (None, None) => {
                    let sample: Vec<Vec<Option<Cow<str>>>> = lines
                        .iter()
                        .filter(|(_, t)| !t.iter().all(u8::is_ascii_whitespace))
                        .take(1000)
                        .filter_map(|(_, t)| pg_text::fields(source::strip_bom(t)).ok())
                        .collect();
                    let columns = pg_text::infer(&sample, zone).map_err(|why| {
                        (
                            lines.first().map_or(1, |l| l.0),
                            format!("cannot tell the columns of this $dump-sql TSV ({why}): give --tsv-columns"),
                        )
                    })?;
                    (columns, 1)
                }
            };
            self.layout.columns.push(columns);
            self.layout.runs.push((start, u64::MAX, 0));
        }
        Ok(kinds)
    }

    fn dump_line(&mut self, n: u64, text: &[u8]) -> LineKind {
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if let Some(table) = self.in_copy {
            if text == b"\\." {
                self.in_copy = None;
                if table.is_some() {
                    if let Some(run) = self.layout.runs.last_mut() {
                        run.1 = n - 1;
                    }
                }
                return LineKind::Pass;
            }
            return table.map_or(LineKind::Pass, LineKind::Row);
        }
        if let Some((table, names)) = copy_columns(text) {
            let columns = Columns::of_names(names.iter().map(String::as_str));
            let index = columns.map(|c| {
                self.layout.tables.push(table);
                self.layout.columns.push(c);
                (self.layout.columns.len() - 1) as u32
            });
            if let Some(i) = index {
                self.layout.runs.push((n + 1, u64::MAX, i));
            }
            self.in_copy = Some(index);
        }
        LineKind::Pass
    }
}

/// The table and the column names of a `COPY <table> (<columns>) FROM stdin;` statement.
fn copy_columns(line: &[u8]) -> Option<(String, Vec<String>)> {
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("COPY ")?.trim_end();
    if !rest.ends_with("FROM stdin;") {
        return None;
    }
    let open = rest.find('(')?;
    let close = rest[open..].find(')')? + open;
    let columns = rest[open + 1..close].split(',').map(|c| c.trim().trim_matches('"').to_string()).collect();
    Some((rest[..open].trim().to_string(), columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_told_from_the_start() {
        assert_eq!(detect(b"{\"a\":1}\n{\"b\":2}\n"), Form::JsonLines);
        assert_eq!(detect(b"{\n  \"resourceType\": \"Bundle\"\n}\n"), Form::Documents);
        assert_eq!(detect(b"resourceType: Bundle\ntype: history\n"), Form::Documents);
        assert_eq!(detect(b"o1\t101\t2022-11-20 09:15:02+00\n"), Form::Tsv);
        assert_eq!(detect(b"--\n-- PostgreSQL database dump\n--\n"), Form::Dump);
        assert_eq!(detect(b"\\restrict abc\n"), Form::Dump);
    }

    #[test]
    fn dump_lines_inside_resource_tables_are_rows() {
        let text = "SET x = 1;\nCOPY public.\"group\" (id, txid, cts, ts, resource_type, status, resource) FROM stdin;\ng1\t1\t\\N\t2022-01-01 00:00:00+00\tGroup\tcreated\t{}\n\\.\n\nCOPY public.schema_migrations (version) FROM stdin;\n1\n\\.\n";
        let lines: Vec<(u64, &[u8])> = text.lines().enumerate().map(|(i, l)| (i as u64 + 1, l.as_bytes())).collect();
        let mut r = LineReader::new(Form::Dump);
        let kinds = r.kinds(&lines, None, &Zone::NONE).unwrap();
        assert_eq!(kinds[2], LineKind::Row(0));
        assert!(kinds.iter().enumerate().all(|(i, k)| i == 2 || *k == LineKind::Pass));
        assert_eq!(r.layout.runs, vec![(3, 3, 0)]);
        assert_eq!(r.layout.tables, ["public.\"group\""]);
        assert!(r.layout.columns_at(3).is_some() && r.layout.columns_at(7).is_none());
    }
}
