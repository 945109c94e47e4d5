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
