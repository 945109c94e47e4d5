//! SMART scopes: which resource types a Client's scopes grant reading (SMART v1 `read`/`*`, v2
//! in-order subsets of `cruds` with `r` or `s`), with `*` expanded through the `--wildcard` table.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};

/// The 18 types Aidbox documents for `system/*.read` in Smartbox.
pub(crate) const SMARTBOX_TYPES: [&str; 18] = [
    "Patient",
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Goal",
    "Encounter",
    "Immunization",
    "MedicationRequest",
    "Observation",
    "Procedure",
    "Provenance",
    "Practitioner",
    "Organization",
    "Location",
];

/// How `*` in a scope expands (`--wildcard`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Wildcard {
    Smartbox,
    /// Smartbox's types plus Group.
    Aidbox,
    /// Every FHIR resource type of `--fhir-version`.
    All,
    /// Types listed in a file, read when the command line is checked.
    File {
        path: String,
        types: Vec<String>,
    },
}

impl Wildcard {
    /// `smartbox`, `aidbox`, `all`, or a file listing types (one per line, or separated by
    /// commas/spaces; `#` comments), read now.
    pub(crate) fn parse(s: &str) -> Result<Wildcard> {
        Ok(match s {
            "smartbox" => Wildcard::Smartbox,
            "aidbox" => Wildcard::Aidbox,
            "all" => Wildcard::All,
            path => {
                let text = std::fs::read_to_string(Path::new(path)).map_err(|e| {
                    Error::Usage(format!(
                        "--wildcard {path}: not smartbox, aidbox or all, and not a readable file of types ({e})"
                    ))
                })?;
                let types: Vec<String> = text
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or(""))
                    .flat_map(|l| l.split([',', ' ', '\t']))
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                if let Some(bad) = types.iter().find(|t| {
                    !t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                        || !t.chars().all(|c| c.is_ascii_alphanumeric())
                }) {
                    return Err(Error::Usage(format!("--wildcard {path}: {bad:?} is not a resource type name")));
                }
                Wildcard::File { path: path.to_string(), types }
            }
        })
    }

    pub(crate) fn name(&self) -> String {
        match self {
            Wildcard::Smartbox => "smartbox".into(),
            Wildcard::Aidbox => "aidbox".into(),
            Wildcard::All => "all".into(),
            Wildcard::File { path, .. } => path.clone(),
        }
    }

    /// The types `*` stands for; `fhir_types` are those of `--fhir-version`.
    pub(crate) fn expand(&self, fhir_types: &[String]) -> Vec<String> {
        match self {
            Wildcard::Smartbox => SMARTBOX_TYPES.iter().map(|s| s.to_string()).collect(),
            Wildcard::Aidbox => SMARTBOX_TYPES.iter().map(|s| s.to_string()).chain(["Group".to_string()]).collect(),
            Wildcard::All => fhir_types.to_vec(),
            Wildcard::File { types, .. } => types.clone(),
        }
    }
}

/// What a Client's scopes grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) allowed_types: BTreeSet<String>,
    /// Scopes with a `?query` (granted, but the query is not applied).
    pub(crate) query_scopes: Vec<String>,
}

/// Parses one scope: `Some((type or "*", query))` when it grants reading.
pub(crate) fn reading_scope(scope: &str) -> Option<(&str, Option<&str>)> {
    let (context, rest) = scope.split_once('/')?;
    if !matches!(context, "patient" | "user" | "system") {
        return None;
    }
    let (resource, rest) = rest.split_once('.')?;
    let (perm, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let type_ok = resource == "*"
        || (resource.chars().next()?.is_ascii_uppercase() && resource.chars().all(|c| c.is_ascii_alphanumeric()));
    if !type_ok || !grants_read(perm) {
        return None;
    }
    Some((resource, query))
}

/// SMART v1 `read` or `*`; SMART v2: an in-order subset of `cruds` containing `r` or `s`.
pub(crate) fn grants_read(perm: &str) -> bool {
    if perm == "read" || perm == "*" {
        return true;
    }
    if perm.is_empty() {
        return false;
    }
    let order = "cruds";
    let mut pos = 0;
    for c in perm.chars() {
        match order[pos..].find(c) {
            Some(i) => pos += i + 1,
            None => return false,
        }
    }
    perm.contains('r') || perm.contains('s')
}

/// The types the scopes grant, `*` expanded to `wildcard_types`.
pub(crate) fn grant_of(scopes: &[String], wildcard_types: &[String]) -> Grant {
    let mut g = Grant::default();
    for s in scopes {
        let Some((t, query)) = reading_scope(s) else { continue };
        if t == "*" {
            g.allowed_types.extend(wildcard_types.iter().cloned());
        } else {
            g.allowed_types.insert(t.to_string());
        }
        if query.is_some() {
            g.query_scopes.push(s.clone());
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_v1_and_v2() {
        for ok in ["read", "*", "r", "rs", "s", "cruds", "crs", "ruds"] {
            assert!(grants_read(ok), "{ok}");
        }
        for no in ["write", "c", "cud", "sr", "rr", "", "x", "dr"] {
            assert!(!grants_read(no), "{no}");
        }
    }

    #[test]
    fn scopes_to_types() {
        let wild = vec!["Patient".to_string(), "Observation".to_string()];
        let scopes: Vec<String> = [
            "system/Condition.read",
            "openid",
            "launch",
            "patient/*.rs",
            "user/Encounter.write",
            "system/Observation.rs?category=lab",
            "bogus/Claim.read",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let g = grant_of(&scopes, &wild);
        assert_eq!(g.allowed_types.iter().cloned().collect::<Vec<_>>(), vec!["Condition", "Observation", "Patient"]);
        assert_eq!(g.query_scopes, vec!["system/Observation.rs?category=lab"]);
    }

    #[test]
    fn wildcard_tables() {
        assert_eq!(Wildcard::Smartbox.expand(&[]).len(), 18);
        let aidbox = Wildcard::Aidbox.expand(&[]);
        assert_eq!(aidbox.len(), 19);
        assert!(aidbox.contains(&"Group".to_string()));
        assert_eq!(Wildcard::All.expand(&["Claim".to_string()]), vec!["Claim"]);
        assert!(Wildcard::parse("/nonexistent/types.txt").is_err());
        assert_eq!(Wildcard::parse("all").unwrap(), Wildcard::All);
    }
}
