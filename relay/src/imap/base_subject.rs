//! The base subject (RFC 5256 §2.1): what SORT SUBJECT compares and the threading
//! algorithms group by — the subject without `Re:`, `Fwd:`, `[list]` blobs and `(fwd)`
//! trailers.
//!
//! The input is the subject already decoded (encoded words undone, RFC 5256 §2.1 step 1).
//! The result is case-mapped ([`casemap`]: upper case, then NFKD — i;unicode-casemap of
//! RFC 5051 with upper case standing in for titlecase, which differs only for a few
//! digraphs), so two base subjects are equal when the comparator calls them equal, and
//! comparing them as strings is comparing with the comparator. Linear in the subject's length per pass: each pass removes
//! at least one character, and the work is bounded by the caller's subject length.

/// `text` as i;unicode-casemap (RFC 5051) compares it: upper case (for titlecase), then
/// compatibility decomposition (NFKD). For ASCII this is i;ascii-casemap.
#[must_use]
pub fn casemap(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    text.chars().flat_map(char::to_uppercase).nfkd().collect()
}

/// `subject`'s base subject (upper-cased) and whether it was a reply or forward (a
/// `Re:`/`Fw:`/`Fwd:` leader, a `(fwd)` trailer or a `[fwd: …]` wrapper was removed).
#[must_use]
pub fn base_subject(subject: &str) -> (String, bool) {
    // Step 1: whitespace runs (tabs, folding) become one space; case-mapped.
    let mut s: Vec<char> = Vec::with_capacity(subject.len());
    for c in casemap(subject).chars() {
        if c.is_whitespace() {
            if s.last() != Some(&' ') {
                s.push(' ');
            }
        } else {
            s.push(c);
        }
    }
    let mut reply = false;
    let mut start = 0;
    let mut end = s.len();
    loop {
        // Step 2: trailers, `(FWD)` or whitespace, repeatedly.
        loop {
            if end > start && s[end - 1] == ' ' {
                end -= 1;
            } else if end >= start + 5 && s[end - 5..end] == ['(', 'F', 'W', 'D', ')'] {
                end -= 5;
                reply = true;
            } else {
                break;
            }
        }
        // Steps 3 and 4, until neither changes anything.
        loop {
            let before = start;
            // Step 3: leaders (`*blob refwd` or whitespace), repeatedly.
            loop {
                if start < end && s[start] == ' ' {
                    start += 1;
                } else if let Some(n) = leader(&s[start..end]) {
                    start += n;
                    reply = true;
                } else {
                    break;
                }
            }
            // Step 4: one blob, when something is left after it.
            if let Some(n) = blob(&s[start..end])
                && start + n < end
            {
                start += n;
            }
            if start == before {
                break;
            }
        }
        // Step 5: `[FWD: base]`, then again from step 2.
        let t = &s[start..end];
        if t.len() >= 6 && t[..5] == ['[', 'F', 'W', 'D', ':'] && t[t.len() - 1] == ']' {
            start += 5;
            end -= 1;
            reply = true;
            continue;
        }
        break;
    }
    (s[start..end].iter().collect(), reply)
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: its length at the start of `s`.
fn blob(s: &[char]) -> Option<usize> {
    if s.first() != Some(&'[') {
        return None;
    }
    let close = s[1..].iter().position(|&c| c == ']' || c == '[')?;
    if s[1 + close] != ']' {
        return None;
    }
    let mut n = close + 2;
    while s.get(n) == Some(&' ') {
        n += 1;
    }
    Some(n)
}

/// `*subj-blob subj-refwd`, where `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`:
/// its length at the start of `s`.
fn leader(s: &[char]) -> Option<usize> {
    let mut n = 0;
    loop {
        if let Some(m) = refwd(&s[n..]) {
            return Some(n + m);
        }
        n += blob(&s[n..])?;
    }
}

fn refwd(s: &[char]) -> Option<usize> {
    let mut n = if s.starts_with(&['R', 'E']) {
        2
    } else if s.starts_with(&['F', 'W', 'D']) {
        3
    } else if s.starts_with(&['F', 'W']) {
        2
    } else {
        return None;
    };
    while s.get(n) == Some(&' ') {
        n += 1;
    }
    if let Some(m) = blob(&s[n..]) {
        n += m;
    }
    (s.get(n) == Some(&':')).then_some(n + 1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rfc_5256_examples_and_imaptest_subjects() {
        for (subject, base, reply) in [
            ("a", "A", false),
            ("", "", false),
            (" ", "", false),
            ("_", "_", false),
            ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "B", true),
            ("b (a)", "B (A)", false),
            ("Re: [FWD: c]", "C", true),
            ("[xyz]", "[XYZ]", false),
            ("RE: C", "C", true),
            ("Ad: Re: Ad: Re: Ad: x", "AD: RE: AD: RE: AD: X", false),
            ("re: [fwd: [fwd: re: [fwd: babylon]]]", "BABYLON", true),
            ("Re[2]: Sitzung\t am  Montag", "SITZUNG AM MONTAG", true),
            ("[list] Agenda", "AGENDA", false),
            ("Fwd:", "", true),
            ("Über  die Straße", "U\u{308}BER DIE STRASSE", false),
            // Fullwidth letters decompose to ASCII: a Japanese client's Ｒｅ： is a reply.
            ("Ｒｅ： ｘ", "X", true),
            ("Reply to all", "REPLY TO ALL", false),
        ] {
            assert_eq!(
                base_subject(subject),
                (base.to_owned(), reply),
                "{subject:?}"
            );
        }
    }

    proptest! {
        /// Base subjects are fixed points, never longer than the case-mapped input, and a
        /// reply's base subject is its original's.
        #[test]
        fn idempotent_and_reply_stable(subject in "[ a-zA-Z\\[\\]:()Rr]{0,40}") {
            let (base, _) = base_subject(&subject);
            let (again, _) = base_subject(&base);
            prop_assert_eq!(&again, &base);
            prop_assert!(base.chars().count() <= casemap(&subject).chars().count());
            let (replied, reply) = base_subject(&format!("Re: {subject}"));
            prop_assert!(reply);
            prop_assert_eq!(replied, base);
        }
    }
}
