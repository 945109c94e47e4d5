//! The `resources` table's fast CSV writer gives the same bytes as formatting it cell by cell,
//! on the Synthea fixture (every input form, Bundle entries, exports of every level), with some
//! history files under a folder whose name needs CSV quoting.

use clap::Parser;

use super::{Cli, Command};
use crate::audit::{self, ResourceRows};
use crate::output::{csv_rows_by_cell, Rows};

#[test]
fn fast_csv_rows_equal_rows_by_cell() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let odd = tmp.path().join("bundles, \"quoted\"");
    std::fs::create_dir(&odd).unwrap();
    for f in std::fs::read_dir(root.join("fixtures/synthea/history/bundles")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), odd.join(f.file_name())).unwrap();
    }
    let h = root.join("fixtures/synthea/history");
    let paths = [root.join("fixtures/synthea/logs"), h.join("aidbox"), h.join("fhir"), odd, tmp.path().join("out")];
    let [logs, aidbox, fhir, odd, out] = paths.each_ref().map(|p| p.to_str().unwrap());
    let args = ["bulk-audit", "audit", "--logs", logs, "--history", aidbox, fhir, odd, "--tz", "UTC", "--out", out];
    let Command::Audit(a) = Cli::try_parse_from(args).unwrap().command else { panic!("not an audit command") };
    let cfg = super::config::audit_config(*a).unwrap();
    let result = audit::run(&cfg).unwrap();
    let rows = ResourceRows::new(&result, None);
    assert!(rows.len() > 300, "the fixture has hundreds of rows ({})", rows.len());

    let (mut fast, mut by_cell) = (Vec::new(), Vec::new());
    // In pieces, as the writer formats them: a piece may start in the middle of an export.
    for start in (0..rows.len()).step_by(97) {
        let piece = start..(start + 97).min(rows.len());
        rows.csv_rows(piece.clone(), &mut fast);
        csv_rows_by_cell(&rows, piece, &mut by_cell);
    }
    let text = String::from_utf8(fast).unwrap();
    assert_eq!(text, String::from_utf8(by_cell).unwrap());
    assert!(text.contains("bundles, \"\"quoted\"\"/CarePlan.ndjson.gz:"), "some sources need quotes");
    assert!(text.contains("#entry"), "some sources are Bundle entries");
}

/// Every worked example in `--help` is a command line clap accepts, and the help shows its
/// option groups.
#[test]
fn help_examples_parse_and_options_are_grouped() {
    use clap::CommandFactory;
    for text in [super::AUDIT_EXAMPLES, super::INDEX_EXAMPLES, super::DISCLOSURES_EXAMPLES] {
        let joined = text.replace("\\\n", " ");
        let commands: Vec<&str> = joined.lines().map(str::trim).filter(|l| l.starts_with("bulk-audit ")).collect();
        assert!(commands.len() >= 2, "{text}");
        for line in commands {
            if let Err(e) = Cli::try_parse_from(line.split_whitespace()) {
                panic!("the help example `{line}` does not parse: {e}");
            }
        }
    }
    let help = Cli::command().find_subcommand_mut("audit").unwrap().render_help().to_string();
    for heading in ["Inputs:", "Which exports:", "Rules:", "Outputs:", "Examples:"] {
        assert!(help.contains(heading), "{heading} missing from\n{help}");
    }
}

/// `INDEX_OPTIONS` (the options `audit --index` takes from the index, by clap id) and the fields
/// of `IndexOptions` (what the index stores) are the same options: a rule option added to one and
/// not the other would be taken from the command line against an index built otherwise.
#[test]
fn index_options_are_the_stored_options() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (logs, history) = (root.join("fixtures/guide/logs"), root.join("fixtures/guide/history"));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let args = [
        "bulk-audit",
        "audit",
        "--logs",
        logs.to_str().unwrap(),
        "--history",
        history.to_str().unwrap(),
        "--tz",
        "UTC",
        "--out",
        out.to_str().unwrap(),
    ];
    let Command::Audit(a) = Cli::try_parse_from(args).unwrap().command else { panic!("not an audit command") };
    let cfg = super::config::audit_config(*a).unwrap();
    let stored = serde_json::to_value(crate::index_files::IndexOptions::of(&cfg.read, &cfg.rules)).unwrap();
    let mut fields: Vec<&str> = stored.as_object().unwrap().keys().map(String::as_str).collect();
    // The inputs are the index's own: given with --index, they are not options to compare.
    fields.retain(|k| *k != "logs" && *k != "history");
    fields.sort_unstable();
    let mut ids = super::INDEX_OPTIONS.to_vec();
    ids.sort_unstable();
    assert_eq!(fields, ids);
    // And each is an option of `audit` by that id.
    let command = <Cli as clap::CommandFactory>::command();
    let audit = command.find_subcommand("audit").unwrap();
    for id in super::INDEX_OPTIONS {
        assert!(audit.get_arguments().any(|a| a.get_id() == id), "--{id} is no option of audit");
    }
}

/// Every option of every command is in docs/options.md, so a new option is documented where a
/// user looks for it.
#[test]
fn every_option_is_documented() {
    let documented = include_str!("../../docs/options.md");
    let command = <Cli as clap::CommandFactory>::command();
    let mut missing = Vec::new();
    for sub in command.get_subcommands() {
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                if !["help", "version"].contains(&long) && !documented.contains(&format!("--{long}")) {
                    missing.push(format!("{} --{long}", sub.get_name()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/options.md: {}", missing.join(", "));
}
