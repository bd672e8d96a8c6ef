//! What tests, benches and the dev tools share, defined once: the test secrets the sample
//! events are signed with (`secrets`), the sample events themselves (`events`), and the day
//! they were recorded on (`sample_day_at`), so that a test's clock and an event's timestamps
//! agree; and the plain inbound SMS the store's and writer's tests and measurements record
//! (`inbound_sms`). Test values only, published on purpose: never a real account's secrets.

#![warn(missing_docs)]

pub mod events;
pub mod outbound;
pub mod secrets;

use chrono::{DateTime, TimeZone, Utc};

/// A time on the day the sample events were recorded (2026-11-24, UTC): the fixed "now" of the
/// unit tests that check timestamp windows against the events.
pub fn sample_day_at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, hour, minute, 0)
        .single()
        .unwrap_or_else(|| panic!("{hour}:{minute} is not a time of day"))
}

/// The sample business number the sample SMS events are sent to.
pub const SAMPLE_BUSINESS_NUMBER: &str = "+14155550199";

/// An inbound Twilio SMS from `from` (an E.164 number) to the sample business number, with
/// the provider message id `message_id`, sent and received at `at`; no text.
pub fn inbound_sms(from: &str, message_id: &str, at: DateTime<Utc>) -> throughline_model::Interaction {
    use throughline_model::{Channel, Direction, E164, Handle, NewInteraction, Provider, ProviderMessageId};
    let phone = |number: &str| Handle::Phone {
        number: E164::parse(number).unwrap_or_else(|e| panic!("{number} is not E.164: {e}")),
    };
    throughline_model::Interaction::new(NewInteraction {
        channel: Channel::Sms,
        provider: Provider::Twilio,
        direction: Direction::Inbound,
        business_endpoint: phone(SAMPLE_BUSINESS_NUMBER),
        customer: phone(from),
        provider_message_id: ProviderMessageId::parse(message_id)
            .unwrap_or_else(|e| panic!("{message_id} is not a provider message id: {e}")),
        occurred_at: at,
        received_at: at,
    })
}
