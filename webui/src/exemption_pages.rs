//! What the exemption pages share (staff `/forwarding`, `/approvals`, `/admin/exemptions`):
//! an exemption as a table row, the confirmation after a POST (`?done=…`) and the refusal
//! (`?error=…`) as fixed texts — the query carries a key, never user data — and the store's
//! refusals in words.

use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Redirect, Response};
use serde::Deserialize;
use store::{ErrorKind, Exemption, ExemptionPolicy, ExemptionState};

use crate::actions::ActionError;
use crate::datetime::Dates;
use crate::i18n::Lang;
use crate::pages;

/// Longest reason (of a request or a denial), in characters; the store allows 1000 bytes.
pub(crate) const MAX_REASON: usize = 1000;
/// Longest target address (RFC 5321 path).
pub(crate) const MAX_ADDRESS: usize = 254;

/// `?done=…&error=…` after a POST/redirect.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Outcome {
    #[serde(default)]
    done: String,
    #[serde(default)]
    error: String,
}

/// What happened, as the page shows it.
pub(crate) struct Said {
    /// A confirmation (`role="status"`).
    pub(crate) ok: Option<&'static str>,
    /// A refusal (`role="alert"`).
    pub(crate) error: Option<&'static str>,
}

impl Outcome {
    /// The texts for the keys this page knows; unknown keys say nothing.
    pub(crate) fn said(&self, lang: Lang) -> Said {
        let ok = match self.done.as_str() {
            "requested" => Some(lang.t(
                "Der Antrag ist gestellt. Die Bestätigungs-E-Mail mit Code und Link ist an die Zieladresse unterwegs.",
            )),
            "confirmed" => Some(lang.t("Die Zieladresse ist bestätigt.")),
            "approved" => Some(lang.t("Die Freigabe ist erteilt.")),
            "denied" => Some(lang.t("Der Antrag ist abgelehnt.")),
            "revoked" => Some(lang.t("Die Weiterleitung ist widerrufen.")),
            _ => None,
        };
        Said {
            ok,
            error: error_text(&self.error, lang),
        }
    }
}

/// The refusal text for `key`, in `lang`.
fn error_text(key: &str, lang: Lang) -> Option<&'static str> {
    Some(match key {
        "forbidden" => lang.t(
            "Das ist Ihnen nicht erlaubt. Vier-Augen-Prinzip: Wer einen Antrag gestellt hat oder dessen Postfach betroffen ist, kann ihn weder freigeben noch ablehnen.",
        ),
        "invalid" => lang.t(
            "Das war nicht möglich: Der Antrag wartet nicht (mehr) auf diese Entscheidung, oder Ihre Rolle hat bereits entschieden.",
        ),
        "conflict" => lang.t(
            "Es gibt bereits einen offenen Antrag oder eine Anschlussausnahme. Schließen Sie ihn ab oder widerrufen Sie ihn zuerst.",
        ),
        "not_found" => lang.t("Diese Ausnahme gibt es nicht."),
        "withheld" => lang.t(
            "Die Bestätigungs-E-Mail enthielte Angaben, die als vertraulich eingestuft werden. Sie wurde nicht gesendet, und es wurde nichts beantragt. Bitte prüfen Sie Zieladresse und Begründung.",
        ),
        "reason" => lang.t("Bitte geben Sie eine Begründung an (höchstens 1000 Zeichen)."),
        _ => return None,
    })
}

/// The `?error=` key for a store refusal; `None` for a failure (the page for it is
/// [`pages::unavailable`]).
pub(crate) fn error_key(err: &ActionError) -> Option<&'static str> {
    match err {
        ActionError::Withheld => Some("withheld"),
        ActionError::Store(err) => match err.kind() {
            ErrorKind::Forbidden => Some("forbidden"),
            ErrorKind::Invalid => Some("invalid"),
            ErrorKind::Conflict => Some("conflict"),
            ErrorKind::NotFound => Some("not_found"),
            _ => None,
        },
    }
}

/// The answer to a POST: back to `page` with `?done=done`, or with `?error=…` for a
/// refusal; the unavailable page for a failure (logged).
pub(crate) fn after<T>(page: &str, done: &str, result: Result<T, ActionError>) -> Response {
    match result {
        Ok(_) => Redirect::to(&format!("{page}?done={done}")).into_response(),
        Err(err) => match error_key(&err) {
            Some(key) => Redirect::to(&format!("{page}?error={key}")).into_response(),
            None => {
                tracing::error!(error = ?err, "web: an exemption action failed");
                pages::unavailable()
            }
        },
    }
}

/// The unavailable page for a store failure (logged).
pub(crate) fn failed(err: &store::Error) -> Response {
    tracing::error!(error = %err, "web: cannot read exemptions");
    pages::unavailable()
}

/// An exemption as the tables show it (already in the page's language).
pub(crate) struct Row {
    pub(crate) id: i64,
    pub(crate) login: String,
    pub(crate) target: String,
    pub(crate) days: i64,
    pub(crate) reason: String,
    pub(crate) requested_by: String,
    pub(crate) requested_at: String,
    /// Where it stands ("aktiv bis …", "wartet auf …").
    pub(crate) standing: String,
    /// Whether the address is confirmed.
    pub(crate) confirmed: bool,
    /// Whole days left of an active (or scheduled) exemption.
    pub(crate) days_left: Option<i64>,
    /// Whether it can still be revoked (pending, or active and not over).
    pub(crate) open: bool,
}

const DAY: i64 = 24 * 60 * 60 * 1000;

impl Row {
    pub(crate) fn new(
        e: &Exemption,
        policy: &ExemptionPolicy,
        now: i64,
        dates: Dates,
        lang: Lang,
    ) -> Self {
        let live = e.state == ExemptionState::Active && e.valid_until.is_some_and(|u| now < u);
        Self {
            id: e.id,
            login: e.login.clone(),
            target: e.target.clone(),
            days: e.days,
            reason: e.reason.clone(),
            requested_by: e.requested_by.clone(),
            requested_at: dates.millis(e.requested_at),
            standing: crate::standing::standing(e, policy, now, dates, lang),
            confirmed: e.confirmed_at.is_some(),
            // Rounded up: an exemption with 2 h left has "1" day left, not 0.
            days_left: e
                .valid_until
                .filter(|_| live)
                .map(|until| (until - now.max(e.valid_from.unwrap_or(now)) + DAY - 1) / DAY),
            open: live
                || matches!(
                    e.state,
                    ExemptionState::Requested | ExemptionState::Confirmed
                ),
        }
    }
}

/// A page answer with `status` for a refusal the handler renders itself (`title` and `text`
/// already in `lang`).
pub(crate) fn refused(lang: Lang, status: StatusCode, title: &str, text: &str) -> Response {
    pages::status_in(lang, status, title, text)
}
