//! SMTP replies: code, enhanced status code (RFC 3463), text, and what the session does
//! after sending it.

use std::borrow::Cow;

/// One reply. Refusals are values of this type, so a reason never gets lost on the way
/// to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code, e.g. `[5, 7, 1]`; `None` for greeting and EHLO lines.
    pub enhanced: Option<[u8; 3]>,
    /// Human-readable text; may hold several lines.
    pub text: Cow<'static, str>,
    /// Close the connection after sending.
    pub disconnect: bool,
    /// The client did something wrong: counts towards `max_errors`.
    pub client_fault: bool,
}

impl Reply {
    /// A reply that keeps the session open.
    #[must_use]
    pub fn new(code: u16, enhanced: [u8; 3], text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            enhanced: Some(enhanced),
            text: text.into(),
            disconnect: false,
            client_fault: code >= 500,
        }
    }

    /// A reply without enhanced code (greeting, EHLO).
    #[must_use]
    pub fn plain(code: u16, text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            enhanced: None,
            text: text.into(),
            disconnect: false,
            client_fault: false,
        }
    }

    /// Closes the connection after this reply.
    #[must_use]
    pub fn and_close(mut self) -> Self {
        self.disconnect = true;
        self
    }

    /// Marks whether this reply counts as a client error.
    #[must_use]
    pub fn fault(mut self, client_fault: bool) -> Self {
        self.client_fault = client_fault;
        self
    }

    /// `250 2.0.0 Ok`
    #[must_use]
    pub fn ok() -> Self {
        Self::new(250, [2, 0, 0], "Ok")
    }

    /// `503 5.5.1 …`: command out of sequence.
    #[must_use]
    pub fn bad_sequence(text: &'static str) -> Self {
        Self::new(503, [5, 5, 1], text)
    }

    /// `421 4.3.0` shutdown.
    #[must_use]
    pub fn shutting_down() -> Self {
        Self::new(421, [4, 3, 0], "Server shutting down, try again later").and_close()
    }

    /// Appends the wire form (each line at most 512 octets, longer text cut with `...`): one line per text line, `-` after the code on all but the last.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let lines: Vec<&str> = self.text.lines().collect();
        let lines = if lines.is_empty() { vec![""] } else { lines };
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{sep}", self.code).as_bytes());
            if let Some([a, b, c]) = self.enhanced {
                out.extend_from_slice(format!("{a}.{b}.{c} ").as_bytes());
            }
            // Never let text (which may quote client input) break the framing, nor a line
            // grow past RFC 5321 §4.5.3.1.5's 512 octets (code and CRLF included).
            let mut text = line.as_bytes();
            if text.len() > MAX_TEXT {
                let mut end = MAX_TEXT - 3;
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                text = &text[..end];
            }
            out.extend(
                text.iter()
                    .map(|&b| if b.is_ascii_control() { b'?' } else { b }),
            );
            if text.len() < line.len() {
                out.extend_from_slice(b"...");
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Longest text of one reply line: 512 octets less `NNN-`, `X.Y.Z ` and CRLF.
const MAX_TEXT: usize = 512 - 4 - 8 - 2;

#[cfg(test)]
mod tests {
    use super::Reply;

    #[test]
    fn long_lines_are_cut_to_512_octets() {
        let r = Reply::new(550, [5, 7, 1], format!("{}ö tail", "x".repeat(2000)));
        let w = wire(&r);
        assert!(w.len() <= 512, "{}", w.len());
        assert!(w.ends_with("...\r\n"), "{w}");
        let multi = wire(&Reply::plain(250, format!("a\n{}", "é".repeat(600))));
        assert!(multi.lines().all(|l| l.len() + 2 <= 512), "{multi}");
    }

    fn wire(r: &Reply) -> String {
        let mut out = Vec::new();
        r.encode(&mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn single_and_multi_line_replies() {
        assert_eq!(wire(&Reply::ok()), "250 2.0.0 Ok\r\n");
        assert_eq!(
            wire(&Reply::plain(250, "mx.example\nPIPELINING\nSIZE 10")),
            "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
    }

    #[test]
    fn control_characters_are_neutralised() {
        assert_eq!(
            wire(&Reply::new(501, [5, 5, 4], "bad \r input\u{0}")),
            "501 5.5.4 bad ? input?\r\n"
        );
    }
}
