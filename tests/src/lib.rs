//! Shared machinery of the end-to-end tests and the benchmarks: the daemon in-process
//! ([`server`]) or as a child process ([`daemon`]), a raw SMTP client ([`client`]), and an SMTP
//! sink standing in for the smarthost or a private provider ([`sink`]).

pub mod client;
pub mod daemon;
pub mod dns;
pub mod server;
pub mod sink;

/// The `[delivery]` section a test daemon gets when its configuration has none: tests talk
/// only to loopback, so MX lookups go to a loopback port where no DNS server answers (queued
/// mail then waits, saying why), never to the machine's resolver.
#[must_use]
pub fn loopback_dns(toml: &str) -> &'static str {
    if toml.contains("[delivery]") {
        ""
    } else {
        "[delivery]\nresolvers = [\"127.0.0.1:9\"]\n"
    }
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
