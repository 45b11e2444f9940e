//! The classifier's category ids (`classifier::verdict::category`) in the pages' words.

use crate::i18n::Lang;

/// Every category id with its German name, in the order the filters offer them.
pub(crate) const ALL: [(&str, &str); 15] = [
    ("vs_nfd", "VS – Nur für den Dienstgebrauch"),
    ("classified", "VS – Vertraulich oder höher"),
    ("non_public_council", "Nichtöffentliche Ratsunterlagen"),
    ("personnel", "Personalangelegenheiten"),
    ("health", "Gesundheitsdaten"),
    ("social_data", "Sozialdaten"),
    ("criminal", "Strafrechtliche Daten"),
    ("tax_id", "Steuer-ID"),
    ("bank_account", "Bankverbindung (IBAN)"),
    ("payment_card", "Kartennummer"),
    ("social_insurance_number", "Rentenversicherungsnummer"),
    ("health_insurance_number", "Krankenversichertennummer"),
    ("identity_document", "Ausweisdokument"),
    (
        "sensitivity_label",
        "Vertraulichkeitskennzeichnung des Absenders",
    ),
    ("uninspectable", "Nicht prüfbarer Inhalt"),
];

/// The name of category `id` in `lang`; an unknown id is shown as it is.
pub(crate) fn name(lang: Lang, id: &str) -> String {
    ALL.iter()
        .find(|(known, _)| *known == id)
        .map_or_else(|| id.to_owned(), |(_, german)| lang.t(german).to_owned())
}

/// Whether `id` is a known category (filters accept only these).
pub(crate) fn known(id: &str) -> bool {
    ALL.iter().any(|(known, _)| *known == id)
}
