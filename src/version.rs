//! What a version is, shared by the history readers and the index: its id (`VersionId`), where
//! it was read (`Source`), the few fields of Group, Client and BulkExportStatus versions the rules
//! read (`Detail`), and the batches that carry versions from the parse threads to the index.

use std::cmp::Ordering;

use crate::timestamp::Instant;

/// An Aidbox `txid` or a FHIR `versionId`: compared numerically when both are numbers.
/// (A text id is rare and held behind one thin pointer, keeping this 16 bytes in every indexed
/// version.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(clippy::box_collection)] // the thin pointer is the point: see above
pub(crate) enum VersionId {
    Number(u64),
    Text(Box<String>),
}

impl VersionId {
    pub(crate) fn parse(s: &str) -> VersionId {
        match s.parse::<u64>() {
            Ok(n) if !s.starts_with('+') => VersionId::Number(n),
            _ => VersionId::Text(Box::new(s.to_string())),
        }
    }
}

impl std::fmt::Display for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionId::Number(n) => write!(f, "{n}"),
            VersionId::Text(s) => f.write_str(s),
        }
    }
}

impl Ord for VersionId {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (VersionId::Number(a), VersionId::Number(b)) => a.cmp(b),
            (VersionId::Number(a), VersionId::Text(b)) => a.to_string().as_str().cmp(b.as_str()),
            (VersionId::Text(a), VersionId::Number(b)) => a.as_str().cmp(b.to_string().as_str()),
            (VersionId::Text(a), VersionId::Text(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for VersionId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where a version was read: file index, 1-based line, byte offset of that line in the
/// decompressed stream, and the entry index inside a Bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(crate) struct Source {
    pub(crate) file: u32,
    pub(crate) line: u64,
    pub(crate) offset: u64,
    pub(crate) entry: Option<Entry>,
}

/// The 0-based index of an entry in a Bundle, stored plus one so that `Option<Entry>` takes four
/// bytes (a `Source` is in every indexed version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(crate) struct Entry(std::num::NonZeroU32);

impl Entry {
    /// The entry at 0-based `index`; an error from index 2^32 − 1 on (no Bundle comes near).
    pub(crate) fn at(index: usize) -> std::result::Result<Entry, &'static str> {
        u32::try_from(index + 1)
            .ok()
            .and_then(std::num::NonZeroU32::new)
            .map(Entry)
            .ok_or("a history Bundle with more than 2^32 entries")
    }

    pub(crate) fn index(self) -> u32 {
        self.0.get() - 1
    }
}

/// One member of a Group version.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Member {
    /// The referenced (type, id); `None` when the entity is not a resolvable reference.
    pub(crate) entity: Option<(String, String)>,
    pub(crate) inactive: bool,
    pub(crate) period_start: Option<Instant>,
    pub(crate) period_end: Option<Instant>,
}

/// What a BulkExportStatus version says about one export.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StatusDetail {
    pub(crate) requester: Option<String>,
    pub(crate) transaction_time: Option<Instant>,
    pub(crate) status: Option<String>,
    pub(crate) group_id: Option<String>,
    pub(crate) types: Vec<String>,
    pub(crate) since: Option<String>,
    /// Per-type counts from `output[]`.
    pub(crate) counts: Vec<(String, u64)>,
    /// Whether the version has an `output` array at all (an empty one says no file was written).
    #[serde(default)]
    pub(crate) output_recorded: bool,
}

/// What a Client version's `scope` says.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) enum ClientScopes {
    /// The scopes, one string each.
    Granted(Vec<String>),
    /// No `scope` at all: a Basic-auth Client whose access an AccessPolicy grants.
    Missing,
    /// Neither a string nor an array of strings: what was found instead.
    Unreadable(String),
}

/// The fields of Group, Client, AccessPolicy and BulkExportStatus versions the rules read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Detail {
    Group {
        members: Vec<Member>,
    },
    Client {
        scopes: ClientScopes,
        /// Who the Client is, for people: `name`, `description` and `smart.name`, those present,
        /// joined by " — " (empty when none).
        label: String,
    },
    /// The (type, id) of each resource in `link[]`.
    AccessPolicy {
        links: Vec<(String, String)>,
    },
    Status(StatusDetail),
}

/// One version as read from a dump.
#[derive(Debug, Clone)]
pub(crate) struct ParsedVersion {
    pub(crate) resource_type: String,
    pub(crate) id: String,
    /// The tenant its `meta` marks it with (Smartbox: `meta.tenant`, `meta._tenant`).
    pub(crate) tenant: Option<String>,
    pub(crate) version_id: VersionId,
    pub(crate) last_updated: Instant,
    pub(crate) deleted: bool,
    pub(crate) source: Source,
    /// The patients whose compartment holds this version: sorted, each once.
    pub(crate) patients: Vec<String>,
    pub(crate) references: Vec<(String, String)>,
    /// Boxed: most versions have none, and the version is moved a few times on its way in.
    pub(crate) detail: Option<Box<Detail>>,
}

/// A range of a batch's text: start and end.
type TextRange = (usize, usize);

/// Versions read from a run of lines, their type, id, patient and reference strings kept in one buffer:
/// one allocation per batch instead of several per version, and nothing for the index thread
/// to free one by one.
#[derive(Default)]
pub(crate) struct VersionBatch {
    text: String,
    /// Each patient id, as a range of `text`.
    patients: Vec<TextRange>,
    /// Each reference's type and id (`--non-compartment referenced`), as ranges of `text`.
    references: Vec<(TextRange, TextRange)>,
    versions: Vec<BatchVersion>,
}

/// What a version is besides its type, id, patients and references (the strings a batch keeps
/// together).
pub(crate) struct VersionFacts {
    pub(crate) version_id: VersionId,
    pub(crate) last_updated: Instant,
    pub(crate) deleted: bool,
    pub(crate) source: Source,
    pub(crate) detail: Option<Box<Detail>>,
}

/// One version of a batch: its strings are ranges of the batch's text.
struct BatchVersion {
    resource_type: TextRange,
    id: TextRange,
    /// The tenant its `meta` marks it with (Smartbox), when it does.
    tenant: Option<TextRange>,
    /// A range of the batch's `patients`.
    patients: (usize, usize),
    /// A range of the batch's `references`.
    references: (usize, usize),
    facts: VersionFacts,
}

/// One version lent by a batch to the index.
pub(crate) struct VersionView<'b> {
    pub(crate) resource_type: &'b str,
    pub(crate) id: &'b str,
    pub(crate) tenant: Option<&'b str>,
    text: &'b str,
    patient_spans: &'b [TextRange],
    reference_spans: &'b [(TextRange, TextRange)],
    pub(crate) facts: VersionFacts,
}

impl<'b> VersionView<'b> {
    /// The patients whose compartment holds this version: sorted, each once.
    pub(crate) fn patients(&self) -> impl ExactSizeIterator<Item = &'b str> + '_ {
        self.patient_spans.iter().map(|&(start, end)| &self.text[start..end])
    }

    /// The (type, id) of every resource this version references, when references are kept.
    pub(crate) fn references(&self) -> impl ExactSizeIterator<Item = (&'b str, &'b str)> + 'b {
        let text = self.text;
        self.reference_spans.iter().map(move |&((ts, te), (is, ie))| (&text[ts..te], &text[is..ie]))
    }
}

/// How far a batch was filled, to go back to it when a line turns out unreadable.
#[derive(Clone, Copy)]
pub(crate) struct BatchMark {
    text: usize,
    patients: usize,
    references: usize,
    versions: usize,
}

impl VersionBatch {
    pub(crate) fn with_capacity(versions: usize) -> VersionBatch {
        VersionBatch {
            text: String::with_capacity(versions * 64),
            patients: Vec::with_capacity(versions),
            references: Vec::new(),
            versions: Vec::with_capacity(versions),
        }
    }

    #[cfg(any(test, feature = "hooks"))]
    pub(crate) fn len(&self) -> usize {
        self.versions.len()
    }

    fn keep(&mut self, s: &str) -> TextRange {
        let start = self.text.len();
        self.text.push_str(s);
        (start, self.text.len())
    }

    /// Adds a version; `patients` sorted, each once; `references` as (type, id).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_parts<S: AsRef<str>, T: AsRef<str>, I: AsRef<str>>(
        &mut self,
        resource_type: &str,
        id: &str,
        tenant: Option<&str>,
        patients: &[S],
        references: &[(T, I)],
        facts: VersionFacts,
    ) {
        let resource_type = self.keep(resource_type);
        let id = self.keep(id);
        let tenant = tenant.map(|t| self.keep(t));
        let first = self.patients.len();
        for p in patients {
            let span = self.keep(p.as_ref());
            self.patients.push(span);
        }
        let patients = (first, self.patients.len());
        let first = self.references.len();
        for (t, i) in references {
            let span = (self.keep(t.as_ref()), self.keep(i.as_ref()));
            self.references.push(span);
        }
        let references = (first, self.references.len());
        self.versions.push(BatchVersion { resource_type, id, tenant, patients, references, facts });
    }

    pub(crate) fn push(&mut self, p: ParsedVersion) {
        let ParsedVersion {
            resource_type,
            id,
            tenant,
            version_id,
            last_updated,
            deleted,
            source,
            patients,
            references,
            detail,
        } = p;
        self.push_parts(
            &resource_type,
            &id,
            tenant.as_deref(),
            &patients,
            &references,
            VersionFacts { version_id, last_updated, deleted, source, detail },
        );
    }

    pub(crate) fn mark(&self) -> BatchMark {
        BatchMark {
            text: self.text.len(),
            patients: self.patients.len(),
            references: self.references.len(),
            versions: self.versions.len(),
        }
    }

    /// Drops what was added after `mark`.
    pub(crate) fn rollback(&mut self, mark: BatchMark) {
        self.text.truncate(mark.text);
        self.patients.truncate(mark.patients);
        self.references.truncate(mark.references);
        self.versions.truncate(mark.versions);
    }

    /// Lends each version in turn, in the order they were added.
    pub(crate) fn drain(self, mut f: impl FnMut(VersionView)) {
        let VersionBatch { text, patients, references, versions } = self;
        let at = |(start, end): TextRange| &text[start..end];
        for v in versions {
            f(VersionView {
                resource_type: at(v.resource_type),
                id: at(v.id),
                tenant: v.tenant.map(at),
                text: &text,
                patient_spans: &patients[v.patients.0..v.patients.1],
                reference_spans: &references[v.references.0..v.references.1],
                facts: v.facts,
            });
        }
    }

    /// The versions in their owned form (tests, the fuzz target, benchmarks).
    #[cfg(any(test, feature = "hooks"))]
    pub(crate) fn into_parsed(self) -> Vec<ParsedVersion> {
        let mut out = Vec::with_capacity(self.len());
        self.drain(|v| {
            let patients = v.patients().map(str::to_string).collect();
            let references = v.references().map(|(t, i)| (t.to_string(), i.to_string())).collect();
            let VersionFacts { version_id, last_updated, deleted, source, detail } = v.facts;
            out.push(ParsedVersion {
                resource_type: v.resource_type.to_string(),
                id: v.id.to_string(),
                tenant: v.tenant.map(str::to_string),
                version_id,
                last_updated,
                deleted,
                source,
                patients,
                references,
                detail,
            })
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_compare_numerically() {
        assert!(VersionId::parse("9") < VersionId::parse("10"));
        assert!(VersionId::parse("abc") > VersionId::parse("10"));
    }

    /// A batch keeps each version's patients and references as its own, and going back to a
    /// mark drops the later versions' strings, patients and references together.
    #[test]
    fn batch_keeps_references_per_version_and_rolls_back() {
        let facts = |n: u64| VersionFacts {
            version_id: VersionId::Number(n),
            last_updated: Instant(n as i64),
            deleted: false,
            source: Source { file: 0, line: n, offset: 0, entry: None },
            detail: None,
        };
        let mut batch = VersionBatch::default();
        batch.push_parts("Observation", "o1", None, &["p1"], &[("Patient", "p1"), ("Encounter", "e1")], facts(1));
        batch.push_parts("Observation", "o2", None, &["p2"], &[("Practitioner", "d1")], facts(2));
        let mark = batch.mark();
        batch.push_parts(
            "Claim",
            "c1",
            Some("t1"),
            &["p3", "p4"],
            &[("Organization", "x"), ("Patient", "p3")],
            facts(3),
        );
        batch.rollback(mark);
        assert_eq!(
            (batch.mark().patients, batch.mark().references),
            (2, 3),
            "the rolled-back version's lists are gone"
        );
        batch.push_parts("Patient", "p9", Some("t2"), &["p9"], &[("Organization", "o9")], facts(4));
        let v = batch.into_parsed();
        type Got<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);
        let got: Vec<Got> = v
            .iter()
            .map(|p| {
                (
                    p.id.as_str(),
                    p.patients.iter().map(String::as_str).collect(),
                    p.references.iter().map(|(t, i)| (t.as_str(), i.as_str())).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("o1", vec!["p1"], vec![("Patient", "p1"), ("Encounter", "e1")]),
                ("o2", vec!["p2"], vec![("Practitioner", "d1")]),
                ("p9", vec!["p9"], vec![("Organization", "o9")]),
            ]
        );
    }
}
