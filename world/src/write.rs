//! A world on disk: the request logs, the history in the chosen form (`fhir`, or `mixed`: every
//! input form the audit reads), and `truth/expected_resources.csv`.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{json, Value};

use crate::compartment::parse_reference;
use crate::time::{aidbox_ts, kibana, rfc3339};
use crate::{GenResource, GenVersion, World, WorldFormat, MS};

fn private_writer(path: &Path) -> std::io::Result<BufWriter<File>> {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p)?;
    }
    Ok(BufWriter::with_capacity(1 << 20, File::create(path)?))
}

/// A writer that compresses by the file name: `.zst`, `.gz`, or plain.
fn sink(path: &Path) -> std::io::Result<Box<dyn Write>> {
    let w = private_writer(path)?;
    let name = path.to_string_lossy();
    Ok(if name.ends_with(".zst") {
        Box::new(zstd::stream::write::Encoder::new(w, 3)?.auto_finish())
    } else if name.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(w, flate2::Compression::fast()))
    } else {
        Box::new(w)
    })
}

fn with_meta(body: &str, txid: u64, time: i64) -> String {
    // `{"resourceType":…` → `{"meta":{…},"resourceType":…`
    format!("{{\"meta\":{{\"versionId\":\"{txid}\",\"lastUpdated\":\"{}\"}},{}", rfc3339(time), &body[1..])
}

fn delete_entry(r: &GenResource, v: &GenVersion) -> String {
    json!({"request": {"method": "DELETE", "url": format!("{}/{}/_history/{}", r.rtype, r.id, v.txid)},
           "response": {"status": "204", "lastModified": rfc3339(v.time)}})
    .to_string()
}

/// A version as an entry of a history Bundle: a PUT with the resource, or a DELETE.
fn bundle_entry(r: &GenResource, v: &GenVersion) -> Value {
    match &v.body {
        Some(b) => {
            let resource: Value = serde_json::from_str(&with_meta(b, v.txid, v.time)).unwrap_or(Value::Null);
            json!({"resource": resource, "request": {"method": "PUT", "url": format!("{}/{}", r.rtype, r.id)},
                   "response": {"status": "200", "lastModified": rfc3339(v.time)}})
        }
        None => serde_json::from_str(&delete_entry(r, v)).unwrap_or(Value::Null),
    }
}

/// Writes versions as resources with meta and deletions as DELETE entries, one per line;
/// returns the bytes written.
fn write_fhir_lines(path: &Path, resources: &[&GenResource]) -> std::io::Result<u64> {
    let mut w = sink(path)?;
    let mut bytes = 0;
    for r in resources {
        for v in &r.versions {
            let line = match &v.body {
                Some(b) => with_meta(b, v.txid, v.time),
                None => delete_entry(r, v),
            };
            bytes += line.len() as u64 + 1;
            writeln!(w, "{line}")?;
        }
    }
    Ok(bytes)
}

/// FHIR references → Aidbox's `{"resourceType", "id"}` form.
fn to_aidbox(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("reference") {
                if let Some((t, id)) = parse_reference(r) {
                    let (t, id) = (t.to_string(), id.to_string());
                    o.remove("reference");
                    o.insert("resourceType".into(), json!(t));
                    o.insert("id".into(), json!(id));
                    return;
                }
            }
            o.values_mut().for_each(to_aidbox);
        }
        Value::Array(a) => a.iter_mut().for_each(to_aidbox),
        _ => {}
    }
}

fn log_lines(world: &World) -> Vec<(i64, Value)> {
    let mut lines: Vec<(i64, Value)> = Vec::new();
    for (i, (t, method, url, client, status)) in world.noise.iter().enumerate() {
        let ctx = format!("n{i:06}");
        let m = method.to_lowercase();
        lines.push((*t, json!({"ev": "w/req", "ts": rfc3339(*t), "ctx": ctx, "w_m": m, "w_url": url})));
        lines.push((
            *t + 15 * MS,
            json!({"ev": "w/resp", "ts": rfc3339(*t + 15 * MS), "ctx": ctx, "w_m": m, "w_url": url, "w_st": status,
                   "w_cid": client}),
        ));
    }
    for k in &world.kickoffs {
        let m = k.method.to_lowercase();
        let mut req = json!({"ev": "w/req", "ts": rfc3339(k.time), "ctx": k.ctx, "w_m": m, "w_url": k.url});
        if let Some(q) = &k.qs {
            req["w_qs"] = json!(q);
        }
        let mut resp = json!({"ev": "w/resp", "ts": rfc3339(k.response), "ctx": k.ctx, "w_m": m, "w_url": k.url,
                              "w_st": k.status, "w_cid": k.client});
        if let Some(q) = &k.qs {
            resp["w_qs"] = json!(q);
        }
        lines.push((k.time, req));
        lines.push((k.response, resp));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1["ctx"].as_str().cmp(&b.1["ctx"].as_str())));
    lines
}

/// Writes the world under `dir` and returns the number of history bytes written (uncompressed).
pub fn write(world: &World, dir: &Path, format: WorldFormat) -> std::io::Result<u64> {
    let lines = log_lines(world);
    let mut by_type: BTreeMap<&str, Vec<&GenResource>> = BTreeMap::new();
    for r in &world.resources {
        by_type.entry(&r.rtype).or_default().push(r);
    }
    let history_bytes = match format {
        WorldFormat::Fhir => {
            let mut w = sink(&dir.join("logs/requests.ndjson"))?;
            for (_, l) in &lines {
                writeln!(w, "{l}")?;
            }
            let mut bytes = 0;
            for (t, list) in by_type {
                bytes += write_fhir_lines(&dir.join(format!("history/{t}.ndjson")), &list)?;
            }
            bytes
        }
        WorldFormat::Mixed => {
            write_mixed_logs(dir, &lines)?;
            write_mixed_history(dir, by_type)?
        }
    };
    let mut w = private_writer(&dir.join("truth/expected_resources.csv"))?;
    writeln!(w, "export_id,client_id,patient_id,resource_type,resource_id,version_id")?;
    for r in &world.truth {
        writeln!(w, "{}", r.join(","))?;
    }
    w.flush()?;
    Ok(history_bytes)
}

/// Logs of the mixed world: each request's lines in one of Aidbox NDJSON (`.zst`),
/// Elasticsearch hits (`.gz`) or a Kibana CSV.
fn write_mixed_logs(dir: &Path, lines: &[(i64, Value)]) -> std::io::Result<()> {
    let mut aidbox = sink(&dir.join("logs/aidbox/requests.ndjson.zst"))?;
    let mut es = sink(&dir.join("logs/elasticsearch/hits.ndjson.gz"))?;
    let mut kibana_csv = sink(&dir.join("logs/kibana/discover.csv"))?;
    writeln!(kibana_csv, "\"@timestamp\",ev,ctx,\"w_m\",\"w_url\",\"w_qs\",\"w_st\",\"w_cid\"")?;
    let mut ctx_slot: HashMap<String, usize> = HashMap::new();
    for (i, (t, l)) in lines.iter().enumerate() {
        let ctx = l["ctx"].as_str().unwrap_or_default().to_string();
        let n = ctx_slot.len();
        let slot = *ctx_slot.entry(ctx).or_insert(n % 4);
        match slot {
            0 | 1 => writeln!(aidbox, "{l}")?,
            2 => writeln!(es, "{}", json!({"_index": "aidbox-logs", "_id": format!("h{i}"), "_source": l}))?,
            _ => {
                let cell = |k: &str| match &l[k] {
                    Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
                    Value::Number(n) => n.to_string(),
                    _ => "-".into(),
                };
                writeln!(
                    kibana_csv,
                    "\"{}\",{},{},{},{},{},{},{}",
                    kibana(*t),
                    cell("ev"),
                    cell("ctx"),
                    cell("w_m"),
                    cell("w_url"),
                    cell("w_qs"),
                    cell("w_st"),
                    cell("w_cid")
                )?;
            }
        }
    }
    Ok(())
}

/// History of the mixed world: Aidbox rows (and a current table) for some types, history
/// Bundles for others, resources with meta for the rest. Returns the bytes written.
fn write_mixed_history(dir: &Path, by_type: BTreeMap<&str, Vec<&GenResource>>) -> std::io::Result<u64> {
    const ROWS: [&str; 8] =
        ["Patient", "Observation", "Encounter", "Claim", "Condition", "Organization", "Group", "Client"];
    const BUNDLES: [&str; 7] = [
        "DiagnosticReport",
        "MedicationRequest",
        "Procedure",
        "Immunization",
        "CarePlan",
        "CareTeam",
        "BulkExportStatus",
    ];
    let mut history_bytes = 0;
    for (t, list) in by_type {
        let lower = t.to_lowercase();
        if ROWS.contains(&t) {
            let mut w = sink(&dir.join(format!("history/aidbox/{lower}_history.ndjson.zst")))?;
            let mut current: Vec<String> = Vec::new();
            for r in &list {
                for (i, v) in r.versions.iter().enumerate() {
                    let status = if v.deleted {
                        "deleted"
                    } else if i == 0 {
                        "created"
                    } else if r.versions[i - 1].deleted {
                        "recreated"
                    } else {
                        "updated"
                    };
                    let mut body: Value = v
                        .body
                        .as_deref()
                        .map(|b| serde_json::from_str(b).unwrap_or(Value::Null))
                        .unwrap_or_else(|| json!({}));
                    if let Value::Object(o) = &mut body {
                        o.remove("resourceType");
                        o.remove("id");
                    }
                    to_aidbox(&mut body);
                    let ts = aidbox_ts(v.time);
                    let row =
                        json!({"id": r.id, "resource_type": t, "txid": v.txid, "ts": ts, "cts": ts, "status": status,
                                     "resource": body})
                        .to_string();
                    history_bytes += row.len() as u64 + 1;
                    writeln!(w, "{row}")?;
                    if i + 1 == r.versions.len() && !v.deleted && (t == "Patient" || t == "Observation") {
                        current.push(row);
                    }
                }
            }
            if !current.is_empty() {
                let mut w = sink(&dir.join(format!("history/aidbox/{lower}.ndjson.zst")))?;
                for row in current {
                    writeln!(w, "{row}")?;
                }
            }
        } else if BUNDLES.contains(&t) {
            let mut w = sink(&dir.join(format!("history/bundles/{t}.ndjson.gz")))?;
            for r in &list {
                let entries: Vec<Value> = r.versions.iter().rev().map(|v| bundle_entry(r, v)).collect();
                let line =
                    json!({"resourceType": "Bundle", "type": "history", "total": entries.len(), "entry": entries})
                        .to_string();
                history_bytes += line.len() as u64 + 1;
                writeln!(w, "{line}")?;
            }
        } else {
            history_bytes += write_fhir_lines(&dir.join(format!("history/fhir/{t}.ndjson")), &list)?;
        }
    }
    Ok(history_bytes)
}
