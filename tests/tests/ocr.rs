//! Issue #10 §5: scanned documents. The relay's Tesseract OCR on scans the test renders
//! itself (text typeset with a real font, rasterised by pdftoppm): a PNG as a phone or scanner
//! sends it, and an image-only PDF as a multifunction device sends it. Over SMTP both are
//! classified by their text; without OCR the PDF is `uninspectable` (fail closed).
//!
//! Needs tesseract (with German data) and pdftoppm; under `CI=true` a missing one fails.

use std::time::Instant;

use classifier::{Ocr as _, OcrError};
use ratspost_tests::client::Client;
use ratspost_tests::daemon::{Daemon, ratspost, ratspost_ok, write_config};
use ratspost_tests::scan::{self, Sheet};
use ratspost_tests::server::Server;
use ratspost_tests::{have, skip};
use relay::config::{Config, OcrConfig};
use relay::ocr::Tesseract;
use store::testing::TestDb;

const ANNA: &str = "anna@stadt.test";
/// A scanned notice with a Steuer-ID (valid check digit) and German umlauts.
const BESCHEID: &[&str] = &[
    "Finanzamt Musterstadt - Bescheid",
    "Steuer-ID: 86 095 742 719",
    "Sehr geehrte Frau Müller,",
];
/// A typed cover letter without anything sensitive.
const ANSCHREIBEN: &[&str] = &["Antrag auf Wohngeld", "anbei der Bescheid in Kopie"];
/// A scanned page without anything sensitive.
const EINLADUNG: &[&str] = &["Einladung zum Stadtfest", "am Samstag um 15 Uhr"];

/// Whether the OCR programs and Tesseract's German data are there; skipped visibly otherwise
/// (fails under CI).
fn ocr_installed() -> bool {
    let german = || {
        std::process::Command::new("tesseract")
            .arg("--list-langs")
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l == "deu")
            })
    };
    let there = have("tesseract") && have("pdftoppm") && german();
    if !there {
        skip("tesseract and pdftoppm (tesseract-ocr, tesseract-ocr-deu, poppler-utils)");
    }
    there
}

fn tesseract(config: OcrConfig) -> Tesseract {
    Tesseract::start(&config).expect("Tesseract with deu and eng data is installed")
}

/// `text` with only its digits: OCR may read the grouping spaces of an identifier either way.
fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

#[test]
fn tesseract_reads_rendered_scans_within_its_limits() {
    if !ocr_installed() {
        return;
    }
    let defaults = Config::builtin().ocr;
    let ocr = tesseract(defaults.clone());

    let text = ocr.image(&scan::png(BESCHEID)).expect("image read");
    assert!(text.contains("Steuer-ID"), "{text:?}");
    assert!(digits(&text).contains("86095742719"), "{text:?}");
    assert!(
        text.contains("Müller"),
        "German data reads umlauts: {text:?}"
    );

    let pdf = scan::scanned_pdf(&[BESCHEID, EINLADUNG]);
    let text = ocr.pdf(&pdf, &[1, 2]).expect("PDF read");
    assert!(digits(&text).contains("86095742719"), "{text:?}");
    let (first, second) = (
        text.find("Steuer-ID").expect("page 1"),
        text.find("Stadtfest").expect("page 2"),
    );
    assert!(first < second, "pages in order: {text:?}");
    let only_second = ocr.pdf(&pdf, &[2]).expect("page 2 read");
    assert!(
        only_second.contains("Stadtfest") && !only_second.contains("Steuer"),
        "only the page asked for: {only_second:?}"
    );

    // Limits: pages, memory, time, and what is not a raster image at all.
    let one_page = tesseract(OcrConfig {
        max_pages: 1,
        ..defaults.clone()
    });
    assert!(
        matches!(one_page.pdf(&pdf, &[1, 2]), Err(OcrError::Limit(_))),
        "a second page over max_pages = 1"
    );
    // The memory limit holds from the probe at start on: 16 MiB do not even load Tesseract.
    let starved = OcrConfig {
        memory_mb: 16,
        ..defaults
    };
    assert!(Tesseract::start(&starved).is_none());
    assert_eq!(
        ocr.until(Instant::now()).pdf(&pdf, &[1, 2]),
        Err(OcrError::Timeout),
        "a deadline already passed"
    );
    assert_eq!(
        ocr.image(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><text>x</text></svg>"),
        Err(OcrError::Unreadable)
    );
}

async fn send(s: &Server, id: &str, mime: &str, name: &str, bytes: &[u8]) {
    let mut c = Client::greeted(s.smtp).await;
    c.ehlo().await;
    let mail = scan::message_with_attachment(id, ANNA, mime, name, bytes);
    c.send_mail("a@upstream.test", &[ANNA], &mail)
        .await
        .expect(250, "2.0.0");
    c.cmd("QUIT").await;
}

/// Sends a scanned PDF, a PNG of the same text, a harmless scan, and a typed cover letter
/// with the scan behind it; returns the `(categories, findings)` of each, in that order.
async fn classify_scans(ocr_section: &str) -> Vec<(Vec<String>, String)> {
    let s = Server::start_full(TestDb::sqlite(), "", ocr_section).await;
    s.enrol("anna", &[ANNA]).await;
    send(
        &s,
        "pdf",
        "application/pdf",
        "bescheid.pdf",
        &scan::scanned_pdf(&[BESCHEID]),
    )
    .await;
    send(&s, "png", "image/png", "foto.png", &scan::png(BESCHEID)).await;
    send(
        &s,
        "harmless",
        "application/pdf",
        "einladung.pdf",
        &scan::scanned_pdf(&[EINLADUNG]),
    )
    .await;
    let letter = scan::pdf(&[Sheet::Typed(ANSCHREIBEN), Sheet::Scanned(BESCHEID)]);
    send(&s, "letter", "application/pdf", "antrag.pdf", &letter).await;
    let list = s.classified().await;
    let mut out = Vec::new();
    for id in ["pdf", "png", "harmless", "letter"] {
        let m = list
            .iter()
            .find(|m| m.message_id.as_deref() == Some(&format!("{id}@upstream.test")))
            .unwrap_or_else(|| panic!("{id} not listed"));
        let verdict = s
            .store
            .verdict(m.id)
            .await
            .expect("verdict")
            .expect("classified");
        assert!(
            !verdict.findings.contains("86095742719") && !verdict.findings.contains("742 719"),
            "a finding holds the value: {}",
            verdict.findings
        );
        out.push((verdict.categories, verdict.findings));
    }
    s.stop().await;
    out
}

#[tokio::test]
async fn scans_sent_over_smtp_are_classified_by_their_text() {
    if !ocr_installed() {
        return;
    }
    let verdicts = classify_scans("").await;
    let [
        (pdf, pdf_findings),
        (png, png_findings),
        (harmless, _),
        (letter, letter_findings),
    ] = &verdicts[..]
    else {
        unreachable!()
    };
    assert_eq!(pdf, &["tax_id"], "{pdf_findings}");
    assert!(
        pdf_findings.contains("\"attachment\":\"bescheid.pdf\""),
        "{pdf_findings}"
    );
    assert_eq!(png, &["tax_id"], "{png_findings}");
    assert!(
        png_findings.contains("\"attachment\":\"foto.png\""),
        "{png_findings}"
    );
    assert!(harmless.is_empty(), "{verdicts:?}");
    // The scanned page behind the typed letter is read too.
    assert_eq!(letter, &["tax_id"], "{letter_findings}");
}

#[tokio::test]
async fn without_ocr_a_scanned_pdf_is_uninspectable() {
    if !ocr_installed() {
        return;
    }
    for section in [
        "[ocr]\ntesseract = \"/nonexistent/tesseract\"\n",
        "[ocr]\nenabled = false\n",
    ] {
        let verdicts = classify_scans(section).await;
        let [(pdf, pdf_findings), (png, _), (harmless, _), (letter, _)] = &verdicts[..] else {
            unreachable!()
        };
        assert_eq!(pdf, &["uninspectable"], "{section}: {pdf_findings}");
        assert!(
            pdf_findings.contains("OCR unavailable"),
            "{section}: {pdf_findings}"
        );
        // Even a harmless scan: nobody could read it; nor does a typed letter vouch for the
        // scan behind it.
        assert_eq!(harmless, &["uninspectable"], "{section}");
        assert_eq!(letter, &["uninspectable"], "{section}");
        // An image follows inspect.images_sensitive, off by default.
        assert!(png.is_empty(), "{section}: {verdicts:?}");
    }
}

#[test]
fn the_classify_command_reads_scans_as_the_configuration_says() {
    if !ocr_installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mail = dir.path().join("scan.eml");
    let pdf = scan::scanned_pdf(&[BESCHEID]);
    std::fs::write(
        &mail,
        scan::message_with_attachment("cli", ANNA, "application/pdf", "scan.pdf", &pdf),
    )
    .expect("write");
    let mail = mail.to_str().expect("path");
    let unused = dir.path().join("unused.toml");
    let out = ratspost_ok(&unused, &["classify", mail], None);
    assert!(out.contains("SENSITIVE (tax_id)"), "{out}");
    assert!(out.contains("attachment scan.pdf"), "{out}");

    let off = dir.path().join("ratspost.toml");
    std::fs::write(&off, "[ocr]\nenabled = false\n").expect("write");
    let out = ratspost(&off, &["classify", mail], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("SENSITIVE (uninspectable)"), "{stdout}");
}

#[test]
fn the_daemon_says_once_at_start_whether_ocr_is_ready() {
    if !ocr_installed() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = |name: &str| format!("sqlite://{}/{name}.db", dir.path().display());
    let ready = write_config(dir.path(), &db("ready"), "");
    // The log up to "SMTP listening" is the subject, not the exit: a SIGTERM this early can
    // come before the daemon's signal handling is set up.
    let (_, log) = Daemon::start(&ready).terminate_with_log();
    assert_eq!(log.matches("OCR with Tesseract ready").count(), 1, "{log}");
    assert!(!log.contains("OCR unavailable"), "{log}");

    // A bogus path: the daemon still starts, says so once, and scanned PDFs fail closed (see
    // `without_ocr_a_scanned_pdf_is_uninspectable`).
    let missing = write_config(
        dir.path(),
        &db("missing"),
        "[ocr]\ntesseract = \"/nonexistent/tesseract\"\n",
    );
    let (_, log) = Daemon::start(&missing).terminate_with_log();
    assert_eq!(log.matches("OCR unavailable").count(), 1, "{log}");
    assert!(log.contains("/nonexistent/tesseract not found"), "{log}");
}
