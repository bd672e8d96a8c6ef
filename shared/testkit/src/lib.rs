//! What tests, benches and the dev tools share, defined once: the test secrets the sample
//! events are signed with (`secrets`), the sample events themselves (`events`), and the day
//! they were recorded on (`sample_day_at`), so that a test's clock and an event's timestamps
//! agree. Test values only, published on purpose: never a real account's secrets.

#![warn(missing_docs)]

pub mod events;
pub mod secrets;

use chrono::{DateTime, TimeZone, Utc};

/// A time on the day the sample events were recorded (2026-11-24, UTC): the fixed "now" of the
/// unit tests that check timestamp windows against the events.
pub fn sample_day_at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, hour, minute, 0)
        .single()
        .unwrap_or_else(|| panic!("{hour}:{minute} is not a time of day"))
}
