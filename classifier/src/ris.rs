//! References to council documents in a message: paper numbers ("Vorlage 25-26613",
//! "DS 46/2024", "Drucksache 1234/2014") and page links of the common RIS products (ALLRIS
//! `vo020`/`to010`/…, SessionNet `vo0050`/`si0057`/…). A notice links to them so the reader
//! finds the documents in the RIS instead of in the mail.
//!
//! Only strict shapes are taken — a number after a document keyword, a URL to a known page
//! with the page's one id parameter, or an OParl object path — and a link is parsed into
//! its parts ([`RisLink`]) so that a notice rebuilds it instead of copying the original
//! string. Document download links (ALLRIS `do027`, SessionNet `getfile`) are skipped: they
//! only work inside a RIS session. Which hosts count as the RIS is the caller's decision.

use std::sync::OnceLock;

use regex::Regex;

use crate::rules::Inspect;

/// A reference found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A paper (Drucksache) number as the pattern matched it, e.g. `25-26613`. Whoever shows
    /// it must still check that it holds no identifier ("Antrag 8609-574271-9" matches the
    /// shape and is a Steuer-ID).
    Paper(String),
    /// A link to a RIS page or OParl object, parsed into its parts.
    Url(RisLink),
}

/// A RIS link taken apart: only the parts of a known shape, so that the link a notice shows
/// is rebuilt from them and never copies the original string (which may carry anything in
/// its query, fragment, user info or port).
///
/// Shapes (see the OParl/RIS notes): ALLRIS pages `…/vo020.asp?VOLFDNR=123` (also
/// `to010`/`SILFDNR`, `to020`/`TOLFDNR`, `si010`, `kp020`, `au020`, `pa020`, `gr020`; with
/// `.asp` or without extension as in ALLRIS 4), SessionNet pages `…/vo0050.php?__kvonr=123`
/// (`si0057`/`si0050`/`to0040` `__ksinr`, `to0050` `__ktonr`, `kp0040` `__kgrnr`, `ag0050`
/// `__kagnr`; `.php`, `.asp` or none), and OParl objects `…/oparl/…/paper/123`
/// (`papers`, `meeting(s)`, `agendaItem(s)`; SessionNet's `…/papers/vo/123`; SD.NET's
/// `…/paper/1-12345`) or ALLRIS 4's `…/oparl/papers?id=123`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RisLink {
    /// Host name, lower case, without port.
    pub host: String,
    /// The path, every segment checked (`/bi/vo020.asp`).
    pub path: String,
    /// The one query parameter a page takes and its id (digits only), e.g.
    /// `("VOLFDNR", "1001737")`; `None` for OParl object paths.
    pub query: Option<(&'static str, String)>,
}

impl RisLink {
    /// The link rebuilt from its parts, always `https` on the default port.
    #[must_use]
    pub fn url(&self) -> String {
        match &self.query {
            Some((name, id)) => format!("https://{}{}?{name}={id}", self.host, self.path),
            None => format!("https://{}{}", self.host, self.path),
        }
    }
}

/// Digits an object id may have: RIS sequence numbers are far shorter, and a longer run
/// could hold an identifier (a Steuer-ID has 11 digits).
pub const MAX_ID_DIGITS: usize = 8;
/// Digits one path segment before the page may have (`0001`, `1.1`, `rim0123`).
const MAX_SEGMENT_DIGITS: usize = 4;
/// Digits all path segments before the page may have together, so that no identifier is
/// spread over them (`/8609/5742/719/`).
const MAX_PATH_DIGITS: usize = 8;
/// Path segments of a link.
const MAX_SEGMENTS: usize = 8;

/// ALLRIS pages and the one parameter each takes.
const ALLRIS: &[(&str, &str)] = &[
    ("vo020", "VOLFDNR"),
    ("to010", "SILFDNR"),
    ("to020", "TOLFDNR"),
    ("si010", "SILFDNR"),
    ("kp020", "KPLFDNR"),
    ("au020", "AULFDNR"),
    ("pa020", "PALFDNR"),
    ("gr020", "GRLFDNR"),
];
/// SessionNet pages and the one parameter each takes.
const SESSIONNET: &[(&str, &str)] = &[
    ("vo0050", "__kvonr"),
    ("si0057", "__ksinr"),
    ("si0050", "__ksinr"),
    ("to0040", "__ksinr"),
    ("to0050", "__ktonr"),
    ("kp0040", "__kgrnr"),
    ("ag0050", "__kagnr"),
];
/// OParl object types a notice may link to.
const OPARL_TYPES: &[&str] = &[
    "paper",
    "papers",
    "meeting",
    "meetings",
    "agendaItem",
    "agendaItems",
];

/// Parses `url` into a [`RisLink`] when it has one of the known shapes exactly; `None`
/// otherwise (other pages, document downloads, user info, a port other than the default,
/// any further query parameter, an id that is not a short run of digits).
#[must_use]
pub fn parse_link(url: &str) -> Option<RisLink> {
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return None;
    };
    // A fragment only moves within the page: dropped.
    let rest = rest.split('#').next().unwrap_or_default();
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = before_query
        .find('/')
        .map_or((before_query, ""), |i| before_query.split_at(i));
    let host = host(authority)?;
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    if segments.is_empty() || segments.len() > MAX_SEGMENTS || !segments.iter().all(|s| segment(s))
    {
        return None;
    }
    let (page, prefix) = segments.split_last()?;
    let digits = |s: &&str| s.bytes().filter(u8::is_ascii_digit).count();
    let prefix_ok = |prefix: &[&str]| {
        prefix.iter().all(|s| digits(s) <= MAX_SEGMENT_DIGITS)
            && prefix.iter().map(digits).sum::<usize>() <= MAX_PATH_DIGITS
    };
    let rebuilt = |query| {
        Some(RisLink {
            host: host.clone(),
            path: format!("/{}", segments.join("/")),
            query,
        })
    };
    let (stem, extension) = page.split_once('.').unwrap_or((page, ""));
    let param = |pages: &[(&str, &'static str)], extensions: &[&str]| {
        pages
            .iter()
            .find(|(p, _)| *p == stem)
            .filter(|_| extensions.contains(&extension))
            .map(|(_, param)| *param)
    };
    if let Some(name) =
        param(ALLRIS, &["", "asp"]).or_else(|| param(SESSIONNET, &["", "asp", "php"]))
    {
        let id = single_id(query?, name)?;
        return if prefix_ok(prefix) {
            rebuilt(Some((name, id)))
        } else {
            None
        };
    }
    let oparl = prefix
        .iter()
        .position(|s| s.eq_ignore_ascii_case("oparl"))?;
    if !prefix_ok(&prefix[..oparl]) {
        return None;
    }
    match query {
        // ALLRIS 4: `…/oparl/papers?id=1001737` (ALLRIS net: `papers.asp?id=`).
        Some(query) => {
            if !(extension.is_empty() || extension == "asp")
                || !OPARL_TYPES.contains(&stem)
                || !stem.ends_with('s')
                || !prefix_ok(&prefix[oparl..])
            {
                return None;
            }
            let id = single_id(query, "id")?;
            rebuilt(Some(("id", id)))
        }
        // `…/paper/123`, `…/papers/vo/123`, `…/body/1/paper/1-12345`.
        None => {
            let parts: Vec<&str> = page.split('-').collect();
            let digits: usize = parts.iter().map(|p| p.len()).sum();
            if parts.len() > 2
                || digits > MAX_ID_DIGITS
                || !parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            {
                return None;
            }
            let after = &prefix[oparl + 1..];
            let kind = match after {
                [.., kind, vendor]
                    if vendor.len() <= 3 && vendor.bytes().all(|b| b.is_ascii_lowercase()) =>
                {
                    kind
                }
                [.., kind] => kind,
                [] => return None,
            };
            if OPARL_TYPES.contains(kind) && prefix_ok(after) {
                rebuilt(None)
            } else {
                None
            }
        }
    }
}

/// A host name of letters, digits, dots and hyphens, lower-cased; an explicit port is taken
/// only when it is the default one. User info (`user@`) is refused.
fn host(authority: &str) -> Option<String> {
    let (name, port) = match authority.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (authority, None),
    };
    if port.is_some_and(|p| p != "443" && p != "80") {
        return None;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let ok = !name.is_empty()
        && name.len() <= 253
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    ok.then(|| name.to_ascii_lowercase())
}

/// A path segment of the known alphabet, at most 40 characters, not `.`/`..`.
fn segment(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && s.bytes().any(|b| b != b'.')
}

/// The id when `query` is exactly `name=digits` (name case-insensitive), at most
/// [`MAX_ID_DIGITS`] digits.
fn single_id(query: &str, name: &str) -> Option<String> {
    let (key, id) = query.split_once('=')?;
    (key.eq_ignore_ascii_case(name)
        && (1..=MAX_ID_DIGITS).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_digit()))
    .then(|| id.to_owned())
}

fn patterns() -> &'static (Regex, Regex) {
    static RES: OnceLock<(Regex, Regex)> = OnceLock::new();
    RES.get_or_init(|| {
        (
            Regex::new(r"(?i)(?-u:\b)(?:Beschlussvorlage|Mitteilungsvorlage|Vorlage|Drucksache|Drs\.?|DS|Antrag|Anfrage)\s*(?:Nr\.?\s*)?((?:[A-Z]{1,4}[-/ ]?)?\d{1,4}[-/]\d{2,6}(?:-\d{1,3})?)(?-u:\b)")
                .expect("paper pattern"),
            // Candidates only: anything URL-like; [`parse_link`] decides.
            Regex::new(r#"(?i)https?://[^\s<>"'`{}|\\^\[\]]{1,500}"#).expect("url pattern"),
        )
    })
}

/// The references in `raw`, in order of appearance, without duplicates (at most 20).
#[must_use]
pub fn references(raw: &[u8], limits: &Inspect) -> Vec<Reference> {
    references_with(raw, limits, &patterns().0)
}

/// Like [`references`], with the municipality's own paper-number pattern: a regex whose first
/// capture group is the number (formats differ per RIS; see the reference notes).
#[must_use]
pub fn references_with(raw: &[u8], limits: &Inspect, paper: &Regex) -> Vec<Reference> {
    let url = &patterns().1;
    let mut out = Vec::new();
    for segment in crate::extract::extract(raw, limits).segments {
        for m in url.find_iter(&segment.text) {
            let candidate = m
                .as_str()
                .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '>']);
            if let Some(link) = parse_link(candidate) {
                out.push(Reference::Url(link));
            }
        }
        for c in paper.captures_iter(&segment.text) {
            if let Some(number) = c.get(1) {
                out.push(Reference::Paper(number.as_str().to_owned()));
            }
        }
    }
    let mut seen = Vec::new();
    out.retain(|r| {
        let new = !seen.contains(r);
        seen.push(r.clone());
        new
    });
    out.truncate(20);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Option<String> {
        parse_link(s).map(|l| l.url())
    }

    #[test]
    fn papers_and_ris_pages_are_found() {
        let raw = b"Subject: Unterlagen zu Vorlage 25-26613\r\n\r\nSiehe auch DS 46/2024 und Drucksache Nr. 1234/2014, \
            https://ris.example.de/bi/vo020.asp?VOLFDNR=1001737 und \
            https://sessionnet.example.de/vo0050.php?__kvonr=4711. Dokument: https://ris.example.de/bi/do027.asp?DOLFDNR=5.\r\n";
        let refs = references(raw, &Inspect::default());
        let link = |s: &str| Reference::Url(parse_link(s).expect("known shape"));
        assert_eq!(
            refs,
            [
                Reference::Paper("25-26613".into()),
                link("https://ris.example.de/bi/vo020.asp?VOLFDNR=1001737"),
                link("https://sessionnet.example.de/vo0050.php?__kvonr=4711"),
                Reference::Paper("46/2024".into()),
                Reference::Paper("1234/2014".into()),
            ]
        );
    }

    #[test]
    fn known_shapes_are_rebuilt_from_their_parts() {
        for (given, rebuilt) in [
            (
                "http://RIS.Example.de/bi/vo020.asp?volfdnr=1001737#top",
                "https://ris.example.de/bi/vo020.asp?VOLFDNR=1001737",
            ),
            (
                "https://www.bonn.sitzung-online.de:443/public/to010?SILFDNR=2825",
                "https://www.bonn.sitzung-online.de/public/to010?SILFDNR=2825",
            ),
            (
                "https://ris.example.de/bi/to020.asp?TOLFDNR=77",
                "https://ris.example.de/bi/to020.asp?TOLFDNR=77",
            ),
            (
                "https://ratsinfo.example.de/si0057.php?__ksinr=12",
                "https://ratsinfo.example.de/si0057.php?__ksinr=12",
            ),
            (
                "https://ris.example.de/public/oparl/papers?id=1001737",
                "https://ris.example.de/public/oparl/papers?id=1001737",
            ),
            (
                "https://ris.example.de/oparl/v1/paper/4711",
                "https://ris.example.de/oparl/v1/paper/4711",
            ),
            (
                "https://ris.example.de/oparl/bodies/0001/papers/vo/4711",
                "https://ris.example.de/oparl/bodies/0001/papers/vo/4711",
            ),
            (
                "https://rim.example.de/webservice/oparl/v1.1/body/1/paper/1-12345",
                "https://rim.example.de/webservice/oparl/v1.1/body/1/paper/1-12345",
            ),
        ] {
            assert_eq!(url(given).as_deref(), Some(rebuilt), "{given}");
        }
    }

    #[test]
    fn anything_beyond_the_known_shape_is_refused() {
        for bad in [
            // A second parameter, or data in the id.
            "https://ris.example.de/bi/vo020.asp?VOLFDNR=1&iban=DE89370400440532013000",
            "https://ris.example.de/bi/vo020.asp?VOLFDNR=1001737x",
            "https://ris.example.de/bi/vo020.asp?VOLFDNR=86095742719",
            "https://ris.example.de/bi/vo020.asp?DIAGNOSE=F32&VOLFDNR=1",
            "https://ris.example.de/bi/vo020.asp",
            // Another page, a session-bound download, an unknown extension.
            "https://ris.example.de/bi/do027.asp?DOLFDNR=5",
            "https://ris.example.de/bi/vo020.html?VOLFDNR=5",
            // User info, another port, odd hosts and paths.
            "https://steuer-86095742719@ris.example.de/bi/vo020.asp?VOLFDNR=1",
            "https://ris.example.de:8443/bi/vo020.asp?VOLFDNR=1",
            "https://ris.example.de/8609/5742/719/vo020.asp?VOLFDNR=1",
            "https://ris.example.de/bi/../vo020.asp?VOLFDNR=1",
            "https://ris.example.de/bi%20x/vo020.asp?VOLFDNR=1",
            // OParl: not an object type, a query where none belongs, a long id.
            "https://ris.example.de/oparl/v1/person/4711",
            "https://ris.example.de/oparl/v1/paper/4711?x=1",
            "https://ris.example.de/oparl/v1/paper/86095742719",
            "https://ris.example.de/oparl/papers?id=1&body=2",
            "https://ris.example.de/paper/4711",
            "ftp://ris.example.de/bi/vo020.asp?VOLFDNR=1",
        ] {
            assert_eq!(url(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_municipality_pattern_replaces_the_default() {
        let own = Regex::new(r"(?-u:\b)(BV/\d{4}/\d{4})").expect("pattern");
        let raw = b"Subject: x\r\n\r\nZu BV/2024/0123 und Vorlage 25-26613.\r\n";
        assert_eq!(
            references_with(raw, &Inspect::default(), &own),
            [Reference::Paper("BV/2024/0123".into())]
        );
    }

    #[test]
    fn ordinary_numbers_are_not_references() {
        let raw =
            b"Subject: x\r\n\r\nTel. 0531/470-2210, am 12/2024 bezahlt, Rechnung 2026-1184.\r\n";
        assert!(references(raw, &Inspect::default()).is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// Whatever follows a known page, the link shown is the rebuilt one or none: never
        /// a byte of the original query, fragment, port or user info.
        #[test]
        fn only_the_rebuilt_shape_comes_out(
            scheme in "(?i)https?://",
            userinfo in proptest::option::of("[a-z0-9.%:-]{1,12}@"),
            host in "[a-zA-Z0-9-]{1,10}\\.[a-z]{2,4}",
            port in proptest::option::of(":[0-9]{1,5}"),
            path in "(/[a-zA-Z0-9_.%-]{0,8}){0,3}",
            page in "(vo020\\.asp|to010|vo0050\\.php|si0057\\.php|oparl/v1/paper/[0-9-]{1,12}|oparl/papers)",
            query in "(\\?(VOLFDNR|__kvonr|__ksinr|id|SILFDNR)=[0-9]{1,10})?([?&=#A-Za-z0-9_%.-]{1,30})?",
        ) {
            let given = format!(
                "{scheme}{}{host}{}{path}/{page}{query}",
                userinfo.unwrap_or_default(),
                port.unwrap_or_default()
            );
            if let Some(link) = parse_link(&given) {
                let shape = Regex::new(
                    r"^https://[a-z0-9.-]+(/[A-Za-z0-9_.-]{1,40}){1,8}(\?(VOLFDNR|SILFDNR|__kvonr|__ksinr|id)=[0-9]{1,8})?$",
                )
                .expect("shape");
                let url = link.url();
                proptest::prop_assert!(shape.is_match(&url), "{given} -> {url}");
                proptest::prop_assert_eq!(link.host, host.to_ascii_lowercase());
                proptest::prop_assert!(!url.contains('#') && !url.contains('@') && !url.contains('%'));
                let digits = url.bytes().filter(u8::is_ascii_digit).count();
                proptest::prop_assert!(digits <= 8 + 8 + 4 + 8, "{url}");
            }
        }
    }
}
