//! `/dpo/figures`: forwards, notices, link views and refused views per ISO week (role dpo),
//! for the last `weeks` weeks (default 12, at most 52; weeks begin Monday 00:00 local time),
//! as a small server-rendered SVG bar chart and a table with the same numbers — the table
//! is the accessible equivalent of the chart. Counted from the audit trail in the store
//! (`Store::count_audit`, one indexed range query per week).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Datelike as _, Days};
use serde::Deserialize;
use store::{AuditCounts, Role};

use crate::Web;
use crate::pages::{Chrome, render, store_failed};
use crate::session::LoggedIn;

/// Weeks shown unless asked otherwise.
const DEFAULT_WEEKS: u32 = 12;
/// Most weeks one page shows (a year).
const MAX_WEEKS: u32 = 52;

/// The chart's drawing area, in SVG user units.
const WIDTH: u32 = 640;
const HEIGHT: u32 = 220;
const LEFT: u32 = 40;
const BOTTOM: u32 = 40;

/// One week's numbers.
pub(crate) struct Week {
    /// "KW 49/2026".
    pub(crate) label: String,
    pub(crate) counts: AuditCounts,
}

/// One bar of the chart.
pub(crate) struct Bar {
    pub(crate) x: u32,
    pub(crate) y: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) colour: &'static str,
}

/// A label under a group of bars.
pub(crate) struct Tick {
    pub(crate) x: u32,
    pub(crate) text: String,
}

/// The four series: name and colour (each at least 3:1 against white, WCAG 1.4.11).
const SERIES: [(&str, &str); 4] = [
    ("Weiterleitungen", "#0b4f9c"),
    ("Hinweise", "#b35900"),
    ("Geöffnete Links", "#1e6b1e"),
    ("Abgewiesene Aufrufe", "#a00000"),
];

#[derive(Template)]
#[template(path = "dpo/figures.html")]
pub(crate) struct FiguresPage {
    c: Chrome,
    weeks: Vec<Week>,
    count: u32,
    bars: Vec<Bar>,
    ticks: Vec<Tick>,
    legend: Vec<(u32, &'static str, &'static str)>,
    max: i64,
    description: String,
    width: u32,
    height: u32,
    left: u32,
    axis_y: u32,
}

/// `?weeks=N`.
#[derive(Deserialize)]
pub(crate) struct FiguresQuery {
    weeks: Option<u32>,
}

/// The bars and tick labels for `weeks`, scaled to `max`.
fn chart(weeks: &[Week], max: i64) -> (Vec<Bar>, Vec<Tick>) {
    let n = u32::try_from(weeks.len()).unwrap_or(1).max(1);
    let group = (WIDTH - LEFT) / n;
    let bar = (group / 5).max(1);
    let plot = HEIGHT - BOTTOM;
    let mut bars = Vec::new();
    let mut ticks = Vec::new();
    for (i, week) in (0..n).zip(weeks) {
        let x0 = LEFT + i * group + bar / 2;
        let c = &week.counts;
        for (j, (value, (_, colour))) in (0..4).zip(
            [c.forwards, c.notices, c.views, c.refused]
                .into_iter()
                .zip(SERIES),
        ) {
            let height = u32::try_from(value.max(0) * i64::from(plot) / max.max(1)).unwrap_or(plot);
            bars.push(Bar {
                x: x0 + j * bar,
                y: plot - height,
                width: bar,
                height,
                colour,
            });
        }
        ticks.push(Tick {
            x: x0 + 2 * bar,
            text: week.label.clone(),
        });
    }
    (bars, ticks)
}

/// `GET /dpo/figures`.
pub(crate) async fn show(
    State(web): State<Arc<Web>>,
    user: LoggedIn,
    Query(q): Query<FiguresQuery>,
) -> Result<Response, Response> {
    user.require(&[Role::Dpo])?;
    let c = user.chrome();
    let count = q.weeks.unwrap_or(DEFAULT_WEEKS).clamp(1, MAX_WEEKS);
    let zone = web.time_zone;
    let today = zone.date_of(store::now_millis()).unwrap_or_default();
    let monday = today
        .checked_sub_days(Days::new(u64::from(today.weekday().num_days_from_monday())))
        .unwrap_or(today);
    let mut weeks = Vec::new();
    for back in (0..count).rev() {
        let Some(start) = monday.checked_sub_days(Days::new(7 * u64::from(back))) else {
            continue;
        };
        let end = start.checked_add_days(Days::new(7)).unwrap_or(start);
        let (Some(from), Some(until)) = (zone.start_of_day(start), zone.start_of_day(end)) else {
            continue;
        };
        let counts = web
            .store
            .count_audit(from, until)
            .await
            .map_err(|e| store_failed(&e))?;
        let iso = start.iso_week();
        weeks.push(Week {
            label: format!("{} {}/{}", c.t("KW"), iso.week(), iso.year()),
            counts,
        });
    }
    let max = weeks
        .iter()
        .flat_map(|w| {
            [
                w.counts.forwards,
                w.counts.notices,
                w.counts.views,
                w.counts.refused,
            ]
        })
        .max()
        .unwrap_or(0);
    let (bars, ticks) = chart(&weeks, max);
    let total = |f: fn(&AuditCounts) -> i64| weeks.iter().map(|w| f(&w.counts)).sum::<i64>();
    let description = format!(
        "{} {count} {}: {} {}, {} {}, {} {}, {} {}. {}",
        c.t("Summe der letzten"),
        c.t("Wochen"),
        total(|c| c.forwards),
        c.t("Weiterleitungen"),
        total(|c| c.notices),
        c.t("Hinweise"),
        total(|c| c.views),
        c.t("Geöffnete Links"),
        total(|c| c.refused),
        c.t("Abgewiesene Aufrufe"),
        c.t("Die Zahlen je Woche stehen in der Tabelle unter dem Diagramm."),
    );
    let legend = SERIES
        .iter()
        .zip(0..)
        .map(|((name, colour), i)| (LEFT + i * 150, *colour, c.t(name)))
        .collect();
    Ok(render(
        StatusCode::OK,
        &FiguresPage {
            c,
            weeks,
            count,
            bars,
            ticks,
            legend,
            max,
            description,
            width: WIDTH,
            height: HEIGHT + 30,
            left: LEFT,
            axis_y: HEIGHT - BOTTOM,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_number() {
        let week = |f, n, v, r| Week {
            label: "KW 1/2027".into(),
            counts: AuditCounts {
                forwards: f,
                notices: n,
                views: v,
                refused: r,
            },
        };
        let (bars, ticks) = chart(&[week(10, 5, 0, 1), week(0, 0, 0, 0)], 10);
        assert_eq!(bars.len(), 8);
        assert_eq!(ticks.len(), 2);
        let plot = HEIGHT - BOTTOM;
        assert_eq!((bars[0].height, bars[0].y), (plot, 0));
        assert_eq!(bars[1].height, plot / 2);
        assert_eq!(bars[2].height, 0);
        assert!(
            bars.iter()
                .all(|b| b.x + b.width <= WIDTH && b.y + b.height <= plot)
        );
        // Nothing counted: no bar, no division by zero.
        let (bars, _) = chart(&[week(0, 0, 0, 0)], 0);
        assert!(bars.iter().all(|b| b.height == 0));
    }
}
