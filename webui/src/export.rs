//! The audit trail as files for other programs: JSON Lines (one [`store::AuditEntry`] per
//! line, as serde writes it, with its time in RFC 3339 beside) and CSV (RFC 4180, a header line, times in RFC 3339 UTC). The
//! CLI (`ratspost audit export`) and the data-protection officer's download write the same
//! lines from here, so the two files never differ.

use store::AuditEntry;

use crate::datetime::rfc3339;

/// The CSV header line (with its line break).
pub const CSV_HEADER: &str = "seq,time,actor,action,subjects,details,prev_hash,hash\r\n";

/// One entry as a CSV line (with its line break).
#[must_use]
pub fn csv_line(e: &AuditEntry) -> String {
    format!(
        "{},{},{},{},{},{},{},{}\r\n",
        e.seq,
        rfc3339(e.at),
        csv_field(&e.actor),
        csv_field(&e.action),
        csv_field(&e.subjects.join(" ")),
        csv_field(&e.details.to_string()),
        e.prev_hash,
        e.hash
    )
}

/// One entry as a JSON line (with its line break): its fields as serde writes them
/// (`at` in milliseconds since the epoch, as hashed) and `time`, the same in RFC 3339 UTC.
#[must_use]
pub fn json_line(e: &AuditEntry) -> String {
    // An entry is strings, numbers and a JSON value: serialising it cannot fail.
    let mut value = serde_json::to_value(e).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.insert("time".to_owned(), serde_json::Value::String(rfc3339(e.at)));
    }
    let mut line = value.to_string();
    line.push('\n');
    line
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A leading
/// `=`, `+`, `-` or `@` gets a `'` so a spreadsheet never runs it as a formula.
fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(
            csv_field(r#"{"a":1,"b":"x"}"#),
            r#""{""a"":1,""b"":""x""}""#
        );
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }

    #[test]
    fn lines_hold_every_field() {
        let e = AuditEntry {
            seq: 3,
            at: 1_798_658_881_985,
            actor: "anna".into(),
            action: "exemption.requested".into(),
            subjects: vec!["exemption:1".into(), "user:anna".into()],
            details: serde_json::json!({"days": 7, "target": "a@b.example"}),
            prev_hash: "p".into(),
            hash: "h".into(),
        };
        assert_eq!(
            csv_line(&e),
            "3,2026-12-30T19:28:01.985Z,anna,exemption.requested,exemption:1 user:anna,\"{\"\"days\"\":7,\"\"target\"\":\"\"a@b.example\"\"}\",p,h\r\n"
        );
        let back: serde_json::Value = serde_json::from_str(json_line(&e).trim_end()).unwrap();
        assert_eq!(back["seq"], 3);
        assert_eq!(back["subjects"][1], "user:anna");
        assert_eq!(back["details"]["days"], 7);
        assert_eq!(back["at"], 1_798_658_881_985_i64);
        assert_eq!(back["time"], "2026-12-30T19:28:01.985Z");
    }
}
