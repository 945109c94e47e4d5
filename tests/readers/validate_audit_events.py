"""Checks bulk-audit's AuditEvents (auditevents.ndjson, auditevents-bundle.json) against an
independent FHIR R4 model (fhir.resources 6.4.0, FHIR 4.0.1), IHE BALP's "Privacy Disclosure at
Source" profile field by field (its fixed values, slices and the val-audit-source invariant, as
written in the IG's input/fsh/Disclose.fsh), and the audit's own resources.csv: one event per
(export, patient) with rows, naming exactly that pair's resource versions.

Usage: validate_audit_events.py OUT_DIR. Prints one line and exits 0, or prints the first
problem and exits 1. Run by tests/all/readers.rs.
"""

import base64
import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from fhir.resources import __fhir_version__
from fhir.resources.auditevent import AuditEvent
from fhir.resources.bundle import Bundle

PROFILE = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PrivacyDisclosure.Source"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def fail(message):
    print(message)
    sys.exit(1)


def check_profile(e):
    """BALP PrivacyDisclosure.Source, rule by rule."""
    where = e.get("id")
    want = lambda ok, rule: ok or fail(f"AuditEvent {where}: {rule}")
    want(e.get("meta", {}).get("profile") == [PROFILE], "meta.profile names the BALP profile")
    want("modifierExtension" not in e, "modifierExtension 0..0")
    want(e.get("type", {}).get("system") == DCM and e["type"].get("code") == "110106", "type = DCM#110106")
    want(
        any(s.get("system") == "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle" and s.get("code") == "disclose" for s in e.get("subtype", [])),
        "subtype contains iso-21089-lifecycle#disclose",
    )
    want(e.get("action") == "R", "action = #R")
    want(bool(e.get("recorded")), "recorded 1..1")
    want(e.get("outcome") in ("0", "4", "8", "12"), "outcome 1..1, an R4 outcome code")
    agents = e.get("agent", [])
    want(len(agents) >= 2, "agent 2..*")
    by_code = defaultdict(list)
    for a in agents:
        for c in a.get("type", {}).get("coding", []):
            by_code[(c.get("system"), c.get("code"))].append(a)
        want("requestor" in a, "agent.requestor 1..1 (R4)")
    for code, name in (("110153", "source"), ("110152", "recipient")):
        slice_ = by_code[(DCM, code)]
        want(len(slice_) == 1, f"agent[{name}] 1..1 (type DCM#{code})")
        want(bool(slice_[0].get("who")), f"agent[{name}].who 1..1")
        want(bool(slice_[0].get("network")), f"agent[{name}].network 1..1")
    want(by_code[(DCM, "110153")][0]["who"] == e.get("source", {}).get("observer"), "val-audit-source: agent[source].who = source.observer")
    entities = e.get("entity", [])
    want(len(entities) >= 2, "entity 2..*")
    patients = [x for x in entities if x.get("type", {}).get("code") == "1" and x["type"].get("system") == "http://terminology.hl7.org/CodeSystem/audit-entity-type"]
    want(len(patients) == 1, "entity[patient] 1..1 (type audit-entity-type#1)")
    p = patients[0]
    want(p.get("role", {}).get("system") == "http://terminology.hl7.org/CodeSystem/object-role" and p["role"].get("code") == "1", "entity[patient].role = object-role#1")
    want(p.get("what", {}).get("reference", "").startswith("Patient/"), "entity[patient].what only Reference(Patient)")


def main():
    out = Path(sys.argv[1])
    events = [json.loads(line) for line in (out / "auditevents.ndjson").read_text(encoding="utf-8").splitlines()]
    bundle = json.loads((out / "auditevents-bundle.json").read_text(encoding="utf-8"))
    if __fhir_version__ != "4.0.1":
        fail(f"the validator's models are FHIR {__fhir_version__}, not R4")
    for e in events:
        AuditEvent.parse_obj(e)  # raises on anything R4 does not allow
        check_profile(e)
        if not UUID.match(e["id"]):
            fail(f"AuditEvent id {e['id']} is not a UUID")
    Bundle.parse_obj(bundle)
    if bundle.get("type") != "transaction":
        fail("the Bundle is not a transaction")
    entries = bundle.get("entry", [])
    if [x["resource"] for x in entries] != events:
        fail("the Bundle's resources differ from auditevents.ndjson")
    for x in entries:
        if x.get("request") != {"method": "PUT", "url": f"AuditEvent/{x['resource']['id']}"}:
            fail(f"entry {x['resource']['id']}: request is not PUT AuditEvent/{{id}}")
    if len({e["id"] for e in events}) != len(events):
        fail("two AuditEvents share an id")

    # Against the audit's own table: one event per (export, patient) with rows, naming the
    # versions of exactly those rows, recorded at the export's time, by its client.
    with open(out / "resources.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(out / "exports.csv", newline="", encoding="utf-8") as f:
        exports = {x["export_id"]: x for x in csv.DictReader(f)}
    expected = defaultdict(set)
    for r in rows:
        if r["patient_id"]:
            expected[(r["export_id"], r["patient_id"])].add(f"{r['resource_type']}/{r['resource_id']}/_history/{r['version_id']}")
    found = {}
    for e in events:
        patient = next(x for x in e["entity"] if x["type"]["code"] == "1")["what"]["reference"].removeprefix("Patient/")
        query = next(x for x in e["entity"] if x.get("role", {}).get("code") == "24")
        method, url = base64.b64decode(query["query"]).decode("utf-8").split(" ", 1)
        export = next((x for x in exports.values() if x["url"] == url and x["method"] == method and x["export_time"] == e["recorded"]), None)
        if export is None:
            fail(f"AuditEvent {e['id']}: no export {method} {url} at {e['recorded']}")
        recipient = next(a for a in e["agent"] if a["type"]["coding"][0]["code"] == "110152")
        if export["client_id"] and recipient["who"].get("identifier", {}).get("value") != export["client_id"]:
            fail(f"AuditEvent {e['id']}: recipient is not client {export['client_id']}")
        versions = {x["what"]["reference"] for x in e["entity"] if x.get("role", {}).get("code") == "4"}
        found[(export["export_id"], patient)] = versions
    if found != dict(expected):
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        fail(f"events differ from resources.csv: missing {missing[:3]}, extra {extra[:3]}, or other versions")
    print(f"{len(events)} AuditEvents valid: FHIR {__fhir_version__} model, BALP PrivacyDisclosure.Source rules, resources.csv")


if __name__ == "__main__":
    main()
