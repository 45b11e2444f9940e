//! Client quirks mended on the wire, before imap-codec parses a command.
//!
//! Older Apple Mail sends APPEND's date-time with a one-digit day and no leading space
//! (`"6-Nov-2020 10:00:00 +0000"`); RFC 3501's `date-day-fixed` wants `" 6"`, so imap-codec
//! refuses the whole command — and the message literal that follows would then be read as
//! commands. [`InputFix`] puts the space in. It follows the command stream line by line and
//! skips literal data (`{N}`, `{N+}`, `~{N}`), so message contents are never touched.
//!
//! A command that announces a synchronizing literal over the limit is held back here, and
//! the session answers `NO [TOOBIG]` (RFC 7889): imap-next would answer `BAD` with no code,
//! which a client takes for a bad command rather than a message that is too big.

/// Lines longer than this are passed on without looking at them (an APPEND line is short).
const MAX_HELD: usize = 8 * 1024;
/// Bytes kept of a long line to find the literal announcement at its end.
const TAIL: usize = 32;

/// The state of the command stream.
#[derive(Debug, Default)]
pub struct InputFix {
    /// The current line, not yet passed on.
    line: Vec<u8>,
    /// Literal bytes still to pass through untouched.
    literal: u64,
    /// The current line was too long: its start was passed on unmended.
    overflow: bool,
    /// The largest synchronizing literal the server accepts (a larger one is refused, and
    /// its bytes never come).
    max_literal: u32,
    /// The previous line announced a literal: this line continues a command.
    continuation: bool,
    /// Tags of commands held back for a synchronizing literal over the limit.
    too_big: Vec<String>,
}

impl InputFix {
    /// A fixer for a server that accepts literals up to `max_literal` bytes.
    #[must_use]
    pub fn new(max_literal: u32) -> Self {
        Self {
            max_literal,
            ..Self::default()
        }
    }

    /// Takes `input` as read and appends what the codec should see to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            if self.literal > 0 {
                let n = usize::try_from(self.literal)
                    .unwrap_or(usize::MAX)
                    .min(input.len() - i);
                out.extend_from_slice(&input[i..i + n]);
                i += n;
                self.literal -= n as u64;
                continue;
            }
            match input[i..].iter().position(|&b| b == b'\n') {
                Some(p) => {
                    self.line.extend_from_slice(&input[i..=i + p]);
                    i += p + 1;
                    self.finish_line(out);
                }
                None => {
                    self.line.extend_from_slice(&input[i..]);
                    i = input.len();
                    if self.line.len() > MAX_HELD {
                        let keep = self.line.split_off(self.line.len() - TAIL);
                        out.extend_from_slice(&self.line);
                        self.line = keep;
                        self.overflow = true;
                    }
                }
            }
        }
    }

    /// The tags of the commands refused since the last call, for `NO [TOOBIG]`.
    pub fn take_too_big(&mut self) -> Vec<String> {
        std::mem::take(&mut self.too_big)
    }

    fn finish_line(&mut self, out: &mut Vec<u8>) {
        let mut line = std::mem::take(&mut self.line);
        let starts_command = !self.continuation && !self.overflow;
        if !self.overflow {
            mend_append_date(&mut line);
        }
        self.overflow = false;
        self.continuation = false;
        if let Some((length, sync)) = literal_at_end(&line) {
            if sync && length > u64::from(self.max_literal) {
                // Nothing follows: the client waits for `+`, which never comes.
                if starts_command
                    && let Some(tag) = line.split(|&b| b == b' ').next()
                    && !tag.is_empty()
                {
                    self.too_big.push(String::from_utf8_lossy(tag).into_owned());
                    return;
                }
            } else {
                self.literal = length;
                self.continuation = true;
            }
        }
        out.extend_from_slice(&line);
    }
}

/// `{N}` / `{N+}` / `~{N}` at the end of `line` (before CRLF): the length and whether it is
/// synchronizing.
fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let spec = &inner[open + 1..];
    let (digits, sync) = match spec.strip_suffix(b"+").or_else(|| spec.strip_suffix(b"-")) {
        Some(d) => (d, false),
        None => (spec, true),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((std::str::from_utf8(digits).ok()?.parse().ok()?, sync))
}

/// `tag APPEND mailbox … "6-Nov-2020 …"` → `… " 6-Nov-2020 …"`.
fn mend_append_date(line: &mut Vec<u8>) {
    let mut words = line.splitn(3, |&b| b == b' ');
    let (Some(_tag), Some(command)) = (words.next(), words.next()) else {
        return;
    };
    if !command.eq_ignore_ascii_case(b"APPEND") {
        return;
    }
    // ` "D-Mon-YYYY ` : a space, a quote, one digit, a dash, three letters, a dash, 4 digits.
    let at = line.windows(14).position(|w| {
        w[0] == b' '
            && w[1] == b'"'
            && w[2].is_ascii_digit()
            && w[3] == b'-'
            && w[4..7].iter().all(u8::is_ascii_alphabetic)
            && w[7] == b'-'
            && w[8..12].iter().all(u8::is_ascii_digit)
            && w[12] == b' '
            && w[13].is_ascii_digit()
    });
    if let Some(at) = at {
        line.insert(at + 2, b' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<u8> {
        let mut fix = InputFix::new(1000);
        let mut out = Vec::new();
        for c in chunks {
            fix.feed(c, &mut out);
        }
        out
    }

    #[test]
    fn a_one_digit_day_gets_its_space_and_literals_are_untouched() {
        let input: &[u8] = b"a1 APPEND INBOX (\\Seen) \"6-Nov-2020 10:00:00 +0000\" {36}\r\n\
x APPEND y \"6-Nov-2020 10:00:00 +0\r\n\r\na2 NOOP\r\n";
        let expected: &[u8] = b"a1 APPEND INBOX (\\Seen) \" 6-Nov-2020 10:00:00 +0000\" {36}\r\n\
x APPEND y \"6-Nov-2020 10:00:00 +0\r\n\r\na2 NOOP\r\n";
        assert_eq!(run(&[input]), expected);
        // Any split of the input gives the same result (chunking property).
        for at in 0..input.len() {
            assert_eq!(
                run(&[&input[..at], &input[at..]]),
                expected,
                "split at {at}"
            );
        }
        // Well-formed dates and other commands pass as they are.
        for ok in [
            &b"a APPEND INBOX \" 6-Nov-2020 10:00:00 +0000\" {1+}\r\nx\r\n"[..],
            b"a APPEND INBOX \"16-Nov-2020 10:00:00 +0000\" {1}\r\nx\r\n",
            b"a SEARCH SENTON \"6-Nov-2020 10:00:00 +0000\"\r\n",
        ] {
            assert_eq!(run(&[ok]), ok);
        }
    }

    #[test]
    fn literal_announcements_are_found() {
        assert_eq!(literal_at_end(b"a APPEND x {12}\r\n"), Some((12, true)));
        assert_eq!(literal_at_end(b"a APPEND x {12+}\r\n"), Some((12, false)));
        assert_eq!(literal_at_end(b"a APPEND x ~{7}\n"), Some((7, true)));
        assert_eq!(literal_at_end(b"a NOOP {x}\r\n"), None);
        assert_eq!(literal_at_end(b"a NOOP\r\n"), None);
    }

    #[test]
    fn a_literal_too_big_is_held_back_for_toobig() {
        let mut fix = InputFix::new(1000);
        let mut out = Vec::new();
        fix.feed(
            b"a APPEND x \"6-Nov-2020 10:00:00 +0000\" {5000}\r\nb APPEND x {1}\r\nz\r\n",
            &mut out,
        );
        assert_eq!(out, b"b APPEND x {1}\r\nz\r\n");
        assert_eq!(fix.take_too_big(), ["a"]);
        assert!(fix.take_too_big().is_empty());
        // A second literal of one command does not start a command: left to imap-next.
        let mut out = Vec::new();
        fix.feed(b"c LOGIN {1}\r\nx {5000}\r\n", &mut out);
        assert_eq!(out, b"c LOGIN {1}\r\nx {5000}\r\n");
        assert!(fix.take_too_big().is_empty());
    }
}
