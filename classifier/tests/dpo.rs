//! Issue #11: the classifier judges like a data-protection officer. One example of each
//! kind the issue names — misses (personal data about someone) and false alarms (an office's
//! signature, a published agenda, a public body's account, a marking as a topic, a health topic
//! without a person). The measure of the kinds is the evaluation corpus
//! (`fixtures/evaluation/`), written independently of the detectors.

use classifier::{Rules, category, classify};

fn mail(body: &str) -> Vec<u8> {
    format!(
        "From: Poststelle <post@stadt.example>\r\nTo: Anna Schmidt <anna@stadt.example>\r\n\
         Subject: Vorgang\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn categories(body: &str) -> Vec<String> {
    classify(&mail(body), &Rules::default()).categories
}

fn assert_sensitive(body: &str, expected: &str) {
    let found = categories(body);
    assert!(
        found.iter().any(|c| c == expected),
        "expected {expected}, found {found:?} in:\n{body}"
    );
}

fn assert_clean(body: &str) {
    let v = classify(&mail(body), &Rules::default());
    assert!(!v.sensitive, "false alarm {:?} in:\n{body}", v.findings);
}

#[test]
fn special_categories_tied_to_a_person() {
    // A pronoun refers back to the person named before.
    assert_sensitive(
        "Hallo Jens,\n\nwegen Frau Kowalski aus der Kämmerei: Sie ist seit Montag wegen einer \
         Lungenentzündung krankgeschrieben.\n\nGruß\nMarkus",
        category::HEALTH,
    );
    assert_sensitive(
        "Betreff Frau Kowalski. Wir haben heute telefoniert. Sie ist seit Montag krankgeschrieben.",
        category::HEALTH,
    );
    // An address on a street whose name has no "straße".
    assert_sensitive(
        "Der Antrag auf Wohngeld von Familie Yilmaz, Theodor-Heuss-Ring 31, wurde bewilligt.",
        category::SOCIAL,
    );
    // A Jobcenter case number.
    assert_sensitive(
        "Bitte prüfen Sie den Bürgergeld-Bescheid zur BG 29301//0048215 noch einmal.",
        category::SOCIAL,
    );
    // The name and the diagnosis in one sentence.
    assert_sensitive(
        "Herr Brandt ist wegen einer Depression in stationärer Behandlung.",
        category::HEALTH,
    );
    // Child welfare without an identifier.
    assert_sensitive(
        "Das Jugendamt hat die Tochter von Frau Nowak gestern in Obhut genommen, es besteht \
         Verdacht auf Kindeswohlgefährdung.",
        category::SOCIAL,
    );
    // A list of employees with their degree of disability.
    assert_sensitive(
        "Anbei die Liste.\n\nName;Vorname;Abteilung;GdB\nMeier;Anna;Kämmerei;50\nKaya;Mehmet;Bauamt;30\n",
        category::HEALTH,
    );
    // ICD-10 code next to a person.
    assert_sensitive(
        "AU für Herrn Lange liegt vor, Diagnose F32.1, bis 14.11.",
        category::HEALTH,
    );
}

#[test]
fn criminal_matters_are_their_own_category() {
    assert_sensitive(
        "Das erweiterte Führungszeugnis von Herrn Schulte enthält zwei Eintragungen wegen \
         Körperverletzung.",
        category::CRIMINAL,
    );
    assert_sensitive(
        "Gegen den Bewerber Tim Becker läuft ein Strafverfahren.",
        category::CRIMINAL,
    );
    assert_sensitive(
        "Frau Albers hat eine Vorstrafe, das hat sie im Gespräch selbst gesagt.",
        category::CRIMINAL,
    );
}

#[test]
fn personnel_matters_without_the_word() {
    assert_sensitive(
        "Entwurf: Abmahnung für Herrn Krüger wegen wiederholter Verspätung.",
        category::PERSONNEL,
    );
    assert_sensitive(
        "Gegen die Kollegin Sabine Roth wird ein Disziplinarverfahren eingeleitet.",
        category::PERSONNEL,
    );
    assert_sensitive(
        "Wir beabsichtigen, Herrn Jansen noch in der Probezeit zu kündigen. Die Kündigung soll \
         zum 31.12. erfolgen.",
        category::PERSONNEL,
    );
}

#[test]
fn an_office_in_a_signature_is_no_case() {
    assert_clean(
        "Liebe Kolleginnen und Kollegen,\n\ndie Kantine bleibt am Freitag geschlossen.\n\n\
         Mit freundlichen Grüßen\nAnna Schmidt\nSozialamt – Wohngeldstelle\nRathausplatz 1, 12345 Musterstadt\n\
         Tel. 0421 5550-230",
    );
    assert_clean(
        "Die Unterlagen für die Sitzung liegen im Büro.\n\n-- \nJobcenter Musterstadt\n\
         Schwerbehindertenvertretung\nAm Markt 5, 12345 Musterstadt",
    );
}

#[test]
fn public_bodies_accounts_are_like_company_accounts() {
    assert_clean(
        "Bitte überweisen Sie die Gebühr unter Angabe des Kassenzeichens 5.1234.567 an die \
         Stadtkasse Musterstadt, IBAN DE89 3704 0044 0532 0130 00.",
    );
}

#[test]
fn a_marking_as_a_topic_marks_nothing() {
    assert_clean(
        "Einladung: Schulung zum Umgang mit VS-NfD eingestuften Unterlagen am 3. März im \
         Ratssaal. Bitte melden Sie sich bis Freitag an.",
    );
    assert_clean("Der nicht öffentliche Parkplatz hinter dem Rathaus ist ab Montag gesperrt.");
    // But a marked document stays marked.
    assert_sensitive(
        "Anbei der Vermerk, eingestuft als VS-NfD, zur Kenntnis.",
        category::VS_NFD,
    );
    assert_sensitive(
        "VS - Nur für den Dienstgebrauch\n\nVermerk zur Vergabe.",
        category::VS_NFD,
    );
}

#[test]
fn health_and_social_topics_without_a_person() {
    assert_clean(
        "Pressemitteilung: Die Stadt baut die Beratung für Menschen mit Depression aus. \
         Bürgergeld-Beziehende erhalten Unterstützung.",
    );
    assert_clean(
        "Am 12. März spricht Dr. Petra Lenz im Bürgerhaus über Demenz und Pflegegrade. Der \
         Eintritt ist frei.",
    );
}
