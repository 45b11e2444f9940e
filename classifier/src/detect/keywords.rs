//! Context keywords, found in one pass per segment.
//!
//! Keywords are lower-case and matched at the start of a word (so `ausweis` finds
//! `Ausweisnummer` but not `Personalausweis`, which is its own keyword).

use std::cell::OnceCell;
use std::sync::OnceLock;

use aho_corasick::automaton::Automaton as _;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, Input, MatchKind, StartKind};

use crate::swar::{self, is_word_byte};
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
/// hides the other. The agenda words have their own: every message asks for them, and for
/// the identifiers' context words only when an identifier is found.
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

/// One layer's keywords: an automaton that finds the longest keyword at a given word
/// start, and which keyword maps to which groups.
struct Layer {
    /// Anchored leftmost-longest: "steuer-identifikationsnummer" wins over "steuer-id".
    dfa: DFA,
    /// For each keyword, every group of this layer listing it ("arbeitsunfähig" is a health
    /// word and a state).
    groups: Vec<Vec<Group>>,
}

impl Layer {
    /// The longest keyword starting at `start` in `lower`: its groups and end.
    fn at(&self, lower: &str, start: usize) -> Option<(&[Group], usize)> {
        let input = Input::new(lower).range(start..).anchored(Anchored::Yes);
        let found = self
            .dfa
            .try_find(&input)
            .expect("an anchored search of an automaton with anchored starts")?;
        Some((&self.groups[found.pattern().as_usize()], found.end()))
    }

    /// The hits the way they are defined: one leftmost-longest search through the whole
    /// text, without overlaps, keeping the matches that start a word. A keyword matched
    /// inside a word is dropped, but it still hides what it overlaps ("ist wegen" inside
    /// "die frist wegen" hides "wegen einer").
    fn through(&self, lower: &str) -> Vec<(Group, usize, usize)> {
        let bytes = lower.as_bytes();
        let mut hits = Vec::new();
        let matches = self
            .dfa
            .try_find_iter(Input::new(lower))
            .expect("an unanchored search of an automaton with unanchored starts");
        for m in matches {
            if m.start() == 0 || !is_word_byte(bytes[m.start() - 1]) {
                let groups = &self.groups[m.pattern().as_usize()];
                hits.extend(groups.iter().map(|&g| (g, m.start(), m.end())));
            }
        }
        hits
    }
}

/// Every layer's keywords, and which word starts can begin one.
struct Keywords {
    layers: Vec<Layer>,
    /// For the first four bytes of a word (hashed, see [`head`]), the layers with a keyword
    /// that begins so, one bit each. Most word starts are ruled out by this one look-up and
    /// never start an automaton: stepping an automaton through every byte of the text was a
    /// fifth of the classifier's time. (Two or three bytes rule out too few: "ge", "die"
    /// begin keywords and much of German.)
    heads: Box<[u8; 1 << 16]>,
    /// For the three bytes before a word start and its first byte (hashed like `heads`),
    /// the layers with a keyword that has a word start inside it there ("st w" of "ist
    /// wegen"). Such a keyword, matched inside a word, hides the word starts it overlaps;
    /// where that can happen the layer is searched the defining way ([`Layer::through`]).
    inside: Box<[u8; 1 << 16]>,
    /// The keywords with word starts inside them, as (the three bytes before such a start and
    /// its first byte, layer, keyword, offset of the start), sorted.
    crossing: Vec<(u32, usize, &'static str, usize)>,
}

/// The shortest keyword, in bytes: every word start is looked up by its first four bytes,
/// and a keyword of three admits any fourth.
const SHORTEST: usize = 3;

/// The `heads` entry for the four bytes from `start` (zero past the end); the `inside`
/// entry for a word start `s` is `head(bytes, s - 3)`.
fn head(bytes: &[u8], start: usize) -> usize {
    // The low four bytes of the word: `word_at` is little-endian.
    let four = swar::word_at(bytes, start) as u32;
    (four.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

/// Bytes before a word start that `inside` looks at.
const INSIDE_BEFORE: usize = 3;

fn keywords() -> &'static Keywords {
    static KEYWORDS: OnceLock<Keywords> = OnceLock::new();
    KEYWORDS.get_or_init(|| {
        let mut heads = Box::new([0u8; 1 << 16]);
        let mut inside = Box::new([0u8; 1 << 16]);
        let mut crossing = Vec::new();
        let layers = (0..LAYERS)
            .map(|l| {
                let mut patterns: Vec<&str> = Vec::new();
                let mut groups: Vec<Vec<Group>> = Vec::new();
                for (group, words) in GROUPS.iter().filter(|(g, _)| layer(*g) == l) {
                    for w in *words {
                        match patterns.iter().position(|p| p == w) {
                            Some(i) if !groups[i].contains(group) => groups[i].push(*group),
                            Some(_) => {}
                            None => {
                                patterns.push(w);
                                groups.push(vec![*group]);
                            }
                        }
                    }
                }
                for w in &patterns {
                    let b = w.as_bytes();
                    assert!(b.len() >= SHORTEST, "keyword {w:?} is too short");
                    assert!(is_word_byte(b[0]), "keyword {w:?} starts a word");
                    let fourths = if b.len() > SHORTEST {
                        b[3]..=b[3]
                    } else {
                        0..=255
                    };
                    for fourth in fourths {
                        heads[head(&[b[0], b[1], b[2], fourth], 0)] |= 1 << l;
                    }
                    for i in 1..b.len() {
                        if is_word_byte(b[i]) && !is_word_byte(b[i - 1]) {
                            assert!(i >= INSIDE_BEFORE, "keyword {w:?} has a short first word");
                            inside[head(b, i - INSIDE_BEFORE)] |= 1 << l;
                            let key = swar::word_at(b, i - INSIDE_BEFORE) as u32;
                            crossing.push((key, l, *w, i));
                        }
                    }
                }
                let dfa = DFA::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .start_kind(StartKind::Both)
                    .build(&patterns)
                    .expect("built-in keywords compile");
                Layer { dfa, groups }
            })
            .collect();
        crossing.sort_unstable();
        Keywords {
            layers,
            heads,
            inside,
            crossing,
        }
    })
}

impl Keywords {
    /// The layers with a keyword that stands in `bytes` inside a word, with a word start
    /// inside the keyword at `start`.
    fn hiding(&self, bytes: &[u8], start: usize) -> u8 {
        let key = swar::word_at(bytes, start - INSIDE_BEFORE) as u32;
        let first = self.crossing.partition_point(|c| c.0 < key);
        self.crossing[first..]
            .iter()
            .take_while(|c| c.0 == key)
            .filter(|&&(_, _, word, i)| {
                start > i
                    && is_word_byte(bytes[start - i - 1])
                    && bytes[start - i..].starts_with(word.as_bytes())
            })
            .fold(0, |layers, &(_, l, _, _)| layers | 1 << l)
    }
}

/// Keyword hits of one segment, searched per layer on first use: a clean mail with no
/// identifier candidate never pays for the identifier-context keywords.
pub(crate) struct Hits<'a> {
    lower: &'a str,
    /// Where words start, with the layers whose keywords may begin there, and the layers in
    /// which a keyword inside a word may hide one of those starts; found once for all layers.
    starts: OnceCell<(Vec<(usize, u8)>, u8)>,
    layers: [OnceCell<Vec<(Group, usize, usize)>>; LAYERS],
}

impl<'a> Hits<'a> {
    /// Prepares keyword search over the lower-case text.
    pub(crate) fn new(lower: &'a str) -> Self {
        Self {
            lower,
            starts: OnceCell::new(),
            layers: Default::default(),
        }
    }

    /// The word starts (a word byte at the start of the text or after a byte that is none)
    /// where a keyword of some layer may begin, and the layers where a keyword matched
    /// inside a word may hide one of them. Eight bytes per step: a seventh of the bytes of
    /// prose start a word, and few of those a keyword.
    fn starts(&self) -> &(Vec<(usize, u8)>, u8) {
        self.starts.get_or_init(|| {
            let bytes = self.lower.as_bytes();
            let keywords = keywords();
            let mut starts = Vec::with_capacity(bytes.len() / 16);
            let mut hidden = 0u8;
            // The word-byte bit of the byte before the current eight, at byte 0's place.
            let mut before = 0;
            let mut look = |at: usize, word: u64| {
                let words = swar::word_bytes(word);
                for start in swar::offsets(words & !(words << 8 | before)).map(|o| at + o) {
                    let layers = keywords.heads[head(bytes, start)];
                    if layers == 0 {
                        continue;
                    }
                    starts.push((start, layers));
                    let open = layers & !hidden;
                    if open != 0
                        && start > INSIDE_BEFORE
                        && keywords.inside[head(bytes, start - INSIDE_BEFORE)] & open != 0
                    {
                        hidden |= keywords.hiding(bytes, start) & open;
                    }
                }
                before = words >> 56;
            };
            for (at, word) in swar::words(bytes) {
                look(at, word);
            }
            (starts, hidden)
        })
    }

    /// The hits of `group`'s layer (see [`Layer::through`]). Found from the word starts
    /// where a keyword may begin: at each the longest keyword, and the next keyword only
    /// after its end (so "deutsche rentenversicherung" is one hit) — the same hits, unless a
    /// keyword inside a word hides a start, in which case the whole text is searched.
    fn layer_hits(&self, group: Group) -> &[(Group, usize, usize)] {
        let l = layer(group);
        self.layers[l].get_or_init(|| {
            let layer = &keywords().layers[l];
            let (starts, hidden) = self.starts();
            if hidden & 1 << l != 0 {
                return layer.through(self.lower);
            }
            let mut hits = Vec::new();
            let mut after = 0;
            for &(start, layers) in starts {
                if layers & 1 << l == 0 || start < after {
                    continue;
                }
                if let Some((groups, end)) = layer.at(self.lower, start) {
                    hits.extend(groups.iter().map(|&g| (g, start, end)));
                    after = end;
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The definition the search keeps, built on its own: one leftmost-longest search of the
    /// layer's keywords through the whole text, without overlaps, keeping the matches that
    /// start a word.
    fn reference(lower: &str, l: usize) -> Vec<(Group, usize, usize)> {
        let words: Vec<&str> = GROUPS
            .iter()
            .filter(|(g, _)| layer(*g) == l)
            .flat_map(|(_, words)| words.iter().copied())
            .collect();
        let search = aho_corasick::AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&words)
            .expect("keywords compile");
        let bytes = lower.as_bytes();
        let mut hits = Vec::new();
        for m in search.find_iter(lower) {
            if m.start() > 0 && is_word_byte(bytes[m.start() - 1]) {
                continue;
            }
            let word = words[m.pattern().as_usize()];
            for (group, listed) in GROUPS.iter().filter(|(g, _)| layer(*g) == l) {
                if listed.contains(&word) {
                    hits.push((*group, m.start(), m.end()));
                }
            }
        }
        hits
    }

    /// Text of keywords, pieces of keywords, separators and other words.
    fn keyword_like() -> impl Strategy<Value = String> {
        let words: Vec<&'static str> = GROUPS.iter().flat_map(|(_, w)| w.iter().copied()).collect();
        let piece = prop_oneof![
            3 => prop::sample::select(words.clone()).prop_map(str::to_owned),
            2 => (prop::sample::select(words), 1..6usize).prop_map(|(w, n)| {
                w.chars().take(n).collect::<String>()
            }),
            2 => "[ .,;:()\n-]{1,3}",
            2 => "[a-zäöüß0-9]{1,8}",
        ];
        prop::collection::vec(piece, 0..30).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_search_finds_the_hits_of_one_search_through_the_text(text in keyword_like()) {
            let hits = Hits::new(&text);
            for l in 0..LAYERS {
                let group = GROUPS.iter().map(|(g, _)| *g).find(|&g| layer(g) == l).unwrap();
                let mut found = hits.layer_hits(group).to_vec();
                let mut expected = reference(&text, l);
                found.sort_by_key(|&(g, s, e)| (s, e, g as usize));
                expected.sort_by_key(|&(g, s, e)| (s, e, g as usize));
                prop_assert_eq!(found, expected, "layer {} of {:?}", l, text);
            }
        }
    }

    /// A keyword matched inside a word hides the word starts it overlaps, as one search
    /// through the text has it (found by an independent review of the word-start search).
    #[test]
    fn a_keyword_inside_a_word_hides_what_it_overlaps() {
        for (text, group) in [
            ("die frist wegen einer erkrankung", Group::State),
            (
                "nichtöffentliche niederschrift über die sitzung",
                Group::Agenda,
            ),
            ("tatverdacht aufgrund einer anzeige", Group::State),
            (
                "lohnsteuer-identifikationsnummer: 86 095 742 719",
                Group::Tax,
            ),
            ("lohnsteuer id card number", Group::Card),
            ("lohnsteuer id card number", Group::Ausweis),
        ] {
            let hits = Hits::new(text);
            let l = layer(group);
            assert_eq!(hits.layer_hits(group), reference(text, l), "{text:?}");
            assert_ne!(hits.starts().1 & 1 << l, 0, "{text:?} is searched through");
        }
        let minutes = Hits::new("nichtöffentliche niederschrift über die sitzung");
        assert_eq!(minutes.of(Group::Agenda).count(), 0);
    }

    /// Prose without such keywords takes the word-start search for every layer.
    #[test]
    fn prose_is_searched_from_word_starts() {
        let prose = "sehr geehrte frau schmidt, wie am 12.11.2026 besprochen, übersende ich \
                     ihnen die überarbeitete fassung des haushaltsentwurfs. rückfragen gern \
                     unter tel. 0531 470-2210. die steuer-id von herrn maier ist beigefügt, er \
                     ist wegen einer erkrankung krankgeschrieben.";
        let hits = Hits::new(prose);
        assert_eq!(hits.starts().1, 0);
        assert!(hits.of(Group::State).count() >= 2);
        assert_eq!(hits.of(Group::Tax).count(), 1);
    }

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
