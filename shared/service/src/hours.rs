//! Business hours: a company's weekly schedule in its time zone, with holidays, and the part of
//! any span of time that falls within it. Pure. Daylight-saving changes are the time zone's: a
//! day's hours are wall-clock hours, so a 09:00–17:00 day is 8 hours before and after a change,
//! and a span across the change counts the hours that really passed.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

/// The schedule as configured (`BUSINESS_HOURS`, JSON):
/// `{"time_zone": "Europe/Paris", "weekly": {"mon": [["09:00", "17:00"]], …}, "holidays": ["2026-12-25"]}`.
/// Days missing from `weekly` are closed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDocument {
    pub time_zone: String,
    pub weekly: std::collections::BTreeMap<String, Vec<(String, String)>>,
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    zone: Tz,
    /// Per weekday (Monday first), the open intervals in wall-clock time, sorted, disjoint.
    weekly: [Vec<(NaiveTime, NaiveTime)>; 7],
    holidays: Vec<NaiveDate>,
    /// No schedule: every moment counts.
    around_the_clock: bool,
}

/// The setting's variable (the writer's and the API's): the schedule document, JSON.
pub const BUSINESS_HOURS_VAR: &str = "BUSINESS_HOURS";

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl BusinessHours {
    /// Parses the schedule document; the message names what is wrong (never a value of it but
    /// the day or the time zone's name, which are the company's settings).
    pub fn from_json(document: &str) -> Result<Self, String> {
        let document: ScheduleDocument = serde_json::from_str(document).map_err(|e| format!("business hours: {e}"))?;
        let zone: Tz = document
            .time_zone
            .parse()
            .map_err(|_| format!("business hours: unknown time zone {}", document.time_zone))?;
        let mut weekly: [Vec<(NaiveTime, NaiveTime)>; 7] = Default::default();
        for (day, intervals) in &document.weekly {
            let index = DAYS
                .iter()
                .position(|d| d == day)
                .ok_or_else(|| format!("business hours: {day} is not one of {}", DAYS.join(", ")))?;
            for (start, end) in intervals {
                let time = |t: &str| {
                    NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| format!("business hours: {day}: times are HH:MM"))
                };
                let (start, end) = (time(start)?, time(end)?);
                if end <= start {
                    return Err(format!("business hours: {day}: an interval ends after it starts"));
                }
                weekly[index].push((start, end));
            }
            weekly[index].sort();
            if weekly[index].windows(2).any(|w| w[1].0 < w[0].1) {
                return Err(format!("business hours: {day}: intervals overlap"));
            }
        }
        Ok(Self {
            zone,
            weekly,
            holidays: document.holidays,
            around_the_clock: false,
        })
    }

    /// The schedule of a setting: the document when there is one, else around the clock.
    pub fn from_setting(document: Option<&str>) -> Result<Self, String> {
        document.map_or_else(|| Ok(Self::always()), Self::from_json)
    }

    /// The schedule of the writer's and the API's `BUSINESS_HOURS` (unset or empty: around the
    /// clock).
    pub fn from_env() -> Result<Self, String> {
        let setting = std::env::var(BUSINESS_HOURS_VAR).ok().filter(|v| !v.trim().is_empty());
        Self::from_setting(setting.as_deref())
    }

    /// Open around the clock, every day (what a company without a schedule gets: business time
    /// is then wall time).
    pub fn always() -> Self {
        Self {
            zone: Tz::UTC,
            weekly: Default::default(),
            holidays: Vec::new(),
            around_the_clock: true,
        }
    }

    /// The part of `from`..`to` within business hours (zero when `to` is not after `from`).
    pub fn within(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        if to <= from {
            return TimeDelta::zero();
        }
        if self.around_the_clock {
            return to - from;
        }
        let mut total = TimeDelta::zero();
        let first = from.with_timezone(&self.zone).date_naive();
        let last = to.with_timezone(&self.zone).date_naive();
        let mut day = first;
        while day <= last {
            if !self.holidays.contains(&day) {
                for (start, end) in &self.weekly[day.weekday().num_days_from_monday() as usize] {
                    let (Some(open), Some(close)) = (self.instant(day, *start), self.instant(day, *end)) else {
                        continue;
                    };
                    let (a, b) = (open.max(from), close.min(to));
                    if b > a {
                        total += b - a;
                    }
                }
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        total
    }

    /// A wall-clock time of a day as an instant: in a gap (spring forward) the first instant
    /// after it, in an overlap (fall back) the earlier one.
    fn instant(&self, day: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        let local = day.and_time(time);
        match self.zone.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            chrono::LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
            chrono::LocalResult::None => (1..=180).find_map(|minutes| {
                self.zone
                    .from_local_datetime(&(local + TimeDelta::minutes(minutes)))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> BusinessHours {
        BusinessHours::from_json(
            r#"{"time_zone": "Europe/Paris",
                "weekly": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "tue": [["09:00", "17:00"]],
                           "wed": [["09:00", "17:00"]], "thu": [["09:00", "17:00"]], "fri": [["09:00", "17:00"]]},
                "holidays": ["2026-12-25"]}"#,
        )
        .unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn a_wait_across_a_weekend_counts_only_the_open_hours() {
        // Friday 16:00 Paris (15:00 UTC) to Monday 10:00 Paris: one hour on Friday, one on Monday.
        let waited = paris().within(at("2026-11-27T15:00:00Z"), at("2026-11-30T09:00:00Z"));
        assert_eq!(waited, TimeDelta::hours(2));
        // Over Monday's lunch break: 11:30 to 13:30 is one hour.
        let lunch = paris().within(at("2026-11-30T10:30:00Z"), at("2026-11-30T12:30:00Z"));
        assert_eq!(lunch, TimeDelta::hours(1));
    }

    #[test]
    fn holidays_are_closed_and_nothing_is_negative() {
        let christmas = paris().within(at("2026-12-25T08:00:00Z"), at("2026-12-25T16:00:00Z"));
        assert_eq!(christmas, TimeDelta::zero());
        assert_eq!(
            paris().within(at("2026-11-30T12:00:00Z"), at("2026-11-30T10:00:00Z")),
            TimeDelta::zero()
        );
    }

    #[test]
    fn a_daylight_saving_change_keeps_the_wall_clock_hours() {
        // Paris leaves summer time on Sunday 2026-10-25: Friday 09:00 is 07:00 UTC, Monday
        // 09:00 is 08:00 UTC. Friday 16:00 (14:00 UTC) to Monday 10:00 (09:00 UTC): 2 hours.
        let waited = paris().within(at("2026-10-23T14:00:00Z"), at("2026-10-26T09:00:00Z"));
        assert_eq!(waited, TimeDelta::hours(2));
        // In New York, spring forward on Sunday 2026-03-08 at 02:00: a schedule open 01:00–04:00
        // that Sunday is open two hours of real time.
        let nights =
            BusinessHours::from_json(r#"{"time_zone": "America/New_York", "weekly": {"sun": [["01:00", "04:00"]]}}"#)
                .unwrap();
        let sunday = nights.within(at("2026-03-08T00:00:00Z"), at("2026-03-09T00:00:00Z"));
        assert_eq!(sunday, TimeDelta::hours(2));
    }

    #[test]
    fn always_open_is_wall_time_and_bad_schedules_are_refused() {
        let (from, to) = (at("2026-11-27T15:00:00Z"), at("2026-11-30T09:00:00Z"));
        assert_eq!(BusinessHours::always().within(from, to), to - from);
        for (bad, why) in [
            (r#"{"time_zone": "Mars/Olympus", "weekly": {}}"#, "unknown time zone"),
            (r#"{"time_zone": "UTC", "weekly": {"monday": []}}"#, "is not one of"),
            (
                r#"{"time_zone": "UTC", "weekly": {"mon": [["17:00", "09:00"]]}}"#,
                "ends after",
            ),
            (
                r#"{"time_zone": "UTC", "weekly": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}"#,
                "overlap",
            ),
            (r#"{"time_zone": "UTC", "weekly": {"mon": [["9h", "17:00"]]}}"#, "HH:MM"),
        ] {
            let error = BusinessHours::from_json(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
