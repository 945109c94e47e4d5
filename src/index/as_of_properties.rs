//! Property tests: the as-of index against a naive scan over random version histories, with
//! equal timestamps, deletions, recreations and repeated copies, for both boundaries.

use proptest::prelude::*;

use super::{Boundary, History};
use crate::timestamp::Instant;
use crate::version::{ParsedVersion, Source, VersionId};

/// (lastUpdated in ms, versionId, deleted): small ranges so that ties and repeats happen.
fn versions() -> impl Strategy<Value = Vec<(i64, u64, bool)>> {
    prop::collection::vec((0i64..20, 1u64..30, prop::bool::weighted(0.25)), 1..25)
}

fn parsed(id: &str, v: &[(i64, u64, bool)]) -> Vec<ParsedVersion> {
    v.iter()
        .enumerate()
        .map(|(i, &(ms, vid, deleted))| ParsedVersion {
            resource_type: "Observation".into(),
            id: id.into(),
            tenant: None,
            version_id: VersionId::Number(vid),
            last_updated: Instant::from_millis(ms),
            deleted,
            source: Source { file: 0, line: i as u64 + 1, offset: 0, entry: None },
            patients: vec![],
            references: vec![],
            detail: None,
        })
        .collect()
}

/// The rule, read literally: among the first copy of each versionId, the one with the greatest
/// (lastUpdated, versionId) such that lastUpdated < T (or <= T).
fn first_copies(v: &[(i64, u64, bool)]) -> Vec<(i64, u64, bool)> {
    let mut firsts: Vec<(i64, u64, bool)> = Vec::new();
    for &x in v {
        if !firsts.iter().any(|f| f.1 == x.1) {
            firsts.push(x);
        }
    }
    firsts
}

fn naive(v: &[(i64, u64, bool)], t: i64, b: Boundary) -> Option<(i64, u64, bool)> {
    first_copies(v)
        .into_iter()
        .filter(|&(ms, _, _)| if b == Boundary::Strict { ms < t } else { ms <= t })
        .max_by_key(|&(ms, vid, _)| (ms, vid))
}

proptest! {
    #[test]
    fn as_of_equals_the_naive_scan(v in versions(), t in -1i64..22, inclusive in any::<bool>()) {
        let b = if inclusive { Boundary::Inclusive } else { Boundary::Strict };
        let h = History::build(parsed("o", &v));
        let r = h.resource("Observation", "o").expect("indexed");
        let got = r.as_of(Instant::from_millis(t), b).map(|x| (x.last_updated.0 / 1_000_000, match x.version_id { VersionId::Number(n) => n, _ => 0 }, x.deleted));
        prop_assert_eq!(got, naive(&v, t, b));
        prop_assert_eq!(r.live_at(Instant::from_millis(t), b).is_some(), naive(&v, t, b).is_some_and(|x| !x.2));
    }

    #[test]
    fn the_window_holds_exactly_the_versions_between_t_and_the_end(v in versions(), t in 0i64..20, len in 0i64..5, inclusive in any::<bool>()) {
        let b = if inclusive { Boundary::Inclusive } else { Boundary::Strict };
        let h = History::build(parsed("o", &v));
        let r = h.resource("Observation", "o").expect("indexed");
        let end = t + len;
        let got: Vec<u64> = r.in_window(Instant::from_millis(t), Instant::from_millis(end), b).iter().map(|x| match x.version_id { VersionId::Number(n) => n, _ => 0 }).collect();
        let mut want: Vec<(i64, u64)> = first_copies(&v)
            .into_iter()
            .filter(|&(ms, _, _)| (if b == Boundary::Strict { ms >= t } else { ms > t }) && ms <= end)
            .map(|(ms, vid, _)| (ms, vid))
            .collect();
        want.sort();
        prop_assert_eq!(got, want.into_iter().map(|w| w.1).collect::<Vec<_>>());
    }
}
