//! Command framing, sans I/O: the client's bytes cut into whole commands — a line, and for
//! each literal the literal's bytes and the rest of the line (RFC 9051 §2.2.1, §4.3) — with
//! synchronising literals (`{n}`, answered by `+`), non-synchronising ones (`{n+}`,
//! RFC 7888 LITERAL+/LITERAL-) and binary ones (`~{n}`, RFC 3516).
//!
//! The limits are the caller's, per state ([`Limits`]): before login a few KiB, after it
//! the largest APPEND. They are checked *before* anything is buffered or agreed: an
//! oversized synchronising literal is refused without `+`, so the client never sends it;
//! an oversized non-synchronising one is already on its way and is dropped as it arrives
//! (then refused, as RFC 7888 §4 asks); a line without end is discarded as it arrives. So
//! no client holds more memory than the limits allow, whatever it sends.
//!
//! The framer answers synchronising literals itself ([`Frame::Continue`]), so the commands
//! it hands on carry every literal as non-synchronising (`{n+}`, `~{n+}`): the parser
//! behind it (imap-next) then never asks the client again.

/// What one command may hold, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One line (the command's text between literals), CRLF included.
    pub line: usize,
    /// One literal's data.
    pub literal: u64,
    /// The whole command: every line and literal.
    pub command: u64,
}

impl Limits {
    fn command_usize(&self) -> usize {
        usize::try_from(self.command).unwrap_or(usize::MAX)
    }
}

/// What the framer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole command, as the client sent it — lines with their CRLF, literals verbatim —
    /// except that every literal announcement is non-synchronising (`{n+}`): it has been
    /// agreed to already.
    Command(Vec<u8>),
    /// The client announced a synchronising literal within the limits: the session answers
    /// `+ …` and the client sends it.
    Continue,
    /// A literal over the limits: a synchronising one refused before `+` (the client sends
    /// nothing more for this command), a non-synchronising one after its bytes and the rest
    /// of its line were dropped. The command is discarded; answer `NO [TOOBIG]` (RFC 7889)
    /// or `BAD`.
    LiteralTooBig {
        /// The command's tag, when its line had one.
        tag: Option<Vec<u8>>,
        /// The announced size, bytes (saturated at `u64::MAX`).
        announced: u64,
    },
    /// A line over [`Limits::line`]: discarded up to its end (answer `BAD`).
    LineTooLong {
        /// The command's tag, when it could be read.
        tag: Option<Vec<u8>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line of the command.
    Line,
    /// Copying a literal's data: this many bytes to go.
    Literal(u64),
    /// Dropping the rest of an over-long line, up to its LF.
    Discard,
    /// Dropping an oversized non-synchronising literal: this many bytes to go, then the
    /// rest of its line.
    Skip(u64),
}

/// Cuts a byte stream into commands; feed it with [`Framer::push`], take frames with
/// [`Framer::next`] until `None`.
#[derive(Debug)]
pub struct Framer {
    /// Received, not yet framed.
    input: Vec<u8>,
    /// The command so far.
    command: Vec<u8>,
    /// Where the current line starts in `command`.
    line_start: usize,
    state: State,
    /// The refusal to report once a skipped literal and its line are dropped.
    refused: Option<Frame>,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

/// A literal announcement at the end of a line (before its CRLF): `{n}`, `{n+}`, `~{n}`.
#[derive(Debug, PartialEq, Eq)]
struct Announced {
    size: u64,
    synchronising: bool,
}

/// The literal that `line` (without CRLF) announces, if it ends in one.
fn announced(line: &[u8]) -> Option<Announced> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let synchronising = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Saturated: a size too large for u64 is over every limit anyway.
    let size = digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    Some(Announced {
        size,
        synchronising,
    })
}

/// The tag of a command (its first token), if it has one.
fn tag(command: &[u8]) -> Option<Vec<u8>> {
    let end = command
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(command.len());
    let tag = &command[..end];
    // RFC 9051 `tag`: ASTRING-CHAR except "+"; a tag we cannot echo is no tag.
    let valid = !tag.is_empty()
        && tag.len() <= 64
        && tag.iter().all(|&b| {
            b.is_ascii_graphic()
                && !matches!(b, b'+' | b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
        });
    valid.then(|| tag.to_vec())
}

impl Framer {
    /// An empty framer, reading a command's first line.
    #[must_use]
    pub fn new() -> Self {
        Self {
            input: Vec::new(),
            command: Vec::new(),
            line_start: 0,
            state: State::Line,
            refused: None,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// Whether a command is partly received (for the session's idle deadline).
    #[must_use]
    pub fn in_command(&self) -> bool {
        !self.command.is_empty() || !self.input.is_empty()
    }

    /// Bytes held, received or framed (bounded by the limits plus one read).
    #[must_use]
    pub fn held(&self) -> usize {
        self.input.len() + self.command.len()
    }

    /// The next frame, or `None` when more input is needed.
    pub fn next(&mut self, limits: &Limits) -> Option<Frame> {
        loop {
            match self.state {
                State::Discard => {
                    let Some(lf) = self.input.iter().position(|&b| b == b'\n') else {
                        self.input.clear();
                        return None;
                    };
                    self.input.drain(..=lf);
                    self.state = State::Line;
                    if let Some(refused) = self.refused.take() {
                        return Some(refused);
                    }
                }
                State::Skip(remaining) => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.input.len());
                    self.input.drain(..n);
                    let left = remaining - n as u64;
                    if left > 0 {
                        self.state = State::Skip(left);
                        return None;
                    }
                    self.state = State::Discard;
                }
                State::Literal(remaining) => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(self.input.len());
                    if n == 0 {
                        return None;
                    }
                    self.command.extend(self.input.drain(..n));
                    let left = remaining - n as u64;
                    if left == 0 {
                        self.line_start = self.command.len();
                        self.state = State::Line;
                    } else {
                        self.state = State::Literal(left);
                        return None;
                    }
                }
                State::Line => {
                    let so_far = self.command.len() - self.line_start;
                    let Some(lf) = self.input.iter().position(|&b| b == b'\n') else {
                        if so_far + self.input.len() >= limits.line
                            || self.command.len() + self.input.len() >= limits.command_usize()
                        {
                            return Some(self.line_too_long(false));
                        }
                        return None;
                    };
                    if so_far + lf + 1 > limits.line
                        || self.command.len() + lf + 1 > limits.command_usize()
                    {
                        return Some(self.line_too_long(true));
                    }
                    self.command.extend(self.input.drain(..=lf));
                    let line = &self.command[self.line_start..];
                    // The line without its CRLF (a bare LF is taken too, as clients send it).
                    let text = line
                        .strip_suffix(b"\r\n")
                        .or_else(|| line.strip_suffix(b"\n"))
                        .unwrap_or(line);
                    let text_len = text.len();
                    let Some(literal) = announced(text) else {
                        self.line_start = 0;
                        return Some(Frame::Command(std::mem::take(&mut self.command)));
                    };
                    let total = (self.command.len() as u64).saturating_add(literal.size);
                    if literal.size > limits.literal || total > limits.command {
                        let tag = tag(&self.command);
                        self.command.clear();
                        self.line_start = 0;
                        let refused = Frame::LiteralTooBig {
                            tag,
                            announced: literal.size,
                        };
                        if literal.synchronising {
                            return Some(refused);
                        }
                        self.refused = Some(refused);
                        self.state = State::Skip(literal.size);
                        continue;
                    }
                    if literal.synchronising {
                        // Agreed here: the parser behind must not ask again.
                        self.command.insert(self.line_start + text_len - 1, b'+');
                    }
                    self.state = State::Literal(literal.size);
                    if literal.size == 0 {
                        self.line_start = self.command.len();
                        self.state = State::Line;
                    }
                    if literal.synchronising {
                        return Some(Frame::Continue);
                    }
                }
            }
        }
    }

    /// Drops the current line (the rest of it up to its LF when `complete`, else as it
    /// arrives) and the command it belongs to.
    fn line_too_long(&mut self, complete: bool) -> Frame {
        let mut head = std::mem::take(&mut self.command);
        if head.is_empty() {
            head = self.input[..self.input.len().min(80)].to_vec();
        }
        let tag = tag(&head);
        if complete {
            let lf = self
                .input
                .iter()
                .position(|&b| b == b'\n')
                .expect("complete line");
            self.input.drain(..=lf);
        } else {
            self.input.clear();
            self.state = State::Discard;
        }
        self.line_start = 0;
        Frame::LineTooLong { tag }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const LIMITS: Limits = Limits {
        line: 1024,
        literal: 4096,
        command: 8192,
    };

    fn frames(input: &[u8], limits: &Limits) -> Vec<Frame> {
        let mut f = Framer::new();
        f.push(input);
        std::iter::from_fn(|| f.next(limits)).collect()
    }

    fn command(s: &str) -> Frame {
        Frame::Command(s.as_bytes().to_vec())
    }

    #[test]
    fn lines_are_commands() {
        assert_eq!(
            frames(b"a NOOP\r\nb CAPABILITY\nc", &LIMITS),
            [command("a NOOP\r\n"), command("b CAPABILITY\n")]
        );
    }

    #[test]
    fn a_synchronising_literal_is_agreed_then_read() {
        let mut f = Framer::new();
        f.push(b"a LOGIN {5}\r\n");
        assert_eq!(f.next(&LIMITS), Some(Frame::Continue));
        assert_eq!(f.next(&LIMITS), None);
        f.push(b"alice {3+}\r\nxyz\r\n");
        assert_eq!(
            f.next(&LIMITS),
            Some(command("a LOGIN {5+}\r\nalice {3+}\r\nxyz\r\n"))
        );
        assert_eq!(f.next(&LIMITS), None);
        assert!(!f.in_command());
    }

    #[test]
    fn binary_and_empty_literals() {
        assert_eq!(
            frames(b"a APPEND x ~{3}\r\n\0\r\n {0}\r\n\r\n", &LIMITS),
            [
                Frame::Continue,
                Frame::Continue,
                command("a APPEND x ~{3+}\r\n\0\r\n {0+}\r\n\r\n")
            ]
        );
    }

    #[test]
    fn an_oversized_synchronising_literal_is_refused_without_continuation() {
        let before_login = Limits {
            line: 1024,
            literal: 8192,
            command: 16384,
        };
        assert_eq!(
            frames(b"a LOGIN {52428800}\r\nb NOOP\r\n", &before_login),
            [
                Frame::LiteralTooBig {
                    tag: Some(b"a".to_vec()),
                    announced: 52_428_800
                },
                command("b NOOP\r\n")
            ]
        );
        assert_eq!(
            frames(b"a LOGIN {99999999999999999999999}\r\n", &before_login),
            [Frame::LiteralTooBig {
                tag: Some(b"a".to_vec()),
                announced: u64::MAX
            }]
        );
    }

    #[test]
    fn an_oversized_non_synchronising_literal_is_dropped_then_refused() {
        let mut f = Framer::new();
        f.push(b"a APPEND INBOX {5000+}\r\n");
        assert_eq!(f.next(&LIMITS), None);
        for _ in 0..4 {
            f.push(&[b'x'; 1000]);
            assert_eq!(f.next(&LIMITS), None);
            assert!(f.held() < 1000, "held {}", f.held());
        }
        f.push(&[b'x'; 1000]);
        f.push(b"\r\nb NOOP\r\n");
        assert_eq!(
            f.next(&LIMITS),
            Some(Frame::LiteralTooBig {
                tag: Some(b"a".to_vec()),
                announced: 5000
            })
        );
        assert_eq!(f.next(&LIMITS), Some(command("b NOOP\r\n")));
    }

    #[test]
    fn literals_count_towards_the_whole_command() {
        let small = Limits {
            line: 100,
            literal: 60,
            command: 100,
        };
        let mut input = b"a APPEND x {50+}\r\n".to_vec();
        input.extend([b'x'; 50]);
        input.extend(b" {50}\r\n");
        assert_eq!(
            frames(&input, &small),
            [Frame::LiteralTooBig {
                tag: Some(b"a".to_vec()),
                announced: 50
            }]
        );
    }

    #[test]
    fn an_endless_line_is_dropped_as_it_arrives() {
        let mut f = Framer::new();
        f.push(b"a LOGIN ");
        assert_eq!(f.next(&LIMITS), None);
        f.push(&[b'x'; 2000]);
        assert_eq!(
            f.next(&LIMITS),
            Some(Frame::LineTooLong {
                tag: Some(b"a".to_vec())
            })
        );
        for _ in 0..100 {
            f.push(&[b'y'; 2000]);
            assert_eq!(f.next(&LIMITS), None);
            assert!(f.held() <= 2000, "held {}", f.held());
        }
        f.push(b"yyy\r\nb NOOP\r\n");
        assert_eq!(f.next(&LIMITS), Some(command("b NOOP\r\n")));
    }

    #[test]
    fn tags_that_cannot_be_echoed_are_none() {
        assert_eq!(tag(b"a1 NOOP"), Some(b"a1".to_vec()));
        assert_eq!(tag(b"+ NOOP"), None);
        assert_eq!(tag(b"{5}"), None);
        assert_eq!(tag(b" NOOP"), None);
    }

    /// A stream of commands, with literals of both kinds: what the client sends, and what
    /// the framer hands on (every literal non-synchronising), command by command.
    fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
        let part = prop_oneof![
            "[A-Z ]{0,20}".prop_map(|s| (s.clone().into_bytes(), s.into_bytes())),
            (proptest::collection::vec(any::<u8>(), 0..40), any::<bool>()).prop_map(
                |(data, sync)| {
                    let plus = if sync { "" } else { "+" };
                    let mut sent = format!(" {{{}{plus}}}\r\n", data.len()).into_bytes();
                    let mut handed = format!(" {{{}+}}\r\n", data.len()).into_bytes();
                    sent.extend(&data);
                    handed.extend(&data);
                    (sent, handed)
                }
            ),
        ];
        let command = proptest::collection::vec(part, 0..4).prop_map(|parts| {
            let (mut sent, mut handed) = (b"t".to_vec(), b"t".to_vec());
            for (s, h) in parts {
                sent.extend(s);
                handed.extend(h);
            }
            sent.extend(b"\r\n");
            handed.extend(b"\r\n");
            (sent, handed)
        });
        proptest::collection::vec(command, 1..5).prop_map(|cs| {
            let sent = cs.iter().flat_map(|(s, _)| s.clone()).collect();
            (sent, cs.into_iter().map(|(_, h)| h).collect())
        })
    }

    proptest! {
        /// However the stream is cut into reads, the same commands come out, byte for byte.
        #[test]
        fn chunking_does_not_matter((input, handed) in stream(), cuts in proptest::collection::vec(1usize..17, 1..50)) {
            let whole: Vec<_> = frames(&input, &LIMITS)
                .into_iter()
                .filter(|f| *f != Frame::Continue)
                .collect();
            let expected: Vec<_> = handed.into_iter().map(Frame::Command).collect();
            prop_assert_eq!(&whole, &expected);
            let mut f = Framer::new();
            let mut got = Vec::new();
            let mut at = 0;
            for cut in cuts.iter().cycle() {
                if at >= input.len() { break; }
                let end = (at + cut).min(input.len());
                f.push(&input[at..end]);
                at = end;
                while let Some(frame) = f.next(&LIMITS) {
                    if frame != Frame::Continue { got.push(frame); }
                }
            }
            prop_assert_eq!(got, whole);
        }

        /// Whatever arrives, the framer holds no more than the limits and one read.
        #[test]
        fn memory_stays_bounded(reads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..40)) {
            let small = Limits { line: 256, literal: 512, command: 1024 };
            let mut f = Framer::new();
            for read in reads {
                f.push(&read);
                while f.next(&small).is_some() {}
                prop_assert!(f.held() <= 1024 + 300, "held {}", f.held());
            }
        }
    }
}
