//! ENVELOPE (RFC 3501 §7.4.2) from a message header, as Dovecot builds it: the fields as the
//! message has them (encoded words kept), unfolded (no CR or LF inside a string), address
//! lists with RFC 5322 group syntax (`(NIL NIL "group" NIL) … (NIL NIL NIL NIL)`) and source
//! routes (`<@route:user@domain>` → adl `"@route"`), and a comment as the name of an address
//! that has none (`user@domain (Real Name)`).
//!
//! The address parser is deliberately forgiving: whatever it cannot place becomes part of
//! the current address, never an error.

use imap_next::imap_types::core::{IString, NString};
use imap_next::imap_types::envelope::{Address, Envelope};

use super::message;

/// One element of an address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An address.
    Addr {
        /// Display name (or the comment), as written.
        name: Option<String>,
        /// Source route (`@a,@b`).
        adl: Option<String>,
        /// Local part.
        mailbox: Option<String>,
        /// Domain.
        host: Option<String>,
    },
    /// `name:` — the start of a group.
    GroupStart(String),
    /// `;` — the end of a group.
    GroupEnd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An atom (dots included) or a quoted string's content.
    Word {
        text: String,
        quoted: bool,
    },
    Comment(String),
    Special(char),
}

fn tokens(value: &str) -> Vec<Token> {
    let chars: Vec<char> = value.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' | '\n' => i += 1,
            '(' => {
                let mut depth = 0usize;
                let mut text = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    i += 1;
                    match c {
                        '\\' if i < chars.len() => {
                            text.push(chars[i]);
                            i += 1;
                        }
                        '(' => {
                            if depth > 0 {
                                text.push(c);
                            }
                            depth += 1;
                        }
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            text.push(c);
                        }
                        _ => text.push(c),
                    }
                }
                out.push(Token::Comment(text));
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    if chars[i] != '\r' && chars[i] != '\n' {
                        text.push(chars[i]);
                    }
                    i += 1;
                }
                i += 1;
                out.push(Token::Word { text, quoted: true });
            }
            '<' | '>' | ':' | ';' | ',' | '@' => {
                out.push(Token::Special(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !matches!(
                        chars[i],
                        ' ' | '\t' | '\r' | '\n' | '(' | '"' | '<' | '>' | ':' | ';' | ',' | '@'
                    )
                {
                    i += 1;
                }
                out.push(Token::Word {
                    text: chars[start..i].iter().collect(),
                    quoted: false,
                });
            }
        }
    }
    out
}

/// An address list (`From`, `To`, …) as its items.
#[must_use]
pub fn parse_list(value: &str) -> Vec<Item> {
    let toks = tokens(value);
    let mut out = Vec::new();
    let mut in_group = false;
    let mut i = 0;
    while i < toks.len() {
        // Everything up to the next `<`, `:`, `,`, `;`.
        let mut phrase: Vec<String> = Vec::new();
        let mut spec = String::new();
        let mut comment: Option<String> = None;
        while i < toks.len() {
            match &toks[i] {
                Token::Special('<' | ':' | ',' | ';') => break,
                Token::Special(c) => spec.push(*c),
                Token::Word { text, quoted } => {
                    phrase.push(text.clone());
                    if *quoted {
                        spec.push('"');
                        spec.push_str(text);
                        spec.push('"');
                    } else {
                        spec.push_str(text);
                    }
                }
                Token::Comment(c) => {
                    if !c.trim().is_empty() {
                        comment = Some(c.trim().to_owned());
                    }
                }
            }
            i += 1;
        }
        let name = (!phrase.is_empty()).then(|| phrase.join(" "));
        match toks.get(i) {
            Some(Token::Special(':')) if !in_group => {
                out.push(Item::GroupStart(name.unwrap_or_default()));
                in_group = true;
                i += 1;
                continue;
            }
            Some(Token::Special('<')) => {
                i += 1;
                let mut inner = String::new();
                let mut adl = None;
                while i < toks.len() && toks[i] != Token::Special('>') {
                    match &toks[i] {
                        Token::Special(':') if inner.starts_with('@') && adl.is_none() => {
                            adl = Some(std::mem::take(&mut inner));
                        }
                        Token::Special(c) => inner.push(*c),
                        Token::Word { text, quoted: true } => {
                            inner.push('"');
                            inner.push_str(text);
                            inner.push('"');
                        }
                        Token::Word { text, .. } => inner.push_str(text),
                        Token::Comment(_) => {}
                    }
                    i += 1;
                }
                i += 1;
                // Whatever follows up to the separator (a comment) is not part of it.
                while i < toks.len() && !matches!(toks[i], Token::Special(',' | ';')) {
                    i += 1;
                }
                out.push(addr(name.or(comment), adl, &inner));
            }
            _ => {
                if !spec.is_empty() {
                    out.push(addr(comment, None, &spec));
                }
            }
        }
        match toks.get(i) {
            Some(Token::Special(';')) => {
                if in_group {
                    out.push(Item::GroupEnd);
                    in_group = false;
                }
                i += 1;
            }
            Some(Token::Special(',' | ':')) => i += 1,
            _ => {}
        }
    }
    if in_group {
        out.push(Item::GroupEnd);
    }
    out
}

fn addr(name: Option<String>, adl: Option<String>, spec: &str) -> Item {
    let (mailbox, host) = match spec.rsplit_once('@') {
        Some((m, h)) => (m.to_owned(), Some(h.to_owned())),
        None => (spec.to_owned(), None),
    };
    // RFC 3501: the host is NIL only in group syntax; an address without a domain keeps "".
    Item::Addr {
        name,
        adl,
        mailbox: Some(mailbox),
        host: Some(host.unwrap_or_default()),
    }
}

/// A string for ENVELOPE: 8-bit text RFC 2047-encoded (a client that did not enable
/// UTF8=ACCEPT gets 7-bit), CR and LF never inside.
fn string(s: &str) -> IString<'static> {
    let clean: String = s.chars().filter(|&c| c != '\r' && c != '\n').collect();
    let clean = if clean.is_ascii() {
        clean
    } else {
        format!("=?utf-8?b?{}?=", crate::encoding::base64(clean.as_bytes()))
    };
    IString::try_from(clean.replace('\0', ""))
        .unwrap_or_else(|_| IString::try_from("").expect("empty"))
}

fn nstring(s: Option<&str>) -> NString<'static> {
    NString(s.map(string))
}

fn addresses(value: Option<&str>) -> Vec<Address<'static>> {
    let Some(value) = value else {
        return Vec::new();
    };
    parse_list(value)
        .into_iter()
        .map(|item| match item {
            Item::Addr {
                name,
                adl,
                mailbox,
                host,
            } => Address {
                name: nstring(name.as_deref()),
                adl: nstring(adl.as_deref()),
                mailbox: nstring(mailbox.as_deref()),
                host: nstring(host.as_deref()),
            },
            Item::GroupStart(name) => Address {
                name: NString(None),
                adl: NString(None),
                mailbox: nstring(Some(&name)),
                host: NString(None),
            },
            Item::GroupEnd => Address {
                name: NString(None),
                adl: NString(None),
                mailbox: NString(None),
                host: NString(None),
            },
        })
        .collect()
}

/// ENVELOPE of the message whose header is `header`.
#[must_use]
pub fn envelope(header: &[u8]) -> Envelope<'static> {
    let field = |name: &str| message::field(header, name).filter(|v| !v.is_empty());
    let from = addresses(field("From").as_deref());
    let sender = addresses(field("Sender").as_deref());
    let reply_to = addresses(field("Reply-To").as_deref());
    Envelope {
        date: nstring(field("Date").as_deref()),
        subject: nstring(field("Subject").as_deref()),
        sender: if sender.is_empty() {
            from.clone()
        } else {
            sender
        },
        reply_to: if reply_to.is_empty() {
            from.clone()
        } else {
            reply_to
        },
        from,
        to: addresses(field("To").as_deref()),
        cc: addresses(field("Cc").as_deref()),
        bcc: addresses(field("Bcc").as_deref()),
        in_reply_to: nstring(field("In-Reply-To").as_deref()),
        message_id: nstring(field("Message-ID").as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, adl: Option<&str>, mailbox: &str, host: &str) -> Item {
        Item::Addr {
            name: name.map(str::to_owned),
            adl: adl.map(str::to_owned),
            mailbox: Some(mailbox.to_owned()),
            host: Some(host.to_owned()),
        }
    }

    #[test]
    fn address_lists_with_groups_routes_and_comments() {
        let cases: &[(&str, Vec<Item>)] = &[
            (
                "From Real <fromuser@fromdomain.org>",
                vec![a(Some("From Real"), None, "fromuser", "fromdomain.org")],
            ),
            ("user@domain", vec![a(None, None, "user", "domain")]),
            (
                "user@domain (Real Name)",
                vec![a(Some("Real Name"), None, "user", "domain")],
            ),
            (
                "<@route:user@domain>",
                vec![a(None, Some("@route"), "user", "domain")],
            ),
            (
                "group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;",
                vec![
                    Item::GroupStart("group".into()),
                    a(None, None, "g1", "d1.org"),
                    a(None, None, "g2", "d2.org"),
                    Item::GroupEnd,
                    Item::GroupStart("group2".into()),
                    a(None, None, "g3", "d3.org"),
                    Item::GroupEnd,
                ],
            ),
            (
                "group:;, group2: (foo) ;",
                vec![
                    Item::GroupStart("group".into()),
                    Item::GroupEnd,
                    Item::GroupStart("group2".into()),
                    Item::GroupEnd,
                ],
            ),
            (
                "\"Schmidt, Anna\" <anna@stadt.test>, =?utf-8?q?J=C3=BCrgen?= <j@x.test>",
                vec![
                    a(Some("Schmidt, Anna"), None, "anna", "stadt.test"),
                    a(Some("=?utf-8?q?J=C3=BCrgen?="), None, "j", "x.test"),
                ],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(&parse_list(input), expected, "{input}");
        }
    }

    /// Case 13 of the client reports: a folded Subject and Message-ID come unfolded.
    #[test]
    fn envelope_strings_are_unfolded() {
        let raw = include_bytes!("../../../tests/cases/imap/13-envelope-folded-subject.eml");
        let e = envelope(message::header(raw));
        assert_eq!(
            e.subject,
            nstring(Some(
                "Einladung zur Sitzung des Ausschusses fuer Umwelt, Verkehr und Stadtentwicklung am Donnerstag"
            ))
        );
        assert_eq!(e.message_id, nstring(Some("<case13@stadt.example>")));
    }

    #[test]
    fn empty_sender_and_reply_to_default_to_from() {
        let e = envelope(b"From: user@domain (Real Name)\r\nSender: \r\nReply-To: \r\n\r\n");
        assert_eq!(e.sender, e.from);
        assert_eq!(e.reply_to, e.from);
        assert_eq!(e.from[0].name, nstring(Some("Real Name")));
    }
}
