//! Which resource types the history inputs name by themselves, whether or not they hold a version
//! of them: a file named for a type (`Observation.ndjson`, `observation_history.tsv.zst`,
//! `public.condition.tsv`) or an Aidbox table in a plain dump (`COPY public.observation_history
//! …`). A type named so was dumped, even when its table was empty: an export is not incomplete
//! for want of it (SPEC "What the inputs cannot tell", `type-not-in-history`).

use std::collections::{BTreeSet, HashMap};

use super::forms::Layout;
use crate::source::InputFile;

/// Endings a dump file's name may carry after the table's name, outermost first as they are
/// taken off (compression, then the data form).
const ENDINGS: [&str; 16] = [
    ".zst", ".zstd", ".gz", ".gzip", ".ndjson", ".jsonl", ".json", ".tsv", ".csv", ".txt", ".sql", ".copy", ".yaml",
    ".yml", ".dump", ".out",
];

/// The types of `types` (FHIR's, as written: `Observation`) that the history files' names and
/// their dumps' COPY tables name.
pub(crate) fn named_types(files: &[InputFile], layouts: &[Layout], types: &BTreeSet<String>) -> BTreeSet<String> {
    let by_lowercase: HashMap<String, &String> = types.iter().map(|t| (t.to_lowercase(), t)).collect();
    let of = |name: &str| table_type(name).and_then(|t| by_lowercase.get(&t)).map(|t| t.to_string());
    let from_files = files.iter().filter_map(|f| f.path.file_name()).filter_map(|n| of(&n.to_string_lossy()));
    let from_tables = layouts.iter().flat_map(|l| l.tables.iter()).filter_map(|t| of(t));
    from_files.chain(from_tables).collect()
}

/// The type a file or table name stands for, lowercase: its endings, a schema (`public.`), quotes
/// and `_history` taken off. `None` for a name that is empty once they are.
fn table_type(name: &str) -> Option<String> {
    let mut name = name.trim().to_lowercase();
    while let Some(ending) = ENDINGS.iter().find(|e| name.ends_with(*e) && name.len() > e.len()) {
        name.truncate(name.len() - ending.len());
    }
    let name = name.rsplit('.').next().unwrap_or_default().trim_matches('"');
    let name = name.strip_suffix("_history").unwrap_or(name);
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_dumped_tables_and_files() {
        assert_eq!(table_type("Observation.ndjson").as_deref(), Some("observation"));
        assert_eq!(table_type("observation_history.tsv.zst").as_deref(), Some("observation"));
        assert_eq!(table_type("public.condition.tsv").as_deref(), Some("condition"));
        assert_eq!(table_type("public.\"group\"").as_deref(), Some("group"));
        assert_eq!(table_type("Goal.ndjson.gz").as_deref(), Some("goal"));
        let types: BTreeSet<String> = ["Observation", "Goal", "Group"].iter().map(|s| s.to_string()).collect();
        let files: Vec<InputFile> = ["h/observation_history.tsv", "h/goal.ndjson.zst", "h/dump.sql", "h/history.json"]
            .iter()
            .map(|p| InputFile { path: p.into(), size: Some(0) })
            .collect();
        let layout =
            Layout { tables: vec!["public.\"group\"".into(), "schema_migrations".into()], ..Layout::default() };
        let named = named_types(&files, &[layout], &types);
        assert_eq!(named.into_iter().collect::<Vec<_>>(), ["Goal", "Group", "Observation"]);
    }
}
