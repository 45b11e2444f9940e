//! `/dpo/audit`: the audit trail for the data-protection officer (role dpo) — filtered by
//! user, event type and date range (local dates of `time_zone`) in the store, paged, each
//! entry as a sentence; the chain verified on request (`/dpo/audit/verify`, as `ratspost
//! audit verify`); and exported for a date range as JSON Lines or CSV (the same lines as
//! `ratspost audit export`), streamed page by page so the log is never held in memory.

pub(crate) mod sentences;

use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use store::{AuditCheck, AuditFilter, Page, Role};

use crate::datetime::Dates;
use crate::pages::{Chrome, render, store_failed};
use crate::paging::{Cursor, Links, PAGE_SIZE, arrange, with_query};
use crate::session::LoggedIn;
use crate::{Web, export};

/// Entries read per round trip while exporting.
const EXPORT_BATCH: i64 = 1000;

/// An entry as shown.
pub(crate) struct Row {
    pub(crate) seq: i64,
    pub(crate) at: String,
    pub(crate) event: String,
    pub(crate) sentence: String,
}

#[derive(Template)]
#[template(path = "dpo/audit.html")]
pub(crate) struct AuditPage {
    c: Chrome,
    rows: Vec<Row>,
    links: Links,
    logins: Vec<(String, String)>,
    events: Vec<(String, String)>,
    q: AuditQuery,
    error: Option<&'static str>,
    /// The export links for the chosen date range.
    csv: String,
    jsonl: String,
}

#[derive(Template)]
#[template(path = "dpo/verify.html")]
pub(crate) struct VerifyPage {
    c: Chrome,
    intact: bool,
    entries: i64,
    head: String,
    seq: i64,
    reason: String,
    /// Signed checkpoints of the installation that matched.
    anchors: usize,
}

/// `?user=&action=&from=YYYY-MM-DD&until=YYYY-MM-DD&before=|after=`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    before: Option<i64>,
    after: Option<i64>,
}

/// A date field: empty, or a valid `YYYY-MM-DD` (`Err` otherwise).
fn date(field: &str) -> Result<Option<NaiveDate>, ()> {
    let field = field.trim();
    if field.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(field, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| ())
}

/// The store's time range for local dates `from`..=`until` (whole days).
fn range(web: &Web, q: &AuditQuery) -> Result<(Option<i64>, Option<i64>), ()> {
    let from = date(&q.from)?
        .map(|d| web.time_zone.start_of_day(d).ok_or(()))
        .transpose()?;
    let until = date(&q.until)?
        .map(|d| {
            d.succ_opt()
                .and_then(|next| web.time_zone.start_of_day(next))
                .ok_or(())
        })
        .transpose()?;
    Ok((from, until))
}

/// `GET /dpo/audit`.
pub(crate) async fn list(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Query(mut q): Query<AuditQuery>,
) -> Result<Response, Response> {
    user.require(&[Role::Dpo])?;
    let c = user.chrome();
    let users = web.store.list_users().await.map_err(|e| store_failed(&e))?;
    let actions = web
        .store
        .audit_actions()
        .await
        .map_err(|e| store_failed(&e))?;
    // Only offered choices filter; bounded text (a login is at most 64 characters).
    q.user = q.user.trim().to_ascii_lowercase();
    q.user.truncate(64);
    if !actions.contains(&q.action) {
        q.action.clear();
    }
    let (status, error, (from, until)) = match range(&web, &q) {
        Ok(r) => (StatusCode::OK, None, r),
        Err(()) => {
            q.from.clear();
            q.until.clear();
            (
                StatusCode::BAD_REQUEST,
                Some(c.t("Bitte geben Sie die Daten im Format JJJJ-MM-TT an.")),
                (None, None),
            )
        }
    };
    let filter = AuditFilter {
        user: (!q.user.is_empty()).then(|| q.user.clone()),
        action: (!q.action.is_empty()).then(|| q.action.clone()),
        from,
        until,
    };
    let page = Cursor {
        before: q.before,
        after: q.after,
    }
    .page();
    let entries = web
        .store
        .search_audit(&filter, page, PAGE_SIZE + 1)
        .await
        .map_err(|e| store_failed(&e))?;
    let base = with_query(
        "/dpo/audit",
        &[
            ("user", &q.user),
            ("action", &q.action),
            ("from", &q.from),
            ("until", &q.until),
        ],
    );
    let (entries, links) = arrange(page, entries, |e| e.seq, &base);
    let dates = Dates::new(web.time_zone, web.language);
    let people = sentences::People::new(&users);
    let rows = entries
        .iter()
        .map(|e| Row {
            seq: e.seq,
            at: dates.millis(e.at),
            event: sentences::event_name(c.lang, &e.action),
            sentence: sentences::sentence(c.lang, &dates, &people, e),
        })
        .collect();
    let range_query = [("from", q.from.as_str()), ("until", q.until.as_str())];
    Ok(render(
        status,
        &AuditPage {
            rows,
            links,
            logins: users
                .iter()
                .map(|u| (u.login.clone(), u.name.clone()))
                .collect(),
            events: actions
                .iter()
                .map(|a| (a.clone(), sentences::event_name(c.lang, a)))
                .collect(),
            csv: with_query("/dpo/audit/export/csv", &range_query),
            jsonl: with_query("/dpo/audit/export/jsonl", &range_query),
            c,
            q,
            error,
        },
    ))
}

/// `GET /dpo/audit/verify`: checks the whole chain and shows the result.
pub(crate) async fn verify(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
) -> Result<Response, Response> {
    user.require(&[Role::Dpo])?;
    let actions = Arc::clone(&web.actions);
    let anchors = tokio::task::spawn_blocking(move || actions.audit_anchors())
        .await
        .unwrap_or_default();
    let check = web
        .store
        .verify_audit_anchored(&anchors)
        .await
        .map_err(|e| store_failed(&e))?;
    let c = user.chrome();
    let page = match check {
        AuditCheck::Intact {
            entries,
            head,
            anchors_matched,
            ..
        } => VerifyPage {
            c,
            intact: true,
            entries,
            head,
            seq: 0,
            reason: String::new(),
            anchors: anchors_matched,
        },
        AuditCheck::Broken { seq, reason } => VerifyPage {
            c,
            intact: false,
            entries: 0,
            head: String::new(),
            seq,
            reason,
            anchors: 0,
        },
    };
    Ok(render(StatusCode::OK, &page))
}

/// `GET /dpo/audit/export/{csv|jsonl}?from=&until=`: the entries of the date range in
/// chain order, as a download. The export itself is audited first (`audit.exported`).
pub(crate) async fn export(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Path(format): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, Response> {
    user.require(&[Role::Dpo])?;
    let (content_type, line): (&str, fn(&store::AuditEntry) -> String) = match format.as_str() {
        "csv" => ("text/csv; charset=utf-8", export::csv_line),
        "jsonl" => ("application/jsonl; charset=utf-8", export::json_line),
        _ => return Err(StatusCode::NOT_FOUND.into_response()),
    };
    let (from, until) = range(&web, &q).map_err(|()| StatusCode::BAD_REQUEST.into_response())?;
    web.store
        .append_audit(&store::NewAuditEntry {
            actor: user.session.login.clone(),
            action: "audit.exported".to_owned(),
            subjects: Vec::new(),
            details: serde_json::json!({"format": format, "from": q.from.trim(), "until": q.until.trim()}),
        })
        .await
        .map_err(|e| store_failed(&e))?;
    let filter = AuditFilter {
        from,
        until,
        ..AuditFilter::default()
    };
    let header_line = (format == "csv").then_some(export::CSV_HEADER);
    let store = web.store.clone();
    // State: (where to continue, whether the log is exhausted).
    let body = futures_util::stream::unfold((0_i64, false), move |(after, done)| {
        let (store, filter) = (store.clone(), filter.clone());
        async move {
            if done {
                return None;
            }
            match store
                .search_audit(&filter, Page::After(after), EXPORT_BATCH)
                .await
            {
                Ok(entries) => {
                    let last = entries.last().map_or(after, |e| e.seq);
                    let finished = entries.len() < usize::try_from(EXPORT_BATCH).unwrap_or(0);
                    let chunk: String = entries.iter().map(line).collect();
                    if chunk.is_empty() && finished {
                        return None;
                    }
                    Some((Ok::<_, std::io::Error>(chunk), (last, finished)))
                }
                Err(err) => {
                    // The download ends short; the log says why (the client sees a cut
                    // connection, not a complete-looking file).
                    tracing::error!(error = %err, "web: audit export failed");
                    Some((Err(std::io::Error::other("store failed")), (after, true)))
                }
            }
        }
    });
    let head = futures_util::stream::iter(header_line.map(|h| Ok(h.to_owned())));
    let name = format!(
        "ratspost-audit{}{}.{format}",
        if q.from.trim().is_empty() {
            String::new()
        } else {
            format!("-ab-{}", q.from.trim())
        },
        if q.until.trim().is_empty() {
            String::new()
        } else {
            format!("-bis-{}", q.until.trim())
        },
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(futures_util::StreamExt::chain(head, body)),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_or_empty() {
        assert_eq!(date(""), Ok(None));
        assert_eq!(
            date(" 2026-12-01 "),
            Ok(NaiveDate::from_ymd_opt(2026, 12, 1))
        );
        assert_eq!(date("01.12.2026"), Err(()));
        assert_eq!(date("2026-02-30"), Err(()));
    }
}
