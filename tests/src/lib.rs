//! Shared machinery of the end-to-end tests and the benchmarks: the daemon in-process
//! ([`server`]) or as a child process ([`daemon`]), a raw SMTP client ([`client`]), and an SMTP
//! sink standing in for the smarthost, a private provider or the city's mail server
//! ([`sink`]), a real browser for the web UI ([`browser`]), scans rendered for the OCR tests
//! ([`scan`]), and a daemon with mail submission and a device's app password
//! ([`submission`]).

pub mod browser;
pub mod capture;
pub mod client;
pub mod daemon;
pub mod dns;
pub mod http;
pub mod imap;
pub mod scan;
pub mod server;
pub mod sink;
pub mod submission;

/// Sections a test daemon gets when its configuration has none of its own: tests talk only
/// to loopback, so MX lookups go to a loopback port where no DNS server answers (queued mail
/// then waits, saying why), never to the machine's resolver; and the web UI listens on an
/// ephemeral port, so daemons can run side by side.
#[must_use]
pub fn test_sections(toml: &str) -> String {
    let mut out = String::new();
    if !toml.contains("[delivery]") {
        out.push_str("[delivery]\nresolvers = [\"127.0.0.1:9\"]\n");
    }
    if !toml.contains("[web]") {
        out.push_str("[web]\nlisten = \"127.0.0.1:0\"\n");
    }
    if !toml.contains("[imap]") {
        out.push_str("[imap]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\n");
    }
    out
}

/// Whether `program` is on the PATH.
#[must_use]
pub fn have(program: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// True under CI, where a missing external client is a failure rather than a skip.
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says visibly (bypassing the test harness's output capture) that part of a test was
/// skipped.
///
/// # Panics
/// Under `CI=true`: there nothing may be skipped.
pub fn skip(what: &str) {
    use std::io::Write as _;
    assert!(!in_ci(), "{what} is required under CI=true");
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}

/// Whether `text` holds an RFC 3339 / ISO 8601 date-time ("2026-12-30T19:28"): what no text
/// a person reads may show (issue 9, part 6).
#[must_use]
pub fn contains_rfc3339(text: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd";
    text.as_bytes().windows(SHAPE.len()).any(|w| {
        w.iter().zip(SHAPE).all(|(&b, &s)| match s {
            b'd' => b.is_ascii_digit(),
            _ => b == s,
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_is_recognised() {
        assert!(super::contains_rfc3339("bis 2026-12-30T19:28:01.985Z."));
        assert!(!super::contains_rfc3339(
            "bis 30. Dezember 2026, 20:28 Uhr."
        ));
        assert!(!super::contains_rfc3339("2026-12-30 19:28"));
    }
}
