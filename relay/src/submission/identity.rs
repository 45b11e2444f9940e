//! Whose name a submitted message is sent in: the envelope sender and every originator
//! field must be one of the user's own addresses.
//!
//! The fields are `From:` (exactly one, RFC 5322 §3.6), `Sender:`, `Resent-From:` and
//! `Resent-Sender:` (RFC 5322 §3.6.2, §3.6.6): a `Sender:` or a resent block is not a
//! loophole. Addresses are parsed with mail-parser; because the city's server may parse a
//! field differently, a field is also refused when the number of `@` outside its quoted
//! strings and comments differs from the number of addresses mail-parser found in it — two
//! parsers that disagree about what an address is cannot be trusted with this decision.

/// The originator fields checked.
const FIELDS: [&str; 4] = ["From", "Sender", "Resent-From", "Resent-Sender"];

/// Why a message may not be sent in this user's name. The text is the SMTP reply's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `From:` field.
    #[error("the message has no From: field")]
    NoFrom,
    /// `From:` or `Sender:` more than once.
    #[error("the message has more than one {0}: field")]
    Repeated(&'static str),
    /// A field whose addresses cannot be read unambiguously.
    #[error("the {0}: field cannot be read unambiguously")]
    Unreadable(&'static str),
    /// A line in the header section that is neither a field nor a continuation.
    #[error("the header has a line that is not a header field")]
    NotAField,
    /// A display name or comment that shows an address that is not the user's.
    #[error(
        "the {field}: field shows {address} in its display name, which is not one of your addresses"
    )]
    ShownAddress {
        /// The field.
        field: &'static str,
        /// The address shown (cleaned for the reply).
        address: String,
    },
    /// An address that is not the user's.
    #[error("{address} in the {field}: field is not one of your addresses")]
    Foreign {
        /// The field.
        field: &'static str,
        /// The address found.
        address: String,
    },
}

/// Whether `address` is one of `own` (lower-case addresses), ignoring case.
#[must_use]
pub fn is_own(address: &str, own: &[String]) -> bool {
    let address = address.trim().to_lowercase();
    !address.is_empty() && own.contains(&address)
}

/// Checks the originator fields in the header section of `raw` against `own` (the user's
/// addresses, lower case).
///
/// # Errors
/// The first [`Refusal`] found.
pub fn check(raw: &[u8], own: &[String]) -> Result<(), Refusal> {
    let mut seen = [0usize; FIELDS.len()];
    for (name, value) in header_fields(raw)? {
        let Some(i) = FIELDS.iter().position(|f| f.eq_ignore_ascii_case(&name)) else {
            continue;
        };
        let field = FIELDS[i];
        seen[i] += 1;
        // Resent blocks may repeat (one per resending); From and Sender may not.
        if seen[i] > 1 && i < 2 {
            return Err(Refusal::Repeated(field));
        }
        let (addresses, names) = addresses(&value).ok_or(Refusal::Unreadable(field))?;
        let well_formed = |a: &String| {
            a.rsplit_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        };
        if addresses.is_empty()
            || addresses.len() != at_signs(&value)
            || !addresses.iter().all(well_formed)
        {
            return Err(Refusal::Unreadable(field));
        }
        if let Some(address) = addresses.into_iter().find(|a| !is_own(a, own)) {
            return Err(Refusal::Foreign {
                field,
                address: cleaned(&address),
            });
        }
        // Whatever looks like an address in the raw field (quoted names, comments) or in the
        // decoded display names (encoded words) must be the user's own as well.
        let shown = names.iter().chain([&value]).map(|t| t.as_str());
        if let Some(address) = shown.flat_map(shown_addresses).find(|a| !is_own(a, own)) {
            return Err(Refusal::ShownAddress {
                field,
                address: cleaned(&address),
            });
        }
    }
    if seen[0] == 0 {
        return Err(Refusal::NoFrom);
    }
    Ok(())
}

/// The header section's fields as (name, unfolded value), raw bytes read as UTF-8 with
/// replacement, up to the first empty line (RFC 5322 §2.2).
///
/// # Errors
/// `NotAField` for a line that is neither a field (a name of printable ASCII, white space
/// allowed before the colon by RFC 5322 §4.5.1's obs-syntax: "From :") nor a continuation.
fn header_fields(raw: &[u8]) -> Result<Vec<(String, String)>, Refusal> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            match fields.last_mut() {
                Some((_, value)) => value.push_str(&String::from_utf8_lossy(line)),
                None => return Err(Refusal::NotAField),
            }
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(Refusal::NotAField)?;
        let name = line[..colon].trim_ascii_end();
        if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
            return Err(Refusal::NotAField);
        }
        fields.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(&line[colon + 1..]).into_owned(),
        ));
    }
    Ok(fields)
}

/// Address-like words in `text` (`local@domain.tld`), lower case: what a reader would take
/// for an address in a display name or comment.
fn shown_addresses(text: &str) -> Vec<String> {
    let stop = |c: char| c.is_whitespace() || "<>\"()[],;:'`".contains(c);
    text.split(stop)
        .filter_map(|word| {
            let (local, domain) = word.rsplit_once('@')?;
            let domain = domain.trim_end_matches('.');
            (!local.is_empty() && domain.contains('.') && !domain.starts_with('.'))
                .then(|| format!("{local}@{domain}").to_lowercase())
        })
        .collect()
}

/// `address` as it may appear in a reply and the log: no control characters, at most 254
/// characters.
fn cleaned(address: &str) -> String {
    address
        .chars()
        .take(254)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The addresses of an address-list field value, groups flattened, and the decoded
/// display names (and group names); `None` when mail-parser cannot read it (or panics on it).
fn addresses(value: &str) -> Option<(Vec<String>, Vec<String>)> {
    let header = format!("From:{value}\r\n\r\n");
    std::panic::catch_unwind(|| {
        let parsed = mail_parser::MessageParser::new().parse_headers(header.as_bytes())?;
        let list = parsed.from()?;
        let (mut out, mut names) = (Vec::new(), Vec::new());
        let mut add = |a: &mail_parser::Addr<'_>| -> Option<()> {
            out.push(a.address()?.to_owned());
            names.extend(a.name().map(str::to_owned));
            Some(())
        };
        match list {
            mail_parser::Address::List(addrs) => {
                for a in addrs {
                    add(a)?;
                }
            }
            mail_parser::Address::Group(groups) => {
                for g in groups {
                    for a in &g.addresses {
                        add(a)?;
                    }
                }
                names.extend(
                    groups
                        .iter()
                        .filter_map(|g| g.name.as_deref().map(str::to_owned)),
                );
            }
        }
        Some((out, names))
    })
    .ok()
    .flatten()
}

/// `@` signs outside quoted strings and (nested) comments: one per address in a
/// well-formed address list.
fn at_signs(value: &str) -> usize {
    let (mut n, mut quoted, mut depth, mut escaped) = (0, false, 0usize, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            '@' if !quoted && depth == 0 => n += 1,
            _ => {}
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn own() -> Vec<String> {
        vec![
            "anna.schmidt@stadt.example".to_owned(),
            "fraktion@stadt.example".to_owned(),
        ]
    }

    fn msg(headers: &str) -> Vec<u8> {
        format!("{headers}Subject: Antwort\r\n\r\nHallo\r\n").into_bytes()
    }

    #[test]
    fn own_addresses_pass() {
        for h in [
            "From: anna.schmidt@stadt.example\r\n",
            "From: Anna Schmidt <Anna.Schmidt@Stadt.Example>\r\n",
            "From: \"Schmidt, Anna\" <anna.schmidt@stadt.example>\r\n",
            "From: anna.schmidt@stadt.example, fraktion@stadt.example\r\nSender: anna.schmidt@stadt.example\r\n",
            "From:\r\n Anna <anna.schmidt@stadt.example>\r\n",
            "From: =?utf-8?q?J=C3=B6rg_=40_Fraktion?= <fraktion@stadt.example>\r\n",
            "From: Anna (Ratsbüro) <anna.schmidt@stadt.example>\r\n",
            "From: \"anna.schmidt@stadt.example\" <anna.schmidt@stadt.example>\r\n",
            "From: Anna via Fraktion <anna.schmidt@stadt.example>\r\nX-Note: a@b\r\n",
        ] {
            assert_eq!(check(&msg(h), &own()), Ok(()), "{h}");
        }
    }

    /// What a refusal must look like.
    type Expected = fn(&Refusal) -> bool;

    #[test]
    fn anything_else_is_refused() {
        let cases: [(&str, Expected); 16] = [
            // A line that is no field: parsers differ on whether the header ends there.
            (
                "From: anna.schmidt@stadt.example\r\nGarbage line\r\nFrom: buergermeister@stadt.example\r\n",
                |r| *r == Refusal::NotAField,
            ),
            ("X-A: a\r\n continued\r\nNo colon here\r\n", |r| {
                *r == Refusal::NotAField
            }),
            // Another address shown in a display name, a comment or an encoded word.
            (
                "From: \"Anna <buergermeister@stadt.example>\" <anna.schmidt@stadt.example>\r\n",
                |r| matches!(r, Refusal::ShownAddress { field: "From", .. }),
            ),
            (
                "From: (buergermeister@stadt.example) <anna.schmidt@stadt.example>\r\n",
                |r| matches!(r, Refusal::ShownAddress { .. }),
            ),
            (
                "From: =?utf-8?q?buergermeister=40stadt=2Eexample?= <anna.schmidt@stadt.example>\r\n",
                |r| matches!(r, Refusal::ShownAddress { .. }),
            ),
            // A quoted local part mail-parser reads without it.
            ("From: \"x\"@stadt.example\r\n", |r| {
                matches!(r, Refusal::Unreadable(_) | Refusal::Foreign { .. })
            }),
            ("", |r| *r == Refusal::NoFrom),
            ("From: buergermeister@stadt.example\r\n", |r| {
                matches!(r, Refusal::Foreign { field: "From", .. })
            }),
            (
                "From: anna.schmidt@stadt.example\r\nSender: buergermeister@stadt.example\r\n",
                |r| {
                    matches!(
                        r,
                        Refusal::Foreign {
                            field: "Sender",
                            ..
                        }
                    )
                },
            ),
            (
                "From: anna.schmidt@stadt.example\r\nFrom: buergermeister@stadt.example\r\n",
                |r| *r == Refusal::Repeated("From"),
            ),
            (
                "From: anna.schmidt@stadt.example, buergermeister@stadt.example\r\n",
                |r| matches!(r, Refusal::Foreign { .. }),
            ),
            ("from : buergermeister@stadt.example\r\n", |r| {
                matches!(r, Refusal::Foreign { .. })
            }),
            (
                "From: anna.schmidt@stadt.example\r\nResent-From: buergermeister@stadt.example\r\n",
                |r| {
                    matches!(
                        r,
                        Refusal::Foreign {
                            field: "Resent-From",
                            ..
                        }
                    )
                },
            ),
            // Two addresses in one angle pair: parsers differ on which one counts.
            (
                "From: <anna.schmidt@stadt.example> <buergermeister@stadt.example>\r\n",
                |r| matches!(r, Refusal::Unreadable(_) | Refusal::Foreign { .. }),
            ),
            ("From: undisclosed:;\r\n", |r| {
                *r == Refusal::Unreadable("From")
            }),
            (
                "From: anna.schmidt@stadt.example@buergermeister.example\r\n",
                |r| matches!(r, Refusal::Unreadable(_) | Refusal::Foreign { .. }),
            ),
        ];
        for (h, expected) in cases {
            let got = check(&msg(h), &own());
            assert!(got.as_ref().is_err_and(expected), "{h:?}: {got:?}");
        }
    }

    proptest! {
        /// Whatever the From: field holds, the message passes only if every address
        /// mail-parser sees in it is the user's own — and checking never panics.
        #[test]
        fn only_own_addresses_pass(value in "[ -~]{0,80}") {
            let raw = msg(&format!("From: {value}\r\n"));
            if check(&raw, &own()).is_ok() {
                let (found, _) = addresses(&value).expect("readable");
                prop_assert!(!found.is_empty());
                prop_assert!(found.iter().all(|a| is_own(a, &own())), "{value:?}");
            }
        }

        /// Refusals quote at most 254 characters of an address, without control characters.
        #[test]
        fn refusals_quote_clean_short_addresses(local in "[a-z\x1b\x07]{1,400}") {
            let raw = msg(&format!("From: {local}@stadt.example\r\n"));
            if let Err(Refusal::Foreign { address, .. } | Refusal::ShownAddress { address, .. }) = check(&raw, &own()) {
                prop_assert!(address.chars().count() <= 254);
                prop_assert!(!address.chars().any(char::is_control));
            }
        }

        /// A foreign address anywhere among own ones, under any display name, is refused.
        #[test]
        fn a_foreign_address_is_never_hidden(
            name in "[A-Za-z ]{0,20}",
            position in 0usize..3,
            domain in "[a-z]{1,10}\\.example",
        ) {
            let foreign = format!("buergermeister@{domain}");
            let mut list = vec![
                "anna.schmidt@stadt.example".to_owned(),
                "fraktion@stadt.example".to_owned(),
            ];
            list.insert(position.min(2), format!("{name} <{foreign}>"));
            let raw = msg(&format!("From: {}\r\n", list.join(", ")));
            prop_assert!(check(&raw, &own()).is_err());
        }
    }
}
