//! What classification says about a message: sensitive or clean, and why.
//!
//! A finding names the detector, category, confidence and place — never the matched value.
//! At most a masked hint (`DE89 …3000`) is kept, enough for an admin to recognise a false
//! alarm without the finding itself leaking the data.

use serde::Serialize;

/// Category ids. Stable strings: they are stored, exported and shown (translated) in notices.
pub mod category {
    /// Steuer-ID.
    pub const TAX_ID: &str = "tax_id";
    /// IBAN.
    pub const BANK_ACCOUNT: &str = "bank_account";
    /// Payment card number.
    pub const PAYMENT_CARD: &str = "payment_card";
    /// Rentenversicherungsnummer.
    pub const SOCIAL_INSURANCE: &str = "social_insurance_number";
    /// Krankenversichertennummer.
    pub const HEALTH_INSURANCE: &str = "health_insurance_number";
    /// Personalausweis, Reisepass, Führerschein.
    pub const IDENTITY_DOCUMENT: &str = "identity_document";
    /// VS – Nur für den Dienstgebrauch.
    pub const VS_NFD: &str = "vs_nfd";
    /// VS-Vertraulich, Geheim, Streng geheim.
    pub const CLASSIFIED: &str = "classified";
    /// Non-public council material.
    pub const NON_PUBLIC: &str = "non_public_council";
    /// Personalangelegenheiten.
    pub const PERSONNEL: &str = "personnel";
    /// A sensitivity header or label set by the sender's mail client.
    pub const LABEL: &str = "sensitivity_label";
    /// Health data of an identifiable person (Art. 9 GDPR).
    pub const HEALTH: &str = "health";
    /// Social data of an identifiable person (SGB I §35).
    pub const SOCIAL: &str = "social_data";
    /// Criminal convictions and offences of an identifiable person (Art. 10 GDPR).
    pub const CRIMINAL: &str = "criminal";
    /// Content that could not be inspected: fail closed.
    pub const UNINSPECTABLE: &str = "uninspectable";

    /// The classification markings, VS-NfD and higher (VS-Vertraulich, Geheim, Streng
    /// geheim): notices never show such a message's subject, and by default (`web.downloads
    /// = "not_classified"`) the web UI offers neither its original nor its attachments.
    pub const MARKINGS: &[&str] = &[VS_NFD, CLASSIFIED];

    /// Every built-in category, markings first, then council matters, special categories
    /// (Art. 9/10 GDPR) and identifiers: the order in which filters offer them.
    pub const ALL: &[&str] = &[
        VS_NFD,
        CLASSIFIED,
        NON_PUBLIC,
        PERSONNEL,
        HEALTH,
        SOCIAL,
        CRIMINAL,
        TAX_ID,
        BANK_ACCOUNT,
        PAYMENT_CARD,
        SOCIAL_INSURANCE,
        HEALTH_INSURANCE,
        IDENTITY_DOCUMENT,
        LABEL,
        UNINSPECTABLE,
    ];

    /// German name of a category for notices; custom categories show their id.
    #[must_use]
    pub fn name_de(id: &str) -> &str {
        match id {
            TAX_ID => "Steuer-Identifikationsnummer",
            BANK_ACCOUNT => "Bankverbindung (IBAN)",
            PAYMENT_CARD => "Kreditkartennummer",
            SOCIAL_INSURANCE => "Rentenversicherungsnummer",
            HEALTH_INSURANCE => "Krankenversichertennummer",
            IDENTITY_DOCUMENT => "Ausweisdokument",
            VS_NFD => "VS – Nur für den Dienstgebrauch",
            CLASSIFIED => "Verschlusssache",
            NON_PUBLIC => "Nichtöffentliche Ratsangelegenheit",
            PERSONNEL => "Personalangelegenheit",
            LABEL => "Vertraulichkeitskennzeichnung",
            HEALTH => "Gesundheitsdaten",
            SOCIAL => "Sozialdaten",
            CRIMINAL => "Strafrechtliche Daten",
            UNINSPECTABLE => "Nicht prüfbarer Inhalt",
            other => other,
        }
    }

    /// English name of a category.
    #[must_use]
    pub fn name_en(id: &str) -> &str {
        match id {
            TAX_ID => "Tax identification number",
            BANK_ACCOUNT => "Bank account (IBAN)",
            PAYMENT_CARD => "Payment card number",
            SOCIAL_INSURANCE => "Social insurance number",
            HEALTH_INSURANCE => "Health insurance number",
            IDENTITY_DOCUMENT => "Identity document",
            VS_NFD => "Classified: restricted (VS-NfD)",
            CLASSIFIED => "Classified information",
            NON_PUBLIC => "Non-public council matter",
            PERSONNEL => "Personnel matter",
            LABEL => "Sensitivity label",
            HEALTH => "Health data",
            SOCIAL => "Social data",
            CRIMINAL => "Criminal records and offences",
            UNINSPECTABLE => "Content that could not be inspected",
            other => other,
        }
    }
}

/// Where in the message a finding was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Header name, when found in a header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// MIME part path (`1`, `2.1`, …), when found in a body part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    /// Attachment name, with `/` between nested containers (`akte.zip/brief.docx`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<String>,
    /// Byte offset in the extracted text of that place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

/// One reason for the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which detector (`steuer_id`, `vs_marking`, a custom rule's name, …).
    pub detector: String,
    /// Category id (see [`category`]).
    pub category: String,
    /// 0–100: 85 pattern + check + context, 75 pattern + check or context, 65 check only.
    pub confidence: u8,
    /// Where.
    pub location: Location,
    /// A masked hint (`DE89 …3000`) or the name of what was found; never the full value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The classification of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// True when the message must not leave as it is.
    pub sensitive: bool,
    /// Categories of the findings, sorted, without duplicates.
    pub categories: Vec<String>,
    /// The findings that decided the verdict (at or above their threshold).
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// Builds the verdict from the findings that count.
    #[must_use]
    pub fn from_findings(mut findings: Vec<Finding>) -> Self {
        findings.sort_by(|a, b| {
            (a.location.part.as_deref(), a.location.offset)
                .cmp(&(b.location.part.as_deref(), b.location.offset))
        });
        let mut categories: Vec<String> = findings.iter().map(|f| f.category.clone()).collect();
        categories.sort();
        categories.dedup();
        Self {
            sensitive: !findings.is_empty(),
            categories,
            findings,
        }
    }

    /// True when one of the findings is the VS-NfD marking (notices then never show the
    /// subject).
    #[must_use]
    pub fn is_vs_nfd(&self) -> bool {
        self.categories
            .iter()
            .any(|c| category::MARKINGS.contains(&c.as_str()))
    }
}

/// Masks an identifier: the first four and last four characters around an ellipsis for long
/// values (`DE89 …3000`), first and last two for shorter ones; nothing for very short ones.
#[must_use]
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().filter(|c| !c.is_whitespace()).collect();
    let n = chars.len();
    let (head, tail) = match n {
        0..=5 => return "…".to_owned(),
        6..=11 => (2, 2),
        _ => (4, 4),
    };
    let head: String = chars[..head].iter().collect();
    let tail: String = chars[n - tail..].iter().collect();
    format!("{head} …{tail}")
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_keep_little() {
        assert_eq!(mask("DE89 3704 0044 0532 0130 00"), "DE89 …3000");
        assert_eq!(mask("86095742719"), "86 …19");
        assert_eq!(mask("A12"), "…");
    }
}
