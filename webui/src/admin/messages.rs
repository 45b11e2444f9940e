//! `/admin/messages`: accepted messages as metadata only (role admin) — time, envelope
//! sender, recipients, size and the verdict's categories; never a subject or content.
//! Filtered by user and verdict in the store, paged, as `ratspost message list`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use store::{MessageFilter, MessageSummary, Role, VerdictKind};

use crate::datetime::Dates;
use crate::pages::{Chrome, render, store_failed};
use crate::paging::{Cursor, Links, PAGE_SIZE, arrange, with_query};
use crate::session::LoggedIn;
use crate::{Web, categories};

/// A message as shown.
pub(crate) struct Row {
    pub(crate) message: MessageSummary,
    pub(crate) received: String,
    /// "Unauffällig", "Noch nicht geprüft", or the categories' names.
    pub(crate) verdict: String,
    pub(crate) size: String,
}

#[derive(Template)]
#[template(path = "admin/messages.html")]
pub(crate) struct MessagesPage {
    c: Chrome,
    rows: Vec<Row>,
    links: Links,
    /// Logins for the user filter.
    logins: Vec<String>,
    /// The verdict filter's choices: (value, label).
    verdicts: Vec<(String, String)>,
    user: String,
    verdict: String,
}

/// `?user=LOGIN&verdict=clean|sensitive|pending|cat:ID&before=ID|after=ID`.
#[derive(Deserialize)]
pub(crate) struct MessagesQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    verdict: String,
    before: Option<i64>,
    after: Option<i64>,
}

/// The store's verdict filter for `value` (`None` for "all" and for what is not a choice).
fn verdict_kind(value: &str) -> Option<VerdictKind> {
    match value {
        "clean" => Some(VerdictKind::Clean),
        "sensitive" => Some(VerdictKind::Sensitive),
        "pending" => Some(VerdictKind::Pending),
        other => other
            .strip_prefix("cat:")
            .filter(|id| categories::known(id))
            .map(|id| VerdictKind::Category(id.to_owned())),
    }
}

/// A size in bytes as people read it ("12,3 KB").
fn size(c: &Chrome, bytes: i64) -> String {
    #[allow(clippy::cast_precision_loss)] // sizes of mail: far below 2^52
    let kb = bytes as f64 / 1024.0;
    let text = if bytes < 1024 {
        format!("{bytes} B")
    } else if kb < 1024.0 {
        format!("{kb:.1} KB")
    } else {
        format!("{:.1} MB", kb / 1024.0)
    };
    match c.lang {
        crate::i18n::Lang::German => text.replace('.', ","),
        crate::i18n::Lang::English => text,
    }
}

/// `GET /admin/messages`.
pub(crate) async fn list(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Query(q): Query<MessagesQuery>,
) -> Result<Response, Response> {
    user.require(&[Role::Admin])?;
    let c = user.chrome();
    let logins: Vec<String> = web
        .store
        .list_users()
        .await
        .map_err(|e| store_failed(&e))?
        .into_iter()
        .map(|u| u.login)
        .collect();
    // Only choices the form offers are filtered by; anything else shows all.
    let login = q.user.trim().to_ascii_lowercase();
    let login = if logins.contains(&login) {
        login
    } else {
        String::new()
    };
    let kind = verdict_kind(&q.verdict);
    let verdict = if kind.is_some() {
        q.verdict.clone()
    } else {
        String::new()
    };
    let page = Cursor {
        before: q.before,
        after: q.after,
    }
    .page();
    let filter = MessageFilter {
        user: (!login.is_empty()).then(|| login.clone()),
        verdict: kind,
        page,
        limit: Some(PAGE_SIZE + 1),
    };
    let messages = web
        .store
        .list_messages(&filter)
        .await
        .map_err(|e| store_failed(&e))?;
    let base = with_query(
        "/admin/messages",
        &[("user", &login), ("verdict", &verdict)],
    );
    let (messages, links) = arrange(page, messages, |m| m.id, &base);
    let dates = Dates::new(web.time_zone, web.language);
    let rows = messages
        .into_iter()
        .map(|m| Row {
            received: dates.millis(m.received_at),
            verdict: match m.sensitive {
                None => c.t("Noch nicht geprüft").to_owned(),
                Some(false) => c.t("Unauffällig").to_owned(),
                Some(true) if m.categories.is_empty() => c.t("Vertraulich").to_owned(),
                Some(true) => m
                    .categories
                    .iter()
                    .map(|id| categories::name(c.lang, id))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            size: size(&c, m.size),
            message: m,
        })
        .collect();
    let mut verdicts = vec![
        (String::new(), c.t("Alle").to_owned()),
        ("clean".to_owned(), c.t("Unauffällig").to_owned()),
        (
            "sensitive".to_owned(),
            c.t("Vertraulich (alle Kategorien)").to_owned(),
        ),
        ("pending".to_owned(), c.t("Noch nicht geprüft").to_owned()),
    ];
    verdicts.extend(
        categories::ALL
            .iter()
            .map(|id| (format!("cat:{id}"), categories::name(c.lang, id))),
    );
    Ok(render(
        StatusCode::OK,
        &MessagesPage {
            c,
            rows,
            links,
            logins,
            verdicts,
            user: login,
            verdict,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_offered_verdicts_filter() {
        assert_eq!(verdict_kind("clean"), Some(VerdictKind::Clean));
        assert_eq!(
            verdict_kind("cat:vs_nfd"),
            Some(VerdictKind::Category("vs_nfd".into()))
        );
        assert_eq!(verdict_kind("cat:%"), None);
        assert_eq!(verdict_kind(""), None);
    }

    #[test]
    fn sizes_read_naturally() {
        let de = Chrome::anonymous(crate::i18n::Lang::German);
        assert_eq!(size(&de, 900), "900 B");
        assert_eq!(size(&de, 12_595), "12,3 KB");
        assert_eq!(size(&de, 3 * 1024 * 1024), "3,0 MB");
        let en = Chrome::anonymous(crate::i18n::Lang::English);
        assert_eq!(size(&en, 12_595), "12.3 KB");
    }
}
