//! Where an exemption stands, in words: the one wording source of the CLI (English, as its
//! output always was) and the web pages (German, or English under `web.language = "en"`).

use store::{Exemption, ExemptionPolicy, ExemptionState, Missing};

use crate::datetime::{Dates, Language};

/// What a pending exemption waits for, in words ("waiting for the address to be confirmed
/// and for approval by an admin" / "wartet auf die Bestätigung der Adresse und auf die
/// Freigabe durch die Administration").
#[must_use]
pub fn waiting(missing: &[Missing], lang: Language) -> String {
    let de = lang == Language::German;
    let confirm = missing.contains(&Missing::Confirmation);
    let approvers: Vec<&str> = missing
        .iter()
        .filter_map(|m| match (m, de) {
            (Missing::Confirmation, _) => None,
            (Missing::AdminApproval, false) => Some("by an admin"),
            (Missing::AdminApproval, true) => Some("durch die Administration"),
            (Missing::DpoApproval, false) => Some("by the data-protection officer"),
            (Missing::DpoApproval, true) => Some("durch den Datenschutz"),
        })
        .collect();
    let approval = (!approvers.is_empty()).then(|| {
        if de {
            format!("die Freigabe {}", approvers.join(" und "))
        } else {
            format!("approval {}", approvers.join(" and "))
        }
    });
    match (confirm, approval, de) {
        (true, Some(approval), false) => {
            format!("waiting for the address to be confirmed and for {approval}")
        }
        (true, Some(approval), true) => {
            format!("wartet auf die Bestätigung der Adresse und auf {approval}")
        }
        (true, None, false) => "waiting for the address to be confirmed".to_owned(),
        (true, None, true) => "wartet auf die Bestätigung der Adresse".to_owned(),
        (false, Some(approval), false) => format!("waiting for {approval}"),
        (false, Some(approval), true) => format!("wartet auf {approval}"),
        (false, None, false) => "ready".to_owned(),
        (false, None, true) => "bereit".to_owned(),
    }
}

/// The state of `e` at `now` as one clause in `lang` — for a pending one, what it still
/// waits for: "waiting for approval by an admin", "active until 30. Dezember 2026, 20:28
/// Uhr", "revoked by dora on …" (German: "aktiv bis …", "widerrufen von dora am …").
#[must_use]
pub fn standing(
    e: &Exemption,
    policy: &ExemptionPolicy,
    now: i64,
    dates: Dates,
    lang: Language,
) -> String {
    let de = lang == Language::German;
    let ended = |en: &str, german: &str| {
        let by = e
            .ended_by
            .as_deref()
            .filter(|by| *by != "system")
            .map(|by| {
                if de {
                    format!(" von {by}")
                } else {
                    format!(" by {by}")
                }
            })
            .unwrap_or_default();
        let at = dates.or(e.ended_at, "-");
        if de {
            format!("{german}{by} am {at}")
        } else {
            format!("{en}{by} on {at}")
        }
    };
    let (from, until) = (dates.or(e.valid_from, "-"), dates.or(e.valid_until, "-"));
    match e.state {
        ExemptionState::Requested | ExemptionState::Confirmed => waiting(&e.missing(policy), lang),
        ExemptionState::Active if e.is_scheduled_at(now) => {
            if de {
                format!("als Anschluss genehmigt: aktiv vom {from} bis {until}")
            } else {
                format!("approved as a follow-up: active from {from} until {until}")
            }
        }
        ExemptionState::Active if e.valid_until.is_some_and(|until| until <= now) => {
            if de {
                format!("abgelaufen am {until}")
            } else {
                format!("expired on {until}")
            }
        }
        ExemptionState::Active => {
            if de {
                format!("aktiv bis {until}")
            } else {
                format!("active until {until}")
            }
        }
        ExemptionState::Expired => ended("expired", "abgelaufen"),
        ExemptionState::Revoked => ended("revoked", "widerrufen"),
        ExemptionState::Denied => ended("denied", "abgelehnt"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_missing_is_said_in_words() {
        use Missing::{AdminApproval, Confirmation, DpoApproval};
        for (missing, en, de) in [
            (
                &[Confirmation, AdminApproval, DpoApproval][..],
                "waiting for the address to be confirmed and for approval by an admin and by \
                 the data-protection officer",
                "wartet auf die Bestätigung der Adresse und auf die Freigabe durch die \
                 Administration und durch den Datenschutz",
            ),
            (
                &[Confirmation],
                "waiting for the address to be confirmed",
                "wartet auf die Bestätigung der Adresse",
            ),
            (
                &[AdminApproval],
                "waiting for approval by an admin",
                "wartet auf die Freigabe durch die Administration",
            ),
            (
                &[AdminApproval, DpoApproval],
                "waiting for approval by an admin and by the data-protection officer",
                "wartet auf die Freigabe durch die Administration und durch den Datenschutz",
            ),
            (
                &[Confirmation, DpoApproval],
                "waiting for the address to be confirmed and for approval by the \
                 data-protection officer",
                "wartet auf die Bestätigung der Adresse und auf die Freigabe durch den \
                 Datenschutz",
            ),
        ] {
            assert_eq!(waiting(missing, Language::English), en);
            assert_eq!(waiting(missing, Language::German), de);
        }
    }
}
