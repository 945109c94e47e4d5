//! The fields of Group, Client and BulkExportStatus versions that the rules read (members,
//! scopes, export status), from a `serde_json::Value` of the body or of its captured fields.

use chrono_tz::Tz;
use serde_json::Value;

use crate::rules::compartment;
use crate::timestamp;
use crate::version::{Detail, Member, StatusDetail};

/// The top-level fields a detail is read from (besides `status`, which every history form has
/// as a field of its own): captured by the fast path, read here.
pub(crate) const DETAIL_FIELDS: [&str; 6] = ["member", "scope", "requester", "transactionTime", "params", "output"];

pub(crate) fn detail_of(resource_type: &str, body: &Value, zone: &Tz) -> Option<Detail> {
    match resource_type {
        "Group" => Some(Detail::Group { members: members_of(body, zone) }),
        "Client" => Some(Detail::Client { scopes: scopes_of(body) }),
        "BulkExportStatus" => Some(Detail::Status(status_of(body, zone))),
        _ => None,
    }
}

fn members_of(body: &Value, zone: &Tz) -> Vec<Member> {
    let Some(Value::Array(list)) = body.get("member") else { return Vec::new() };
    list.iter()
        .map(|m| {
            let time = |k: &str| {
                m.get("period")
                    .and_then(|p| p.get(k))
                    .and_then(Value::as_str)
                    .and_then(|s| timestamp::parse(s, zone).ok())
            };
            Member {
                entity: m.get("entity").and_then(compartment::reference_of_node),
                inactive: m.get("inactive").and_then(Value::as_bool).unwrap_or(false),
                period_start: time("start"),
                period_end: time("end"),
            }
        })
        .collect()
}

fn scopes_of(body: &Value) -> std::result::Result<Vec<String>, String> {
    match body.get("scope") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split_whitespace().map(String::from).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(String::from).ok_or_else(|| "scope array holds a non-string".to_string()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(|v| v.iter().flat_map(|s| s.split_whitespace().map(String::from)).collect()),
        Some(other) => Err(format!(
            "scope is {}",
            if other.is_number() {
                "a number"
            } else if other.is_object() {
                "an object"
            } else {
                "a boolean"
            }
        )),
    }
}

fn status_of(body: &Value, zone: &Tz) -> StatusDetail {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
    let requester = body.get("requester").and_then(|r| match r {
        Value::String(s) => {
            Some(compartment::parse_reference(s).map(|(_, i)| i.to_string()).unwrap_or_else(|| s.clone()))
        }
        _ => compartment::reference_of_node(r).map(|(_, i)| i).or_else(|| s(r.get("id"))),
    });
    let params = body.get("params");
    let group_id = params
        .and_then(|p| p.get("group-id").or_else(|| p.get("groupId")).or_else(|| p.get("group")))
        .and_then(|g| match g {
            Value::String(s) => {
                Some(compartment::parse_reference(s).map(|(_, i)| i.to_string()).unwrap_or_else(|| s.clone()))
            }
            other => compartment::reference_of_node(other).map(|(_, i)| i),
        });
    let types = match params.and_then(|p| p.get("types").or_else(|| p.get("_type"))) {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        Some(Value::String(s)) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
        _ => Vec::new(),
    };
    let mut counts: Vec<(String, u64)> = Vec::new();
    if let Some(Value::Array(out)) = body.get("output") {
        for o in out {
            if let Some(t) = o.get("type").and_then(Value::as_str) {
                let c = o
                    .get("count")
                    .and_then(|c| c.as_u64().or_else(|| c.as_str().and_then(|s| s.parse().ok())))
                    .unwrap_or(0);
                match counts.iter_mut().find(|(k, _)| k == t) {
                    Some((_, n)) => *n += c,
                    None => counts.push((t.to_string(), c)),
                }
            }
        }
    }
    counts.sort();
    StatusDetail {
        requester,
        transaction_time: s(body.get("transactionTime")).and_then(|t| timestamp::parse(&t, zone).ok()),
        status: s(body.get("status")),
        group_id,
        types,
        since: s(params.and_then(|p| p.get("since").or_else(|| p.get("_since")))),
        counts,
    }
}
