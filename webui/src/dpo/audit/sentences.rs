//! Audit entries in plain words: one sentence per event type, with the people named by
//! their names ("Anna Beispiel (anna)") and the details that matter to the reader.
//!
//! Every event type ratspost appends has its sentence here (the store's transitions,
//! the pipeline, the queue, IMAP, the CLI and the web UI); an event type this module does
//! not know (added later) is shown with its actor and technical name rather than hidden.

use std::collections::HashMap;

use store::{AuditEntry, User};

use crate::datetime::Dates;
use crate::i18n::Lang;

/// Every known event type with its name for the filter.
pub(crate) const EVENTS: [(&str, &str); 30] = [
    ("user.created", "Benutzerkonto angelegt"),
    ("user.password_changed", "Passwort geändert"),
    ("user.disabled", "Benutzerkonto gesperrt"),
    ("user.enabled", "Benutzerkonto freigegeben"),
    ("app_password.created", "Gerätepasswort angelegt"),
    ("app_password.revoked", "Gerätepasswort widerrufen"),
    (
        "imap.login_new_address",
        "Geräteanmeldung von neuer Adresse",
    ),
    (
        "submission.login_new_address",
        "Versandanmeldung von neuer Adresse",
    ),
    (
        "cli.password_refused",
        "Falsches Passwort an der Kommandozeile",
    ),
    ("exemption.requested", "Weiterleitung beantragt"),
    ("exemption.confirmation_failed", "Falscher Bestätigungscode"),
    ("exemption.confirmed", "Zieladresse bestätigt"),
    ("exemption.approved", "Ausnahme genehmigt"),
    ("exemption.denied", "Ausnahme abgelehnt"),
    ("exemption.revoked", "Ausnahme widerrufen"),
    ("exemption.expired", "Ausnahme abgelaufen"),
    ("exemption.activated", "Ausnahme in Kraft"),
    ("exemption.scheduled", "Ausnahme vorgemerkt"),
    ("exemption.reminder_sent", "Erinnerung an Ablauf gesendet"),
    ("forward.decided", "Weiterleitung beschlossen"),
    ("forward.delivered", "Weiterleitung zugestellt"),
    ("submission.accepted", "Nachricht gesendet"),
    (
        "submission.released",
        "Zurückgehaltene Nachricht freigegeben",
    ),
    ("queue.dropped", "Auftrag verworfen"),
    ("queue.failed", "Zustellung gescheitert"),
    ("notice.viewed", "Nachrichtenlink geöffnet"),
    ("notice.view_refused", "Nachrichtenlink abgewiesen"),
    ("notice.links_revoked", "Nachrichtenlinks widerrufen"),
    ("notice.withheld", "Ausgehende Nachricht zurückgehalten"),
    ("audit.exported", "Protokoll exportiert"),
];

/// The name of event type `action` for the filter (its technical name when unknown).
pub(crate) fn event_name(lang: Lang, action: &str) -> String {
    EVENTS
        .iter()
        .find(|(a, _)| *a == action)
        .map_or_else(|| action.to_owned(), |(_, name)| lang.t(name).to_owned())
}

/// Who is who: logins and ids to names, for the sentences.
pub(crate) struct People {
    by_login: HashMap<String, String>,
    by_id: HashMap<i64, String>,
}

impl People {
    /// From the user list.
    pub(crate) fn new(users: &[User]) -> Self {
        Self {
            by_login: users
                .iter()
                .map(|u| (u.login.clone(), u.name.clone()))
                .collect(),
            by_id: users.iter().map(|u| (u.id, u.login.clone())).collect(),
        }
    }

    /// "Anna Beispiel (anna)" for a login (or a numeric user id); `system` and `cli` as
    /// what they are.
    fn person(&self, lang: Lang, who: &str) -> String {
        match who {
            "system" => lang.t("ratspost (automatisch)").to_owned(),
            "cli" => lang.t("die Kommandozeile").to_owned(),
            _ => {
                let login = who
                    .parse::<i64>()
                    .ok()
                    .and_then(|id| self.by_id.get(&id))
                    .map_or(who, String::as_str);
                match self.by_login.get(login) {
                    Some(name) => format!("{name} ({login})"),
                    None => login.to_owned(),
                }
            }
        }
    }
}

/// The value of subject `kind:…` of `e`, if any.
fn subject<'a>(e: &'a AuditEntry, kind: &str) -> Option<&'a str> {
    e.subjects
        .iter()
        .find_map(|s| s.strip_prefix(kind)?.strip_prefix(':'))
}

/// Detail `key` of `e` as text ("" when absent).
fn detail(e: &AuditEntry, key: &str) -> String {
    match &e.details[key] {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The reasons the store and relay write (English, fixed) in the pages' words.
pub(crate) fn reason(lang: Lang, reason: &str) -> String {
    let german = match reason {
        "downloads are switched off (web.downloads = none)" => {
            "Downloads sind abgeschaltet (web.downloads = none)"
        }
        "downloads of classified messages are switched off (web.downloads = not_classified)" => {
            "Downloads eingestufter Nachrichten sind abgeschaltet (web.downloads = not_classified)"
        }
        "too many wrong confirmation codes" => "zu viele falsche Bestätigungscodes",
        "confirmation code expired" => "der Bestätigungscode ist abgelaufen",
        "validity ended" => "die Geltungsdauer ist zu Ende",
        "the link was revoked" => "der Link wurde widerrufen",
        "the link has expired" => "der Link ist abgelaufen",
        "the link belongs to another user's mailbox" => "der Link gehört zu einem anderen Postfach",
        "dropped by hand" => "von Hand verworfen",
        other => return other.to_owned(),
    };
    lang.t(german).to_owned()
}

/// What part of a message a notice link showed (`message`, `original`, `attachment 2`).
fn what(lang: Lang, what: &str) -> String {
    match what.split_once(' ') {
        _ if what == "message" => lang.t("Ansicht").to_owned(),
        _ if what == "original" => lang.t("Originalnachricht").to_owned(),
        Some(("attachment", n)) => format!("{} {n}", lang.t("Anhang")),
        _ => what.to_owned(),
    }
}

/// `template` with each `{name}` replaced by its value.
fn fill(template: &str, vars: &[(&str, String)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// Entry `e` as a sentence in `lang`; dates in `dates`.
pub(crate) fn sentence(lang: Lang, dates: &Dates, people: &People, e: &AuditEntry) -> String {
    let actor = people.person(lang, &e.actor);
    let user = subject(e, "user").map_or_else(String::new, |u| people.person(lang, u));
    let date = |key: &str| {
        e.details[key]
            .as_i64()
            .map_or_else(String::new, |m| dates.millis(m))
    };
    let vars = [
        ("actor", actor.clone()),
        ("user", user),
        ("id", subject(e, "exemption").unwrap_or("?").to_owned()),
        ("message", subject(e, "message").unwrap_or("?").to_owned()),
        ("job", subject(e, "job").unwrap_or("?").to_owned()),
        ("target", detail(e, "target")),
        ("days", detail(e, "days")),
        ("label", detail(e, "label")),
        ("ip", detail(e, "ip")),
        ("attempts", detail(e, "attempts")),
        ("links", detail(e, "links")),
        ("reason", reason(lang, &detail(e, "reason"))),
        ("error", reason(lang, &detail(e, "error"))),
        ("what", what(lang, &detail(e, "what"))),
        ("from", date("valid_from")),
        ("until", date("valid_until")),
        ("categories", detail(e, "categories")),
        ("recipients", detail(e, "recipients")),
    ];
    let outcome = detail(e, "outcome");
    let kind = detail(e, "kind");
    let template = match e.action.as_str() {
        "user.created" => "{actor} hat das Benutzerkonto {user} angelegt.",
        "user.password_changed" => "{actor} hat das Passwort von {user} geändert.",
        "user.disabled" => "{actor} hat das Benutzerkonto {user} gesperrt.",
        "user.enabled" => "{actor} hat das Benutzerkonto {user} wieder freigegeben.",
        "app_password.created" => "{actor} hat für {user} das Gerätepasswort „{label}“ angelegt.",
        "app_password.revoked" => "{actor} hat das Gerätepasswort „{label}“ von {user} widerrufen.",
        "imap.login_new_address" => {
            "{user} hat sich mit einem Gerät von einer neuen Adresse angemeldet ({ip})."
        }
        "submission.login_new_address" => {
            "{user} hat sich zum Senden mit einem Gerät von einer neuen Adresse angemeldet ({ip})."
        }
        "submission.accepted" if e.details["held"] == true => {
            "{actor} hat eine Nachricht an {recipients} Empfänger gesendet; sie wird zurückgehalten, bis sie freigegeben wird, weil sie vertrauliche Inhalte enthält ({categories}) (Auftrag Nr. {job})."
        }
        "submission.accepted" if e.details["sensitive"] == true => {
            "{actor} hat eine Nachricht mit vertraulichen Inhalten ({categories}) an {recipients} Empfänger gesendet (Auftrag Nr. {job})."
        }
        "submission.accepted" => {
            "{actor} hat eine Nachricht an {recipients} Empfänger gesendet (Auftrag Nr. {job})."
        }
        "submission.released" => {
            "{actor} hat die zurückgehaltene Nachricht (Auftrag Nr. {job}) zum Versand freigegeben."
        }
        "cli.password_refused" => {
            "An der Kommandozeile wurde ein falsches Passwort für {actor} eingegeben."
        }
        "exemption.requested" => {
            "{actor} hat die Weiterleitung der Post von {user} an {target} für {days} Tage beantragt (Ausnahme Nr. {id})."
        }
        "exemption.confirmation_failed" => {
            "Für die Ausnahme Nr. {id} von {user} wurde ein falscher Bestätigungscode eingegeben ({attempts}. Fehlversuch)."
        }
        "exemption.confirmed" => {
            "{user} hat die Zieladresse {target} der Ausnahme Nr. {id} mit dem Code bestätigt."
        }
        "exemption.approved" => "{actor} hat die Ausnahme Nr. {id} für {user} genehmigt.",
        "exemption.denied" if e.actor == "system" => {
            "Die Ausnahme Nr. {id} für {user} wurde abgelehnt: {reason}."
        }
        "exemption.denied" => {
            "{actor} hat die Ausnahme Nr. {id} für {user} abgelehnt. Begründung: {reason}"
        }
        "exemption.revoked" => "{actor} hat die Ausnahme Nr. {id} für {user} widerrufen.",
        "exemption.expired" => "Die Ausnahme Nr. {id} für {user} ist abgelaufen: {reason}.",
        "exemption.activated" => "Die Ausnahme Nr. {id} für {user} ist in Kraft bis {until}.",
        "exemption.scheduled" => {
            "Die Ausnahme Nr. {id} für {user} ist genehmigt und gilt vom {from} bis {until}."
        }
        "exemption.reminder_sent" => {
            "{user} wurde daran erinnert, dass die Ausnahme Nr. {id} am {until} endet."
        }
        "forward.decided" if outcome == "notice" => {
            "Für eine vertrauliche Nachricht an {user} wird ein Hinweis an {target} gesendet (Nachricht Nr. {message}, Ausnahme Nr. {id})."
        }
        "forward.decided" => {
            "Eine Nachricht an {user} wird an {target} weitergeleitet (Nachricht Nr. {message}, Ausnahme Nr. {id})."
        }
        "forward.delivered" if kind == "notice" => {
            "Der Hinweis an {target} wurde zugestellt (Auftrag Nr. {job})."
        }
        "forward.delivered" => {
            "Die Weiterleitung an {target} wurde zugestellt (Auftrag Nr. {job})."
        }
        "queue.dropped" if e.actor == "system" => {
            "Der Auftrag Nr. {job} an {target} wurde nicht gesendet: {error}."
        }
        "queue.dropped" => "{actor} hat den Auftrag Nr. {job} verworfen.",
        "queue.failed" => {
            "Die Zustellung von Auftrag Nr. {job} an {target} ist endgültig gescheitert: {error}."
        }
        "notice.viewed" => {
            "{actor} hat den Nachrichtenlink geöffnet (Nachricht Nr. {message}, {what})."
        }
        "notice.view_refused" => {
            "Der Nachrichtenlink wurde {actor} verweigert (Nachricht Nr. {message}): {reason}."
        }
        "notice.links_revoked" => {
            "{actor} hat die Nachrichtenlinks von Nachricht Nr. {message} widerrufen ({links} noch gültige)."
        }
        "notice.withheld" => {
            "Eine ausgehende Nachricht wurde zurückgehalten, weil sie vertrauliche Inhalte enthält ({categories})."
        }
        "audit.exported" => "{actor} hat das Protokoll exportiert.",
        _ => return format!("{actor}: {}", e.action),
    };
    fill(lang.t(template), &vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        actor: &str,
        action: &str,
        subjects: &[&str],
        details: serde_json::Value,
    ) -> AuditEntry {
        AuditEntry {
            seq: 1,
            at: 0,
            actor: actor.into(),
            action: action.into(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            details,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn people() -> People {
        let user = |id, login: &str, name: &str| User {
            id,
            login: login.into(),
            name: name.into(),
            role: store::Role::Staff,
            created_at: 0,
            addresses: vec![],
            disabled_at: None,
        };
        People::new(&[
            user(7, "anna", "Anna Beispiel"),
            user(8, "root", "Rita Root"),
        ])
    }

    #[test]
    fn sentences_name_people_and_details() {
        let dates = Dates::default();
        let s = |e: &AuditEntry| sentence(Lang::German, &dates, &people(), e);
        assert_eq!(
            s(&entry(
                "anna",
                "exemption.requested",
                &["exemption:3", "user:anna"],
                serde_json::json!({"target": "anna@privat.example", "days": 14, "reason": "Urlaub"})
            )),
            "Anna Beispiel (anna) hat die Weiterleitung der Post von Anna Beispiel (anna) an anna@privat.example für 14 Tage beantragt (Ausnahme Nr. 3)."
        );
        // The notice entries name the user by id.
        assert_eq!(
            s(&entry(
                "anna",
                "notice.view_refused",
                &["message:9", "user:8"],
                serde_json::json!({"ip": "1.2.3.4", "what": "message", "reason": "the link was revoked"})
            )),
            "Der Nachrichtenlink wurde Anna Beispiel (anna) verweigert (Nachricht Nr. 9): der Link wurde widerrufen."
        );
        assert_eq!(
            s(&entry(
                "anna",
                "notice.viewed",
                &["message:9", "user:7"],
                serde_json::json!({"what": "attachment 2"})
            )),
            "Anna Beispiel (anna) hat den Nachrichtenlink geöffnet (Nachricht Nr. 9, Anhang 2)."
        );
        assert_eq!(
            s(&entry(
                "system",
                "exemption.denied",
                &["exemption:3", "user:anna"],
                serde_json::json!({"reason": "too many wrong confirmation codes"})
            )),
            "Die Ausnahme Nr. 3 für Anna Beispiel (anna) wurde abgelehnt: zu viele falsche Bestätigungscodes."
        );
        assert_eq!(
            s(&entry(
                "bert",
                "web.something_new",
                &[],
                serde_json::json!({})
            )),
            "bert: web.something_new"
        );
        let en = sentence(
            Lang::English,
            &dates,
            &people(),
            &entry(
                "root",
                "user.disabled",
                &["user:anna"],
                serde_json::json!({}),
            ),
        );
        assert_eq!(
            en,
            "Rita Root (root) disabled the account of Anna Beispiel (anna)."
        );
    }

    fn name_of(action: &str) -> &'static str {
        EVENTS
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, n)| *n)
            .unwrap()
    }

    #[test]
    fn every_event_the_code_appends_has_a_sentence() {
        let dates = Dates::default();
        for (action, _) in EVENTS {
            let text = sentence(
                Lang::German,
                &dates,
                &people(),
                &entry("root", action, &["user:anna"], serde_json::json!({})),
            );
            assert!(!text.starts_with("Rita Root (root): "), "{action}: {text}");
            assert_ne!(
                Lang::English.t(name_of(action)),
                name_of(action),
                "{action}"
            );
        }
        // Every sentence (each variant) has its English.
        for (actor, action, details) in EVENTS
            .iter()
            .map(|(a, _)| ("root", *a, serde_json::json!({})))
            .chain([
                ("system", "exemption.denied", serde_json::json!({})),
                ("system", "queue.dropped", serde_json::json!({})),
                (
                    "system",
                    "forward.decided",
                    serde_json::json!({"outcome": "notice"}),
                ),
                (
                    "system",
                    "forward.delivered",
                    serde_json::json!({"kind": "notice"}),
                ),
            ])
        {
            let e = entry(actor, action, &["user:anna"], details);
            let (de, en) = (
                sentence(Lang::German, &dates, &people(), &e),
                sentence(Lang::English, &dates, &people(), &e),
            );
            assert_ne!(de, en, "no English sentence for {action}");
        }
    }
}
