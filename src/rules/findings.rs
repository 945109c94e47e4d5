//! The catalogue of finding kinds (one enum, with the name written to `findings` and the sentence
//! docs/outputs.md's table gives for each) and the `Finding` row itself.

use std::cmp::Ordering;

/// Every kind of doubt or anomaly the audit reports. The table of finding kinds in
/// docs/outputs.md is this catalogue, in this order and with these words (a test compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FindingKind {
    BoundaryAmbiguous,
    ClientNotFound,
    ClientScopeUnreadable,
    ClientWithoutScope,
    ScopeQueryNotApplied,
    TypeNotPermitted,
    TypeNotInHistory,
    GroupNotFound,
    MemberInactive,
    MemberUnresolvable,
    MemberNotPatient,
    PatientMissing,
    ParamNotApplied,
    RequestBodyNotLogged,
    RequestLinesUnpaired,
    OrganizationScopeNotApplied,
    TenantUnmarked,
    KickoffTimeUnknown,
    KickoffPathUnrecognized,
    LocalTimeAmbiguous,
    MethodNotLogged,
    StatusNotFound,
    ExportNotCompleted,
    CountMismatch,
    StatusWithoutKickoff,
    LogGap,
    VersionConflict,
    InputSkipped,
}

// `ALL` and `when` are the catalogue as people read it: docs/outputs.md's table (tested below).
#[cfg_attr(not(test), allow(dead_code))]
impl FindingKind {
    /// The kind of a name in the `kind` column (`--fail-on`).
    pub(crate) fn from_name(name: &str) -> Option<FindingKind> {
        FindingKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether a finding of this kind leaves its export's rows unknown (the export is
    /// incomplete): the Group or the Client it depends on has no version at T, its path is none
    /// of the kickoff forms, or a type it may send is not in the history.
    pub(crate) fn makes_incomplete(self) -> bool {
        matches!(
            self,
            FindingKind::GroupNotFound
                | FindingKind::ClientNotFound
                | FindingKind::KickoffPathUnrecognized
                | FindingKind::TypeNotInHistory
        )
    }

    /// Every kind, in the order of docs/outputs.md's table.
    pub(crate) const ALL: [FindingKind; 28] = [
        FindingKind::BoundaryAmbiguous,
        FindingKind::ClientNotFound,
        FindingKind::ClientScopeUnreadable,
        FindingKind::ClientWithoutScope,
        FindingKind::ScopeQueryNotApplied,
        FindingKind::TypeNotPermitted,
        FindingKind::TypeNotInHistory,
        FindingKind::GroupNotFound,
        FindingKind::MemberInactive,
        FindingKind::MemberUnresolvable,
        FindingKind::MemberNotPatient,
        FindingKind::PatientMissing,
        FindingKind::ParamNotApplied,
        FindingKind::RequestLinesUnpaired,
        FindingKind::RequestBodyNotLogged,
        FindingKind::OrganizationScopeNotApplied,
        FindingKind::TenantUnmarked,
        FindingKind::KickoffTimeUnknown,
        FindingKind::KickoffPathUnrecognized,
        FindingKind::LocalTimeAmbiguous,
        FindingKind::MethodNotLogged,
        FindingKind::StatusNotFound,
        FindingKind::ExportNotCompleted,
        FindingKind::CountMismatch,
        FindingKind::StatusWithoutKickoff,
        FindingKind::LogGap,
        FindingKind::VersionConflict,
        FindingKind::InputSkipped,
    ];

    /// The name in the `kind` column.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FindingKind::BoundaryAmbiguous => "boundary-ambiguous",
            FindingKind::ClientNotFound => "client-not-found",
            FindingKind::ClientScopeUnreadable => "client-scope-unreadable",
            FindingKind::ClientWithoutScope => "client-without-scope",
            FindingKind::ScopeQueryNotApplied => "scope-query-not-applied",
            FindingKind::TypeNotPermitted => "type-not-permitted",
            FindingKind::TypeNotInHistory => "type-not-in-history",
            FindingKind::GroupNotFound => "group-not-found",
            FindingKind::MemberInactive => "member-inactive",
            FindingKind::MemberUnresolvable => "member-unresolvable",
            FindingKind::MemberNotPatient => "member-not-patient",
            FindingKind::PatientMissing => "patient-missing",
            FindingKind::ParamNotApplied => "param-not-applied",
            FindingKind::RequestBodyNotLogged => "request-body-not-logged",
            FindingKind::RequestLinesUnpaired => "request-lines-unpaired",
            FindingKind::OrganizationScopeNotApplied => "organization-scope-not-applied",
            FindingKind::TenantUnmarked => "tenant-unmarked",
            FindingKind::KickoffTimeUnknown => "kickoff-time-unknown",
            FindingKind::KickoffPathUnrecognized => "kickoff-path-unrecognized",
            FindingKind::LocalTimeAmbiguous => "local-time-ambiguous",
            FindingKind::MethodNotLogged => "method-not-logged",
            FindingKind::StatusNotFound => "status-not-found",
            FindingKind::ExportNotCompleted => "export-not-completed",
            FindingKind::CountMismatch => "count-mismatch",
            FindingKind::StatusWithoutKickoff => "status-without-kickoff",
            FindingKind::LogGap => "log-gap",
            FindingKind::VersionConflict => "version-conflict",
            FindingKind::InputSkipped => "input-skipped",
        }
    }

    /// When the audit reports it, as docs/outputs.md's table says.
    pub(crate) fn when(self) -> &'static str {
        match self {
            FindingKind::BoundaryAmbiguous => "a version of a relevant resource (an exported type's candidate, the Client, a Group) has lastUpdated between T and the end of the kickoff request: the server fixed its export instant somewhere in there",
            FindingKind::ClientNotFound => "the Client has no version at T (or the kickoff names no client): every FHIR type is treated as allowed",
            FindingKind::ClientScopeUnreadable => "the Client's `scope` is neither a string nor an array of strings: every FHIR type is treated as allowed",
            FindingKind::ClientWithoutScope => "the Client has no `scope` (a Basic-auth client whose access AccessPolicies grant, which bulk-audit does not evaluate): every FHIR type is treated as allowed; `exports.access_policies` lists the AccessPolicies that link it at T",
            FindingKind::ScopeQueryNotApplied => "a scope with `?query` granted its type; the query is not applied",
            FindingKind::TypeNotPermitted => "a `_type` the scopes do not grant, or that is no FHIR resource type (`$export` sends none of Aidbox's own)",
            FindingKind::TypeNotInHistory => "an exported type of which the history holds no version and no file or table is named for (an Aidbox table `<type>`/`<type>_history`, an NDJSON file `<Type>.ndjson`; a table dumped empty counts as dumped): nothing of it can be listed, though the server may have sent some, so the export is incomplete; one finding per export, listing the types, or giving their count where every FHIR type may be sent",
            FindingKind::GroupNotFound => "the exported Group (or a nested one) has no version at T; nothing is exported for it",
            FindingKind::MemberInactive => "a member marked `inactive` or whose `period` excludes T; kept unless `--skip-inactive-members`",
            FindingKind::MemberUnresolvable => "a member whose entity is not a resolvable reference (`urn:`, `#`, missing)",
            FindingKind::MemberNotPatient => "a member that is neither a Patient nor a Group (a Device, a Practitioner…): no compartment is exported for it",
            FindingKind::PatientMissing => "a selected patient that does not exist at T; its compartment is still searched",
            FindingKind::ParamNotApplied => "`_typeFilter`, `_elements`, an unreadable `_since`/`_until` (then not applied: more is listed), or a parameter this tool does not interpret",
            FindingKind::RequestLinesUnpaired => "the kickoff's log lines carry neither `ctx` nor `ev`: its response was paired with the nearest earlier request line of the same URL and client (or a line stood alone), which the logs themselves do not tell",
            FindingKind::RequestBodyNotLogged => "a POST kickoff whose body the logs do not hold (Aidbox logs it as `w_b` only with `X-Audit-Req-Body: true`): resolved from its query alone, so the client may have asked for less than is listed",
            FindingKind::OrganizationScopeNotApplied => "a kickoff under `/Organization/{org}/fhir/…` (organization-based access control): resolved without an organization filter, so more may be listed than was sent",
            FindingKind::TenantUnmarked => "a `/tenant/{t}/…` kickoff lists resources with no tenant marker (`meta.tenant`/`meta._tenant`): listed, as an audit errs towards more; one finding per export, with the count of such rows",
            FindingKind::KickoffTimeUnknown => "a kickoff whose log lines carry no timestamp: it cannot be resolved",
            FindingKind::KickoffPathUnrecognized => "a request naming `$export` whose path is none of the three kickoff forms (`/Group/g/extra/$export`, `/Patient/p/$export`, `/Group//$export`): resolved at the widest level it could mean, system (more is listed), and incomplete",
            FindingKind::LocalTimeAmbiguous => "the kickoff's local time (read in `--tz`) occurs twice, when the clocks went back: T is its earlier instant, and the boundary window reaches the later one",
            FindingKind::MethodNotLogged => "the logs hold no method for a request whose path names `$export` (a Kibana or Elasticsearch export without `w_m`): taken as a kickoff",
            FindingKind::StatusNotFound => "the history holds BulkExportStatus resources but none matches this kickoff",
            FindingKind::ExportNotCompleted => "the matched BulkExportStatus ended in `error`/`cancelled`/`failed`: the client may have received part of the rows",
            FindingKind::CountMismatch => "the matched status's per-type `output[].count` differs from the number of distinct resources of that type in the reconstruction",
            FindingKind::StatusWithoutKickoff => "a BulkExportStatus that matches no kickoff: a hole in the logs?",
            FindingKind::LogGap => "no log line for longer than `--max-log-gap` (also in the manifest)",
            FindingKind::VersionConflict => "the same (type, id, versionId) appears twice with different lastUpdated, deletion, patients or details (Group members, Client scopes, export status); the first reading (in input order) is kept",
            FindingKind::InputSkipped => "with `--skip-invalid`: a line (or the rest of a file) that could not be read, with file, line, byte offset and reason",
        }
    }
}

impl FindingKind {
    /// What an auditor should check next, for the report.
    pub(crate) fn check_next(self) -> &'static str {
        match self {
            FindingKind::BoundaryAmbiguous => "Compare the version's lastUpdated with the server's export start; run again with --boundary inclusive to see the other reading.",
            FindingKind::ClientNotFound => "Find the Client in an older dump or in Aidbox's Client history; until then, treat the export as unrestricted.",
            FindingKind::ClientScopeUnreadable => "Read the Client's scope in the history and correct or confirm it.",
            FindingKind::ClientWithoutScope => "Review the AccessPolicies listed in exports.access_policies: they, not scopes, decided what this client could read.",
            FindingKind::ScopeQueryNotApplied => "Check whether the scope's query would have excluded some of the listed resources.",
            FindingKind::TypeNotPermitted => "Confirm that the server refused the type; if it did not, the scopes were not enforced.",
            FindingKind::TypeNotInHistory => "Dump the tables of these types (README: \"What an audit needs\"), even if empty, and audit again; the report lists the types.",
            FindingKind::GroupNotFound => "Find the Group in another dump: without it the export's patients are unknown.",
            FindingKind::MemberInactive => "Decide whether inactive members were exported by this server; rerun with --skip-inactive-members to compare.",
            FindingKind::MemberUnresolvable => "Look up the member's entity in the Group's history.",
            FindingKind::MemberNotPatient => "Nothing was exported for it; check that this is what the Group meant.",
            FindingKind::PatientMissing => "Check whether the patient was deleted or lives in another dump.",
            FindingKind::ParamNotApplied => "The listing may hold more than was sent: check the parameter's effect by hand.",
            FindingKind::RequestLinesUnpaired => "Export the logs again with ctx and ev, and check the pairing: T is the request line's time.",
            FindingKind::RequestBodyNotLogged => "Enable X-Audit-Req-Body in Aidbox; for this export, the listing may be more than was sent.",
            FindingKind::OrganizationScopeNotApplied => "Filter the listing by the organization by hand: more may be listed than was sent.",
            FindingKind::TenantUnmarked => "Check which tenant the unmarked resources belong to.",
            FindingKind::KickoffTimeUnknown => "Find the kickoff's time in another log source.",
            FindingKind::KickoffPathUnrecognized => "Find out what the server did with this path; the listing is every resource of the exported types.",
            FindingKind::LocalTimeAmbiguous => "Find the kickoff's time with an offset (Elasticsearch keeps @timestamp in UTC) to tell which of the two it was.",
            FindingKind::MethodNotLogged => "Export the logs again with the w_m column: a DELETE (a cancel) of this path would not be a kickoff.",
            FindingKind::StatusNotFound => "Look for the export's BulkExportStatus in a later dump.",
            FindingKind::ExportNotCompleted => "The client may have received part of the rows: ask the storage bucket's logs what was downloaded.",
            FindingKind::CountMismatch => "Compare the status's per-type counts with the listing: the history or the logs may be incomplete.",
            FindingKind::StatusWithoutKickoff => "Look for missing log files around the status's transaction time.",
            FindingKind::LogGap => "Find the missing logs for that span: exports in it are not in this audit.",
            FindingKind::VersionConflict => "Find out which dump is right; the first reading was used.",
            FindingKind::InputSkipped => "Repair or re-export the unreadable input and run again without --skip-invalid.",
        }
    }
}

/// Findings sort by their name, as the `kind` column reads.
impl Ord for FindingKind {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for FindingKind {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One doubt or anomaly: a row of `findings`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Finding {
    pub(crate) export_id: String,
    pub(crate) kind: FindingKind,
    pub(crate) resource_type: String,
    pub(crate) resource_id: String,
    pub(crate) version_id: String,
    /// Ids and times only, never a body.
    pub(crate) detail: String,
}

impl Finding {
    pub(crate) fn new(export_id: &str, kind: FindingKind, detail: impl Into<String>) -> Finding {
        Finding {
            export_id: export_id.to_string(),
            kind,
            resource_type: String::new(),
            resource_id: String::new(),
            version_id: String::new(),
            detail: detail.into(),
        }
    }

    /// The finding about one resource (version).
    pub(crate) fn about(mut self, resource_type: &str, id: &str, version: &str) -> Finding {
        self.resource_type = resource_type.to_string();
        self.resource_id = id.to_string();
        self.version_id = version.to_string();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of finding kinds in docs/outputs.md is this catalogue: same kinds, same order,
    /// same words.
    #[test]
    fn the_documented_table_is_the_catalogue() {
        let readme = include_str!("../../docs/outputs.md");
        let table: Vec<(String, String)> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| kind | when |"))
            .skip(2)
            .take_while(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').splitn(2, " | ").collect();
                (cells[0].trim().trim_matches('`').to_string(), cells[1].trim().to_string())
            })
            .collect();
        let catalogue: Vec<(String, String)> =
            FindingKind::ALL.iter().map(|k| (k.as_str().to_string(), k.when().to_string())).collect();
        assert_eq!(table, catalogue);
    }

    #[test]
    fn kinds_order_by_name() {
        let mut kinds = FindingKind::ALL.to_vec();
        kinds.sort();
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }
}
