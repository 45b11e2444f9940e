//! Commands of extensions that imap-codec does not parse, recognised in a whole command
//! ([`super::framing`]) before it reaches imap-codec: SEARCH with `RETURN` (ESEARCH,
//! RFC 4731), APPEND with several messages (MULTIAPPEND, RFC 3502) and LIST with
//! selection options, several patterns or `RETURN` (LIST-EXTENDED, RFC 5258; LIST-STATUS,
//! RFC 5819).
//!
//! Each is cut down to what imap-codec does parse — the SEARCH without its `RETURN`
//! clause, one single-message APPEND per message — so the grammar of criteria, flags and
//! dates stays imap-codec's; only the extension's own syntax is read here. Anything else is
//! left alone (`None`), and imap-codec judges it as before.

/// What ESEARCH's `RETURN (…)` asks for (RFC 4731 §3.1). `RETURN ()` means `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchReturn {
    /// `MIN`: the lowest matching number.
    pub min: bool,
    /// `MAX`: the highest.
    pub max: bool,
    /// `ALL`: every match, as a sequence set.
    pub all: bool,
    /// `COUNT`: how many.
    pub count: bool,
}

/// LIST-EXTENDED's selection options (RFC 5258 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListSelect {
    /// `SUBSCRIBED`: subscriptions, whether or not the mailbox exists.
    pub subscribed: bool,
    /// `REMOTE`: also remote mailboxes (ratspost has none).
    pub remote: bool,
    /// `RECURSIVEMATCH`: a parent whose child matches gets `CHILDINFO`.
    pub recursive: bool,
    /// `SPECIAL-USE`: only special-use mailboxes (RFC 6154 §3).
    pub special_use: bool,
}

/// LIST-EXTENDED's return options (RFC 5258 §3.2, RFC 5819, RFC 6154).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListReturn {
    /// `SUBSCRIBED`: mark subscribed mailboxes `\Subscribed`.
    pub subscribed: bool,
    /// `CHILDREN`: `\HasChildren` / `\HasNoChildren`.
    pub children: bool,
    /// `SPECIAL-USE`: the special-use attribute.
    pub special_use: bool,
    /// `STATUS (…)`: the status items asked for, upper case (LIST-STATUS).
    pub status: Option<Vec<String>>,
}

/// An extension command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extended {
    /// `[UID] SEARCH RETURN (…) criteria`: `command` is the same SEARCH without the
    /// `RETURN` clause, for imap-codec.
    Search {
        /// The command's tag.
        tag: String,
        /// The SEARCH without `RETURN (…)`.
        command: Vec<u8>,
        /// Whether it is `UID SEARCH`.
        uid: bool,
        /// What to return.
        ret: SearchReturn,
    },
    /// `APPEND mailbox (msg)+` with more than one message: `commands` are one
    /// single-message APPEND per message, each for imap-codec, all under `tag`.
    MultiAppend {
        /// The command's tag.
        tag: String,
        /// One APPEND per message.
        commands: Vec<Vec<u8>>,
    },
    /// `LIST` with selection options, several patterns or `RETURN` (RFC 5258 §6).
    List {
        /// The command's tag.
        tag: String,
        /// Selection options.
        select: ListSelect,
        /// The reference name, as the client sent it (modified UTF-7).
        reference: Vec<u8>,
        /// The patterns, as the client sent them (modified UTF-7).
        patterns: Vec<Vec<u8>>,
        /// Return options.
        ret: ListReturn,
    },
    /// An extension command that is malformed: answer `BAD` with `why`.
    Bad {
        /// The command's tag.
        tag: String,
        /// What is wrong, for the client.
        why: &'static str,
    },
}

/// A reader over one command's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// An atom (RFC 9051 `ATOM-CHAR`, and `]`, `%`, `*` as in list-mailbox and flags).
    fn atom(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        while let Some(b) = self.peek() {
            if b <= b' ' || b >= 0x7f || matches!(b, b'(' | b')' | b'{' | b'"') {
                break;
            }
            self.at += 1;
        }
        (self.at > start).then(|| &self.bytes[start..self.at])
    }

    /// A quoted string, returned with its quotes (it is handed on as written).
    fn quoted(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        if !self.eat(b'"') {
            return None;
        }
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(&self.bytes[start..self.at]);
                }
                b'\\' => self.at += 2,
                b'\r' | b'\n' => return None,
                _ => self.at += 1,
            }
        }
    }

    /// A literal as the framer hands it on (`{n+}` or `~{n+}`, CRLF, data), returned whole.
    fn literal(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        self.eat(b'~');
        if !self.eat(b'{') {
            self.at = start;
            return None;
        }
        let digits = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let n: usize = std::str::from_utf8(&self.bytes[digits..self.at])
            .ok()?
            .parse()
            .ok()?;
        self.eat(b'+');
        if !self.eat(b'}') {
            return None;
        }
        self.eat(b'\r');
        if !self.eat(b'\n') {
            return None;
        }
        let end = self.at.checked_add(n)?;
        if end > self.bytes.len() {
            return None;
        }
        self.at = end;
        Some(&self.bytes[start..end])
    }

    /// An astring: atom, quoted string or literal, as written.
    fn astring(&mut self) -> Option<&'a [u8]> {
        match self.peek()? {
            b'"' => self.quoted(),
            b'{' | b'~' => self.literal(),
            _ => self.atom(),
        }
    }

    /// A parenthesised list, as written (nested lists and strings inside).
    fn list(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        if !self.eat(b'(') {
            return None;
        }
        let mut depth = 1;
        while depth > 0 {
            match self.peek()? {
                b'(' => {
                    depth += 1;
                    self.at += 1;
                }
                b')' => {
                    depth -= 1;
                    self.at += 1;
                }
                b'"' => {
                    self.quoted()?;
                }
                b'{' | b'~' => {
                    if self.literal().is_none() {
                        self.at += 1;
                    }
                }
                _ => self.at += 1,
            }
        }
        Some(&self.bytes[start..self.at])
    }

    /// An astring's (or list-mailbox's) content: quotes and escapes removed, a literal's
    /// data.
    fn string(&mut self) -> Option<Vec<u8>> {
        match self.peek()? {
            b'"' => {
                let q = self.quoted()?;
                let mut out = Vec::with_capacity(q.len());
                let mut escaped = false;
                for &b in &q[1..q.len() - 1] {
                    if b == b'\\' && !escaped {
                        escaped = true;
                    } else {
                        out.push(b);
                        escaped = false;
                    }
                }
                Some(out)
            }
            b'{' | b'~' => {
                let l = self.literal()?;
                let data = l.iter().position(|&b| b == b'\n')? + 1;
                Some(l[data..].to_vec())
            }
            _ => self.atom().map(<[u8]>::to_vec),
        }
    }

    /// Option atoms up to `)` (the `(` is read already), each upper-cased and handed to
    /// `take`, which says whether it knows it; `None` at the first it does not, or at
    /// anything that is not an atom.
    fn options(&mut self, mut take: impl FnMut(&[u8]) -> bool) -> Option<()> {
        loop {
            self.eat(b' ');
            if self.eat(b')') {
                return Some(());
            }
            if !take(&self.atom()?.to_ascii_uppercase()) {
                return None;
            }
        }
    }

    fn at_end(&self) -> bool {
        matches!(&self.bytes[self.at..], b"" | b"\r\n" | b"\n")
    }
}

/// The extension command in `command` (a whole command from the framer), or `None` when it
/// is none of ours and goes to imap-codec as it is.
#[must_use]
pub fn parse(command: &[u8]) -> Option<Extended> {
    let mut r = Reader {
        bytes: command,
        at: 0,
    };
    let tag = r.atom()?;
    let tag_text = String::from_utf8(tag.to_vec()).ok()?;
    if !r.eat(b' ') {
        return None;
    }
    let word_start = r.at;
    let mut word = r.atom()?;
    let uid = word.eq_ignore_ascii_case(b"UID");
    if uid {
        if !r.eat(b' ') {
            return None;
        }
        word = r.atom()?;
    }
    if word.eq_ignore_ascii_case(b"SEARCH") {
        search(&mut r, &tag_text, &command[..word_start], uid)
    } else if word.eq_ignore_ascii_case(b"APPEND") && !uid {
        append(&mut r, &tag_text, &command[..word_start])
    } else if word.eq_ignore_ascii_case(b"LIST") && !uid {
        list(&mut r, &tag_text)
    } else {
        None
    }
}

/// `SEARCH SP "RETURN" SP "(" [options] ")" SP criteria` (RFC 4731 §3.1).
fn search(r: &mut Reader<'_>, tag: &str, head: &[u8], uid: bool) -> Option<Extended> {
    let before = r.at;
    if !r.eat(b' ') {
        return None;
    }
    let is_return = r.atom().is_some_and(|w| w.eq_ignore_ascii_case(b"RETURN"));
    if !is_return {
        r.at = before;
        return None;
    }
    let bad = |why| {
        Some(Extended::Bad {
            tag: tag.to_owned(),
            why,
        })
    };
    if !r.eat(b' ') || !r.eat(b'(') {
        return bad("RETURN needs a list of options");
    }
    let mut ret = SearchReturn::default();
    let known = r.options(|option| {
        match option {
            b"MIN" => ret.min = true,
            b"MAX" => ret.max = true,
            b"ALL" => ret.all = true,
            b"COUNT" => ret.count = true,
            _ => return false,
        }
        true
    });
    if known.is_none() {
        return bad("RETURN options are MIN, MAX, ALL and COUNT");
    }
    if ret == SearchReturn::default() {
        ret.all = true;
    }
    let mut command = head.to_vec();
    if uid {
        command.extend_from_slice(b"UID ");
    }
    command.extend_from_slice(b"SEARCH");
    command.extend_from_slice(&r.bytes[r.at..]);
    Some(Extended::Search {
        tag: tag.to_owned(),
        command,
        uid,
        ret,
    })
}

/// `APPEND SP mailbox 1*(SP [flag-list SP] [date-time SP] literal)` (RFC 3502 §6): `None`
/// for a single message.
fn append(r: &mut Reader<'_>, tag: &str, head: &[u8]) -> Option<Extended> {
    if !r.eat(b' ') {
        return None;
    }
    let mailbox = r.astring()?;
    let mut commands = Vec::new();
    while r.eat(b' ') {
        let mut parts: Vec<&[u8]> = vec![b"APPEND", mailbox];
        if r.peek() == Some(b'(') {
            parts.push(r.list()?);
            if !r.eat(b' ') {
                return None;
            }
        }
        if r.peek() == Some(b'"') {
            parts.push(r.quoted()?);
            if !r.eat(b' ') {
                return None;
            }
        }
        parts.push(r.literal()?);
        let mut command = head.to_vec();
        command.extend_from_slice(&parts.join(&b' '));
        command.extend_from_slice(b"\r\n");
        commands.push(command);
    }
    if !r.at_end() {
        return None;
    }
    (commands.len() > 1).then(|| Extended::MultiAppend {
        tag: tag.to_owned(),
        commands,
    })
}

/// `LIST [SP "(" selection-options ")"] SP mailbox SP (list-mailbox | "(" patterns ")")
/// [SP "RETURN" SP "(" return-options ")"]` (RFC 5258 §6, RFC 5819 §3): `None` for a plain
/// LIST, which imap-codec reads.
fn list(r: &mut Reader<'_>, tag: &str) -> Option<Extended> {
    let bad = |why| {
        Some(Extended::Bad {
            tag: tag.to_owned(),
            why,
        })
    };
    // Only a LIST already known to be extended is answered BAD; a plain one goes to
    // imap-codec, which judges it as before.
    let fail = |extended: bool, why| if extended { bad(why) } else { None };
    if !r.eat(b' ') {
        return None;
    }
    let mut extended = false;
    let mut select = ListSelect::default();
    if r.eat(b'(') {
        extended = true;
        let known = r.options(|option| {
            match option {
                b"SUBSCRIBED" => select.subscribed = true,
                b"REMOTE" => select.remote = true,
                b"RECURSIVEMATCH" => select.recursive = true,
                b"SPECIAL-USE" => select.special_use = true,
                _ => return false,
            }
            true
        });
        if known.is_none() {
            return bad("unknown LIST selection option");
        }
        // RECURSIVEMATCH needs another option that is not REMOTE (RFC 5258 §3.1).
        if select.recursive && !select.subscribed && !select.special_use {
            return bad("RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE");
        }
        if !r.eat(b' ') {
            return bad("LIST needs a reference and a pattern");
        }
    }
    let Some(reference) = r.string() else {
        return fail(extended, "invalid LIST reference");
    };
    if !r.eat(b' ') {
        return fail(extended, "LIST needs a pattern");
    }
    let mut patterns = Vec::new();
    if r.eat(b'(') {
        extended = true;
        loop {
            r.eat(b' ');
            if r.eat(b')') {
                break;
            }
            let Some(pattern) = r.string() else {
                return bad("invalid LIST pattern");
            };
            patterns.push(pattern);
        }
        if patterns.is_empty() {
            return bad("LIST needs a pattern");
        }
    } else {
        let Some(pattern) = r.string() else {
            return fail(extended, "invalid LIST pattern");
        };
        patterns.push(pattern);
    }
    let mut ret = ListReturn::default();
    if r.eat(b' ') {
        let is_return = r.atom().is_some_and(|w| w.eq_ignore_ascii_case(b"RETURN"));
        if !is_return || !r.eat(b' ') || !r.eat(b'(') {
            return bad("invalid LIST arguments");
        }
        extended = true;
        loop {
            r.eat(b' ');
            if r.eat(b')') {
                break;
            }
            let Some(option) = r.atom() else {
                return bad("invalid LIST return options");
            };
            match option.to_ascii_uppercase().as_slice() {
                b"SUBSCRIBED" => ret.subscribed = true,
                b"CHILDREN" => ret.children = true,
                b"SPECIAL-USE" => ret.special_use = true,
                b"STATUS" => {
                    if !r.eat(b' ') || !r.eat(b'(') {
                        return bad("STATUS needs a list of items");
                    }
                    let mut items = Vec::new();
                    loop {
                        r.eat(b' ');
                        if r.eat(b')') {
                            break;
                        }
                        let Some(item) = r.atom() else {
                            return bad("invalid STATUS items");
                        };
                        let item = String::from_utf8_lossy(item).to_ascii_uppercase();
                        if !matches!(
                            item.as_str(),
                            "MESSAGES"
                                | "RECENT"
                                | "UIDNEXT"
                                | "UIDVALIDITY"
                                | "UNSEEN"
                                | "DELETED"
                                | "HIGHESTMODSEQ"
                        ) {
                            return bad("unknown STATUS item");
                        }
                        items.push(item);
                    }
                    ret.status = Some(items);
                }
                _ => return bad("unknown LIST return option"),
            }
        }
    }
    if !r.at_end() {
        return fail(extended, "invalid LIST arguments");
    }
    extended.then(|| Extended::List {
        tag: tag.to_owned(),
        select,
        reference,
        patterns,
        ret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esearch_return_options_are_read_and_cut() {
        assert_eq!(
            parse(b"a UID SEARCH RETURN (MIN count) SEEN UNDELETED\r\n"),
            Some(Extended::Search {
                tag: "a".to_owned(),
                command: b"a UID SEARCH SEEN UNDELETED\r\n".to_vec(),
                uid: true,
                ret: SearchReturn {
                    min: true,
                    count: true,
                    ..SearchReturn::default()
                }
            })
        );
        let Some(Extended::Search { ret, command, .. }) =
            parse(b"b search return () charset utf-8 text {3+}\r\nabc\r\n")
        else {
            panic!("not an ESEARCH");
        };
        assert_eq!(
            ret,
            SearchReturn {
                all: true,
                ..SearchReturn::default()
            }
        );
        assert_eq!(command, b"b SEARCH charset utf-8 text {3+}\r\nabc\r\n");
        assert_eq!(
            parse(b"c SEARCH RETURN (SAVE) ALL\r\n"),
            Some(Extended::Bad {
                tag: "c".to_owned(),
                why: "RETURN options are MIN, MAX, ALL and COUNT"
            })
        );
        // Plain SEARCH, and a search for the word "return", are imap-codec's.
        assert_eq!(parse(b"d SEARCH ALL\r\n"), None);
        assert_eq!(parse(b"e SEARCH TEXT RETURN\r\n"), None);
    }

    #[test]
    fn multiappend_is_cut_into_single_appends() {
        let command =
            b"a APPEND \"Sent Items\" (\\Seen) \" 6-Nov-2020 10:00:00 +0000\" {2+}\r\nab \
            {1+}\r\nc ~{1+}\r\n\0\r\n";
        assert_eq!(
            parse(command),
            Some(Extended::MultiAppend {
                tag: "a".to_owned(),
                commands: vec![
                    b"a APPEND \"Sent Items\" (\\Seen) \" 6-Nov-2020 10:00:00 +0000\" {2+}\r\nab\r\n"
                        .to_vec(),
                    b"a APPEND \"Sent Items\" {1+}\r\nc\r\n".to_vec(),
                    b"a APPEND \"Sent Items\" ~{1+}\r\n\0\r\n".to_vec(),
                ]
            })
        );
        // One message is an ordinary APPEND.
        assert_eq!(parse(b"a APPEND INBOX {2+}\r\nab\r\n"), None);
        // A literal cut short is left to imap-codec's error.
        assert_eq!(parse(b"a APPEND INBOX {2+}\r\nab {5+}\r\nab\r\n"), None);
    }

    #[test]
    fn list_extended_is_read() {
        assert_eq!(
            parse(b"a LIST (SUBSCRIBED RecursiveMatch) \"\" (\"a/b\" {3+}\r\nc%d) RETURN (children STATUS (MESSAGES unseen))\r\n"),
            Some(Extended::List {
                tag: "a".to_owned(),
                select: ListSelect {
                    subscribed: true,
                    recursive: true,
                    ..ListSelect::default()
                },
                reference: Vec::new(),
                patterns: vec![b"a/b".to_vec(), b"c%d".to_vec()],
                ret: ListReturn {
                    children: true,
                    status: Some(vec!["MESSAGES".to_owned(), "UNSEEN".to_owned()]),
                    ..ListReturn::default()
                },
            })
        );
        let Some(Extended::List { patterns, ret, .. }) =
            parse(b"b LIST \"\" \"Sent \\\"x\\\"\" RETURN ()\r\n")
        else {
            panic!("not a LIST-EXTENDED");
        };
        assert_eq!(patterns, vec![b"Sent \"x\"".to_vec()]);
        assert_eq!(ret, ListReturn::default());
        for (command, why) in [
            (
                &b"c LIST (imaptest) \"\" \"\"\r\n"[..],
                "unknown LIST selection option",
            ),
            (
                b"c LIST (recursivematch) \"\" \"\"\r\n",
                "RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE",
            ),
            (
                b"c LIST (recursivematch remote) \"\" %\r\n",
                "RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE",
            ),
            (
                b"c LIST \"\" \"\" return (imaptest)\r\n",
                "unknown LIST return option",
            ),
        ] {
            assert_eq!(
                parse(command),
                Some(Extended::Bad {
                    tag: "c".to_owned(),
                    why
                })
            );
        }
        // A plain LIST is imap-codec's.
        assert_eq!(parse(b"d LIST \"\" *\r\n"), None);
        assert_eq!(parse(b"d LIST {0+}\r\n \"a/%\"\r\n"), None);
    }

    #[test]
    fn anything_else_is_left_alone() {
        for other in [
            &b"a NOOP\r\n"[..],
            b"a UID FETCH 1:* FLAGS\r\n",
            b"\r\n",
            b"DONE\r\n",
            b"dGVzdA==\r\n",
        ] {
            assert_eq!(parse(other), None);
        }
    }
}
