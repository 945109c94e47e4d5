//! PostgreSQL's text format — what `$dump-sql` answers without `_format`, and the data lines of a
//! plain `pg_dump`'s `COPY … FROM stdin;` blocks: tab-separated fields, `\N` for null, backslash
//! escapes (`\\ \t \n \r \b \f \v`, octal `\123`, hex `\x41`). A row of an Aidbox resource table
//! (`id, txid, ts, cts, resource_type, status, resource`, in any order and subset) becomes the
//! JSON history row the line readers take; which field is which comes from a header row, from
//! `--tsv-columns`, from the COPY statement, or is inferred from the rows themselves.

use std::borrow::Cow;

/// What a field of a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Column {
    Id,
    Txid,
    Ts,
    Cts,
    ResourceType,
    Status,
    Resource,
    /// A column the audit does not read.
    Other,
}

impl Column {
    /// The column an Aidbox table calls `name`.
    fn named(name: &str) -> Column {
        match name.trim().trim_matches('"') {
            "id" => Column::Id,
            "txid" => Column::Txid,
            "ts" => Column::Ts,
            "cts" => Column::Cts,
            "resource_type" => Column::ResourceType,
            "status" => Column::Status,
            "resource" => Column::Resource,
            _ => Column::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::Txid => "txid",
            Column::Ts => "ts",
            Column::Cts => "cts",
            Column::ResourceType => "resource_type",
            Column::Status => "status",
            Column::Resource => "resource",
            Column::Other => "(other)",
        }
    }
}

/// The meaning of each field of a row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Columns(Vec<Column>);

/// The columns an Aidbox resource table has at least.
const NEEDED: [Column; 5] = [Column::Id, Column::Txid, Column::Ts, Column::ResourceType, Column::Resource];

impl Columns {
    /// The columns of a list of names (a header row, `--tsv-columns`, a COPY statement); `None`
    /// unless they hold an Aidbox resource table's (id, txid, ts, resource_type, resource).
    pub(crate) fn of_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Columns> {
        let columns: Vec<Column> = names.into_iter().map(Column::named).collect();
        let complete = NEEDED.iter().all(|c| columns.iter().filter(|x| *x == c).count() == 1);
        complete.then_some(Columns(columns))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// As written in messages: `id, txid, ts, …`.
    pub(crate) fn describe(&self) -> String {
        self.0.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
    }
}

/// The fields of a row, unescaped; `None` for `\N`. `Err` for bytes that are no UTF-8.
pub(crate) fn fields(line: &[u8]) -> Result<Vec<Option<Cow<'_, str>>>, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.split(|&b| b == b'\t').map(field).collect()
}

fn field(raw: &[u8]) -> Result<Option<Cow<'_, str>>, String> {
    if raw == b"\\N" {
        return Ok(None);
    }
    if !raw.contains(&b'\\') {
        let text = std::str::from_utf8(raw).map_err(|_| "a field that is not valid UTF-8".to_string())?;
        return Ok(Some(Cow::Borrowed(text)));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' || i + 1 == raw.len() {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + u32::from(raw[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let hex = |b: u8| (b as char).to_digit(16).expect("a hex digit") as u8;
                let mut v = hex(raw[i]);
                i += 1;
                if i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + hex(raw[i]);
                    i += 1;
                }
                out.push(v);
            }
            // `\\`, and any other escaped character, stands for itself.
            other => out.push(other),
        }
    }
    String::from_utf8(out).map(|s| Some(Cow::Owned(s))).map_err(|_| "a field that is not valid UTF-8".to_string())
}

/// Whether a row is a header: every field a bare column name, the needed ones among them.
pub(crate) fn header(row: &[Option<Cow<str>>]) -> Option<Columns> {
    let names: Option<Vec<&str>> = row.iter().map(|f| f.as_deref().filter(|n| is_identifier(n))).collect();
    Columns::of_names(names?)
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// What a field looks like, for telling the columns apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Looks {
    Null,
    Object,
    Status,
    Integer,
    Time,
    TypeName,
    Text,
}

fn looks(f: &Option<Cow<str>>) -> Looks {
    let Some(s) = f.as_deref() else { return Looks::Null };
    let b = s.as_bytes();
    if s.starts_with('{') {
        Looks::Object
    } else if matches!(s, "created" | "updated" | "deleted" | "recreated") {
        Looks::Status
    } else if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
        Looks::Integer
    } else if b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[..4].iter().all(u8::is_ascii_digit)
    {
        Looks::Time
    } else if b.first().is_some_and(u8::is_ascii_uppercase) && b.iter().all(u8::is_ascii_alphanumeric) {
        Looks::TypeName
    } else {
        Looks::Text
    }
}

/// Infers the columns from rows of a `$dump-sql` TSV without a header: the JSON object is
/// `resource`, `created|updated|deleted|recreated` is `status`, the integer is `txid`, of two
/// timestamps the later is `ts` (a `\N` one is `cts`), a capitalised type name is
/// `resource_type`, the remaining text is `id`. Rows are read until they decide; where none
/// can, Aidbox's order holds (`cts` before `ts`). `Err` says what no row could tell.
pub(crate) fn infer(rows: &[Vec<Option<Cow<str>>>], zone: &crate::timestamp::Zone) -> Result<Columns, String> {
    let width = rows.first().map(Vec::len).ok_or("no rows to infer the columns from")?;
    let rows: Vec<&Vec<Option<Cow<str>>>> = rows.iter().filter(|r| r.len() == width).collect();
    // What each column ever looks like (nulls aside).
    let kinds: Vec<Vec<Looks>> = (0..width)
        .map(|c| {
            let mut k: Vec<Looks> = rows.iter().map(|r| looks(&r[c])).filter(|l| *l != Looks::Null).collect();
            k.sort_by_key(|l| *l as u8);
            k.dedup();
            k
        })
        .collect();
    let only = |l: Looks| -> Vec<usize> { (0..width).filter(|&c| kinds[c] == [l]).collect() };
    let one = |l: Looks, what: &str| -> Result<usize, String> {
        match only(l).as_slice() {
            [c] => Ok(*c),
            [] => Err(format!("no column holds only {what}")),
            _ => Err(format!("more than one column holds {what}")),
        }
    };
    let resource = one(Looks::Object, "JSON objects (resource)")?;
    let status = only(Looks::Status);
    let txid = one(Looks::Integer, "integers (txid)")?;
    let times = only(Looks::Time);
    let type_col = one(Looks::TypeName, "type names (resource_type)")?;
    // A column of nulls only, beside one of times, is cts (which old rows lack).
    let nulls: Vec<usize> = (0..width).filter(|&c| kinds[c].is_empty()).collect();
    let (ts, cts) = match times.as_slice() {
        [t] if nulls.len() == 1 => (*t, Some(nulls[0])),
        [t] => (*t, None),
        [a, b] => {
            let (a, b) = (*a, *b);
            // A null time is cts; else the later one is ts; equal times decide nothing.
            let mut decided = None;
            for r in &rows {
                match (&r[a], &r[b]) {
                    (None, Some(_)) => decided = Some((b, a)),
                    (Some(_), None) => decided = Some((a, b)),
                    (Some(x), Some(y)) => {
                        let (tx, ty) = (crate::timestamp::parse(x, zone).ok(), crate::timestamp::parse(y, zone).ok());
                        match (tx, ty) {
                            (Some(tx), Some(ty)) if tx > ty => decided = Some((a, b)),
                            (Some(tx), Some(ty)) if tx < ty => decided = Some((b, a)),
                            _ => {}
                        }
                    }
                    (None, None) => {}
                }
                if decided.is_some() {
                    break;
                }
            }
            let (ts, cts) = decided.unwrap_or((b, a));
            (ts, Some(cts))
        }
        [] => return Err("no column holds timestamps (ts)".into()),
        _ => return Err("more than two columns hold timestamps".into()),
    };
    let taken: Vec<usize> = [Some(resource), status.first().copied(), Some(txid), Some(ts), cts, Some(type_col)]
        .into_iter()
        .flatten()
        .collect();
    let rest: Vec<usize> = (0..width).filter(|c| !taken.contains(c)).collect();
    let id = match rest.as_slice() {
        [c] => *c,
        [] => return Err("no column is left for the id".into()),
        _ => return Err(format!("{} columns could be the id", rest.len())),
    };
    let mut columns = vec![Column::Other; width];
    columns[resource] = Column::Resource;
    if let Some(&s) = status.first() {
        columns[s] = Column::Status;
    }
    columns[txid] = Column::Txid;
    columns[ts] = Column::Ts;
    if let Some(c) = cts {
        columns[c] = Column::Cts;
    }
    columns[type_col] = Column::ResourceType;
    columns[id] = Column::Id;
    Ok(Columns(columns))
}

/// A row as the JSON history row the line readers take (`{"id", "txid", "ts", "cts",
/// "resource_type", "status", "resource"}`), after checking that it fits its columns.
pub(crate) fn row_json(columns: &Columns, fields: &[Option<Cow<str>>]) -> Result<String, String> {
    if fields.len() != columns.len() {
        return Err(format!(
            "a row of {} fields where the columns are {} ({}): a dump that ends with the server's error text?",
            fields.len(),
            columns.len(),
            columns.describe()
        ));
    }
    let mut out = String::with_capacity(fields.iter().map(|f| f.as_ref().map_or(4, |s| s.len() + 16)).sum());
    out.push('{');
    let mut first = true;
    for (column, field) in columns.0.iter().zip(fields) {
        if *column == Column::Other {
            continue;
        }
        let Some(value) = field else {
            if matches!(column, Column::Cts | Column::Status) {
                continue;
            }
            return Err(format!("the {} field is null", column.name()));
        };
        let fits = match column {
            Column::Txid => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
            Column::Ts | Column::Cts => looks(field) == Looks::Time,
            Column::Status => looks(field) == Looks::Status,
            Column::Resource => value.starts_with('{'),
            _ => true,
        };
        if !fits {
            return Err(format!("the {} field does not hold what that column holds", column.name()));
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(column.name());
        out.push_str("\":");
        match column {
            Column::Txid => out.push_str(value),
            Column::Resource => out.push_str(value),
            _ => out.push_str(&serde_json::to_string(value.as_ref()).expect("a string serialises")),
        }
    }
    out.push('}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Zone;

    fn row(line: &str) -> Vec<Option<Cow<'_, str>>> {
        fields(line.as_bytes()).unwrap()
    }

    #[test]
    fn text_format_escapes_and_nulls() {
        let f = row("a\\tb\t\\N\tx\\\\y\\nz\t\\101\\x42");
        assert_eq!(f, vec![Some("a\tb".into()), None, Some("x\\y\nz".into()), Some("AB".into())]);
    }

    /// Without a header the columns are inferred; equal times on the first row leave ts and cts
    /// to the next rows, a null time is cts.
    #[test]
    fn columns_inferred_from_the_rows() {
        let rows = vec![
            row("o1\t101\t2022-11-20 09:15:02.5+00\t2022-11-20 09:15:02.5+00\tObservation\tcreated\t{\"a\":1}"),
            row("o1\t120\t2022-12-05 16:34:30.2+00\t2022-11-20 09:15:02.5+00\tObservation\tupdated\t{\"a\":2}"),
        ];
        let c = infer(&rows, &Zone::NONE).unwrap();
        assert_eq!(c.describe(), "id, txid, ts, cts, resource_type, status, resource");
        let swapped = vec![row("o1\t101\t\\N\t2022-11-20 09:15:02.5+00\tObservation\tcreated\t{}")];
        assert_eq!(
            infer(&swapped, &Zone::NONE).unwrap().describe(),
            "id, txid, cts, ts, resource_type, status, resource"
        );
        // Nothing decides: Aidbox's order, cts before ts.
        let equal = vec![row("o1\t101\t2022-11-20 09:15:02+00\t2022-11-20 09:15:02+00\tObservation\tcreated\t{}")];
        assert_eq!(
            infer(&equal, &Zone::NONE).unwrap().describe(),
            "id, txid, cts, ts, resource_type, status, resource"
        );
        let json = row_json(&c, &rows[1]).unwrap();
        assert_eq!(
            json,
            r#"{"id":"o1","txid":120,"ts":"2022-12-05 16:34:30.2+00","cts":"2022-11-20 09:15:02.5+00","resource_type":"Observation","status":"updated","resource":{"a":2}}"#
        );
        let error = row("ERROR:  relation \"x\" does not exist");
        assert!(row_json(&c, &error).unwrap_err().contains("a row of 1 fields where the columns are 7"));
    }

    #[test]
    fn headers_and_named_columns() {
        assert!(header(&row("id\ttxid\tcts\tts\tresource_type\tstatus\tresource")).is_some());
        assert!(header(&row("o1\t101\t2022-11-20 09:15:02+00")).is_none());
        assert!(Columns::of_names(["id", "txid", "ts", "resource_type"]).is_none(), "no resource");
        let c = Columns::of_names(["id", "txid", "cts", "ts", "resource_type", "status", "resource", "extra"]).unwrap();
        assert_eq!(c.len(), 8);
    }
}
