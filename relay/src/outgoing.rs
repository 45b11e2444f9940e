//! Mails ratspost writes itself — notices, confirmation codes, expiry reminders — are
//! classified before they leave, with the same rules as incoming mail. Whatever a bug, a
//! sender or a requester managed to put into one, a mail the classifier calls sensitive is
//! not sent: fail closed, logged at warn (without content), audited as `notice.withheld`.

use classifier::Rules;
use store::{NewAuditEntry, Store};

/// The categories that make `mail` (a complete message as ratspost wrote it, before DKIM
/// signing) sensitive; `None` when it may leave. A mail ratspost writes is a few kilobytes
/// of bounded text, so this runs inline.
#[must_use]
pub fn flagged(mail: &[u8], rules: &Rules) -> Option<Vec<String>> {
    let verdict = classifier::classify(mail, rules);
    verdict.sensitive.then_some(verdict.categories)
}

/// Records that a mail of `kind` (`notice`, `confirmation`, `reminder`) was withheld: a
/// warning without content, and the audit entry `notice.withheld` with `subjects`
/// (`message:…`, `exemption:…`, `user:…`), the kind and the categories — not the recipient
/// address, which may be what the classifier flagged. A failing audit append is logged;
/// the mail stays withheld either way.
pub async fn withheld(store: &Store, kind: &str, subjects: Vec<String>, categories: &[String]) {
    tracing::warn!(
        kind,
        subjects = %subjects.join(" "),
        categories = %categories.join(","),
        "outgoing mail withheld: the classifier flags it"
    );
    let entry = NewAuditEntry {
        actor: "system".to_owned(),
        action: "notice.withheld".to_owned(),
        subjects,
        details: serde_json::json!({
            "kind": kind,
            "categories": categories,
        }),
    };
    if let Err(err) = store.append_audit(&entry).await {
        tracing::error!(kind, error = %err, "cannot audit a withheld mail");
    }
}
