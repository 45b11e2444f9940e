//! RFC 3676 `format=flowed`: text as a client displays it, with soft line breaks undone.
//!
//! A line ending in a space is a soft break: it continues on the next line of the same quote
//! depth. With `DelSp=yes` that space was inserted by the sender and is deleted when the lines
//! are joined (§4.2), so a word wrapped inside ("Dienst␠⏎gebrauch") is whole again. A leading
//! space is stuffing (§4.4) and removed; the signature separator `-- ` is never flowed (§4.3).
//! Quote markers (`>`) are dropped: the detectors read the words, not the quoting.

/// Unwraps `text` (a `format=flowed` body); `delsp` is the `DelSp` parameter.
#[must_use]
pub(crate) fn unwrap(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    // The quote depth of the paragraph a soft break left open.
    let mut open: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        // The last line may have no line break; then none is added (the text may go on in
        // the next part).
        let (line, broken) = match line.strip_suffix('\n') {
            Some(line) => (line, true),
            None => (line, false),
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        let depth = line.bytes().take_while(|&b| b == b'>').count();
        let content = &line[depth..];
        let content = content.strip_prefix(' ').unwrap_or(content);
        if open.is_some_and(|d| d != depth) {
            // A soft break before a change of quote depth is a hard one (§4.5).
            out.push('\n');
        }
        let soft = content.ends_with(' ') && content != "-- ";
        if soft {
            out.push_str(if delsp {
                &content[..content.len() - 1]
            } else {
                content
            });
            open = Some(depth);
        } else {
            out.push_str(content);
            if broken {
                out.push('\n');
            }
            open = None;
        }
    }
    if delsp && open.is_some() {
        // A soft break at the end of the body joins no lines, so its space stays (§4.2
        // deletes it when lines are joined): "in der ␠" | "Personalangelegenheit" in the
        // next part reads as two words, not as "derPersonalangelegenheit".
        out.push(' ');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unwrap;

    #[test]
    fn soft_breaks_are_joined_and_delsp_removes_their_space() {
        let text = "nur fuer den Dienst \r\ngebrauch bestimmt\r\n";
        assert_eq!(unwrap(text, true), "nur fuer den Dienstgebrauch bestimmt\n");
        assert_eq!(
            unwrap(text, false),
            "nur fuer den Dienst gebrauch bestimmt\n"
        );
    }

    #[test]
    fn a_soft_break_at_the_end_keeps_its_space() {
        assert_eq!(unwrap("in der \r\n", true), "in der ");
        assert_eq!(unwrap("in der ", true), "in der ");
        assert_eq!(unwrap("Dienst \r\ngebrauch ", true), "Dienstgebrauch ");
        assert_eq!(unwrap("in der ", false), "in der ");
    }

    #[test]
    fn quotes_stuffing_and_signatures_are_respected() {
        assert_eq!(
            unwrap("> Steuer-ID 86 095 \r\n> 742 719\r\n", false),
            "Steuer-ID 86 095 742 719\n"
        );
        // Different quote depths are not joined; the signature separator is not a soft break.
        assert_eq!(
            unwrap(">> a \r\n> b\r\n-- \r\nc\r\n", false),
            "a \nb\n-- \nc\n"
        );
        // Space-stuffing is removed.
        assert_eq!(unwrap("  From here\r\n", false), " From here\n");
    }
}
