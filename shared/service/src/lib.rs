//! Service metrics of one conversation, computed in one place and pure: what a reply is, how
//! long the customer waited for it, and the first response. Reports and rollups (issue 17) read
//! these numbers; nothing else computes them.
//!
//! Definitions:
//! - A **customer message** is an inbound message or public post. Automated mail (auto-replies,
//!   bounces, lists) and quarantined mail are not the customer writing.
//! - An **agent reply** is an outbound message or public post: a reply through the API (it has
//!   an author) or the company's own answer in a provider's app (an echo). Automated messages,
//!   surveys (attribute `survey`) and replies the provider reported failed or undelivered (the
//!   customer never got them) are not.
//! - The customer **waits** from the first of their messages that no agent reply has answered
//!   yet, until the next agent reply: that is one **reply time**, counted on the channel the
//!   customer wrote on. The **first response time** is the first reply time of the
//!   conversation. Every agent reply counts in **replies**, answering a wait or not.

use chrono::{DateTime, TimeDelta, Utc};
use throughline_model::{Channel, Direction, Interaction, InteractionKind};

pub mod hours;
mod lifecycle;
pub mod rollup;

pub use lifecycle::{Answer, ConversationStatus, Lifecycle, LifecycleRefusal, Observation, Resolution};

/// The times of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationTimes {
    /// From the customer's first message to the first agent reply; `None` until there is one.
    pub first_response: Option<TimeDelta>,
    /// Agent replies.
    pub replies: u32,
    /// Each wait the customer had, on the channel they wrote on, in the order they happened.
    pub reply_times: Vec<(Channel, TimeDelta)>,
    /// The customer is waiting since then (no agent reply after their latest messages).
    pub waiting_since: Option<DateTime<Utc>>,
}

impl ConversationTimes {
    /// The mean of the reply times; `None` without any.
    pub fn average_reply(&self) -> Option<TimeDelta> {
        let n = i32::try_from(self.reply_times.len()).ok().filter(|n| *n > 0)?;
        let total: TimeDelta = self.reply_times.iter().map(|(_, t)| *t).sum();
        Some(total / n)
    }
}

fn conversational(kind: InteractionKind) -> bool {
    matches!(kind, InteractionKind::Message | InteractionKind::PublicPost)
}

/// Whether `interaction` is the customer writing.
pub fn is_customer_message(interaction: &Interaction) -> bool {
    interaction.direction == Direction::Inbound && conversational(interaction.kind)
}

/// Whether `interaction` is an agent's reply that reached (or may have reached) the customer.
pub fn is_agent_reply(interaction: &Interaction) -> bool {
    interaction.direction == Direction::Outbound
        && conversational(interaction.kind)
        && !interaction.attributes.contains_key("survey")
        && !interaction.delivery.as_ref().is_some_and(|d| d.status.is_failure())
}

/// The times of a conversation's interactions, in any order (they are put in time order, ties
/// by id, so the same interactions always give the same times).
pub fn conversation_times(interactions: &[Interaction]) -> ConversationTimes {
    let mut ordered: Vec<&Interaction> = interactions.iter().collect();
    ordered.sort_by(|a, b| (a.occurred_at, a.id.as_str()).cmp(&(b.occurred_at, b.id.as_str())));
    let mut times = ConversationTimes::default();
    let mut waiting: Option<(DateTime<Utc>, Channel)> = None;
    for interaction in ordered {
        if is_customer_message(interaction) {
            waiting.get_or_insert((interaction.occurred_at, interaction.channel));
        } else if is_agent_reply(interaction) {
            times.replies += 1;
            if let Some((since, channel)) = waiting.take() {
                let waited = (interaction.occurred_at - since).max(TimeDelta::zero());
                times.first_response.get_or_insert(waited);
                times.reply_times.push((channel, waited));
            }
        }
    }
    times.waiting_since = waiting.map(|(since, _)| since);
    times
}

#[cfg(test)]
mod tests;
