//! The fields of Group, Client, AccessPolicy and BulkExportStatus versions that the rules read
//! (members, scopes, links, export status), from a `serde_json::Value` of the body or of its
//! captured fields.

use serde_json::Value;

use super::messages::Unreadable;
use crate::fhir::compartment;
use crate::timestamp::{self, Instant, TimeError, Zone};
use crate::version::{ClientScopes, Detail, Member, StatusDetail};

/// The top-level fields a detail is read from (besides `status`, which every history form has
/// as a field of its own): captured by the fast path, read here.
pub(crate) const DETAIL_FIELDS: [&str; 10] =
    ["member", "scope", "link", "requester", "transactionTime", "params", "output", "name", "description", "smart"];

/// The types whose versions carry a detail.
pub(crate) const DETAIL_TYPES: [&str; 4] = ["Group", "Client", "AccessPolicy", "BulkExportStatus"];

/// The detail of a version of one of those types. A time the rules read that has no offset and
/// no `--tz` stops the run; any other unreadable time is left out (the member counts as active,
/// the status as unmatched), as before.
pub(crate) fn detail_of(resource_type: &str, body: &Value, zone: &Zone) -> Result<Option<Detail>, Unreadable> {
    Ok(match resource_type {
        "Group" => Some(Detail::Group { members: members_of(body, zone)? }),
        "Client" => Some(Detail::Client { scopes: scopes_of(body), label: client_label(body) }),
        "AccessPolicy" => Some(Detail::AccessPolicy { links: links_of(body) }),
        "BulkExportStatus" => Some(Detail::Status(status_of(body, zone)?)),
        _ => None,
    })
}

/// A time the rules read: `None` when absent or unreadable; an error only without `--tz`.
fn time_of(v: Option<&Value>, zone: &Zone) -> Result<Option<Instant>, Unreadable> {
    match v.and_then(Value::as_str).map(|s| timestamp::parse(s, zone)) {
        Some(Ok(t)) => Ok(Some(t)),
        Some(Err(TimeError::NoZone)) => Err(Unreadable::NoZone),
        Some(Err(TimeError::Unreadable(_))) | None => Ok(None),
    }
}

/// The first and last instant of a FHIR `dateTime` as a Period bound: a year (`2022`), a month
/// (`2022-06`) or a day (`2022-06-10`) is that whole unit in `--tz`; a time, its unit. `None` when
/// absent or unreadable; an error only without `--tz`.
fn period_bound(v: Option<&Value>, zone: &Zone) -> Result<Option<(Instant, Instant)>, Unreadable> {
    let Some(text) = v.and_then(Value::as_str).map(str::trim) else { return Ok(None) };
    let day = |y: i64, m: u32| timestamp::parse_stamp(&format!("{y:04}-{m:02}-01"), zone).map(|s| s.at);
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let span = match b.len() {
        4 if digits(0..4) => {
            let y: i64 = text.parse().unwrap_or(0);
            day(y, 1).and_then(|first| day(y + 1, 1).map(|next| (first, Instant(next.0 - 1))))
        }
        7 if digits(0..4) && b[4] == b'-' && digits(5..7) => {
            let (y, m): (i64, u32) = (text[..4].parse().unwrap_or(0), text[5..].parse().unwrap_or(0));
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            day(y, m).and_then(|first| day(ny, nm).map(|next| (first, Instant(next.0 - 1))))
        }
        _ => timestamp::parse_stamp(text, zone).map(|s| (s.at, s.end())),
    };
    match span {
        Ok(span) => Ok(Some(span)),
        Err(TimeError::NoZone) => Err(Unreadable::NoZone),
        Err(TimeError::Unreadable(_)) => Ok(None),
    }
}

fn members_of(body: &Value, zone: &Zone) -> Result<Vec<Member>, Unreadable> {
    let Some(Value::Array(list)) = body.get("member") else { return Ok(Vec::new()) };
    list.iter()
        .map(|m| {
            // A FHIR Period: a start or end given to the day, month or year covers that whole
            // unit ("the end value includes any matching date/time"): the start is the unit's
            // first instant, the end its last.
            let period = |k: &str| period_bound(m.get("period").and_then(|p| p.get(k)), zone);
            Ok(Member {
                entity: m.get("entity").and_then(compartment::reference_of_node),
                inactive: m.get("inactive").and_then(Value::as_bool).unwrap_or(false),
                period_start: period("start")?.map(|(first, _)| first),
                period_end: period("end")?.map(|(_, last)| last),
            })
        })
        .collect()
}

/// `name`, `description` and `smart.name`, those that are text, joined by " — ".
fn client_label(body: &Value) -> String {
    let parts = [&body["name"], &body["description"], &body["smart"]["name"]];
    let texts: Vec<&str> = parts.iter().filter_map(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty()).collect();
    texts.join(" — ")
}

fn scopes_of(body: &Value) -> ClientScopes {
    match body.get("scope") {
        // Basic-auth Clients whose access an AccessPolicy grants have none.
        None | Some(Value::Null) => ClientScopes::Missing,
        Some(Value::String(s)) => ClientScopes::Granted(s.split_whitespace().map(String::from).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().ok_or("scope array holds a non-string"))
            .collect::<Result<Vec<&str>, _>>()
            .map(|v| ClientScopes::Granted(v.iter().flat_map(|s| s.split_whitespace().map(String::from)).collect()))
            .unwrap_or_else(|what| ClientScopes::Unreadable(what.to_string())),
        Some(other) => ClientScopes::Unreadable(format!(
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

/// An AccessPolicy's `link[]`: the resources it applies to (`{"id", "resourceType"}` or
/// `{"reference": "Client/x"}`).
fn links_of(body: &Value) -> Vec<(String, String)> {
    match body.get("link") {
        Some(Value::Array(list)) => list.iter().filter_map(compartment::reference_of_node).collect(),
        _ => Vec::new(),
    }
}

fn status_of(body: &Value, zone: &Zone) -> Result<StatusDetail, Unreadable> {
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
    Ok(StatusDetail {
        requester,
        transaction_time: time_of(body.get("transactionTime"), zone)?,
        status: s(body.get("status")),
        group_id,
        types,
        since: s(params.and_then(|p| p.get("since").or_else(|| p.get("_since")))),
        counts,
        output_recorded: matches!(body.get("output"), Some(Value::Array(_))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_bound_covers_the_unit_it_is_written_in() {
        let zone = Zone::given(timestamp::parse_zone("UTC").unwrap());
        let bound = |t: &str| {
            let (a, b) = period_bound(Some(&Value::String(t.into())), &zone).unwrap().unwrap();
            (a.to_rfc3339(), b.to_rfc3339())
        };
        let day = ("2022-06-10T00:00:00Z".to_string(), "2022-06-10T23:59:59.999999999Z".to_string());
        assert_eq!(bound("2022-06-10"), day);
        assert_eq!(bound("2022-06"), ("2022-06-01T00:00:00Z".into(), "2022-06-30T23:59:59.999999999Z".into()));
        assert_eq!(bound("2022-12"), ("2022-12-01T00:00:00Z".into(), "2022-12-31T23:59:59.999999999Z".into()));
        assert_eq!(bound("2022"), ("2022-01-01T00:00:00Z".into(), "2022-12-31T23:59:59.999999999Z".into()));
        assert_eq!(
            bound("2022-06-10T12:00:00Z"),
            ("2022-06-10T12:00:00Z".into(), "2022-06-10T12:00:00.999999999Z".into())
        );
    }
}
