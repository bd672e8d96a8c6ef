//! Calculated attributes: what the store keeps current about a customer (a group) at write
//! time, on the commit each interaction makes on the group's root anyway — no batch job. Pure:
//! `observed` folds one interaction in, `attributes` names the values segments read.
//!
//! Names (segments read them beside the company's own; a calculated one wins a clash):
//! `last_seen` (date of the latest customer message or answer), `last_channel`,
//! `interactions_30d` (customer messages in the 30 days before), `most_frequent_channel_30d`,
//! `conversations_30d` (conversations a customer message opened in them), `ratings`,
//! `average_rating`, `last_rating`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use throughline_model::{Channel, Direction, Interaction, InteractionKind};

use crate::{Attributes, Value};

/// The window of the `_30d` attributes.
pub const WINDOW_DAYS: i64 = 30;

/// A group's calculated attributes as stored (on its root's profile).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calculated {
    /// Customer messages per UTC day and channel, the last `WINDOW_DAYS` days of them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub days: BTreeMap<NaiveDate, BTreeMap<Channel, u32>>,
    /// Conversations a customer message opened, per UTC day, the last `WINDOW_DAYS` days.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conversation_days: BTreeMap<NaiveDate, u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_channel: Option<Channel>,
    /// The sum and number of the latest ratings, one per survey (a changed rating replaces).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rating_sum: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ratings: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rating: Option<u8>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Calculated {
    /// The attributes after `interaction` (recorded as it is: a survey's answer already of kind
    /// `feedback`; `opened`: it opened its conversation), or `None` when it changes none (the
    /// company's own messages, automated mail, status updates).
    pub fn observed(&self, interaction: &Interaction, opened: bool) -> Option<Self> {
        if interaction.direction != Direction::Inbound {
            return None;
        }
        let mut next = self.clone();
        match interaction.kind {
            InteractionKind::Message | InteractionKind::PublicPost => {
                let day = interaction.occurred_at.date_naive();
                *next
                    .days
                    .entry(day)
                    .or_default()
                    .entry(interaction.channel)
                    .or_default() += 1;
                if opened {
                    *next.conversation_days.entry(day).or_default() += 1;
                }
                let oldest = day - TimeDelta::days(WINDOW_DAYS);
                next.days.retain(|d, _| *d > oldest);
                next.conversation_days.retain(|d, _| *d > oldest);
            }
            InteractionKind::Feedback => {
                let feedback = interaction.feedback.as_ref()?;
                let rating = feedback.rating?;
                match feedback.replaces {
                    Some(replaced) => {
                        next.rating_sum = next.rating_sum.saturating_sub(u32::from(replaced)) + u32::from(rating);
                    }
                    None => {
                        next.rating_sum += u32::from(rating);
                        next.ratings += 1;
                    }
                }
                next.last_rating = Some(rating);
            }
            InteractionKind::Automated | InteractionKind::Quarantined => return None,
        }
        // An interaction delivered late does not move "last seen" back.
        if next.last_seen_at.is_none_or(|seen| interaction.occurred_at >= seen) {
            next.last_seen_at = Some(interaction.occurred_at);
            next.last_channel = Some(interaction.channel);
        }
        Some(next)
    }

    /// The attributes segments read, as of `now`.
    pub fn attributes(&self, now: DateTime<Utc>) -> Attributes {
        let mut attributes = Attributes::new();
        let since = now.date_naive() - TimeDelta::days(WINDOW_DAYS);
        let mut per_channel: BTreeMap<Channel, u32> = BTreeMap::new();
        for (_, channels) in self.days.range(since..) {
            for (channel, count) in channels {
                *per_channel.entry(*channel).or_default() += count;
            }
        }
        let total: u32 = per_channel.values().sum();
        let conversations: u32 = self.conversation_days.range(since..).map(|(_, n)| n).sum();
        attributes.insert("conversations_30d".into(), Value::Number(f64::from(conversations)));
        attributes.insert("interactions_30d".into(), Value::Number(f64::from(total)));
        // The most messages; a tie goes to the channel named first.
        if let Some((channel, _)) = per_channel
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        {
            attributes.insert("most_frequent_channel_30d".into(), Value::Text(channel.as_str().into()));
        }
        if let Some(seen) = self.last_seen_at {
            attributes.insert("last_seen".into(), Value::Date(seen.date_naive()));
        }
        if let Some(channel) = self.last_channel {
            attributes.insert("last_channel".into(), Value::Text(channel.as_str().into()));
        }
        attributes.insert("ratings".into(), Value::Number(f64::from(self.ratings)));
        if self.ratings > 0 {
            attributes.insert(
                "average_rating".into(),
                Value::Number(f64::from(self.rating_sum) / f64::from(self.ratings)),
            );
        }
        if let Some(rating) = self.last_rating {
            attributes.insert("last_rating".into(), Value::Number(f64::from(rating)));
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use throughline_model::{E164, Feedback, Handle, NewInteraction, Provider, ProviderMessageId};

    use super::*;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        use chrono::TimeZone;
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    fn message(channel: Channel, id: &str, when: DateTime<Utc>) -> Interaction {
        let phone = |n: &str| Handle::Phone {
            number: E164::parse(n).unwrap(),
        };
        Interaction::new(NewInteraction {
            channel,
            provider: Provider::Twilio,
            direction: Direction::Inbound,
            customer: phone("+14155550100"),
            business_endpoint: phone("+14155550199"),
            provider_message_id: ProviderMessageId::parse(id).unwrap(),
            occurred_at: when,
            received_at: when,
        })
    }

    fn rating(value: u8, replaces: Option<u8>, when: DateTime<Utc>) -> Interaction {
        let mut answer = message(Channel::Sms, &format!("SMr{value}{}", when.timestamp()), when);
        answer.kind = InteractionKind::Feedback;
        answer.feedback = Some(Feedback {
            survey_id: "sv_01".into(),
            rating: Some(value),
            remark: None,
            replaces,
            assignee: None,
        });
        answer
    }

    fn fold(interactions: &[Interaction]) -> Calculated {
        interactions.iter().fold(Calculated::default(), |calc, i| {
            // Each message on a new day opens a conversation, for the test.
            let opened = !calc.days.contains_key(&i.occurred_at.date_naive());
            calc.observed(i, opened).unwrap_or(calc)
        })
    }

    #[test]
    fn messages_count_per_channel_over_thirty_days_and_the_latest_is_last_seen() {
        let calc = fold(&[
            message(Channel::Sms, "SM1", at(1, 9)),
            message(Channel::Whatsapp, "SM2", at(20, 9)),
            message(Channel::Whatsapp, "SM3", at(21, 9)),
            message(Channel::Sms, "SM4", at(22, 9)),
            // Delivered late: counted, but not "last seen".
            message(Channel::Email, "SM5", at(10, 9)),
        ]);
        let attributes = calc.attributes(at(23, 12));
        assert_eq!(attributes["interactions_30d"], Value::Number(5.0));
        assert_eq!(attributes["conversations_30d"], Value::Number(5.0));
        assert_eq!(
            attributes["most_frequent_channel_30d"],
            Value::Text("sms".into()),
            "a tie: named first"
        );
        assert_eq!(attributes["last_channel"], Value::Text("sms".into()));
        assert_eq!(attributes["last_seen"], Value::Date(at(22, 9).date_naive()));
        // Three weeks on, the first week has left the window.
        let later = calc.attributes(at(30, 12) + TimeDelta::days(2));
        assert_eq!(later["interactions_30d"], Value::Number(4.0));
        assert_eq!(later["conversations_30d"], Value::Number(4.0));
        assert_eq!(later["most_frequent_channel_30d"], Value::Text("whatsapp".into()));
        assert!(!later.contains_key("average_rating"));
    }

    #[test]
    fn the_latest_rating_per_survey_counts_and_the_company_s_messages_change_nothing() {
        let calc = fold(&[
            rating(5, None, at(2, 9)),
            rating(2, Some(5), at(2, 10)),
            rating(4, None, at(3, 9)),
        ]);
        let attributes = calc.attributes(at(4, 9));
        assert_eq!(attributes["ratings"], Value::Number(2.0));
        assert_eq!(attributes["average_rating"], Value::Number(3.0));
        assert_eq!(attributes["last_rating"], Value::Number(4.0));
        let mut reply = message(Channel::Sms, "SMout", at(4, 9));
        reply.direction = Direction::Outbound;
        assert_eq!(
            calc.observed(&reply, true),
            None,
            "an agent's message opens none of hers"
        );
        let mut automated = message(Channel::Email, "auto", at(4, 9));
        automated.kind = InteractionKind::Automated;
        assert_eq!(calc.observed(&automated, true), None);
        // Stored as JSON and read back.
        let stored = serde_json::to_string(&calc).unwrap();
        assert_eq!(serde_json::from_str::<Calculated>(&stored).unwrap(), calc);
    }
}
