//! Steps 1 and 2: what the Client's scopes as of T allow, and which types the export sends. A
//! Client without `scope` (its access granted by AccessPolicies) and a missing Client allow every
//! FHIR type, with a finding; no type outside FHIR (Client, AccessPolicy, …) is ever sent.

use std::collections::BTreeSet;

use super::{Ask, NonCompartment, Resolution};
use crate::rules::findings::{Finding, FindingKind};
use crate::rules::kickoff::Level;
use crate::rules::scopes;
use crate::version::{ClientScopes, Detail};

/// 1. The Client as of T and the types its scopes grant (`None`: every type, with a finding).
pub(super) fn allowed_types(ask: &Ask, r: &mut Resolution) {
    let (e, h, id) = (ask.e, ask.h, ask.id);
    let who = e.client_id.as_deref().unwrap_or("");
    let client = e.client_id.as_deref().and_then(|c| ask.find("Client", c));
    if let Some(c) = client {
        ask.ambiguous(c, &mut r.findings);
    }
    let Some(v) = client.and_then(|c| ask.live(c)) else {
        let detail = if who.is_empty() {
            "the kickoff names no client (w_cid): every FHIR type is treated as allowed".to_string()
        } else {
            format!("Client/{who} has no version at T: every FHIR type is treated as allowed")
        };
        r.findings.push(Finding::new(id, FindingKind::ClientNotFound, detail).about("Client", who, ""));
        return;
    };
    let version = v.version_id.to_string();
    r.client_version = Some(version.clone());
    if let Some(Detail::Client { label, .. }) = h.detail_of(v) {
        r.client_label = Some(label.clone()).filter(|l| !l.is_empty());
    }
    match h.detail_of(v) {
        Some(Detail::Client { scopes: ClientScopes::Granted(s), .. }) => {
            r.scopes = s.clone();
            let g = scopes::grant_of(s, &ask.o.wildcard_types);
            for q in &g.query_scopes {
                r.findings.push(Finding::new(
                    id,
                    FindingKind::ScopeQueryNotApplied,
                    format!("scope {q} grants its type; its query is not applied, so more may be listed than was sent"),
                ));
            }
            r.allowed_types = Some(g.allowed_types);
        }
        Some(Detail::Client { scopes: ClientScopes::Unreadable(what), .. }) => {
            r.findings.push(
                Finding::new(
                    id,
                    FindingKind::ClientScopeUnreadable,
                    format!("{what}: every FHIR type is treated as allowed"),
                )
                .about("Client", who, &version),
            );
        }
        // No `scope`: a Basic-auth Client whose access AccessPolicies grant.
        _ => {
            let (linked, global) = access_policies(ask, who);
            let list = |ids: &[String]| if ids.is_empty() { "none".to_string() } else { ids.join(", ") };
            r.findings.push(
                Finding::new(
                    id,
                    FindingKind::ClientWithoutScope,
                    format!(
                        "Client/{who} has no scope: its access comes from AccessPolicies, which bulk-audit does not \
                         evaluate, so every FHIR type is treated as allowed. AccessPolicies linking it at T: {}; \
                         without links (they apply to every client): {}",
                        list(&linked),
                        list(&global)
                    ),
                )
                .about("Client", who, &version),
            );
            r.access_policies = linked;
        }
    }
}

/// The AccessPolicies in force at T that link the Client (`link[]`), and those without any link.
fn access_policies(ask: &Ask, client: &str) -> (Vec<String>, Vec<String>) {
    let h = ask.h;
    let (mut linked, mut global) = (Vec::new(), Vec::new());
    let Some(t) = h.type_id("AccessPolicy") else { return (linked, global) };
    for ri in h.of_type(t) {
        let res = &h.resources[ri as usize];
        if ask.foreign(res) {
            continue;
        }
        let Some(Detail::AccessPolicy { links }) = ask.live(res).and_then(|v| h.detail_of(v)) else { continue };
        if links.is_empty() {
            global.push(res.id.to_string());
        } else if links.iter().any(|(ty, lid)| ty == "Client" && lid == client) {
            linked.push(res.id.to_string());
        }
    }
    (linked, global)
}

/// 2. exported types = allowed ∩ (`_type` if given, else every type), FHIR types only.
pub(super) fn exported_types(ask: &Ask, r: &mut Resolution) {
    let fhir = &ask.o.fhir_types;
    match &ask.e.params.types {
        Some(requested) => {
            for ty in requested {
                let not = if !fhir.contains(ty) {
                    Some(format!(
                        "_type {ty} is not a FHIR resource type ({}): $export does not send it",
                        ask.o.fhir_version_name
                    ))
                } else {
                    match &r.allowed_types {
                        Some(a) if !a.contains(ty) => Some(format!("_type {ty} is not granted by the client's scopes")),
                        _ => None,
                    }
                };
                match not {
                    Some(why) => {
                        r.findings.push(Finding::new(ask.id, FindingKind::TypeNotPermitted, why).about(ty, "", ""))
                    }
                    None => {
                        r.exported_types.insert(ty.clone());
                    }
                }
            }
        }
        None => {
            r.exported_types = match &r.allowed_types {
                Some(a) => a.intersection(fhir).cloned().collect(),
                // Every type: the FHIR types the history holds.
                None => ask.present_types().into_iter().filter(|t| fhir.contains(t)).collect::<BTreeSet<_>>(),
            }
        }
    }
}

/// 2, checked against the history: the types the export may send of which the history holds no
/// version and names no file or table (`type-not-in-history`, one finding): nothing of them can
/// be listed, though the server may have sent some. Where every FHIR type may be sent and no
/// `_type` narrows it, the finding gives their count (the report lists them). A group- or
/// patient-level export under `--non-compartment none` sends no type outside the compartment, so
/// those cannot be wanting.
pub(super) fn types_not_in_history(ask: &Ask, r: &mut Resolution) {
    let o = ask.o;
    let fhir = &o.fhir_types;
    let may_send: Vec<&String> = match (&ask.e.params.types, &r.allowed_types) {
        (Some(_), _) => r.exported_types.iter().collect(),
        (None, Some(allowed)) => allowed.iter().filter(|t| fhir.contains(*t)).collect(),
        (None, None) => fhir.iter().collect(),
    };
    let every = ask.e.params.types.is_none() && r.allowed_types.as_ref().is_none_or(|a| fhir.is_subset(a));
    let compartment_only = ask.e.level != Level::System && o.non_compartment == NonCompartment::None;
    let wanting: Vec<String> = may_send
        .into_iter()
        .filter(|t| !compartment_only || o.compartment.contains(t))
        .filter(|t| !ask.holds(t))
        .filter(|t| !o.named_types.contains(*t))
        .cloned()
        .collect();
    if wanting.is_empty() {
        return;
    }
    let detail = if every {
        format!(
            "{} of the {} {} types this export may send have no version in the history and no file or table named \
             for them: nothing of them can be listed, though the server may have sent some (the report lists them)",
            wanting.len(),
            fhir.len(),
            o.fhir_version_name
        )
    } else {
        let (them, of) = if wanting.len() == 1 { ("it", "that type") } else { ("them", "those types") };
        format!(
            "the history holds no version of {} and no file or table named for {them}: nothing of {of} can be \
             listed, though the server may have sent some",
            wanting.join(", ")
        )
    };
    r.findings.push(Finding::new(ask.id, FindingKind::TypeNotInHistory, detail));
    r.types_not_in_history = wanting;
}
