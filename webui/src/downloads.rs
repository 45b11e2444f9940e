//! What the viewer lets people download (`web.downloads`): the original (`.eml`) and the
//! attachments of a held message, or not.
//!
//! The decision for one download is made by the store in the same transaction as its audit
//! entry ([`store::VerdictGate`]): an allowed download is audited as `notice.viewed`, a
//! refused one as `notice.view_refused` with the reason — so the audit trail shows every
//! attempt, and a message marked after the page was shown is still refused.

use classifier::verdict::category;
use store::VerdictGate;

use crate::i18n::Lang;

/// The download policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Downloads {
    /// Every message's original and attachments.
    All,
    /// Not for messages marked VS-NfD or higher ([`category::MARKINGS`]); the default.
    #[default]
    NotClassified,
    /// None: messages are only shown.
    None,
}

/// Audit reason when downloads are switched off.
const OFF: &str = "downloads are switched off (web.downloads = none)";
/// Audit reason for a classified message under `not_classified`.
const CLASSIFIED: &str =
    "downloads of classified messages are switched off (web.downloads = not_classified)";

impl Downloads {
    /// The store's gate for one download under this policy.
    #[must_use]
    pub fn gate(self) -> VerdictGate<'static> {
        match self {
            Downloads::All => VerdictGate::Open,
            Downloads::NotClassified => VerdictGate::Unless {
                categories: category::MARKINGS,
                reason: CLASSIFIED,
            },
            Downloads::None => VerdictGate::Closed { reason: OFF },
        }
    }

    /// Why downloads of a message with verdict `categories` are refused, for the page
    /// (`None`: they are allowed). `categories` is `None` for a message without a stored
    /// verdict, which the store refuses under `not_classified` (fail closed).
    #[must_use]
    pub(crate) fn refusal(self, categories: Option<&[String]>, lang: Lang) -> Option<&'static str> {
        match self {
            Downloads::All => None,
            Downloads::None => Some(lang.t(
                "Downloads sind auf diesem Server abgeschaltet. Die Nachricht kann nur angesehen werden.",
            )),
            Downloads::NotClassified => {
                let marked = categories.is_none_or(|found| {
                    found.iter().any(|c| category::MARKINGS.contains(&c.as_str()))
                });
                marked.then(|| {
                    lang.t("Diese Nachricht ist als Verschlusssache eingestuft (VS – Nur für den Dienstgebrauch oder höher). Original und Anhänge können deshalb nicht heruntergeladen werden; die Nachricht kann nur angesehen werden.")
                })
            }
        }
    }

    /// Whether `reason` (from the store) is a refusal by this module's gate.
    pub(crate) fn is_policy_reason(reason: &str) -> bool {
        reason == OFF || reason == CLASSIFIED
    }
}

impl std::str::FromStr for Downloads {
    type Err = String;

    /// `all`, `not_classified` or `none` (the configuration's words).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Downloads::All),
            "not_classified" => Ok(Downloads::NotClassified),
            "none" => Ok(Downloads::None),
            other => Err(format!(
                "{other:?}: use \"all\", \"not_classified\" or \"none\""
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn policy_words_parse() {
        assert_eq!("all".parse(), Ok(Downloads::All));
        assert_eq!("not_classified".parse(), Ok(Downloads::NotClassified));
        assert_eq!("none".parse(), Ok(Downloads::None));
        assert!("None".parse::<Downloads>().is_err());
        assert_eq!(Downloads::default(), Downloads::NotClassified);
    }

    #[test]
    fn classified_messages_are_refused_by_default_only() {
        let nfd = cats(&["health", "vs_nfd"]);
        let secret = cats(&["classified"]);
        let plain = cats(&["tax_id", "health"]);
        let d = Downloads::NotClassified;
        assert!(d.refusal(Some(&nfd), Lang::German).is_some());
        assert!(d.refusal(Some(&secret), Lang::German).is_some());
        assert!(
            d.refusal(None, Lang::German).is_some(),
            "no verdict: fail closed"
        );
        assert_eq!(d.refusal(Some(&plain), Lang::German), None);
        assert_eq!(Downloads::All.refusal(Some(&nfd), Lang::German), None);
        assert!(
            Downloads::None
                .refusal(Some(&plain), Lang::German)
                .is_some()
        );
        assert!(
            Downloads::None
                .refusal(Some(&plain), Lang::English)
                .is_some_and(|t| t.starts_with("Downloads are switched off"))
        );
    }
}
