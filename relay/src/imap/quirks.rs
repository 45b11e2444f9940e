//! Client quirks mended in a whole command ([`super::framing`]), before imap-codec parses
//! it.
//!
//! Older Apple Mail sends APPEND's date-time with a one-digit day and no leading space
//! (`"6-Nov-2020 10:00:00 +0000"`); RFC 3501's `date-day-fixed` wants `" 6"`, so imap-codec
//! refuses the whole command. [`mend`] puts the space in — on the command's first line only,
//! so message contents (the literal after it) are never touched.

/// Mends `command` (a whole command as the framer hands it on).
pub fn mend(command: &mut Vec<u8>) {
    let end = command
        .iter()
        .position(|&b| b == b'\n')
        .map_or(command.len(), |lf| lf + 1);
    let mut first: Vec<u8> = command[..end].to_vec();
    mend_append_date(&mut first);
    if first.len() != end {
        command.splice(..end, first);
    }
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

    fn mended(input: &[u8]) -> Vec<u8> {
        let mut c = input.to_vec();
        mend(&mut c);
        c
    }

    #[test]
    fn a_one_digit_day_gets_its_space_and_literals_are_untouched() {
        assert_eq!(
            mended(
                b"a1 APPEND INBOX (\\Seen) \"6-Nov-2020 10:00:00 +0000\" {36+}\r\n\
x APPEND y \"6-Nov-2020 10:00:00 +0\r\n\r\n"
            ),
            b"a1 APPEND INBOX (\\Seen) \" 6-Nov-2020 10:00:00 +0000\" {36+}\r\n\
x APPEND y \"6-Nov-2020 10:00:00 +0\r\n\r\n"
        );
        // Well-formed dates and other commands pass as they are.
        for ok in [
            &b"a APPEND INBOX \" 6-Nov-2020 10:00:00 +0000\" {1+}\r\nx\r\n"[..],
            b"a APPEND INBOX \"16-Nov-2020 10:00:00 +0000\" {1+}\r\nx\r\n",
            b"a SEARCH SENTON \"6-Nov-2020 10:00:00 +0000\"\r\n",
            b"a NOOP",
        ] {
            assert_eq!(mended(ok), ok);
        }
    }
}
