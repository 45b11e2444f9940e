//! Lists shown a page at a time, newest first, with "Neuere"/"Ältere" links.
//!
//! The store reads one row more than a page ([`store::Page`]) so the page knows whether
//! an older (or newer) one exists; the links carry the id of the row to continue from
//! (`before=` or `after=`) and the list's filters, so paging never loses them.

use store::Page;

/// Rows on a page.
pub(crate) const PAGE_SIZE: i64 = 50;

/// Where a page starts, from the query (`?before=ID` or `?after=ID`; each list's query
/// struct has the two fields itself: serde's `flatten` cannot read numbers from a query).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cursor {
    /// Show rows older than this id.
    pub(crate) before: Option<i64>,
    /// Show rows newer than this id.
    pub(crate) after: Option<i64>,
}

impl Cursor {
    /// The store's page for this cursor (`before` wins when both are given).
    pub(crate) fn page(self) -> Page {
        match (self.before, self.after) {
            (Some(id), _) => Page::Before(id),
            (None, Some(id)) => Page::After(id),
            (None, None) => Page::Newest,
        }
    }
}

/// The links of a page: the `href`s of the newer and older page, if there are any.
#[derive(Debug, Clone, Default)]
pub(crate) struct Links {
    pub(crate) newer: Option<String>,
    pub(crate) older: Option<String>,
}

impl Links {
    /// Whether there is a link at all (the template shows the paging bar then).
    pub(crate) fn any(&self) -> bool {
        self.newer.is_some() || self.older.is_some()
    }
}

/// Arranges `rows` (read for `page` with a limit of [`PAGE_SIZE`] + 1, in the store's order)
/// as a page, newest first, with its links; `base` is the list's path with its filters as
/// a query (`/admin/messages?user=anna`).
pub(crate) fn arrange<T>(
    page: Page,
    mut rows: Vec<T>,
    id: impl Fn(&T) -> i64,
    base: &str,
) -> (Vec<T>, Links) {
    let size = usize::try_from(PAGE_SIZE).unwrap_or(50);
    let more = rows.len() > size;
    rows.truncate(size);
    if matches!(page, Page::After(_)) {
        rows.reverse();
    }
    let (first, last) = (rows.first().map(&id), rows.last().map(&id));
    let (newer, older) = match page {
        Page::Newest => (None, last.filter(|_| more)),
        Page::Before(_) => (first, last.filter(|_| more)),
        Page::After(_) => (first.filter(|_| more), last),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let links = Links {
        newer: newer.map(|id| format!("{base}{sep}after={id}")),
        older: older.map(|id| format!("{base}{sep}before={id}")),
    };
    (rows, links)
}

/// `path` with the non-empty `pairs` as its query, percent-encoded.
pub(crate) fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", crate::session::encode_component(v)))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: std::ops::RangeInclusive<i64>, rev: bool) -> Vec<i64> {
        let v: Vec<i64> = n.collect();
        if rev {
            v.into_iter().rev().collect()
        } else {
            v
        }
    }

    #[test]
    fn pages_link_both_ways() {
        // Newest page of 120 rows: 120..71, older from 71.
        let (rows, links) = arrange(Page::Newest, ids(69..=120, true), |i| *i, "/x");
        assert_eq!((rows[0], rows[49]), (120, 71));
        assert_eq!(links.newer, None);
        assert_eq!(links.older.as_deref(), Some("/x?before=71"));
        // The last page: no older link.
        let (rows, links) = arrange(Page::Before(21), ids(1..=20, true), |i| *i, "/x?u=a");
        assert_eq!(rows.len(), 20);
        assert_eq!(links.newer.as_deref(), Some("/x?u=a&after=20"));
        assert_eq!(links.older, None);
        // Going back up: rows come oldest first and are shown newest first.
        let (rows, links) = arrange(Page::After(20), ids(21..=71, false), |i| *i, "/x");
        assert_eq!((rows[0], rows[49]), (70, 21));
        assert_eq!(links.newer.as_deref(), Some("/x?after=70"));
        assert_eq!(links.older.as_deref(), Some("/x?before=21"));
        let (rows, links) = arrange(Page::Newest, Vec::<i64>::new(), |i| *i, "/x");
        assert!(rows.is_empty() && !links.any());
    }

    #[test]
    fn queries_are_encoded_and_empty_values_left_out() {
        assert_eq!(
            with_query("/a", &[("user", "anna b"), ("verdict", ""), ("x", "&=")]),
            "/a?user=anna%20b&x=%26%3D"
        );
        assert_eq!(with_query("/a", &[("user", "")]), "/a");
    }
}
