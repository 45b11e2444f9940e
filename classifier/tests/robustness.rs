//! Fail-closed behaviour at the limits, and no panic on arbitrary or hostile input.

use std::io::Write as _;

use classifier::{Rules, category, classify};
use proptest::prelude::*;

fn message_with_attachment(name: &str, mime: &str, data: &[u8]) -> Vec<u8> {
    let b64 = base64(data);
    format!(
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsiehe Anhang\r\n\
         --XX\r\nContent-Type: {mime}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XX--\r\n"
    )
    .into_bytes()
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for (name, data) in entries {
            z.start_file(
                *name,
                zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated),
            )
            .expect("start");
            z.write_all(data).expect("write");
        }
        z.finish().expect("finish");
    }
    buf.into_inner()
}

fn uninspectable(raw: &[u8], rules: &Rules) -> Option<String> {
    let v = classify(raw, rules);
    v.findings
        .iter()
        .find(|f| f.category == category::UNINSPECTABLE)
        .and_then(|f| f.hint.clone())
}

#[test]
fn a_zip_bomb_entry_hits_the_size_limit_instead_of_memory() {
    let rules = Rules::from_toml("[inspect]\nmax_entry_size = 1000000\n").expect("rules");
    // 50 MB of zeros deflate to about 50 KB.
    let bomb = zip_of(&[("nullen.txt", &vec![0u8; 50_000_000])]);
    let raw = message_with_attachment("bombe.zip", "application/zip", &bomb);
    let reason = uninspectable(&raw, &rules).expect("fails closed");
    assert!(reason.contains("too large"), "{reason}");
}

#[test]
fn a_gzip_bomb_hits_the_size_limit_instead_of_memory() {
    let rules = Rules::from_toml("[inspect]\nmax_entry_size = 1000000\n").expect("rules");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 50_000_000]).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    // Labelled as an image: judged by its bytes.
    let raw = message_with_attachment("foto.png", "image/png", &bomb);
    let reason = uninspectable(&raw, &rules).expect("fails closed");
    assert!(reason.contains("too large"), "{reason}");
}

#[test]
fn a_flood_of_uuencoded_files_fails_closed() {
    let block = "begin 644 a.txt\r\n!80``\r\n`\r\nend\r\n".repeat(10_000);
    let raw = format!("From: a@example.org\r\nSubject: t\r\n\r\n{block}");
    let reason = uninspectable(raw.as_bytes(), &Rules::default()).expect("fails closed");
    assert!(reason.contains("too many encoded files"), "{reason}");
}

#[test]
fn archives_nested_too_deeply_fail_closed() {
    let rules = Rules::from_toml("[inspect]\nmax_depth = 3\n").expect("rules");
    let mut data = b"harmlos".to_vec();
    let mut name = "innen.txt".to_owned();
    for level in 0..6 {
        data = zip_of(&[(&name, &data)]);
        name = format!("ebene{level}.zip");
    }
    let raw = message_with_attachment(&name, "application/zip", &data);
    let reason = uninspectable(&raw, &rules).expect("fails closed");
    assert!(reason.contains("nested too deeply"), "{reason}");
    // Within the limit the same structure is fine.
    let shallow = zip_of(&[("a.zip", &zip_of(&[("innen.txt", b"harmlos")]))]);
    assert!(
        !classify(
            &message_with_attachment("s.zip", "application/zip", &shallow),
            &rules
        )
        .sensitive
    );
}

#[test]
fn too_many_mime_parts_fail_closed() {
    let rules = Rules::from_toml("[inspect]\nmax_parts = 50\n").expect("rules");
    let mut raw = String::from(
        "Subject: viele\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n",
    );
    for i in 0..200 {
        raw.push_str(&format!(
            "--B\r\nContent-Type: text/plain\r\n\r\nTeil {i}\r\n"
        ));
    }
    raw.push_str("--B--\r\n");
    let reason = uninspectable(raw.as_bytes(), &rules).expect("fails closed");
    assert!(reason.contains("too many MIME parts"), "{reason}");
}

#[test]
fn too_much_text_fails_closed() {
    let rules = Rules::from_toml("[inspect]\nmax_text_bytes = 10000\n").expect("rules");
    let raw = format!("Subject: lang\r\n\r\n{}\r\n", "Wort ".repeat(5000));
    let reason = uninspectable(raw.as_bytes(), &rules).expect("fails closed");
    assert!(reason.contains("too much text"), "{reason}");
}

#[test]
fn images_are_clean_by_default_and_sensitive_when_configured() {
    let raw = message_with_attachment("foto.jpg", "image/jpeg", &[0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
    assert!(!classify(&raw, &Rules::default()).sensitive);
    let strict = Rules::from_toml("[inspect]\nimages_sensitive = true\n").expect("rules");
    assert_eq!(uninspectable(&raw, &strict).as_deref(), Some("image"));
}

#[test]
fn custom_rules_detect_and_can_switch_builtins_off() {
    let rules = Rules::from_toml(
        r#"
        [detectors.steuer_id]
        enabled = false
        [[custom]]
        name = "jugendamt_az"
        category = "social_data"
        pattern = 'JA-\d{4}/\d{2,6}'
        keywords = ["Jugendamt"]
        [[keywords]]
        name = "projekt_adler"
        category = "confidential_project"
        words = ["Projekt Adler"]
        "#,
    )
    .expect("rules");
    let v = classify(
        b"Subject: x\r\n\r\nDas Jugendamt fuehrt den Fall JA-2026/4471.\r\n",
        &rules,
    );
    assert_eq!(v.categories, ["social_data"]);
    assert!(v.findings.iter().any(|f| f.detector == "jugendamt_az"));
    // The keyword is required: without it the pattern alone does not count.
    assert!(!classify(b"Subject: x\r\n\r\nReferenz JA-2026/4471.\r\n", &rules).sensitive);
    let v = classify(b"Subject: Stand PROJEKT ADLER\r\n\r\nkurz\r\n", &rules);
    assert_eq!(v.categories, ["confidential_project"]);
    // The switched-off built-in detector stays quiet.
    assert!(!classify(b"Subject: x\r\n\r\nSteuer-ID 86095742719\r\n", &rules).sensitive);
    assert!(
        classify(
            b"Subject: x\r\n\r\nSteuer-ID 86095742719\r\n",
            &Rules::default()
        )
        .sensitive
    );
}

#[test]
fn thresholds_decide_what_counts() {
    // An IBAN without context is 75: counts by default, not with a threshold of 80.
    let text = b"Subject: x\r\n\r\nDE89 3704 0044 0532 0130 00\r\n";
    assert!(classify(text, &Rules::default()).sensitive);
    let strict = Rules::from_toml("[detectors.iban]\nthreshold = 80\n").expect("rules");
    assert!(!classify(text, &strict).sensitive);
}

#[test]
fn findings_never_hold_the_value() {
    let raw = "Subject: x\r\n\r\nSteuer-ID 86095742719, IBAN DE89370400440532013000, Kreditkarte 4111111111111111, \
               RVNR 15070649C103, KVNR A123456780 bei der AOK, Personalausweis T220001293\r\n";
    let v = classify(raw.as_bytes(), &Rules::default());
    assert!(v.findings.len() >= 6, "{v:?}");
    let shown = serde_json::to_string(&v).expect("json");
    for value in [
        "86095742719",
        "DE89370400440532013000",
        "4111111111111111",
        "15070649C103",
        "A123456780",
        "T220001293",
    ] {
        assert!(!shown.contains(value), "{value} leaked into {shown}");
    }
}

fn deeply_nested(depth: usize) -> Vec<u8> {
    let mut raw = String::new();
    for i in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\nSteuer-ID 86095742719\r\n");
    for i in (0..depth).rev() {
        raw.push_str(&format!("--b{i}--\r\n"));
    }
    raw.into_bytes()
}

#[test]
fn deeply_nested_mime_is_handled() {
    // Whatever the depth: no panic, no stack overflow, and never a clean verdict for a
    // message hiding a Steuer-ID.
    for depth in [1, 10, 100, 1000] {
        let v = classify(&deeply_nested(depth), &Rules::default());
        assert!(v.sensitive, "depth {depth}: {v:?}");
    }
}

/// Found by `mime_shaped_input_never_panics`: mail-parser 0.11.9 panics ("Invalid part ID,
/// could not find multipart") on a `message/rfc822` part nested directly inside another. The
/// classifier must survive it and fail closed.
#[test]
fn regression_nested_rfc822_parser_panic_fails_closed() {
    let raw = "Content-Type: multipart/mixed; boundary=\"q\"\r\n\r\n--q\r\nContent-Type: message/rfc822\r\n\r\n\
               Content-Type: message/rfc822\r\n\r\n\r\n--q--\r\n";
    let v = classify(raw.as_bytes(), &Rules::default());
    assert!(v.sensitive, "{v:?}");
    assert_eq!(v.categories, [category::UNINSPECTABLE]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Arbitrary bytes never panic the classifier.
    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = classify(&raw, &Rules::default());
    }

    /// Mail-like input built from a MIME alphabet never panics either.
    #[test]
    fn mime_shaped_input_never_panics(parts in proptest::collection::vec(
        prop_oneof![
            Just("Content-Type: multipart/mixed; boundary=\"q\"\r\n".to_owned()),
            Just("--q\r\n".to_owned()),
            Just("--q--\r\n".to_owned()),
            Just("Content-Transfer-Encoding: base64\r\n".to_owned()),
            Just("Content-Transfer-Encoding: quoted-printable\r\n".to_owned()),
            Just("Content-Type: application/zip; name=a.zip\r\n".to_owned()),
            Just("Content-Type: application/pdf\r\n".to_owned()),
            Just("Content-Type: message/rfc822\r\n".to_owned()),
            Just("Content-Type: text/html\r\n".to_owned()),
            Just("\r\n".to_owned()),
            "[A-Za-z0-9+/=<>&;#. -]{0,40}\r\n",
        ],
        0..60,
    )) {
        let raw = parts.concat();
        let _ = classify(raw.as_bytes(), &Rules::default());
    }
}
