//! Tables as the writers see them: a schema and cells by (row, column), stored (`Table`) or
//! computed on the fly (the big `resources` table).

use super::csv::csv_rows_by_cell;

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    /// Nanoseconds since the epoch, UTC.
    Time,
    Int,
    Bool,
    /// A list of texts: a Parquet list, space-separated in CSV ([`LIST_SEPARATOR`]).
    List,
}

/// What separates the items of a list cell in CSV: none of the listed things (types, scopes,
/// policy ids) holds a space; OAuth itself separates scopes so.
pub(crate) const LIST_SEPARATOR: char = ' ';

/// One cell, borrowed from the table or from a scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    Null,
    Text(&'a str),
    Time(i64),
    Int(i64),
    Bool(bool),
    List(&'a [String]),
}

/// Anything that can be written as a table: a schema and cells by (row, column). The big
/// `resources` table is computed cell by cell from the audit, never stored as strings.
pub(crate) trait Rows: Sync {
    fn schema(&self) -> &[(&'static str, Kind)];
    fn len(&self) -> usize;
    /// The cell at (row, col); text built on the fly goes into `scratch`.
    fn cell<'a>(&'a self, row: usize, col: usize, scratch: &'a mut String) -> Cell<'a>;
    /// Appends the CSV text of some rows: by default cell by cell; a big table may do the same
    /// faster, byte for byte.
    fn csv_rows(&self, rows: std::ops::Range<usize>, buf: &mut Vec<u8>) {
        csv_rows_by_cell(self, rows, buf)
    }
    /// A hint that `row` will be read soon (its cells may be costly to reach); by default nothing.
    /// The Parquet writer asks it.
    #[cfg(feature = "parquet")]
    fn prefetch_row(&self, _row: usize) {}
}

/// A column's values, stored (for the small tables).
#[derive(Debug, Clone)]
pub(crate) enum Values {
    Text(Vec<Option<String>>),
    Time(Vec<Option<i64>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    /// An empty list is stored as `None`: CSV cannot tell the two apart.
    List(Vec<Option<Vec<String>>>),
}

#[derive(Debug, Clone)]
pub(crate) struct ColumnData {
    pub(crate) name: &'static str,
    pub(crate) values: Values,
}

/// A stored table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) columns: Vec<ColumnData>,
    schema: Vec<(&'static str, Kind)>,
}

impl Table {
    pub(crate) fn new(columns: Vec<ColumnData>) -> Table {
        let schema = columns
            .iter()
            .map(|c| {
                let k = match c.values {
                    Values::Text(_) => Kind::Text,
                    Values::Time(_) => Kind::Time,
                    Values::Int(_) => Kind::Int,
                    Values::Bool(_) => Kind::Bool,
                    Values::List(_) => Kind::List,
                };
                (c.name, k)
            })
            .collect();
        Table { columns, schema }
    }
}

/// A stored table built a row at a time: the columns declared once with their kinds, then each
/// row's cells set by column name (a cell not set is null).
pub(crate) struct TableBuilder {
    columns: Vec<ColumnData>,
}

impl TableBuilder {
    pub(crate) fn new(schema: &[(&'static str, Kind)]) -> TableBuilder {
        let columns = schema
            .iter()
            .map(|&(name, kind)| ColumnData {
                name,
                values: match kind {
                    Kind::Text => Values::Text(Vec::new()),
                    Kind::Time => Values::Time(Vec::new()),
                    Kind::Int => Values::Int(Vec::new()),
                    Kind::Bool => Values::Bool(Vec::new()),
                    Kind::List => Values::List(Vec::new()),
                },
            })
            .collect();
        TableBuilder { columns }
    }

    /// Starts a row: its cells are null until set.
    pub(crate) fn row(&mut self) -> &mut Self {
        for c in &mut self.columns {
            match &mut c.values {
                Values::Text(v) => v.push(None),
                Values::Time(v) | Values::Int(v) => v.push(None),
                Values::Bool(v) => v.push(None),
                Values::List(v) => v.push(None),
            }
        }
        self
    }

    /// The column `name`; a name not in the schema, or of another kind, is a bug.
    fn column(&mut self, name: &str) -> &mut Values {
        &mut self.columns.iter_mut().find(|c| c.name == name).unwrap_or_else(|| panic!("no column {name}")).values
    }

    pub(crate) fn text(&mut self, name: &str, v: Option<&str>) -> &mut Self {
        match self.column(name) {
            Values::Text(c) => *c.last_mut().expect("a row") = v.map(str::to_string),
            _ => panic!("{name} is not a text column"),
        }
        self
    }

    pub(crate) fn time(&mut self, name: &str, v: Option<i64>) -> &mut Self {
        match self.column(name) {
            Values::Time(c) => *c.last_mut().expect("a row") = v,
            _ => panic!("{name} is not a time column"),
        }
        self
    }

    pub(crate) fn int(&mut self, name: &str, v: Option<i64>) -> &mut Self {
        match self.column(name) {
            Values::Int(c) => *c.last_mut().expect("a row") = v,
            _ => panic!("{name} is not a number column"),
        }
        self
    }

    pub(crate) fn flag(&mut self, name: &str, v: Option<bool>) -> &mut Self {
        match self.column(name) {
            Values::Bool(c) => *c.last_mut().expect("a row") = v,
            _ => panic!("{name} is not a flag column"),
        }
        self
    }

    /// A list cell; an empty list is stored as null (see [`Values::List`]).
    pub(crate) fn list(&mut self, name: &str, v: Option<Vec<String>>) -> &mut Self {
        match self.column(name) {
            Values::List(c) => *c.last_mut().expect("a row") = v.filter(|v| !v.is_empty()),
            _ => panic!("{name} is not a list column"),
        }
        self
    }

    pub(crate) fn finish(self) -> Table {
        Table::new(self.columns)
    }
}

impl Values {
    pub(crate) fn len(&self) -> usize {
        match self {
            Values::Text(v) => v.len(),
            Values::Time(v) | Values::Int(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::List(v) => v.len(),
        }
    }
}

impl Rows for Table {
    fn schema(&self) -> &[(&'static str, Kind)] {
        &self.schema
    }
    fn len(&self) -> usize {
        self.columns.first().map(|c| c.values.len()).unwrap_or(0)
    }
    fn cell<'a>(&'a self, row: usize, col: usize, _scratch: &'a mut String) -> Cell<'a> {
        match &self.columns[col].values {
            Values::Text(v) => v[row].as_deref().map(Cell::Text).unwrap_or(Cell::Null),
            Values::Time(v) => v[row].map(Cell::Time).unwrap_or(Cell::Null),
            Values::Int(v) => v[row].map(Cell::Int).unwrap_or(Cell::Null),
            Values::Bool(v) => v[row].map(Cell::Bool).unwrap_or(Cell::Null),
            Values::List(v) => v[row].as_deref().map(Cell::List).unwrap_or(Cell::Null),
        }
    }
}
