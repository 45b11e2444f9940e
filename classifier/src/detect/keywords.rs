//! Context keywords, found in one pass per segment.
//!
//! Keywords are lower-case and matched at the start of a word (so `ausweis` finds
//! `Ausweisnummer` but not `Personalausweis`, which is its own keyword).

use std::cell::OnceCell;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use crate::text::window;

/// Keyword groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    Tax,
    Card,
    Rvnr,
    Kvnr,
    Ausweis,
    Pass,
    Fuehrerschein,
    Phone,
    PersonalAccount,
    Company,
    Health,
    Social,
    Criminal,
    Personnel,
    PersonStrong,
    State,
    Agenda,
}

const GROUPS: &[(Group, &[&str])] = &[
    (
        Group::Tax,
        &[
            "steuer-id",
            "steuerid",
            "steuer id",
            "steuer-identifikationsnummer",
            "steueridentifikationsnummer",
            "steuerliche identifikationsnummer",
            "identifikationsnummer",
            "idnr",
            "id-nr",
            "tax id",
            "tax identification",
            "steuernummer",
        ],
    ),
    (
        Group::Card,
        &[
            "kreditkarte",
            "kreditkarten",
            "kartennummer",
            "karten-nr",
            "karteninhaber",
            "kartenprüfnummer",
            "prüfziffer",
            "cvc",
            "cvv",
            "sicherheitscode",
            "gültig bis",
            "verfalldatum",
            "ablaufdatum",
            "visa",
            "mastercard",
            "amex",
            "american express",
            "credit card",
            "card number",
        ],
    ),
    (
        Group::Rvnr,
        &[
            "rentenversicherungsnummer",
            "sozialversicherungsnummer",
            "versicherungsnummer",
            "rvnr",
            "rv-nr",
            "rv-nummer",
            "svnr",
            "sv-nr",
            "sv-nummer",
            "rentenversicherung",
            "deutsche rentenversicherung",
            "drv",
            "sozialversicherungsausweis",
        ],
    ),
    (
        Group::Kvnr,
        &[
            "krankenversichertennummer",
            "krankenversicherungsnummer",
            "versichertennummer",
            "versicherten-nr",
            "kvnr",
            "krankenkasse",
            "krankenversicherung",
            "gesundheitskarte",
            "egk",
            "gkv",
            "versichertenkarte",
            "aok",
            "barmer",
            "dak",
            "techniker krankenkasse",
            "ikk",
            "bkk",
        ],
    ),
    (
        Group::Ausweis,
        &[
            "ausweis",
            "personalausweis",
            "personalausweisnummer",
            "identity card",
            "id card",
            "id-nummer",
            "perso",
        ],
    ),
    (
        Group::Pass,
        &[
            "reisepass",
            "reisepassnummer",
            "passnummer",
            "pass-nr",
            "pass nr",
            "passport",
        ],
    ),
    (
        Group::Fuehrerschein,
        &[
            "führerschein",
            "fuehrerschein",
            "fuhrerschein",
            "fahrerlaubnis",
            "driving licence",
            "driving license",
            "driver's license",
            "driver license",
            "ausstellende behörde",
        ],
    ),
    (
        Group::Phone,
        &[
            "tel",
            "telefon",
            "fax",
            "mobil",
            "handy",
            "durchwahl",
            "rufnummer",
            "phone",
            "fon",
        ],
    ),
    (
        Group::PersonalAccount,
        &[
            "kontoinhaber",
            "mein konto",
            "meine iban",
            "meine bankverbindung",
            "meiner bankverbindung",
            "erstattung",
            "rückerstattung",
            "lastschrift",
            "einzugsermächtigung",
            "sepa-mandat",
            "gehalt",
            "bezüge",
            "lohn",
            "antragsteller",
            "überweisen sie",
            "auf das konto",
            "unterhalt",
            "auszahlung",
        ],
    ),
    (
        Group::Company,
        &[
            "hrb",
            "hra",
            "amtsgericht",
            "registergericht",
            "handelsregister",
            "ust-idnr",
            "ust-id",
            "ust.-idnr",
            "ust.-id",
            "umsatzsteuer-id",
            "umsatzsteuer-identifikationsnummer",
            "geschäftsführer",
            "geschäftsführung",
            "vorstand",
            "aufsichtsrat",
            "sitz der gesellschaft",
            "gmbh",
            "vereinsregister",
            "steuer-nr",
            // Public bodies' accounts (issue #11 §3): a town's cash office is no person.
            "stadtkasse",
            "gemeindekasse",
            "kreiskasse",
            "amtskasse",
            "landeshauptkasse",
            "landeskasse",
            "bundeskasse",
            "finanzkasse",
            "kasse der stadt",
            "stadtverwaltung",
            "gemeindeverwaltung",
            "kreisverwaltung",
            "landratsamt",
            "zweckverband",
            "eigenbetrieb",
            "stadtwerke",
        ],
    ),
    (
        Group::Health,
        &[
            "diagnose",
            "diagnostiziert",
            "befund",
            "arztbrief",
            "attest",
            "krankschreibung",
            "krankgeschrieben",
            "krank geschrieben",
            "arbeitsunfähig",
            "au-bescheinigung",
            "pflegegrad",
            "pflegebedürftig",
            "pflegestufe",
            "schwerbehinderung",
            "schwerbehindert",
            "grad der behinderung",
            "gdb",
            "erkrankung",
            "erkrankt",
            "therapie",
            "psychotherapie",
            "psychiatrisch",
            "depression",
            "burnout",
            "reha",
            "rehabilitation",
            "krankenhausaufenthalt",
            "klinikaufenthalt",
            "medikament",
            "medikation",
            "suchterkrankung",
            "schwangerschaft",
            "schwanger",
            "icd",
            "eingliederungsmanagement",
            "bem-gespräch",
            "wiedereingliederung",
            "chemotherapie",
            "krebs",
            "tumor",
            "stationäre behandlung",
            "stationär aufgenommen",
            "psychische erkrankung",
            "psychisch krank",
            "angststörung",
            "suchtkrank",
            "alkoholabhängig",
            "drogenabhängig",
            "entzug",
            "demenz",
            "schlaganfall",
            "herzinfarkt",
            "bandscheibenvorfall",
            "behinderung",
            "schwerbehindertenausweis",
            "merkzeichen",
            "krankheitstage",
            "arbeitsunfähigkeit",
            "krankmeldung",
            "krankgemeldet",
            "operation",
            "diagnosen",
            "depressiv",
            "psychose",
            "schizophren",
            "bipolar",
            "autismus",
            "autist",
            "adhs",
            "epilepsie",
            "diabetes",
            "asthma",
            "allergie",
            "demenz",
            "alzheimer",
            "parkinson",
            "multiple sklerose",
            "ms-schub",
            "ms-schübe",
            "chronisch",
            "risikoschwangerschaft",
            "anschlussheilbehandlung",
            "ifsg",
            "meldepflichtig",
            "erregernachweis",
            "tuberculosis",
            "pcr positiv",
            "positiv auf",
            "fraktur",
            "trauma",
            "schwer verletzt",
            "leicht verletzt",
            "bewusstlos",
            "reanimiert",
            "bandscheibe",
            "operiert",
            "tuberkulose",
            "lungen-tb",
            "offene tb",
            "hepatitis",
            "hiv",
            "masern",
            "windpocken",
            "keuchhusten",
            "scharlach",
            "norovirus",
            "salmonell",
            "legionell",
            "infiziert",
            "infektion",
            "positiv getestet",
            "quarantäne",
            "schwerhörig",
            "gehörlos",
            "hörgerät",
            "sehbehindert",
            "blind",
            "rollstuhl",
            "gelähmt",
            "lähmung",
            "alkoholisiert",
            "alkoholkrank",
            "alkoholproblem",
            "suchtberatung",
            "suchtproblem",
            "drogenkonsum",
            "dienstunfähig",
            "dienstunfähigkeit",
            "dienstfähigkeit",
            "amtsärztlich",
            "amtsarzt",
            "gutachten des",
            "ärztliches gutachten",
            "reisefähig",
            "reiseunfähig",
            "entbindung",
            "mutterschutz",
            "fehlgeburt",
            "hämatom",
            "angststörung",
            "essstörung",
            "belastungsstörung",
            "persönlichkeitsstörung",
            "entwicklungsstörung",
            "entwicklungsverzögerung",
            "sprachstörung",
            "depressive störung",
            "psychische störung",
            "psychisch",
            "suizid",
            "wiedereingliederung",
            "stufenweise wiedereingliederung",
            "kinderarzt",
            "hausarzt",
            "impfstatus",
            "impfung",
        ],
    ),
    (
        Group::Social,
        &[
            "bürgergeld",
            "buergergeld",
            "sozialhilfe",
            "grundsicherung",
            "wohngeld",
            "asylbewerberleistung",
            "sgb ii",
            "sgb xii",
            "sgb viii",
            "leistungsbescheid",
            "bedarfsgemeinschaft",
            "bg-nummer",
            "eingliederungshilfe",
            "unterhaltsvorschuss",
            "hilfe zur pflege",
            "kinderzuschlag",
            "leistungsbezug",
            "leistungsbezieher",
            "leistungsempfänger",
            "schuldnerberatung",
            "inobhutnahme",
            "sorgerecht",
            "bildung und teilhabe",
            "hartz iv",
            "arbeitslosengeld",
            "kindeswohl",
            "kindeswohlgefährdung",
            "gefährdungsmeldung",
            "gefährdungseinschätzung",
            "hilfe zur erziehung",
            "hilfen zur erziehung",
            "familienhilfe",
            "familiengericht",
            "vormundschaft",
            "pflegefamilie",
            "in obhut genommen",
            "obdachlos",
            "wohnungslos",
            "räumungsklage",
            "zwangsräumung",
            "schulden",
            "privatinsolvenz",
            "aufenthaltserlaubnis",
            "duldung",
            "abschiebung",
            "asylantrag",
            "asylverfahren",
            "kinderschutz",
            "kkg",
            "§ 8a",
            "vernachlässigung",
            "vernachlässigt",
            "misshandlung",
            "misshandelt",
            "häusliche gewalt",
            "gewaltschutz",
            "frauenhaus",
            "inobhut",
            "in obhut",
            "hausbesuch",
            "sozialpädagogisch",
            "erziehungsbeistand",
            "heimunterbringung",
            "wohngruppe",
            "betreuungsverfahren",
            "gesetzliche betreuung",
            "rechtliche betreuung",
            "sozialleistung",
            "leistungen nach",
            "asylbewerber",
            "arbeitslos",
            "geflüchtet",
            "aufenthaltsstatus",
            "ausreisepflicht",
            "ausweisung",
        ],
    ),
    // Art. 10 GDPR: convictions and offences. A Führungszeugnis alone is a form to hand in;
    // one with entries is criminal data.
    (
        Group::Criminal,
        &[
            "vorstrafe",
            "vorstrafen",
            "vorbestraft",
            "strafverfahren",
            "ermittlungsverfahren",
            "strafanzeige",
            "strafbefehl",
            "verurteilt",
            "verurteilung",
            "bewährungsstrafe",
            "bewährungshelfer",
            "haftstrafe",
            "freiheitsstrafe",
            "geldstrafe",
            "jugendstrafe",
            "straftat",
            "straftaten",
            "tatverdacht",
            "tatverdächtig",
            "beschuldigte",
            "beschuldigter",
            "angeklagt",
            "anklage erhoben",
            "haftbefehl",
            "inhaftiert",
            "justizvollzugsanstalt",
            "eintrag im führungszeugnis",
            "einträge im führungszeugnis",
            "eintragung im führungszeugnis",
            "eintragungen im führungszeugnis",
            "führungszeugnis mit eintrag",
            "führungszeugnis enthält",
            "bundeszentralregister",
            "körperverletzung",
            "diebstahl",
            "ladendiebstahl",
            "betrug",
            "sachbeschädigung",
            "nötigung",
            "bedrohung",
            "raub",
            "einbruch",
            "hehlerei",
            "urkundenfälschung",
            "trunkenheit im verkehr",
            "fahren ohne fahrerlaubnis",
            "drogenbesitz",
            "btm",
            "hauptverhandlung",
            "strafsache",
            "tatvorwurf",
            "vorwurf der",
            "vorbelastet",
            "jugendgerichtshilfe",
            "staatsanwaltschaft",
            "angeklagte",
            "angeklagter",
            "strafbar",
            "polizeilich",
            "festgenommen",
            "verhaftet",
        ],
    ),
    // Personnel matters of one employee (issue #11 §2), without the word
    // "Personalangelegenheit".
    (
        Group::Personnel,
        &[
            "abmahnung",
            "abgemahnt",
            "abmahnen",
            "mahnen sie",
            "ermahnung",
            "kündigung",
            "gekündigt",
            "aufhebungsvertrag",
            "disziplinarverfahren",
            "disziplinarmaßnahme",
            "dienstvergehen",
            "suspendiert",
            "suspendierung",
            "dienstliche beurteilung",
            "leistungsbeurteilung",
            "beurteilungsgespräch",
            "eingruppierung",
            "höhergruppierung",
            "herabgruppierung",
            "entgeltgruppe",
            "besoldungsgruppe",
            "gehaltserhöhung",
            "gehaltsabrechnung",
            "gehaltspfändung",
            "lohnpfändung",
            "fehlzeiten",
            "krankheitstage",
            "bem-gespräch",
            "bem-verfahren",
            "betriebliches eingliederungsmanagement",
            "probezeit",
            "versetzung",
            "versetzt",
            "abordnung",
            "nebentätigkeit",
            "personalgespräch",
            "mitarbeitergespräch",
            "arbeitszeugnis",
            "zwischenzeugnis",
            "beurteilung",
            "regelbeurteilung",
            "anlassbeurteilung",
            "probezeitbeurteilung",
            "kündigen",
            "entlassung",
            "entlassen",
            "arbeitsgericht",
            "kündigungsschutzklage",
            "elternzeit",
            "teilzeitantrag",
            "sonderurlaub",
            "altersteilzeit",
            "stufenaufstieg",
            "leistungsprämie",
            "dienstunfall",
        ],
    ),
    // Ties to one person: form fields and file references, not the generic nouns
    // ("Patienten" in a policy debate is nobody in particular; "Patient: Karl Ott" is).
    (
        Group::PersonStrong,
        &[
            "geb.",
            "geboren am",
            "geburtsdatum",
            "aktenzeichen",
            "az.",
            "az:",
            "fallnummer",
            "bg-nummer",
            "kundennummer",
            "versichertennummer",
            "geschäftszeichen",
            "personalnummer",
            "patient:",
            "patientin:",
            "patient/in:",
            "mandant:",
            "mandantin:",
            "vorgangsnummer",
            "anschrift:",
            "wohnhaft",
            "bg-nr",
            "kundennr",
            "personalnr",
            "pers.-nr",
            "vorgangsnr",
            "fallnr",
        ],
    ),
    (
        Group::State,
        &[
            "bezieht",
            "bezog",
            "beantragt",
            "bewilligt",
            "leidet",
            "litt",
            "diagnostiziert",
            "in behandlung",
            "in therapie",
            "krankgeschrieben",
            "krank geschrieben",
            "arbeitsunfähig",
            "angewiesen",
            "lebt von",
            "erkrankt",
            "pflegebedürftig",
            "schwerbehindert",
            "hat pflegegrad",
            "wurde operiert",
            "abgelehnt",
            "eingestuft",
            "in stationärer behandlung",
            "in ärztlicher behandlung",
            "in psychiatrischer behandlung",
            "behandelt",
            "ist wegen",
            "war wegen",
            "wegen einer",
            "wegen eines",
            "aufgrund einer",
            "aufgrund eines",
            "leidet an",
            "leidet unter",
            "ist seit",
            "befindet sich",
            "liegt im",
            "eingewiesen",
            "eingeliefert",
            "untergebracht",
            "erhält",
            "erhielt",
            "bekommt",
            "bezogen",
            "benötigt",
            "hat einen gdb",
            "hat einen grad",
            "gilt als",
            "ist krank",
            "fällt aus",
            "fehlt",
            "in obhut genommen",
            "verdacht auf",
            "beziehe",
            "bekomme",
            "erhalte",
            "leide",
            "bin krank",
            "bin seit",
            "bin schwanger",
            "habe pflegegrad",
            "habe einen",
            "habe eine",
            "musste",
            "ist obdachlos",
            "ist wohnungslos",
        ],
    ),
    (
        Group::Agenda,
        &[
            "tagesordnung",
            "öffentlicher teil",
            "öffentliche sitzung",
            "einladung zur",
            "öffentliche bekanntmachung",
            "bekanntmachung",
            "sitzungsniederschrift",
            "niederschrift über",
            "bekanntgabe",
            "gefassten beschlüsse",
            "sitzungstermine",
            "sitzungskalender",
            "veröffentlich",
            "geheimhaltungsgründe",
            "bürgerinfoportal",
            "amtsblatt",
            "pressemitteilung",
            "öffentliche niederschrift",
            "öffentliche teil",
            "niederschrift",
            "ö 1",
            "ö 2",
            "ö 3",
            "ö 4",
            "ö 5",
        ],
    ),
];

/// Number of keyword automata.
const LAYERS: usize = 4;

/// Keyword families whose words may overlap one another ("hat pflegegrad" is a state phrase
/// containing the health word "pflegegrad") are searched by separate automata, so neither
/// hides the other. The agenda words have their own small automaton: every message asks
/// for them, and a few patterns search fast.
fn layer(group: Group) -> usize {
    match group {
        Group::Agenda => 3,
        Group::State => 2,
        Group::Health
        | Group::Social
        | Group::Criminal
        | Group::Personnel
        | Group::PersonStrong => 1,
        _ => 0,
    }
}

/// One automaton per layer over its distinct keywords; each keyword maps to every group of
/// that layer listing it ("arbeitsunfähig" is a health word and a state).
fn matchers() -> &'static Vec<(AhoCorasick, Vec<Vec<Group>>)> {
    static MATCHERS: OnceLock<Vec<(AhoCorasick, Vec<Vec<Group>>)>> = OnceLock::new();
    MATCHERS.get_or_init(|| {
        (0..LAYERS)
            .map(|l| {
                let mut patterns: Vec<&str> = Vec::new();
                let mut groups: Vec<Vec<Group>> = Vec::new();
                for (group, words) in GROUPS.iter().filter(|(g, _)| layer(*g) == l) {
                    for w in *words {
                        match patterns.iter().position(|p| p == w) {
                            Some(i) => groups[i].push(*group),
                            None => {
                                patterns.push(w);
                                groups.push(vec![*group]);
                            }
                        }
                    }
                }
                // Leftmost-longest: one pass without overlaps, so the automaton can use
                // its prefilters; "steuer-identifikationsnummer" wins over "steuer-id".
                // A full DFA: the fastest per byte, and small for a few hundred keywords.
                let ac = AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&patterns)
                    .expect("built-in keywords compile");
                (ac, groups)
            })
            .collect()
    })
}

/// Keyword hits of one segment, searched per layer on first use: a clean mail with no
/// identifier candidate never pays for the identifier-context keywords.
pub(crate) struct Hits<'a> {
    lower: &'a str,
    layers: [OnceCell<Vec<(Group, usize, usize)>>; LAYERS],
}

impl<'a> Hits<'a> {
    /// Prepares keyword search over the lower-case text.
    pub(crate) fn new(lower: &'a str) -> Self {
        Self {
            lower,
            layers: Default::default(),
        }
    }

    fn layer_hits(&self, group: Group) -> &[(Group, usize, usize)] {
        let l = layer(group);
        self.layers[l].get_or_init(|| {
            let (ac, groups) = &matchers()[l];
            let bytes = self.lower.as_bytes();
            let mut hits = Vec::new();
            for m in ac.find_iter(self.lower) {
                if m.start() == 0 || !is_word_byte(bytes[m.start() - 1]) {
                    for &g in &groups[m.pattern().as_usize()] {
                        hits.push((g, m.start(), m.end()));
                    }
                }
            }
            hits
        })
    }

    /// Whether a keyword of `group` lies within `chars` characters of `start..end`.
    pub(crate) fn near(&self, group: Group, start: usize, end: usize, chars: usize) -> bool {
        let (from, to) = window(self.lower, start, end, chars);
        self.within(group, from, to)
    }

    /// Whether a keyword of `group` lies within the byte range.
    pub(crate) fn within(&self, group: Group, from: usize, to: usize) -> bool {
        self.layer_hits(group)
            .iter()
            .any(|&(g, s, e)| g == group && s >= from && e <= to)
    }

    /// All hits of `group`.
    pub(crate) fn of(&self, group: Group) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.layer_hits(group)
            .iter()
            .filter(move |h| h.0 == group)
            .map(|h| (h.1, h.2))
    }
}

/// Letters (also UTF-8 continuation and lead bytes of umlauts) and digits.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_at_word_starts_only() {
        let lower = "martin hat die ausweisnummer und den personalausweis; tel. 0531";
        let hits = Hits::new(lower);
        assert!(hits.of(Group::Ausweis).count() >= 2);
        assert_eq!(hits.of(Group::Phone).count(), 1);
        assert_eq!(hits.of(Group::Tax).count(), 0, "no keyword inside 'martin'");
        let both = Hits::new("frau sommer hat pflegegrad 3");
        assert_eq!(
            both.of(Group::Health).count(),
            1,
            "the health word inside a state phrase"
        );
        assert_eq!(both.of(Group::State).count(), 1);
    }
}
