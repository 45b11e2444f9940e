//! Sequence sets and UID sets (RFC 3501 §9 `sequence-set`) as sorted, disjoint ranges.
//!
//! A set is never expanded element by element: `1:4294967295` is one range, and what it
//! names in a mailbox is found by binary search. So a set costs O(k log k) for its k
//! elements plus O(m) for the m messages it names, never O(the numbers it spans) — once
//! expanding `UID SEARCH UID 1:4294967295` per message froze the whole daemon (issue #13 §3).

use imap_next::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// Inclusive ranges, sorted and merged (no two overlap or touch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranges(Vec<(u32, u32)>);

impl Ranges {
    /// The ranges `set` names, `*` standing for `largest` (the largest UID, or the number of
    /// messages). `a:b` is the same as `b:a` (RFC 3501 §9), so `559:*` names the last
    /// message even when 559 is beyond it (§6.4.8).
    #[must_use]
    pub fn new(set: &SequenceSet, largest: u32) -> Self {
        let value = |v: &SeqOrUid| match v {
            SeqOrUid::Value(n) => n.get(),
            SeqOrUid::Asterisk => largest,
        };
        let mut ranges: Vec<(u32, u32)> = set
            .0
            .as_ref()
            .iter()
            .map(|s| match s {
                Sequence::Single(v) => (value(v), value(v)),
                Sequence::Range(a, b) => {
                    let (a, b) = (value(a), value(b));
                    (a.min(b), a.max(b))
                }
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if u64::from(lo) <= u64::from(last.1) + 1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Self(merged)
    }

    /// Whether `n` is in one of the ranges (binary search).
    #[must_use]
    pub fn contains(&self, n: u32) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < n);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= n)
    }

    /// Whether `n` (a UID as stored) is in one of the ranges.
    #[must_use]
    pub fn contains_i64(&self, n: i64) -> bool {
        u32::try_from(n).is_ok_and(|n| self.contains(n))
    }

    /// The values of `sorted` (ascending) that lie in the ranges, in order: a binary search
    /// per range, then only what is named.
    #[must_use]
    pub fn select(&self, sorted: &[i64]) -> Vec<i64> {
        let mut out = Vec::new();
        for &(lo, hi) in &self.0 {
            let start = sorted.partition_point(|&v| v < i64::from(lo));
            out.extend(
                sorted[start..]
                    .iter()
                    .take_while(|&&v| v <= i64::from(hi))
                    .copied(),
            );
        }
        out
    }

    /// The ranges cut to `1..=max` (sequence numbers of a mailbox with `max` messages).
    pub fn clamped(&self, max: u32) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0
            .iter()
            .filter(move |&&(lo, _)| lo <= max)
            .map(move |&(lo, hi)| (lo.max(1), hi.min(max)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(set, largest, ranges)`.
    type Case = (&'static str, u32, &'static [(u32, u32)]);

    fn ranges(s: &str, largest: u32) -> Ranges {
        Ranges::new(&SequenceSet::try_from(s).expect("set"), largest)
    }

    #[test]
    fn sets_become_merged_ranges() {
        let table: &[Case] = &[
            ("1:*", 10, &[(1, 10)]),
            ("1:4294967295", 10, &[(1, u32::MAX)]),
            ("3:1,2,7", 10, &[(1, 3), (7, 7)]),
            ("5,4,6,1:2", 10, &[(1, 2), (4, 6)]),
            ("559:*", 9, &[(9, 559)]),
            ("*", 42, &[(42, 42)]),
            ("4294967295,1", 1, &[(1, 1), (u32::MAX, u32::MAX)]),
        ];
        for (set, largest, want) in table {
            assert_eq!(ranges(set, *largest).0, *want, "{set}");
        }
    }

    #[test]
    fn select_and_contains() {
        let uids = [1, 2, 5, 9, 10, 4_000_000_000];
        assert_eq!(ranges("1:4294967295", 10).select(&uids), uids);
        assert_eq!(ranges("3:9,10", 10).select(&uids), [5, 9, 10]);
        assert_eq!(ranges("11:20", 10).select(&uids), [] as [i64; 0]);
        let r = ranges("2:4,8:*", 10);
        assert!(r.contains(3) && r.contains(10) && !r.contains(1) && !r.contains(5));
        assert!(!r.contains_i64(-1) && !r.contains_i64(i64::MAX));
        assert_eq!(
            ranges("1:4294967295,3", 5).clamped(5).collect::<Vec<_>>(),
            [(1, 5)]
        );
    }

    /// The whole 32-bit range, many times over, against a million UIDs: linear in what is
    /// named (the old expansion would take hours).
    #[test]
    fn huge_ranges_cost_what_they_name() {
        let uids: Vec<i64> = (1..=1_000_000).collect();
        let set = vec!["1:4294967295"; 1000].join(",");
        let r = ranges(&set, 1_000_000);
        assert_eq!(r.select(&uids).len(), 1_000_000);
        assert!(uids.iter().all(|&u| r.contains_i64(u)));
    }

    proptest::proptest! {
        /// Against the obvious reference (expansion) on small sets.
        #[test]
        fn agrees_with_expansion(
            elems in proptest::collection::vec((1u32..40, proptest::option::of(1u32..40)), 1..6),
            largest in 1u32..40,
        ) {
            let text: Vec<String> = elems.iter().map(|(a, b)| match b {
                Some(b) => format!("{a}:{b}"),
                None => a.to_string(),
            }).collect();
            let set = SequenceSet::try_from(text.join(",").as_str()).expect("set");
            let r = Ranges::new(&set, largest);
            let all: Vec<i64> = (1..=45).collect();
            let want: Vec<i64> = all.iter().copied().filter(|&n| elems.iter().any(|(a, b)| {
                let (a, b) = (i64::from(*a), i64::from(b.unwrap_or(*a)));
                a.min(b) <= n && n <= a.max(b)
            })).collect();
            proptest::prop_assert_eq!(r.select(&all), want.clone());
            for n in all {
                proptest::prop_assert_eq!(r.contains_i64(n), want.contains(&n));
            }
        }
    }
}
