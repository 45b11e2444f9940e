//! Wire format of SMTP, without I/O: command lines in, message bodies in, replies out.
//!
//! Commands are parsed by `smtp-proto` (Stalwart's ESMTP parser); this module frames the
//! lines around it and enforces what the parser leaves to us: the line cap, CRLF endings
//! and no NUL bytes. Message bodies are framed here: DATA with dot-unstuffing, ending only
//! at `CRLF . CRLF` (so `LF . LF` and friends cannot smuggle a second message), and BDAT by
//! count; both feed a [`Body`] that records every defect instead of failing at the first,
//! because the reply may only be sent after the body has been read to its end.
//!
//! "Need more bytes" is `None`, never an error (mini-redis `connection.rs`).

use bytes::{Buf, BytesMut};
use smtp_proto::Request;

/// Why a command line could not be used. Each maps to one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The line exceeded the configured cap; it was discarded up to its LF.
    TooLong,
    /// The line ended in LF without CR.
    BareLf,
    /// The line held a NUL byte.
    Nul,
    /// Not an SMTP verb we know.
    Unknown,
    /// A known verb with bad arguments; holds the usage text.
    Syntax(&'static str),
    /// An unparseable address in MAIL FROM.
    BadSender,
    /// An unparseable address in RCPT TO.
    BadRecipient,
    /// A parameter with a bad value.
    BadParameter(&'static str),
    /// A parameter of an extension we do not offer.
    UnsupportedParameter(String),
}

/// Frames command lines out of the input buffer.
#[derive(Debug)]
pub struct CommandDecoder {
    max_line: usize,
    /// Inside an over-long line: drop bytes until its LF.
    discarding: bool,
}

impl CommandDecoder {
    /// A decoder that refuses lines longer than `max_line` bytes (including CRLF).
    #[must_use]
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            discarding: false,
        }
    }

    /// Takes the next command out of `buf`, or `None` when more bytes are needed. Bytes of
    /// an over-long line are dropped as they arrive, so `buf` stays bounded.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Result<Request<String>, CommandError>> {
        loop {
            if self.discarding {
                let Some(i) = memchr(b'\n', buf) else {
                    buf.clear();
                    return None;
                };
                buf.advance(i + 1);
                self.discarding = false;
                return Some(Err(CommandError::TooLong));
            }
            let window = &buf[..buf.len().min(self.max_line)];
            if let Some(lf) = memchr(b'\n', window) {
                let line = buf.split_to(lf + 1);
                return Some(parse_line(&line));
            }
            if buf.len() < self.max_line {
                return None;
            }
            // Over the cap without an LF: drop what we have seen and keep looking for the
            // line's end in what follows (it may already be in the buffer).
            self.discarding = true;
            buf.advance(self.max_line);
        }
    }
}

fn parse_line(line: &[u8]) -> Result<Request<String>, CommandError> {
    if line.len() < 2 || line[line.len() - 2] != b'\r' {
        return Err(CommandError::BareLf);
    }
    if line.contains(&0) {
        return Err(CommandError::Nul);
    }
    match Request::parse(&mut line.iter()) {
        Ok(request) => Ok(request.into_owned()),
        Err(err) => Err(match err {
            smtp_proto::Error::UnknownCommand => CommandError::Unknown,
            smtp_proto::Error::InvalidSenderAddress => CommandError::BadSender,
            smtp_proto::Error::InvalidRecipientAddress => CommandError::BadRecipient,
            smtp_proto::Error::SyntaxError { syntax } => CommandError::Syntax(syntax),
            smtp_proto::Error::InvalidParameter { param } => CommandError::BadParameter(param),
            smtp_proto::Error::UnsupportedParameter { param } => {
                CommandError::UnsupportedParameter(param)
            }
            // A complete line that still "needs more data" is malformed.
            _ => CommandError::Syntax("command line is incomplete"),
        }),
    }
}

/// Limits a [`Body`] enforces.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest message kept; beyond it the body is counted, not stored.
    pub max_size: usize,
    /// Longest line, including CRLF.
    pub max_line: usize,
}

/// Defects found in a body. All are recorded; the reply names the first that matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodyDefects {
    /// Larger than `max_size`.
    pub too_big: bool,
    /// A line longer than `max_line`.
    pub long_line: bool,
    /// LF not preceded by CR.
    pub bare_lf: bool,
    /// CR not followed by LF.
    pub bare_cr: bool,
    /// A NUL byte.
    pub nul: bool,
    /// A byte ≥ 0x80.
    pub eight_bit: bool,
}

/// A message body as it arrives, with its size and defects tracked across chunks.
#[derive(Debug)]
pub struct Body {
    limits: BodyLimits,
    data: Vec<u8>,
    total: usize,
    line_len: usize,
    after_cr: bool,
    defects: BodyDefects,
}

impl Body {
    /// An empty body.
    #[must_use]
    pub fn new(limits: BodyLimits) -> Self {
        Self {
            limits,
            data: Vec::new(),
            total: 0,
            line_len: 0,
            after_cr: false,
            defects: BodyDefects::default(),
        }
    }

    /// Appends message bytes (already unstuffed).
    pub fn push(&mut self, bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len());
        if self.total > self.limits.max_size {
            if !self.defects.too_big {
                self.defects.too_big = true;
                // Keep counting, stop storing: memory stays bounded by the limit.
                self.data = Vec::new();
            }
        } else {
            self.data.extend_from_slice(bytes);
        }
        for &b in bytes {
            match b {
                b'\n' => {
                    if !self.after_cr {
                        self.defects.bare_lf = true;
                    }
                    self.after_cr = false;
                    self.line_len = 0;
                    continue;
                }
                b'\r' => {
                    if self.after_cr {
                        self.defects.bare_cr = true;
                    }
                    self.after_cr = true;
                }
                _ => {
                    if self.after_cr {
                        self.defects.bare_cr = true;
                        self.after_cr = false;
                    }
                    if b == 0 {
                        self.defects.nul = true;
                    } else if b >= 0x80 {
                        self.defects.eight_bit = true;
                    }
                }
            }
            self.line_len += 1;
            // line_len counts the CR too; +1 for the LF still to come.
            if self.line_len + 1 > self.limits.max_line {
                self.defects.long_line = true;
            }
        }
    }

    /// Bytes received so far (also past the size limit).
    #[must_use]
    pub fn total(&self) -> usize {
        self.total
    }

    /// Ends the body: returns the bytes (empty when too big) and the defects.
    #[must_use]
    pub fn finish(mut self) -> (Vec<u8>, BodyDefects) {
        if self.after_cr {
            self.defects.bare_cr = true;
        }
        (self.data, self.defects)
    }
}

/// Frames a DATA body: unstuffs leading dots and stops at `CRLF . CRLF`.
#[derive(Debug)]
pub struct DataDecoder {
    body: Body,
    /// The previous line ended in CRLF (the DATA command line did): only then can a `.`
    /// line end the message. After a bare LF, `.` CRLF is content, never the end.
    after_crlf: bool,
    /// Inside a line too long to buffer: its bytes go straight to the body.
    mid_line: bool,
}

impl DataDecoder {
    /// A decoder for one message.
    #[must_use]
    pub fn new(limits: BodyLimits) -> Self {
        Self {
            body: Body::new(limits),
            after_crlf: true,
            mid_line: false,
        }
    }

    /// Consumes body bytes from `buf`; returns the finished body once the terminating
    /// `CRLF . CRLF` was seen, leaving any pipelined bytes after it in `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Body> {
        loop {
            let Some(lf) = memchr(b'\n', buf) else {
                // No complete line. Hold back a short tail (it may be the start of ".\r\n"),
                // but never more than a line's worth: long lines stream into the body.
                let cap = self.body.limits.max_line;
                if buf.len() > cap {
                    let chunk = buf.split_to(buf.len() - 2);
                    self.push_line_part(&chunk);
                }
                return None;
            };
            let line = buf.split_to(lf + 1);
            if !self.mid_line && self.after_crlf && &line[..] == b".\r\n" {
                let limits = self.body.limits;
                let body = std::mem::replace(&mut self.body, Body::new(limits));
                return Some(body);
            }
            let content = if !self.mid_line && line.first() == Some(&b'.') {
                &line[1..]
            } else {
                &line[..]
            };
            self.body.push(content);
            self.after_crlf = line.ends_with(b"\r\n");
            self.mid_line = false;
        }
    }

    fn push_line_part(&mut self, part: &[u8]) {
        let part = if !self.mid_line && part.first() == Some(&b'.') {
            &part[1..]
        } else {
            part
        };
        self.body.push(part);
        self.mid_line = true;
    }

    /// Bytes received so far.
    #[must_use]
    pub fn total(&self) -> usize {
        self.body.total()
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: BodyLimits = BodyLimits {
        max_size: 1 << 20,
        max_line: 1000,
    };

    fn decode_all(input: &[u8], max_line: usize) -> Vec<Result<Request<String>, CommandError>> {
        let mut d = CommandDecoder::new(max_line);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(r) = d.decode(&mut buf) {
            out.push(r);
        }
        out
    }

    #[test]
    fn commands_are_framed_and_parsed() {
        let got = decode_all(
            b"EHLO upstream.example\r\nMAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME\r\nQUIT\r\npartial",
            512,
        );
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            Ok(Request::Ehlo {
                host: "upstream.example".into()
            })
        );
        match &got[1] {
            Ok(Request::Mail { from }) => {
                assert_eq!(from.address, "a@b.example");
                assert_eq!(from.size, 100);
                assert!(from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(got[2], Ok(Request::Quit));
    }

    #[test]
    fn malformed_lines_give_the_right_error() {
        let table: &[(&[u8], CommandError)] = &[
            (b"FROB\r\n", CommandError::Unknown),
            (b"QUIT\n", CommandError::BareLf),
            (b"NOOP a\0b\r\n", CommandError::Nul),
            (
                b"MAIL FROM:<a@b.example> FOO=BAR\r\n",
                CommandError::UnsupportedParameter("FOO=BAR".into()),
            ),
        ];
        for (input, want) in table {
            let got = decode_all(input, 512);
            assert_eq!(
                got,
                vec![Err(want.clone())],
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn over_long_lines_are_discarded_then_reported() {
        let mut input = vec![b'X'; 5000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let mut d = CommandDecoder::new(512);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        // Arrive in small chunks: the buffer must never hold more than one line's worth.
        for chunk in input.chunks(100) {
            buf.extend_from_slice(chunk);
            while let Some(r) = d.decode(&mut buf) {
                out.push(r);
            }
            assert!(buf.len() <= 512, "buffer grew to {}", buf.len());
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Err(CommandError::TooLong));
        assert!(matches!(out[1], Ok(Request::Noop { .. })));
    }

    #[test]
    fn an_over_long_line_arriving_at_once_is_reported() {
        let mut input = format!("NOOP {}\r\n", "x".repeat(5000)).into_bytes();
        input.extend_from_slice(b"QUIT\r\n");
        let got = decode_all(&input, 600);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], Err(CommandError::TooLong));
        assert_eq!(got[1], Ok(Request::Quit));
    }

    fn data(input: &[u8]) -> (Option<(Vec<u8>, BodyDefects)>, Vec<u8>) {
        let mut d = DataDecoder::new(LIMITS);
        let mut buf = BytesMut::from(input);
        let body = d.decode(&mut buf).map(Body::finish);
        (body, buf.to_vec())
    }

    #[test]
    fn data_is_unstuffed_and_ends_at_crlf_dot_crlf() {
        let (body, rest) = data(b"Subject: x\r\n\r\n..leading dot\r\nend\r\n.\r\nQUIT\r\n");
        let (bytes, defects) = body.expect("complete");
        assert_eq!(bytes, b"Subject: x\r\n\r\n.leading dot\r\nend\r\n");
        assert_eq!(defects, BodyDefects::default());
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn an_empty_body_is_just_the_terminator() {
        let (body, _) = data(b".\r\n");
        assert_eq!(body.expect("complete").0, b"");
    }

    #[test]
    fn smuggling_terminators_do_not_end_the_message() {
        // Each of these is a known SMTP smuggling vector: a terminator some other server
        // would accept. None may end the message here; each is flagged as a defect.
        for attack in [&b"\n.\n"[..], b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r.\r"] {
            let mut input = b"Subject: a\r\n\r\nbody".to_vec();
            input.extend_from_slice(attack);
            input.extend_from_slice(b"MAIL FROM:<evil@x>\r\n");
            let (body, _) = data(&input);
            assert!(body.is_none(), "ended early on {attack:?}");
            input.extend_from_slice(b"\r\n.\r\n");
            let (body, _) = data(&input);
            let (_, defects) = body.expect("complete");
            assert!(defects.bare_lf || defects.bare_cr, "{attack:?} not flagged");
        }
    }

    #[test]
    fn defects_are_all_recorded() {
        let (body, _) = data(b"a\0b\r\n\xc3\xa4\r\nbare\nend\r\n.\r\n");
        let (_, d) = body.expect("complete");
        assert!(d.nul && d.eight_bit && d.bare_lf && !d.bare_cr && !d.too_big && !d.long_line);
    }

    #[test]
    fn size_and_line_limits() {
        let limits = BodyLimits {
            max_size: 100,
            max_line: 1000,
        };
        let mut d = DataDecoder::new(limits);
        let mut buf = BytesMut::new();
        for _ in 0..50 {
            buf.extend_from_slice(b"0123456789\r\n");
            assert!(d.decode(&mut buf).is_none());
        }
        buf.extend_from_slice(b".\r\n");
        let (bytes, defects) = d.decode(&mut buf).expect("complete").finish();
        assert!(defects.too_big);
        assert!(bytes.is_empty(), "an oversized body is not kept");

        let mut long = vec![b'x'; 3000];
        long.extend_from_slice(b"\r\n.\r\n");
        let (body, _) = data(&long);
        let (bytes, defects) = body.expect("complete");
        assert!(defects.long_line);
        assert_eq!(bytes.len(), 3002);

        let mut exact = vec![b'x'; 998];
        exact.extend_from_slice(b"\r\n.\r\n");
        let (body, _) = data(&exact);
        assert!(
            !body.expect("complete").1.long_line,
            "998 + CRLF is allowed"
        );
    }

    #[test]
    fn long_lines_stream_through_with_bounded_buffer() {
        let mut d = DataDecoder::new(LIMITS);
        let mut buf = BytesMut::new();
        for _ in 0..100 {
            buf.extend_from_slice(&[b'y'; 700]);
            assert!(d.decode(&mut buf).is_none());
            assert!(buf.len() <= LIMITS.max_line + 700);
        }
        buf.extend_from_slice(b"\r\n.\r\n");
        let (bytes, defects) = d.decode(&mut buf).expect("complete").finish();
        assert_eq!(bytes.len(), 70_002);
        assert!(defects.long_line);
    }

    proptest! {
        /// Splitting the input at any points never changes what is decoded.
        #[test]
        fn data_chunking_does_not_matter(
            lines in proptest::collection::vec("[.a-z\\r\\n]{0,12}", 0..12),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let mut input = lines.concat().into_bytes();
            input.extend_from_slice(b"\r\n.\r\nNEXT");
            let (whole, whole_rest) = data(&input);

            let mut d = DataDecoder::new(LIMITS);
            let mut buf = BytesMut::new();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.push(input.len());
            let mut start = 0;
            let mut got = None;
            for cut in cuts {
                buf.extend_from_slice(&input[start..cut]);
                start = cut;
                if got.is_none() {
                    got = d.decode(&mut buf).map(Body::finish);
                }
            }
            prop_assert_eq!(got, whole);
            prop_assert_eq!(buf.to_vec(), whole_rest);
        }

        /// Arbitrary bytes never panic the command decoder, and its buffer stays bounded.
        #[test]
        fn commands_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut d = CommandDecoder::new(512);
            let mut buf = BytesMut::new();
            for chunk in input.chunks(37) {
                buf.extend_from_slice(chunk);
                while d.decode(&mut buf).is_some() {}
                prop_assert!(buf.len() < 512);
            }
        }
    }
}
