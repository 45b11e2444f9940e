//! Dates and times, as people read them and as machines read them — the one place both
//! the web UI and the relay (notices, mails, the CLI) take them from.
//!
//! People read local time of a configured zone (`Europe/Berlin` by default), in German
//! ("30. Dezember 2026, 20:28 Uhr") or English ("30 December 2026, 20:28"): [`Dates`].
//! Machines get UTC: [`rfc3339`] for JSON and exports, [`rfc2822`] for mail headers.
//!
//! The zone rules come from chrono-tz, which compiles the IANA database into the binary, so
//! the result does not depend on `/usr/share/zoneinfo` being installed (or current) on the
//! server; chrono is already a dependency. During the hour that repeats when summer time ends
//! (25 October 2026, 02:00–02:59 in Berlin), a local time alone is ambiguous; the zone's
//! abbreviation is not shown, because the wanted format has none.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike as _, SecondsFormat, Timelike as _, Utc};
use chrono_tz::Tz;

/// A time zone of the IANA database (`Europe/Berlin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(Tz);

impl Zone {
    /// The default: `Europe/Berlin`.
    pub const BERLIN: Self = Self(Tz::Europe__Berlin);

    /// Its IANA name.
    #[must_use]
    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl Zone {
    /// The first instant of local day `date` (midnight, or the first time that exists
    /// when midnight falls in a summer-time gap), in epoch milliseconds; `None` outside
    /// chrono's range.
    #[must_use]
    pub fn start_of_day(self, date: chrono::NaiveDate) -> Option<i64> {
        use chrono::TimeZone as _;
        (0..3).find_map(|hour| {
            let local = date.and_hms_opt(hour, 0, 0)?;
            self.0
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.timestamp_millis())
        })
    }

    /// The local date at epoch milliseconds `millis`; `None` outside chrono's range.
    #[must_use]
    pub fn date_of(self, millis: i64) -> Option<chrono::NaiveDate> {
        DateTime::<Utc>::from_timestamp_millis(millis)
            .map(|t| t.with_timezone(&self.0).date_naive())
    }
}

impl Default for Zone {
    fn default() -> Self {
        Self::BERLIN
    }
}

impl FromStr for Zone {
    type Err = String;

    /// Parses an IANA name such as `Europe/Berlin` (exact spelling).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<Tz>().map(Self).map_err(|_| {
            format!("{s:?} is not a time zone of the IANA database (e.g. \"Europe/Berlin\")")
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The language a date is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// "30. Dezember 2026, 20:28 Uhr"
    #[default]
    German,
    /// "30 December 2026, 20:28"
    English,
}

const MONTHS_DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// How dates are shown to people: a zone and a language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dates {
    /// Local time of this zone.
    pub zone: Zone,
    /// Month names and the "Uhr".
    pub language: Language,
}

impl Dates {
    /// Dates in `zone`, written in `language`.
    #[must_use]
    pub fn new(zone: Zone, language: Language) -> Self {
        Self { zone, language }
    }

    /// Epoch milliseconds as local date and time to the minute ("30. Dezember 2026, 20:28
    /// Uhr"); a value outside chrono's range is shown as the bare number.
    #[must_use]
    pub fn millis(&self, millis: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(millis)
            .map_or_else(|| millis.to_string(), |t| self.at(t))
    }

    /// Epoch seconds (as mail-parser's `to_timestamp` gives them), like [`Self::millis`].
    #[must_use]
    pub fn seconds(&self, seconds: i64) -> String {
        DateTime::<Utc>::from_timestamp(seconds, 0)
            .map_or_else(|| seconds.to_string(), |t| self.at(t))
    }

    /// `millis`, or `none` when absent.
    #[must_use]
    pub fn or(&self, millis: Option<i64>, none: &str) -> String {
        millis.map_or_else(|| none.to_owned(), |m| self.millis(m))
    }

    fn at(&self, t: DateTime<Utc>) -> String {
        let local = t.with_timezone(&self.zone.0);
        let month = usize::try_from(local.month0()).unwrap_or(0) % 12;
        let (day, year, hour, minute) = (local.day(), local.year(), local.hour(), local.minute());
        match self.language {
            Language::German => format!(
                "{day}. {} {year}, {hour:02}:{minute:02} Uhr",
                MONTHS_DE[month]
            ),
            Language::English => {
                format!("{day} {} {year}, {hour:02}:{minute:02}", MONTHS_EN[month])
            }
        }
    }
}

/// Epoch milliseconds as RFC 3339 in UTC ("2026-12-30T19:28:01.985Z"): for JSON and exports.
#[must_use]
pub fn rfc3339(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis).map_or_else(
        || millis.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    )
}

/// Epoch milliseconds as RFC 5322 date-time in UTC ("Wed, 30 Dec 2026 19:28:01 +0000"): for
/// mail headers (`Date:`, `Received:`).
#[must_use]
pub fn rfc2822(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map_or_else(|| millis.to_string(), |t| t.to_rfc2822())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-30T19:28:01.985Z
    const DEC_30: i64 = 1_798_658_881_985;
    const MINUTE: i64 = 60_000;
    /// 2026-03-29T01:00:00Z: Berlin moves from 02:00 CET to 03:00 CEST.
    const SPRING: i64 = 1_774_746_000_000;
    /// 2026-10-25T01:00:00Z: Berlin moves from 03:00 CEST back to 02:00 CET.
    const AUTUMN: i64 = 1_792_890_000_000;

    fn german() -> Dates {
        Dates::default()
    }

    #[test]
    fn german_and_english_in_berlin_time() {
        assert_eq!(rfc3339(DEC_30), "2026-12-30T19:28:01.985Z");
        assert_eq!(german().millis(DEC_30), "30. Dezember 2026, 20:28 Uhr");
        let en = Dates::new(Zone::BERLIN, Language::English);
        assert_eq!(en.millis(DEC_30), "30 December 2026, 20:28");
        assert_eq!(
            german().seconds(DEC_30 / 1000),
            "30. Dezember 2026, 20:28 Uhr"
        );
        assert_eq!(german().or(None, "-"), "-");
    }

    #[test]
    fn summer_time_begins() {
        assert_eq!(rfc3339(SPRING), "2026-03-29T01:00:00Z");
        // 00:59 UTC is 01:59 CET; a minute later it is 03:00 CEST.
        assert_eq!(german().millis(SPRING - MINUTE), "29. März 2026, 01:59 Uhr");
        assert_eq!(german().millis(SPRING), "29. März 2026, 03:00 Uhr");
    }

    #[test]
    fn summer_time_ends() {
        assert_eq!(rfc3339(AUTUMN), "2026-10-25T01:00:00Z");
        // 00:59 UTC is 02:59 CEST; a minute later it is 02:00 CET.
        assert_eq!(
            german().millis(AUTUMN - MINUTE),
            "25. Oktober 2026, 02:59 Uhr"
        );
        assert_eq!(german().millis(AUTUMN), "25. Oktober 2026, 02:00 Uhr");
        assert_eq!(
            german().millis(AUTUMN + 60 * MINUTE),
            "25. Oktober 2026, 03:00 Uhr"
        );
    }

    #[test]
    fn other_zones_and_bad_names() {
        let utc: Zone = "UTC".parse().unwrap();
        assert_eq!(
            Dates::new(utc, Language::German).millis(DEC_30),
            "30. Dezember 2026, 19:28 Uhr"
        );
        let ny: Zone = "America/New_York".parse().unwrap();
        assert_eq!(
            Dates::new(ny, Language::English).millis(DEC_30),
            "30 December 2026, 14:28"
        );
        assert_eq!(ny.to_string(), "America/New_York");
        assert!("Europe/Bonn".parse::<Zone>().is_err());
        assert!("".parse::<Zone>().is_err());
    }

    #[test]
    fn mail_header_dates_stay_rfc_5322() {
        assert_eq!(rfc2822(DEC_30), "Wed, 30 Dec 2026 19:28:01 +0000");
    }

    #[test]
    fn local_days_start_at_local_midnight() {
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        // 30 December: CET, UTC+1.
        assert_eq!(
            Zone::BERLIN.start_of_day(day(2026, 12, 30)).map(rfc3339),
            Some("2026-12-29T23:00:00Z".to_owned())
        );
        // 29 March 2026, the day summer time begins: midnight is still CET.
        assert_eq!(
            Zone::BERLIN.start_of_day(day(2026, 3, 29)).map(rfc3339),
            Some("2026-03-28T23:00:00Z".to_owned())
        );
        // The day after: CEST, UTC+2.
        assert_eq!(
            Zone::BERLIN.start_of_day(day(2026, 3, 30)).map(rfc3339),
            Some("2026-03-29T22:00:00Z".to_owned())
        );
        assert_eq!(Zone::BERLIN.date_of(DEC_30), Some(day(2026, 12, 30)));
        // 23:30 UTC on 30 December is already the 31st in Berlin.
        assert_eq!(
            Zone::BERLIN.date_of(DEC_30 + 4 * 60 * MINUTE + 2 * MINUTE),
            Some(day(2026, 12, 31))
        );
    }

    #[test]
    fn first_day_of_month_has_no_leading_zero() {
        // 2026-01-01T08:05:00Z is 09:05 in Berlin.
        assert_eq!(
            german().millis(1_767_254_700_000),
            "1. Januar 2026, 09:05 Uhr"
        );
    }
}
