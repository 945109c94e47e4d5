//! Export events: which requests are `$export` kickoffs (group, patient or system level, behind
//! any prefix, `$` possibly written `%24`), whether the server accepted them, and their parameters.

use crate::error::{Error, Result};
use crate::logs::Request;
use crate::timestamp::{self, Instant, Stamp, TimeError, Zone};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    Group,
    Patient,
    System,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Group => "group",
            Level::Patient => "patient",
            Level::System => "system",
        }
    }
}

/// The `$export` parameters of one kickoff, URL-decoded.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct ExportParams {
    /// `_type`, merged over repeats; `None` when not given.
    pub(crate) types: Option<Vec<String>>,
    pub(crate) since: Option<Instant>,
    pub(crate) until: Option<Instant>,
    pub(crate) since_text: Option<String>,
    pub(crate) until_text: Option<String>,
    /// `patient` ids (a `Patient/` prefix removed).
    pub(crate) patients: Vec<String>,
    pub(crate) type_filter: Vec<String>,
    pub(crate) elements: Vec<String>,
    pub(crate) output_format: Option<String>,
    /// Parameters this tool does not interpret (names only).
    pub(crate) other: Vec<String>,
    /// Parameters whose values could not be read (name and reason).
    pub(crate) invalid: Vec<(String, String)>,
    /// A POST kickoff whose body Aidbox did not log: its parameters are the query's alone.
    pub(crate) body_not_logged: bool,
}

/// A kickoff request found in the logs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ExportEvent {
    pub(crate) id: String,
    pub(crate) client_id: Option<String>,
    pub(crate) user_id: Option<String>,
    /// The client's address (`w_addr`) and the server's box id (`tn`), where logged.
    pub(crate) address: Option<String>,
    pub(crate) box_id: Option<String>,
    /// T. A kickoff without any timestamp cannot be resolved.
    pub(crate) time: Option<Instant>,
    /// T as written: its unit (a whole-second log means some instant of that second).
    pub(crate) stamp: Option<Stamp>,
    /// The `w/resp` line's time, as written.
    pub(crate) response: Option<Stamp>,
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) status: Option<u16>,
    pub(crate) accepted: bool,
    pub(crate) level: Level,
    pub(crate) tenant: Option<String>,
    /// The organization of an `/Organization/{org}/fhir/…` kickoff (organization-based access
    /// control, not applied).
    pub(crate) organization: Option<String>,
    pub(crate) group_id: Option<String>,
    pub(crate) params: ExportParams,
    pub(crate) source: String,
    /// The path names `$export` but is none of the three kickoff forms (resolved at system level).
    #[serde(default)]
    pub(crate) path_unrecognized: bool,
    /// The logs hold no method for it.
    #[serde(default)]
    pub(crate) method_not_logged: bool,
    /// Its lines carry neither `ctx` nor `ev` (paired by URL and client, or alone).
    #[serde(default)]
    pub(crate) lines_unpaired: bool,
}

impl ExportEvent {
    /// Its local time occurs twice in `--tz` (the clocks went back).
    pub(crate) fn time_ambiguous(&self) -> bool {
        self.stamp.is_some_and(|s| s.ambiguous)
    }
}

impl ExportEvent {
    /// The end of the kickoff request: the end of the unit its response time was written in,
    /// else of T's own unit.
    pub(crate) fn request_end(&self) -> Option<Instant> {
        let t = self.stamp?;
        Some(match self.response {
            Some(r) if r.at >= t.at => r.end(),
            _ => t.end(),
        })
    }
}

/// Classifies a URL path (query string removed): `Some((level, group id))` for a kickoff path.
#[cfg(test)]
fn classify_path(path: &str) -> Option<(Level, Option<String>)> {
    classify(path).map(|(level, group, _)| (level, group))
}

/// As [`classify_path`], and whether the path is one of the three kickoff forms. A path that
/// names `$export` otherwise — a `Group` or `Patient` segment not in its form, or a resource
/// type right before `$export` — is a system-level kickoff (the widest it could mean), marked
/// unrecognized.
fn classify(path: &str) -> Option<(Level, Option<String>, bool)> {
    let decoded = percent_decode(path, false);
    let trimmed = decoded.trim_end_matches('/');
    let segments: Vec<&str> = trimmed.split('/').collect();
    let n = segments.len();
    if n < 2 || segments[n - 1] != "$export" {
        return None;
    }
    if n >= 3 && segments[n - 3] == "Group" && !segments[n - 2].is_empty() {
        return Some((Level::Group, Some(segments[n - 2].to_string()), true));
    }
    if segments[n - 2] == "Patient" {
        return Some((Level::Patient, None, true));
    }
    // What stands before a system `$export` is a prefix (`/fhir`, `/tenant/t/bulk-api`,
    // `/Organization/o/fhir`): a Group or Patient segment, or a resource type just before
    // `$export`, means some other form.
    let typed =
        |s: &str| s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric());
    let odd = segments[..n - 1].iter().any(|s| *s == "Group" || *s == "Patient")
        || segments[n - 2].is_empty() && n > 2
        || typed(segments[n - 2]);
    Some((Level::System, None, !odd))
}

/// The tenant of a `/tenant/{t}/…` path.
pub(crate) fn tenant_of(path: &str) -> Option<String> {
    segment_after(path, "tenant")
}

/// The organization of an `/Organization/{org}/fhir/…` path (a Group or system kickoff behind it).
fn organization_of(path: &str) -> Option<String> {
    segment_after(path, "Organization").filter(|_| path.contains("/fhir/"))
}

/// The path segment after the first `name` segment.
fn segment_after(path: &str, name: &str) -> Option<String> {
    let segs: Vec<&str> = path.split('/').collect();
    segs.windows(2).find(|w| w[0] == name && !w[1].is_empty()).map(|w| percent_decode(w[1], false))
}

/// Finds the kickoffs among the requests. A `_since`/`_until` without an offset, read without
/// `--tz`, stops the run naming the kickoff's line.
pub(crate) fn find(requests: &[Request], zone: &Zone) -> Result<Vec<ExportEvent>> {
    let mut out = Vec::new();
    for r in requests {
        let Some(url) = &r.url else { continue };
        let method = r.method.clone().unwrap_or_default().to_ascii_lowercase();
        // Without a method column every request naming `$export` is taken (a cancel would be a
        // DELETE of the status URL, which is not a kickoff path anyway), with a finding.
        let method_not_logged = r.method.is_none();
        if method != "get" && method != "post" && !method_not_logged {
            continue;
        }
        let (path, url_query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (url.as_str(), None),
        };
        let Some((level, group_id, recognized)) = classify(path) else { continue };
        let mut query = String::new();
        for q in [url_query, r.query.as_deref()].into_iter().flatten() {
            let q = q.trim_start_matches('?');
            if q.is_empty() {
                continue;
            }
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(q);
        }
        let mut pairs = query_pairs(&query);
        let posted = method == "post";
        if posted {
            if let Some(body) = &r.body {
                pairs.extend(body_pairs(body));
            }
        }
        let mut params = params_of(pairs, zone).map_err(|_| Error::NeedsZone { place: r.source.clone() })?;
        params.body_not_logged = posted && r.body.is_none();
        let accepted = !matches!(r.status, Some(s) if s >= 400);
        let full_url = match (url_query, r.query.as_deref()) {
            (None, Some(q)) if !q.is_empty() => format!("{url}?{}", q.trim_start_matches('?')),
            _ => url.clone(),
        };
        out.push(ExportEvent {
            id: r.id.clone(),
            client_id: r.client_id.clone(),
            user_id: r.user_id.clone(),
            address: r.address.clone(),
            box_id: r.box_id.clone(),
            time: r.time.map(|s| s.at),
            stamp: r.time,
            response: r.response,
            method: method.to_ascii_uppercase(),
            url: full_url,
            status: r.status,
            accepted,
            level,
            // Only the path names a Smartbox tenant: a log line's `tn` is Aidbox's box id.
            tenant: tenant_of(path),
            organization: organization_of(path),
            group_id,
            params,
            source: r.source.clone(),
            path_unrecognized: !recognized,
            method_not_logged,
            lines_unpaired: r.lines_unpaired,
        });
    }
    out.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    Ok(out)
}

/// A query string's parameters, URL-decoded.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The parameters of a logged POST body: a FHIR `Parameters` resource (`parameter[]` with a
/// `name` and a `valueString`, `valueInstant`, `valueDateTime`, `valueCode`, `valueReference`, …),
/// a flat JSON object (a form Aidbox logged as JSON), or a form-encoded string.
fn body_pairs(body: &str) -> Vec<(String, String)> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Object(o) => o.get("reference").and_then(|r| r.as_str()).map(String::from),
        _ => None,
    };
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(obj))
            if obj.get("resourceType").and_then(|t| t.as_str()) == Some("Parameters") =>
        {
            obj.get("parameter")
                .and_then(|p| p.as_array())
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let name = p.get("name")?.as_str()?.to_string();
                    let value =
                        p.as_object()?.iter().find(|(k, _)| k.starts_with("value")).and_then(|(_, v)| text(v))?;
                    Some((name, value))
                })
                .collect()
        }
        Ok(serde_json::Value::Object(obj)) => obj
            .iter()
            .flat_map(|(k, v)| match v {
                serde_json::Value::Array(items) => items.iter().filter_map(text).map(|t| (k.clone(), t)).collect(),
                other => text(other).map(|t| vec![(k.clone(), t)]).unwrap_or_default(),
            })
            .collect(),
        _ => query_pairs(body.trim()),
    }
}

/// Parses a query string into export parameters; `Err` for a time without an offset read
/// without `--tz`.
#[cfg(test)]
pub(crate) fn parse_params(query: &str, zone: &Zone) -> std::result::Result<ExportParams, TimeError> {
    params_of(query_pairs(query), zone)
}

/// The export parameters of decoded (name, value) pairs.
fn params_of(pairs: Vec<(String, String)>, zone: &Zone) -> std::result::Result<ExportParams, TimeError> {
    let mut p = ExportParams::default();
    for (k, v) in pairs {
        let list = || v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from);
        match k.as_str() {
            "_type" => p.types.get_or_insert_with(Vec::new).extend(list()),
            "patient" => p.patients.extend(list().map(|s| patient_id_of(&s))),
            "_typeFilter" => p.type_filter.push(v.clone()),
            "_elements" => p.elements.extend(list()),
            "_outputFormat" => p.output_format = Some(v.clone()),
            "_since" | "_until" => match timestamp::parse(&v, zone) {
                Ok(t) => {
                    let (slot, text) = if k == "_since" {
                        (&mut p.since, &mut p.since_text)
                    } else {
                        (&mut p.until, &mut p.until_text)
                    };
                    *slot = Some(t);
                    *text = Some(v.clone());
                }
                Err(TimeError::NoZone) => return Err(TimeError::NoZone),
                Err(e) => p.invalid.push((k.clone(), e.to_string())),
            },
            _ => p.other.push(k.clone()),
        }
    }
    if let Some(types) = &mut p.types {
        let mut seen = std::collections::HashSet::new();
        types.retain(|t| seen.insert(t.clone()));
    }
    Ok(p)
}

/// `Patient/p`, `…/Patient/p` or `p` → `p`.
fn patient_id_of(s: &str) -> String {
    match s.rsplit_once("Patient/") {
        Some((_, id)) => id.split('/').next().unwrap_or(id).to_string(),
        None => s.to_string(),
    }
}

/// Decodes `%XX` escapes (and `+` as space in query strings). Invalid escapes stay as written.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kickoff_paths() {
        assert_eq!(
            classify_path("/tenant/my-clinic/bulk-api/Group/test-group-1/$export"),
            Some((Level::Group, Some("test-group-1".into())))
        );
        assert_eq!(classify_path("/fhir/Group/g1/%24export"), Some((Level::Group, Some("g1".into()))));
        assert_eq!(classify_path("/Organization/o/fhir/Patient/$export"), Some((Level::Patient, None)));
        assert_eq!(classify_path("/fhir/$export"), Some((Level::System, None)));
        assert_eq!(classify_path("/$export"), Some((Level::System, None)));
        assert_eq!(classify_path("/fhir/$export-status/123"), None);
        assert_eq!(classify_path("/fhir/$export-status"), None);
        // Paths that name $export but are none of the three forms: system level, unrecognized.
        for odd in ["/Group/g/extra/$export", "/Patient/p/$export", "/Group//$export", "/fhir/Observation/$export"] {
            assert_eq!(classify(odd), Some((Level::System, None, false)), "{odd}");
        }
        for fine in ["/fhir/$export", "/tenant/t/bulk-api/$export", "/Organization/o/fhir/$export", "/$export"] {
            assert_eq!(classify(fine), Some((Level::System, None, true)), "{fine}");
        }
        assert_eq!(classify_path("/bulkstatus/abc"), None);
        assert_eq!(classify_path("/fhir/Patient/p1"), None);
        assert_eq!(tenant_of("/tenant/my-clinic/bulk-api/Group/g/$export").as_deref(), Some("my-clinic"));
    }

    #[test]
    fn params_are_decoded_and_merged() {
        let p = parse_params("_type=Observation,Patient&_type=Condition%2CObservation&_since=2022-01-01T00%3A00%3A00Z&patient=Patient%2Fp1,p2&_typeFilter=Observation%3Fcode%3Dx&_elements=id&foo=1", &Zone::UTC).unwrap();
        assert_eq!(p.types.unwrap(), vec!["Observation", "Patient", "Condition"]);
        assert_eq!(p.since.unwrap().to_rfc3339(), "2022-01-01T00:00:00Z");
        assert_eq!(p.patients, vec!["p1", "p2"]);
        assert_eq!(p.type_filter, vec!["Observation?code=x"]);
        assert_eq!(p.elements, vec!["id"]);
        assert_eq!(p.other, vec!["foo"]);
        let bad = parse_params("_since=last+week", &Zone::UTC).unwrap();
        assert_eq!(parse_params("_since=2022-01-01T00:00:00", &Zone::NONE).unwrap_err(), TimeError::NoZone);
        assert_eq!(bad.invalid.len(), 1);
        assert!(bad.since.is_none());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%24b%2", false), "a$b%2");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("a+b", false), "a+b");
    }
}
