//! Shared machinery: servers to test against and a raw SMTP client.

pub mod client;
pub mod daemon;
pub mod server;

/// True under CI, where a missing external client is a failure rather than a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says visibly (bypassing the test harness's output capture) that part of a test was
/// skipped, or fails under CI.
pub fn skip(what: &str) {
    use std::io::Write as _;
    assert!(!in_ci(), "{what} is required under CI=true");
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}
