//! Issue #9.8: what "Going live" in the README installs — the systemd unit in `packaging/` —
//! is checked by systemd itself.

use std::path::Path;
use std::process::Command;

use ratspost_tests::{have, skip};

/// `systemd-analyze verify` on the shipped unit, with `ExecStart` pointing at the daemon
/// under test (verify insists that the binary exists). Unknown or misspelt directives are
/// only warnings for systemd, so any output at all fails the test.
#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        return skip("systemd-analyze (systemd)");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace");
    let unit = std::fs::read_to_string(repo.join("packaging/ratspost.service")).expect("unit");
    let exec = "ExecStart=/usr/local/bin/ratspost --config /etc/ratspost/ratspost.toml serve";
    assert!(
        unit.lines().any(|l| l == exec),
        "the unit must start what the README installs: {exec}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ratspost.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/ratspost",
            env!("CARGO_BIN_EXE_ratspost-e2e"),
        ),
    )
    .expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{said}"
    );
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify warned:\n{said}"
    );
}
