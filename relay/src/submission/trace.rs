//! What the submission server adds to a message before it is relayed: a `Received:` trace
//! line (RFC 5321 §4.4, `with ESMTPSA`: RFC 3848) and, when missing, `Date:` and
//! `Message-ID:` (RFC 6409 §8.2, §8.3).
//!
//! The trace line names neither the device's IP address nor its EHLO name: a member of
//! staff sending from home would otherwise hand their home connection to every recipient
//! (GDPR Art. 5(1)(c), data minimisation). Who sent from where is in the login history
//! and the audit trail.

/// `raw` with the trace line on top and any missing `Date:`/`Message-ID:` added; `now` in
/// Unix milliseconds, `id` a unique token for the Message-ID's left part.
#[must_use]
pub fn complete(raw: &[u8], hostname: &str, now: i64, id: &str) -> Vec<u8> {
    let date = webui::datetime::rfc2822(now);
    let mut out =
        format!("Received: by {hostname} (ratspost) with ESMTPSA id {id};\r\n\t{date}\r\n")
            .into_bytes();
    let (has_date, has_id) = present(raw);
    if !has_date {
        out.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    }
    if !has_id {
        out.extend_from_slice(format!("Message-ID: <{id}@{hostname}>\r\n").as_bytes());
    }
    out.extend_from_slice(raw);
    out
}

/// Whether the header section has a `Date:` and a `Message-ID:` field.
fn present(raw: &[u8]) -> (bool, bool) {
    let (mut date, mut id) = (false, false);
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii_end();
        date |= name.eq_ignore_ascii_case(b"date");
        id |= name.eq_ignore_ascii_case(b"message-id");
    }
    (date, id)
}

#[cfg(test)]
mod tests {
    use super::complete;

    #[test]
    fn trace_line_and_missing_fields() {
        let out = complete(
            b"From: a@b\r\nSubject: x\r\n\r\nDate: not a header\r\n",
            "mail.stadt.example",
            0,
            "abc",
        );
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.starts_with(
                "Received: by mail.stadt.example (ratspost) with ESMTPSA id abc;\r\n\t"
            ),
            "{text}"
        );
        assert!(text.contains("\r\nDate: "), "{text}");
        assert!(
            text.contains("\r\nMessage-ID: <abc@mail.stadt.example>\r\n"),
            "{text}"
        );
        assert!(text.ends_with("From: a@b\r\nSubject: x\r\n\r\nDate: not a header\r\n"));
    }

    #[test]
    fn present_fields_are_kept() {
        let raw = b"Date: Tue, 1 Dec 2026 08:00:00 +0100\r\nMessage-Id: <x@y>\r\n\r\nbody\r\n";
        let text = String::from_utf8(complete(raw, "h", 0, "id")).expect("utf-8");
        assert_eq!(text.matches("Date:").count(), 1, "{text}");
        assert_eq!(
            text.to_lowercase().matches("message-id:").count(),
            1,
            "{text}"
        );
    }
}
