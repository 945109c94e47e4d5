//! Steps 1 and 2: what the Client's scopes as of T allow, and which types the export sends.

use std::collections::BTreeSet;

use super::{Ask, Resolution};
use crate::rules::findings::{Finding, FindingKind};
use crate::rules::scopes;
use crate::version::{ClientScopes, Detail};

/// 1. The Client as of T and the types its scopes grant (`None`: every type, with a finding).
pub(super) fn allowed_types(ask: &Ask, r: &mut Resolution) {
    let (e, h, id) = (ask.e, ask.h, ask.id);
    let client = e.client_id.as_deref().and_then(|c| h.resource("Client", c));
    if let Some(c) = client {
        ask.ambiguous(c, &mut r.findings);
    }
    let Some(v) = client.and_then(|c| ask.live(c)) else {
        let who = e.client_id.as_deref().unwrap_or("");
        let detail = if who.is_empty() {
            "the kickoff names no client (w_cid): every type is treated as allowed".to_string()
        } else {
            format!("Client/{who} has no version at T: every type is treated as allowed")
        };
        r.findings.push(Finding::new(id, FindingKind::ClientNotFound, detail).about("Client", who, ""));
        return;
    };
    r.client_version = Some(v.version_id.to_string());
    match h.detail_of(v) {
        Some(Detail::Client { scopes: ClientScopes::Granted(s) }) => {
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
        Some(Detail::Client { scopes: ClientScopes::Unreadable(what) }) => {
            r.findings.push(
                Finding::new(
                    id,
                    FindingKind::ClientScopeUnreadable,
                    format!("{what}: every type is treated as allowed"),
                )
                .about("Client", e.client_id.as_deref().unwrap_or(""), &v.version_id.to_string()),
            );
        }
        _ => r.allowed_types = Some(BTreeSet::new()),
    }
}

/// 2. exported types = allowed ∩ (`_type` if given, else every type present in the history).
pub(super) fn exported_types(ask: &Ask, r: &mut Resolution) {
    match &ask.e.params.types {
        Some(requested) => {
            for ty in requested {
                match &r.allowed_types {
                    Some(a) if !a.contains(ty) => r.findings.push(
                        Finding::new(
                            ask.id,
                            FindingKind::TypeNotPermitted,
                            format!("_type {ty} is not granted by the client's scopes"),
                        )
                        .about(ty, "", ""),
                    ),
                    _ => {
                        r.exported_types.insert(ty.clone());
                    }
                }
            }
        }
        None => match &r.allowed_types {
            Some(a) => r.exported_types = a.clone(),
            None => r.exported_types = ask.h.present_types().into_iter().collect(),
        },
    }
}
