//! The fast path against the reference reading, on lines built to make them differ.

use crate::timestamp::Zone;
use serde_json::{json, Value};

use super::fast as scan;
use super::messages::Unreadable;
use super::{versions_of_document, ParseOptions};
use crate::fhir::compartment::{Compartment, FhirVersion};
use crate::version::{Source, VersionBatch};

/// The fast path (`scan`) and the `Value` path agree on every line of the fixtures and on
/// hand-made edge cases.
#[test]
fn fast_path_matches_the_value_path() {
    let c = Compartment::load(FhirVersion::R4);
    let mut lines: Vec<String> = Vec::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let files = crate::source::collect(&[root.join("synthea/history"), root.join("guide/history")]).unwrap();
    for f in &files {
        let (bytes, _, cut) = crate::source::read_whole(f).unwrap();
        assert!(cut.is_none());
        let text = String::from_utf8(bytes).unwrap();
        if text.starts_with('{') && text.lines().next().is_some_and(|l| serde_json::from_str::<Value>(l).is_ok()) {
            lines.extend(text.lines().map(String::from));
        } else {
            lines.push(serde_json::from_str::<Value>(&text).unwrap().to_string());
        }
    }
    lines.extend(
            [
                json!({"resourceType": "Observation", "id": "o", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"},
                       "subject": {"resourceType": "Encounter", "uri": "http://x/Patient/u"}, "performer": [{"resourceType": "Patient"}, {"uri": "Patient/v", "id": 5}, {"reference": 7, "resourceType": "Patient", "id": "w"}]}),
                json!({"resourceType": "Observation", "id": "o", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "subject": [[{"reference": "Patient/nested"}]], "performer": "Patient/p"}),
                json!({"resourceType": "CarePlan", "id": "c", "meta": {"versionId": 7, "lastUpdated": "2022-01-01T00:00:00Z"}, "activity": [{"detail": {"performer": [{"reference": "Patient/a"}, {"reference": "Practitioner/b"}]}}, {"detail": null}]}),
                json!({"id": "n", "resource_type": "Observation", "txid": "12", "ts": "2022-01-01T00:00:00Z", "status": "created", "resource": {"subject": {"id": "z", "resourceType": "Patient"}, "performer": [{"uri": "https://a/b/Patient/y/_history/2"}]}}),
                json!({"resourceType": "Group", "id": "g", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "member": [{"entity": {"reference": "Patient/m"}, "inactive": true}]}),
                json!({"resourceType": "Patient", "id": "p", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "link": [{"other": {"reference": "Patient/q"}}]}),
                // A Client without scope, one with an empty one, and AccessPolicies in both
                // link forms and without links: details both readings must agree on.
                json!({"resourceType": "Client", "id": "c", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "secret": "s", "grant_types": ["basic"]}),
                json!({"resourceType": "Client", "id": "c", "meta": {"versionId": "2", "lastUpdated": "2022-01-01T00:00:00Z"}, "scope": ""}),
                json!({"resourceType": "AccessPolicy", "id": "ap", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "engine": "allow", "link": [{"id": "c", "resourceType": "Client"}, {"reference": "Client/d"}]}),
                json!({"resourceType": "AccessPolicy", "id": "ap2", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "engine": "allow"}),
                json!({"id": "ap3", "resource_type": "AccessPolicy", "txid": 7, "ts": "2022-01-01T00:00:00Z", "status": "created", "resource": {"engine": "allow", "link": [{"id": "c", "resourceType": "Client"}]}}),
                // Tenant markers (Smartbox), in both forms, in a resource, a row and a deletion row.
                json!({"resourceType": "Patient", "id": "p", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z", "tenant": {"id": "t1", "resourceType": "Tenant"}}}),
                json!({"resourceType": "Patient", "id": "p", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z", "_tenant": "t2"}}),
                json!({"id": "o", "resource_type": "Observation", "txid": 8, "ts": "2022-01-01T00:00:00Z", "status": "updated", "resource": {"meta": {"tenant": {"id": "t1", "resourceType": "Tenant"}}, "subject": {"id": "p", "resourceType": "Patient"}}}),
                json!({"id": "o", "resource_type": "Observation", "txid": 9, "ts": "2022-01-01T00:00:00Z", "status": "deleted", "resource": {"meta": {"_tenant": "t1"}}}),
                // Found by the history fuzz target: an Aidbox-form id that is no FHIR id.
                json!({"resourceType": "Observation", "id": "o", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "subject": {"id": "6c5d9ca9-54d?-42f5", "resourceType": "Patient"}}),
            ]
            .iter()
            .map(|v| v.to_string()),
        );
    // Written out, for what `json!` cannot say: escapes, repeated keys, odd spacing. They take
    // the quick reader's fall-backs to serde_json.
    let meta = r#""meta":{"versionId":"1","lastUpdated":"2022-01-01T00:00:00Z"}"#;
    lines.extend([
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subject":{{"reference":"Patient\/esc"}},"performer":[{{"reference":"Patient/a","reference":"Patient/b"}}]}}"#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subj\u0065ct":{{"reference":"Patient/k"}}}}"#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subject":{{"refer\u0065nce":"Patient/k2"}}}}"#),
            r#"{"resourceType":"Observation","id":"o","meta":{"versionId":"1","versionId":"2","lastUpdated":"2022-01-01T00:00:00Z"}}"#.to_string(),
            r#"{"resourceType":"Observation","id":"o","meta":{"version\u0049d":"3","lastUpdated":"2022-01-01T00:00:00Z"}}"#.to_string(),
            format!(r#" {{ "resourceType" : "Observation" , "id" : "o" , {meta} , "note" : [ {{ "text" : "café \"x\"" }} ] , "subject" : [ {{ "reference" : "Patient/sp" }} ] }} "#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subject":{{"reference":"Patient/été"}},"performer":{{"resourceType":"Patient","id":"x\u0079"}}}}"#),
            // Every reference in the body (--non-compartment referenced), walked off the raw
            // text or, in doubt, read whole: nested, contained, unresolvable, in other forms.
            format!(
                r##"{{"resourceType":"Observation","id":"o",{meta},"identifier":[{{"assigner":{{"reference":"Organization/o1"}}}}],"contained":[{{"resourceType":"Practitioner","id":"pr","x":{{"reference":"Location/l1"}}}}],"extension":[{{"contained":{{"reference":"Location/l2"}}}}],"focus":[{{"reference":"urn:uuid:1","identifier":{{"assigner":{{"reference":"Organization/o2"}}}}}}],"x":{{"resourceType":"patient","id":"p","y":{{"reference":"Device/d1"}}}},"z":{{"reference":5,"uri":"Location/l3"}},"w":[[{{"reference":"Device/d5"}}]],"subject":{{"reference":"Patient/p1/_history/2"}},"device":{{"reference":"http://x/fhir/Device/d6"}},"v":{{"resourceType":"Device","id":"d7"}},"u":{{"reference":"#c1","uri":"Location/l4"}}}}"##
            ),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"x":{{"reference":"Device\/d2"}},"y":{{"reference":"Device/d8"}}}}"#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"x":{{"a":{{"reference":"Device/d3"}},"a":{{"reference":"Device/d4"}}}}}}"#),
            // A compartment field repeated at the top level (found by the fuzz target): the last
            // value counts, as in serde_json's Value, in a resource and in a Bundle entry.
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subject":{{"reference":"Patient/first"}},"subject":{{"reference":"Patient/last"}}}}"#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subject":{{"reference":"Patient/first"}},"note":[],"subject":{{"reference":"Pat ient/x"}}}}"#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"performer":[{{"reference":"Patient/a"}}],"subject":{{"reference":"Patient/s"}},"performer":[]}}"#),
            format!(r#"{{"resourceType":"Bundle","type":"history","entry":[{{"request":{{"method":"PUT"}},"resource":{{"resourceType":"CarePlan","id":"c",{meta},"subject":{{"reference":"Patient/first"}},"subject":{{"reference":"Patient/last"}}}}}}]}}"#),
            format!(r#"{{"resourceType":"Group","id":"g",{meta},"member":[{{"entity":{{"reference":"Patient/first"}}}}],"member":[{{"entity":{{"reference":"Patient/last"}}}}]}}"#),
            // Repeated deeper on the path (found in review): walked quickly, and by serde_json
            // where an escaped key makes the quick walk doubt.
            format!(r#"{{"resourceType":"Appointment","id":"a",{meta},"participant":[{{"actor":{{"reference":"Patient/first"}},"actor":{{"reference":"Patient/last"}}}}]}}"#),
            format!(r#"{{"resourceType":"Appointment","id":"a",{meta},"participant":[{{"actor":{{"reference":"Patient/first"}},"actor":{{"reference":"Patient/last"}}}}]}}"#),
            format!(r#"{{"resourceType":"Appointment","id":"a",{meta},"participant":[{{"actor":{{"reference":"Patient/x"}},"actor":{{"reference":"Patient/y"}},"actor":{{"reference":"Patient/z"}}}},{{"actor":{{"reference":"Patient/w"}}}}]}}"#),
            format!(r#"{{"resourceType":"Appointment","id":"a",{meta},"participant":[{{"actor":{{"reference":"Patient/p","reference":"Patient/q"}}}}]}}"#),
        ]);
    for keep_references in [false, true] {
        let opts = ParseOptions::new(&c, Zone::UTC, keep_references);
        for (i, line) in lines.iter().enumerate() {
            let src = Source { file: 0, line: i as u64 + 1, offset: 0, entry: None };
            let slow = versions_of_document(serde_json::from_str(line).unwrap(), src, &opts);
            let mut fast = VersionBatch::default();
            let fast = scan::scan_line(line.as_bytes(), src, &opts, &opts.interesting, &mut fast)
                .map(|()| fast.into_parsed())
                .map_err(|e| match e {
                    scan::ScanError::Json(e) => Unreadable::Shape(e.to_string()),
                    scan::ScanError::Shape(s) => Unreadable::Shape(s),
                    scan::ScanError::NoZone => Unreadable::NoZone,
                });
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "line {i}: {line}");
        }
    }
    assert!(lines.len() > 500, "{} lines", lines.len());
}

/// A choice element on a path (R5: `NutritionIntake.reported as Reference`), spelled the FHIR
/// way (`reportedReference`) and the Aidbox way (`reported: {"Reference": …}`), with keys
/// repeated: the fast path reads what serde_json's Value keeps, the last value of each key.
#[test]
fn repeated_choice_keys_count_once() {
    let c = Compartment::load(FhirVersion::R5);
    let opts = ParseOptions::new(&c, Zone::UTC, false);
    let meta = r#""meta":{"versionId":"1","lastUpdated":"2020-01-01T00:00:00Z"}"#;
    let lines = [
        format!(
            r#"{{"resourceType":"NutritionIntake","id":"n",{meta},"reported":{{"Reference":{{"reference":"Patient/a"}},"Reference":{{"reference":"Patient/b"}}}}}}"#
        ),
        format!(
            r#"{{"resourceType":"NutritionIntake","id":"n",{meta},"reported":{{"Reference":{{"reference":"Patient/a"}}}},"reported":{{"Reference":{{"reference":"Patient/b"}}}}}}"#
        ),
        format!(
            r#"{{"resourceType":"NutritionIntake","id":"n",{meta},"reportedReference":{{"reference":"Patient/a"}},"reportedReference":{{"reference":"Patient/b"}},"reported":{{"Reference":{{"reference":"Patient/c"}}}}}}"#
        ),
        format!(
            r#"{{"resourceType":"NutritionIntake","id":"n",{meta},"reported":{{"Reference":{{"reference":"Patient/a"}},"Reference":{{"reference":"Patient/b"}}}}}}"#
        ),
    ];
    let mut patients = Vec::new();
    for line in &lines {
        let src = Source { file: 0, line: 1, offset: 0, entry: None };
        let slow = versions_of_document(serde_json::from_str(line).unwrap(), src, &opts).unwrap();
        let mut fast = VersionBatch::default();
        scan::scan_line(line.as_bytes(), src, &opts, &opts.interesting, &mut fast).map_err(|_| line.clone()).unwrap();
        let fast = fast.into_parsed();
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{line}");
        patients.push(fast[0].patients.clone());
    }
    assert_eq!(patients, [vec!["b"], vec!["b"], vec!["b", "c"], vec!["b"]]);
}

/// Found in review: values on a compartment path that serde_json refuses to read (a number
/// too large for f64, a lone surrogate) while skipping them elsewhere is fine. The fast path
/// must refuse such a line as the reference path does, not read it without the patient.
#[test]
fn values_on_compartment_paths_are_read_strictly() {
    let c = Compartment::load(FhirVersion::R4);
    let opts = ParseOptions::new(&c, Zone::UTC, false);
    let head = r#"{"resourceType":"Observation","id":"o","meta":{"versionId":"1","lastUpdated":"2020-01-01T00:00:00Z"},"subject":"#;
    for x in [
        "1e400",
        "-1e400",
        "[1e400]",
        r#""\ud800""#,
        r#"[{"reference":1e400}]"#,
        r#"{"reference":{"\udc00":0}}"#,
        r#"{"reference":"\udc00"}"#,
    ] {
        let line = format!("{head}{x}}}");
        let src = Source { file: 0, line: 1, offset: 0, entry: None };
        let mut out = VersionBatch::default();
        assert!(
            scan::scan_line(line.as_bytes(), src, &opts, &opts.interesting, &mut out).is_err(),
            "fast path read {line}"
        );
        assert!(serde_json::from_str::<Value>(&line).is_err(), "reference path read {line}");
    }
    // Skipped elsewhere, the same values are no error for the fast path.
    let line = r#"{"resourceType":"Observation","id":"o","meta":{"versionId":"1","lastUpdated":"2020-01-01T00:00:00Z"},"note":[1e400,"\ud800"],"subject":{"reference":"Patient/p"}}"#;
    let mut out = VersionBatch::default();
    assert!(scan::scan_line(
        line.as_bytes(),
        Source { file: 0, line: 1, offset: 0, entry: None },
        &opts,
        &opts.interesting,
        &mut out
    )
    .is_ok());
    assert_eq!(out.into_parsed()[0].patients, vec!["p".to_string()]);
}
