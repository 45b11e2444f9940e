//! Classifier throughput on one core (this benchmark is single-threaded):
//! - plain text: typical 20 KiB German office mail, and one 1 MiB text;
//! - MIME mix: the labelled corpus (HTML, PDF, Office, ZIP, nested messages, encrypted);
//! - adversarial: 1 MiB texts of what the detectors look at closely (code shapes, digits,
//!   capitals, keyword starts), which must stay within a small factor of prose.
//!
//! Run: `cargo bench -p classifier --bench throughput`

use std::time::{Duration, Instant};

use classifier::{Rules, classify};

fn main() {
    let rules = Rules::default();
    let typical = plain_mail(20 * 1024);
    let large = plain_mail(1024 * 1024);
    let corpus = corpus();
    let corpus_bytes: usize = corpus.iter().map(Vec::len).sum();
    println!("classifier throughput, one core");
    println!(
        "{:<34} {:>12} {:>10} {:>10}",
        "input", "messages/s", "MB/s", "µs/msg"
    );
    run("plain text, 20 KiB mail", &[typical], &rules);
    run("plain text, 1 MiB", &[large], &rules);
    run(
        &format!("MIME mix: {} corpus messages", corpus.len()),
        &corpus,
        &rules,
    );
    // Text made to be slow: what a detector looks at closely, a million times over. Linear
    // time keeps each within a small factor of prose (1 MiB of "F123 " took 174 s when an
    // ICD code's shape without a code searched on to the end of the text).
    for (name, unit) in [
        ("adversarial 1 MiB: code shapes", "F123 "),
        ("adversarial 1 MiB: digit groups", "1 2 3 4 5 6 7 8 9 0 "),
        ("adversarial 1 MiB: capitals", "ABCDEFGHIJKLMNOPQ1 "),
        (
            "adversarial 1 MiB: keyword starts",
            "steuer tel. krank v s nicht ",
        ),
    ] {
        run(name, &[repeated(unit, 1024 * 1024)], &rules);
    }
    println!(
        "(corpus average size {} bytes)",
        corpus_bytes / corpus.len().max(1)
    );
}

fn run(name: &str, messages: &[Vec<u8>], rules: &Rules) {
    // RATSPOST_BENCH_ONLY=plain|MIME runs only the matching cases (for profiling).
    if std::env::var("RATSPOST_BENCH_ONLY").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    // Warm up, then measure for about two seconds — or, with RATSPOST_BENCH_ROUNDS=n, for
    // exactly n rounds (for instruction counts under `valgrind --tool=callgrind`, which do
    // not vary with the machine's other load).
    for m in messages {
        std::hint::black_box(classify(m, rules));
    }
    let rounds: Option<usize> = std::env::var("RATSPOST_BENCH_ROUNDS")
        .ok()
        .map(|n| n.parse().expect("RATSPOST_BENCH_ROUNDS is a number"));
    let start = Instant::now();
    let (mut count, mut bytes) = (0usize, 0usize);
    while match rounds {
        Some(n) => count < n * messages.len(),
        None => start.elapsed() < Duration::from_secs(2),
    } {
        for m in messages {
            std::hint::black_box(classify(std::hint::black_box(m), rules));
            count += 1;
            bytes += m.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if rounds.is_some() {
        println!("{name}: {count} messages, {bytes} bytes");
    }
    println!(
        "{name:<34} {:>12.0} {:>10.1} {:>10.1}",
        count as f64 / secs,
        bytes as f64 / secs / 1e6,
        secs * 1e6 / count as f64
    );
}

/// A realistic office mail: headers, several paragraphs of German prose with dates, amounts,
/// phone numbers and file references, a signature and the usual disclaimer.
fn plain_mail(size: usize) -> Vec<u8> {
    let mut m = String::from(
        "From: Petra Lange <p.lange@musterhausen.de>\r\nTo: Anna Schmidt <anna.schmidt@musterhausen.de>\r\n\
         Subject: Abstimmung Haushaltsentwurf 2027\r\nDate: Mon, 16 Nov 2026 09:12:44 +0100\r\n\
         Message-ID: <bench@musterhausen.de>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
    );
    let paragraph = "Sehr geehrte Frau Schmidt, wie am 12.11.2026 besprochen, übersende ich Ihnen die überarbeitete \
        Fassung des Haushaltsentwurfs. Die Ansätze für die Grünflächenpflege wurden um 12.500 Euro erhöht, die Mittel \
        für die Sanierung der Turnhalle Nord (Vorlage 25-26610) bleiben unverändert. Rückfragen gern unter \
        Tel. 0531 470-2210 oder per Mail. Die Fraktionen erhalten die Unterlagen bis Freitag.\r\n\r\n";
    while m.len() < size - 400 {
        m.push_str(paragraph);
    }
    m.push_str(
        "Mit freundlichen Grüßen\r\nPetra Lange\r\nFachbereich Finanzen\r\n--\r\nDiese E-Mail kann vertrauliche \
         Informationen enthalten. Wenn Sie nicht der richtige Adressat sind, informieren Sie bitte den Absender.\r\n",
    );
    m.into_bytes()
}

/// A plain-text mail whose body is `unit` repeated to `size` bytes.
fn repeated(unit: &str, size: usize) -> Vec<u8> {
    let mut m = String::from("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    while m.len() < size {
        m.push_str(unit);
    }
    m.into_bytes()
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/messages");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures/messages")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect()
}
