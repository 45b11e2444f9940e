//! `ratspost classify` as the real binary: verdicts per file, JSON, rules, and exit codes.

use ratspost_tests::daemon::{ratspost, ratspost_ok};

fn fixture(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/messages");
    let path = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&format!("-{name}.eml")))
        })
        .unwrap_or_else(|| panic!("fixture {name}"));
    path.display().to_string()
}

#[test]
fn json_gives_one_object_per_file_and_exit_zero_whatever_the_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("unused.toml");
    let sensitive = fixture("iban-citizen-refund");
    let clean = fixture("clean-company-signature-iban");
    let out = ratspost_ok(&config, &["classify", "--json", &sensitive, &clean], None);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["file"], sensitive.as_str());
    assert_eq!(lines[0]["sensitive"], true);
    assert_eq!(lines[0]["categories"], serde_json::json!(["bank_account"]));
    let finding = &lines[0]["findings"][0];
    assert_eq!(finding["detector"], "iban");
    assert_eq!(finding["confidence"], 85);
    assert_eq!(finding["hint"], "DE89 …3000");
    assert_eq!(finding["location"]["part"], "1");
    assert!(
        !out.contains("DE89370400440532013000") && !out.contains("0532 0130"),
        "value leaked: {out}"
    );
    assert_eq!(lines[1]["sensitive"], false);
    assert_eq!(lines[1]["findings"], serde_json::json!([]));

    let text = ratspost_ok(&config, &["classify", &sensitive, &clean], None);
    assert!(
        text.contains("SENSITIVE (bank_account)") && text.contains(": clean"),
        "{text}"
    );
}

#[test]
fn rules_change_the_verdict_and_bad_rules_exit_2_with_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("unused.toml");
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[detectors.iban]\nenabled = false\n").expect("write");
    let file = fixture("iban-citizen-refund");
    let out = ratspost_ok(
        &config,
        &[
            "classify",
            "--json",
            "--rules",
            rules.to_str().expect("path"),
            &file,
        ],
        None,
    );
    assert!(out.contains("\"sensitive\":false"), "{out}");

    std::fs::write(&rules, "threshold = 200\n[detectors.bogus]\n[[custom]]\nname = \"x\"\ncategory = \"y\"\npattern = '('\n").expect("write");
    let bad = ratspost(
        &config,
        &["classify", "--rules", rules.to_str().expect("path"), &file],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    for needle in [
        "threshold: must be between",
        "detectors.bogus: unknown detector",
        "custom[0] (x).pattern",
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing in {stderr}");
    }
}

#[test]
fn an_unreadable_file_is_an_error_but_the_others_are_still_classified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("unused.toml");
    let good = fixture("vs-nfd-subject");
    let out = ratspost(&config, &["classify", "/nonexistent/mail.eml", &good], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/mail.eml"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SENSITIVE (vs_nfd)"));
}

/// Issue #11 §4: a town hall measures ratspost on its own labelled mail.
#[test]
fn evaluate_reports_recall_precision_misses_and_false_alarms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("unused.toml");
    let copy = |name: &str, to: &str| {
        std::fs::copy(fixture(name), dir.path().join(to)).expect("copy fixture");
    };
    copy("iban-citizen-refund", "iban.eml");
    copy("clean-company-signature-iban", "firma.eml");
    copy("clean-canteen", "kantine.eml");
    // Two labels on purpose wrong: the canteen mail as sensitive (a miss), the citizen's
    // IBAN as not sensitive (a false alarm).
    let labels = dir.path().join("labels.tsv");
    std::fs::write(
        &labels,
        "file\tlabel\tcategory\n# a comment\niban.eml\tN\nfirma.eml\tN\nkantine.eml\tS\thealth\n",
    )
    .expect("labels");
    let labels = labels.display().to_string();
    let out = ratspost(&config, &["classify", "--evaluate", &labels], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("3 messages: 1 sensitive, 2 not sensitive"),
        "{text}"
    );
    assert!(
        text.contains("recall 0.0 %") && text.contains("precision 0.0 %"),
        "{text}"
    );
    assert!(text.contains("health") && text.contains("0 of 1"), "{text}");
    let missed = text.split("missed (").nth(1).expect("misses listed");
    assert!(missed.contains("kantine.eml [health]"), "{text}");
    let alarms = text
        .split("false alarms (")
        .nth(1)
        .expect("false alarms listed");
    assert!(
        alarms.contains("iban.eml") && alarms.contains("iban [bank_account] confidence 85"),
        "{text}"
    );
    assert!(
        !text.contains("DE89370400440532013000"),
        "value leaked: {text}"
    );

    // Below the minimums: exit status 1, and which minimum says so.
    let out = ratspost(
        &config,
        &[
            "classify",
            "--evaluate",
            &labels,
            "--min-recall",
            "95",
            "--min-precision",
            "90",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("recall 0.0 % below --min-recall 95.0 %")
            && stderr.contains("precision 0.0 % below --min-precision 90.0 %"),
        "{stderr}"
    );

    // A malformed label is a usage error (2) naming the line.
    std::fs::write(dir.path().join("bad.tsv"), "iban.eml\tvielleicht\n").expect("bad");
    let bad = dir.path().join("bad.tsv").display().to_string();
    let out = ratspost(&config, &["classify", "--evaluate", &bad], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 1"), "{stderr}");
}

/// The independent holdout set passes through `--evaluate` with strict minimums.
#[test]
fn evaluate_on_the_second_holdout_set_meets_strict_minimums() {
    let dir = tempfile::tempdir().expect("tempdir");
    let labels =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/holdout2/labels.tsv");
    let labels = labels.display().to_string();
    let out = ratspost_ok(
        &dir.path().join("unused.toml"),
        &[
            "classify",
            "--evaluate",
            &labels,
            "--min-recall",
            "100",
            "--min-precision",
            "100",
        ],
        None,
    );
    assert!(
        out.contains("98 messages: 66 sensitive, 32 not sensitive"),
        "{out}"
    );
}
