//! A conversation's lifecycle, kept as it goes: its status, who it is assigned to, and the times
//! a report needs, updated by each interaction (`observe`) and by agents (`resolve`, `reopen`,
//! `assign`). Pure. The same definitions as `conversation_times`: folding a conversation's
//! interactions in time order gives the same first response, reply times and waiting time (a
//! property test says so); deliveries out of order are taken as they come (see `observe`).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use throughline_model::{Channel, Interaction};

use crate::{is_agent_reply, is_customer_message};

throughline_model::wire_enum! {
    /// Where a conversation is: waiting on the company, on the customer, or done.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum ConversationStatus {
        /// The customer waits for an answer (or an agent reopened it): the queue of open work.
        #[default]
        Open = "open",
        /// An agent answered last: waiting on the customer.
        Pending = "pending",
        /// An agent resolved it.
        Resolved = "resolved",
    }
}

/// A conversation's lifecycle. Every field is optional in storage so that a record written
/// before lifecycles existed reads as an open conversation nobody has answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    #[serde(default)]
    pub status: ConversationStatus,
    /// The channel of the interaction that opened it: where it counts in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// The customer's first message in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_customer_at: Option<DateTime<Utc>>,
    /// The first agent reply that answered the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_at: Option<DateTime<Utc>>,
    /// The customer waits since then, on `waiting_channel`; none when nothing is owed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_channel: Option<Channel>,
    /// The latest agent reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reply_at: Option<DateTime<Utc>>,
    /// Agent replies.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replies: u32,
    /// Waits an agent reply ended, and their sum in seconds: the average reply time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub answers: u32,
    #[serde(default, skip_serializing_if = "is_zero_seconds")]
    pub waited_seconds: i64,
    /// When it was last resolved (kept after a reopen until it is resolved again, for the
    /// report of the day it was resolved on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Times a customer message (or an agent) reopened it after a resolution.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reopens: u32,
    /// The principal it is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_seconds(n: &i64) -> bool {
    *n == 0
}

/// What one interaction did to a lifecycle: what rollups and metrics count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// An agent reply ended a wait: how long, on the channel the customer wrote on, and whether
    /// it was the conversation's first response.
    pub answered: Option<Answer>,
    /// A customer message reopened a resolved conversation.
    pub reopened: bool,
    /// An agent reply (answering a wait or not).
    pub reply: bool,
    /// It is the conversation's first customer message or agent reply: the conversation opened.
    pub opened: bool,
    /// The channel the conversation opened on, after this interaction.
    pub conversation_channel: Option<Channel>,
}

impl Observation {
    /// Whether it changed none of what reports count (a redelivered interaction's).
    pub fn counts_nothing(&self) -> bool {
        self.answered.is_none() && !self.reopened && !self.reply && !self.opened
    }
}

/// One wait ended by an agent reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub channel: Channel,
    pub waited: TimeDelta,
    pub first: bool,
}

/// Why an agent's change does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleRefusal {
    /// Resolving a resolved conversation.
    AlreadyResolved,
    /// Reopening a conversation that is not resolved.
    NotResolved,
}

/// A resolution: what a report counts for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    pub at: DateTime<Utc>,
    /// From the conversation's opening to now; with a reopen, from the opening still.
    pub after: TimeDelta,
}

impl Lifecycle {
    /// Takes in one interaction of the conversation. In time order this is exactly
    /// `conversation_times`. Out of order: a customer message written before the latest agent
    /// reply, or before the resolution, was answered by it and changes nothing but the first
    /// message's time; an agent reply earlier than the wait it would end does not end it. So a
    /// redelivered interaction, taken in again, changes nothing.
    pub fn observe(&mut self, interaction: &Interaction) -> Observation {
        let at = interaction.occurred_at;
        let mut observed = Observation {
            opened: self.channel.is_none(),
            ..Observation::default()
        };
        if is_customer_message(interaction) {
            self.channel.get_or_insert(interaction.channel);
            self.first_customer_at = Some(self.first_customer_at.map_or(at, |first| first.min(at)));
            let answered = self.last_reply_at.is_some_and(|reply| at <= reply);
            match self.status {
                ConversationStatus::Resolved if self.resolved_at.is_none_or(|resolved| at > resolved) => {
                    self.status = ConversationStatus::Open;
                    self.reopens += 1;
                    self.wait_from(at, interaction.channel);
                    observed.reopened = true;
                }
                ConversationStatus::Resolved => {}
                _ if answered => {}
                _ => {
                    self.status = ConversationStatus::Open;
                    if self.waiting_since.is_none_or(|since| at < since) {
                        self.wait_from(at, interaction.channel);
                    }
                }
            }
        } else if is_agent_reply(interaction) {
            self.channel.get_or_insert(interaction.channel);
            observed.conversation_channel = self.channel;
            if self.last_reply_at.is_some_and(|last| at <= last) {
                // Taken in before (or earlier than the latest reply): counted then.
                return observed;
            }
            self.last_reply_at = Some(at);
            self.replies += 1;
            observed.reply = true;
            if let Some(since) = self.waiting_since.filter(|since| *since <= at) {
                let first = self.first_response_at.is_none();
                if first {
                    self.first_response_at = Some(at);
                }
                observed.answered = Some(Answer {
                    channel: self.waiting_channel.unwrap_or(interaction.channel),
                    waited: at - since,
                    first,
                });
                self.answers += 1;
                self.waited_seconds += (at - since).num_seconds();
                self.waiting_since = None;
                self.waiting_channel = None;
            }
            if self.status == ConversationStatus::Open && self.waiting_since.is_none() {
                self.status = ConversationStatus::Pending;
            }
        } else {
            // Neither the customer nor an agent writing: it opens nothing.
            observed.opened = false;
        }
        observed.conversation_channel = self.channel;
        observed
    }

    /// The mean of the waits agent replies ended; `None` before the first.
    pub fn average_reply(&self) -> Option<TimeDelta> {
        (self.answers > 0).then(|| TimeDelta::seconds(self.waited_seconds / i64::from(self.answers)))
    }

    fn wait_from(&mut self, at: DateTime<Utc>, channel: Channel) {
        self.waiting_since = Some(at);
        self.waiting_channel = Some(channel);
    }

    /// An agent resolves it at `at` (the conversation opened at `opened_at`): nothing is owed
    /// any more.
    pub fn resolve(&mut self, at: DateTime<Utc>, opened_at: DateTime<Utc>) -> Result<Resolution, LifecycleRefusal> {
        if self.status == ConversationStatus::Resolved {
            return Err(LifecycleRefusal::AlreadyResolved);
        }
        self.status = ConversationStatus::Resolved;
        self.resolved_at = Some(at);
        self.waiting_since = None;
        self.waiting_channel = None;
        Ok(Resolution {
            at,
            after: (at - opened_at).max(TimeDelta::zero()),
        })
    }

    /// An agent reopens it: open again, nobody waiting until the customer writes.
    pub fn reopen(&mut self) -> Result<(), LifecycleRefusal> {
        if self.status != ConversationStatus::Resolved {
            return Err(LifecycleRefusal::NotResolved);
        }
        self.status = ConversationStatus::Open;
        self.reopens += 1;
        Ok(())
    }

    /// Assigns it (`None`: to nobody).
    pub fn assign(&mut self, assignee: Option<String>) {
        self.assignee = assignee;
    }

    /// Two parts of one conversation joined (an agent's join): the earlier wait and first
    /// times, the latest reply, the counts added; open if either is, resolved only if both are.
    pub fn join(&mut self, other: &Lifecycle) {
        let min = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if other.waiting_since.is_some() && min(self.waiting_since, other.waiting_since) == other.waiting_since {
            self.waiting_since = other.waiting_since;
            self.waiting_channel = other.waiting_channel;
        }
        self.first_customer_at = min(self.first_customer_at, other.first_customer_at);
        self.first_response_at = min(self.first_response_at, other.first_response_at);
        self.last_reply_at = self.last_reply_at.max(other.last_reply_at);
        self.replies += other.replies;
        self.answers += other.answers;
        self.waited_seconds += other.waited_seconds;
        self.reopens += other.reopens;
        self.channel = self.channel.or(other.channel);
        self.assignee = self.assignee.take().or_else(|| other.assignee.clone());
        use ConversationStatus::*;
        self.status = match (self.status, other.status) {
            (Open, _) | (_, Open) => Open,
            (Pending, _) | (_, Pending) => Pending,
            (Resolved, Resolved) => Resolved,
        };
        if self.status != Resolved {
            self.resolved_at = None;
        } else {
            self.resolved_at = self.resolved_at.max(other.resolved_at);
        }
        if self.waiting_since.is_some() && self.status != Resolved {
            self.status = Open;
        }
    }
}
