//! Issue #10.7 end to end: nothing sensitive leaves, whatever its encoding.
//!
//! Anna has an active forwarding exemption to her private address (a loopback SMTP sink).
//! Messages carrying one Steuer-ID, each hidden by another encoding a mail program or a
//! sender uses, go in over SMTP. What reaches the sink, and what IMAP FETCH serves, must be
//! a notice: no attachment, none of the original's encoded lines, and — decoded the way a
//! client decodes it, Unicode folded to ASCII digits — never the ID's eleven digits in a row.

use std::io::Write as _;

use mail_parser::MimeHeaders as _;
use ratspost_tests::client::Client;
use ratspost_tests::imap::Imap;
use ratspost_tests::server::Server;
use ratspost_tests::sink::{Sink, SinkOptions};
use store::Role;
use store::testing::TestDb;
use unicode_normalization::UnicodeNormalization as _;

const ANNA: &str = "anna@stadt.test";
const PRIVATE: &str = "anna.privat@example.net";
/// The secret: a valid Steuer-ID (ISO 7064 MOD 11,10).
const ID: &str = "86095742719";

const HEAD: &str = "From: Amt <amt@verwaltung.test>\r\nTo: anna@stadt.test\r\n\
                    Date: Mon, 2 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n";

fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, c) in bytes.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push_str("\r\n");
        }
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (j, &b)| n | u32::from(b) << (16 - 8 * j));
        for j in 0..4 {
            out.push(if j <= c.len() {
                char::from(A[(n >> (18 - 6 * j) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

fn mixed(subject: &str, parts: &[String]) -> Vec<u8> {
    let mut out = format!(
        "{HEAD}Subject: {subject}\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    );
    for p in parts {
        out.push_str(&format!("--b1\r\n{p}\r\n"));
    }
    out.push_str("--b1--\r\n");
    out.into_bytes()
}

fn text_part(body: &str) -> String {
    format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{body}")
}

fn attachment(name: &str, mime: &str, data: &[u8]) -> String {
    format!(
        "Content-Type: {mime}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}",
        b64(data)
    )
}

fn uuencode(data: &[u8]) -> String {
    let enc = |s: u8| char::from(if s == 0 { b'`' } else { s + b' ' });
    let mut out = "begin 644 liste.txt\r\n".to_owned();
    for chunk in data.chunks(45) {
        out.push(enc(u8::try_from(chunk.len()).expect("<= 45")));
        for t in chunk.chunks(3) {
            let t = [t[0], *t.get(1).unwrap_or(&0), *t.get(2).unwrap_or(&0)];
            for s in [
                t[0] >> 2,
                (t[0] << 4 | t[1] >> 4) & 63,
                (t[1] << 2 | t[2] >> 6) & 63,
                t[2] & 63,
            ] {
                out.push(enc(s));
            }
        }
        out.push_str("\r\n");
    }
    out + "`\r\nend\r\n"
}

/// Each message hides the ID another way (issue #10 §1–§4).
fn disguised() -> Vec<(&'static str, Vec<u8>)> {
    let sentence = format!("Ihre Steuer-ID lautet {ID}.");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(sentence.encode_utf16().flat_map(u16::to_le_bytes));
    let gzip = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(sentence.as_bytes()).expect("gzip");
        gz.finish().expect("gzip")
    };
    let zip = {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        z.start_file("daten.txt", zip::write::SimpleFileOptions::default())
            .expect("zip");
        z.write_all(sentence.as_bytes()).expect("zip");
        z.finish().expect("zip").into_inner()
    };
    let full_width: String = ID
        .chars()
        .map(|c| char::from_u32(0xFF10 + c.to_digit(10).expect("digit")).expect("char"))
        .collect();
    let entities: String = ID.chars().map(|c| format!("&#{};", u32::from(c))).collect();
    let ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x@verwaltung.test\r\n\
         DESCRIPTION:Steuer-ID {}\r\n {}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        &ID[..5],
        &ID[5..]
    );
    let mut yenc = format!("=ybegin line=128 size={} name=id.txt\r\n", sentence.len()).into_bytes();
    yenc.extend(sentence.bytes().map(|b| b.wrapping_add(42)));
    yenc.extend_from_slice(b"\r\n=yend\r\n");
    let subject_bytes = format!("Steuer-ID {ID}").into_bytes();
    let (a, b) = subject_bytes.split_at(13);
    vec![
        (
            "UTF-16 attachment",
            mixed("Liste", &[text_part("Anbei."), attachment("liste.txt", "text/plain", &utf16)]),
        ),
        (
            "format=flowed DelSp, quoted-printable",
            format!(
                "{HEAD}Subject: Daten\r\nContent-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\nIhre Steuer-ID lautet {}=20\r\n{}.\r\n",
                &ID[..6],
                &ID[6..]
            )
            .into_bytes(),
        ),
        (
            "HTML, unclosed head, digits as entities",
            format!(
                "{HEAD}Subject: Daten\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
                 <html><head><title>x</title><p>Steuer-ID {entities}</p>"
            )
            .into_bytes(),
        ),
        (
            "uuencode in the body",
            format!(
                "{HEAD}Subject: Liste\r\nContent-Type: text/plain\r\n\r\nAnbei:\r\n\r\n{}",
                uuencode(sentence.as_bytes())
            )
            .into_bytes(),
        ),
        (
            "yEnc in the body",
            [
                format!("{HEAD}Subject: Liste\r\nContent-Type: text/plain\r\n\r\nAnbei:\r\n")
                    .into_bytes(),
                yenc,
            ]
            .concat(),
        ),
        (
            "gzip labelled PNG",
            mixed("Foto", &[text_part("Foto."), attachment("foto.png", "image/png", &gzip)]),
        ),
        (
            "ZIP labelled text",
            mixed("Text", &[text_part("Text."), attachment("text.txt", "text/plain", &zip)]),
        ),
        (
            "iCalendar folded inside the number",
            mixed(
                "Termin",
                &[text_part("Termin."), attachment("termin.ics", "text/calendar", ics.as_bytes())],
            ),
        ),
        (
            "RFC 2231 file name",
            mixed(
                "Datei",
                &[
                    text_part("Datei."),
                    format!(
                        "Content-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n \
                         filename*0*=utf-8''Steuer-ID%20{};\r\n filename*1*={}.pdf\r\n\
                         Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF",
                        &ID[..4],
                        &ID[4..]
                    ),
                ],
            ),
        ),
        (
            "subject split across encoded words",
            format!(
                "From: Amt <amt@verwaltung.test>\r\nTo: anna@stadt.test\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\n\
                 Subject: =?utf-8?B?{}?=\r\n =?utf-8?B?{}?=\r\n\r\nSiehe Betreff.\r\n",
                b64(a),
                b64(b)
            )
            .into_bytes(),
        ),
        (
            "display name",
            format!(
                "From: \"Steuer-ID {ID} Max Mustermann\" <max@verwaltung.test>\r\nTo: anna@stadt.test\r\n\
                 Date: Mon, 2 Nov 2026 10:00:00 +0100\r\nSubject: Hallo\r\n\r\nHallo.\r\n"
            )
            .into_bytes(),
        ),
        (
            "full-width digits with a left-to-right mark",
            format!(
                "{HEAD}Subject: Daten\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSteuer-ID {}\u{200E}{}\r\n",
                &full_width[..15],
                &full_width[15..]
            )
            .into_bytes(),
        ),
        (
            "split across two inline parts",
            mixed(
                "Daten",
                &[
                    text_part(&format!("Ihre Steuer-ID lautet {}", &ID[..5])),
                    text_part(&format!("{} - bitte aufbewahren.", &ID[5..])),
                ],
            ),
        ),
        (
            "a '--boundary--suffix' line (not a delimiter)",
            format!(
                "{HEAD}Subject: Daten\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
                 --b1\r\nContent-Type: text/plain\r\n\r\nHallo.\r\n--b1--Ende\r\nSteuer-ID {ID}\r\n--b1--\r\n"
            )
            .into_bytes(),
        ),
    ]
}

/// Digits of `text` as a reader reads them (NFKC folds full-width and mathematical digits),
/// everything else dropped.
fn digits(text: &str) -> String {
    text.nfkc().filter(char::is_ascii_digit).collect()
}

/// What a client shows of `raw`: every header decoded, every part decoded; and the parts
/// that are not text (a notice has none).
fn shown(raw: &[u8]) -> (String, Vec<String>) {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parseable message");
    let mut text = String::from_utf8_lossy(raw).into_owned();
    for header in message.headers() {
        if let Some(value) = header.value().as_text() {
            text.push_str(value);
        }
        if let Some(addresses) = header.value().as_address() {
            for a in addresses.iter() {
                text.push_str(a.name().unwrap_or_default());
            }
        }
    }
    let mut others = Vec::new();
    for part in &message.parts {
        match &part.body {
            mail_parser::PartType::Text(t) | mail_parser::PartType::Html(t) => text.push_str(t),
            mail_parser::PartType::Multipart(_) => {}
            _ => others.push(format!("{:?}", part.content_type().map(|c| &c.c_type))),
        }
    }
    (text, others)
}

/// The original's body lines long enough to be unmistakable (encoded data, the sentence).
fn distinctive_lines(original: &[u8]) -> Vec<Vec<u8>> {
    let body = original
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(original, |i| &original[i + 4..]);
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .filter(|l| l.len() >= 16 && !l.starts_with(b"Content-") && !l.starts_with(b"--"))
        .collect()
}

fn assert_nothing_of(what: &str, original: &[u8], served: &[u8]) {
    let (text, others) = shown(served);
    assert!(
        !digits(&text).contains(ID),
        "{what}: the ID's digits left:\n{text}"
    );
    assert!(others.is_empty(), "{what}: non-text parts left: {others:?}");
    for line in distinctive_lines(original) {
        assert!(
            !served.windows(line.len()).any(|w| w == line.as_slice()),
            "{what}: an original line left: {}",
            String::from_utf8_lossy(&line)
        );
    }
}

async fn nothing_leaves(db: TestDb) {
    let sink = Sink::start(SinkOptions::default()).await;
    let config = format!(
        "[delivery]\nsmarthost = \"{}\"\ntls = \"none\"\nretry_base_secs = 1\nretry_max_secs = 1\ntimeout_secs = 5\n\
         [notices]\nlink_base = \"https://ris.stadt.test/ratspost/m\"\n\
         [imap]\nlisten = \"127.0.0.1:0\"\nlisten_tls = \"127.0.0.1:0\"\n",
        sink.addr
    );
    let s = Server::start_full(db, "", &config).await;
    let anna = s.add_user("anna", Role::Staff, &[ANNA]).await;
    s.add_user("admin1", Role::Admin, &[]).await;
    s.exempt("anna", PRIVATE, "admin1").await;
    let password = "laptop-app-password";
    s.give_app_password(anna, "Laptop", password).await;

    let messages = disguised();
    for (_, raw) in &messages {
        let mut c = Client::greeted(s.smtp).await;
        c.ehlo().await;
        c.send_mail("amt@verwaltung.test", &[ANNA], raw)
            .await
            .expect(250, "2.0.0");
        c.cmd("QUIT").await;
        // One by one, so that IMAP sequence numbers follow the sending order.
        s.classified().await;
    }

    // Every one was judged sensitive and forwarded only as a notice.
    let mut stored = s.classified().await;
    stored.reverse(); // oldest first
    assert_eq!(stored.len(), messages.len());
    for ((what, _), summary) in messages.iter().zip(&stored) {
        assert_eq!(summary.sensitive, Some(true), "{what}: classified clean");
    }
    let forwarded = sink.wait_for(messages.len()).await;
    assert_eq!(forwarded.len(), messages.len());
    for got in &forwarded {
        assert_eq!(got.rcpt, [PRIVATE]);
        for (what, original) in &messages {
            assert_nothing_of(what, original, &got.data);
        }
    }

    // IMAP serves notices too.
    let mut imap = Imap::connect_tls(s.imaps, &s.cert()).await;
    imap.line().await;
    imap.send(&format!("a1 LOGIN anna {password}\r\n")).await;
    imap.until("a1 OK").await;
    imap.send("a2 SELECT INBOX\r\n").await;
    imap.until("a2 OK").await;
    for (i, (what, original)) in messages.iter().enumerate() {
        imap.send(&format!("f{i} FETCH {} (BODY.PEEK[])\r\n", i + 1))
            .await;
        let lines = imap.until(&format!("f{i} OK")).await;
        let served = lines[1..lines.len() - 2].join("\r\n");
        assert_nothing_of(what, original, served.as_bytes());
    }
    s.stop().await;
    sink.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_sensitive_leaves_in_any_encoding_sqlite() {
    nothing_leaves(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_sensitive_leaves_in_any_encoding_postgres() {
    if let Some(db) = TestDb::postgres("nothing_leaves").await {
        nothing_leaves(db).await;
    }
}
