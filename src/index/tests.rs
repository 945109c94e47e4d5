//! The index: order, as-of, conflicts, patients and references.

use super::*;
use crate::version::{ClientScopes, ParsedVersion};

fn pv(id: &str, vid: u64, ms: i64, deleted: bool) -> ParsedVersion {
    ParsedVersion {
        resource_type: "Observation".into(),
        id: id.into(),
        tenant: None,
        version_id: VersionId::Number(vid),
        last_updated: Instant::from_millis(ms),
        deleted,
        source: Source { file: 0, line: vid, offset: 0, entry: None },
        patients: vec![],
        references: vec![],
        detail: None,
    }
}

/// Resources are numbered in (type name, id) order, also among ids that share their first
/// 8 bytes (sorted on those first, then run by run); lookups still find each one.
#[test]
fn resources_in_type_and_id_order() {
    let ids = [
        "prefix-0001-c10",
        "prefix-0001-c2",
        "a",
        "prefix-0001-c1",
        "ab",
        "prefix-0",
        "prefix-0001",
        "prefix-1",
        "abcdefgh",
        "abcdefg",
        "abcdefghi",
    ];
    let mut parsed: Vec<ParsedVersion> =
        ids.iter().enumerate().map(|(n, id)| pv(id, n as u64 + 1, 1000, false)).collect();
    for (n, id) in ["p2", "p1", "prefix-0001-c3"].iter().enumerate() {
        let mut p = pv(id, 100 + n as u64, 1000, false);
        p.resource_type = "Condition".into();
        parsed.push(p);
    }
    let h = History::build(parsed);
    let got: Vec<(&str, &str)> = h.resources.iter().map(|r| (h.type_name(r.resource_type), &*r.id)).collect();
    let mut expected = got.clone();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 14);
    for (t, id) in expected {
        assert_eq!(&*h.resource(t, id).unwrap().id, id);
    }
}

#[test]
fn ids_sharing_long_prefixes_in_id_order() {
    // Runs of ids equal in their first 8 bytes and often far beyond (clones with suffixes,
    // ids that are prefixes of others), from a small alphabet so that ties are common.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut ids: Vec<String> = Vec::new();
    for _ in 0..600 {
        let stem = ["aaaaaaaa", "aaaaaaaa-b", "zzzzzzzz", "aaaaaaab"][(next() % 4) as usize];
        let tail: String = (0..next() % 20).map(|_| ['-', '0', '1', 'a', 'A'][(next() % 5) as usize]).collect();
        ids.push(format!("{stem}{tail}"));
    }
    ids.sort();
    ids.dedup();
    let parsed: Vec<ParsedVersion> =
        ids.iter().rev().enumerate().map(|(n, id)| pv(id, n as u64 + 1, 1000, false)).collect();
    let h = History::build(parsed);
    let got: Vec<&str> = h.resources.iter().map(|r| &*r.id).collect();
    assert_eq!(got, ids);
}

#[test]
fn as_of_with_deletions_recreations_and_boundaries() {
    let h = History::build(vec![
        pv("o", 30, 3000, false),
        pv("o", 10, 1000, false),
        pv("o", 20, 2000, true),
        pv("o", 10, 1000, false),
    ]);
    let r = h.resource("Observation", "o").unwrap();
    assert_eq!(h.duplicates, 1);
    assert!(h.conflicts.is_empty());
    let at = |ms, b| r.as_of(Instant::from_millis(ms), b).map(|v| (v.version_id.to_string(), v.deleted));
    assert_eq!(at(1000, Boundary::Strict), None);
    assert_eq!(at(1000, Boundary::Inclusive), Some(("10".into(), false)));
    assert_eq!(at(2500, Boundary::Strict), Some(("20".into(), true)));
    assert!(r.live_at(Instant::from_millis(2500), Boundary::Strict).is_none());
    assert_eq!(at(3001, Boundary::Strict), Some(("30".into(), false)));
    assert_eq!(r.in_window(Instant::from_millis(2000), Instant::from_millis(2000), Boundary::Strict).len(), 1);
    assert_eq!(r.in_window(Instant::from_millis(2000), Instant::from_millis(2000), Boundary::Inclusive).len(), 0);
}

#[test]
fn equal_times_order_by_version_and_conflicts_are_recorded() {
    let mut b = pv("o", 5, 1000, false);
    b.last_updated = Instant::from_millis(1500);
    let h = History::build(vec![pv("o", 7, 1000, false), pv("o", 5, 1000, false), b]);
    let r = h.resource("Observation", "o").unwrap();
    assert_eq!(r.as_of(Instant::from_millis(1001), Boundary::Strict).unwrap().version_id.to_string(), "7");
    assert_eq!(h.conflicts.len(), 1);
}

/// Two copies of one Client version that grant different scopes differ in what the audit reads:
/// a conflict, though their times and patients agree. Equal copies are no conflict.
#[test]
fn copies_with_different_details_conflict() {
    let client = |scopes: &[&str]| {
        let mut p = pv("c", 3, 1000, false);
        p.resource_type = "Client".into();
        p.detail = Some(Box::new(Detail::Client {
            scopes: ClientScopes::Granted(scopes.iter().map(|s| s.to_string()).collect()),
            label: String::new(),
        }));
        p
    };
    let h = History::build(vec![client(&["system/Patient.read"]), client(&["system/*.read"])]);
    assert_eq!(h.conflicts.len(), 1);
    assert_eq!((h.conflicts[0].resource_type.as_str(), h.conflicts[0].id.as_str()), ("Client", "c"));
    let h = History::build(vec![client(&["system/Patient.read"]), client(&["system/Patient.read"])]);
    assert!(h.conflicts.is_empty());
    assert_eq!(h.duplicates, 1);
}

#[test]
fn patients_and_references_of_each_version() {
    let with = |id: &str, vid: u64, patients: &[&str], refs: &[(&str, &str)]| {
        let mut p = pv(id, vid, vid as i64 * 1000, false);
        p.patients = patients.iter().map(|s| s.to_string()).collect();
        p.references = refs.iter().map(|(t, i)| (t.to_string(), i.to_string())).collect();
        p
    };
    let h = History::build(vec![
        with("a", 1, &["p1"], &[("Patient", "p1")]),
        with("a", 2, &["p2", "p3", "p1"], &[]),
        with("a", 3, &[], &[("Encounter", "e1"), ("Patient", "p2")]),
        with("b", 1, &["p3"], &[]),
        // Copies of one version: the same patients are a repeat, others a conflict.
        with("b", 1, &["p3"], &[]),
        with("c", 1, &["p1", "p2"], &[]),
        with("c", 1, &["p2", "p1"], &[]),
    ]);
    let patients = |id: &str| -> Vec<Vec<&str>> {
        let r = h.resource("Observation", id).unwrap();
        r.versions.iter().map(|v| h.patients_of(v).iter().map(|&p| h.patient_name(p)).collect()).collect()
    };
    assert_eq!(patients("a"), vec![vec!["p1"], vec!["p2", "p3", "p1"], vec![]]);
    assert_eq!(patients("b"), vec![vec!["p3"]]);
    assert_eq!(patients("c"), vec![vec!["p1", "p2"]]);
    let a = h.resource("Observation", "a").unwrap();
    let refs: Vec<Vec<(&str, u32)>> =
        a.versions.iter().map(|v| h.references_of(v).iter().map(|&(t, i)| (h.type_name(t), i)).collect()).collect();
    assert_eq!(refs[0], vec![("Patient", h.ref_id_of("p1").unwrap())]);
    assert!(refs[1].is_empty());
    assert_eq!(refs[2], vec![("Encounter", h.ref_id_of("e1").unwrap()), ("Patient", h.ref_id_of("p2").unwrap())]);
    assert_eq!(h.duplicates, 2);
    assert_eq!(h.conflicts.len(), 1);
    assert_eq!(h.conflicts[0].id, "c");
}
