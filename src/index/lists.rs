//! The lists every indexed version points into: its patients, its references, and the extras
//! (Group members, Client scopes, export status) that few versions have.

use super::Version;
use crate::version::Detail;

pub(super) const NO_EXTRA: u32 = u32::MAX;

/// Where a version's list of patients or references is: `len` entries from `start` in the
/// index's shared list. A single patient is kept in `start` itself (most versions have one), so
/// neither an allocation per version nor a second memory access is needed for it.
/// (No equality: equal lists have different spans; compare what [`History::patients_of`] gives.)
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

/// The detail and references of a version that has either.
#[derive(Debug)]
struct Extra {
    detail: Option<Box<Detail>>,
    references: Span,
}

/// Lists of patients and references of every version, end to end, and the versions' extras.
#[derive(Debug, Default)]
pub(super) struct Lists {
    pub(super) patients: Vec<u32>,
    pub(super) references: Vec<(u32, u32)>,
    extras: Vec<Extra>,
}

impl Lists {
    pub(super) fn add_patients(&mut self, ids: impl Iterator<Item = u32>) -> Span {
        let start = self.patients.len();
        self.patients.extend(ids);
        list_index(self.patients.len());
        let len = (self.patients.len() - start) as u32;
        if len == 1 {
            Span { start: self.patients.pop().expect("one patient"), len }
        } else {
            Span { start: list_index(start), len }
        }
    }

    /// The extra of a version with a detail or references; `NO_EXTRA` for one with neither.
    pub(super) fn add_extra(&mut self, detail: Option<Box<Detail>>, refs: impl Iterator<Item = (u32, u32)>) -> u32 {
        let start = self.references.len();
        self.references.extend(refs);
        list_index(self.references.len());
        let references = Span { start: list_index(start), len: (self.references.len() - start) as u32 };
        if detail.is_none() && references.len == 0 {
            return NO_EXTRA;
        }
        self.extras.push(Extra { detail, references });
        // u32::MAX itself stays free for NO_EXTRA.
        u32::try_from(self.extras.len() - 1)
            .ok()
            .filter(|&i| i != NO_EXTRA)
            .expect("fewer than 2^32 - 1 versions with details or references")
    }

    fn extra(&self, v: &Version) -> Option<&Extra> {
        (v.extra != NO_EXTRA).then(|| &self.extras[v.extra as usize])
    }

    pub(super) fn patients<'a>(&'a self, v: &'a Version) -> &'a [u32] {
        let Span { start, len } = v.patients;
        match len {
            0 => &[],
            1 => std::slice::from_ref(&v.patients.start),
            _ => &self.patients[start as usize..start as usize + len as usize],
        }
    }

    pub(super) fn detail(&self, v: &Version) -> Option<&Detail> {
        self.extra(v).and_then(|x| x.detail.as_deref())
    }

    pub(super) fn references(&self, v: &Version) -> &[(u32, u32)] {
        let Some(Extra { references: Span { start, len }, .. }) = self.extra(v) else { return &[] };
        &self.references[*start as usize..*start as usize + *len as usize]
    }
}

/// A position in a list as stored in a span; the lists' ends are checked too, so every span's
/// end fits as well.
fn list_index(i: usize) -> u32 {
    u32::try_from(i).expect("more than 2^32 patient or reference links: beyond what this index can hold")
}
