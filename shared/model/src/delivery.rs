//! Where an outbound message is in its sending: the record on its timeline entry, and the pure
//! rule for what each send outcome makes of it. Delivery statuses from providers (issue 16)
//! extend the same record.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::ProviderMessageId;

wire_enum! {
    /// The state of an outbound message.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum DeliveryStatus {
        /// On the timeline and on the outbound queue: not yet handed to the provider.
        Queued = "queued",
        /// The provider took it and gave it an id.
        Sent = "sent",
        /// The provider refused it for good (`error` says why); an agent may retry.
        Failed = "failed",
        /// The request may have reached the provider but no answer came: it may have been sent.
        /// Never sent again by itself; an agent may retry, knowing the customer may get it twice.
        Unknown = "unknown",
    }
}

impl DeliveryStatus {
    /// Whether an agent may ask for another attempt.
    pub fn retryable(self) -> bool {
        matches!(self, DeliveryStatus::Failed | DeliveryStatus::Unknown)
    }
}

/// Why an attempt did not end in `sent`, as the agent reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryError {
    /// The provider's code (`21610`, `131047`, `telegram:403`), or ours when no provider answered
    /// (`timeout`, `network`).
    pub code: String,
    /// What happened, in words an agent understands.
    pub reason: String,
}

/// One change of a message's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryChange {
    /// The status it went to.
    pub status: DeliveryStatus,
    /// The attempt it belongs to.
    pub attempt: u32,
    /// When.
    pub at: DateTime<Utc>,
}

/// An outbound message's sending, on its timeline entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Delivery {
    /// Where it is now.
    pub status: DeliveryStatus,
    /// The current attempt: 1, then one more for each retry an agent asked for.
    pub attempt: u32,
    /// When the status last changed.
    pub updated_at: DateTime<Utc>,
    /// The provider's id for the message, once it was sent (its echo and status events carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<ProviderMessageId>,
    /// Why the current attempt failed or is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeliveryError>,
    /// Every change, oldest first.
    #[serde(default)]
    pub history: Vec<DeliveryChange>,
}

/// What one attempt came to, as the sender reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Taken by the provider, with its id.
    Sent(ProviderMessageId),
    /// Refused for good.
    Failed(DeliveryError),
    /// May have been sent.
    Unknown(DeliveryError),
}

impl Delivery {
    /// A message just put on the queue for `attempt`.
    pub fn queued(attempt: u32, at: DateTime<Utc>) -> Self {
        Self {
            status: DeliveryStatus::Queued,
            attempt,
            updated_at: at,
            provider_message_id: None,
            error: None,
            history: vec![DeliveryChange {
                status: DeliveryStatus::Queued,
                attempt,
                at,
            }],
        }
    }

    /// The record after `attempt` came to `outcome`, or `None` when it changes nothing: the
    /// outcome of an attempt that is not the current one, or of one already settled (a
    /// redelivered report).
    pub fn settled(&self, attempt: u32, outcome: &AttemptOutcome, at: DateTime<Utc>) -> Option<Self> {
        if attempt != self.attempt || self.status != DeliveryStatus::Queued {
            return None;
        }
        let mut next = self.clone();
        let (status, id, error) = match outcome {
            AttemptOutcome::Sent(id) => (DeliveryStatus::Sent, Some(id.clone()), None),
            AttemptOutcome::Failed(error) => (DeliveryStatus::Failed, None, Some(error.clone())),
            AttemptOutcome::Unknown(error) => (DeliveryStatus::Unknown, None, Some(error.clone())),
        };
        next.status = status;
        next.updated_at = at;
        next.provider_message_id = id;
        next.error = error;
        next.history.push(DeliveryChange { status, attempt, at });
        Some(next)
    }

    /// The record when an agent asks for another attempt, or `None` if the current one may not
    /// be retried (queued or sent).
    pub fn retried(&self, at: DateTime<Utc>) -> Option<Self> {
        if !self.status.retryable() {
            return None;
        }
        let mut next = self.clone();
        next.attempt += 1;
        next.status = DeliveryStatus::Queued;
        next.updated_at = at;
        next.error = None;
        next.history.push(DeliveryChange {
            status: DeliveryStatus::Queued,
            attempt: next.attempt,
            at,
        });
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 20, 10, minute, 0).unwrap()
    }

    fn failure() -> DeliveryError {
        DeliveryError {
            code: "21610".into(),
            reason: "the recipient unsubscribed".into(),
        }
    }

    #[test]
    fn an_attempt_settles_once_and_only_the_current_one() {
        let queued = Delivery::queued(1, at(0));
        let id = ProviderMessageId::parse("SM1").unwrap();
        let sent = queued.settled(1, &AttemptOutcome::Sent(id.clone()), at(1)).unwrap();
        assert_eq!(sent.status, DeliveryStatus::Sent);
        assert_eq!(sent.provider_message_id, Some(id.clone()));
        assert_eq!(sent.history.len(), 2);
        // A redelivered report, or another outcome of a settled attempt, changes nothing.
        assert_eq!(sent.settled(1, &AttemptOutcome::Failed(failure()), at(2)), None);
        // An outcome of another attempt neither.
        assert_eq!(queued.settled(2, &AttemptOutcome::Sent(id), at(1)), None);
    }

    #[test]
    fn only_failed_or_unknown_attempts_are_retried_and_a_retry_is_a_new_attempt() {
        let queued = Delivery::queued(1, at(0));
        assert_eq!(queued.retried(at(1)), None);
        let failed = queued.settled(1, &AttemptOutcome::Failed(failure()), at(1)).unwrap();
        assert_eq!(failed.error, Some(failure()));
        let retried = failed.retried(at(2)).unwrap();
        assert_eq!(
            (retried.status, retried.attempt, retried.error.clone()),
            (DeliveryStatus::Queued, 2, None)
        );
        // The first attempt's late outcome does not touch the second.
        let id = ProviderMessageId::parse("SM1").unwrap();
        assert_eq!(retried.settled(1, &AttemptOutcome::Sent(id.clone()), at(3)), None);
        let unknown = retried.settled(2, &AttemptOutcome::Unknown(failure()), at(3)).unwrap();
        assert_eq!(unknown.status, DeliveryStatus::Unknown);
        assert!(unknown.retried(at(4)).is_some());
        let statuses: Vec<(DeliveryStatus, u32)> = unknown.history.iter().map(|c| (c.status, c.attempt)).collect();
        assert_eq!(
            statuses,
            [
                (DeliveryStatus::Queued, 1),
                (DeliveryStatus::Failed, 1),
                (DeliveryStatus::Queued, 2),
                (DeliveryStatus::Unknown, 2)
            ]
        );
        let sent = Delivery::queued(1, at(0))
            .settled(1, &AttemptOutcome::Sent(id), at(1))
            .unwrap();
        assert_eq!(sent.retried(at(2)), None);
    }
}
