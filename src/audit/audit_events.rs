//! `--audit-events`: the audit trail the server never wrote. One FHIR R4 `AuditEvent` per
//! (export, patient) with at least one row for that patient, after IHE Basic Audit Log Patterns'
//! "Audit Event for Privacy Disclosure at Source", as `auditevents.ndjson` and as a transaction
//! Bundle of `PUT AuditEvent/{id}` entries (`auditevents-bundle.json`), so loading twice changes
//! nothing.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::output_tables::export_order;
use super::AuditResult;
use crate::error::{Error, Result};
use crate::output;

pub(super) const PROFILE: &str =
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PrivacyDisclosure.Source";
const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const LIFECYCLE: &str = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const SECURITY_ROLE: &str = "http://terminology.hl7.org/CodeSystem/extra-security-role-type";

/// Writes both files into `dir`; returns the number of AuditEvents.
pub(super) fn write(r: &AuditResult, dir: &Path) -> Result<usize> {
    let events = audit_events(r)?;
    let mut ndjson = String::new();
    for e in &events {
        ndjson.push_str(&serde_json::to_string(e).map_err(|e| Error::Internal(format!("AuditEvent: {e}")))?);
        ndjson.push('\n');
    }
    output::write_text(&dir.join("auditevents.ndjson"), &ndjson)?;
    let entries: Vec<Value> = events
        .iter()
        .map(|e| {
            let id = e["id"].as_str().unwrap_or_default();
            json!({
                "fullUrl": format!("urn:uuid:{id}"),
                "resource": e,
                "request": {"method": "PUT", "url": format!("AuditEvent/{id}")},
            })
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    output::write_json(&dir.join("auditevents-bundle.json"), &bundle)?;
    Ok(events.len())
}

/// Every AuditEvent, export by export in output order, patients by id.
fn audit_events(r: &AuditResult) -> Result<Vec<Value>> {
    let h = &r.history;
    let mut out = Vec::new();
    for i in export_order(r) {
        let (e, x) = (&r.events[i], &r.resolutions[i]);
        let Some(time) = e.time.filter(|_| x.resolved) else { continue };
        // (type, id, version) of each row, per patient; rows outside every compartment belong
        // to no patient and are in no AuditEvent (the resources table lists them).
        let mut by_patient: BTreeMap<&str, Vec<(&str, &str, String)>> = BTreeMap::new();
        for row in &x.rows {
            let Some(p) = row.patient else { continue };
            let res = &h.resources[row.resource as usize];
            let version = res.versions[row.version as usize].version_id.to_string();
            by_patient.entry(h.patient_name(p)).or_default().push((h.type_name(res.resource_type), &res.id, version));
        }
        let mut outcome = outcome(r.statuses[i].as_ref().and_then(|s| s.status.as_deref()));
        // An incomplete reconstruction says so where a FHIR reader looks for the outcome.
        let reasons = super::completeness::incomplete_because(r, i);
        if !reasons.is_empty() {
            let said = format!("incomplete reconstruction: {}", reasons.join("; "));
            outcome.1 = Some(match outcome.1 {
                Some(d) => format!("{d}; {said}"),
                None => said,
            });
        }
        for (patient, mut versions) in by_patient {
            versions.sort();
            versions.dedup();
            let mut entity = vec![json!({
                "what": {"reference": format!("Patient/{patient}")},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            })];
            entity.extend(versions.iter().map(|(t, id, v)| {
                json!({
                    "what": {"reference": format!("{t}/{id}/_history/{v}")},
                    "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                    "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
                })
            }));
            entity.push(json!({
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                "description": format!("{} {}", e.method, e.url),
                "query": output::base64(format!("{} {}", e.method, e.url).as_bytes()),
            }));
            let server = server_reference(e);
            let mut agent = vec![
                json!({
                    "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
                    "who": server,
                    "requestor": false,
                    // The server's own address is in no log line.
                    "network": unknown(),
                }),
                json!({
                    "type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
                    "who": match &e.client_id {
                        Some(c) => json!({"identifier": {"value": c}, "display": c}),
                        None => json!({"display": "unknown client (no client id logged)"}),
                    },
                    "requestor": true,
                    "network": client_network(e.address.as_deref()),
                }),
            ];
            if let Some(user) = &e.user_id {
                agent.push(json!({
                    "type": {"coding": [{"system": SECURITY_ROLE, "code": "humanuser", "display": "human user"}]},
                    "who": {"identifier": {"value": user}, "display": user},
                    "requestor": true,
                }));
            }
            let mut event = json!({
                "resourceType": "AuditEvent",
                "id": name_uuid(&stable_export_name(e), patient),
                "meta": {"profile": [PROFILE]},
                "type": {"system": DCM, "code": "110106", "display": "Export"},
                "subtype": [{"system": LIFECYCLE, "code": "disclose", "display": "Disclose Record Lifecycle Event"}],
                "action": "R",
                "recorded": time.to_rfc3339(),
                "outcome": outcome.0,
                "agent": agent,
                "source": {"observer": server, "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}]},
                "entity": entity,
            });
            if let Some(desc) = &outcome.1 {
                event["outcomeDesc"] = json!(desc);
            }
            out.push(event);
        }
    }
    Ok(out)
}

/// The server, as both the source agent's `who` and `source.observer` (BALP's
/// `val-audit-source`): its box id (`tn`) and tenant where logged.
fn server_reference(e: &crate::rules::kickoff::ExportEvent) -> Value {
    let tenant = e.tenant.as_deref().map(|t| format!(", tenant {t}")).unwrap_or_default();
    match &e.box_id {
        Some(b) => json!({"identifier": {"value": b}, "display": format!("Aidbox box {b}{tenant}")}),
        None => json!({"display": format!("Aidbox{tenant}")}),
    }
}

/// An element BALP requires whose value no input holds: FHIR's data-absent-reason `unknown`.
fn unknown() -> Value {
    json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]})
}

/// The client's network address from `w_addr` (its first item: the rest are proxies), typed IP
/// address (2) when it is one, machine name (1) otherwise.
fn client_network(address: Option<&str>) -> Value {
    let Some(first) = address.and_then(|a| a.split(',').next()).map(str::trim).filter(|a| !a.is_empty()) else {
        return unknown();
    };
    let kind = if first.parse::<std::net::IpAddr>().is_ok() { "2" } else { "1" };
    json!({"address": first, "type": kind})
}

/// The R4 outcome code from the matched BulkExportStatus (the kickoff was accepted: an event is
/// written only for exports with rows): `0` success unless the status says the export failed.
fn outcome(status: Option<&str>) -> (&'static str, Option<String>) {
    match status {
        Some(s) if crate::rules::evidence::not_completed(s) => {
            ("8", Some(format!("the kickoff was accepted; the server's BulkExportStatus says {s}")))
        }
        Some(_) => ("0", None),
        None => ("0", Some("the kickoff was accepted; no BulkExportStatus was matched".into())),
    }
}

/// What names an export for its AuditEvent ids. A kickoff with a `ctx` is named by it; one
/// logged without has an id made of the log's path as given (`logs/x.ndjson:12`), which another
/// run may spell differently, so it is named by its time, method, URL and client instead.
fn stable_export_name(e: &crate::rules::kickoff::ExportEvent) -> String {
    if e.source != e.id {
        return e.id.clone();
    }
    let time = e.time.map(|t| t.to_rfc3339()).unwrap_or_default();
    format!("{time}\0{}\0{}\0{}", e.method, e.url, e.client_id.as_deref().unwrap_or(""))
}

/// A name-based UUID of (export id, patient id): RFC 9562 version 8 over SHA-256, so the same
/// export and patient always give the same AuditEvent id.
pub(super) fn name_uuid(export_id: &str, patient: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"bulk-audit AuditEvent\0");
    h.update(export_id.as_bytes());
    h.update(b"\0");
    h.update(patient.as_bytes());
    let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    let hex = crate::source::hex(&b);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_follows_the_matched_status() {
        assert_eq!(outcome(Some("completed")), ("0", None));
        assert_eq!(outcome(Some("failed")).0, "8");
        assert_eq!(outcome(Some("cancelled")).0, "8");
        assert_eq!(outcome(Some("canceled")).0, "8");
        let (code, desc) = outcome(None);
        assert_eq!(code, "0");
        assert!(desc.unwrap().contains("no BulkExportStatus"));
    }

    #[test]
    fn client_network_from_w_addr() {
        assert_eq!(
            client_network(Some("83.243.75.14, 35.244.249.127")),
            json!({"address": "83.243.75.14", "type": "2"})
        );
        assert_eq!(client_network(Some("client.example.org")), json!({"address": "client.example.org", "type": "1"}));
        assert_eq!(client_network(None), unknown());
    }

    #[test]
    fn ids_are_name_based_uuids() {
        let a = name_uuid("e2b9d4", "test-pt-1");
        assert_eq!(a, name_uuid("e2b9d4", "test-pt-1"));
        assert_ne!(a, name_uuid("e2b9d4", "test-pt-2"));
        assert_ne!(name_uuid("a", "bc"), name_uuid("ab", "c"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }
}
