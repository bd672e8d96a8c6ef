//! Where an outbound message is in its sending: the record on its timeline entry, and the pure
//! rules for what each send outcome (`settled`, `retried`) and each status the provider reports
//! afterwards (`observed`) make of it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::ProviderMessageId;
use crate::{Channel, Handle, InteractionId};

wire_enum! {
    /// The state of an outbound message.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum DeliveryStatus {
        /// On the timeline and on the outbound queue: not yet handed to the provider.
        Queued = "queued",
        /// The provider took it and gave it an id.
        Sent = "sent",
        /// The provider says it reached the customer's device or mailbox.
        Delivered = "delivered",
        /// The provider says the customer read it.
        Read = "read",
        /// The provider refused it for good (`error` says why); an agent may retry.
        Failed = "failed",
        /// The provider took it, then could not deliver it (a carrier's refusal, a hard bounce):
        /// `error` says why; an agent may retry.
        Undelivered = "undelivered",
        /// The request may have reached the provider but no answer came: it may have been sent.
        /// Never sent again by itself; an agent may retry, knowing the customer may get it twice.
        Unknown = "unknown",
    }
}

impl DeliveryStatus {
    /// Whether an agent may ask for another attempt.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Failed | DeliveryStatus::Undelivered | DeliveryStatus::Unknown
        )
    }

    /// How far along a message with this status is; the status of an attempt is that of its
    /// most advanced event. Confirmations outrank what was only assumed (`unknown` < `sent`), a
    /// failure outranks `sent`, and what reached the customer outranks a failure reported for
    /// it (providers report `delivered` only for what arrived).
    pub fn precedence(self) -> u8 {
        match self {
            DeliveryStatus::Queued => 0,
            DeliveryStatus::Unknown => 1,
            DeliveryStatus::Sent => 2,
            DeliveryStatus::Failed | DeliveryStatus::Undelivered => 3,
            DeliveryStatus::Delivered => 4,
            DeliveryStatus::Read => 5,
        }
    }

    /// A failure, whose change carries the error.
    pub fn is_failure(self) -> bool {
        matches!(self, DeliveryStatus::Failed | DeliveryStatus::Undelivered)
    }
}

wire_enum! {
    /// Where a reply's statuses after `sent` come from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum StatusSource {
        /// The provider reports delivery (or reading) of what it sent.
        Provider = "provider",
        /// The channel has no receipts (Telegram's Bot API): a reply stays `sent`.
        None = "none",
    }
}

impl StatusSource {
    /// Whether `channel`'s providers report what became of a message after they took it.
    pub fn of(channel: Channel) -> Self {
        match channel {
            Channel::Telegram => StatusSource::None,
            _ => StatusSource::Provider,
        }
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

/// One change of a message's status, or one status event its provider reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryChange {
    /// The status it went to, or that the provider reported.
    pub status: DeliveryStatus,
    /// The attempt it belongs to.
    pub attempt: u32,
    /// When (the provider's time, for its events).
    pub at: DateTime<Utc>,
    /// What reported it (`twilio_status_callback`, `whatsapp_statuses`…); absent for the
    /// API's and the sender's own changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A failure's code (the provider's, or ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_code: Option<String>,
    /// A failure's reason, in an agent's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl DeliveryChange {
    fn ours(status: DeliveryStatus, attempt: u32, at: DateTime<Utc>) -> Self {
        Self {
            status,
            attempt,
            at,
            source: None,
            provider_code: None,
            reason: None,
        }
    }

    /// The order of a history: by time, then by how far along, then by source; so a history
    /// is the same whatever order its events arrived in.
    #[allow(clippy::type_complexity)]
    fn order_key(
        &self,
    ) -> (
        DateTime<Utc>,
        u8,
        &'static str,
        Option<&str>,
        u32,
        Option<&str>,
        Option<&str>,
    ) {
        // Every field: two different changes never tie.
        (
            self.at,
            self.status.precedence(),
            self.status.as_str(),
            self.source.as_deref(),
            self.attempt,
            self.provider_code.as_deref(),
            self.reason.as_deref(),
        )
    }
}

/// A status the provider reported for a sent message (by its provider message id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusEvent {
    /// What it says.
    pub status: DeliveryStatus,
    /// The provider's time for it (the time it reached us, for providers that give none).
    pub at: DateTime<Utc>,
    /// What reported it (`twilio_status_callback`…).
    pub source: String,
    /// A failure's code and reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeliveryError>,
}

/// A status event for the message a provider knows by an id, as a connector queues it: the
/// interaction id is the one that message's echo would have (`InteractionId::derive` of the
/// provider, the company's endpoint it was sent from and the provider's id), which the sender
/// makes an alias of the reply's entry once it knows the id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusReport {
    /// The provider's message, by its derived interaction id.
    pub interaction_id: InteractionId,
    /// What the provider reported.
    #[serde(flatten)]
    pub event: StatusEvent,
    /// What the event says of the recipient's address itself (a hard bounce, a complaint),
    /// noted on their identifier at the event's time whether or not the reply is known yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<RecipientFact>,
}

wire_enum! {
    /// What a mail provider learned about a recipient's address.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum RecipientState {
        /// A hard bounce: the address does not take mail. Replies are refused
        /// (`recipient_undeliverable`) until a newer mail from it.
        Undeliverable = "undeliverable",
        /// The recipient marked a reply as spam: replies are refused (`recipient_opted_out`)
        /// until a newer mail from it.
        OptedOut = "opted_out",
    }
}

/// A recipient's state, as a status event reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecipientFact {
    /// The recipient's address.
    pub handle: Handle,
    /// What became of it.
    pub state: RecipientState,
}

/// A provider's watermark for one customer (Messenger's and Instagram's `delivery` and
/// `read`): everything the company sent that customer before `up_to` is delivered (or read).
/// One per event, however many messages it covers: it is kept per customer handle and applied
/// to their replies when the timeline is read (`Delivery::watermarked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WatermarkReport {
    /// The customer's handle (page-scoped: the page is in it).
    pub customer: Handle,
    /// `delivered` or `read`.
    pub status: DeliveryStatus,
    /// The provider's watermark.
    pub up_to: DateTime<Utc>,
}

/// The source of what a watermark shows.
pub const WATERMARK_SOURCE: &str = "watermark";

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
            history: vec![DeliveryChange::ours(DeliveryStatus::Queued, attempt, at)],
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
        let mut change = DeliveryChange::ours(status, attempt, at);
        if let Some(error) = &next.error {
            change.provider_code = Some(error.code.clone());
            change.reason = Some(error.reason.clone());
        }
        next.history.push(change);
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
        next.history
            .push(DeliveryChange::ours(DeliveryStatus::Queued, next.attempt, at));
        Some(next)
    }

    /// The record after the provider reported `event` for the current attempt, or `None` when
    /// it changes nothing (the same event again). Monotonic and order-free: the event joins the
    /// history (kept in `DeliveryChange::order_key` order), and the status is that of the
    /// current attempt's most advanced event (`DeliveryStatus::precedence`): a late `sent`
    /// after `delivered` is history only, `read` without `delivered` is read (and so
    /// delivered), and any order or repetition of the same events ends in the same record.
    ///
    /// `attempt` is the attempt the provider's message was sent for: an event of an earlier
    /// attempt (a late callback about a message an agent sent again) is history only.
    pub fn observed(&self, attempt: u32, event: &StatusEvent) -> Option<Self> {
        let change = DeliveryChange {
            status: event.status,
            attempt,
            at: event.at,
            source: Some(event.source.clone()),
            provider_code: event.error.as_ref().map(|e| e.code.clone()),
            reason: event.error.as_ref().map(|e| e.reason.clone()),
        };
        // A provider reports each status of a message once; the same report again (a webhook
        // retried, with the time it reached us as its time) is the same event, kept at its
        // earliest time, so that any order of the copies ends in the same history.
        let same = |c: &DeliveryChange| {
            (c.attempt, c.status, &c.source, &c.provider_code, &c.reason)
                == (
                    change.attempt,
                    change.status,
                    &change.source,
                    &change.provider_code,
                    &change.reason,
                )
        };
        let mut next = self.clone();
        if let Some(copy) = next.history.iter().position(same) {
            if next.history[copy].at <= change.at {
                return None;
            }
            next.history.remove(copy);
        }
        let at = next.history.partition_point(|c| c.order_key() <= change.order_key());
        next.history.insert(at, change);
        let Some(leading) = next
            .history
            .iter()
            .filter(|c| c.attempt == next.attempt)
            .max_by_key(|c| (c.status.precedence(), c.order_key()))
            .cloned()
        else {
            return Some(next);
        };
        next.status = leading.status;
        next.updated_at = leading.at;
        next.error = match (leading.status.is_failure(), leading.provider_code, leading.reason) {
            (true, Some(code), Some(reason)) => Some(DeliveryError { code, reason }),
            (true, code, _) => Some(DeliveryError {
                code: code.unwrap_or_else(|| "unknown".into()),
                reason: "the provider reported it was not delivered".into(),
            }),
            (false, ..) => None,
        };
        Some(next)
    }
}

impl Delivery {
    /// The record as the customer's `status` watermark `up_to` shows it, or `None` when the
    /// watermark does not cover the current attempt: that attempt was handed to the provider
    /// (its `sent` time, which is when the call began) at or before `up_to`. The watermark's
    /// status joins the history at the watermark's time, by `observed`'s rules.
    pub fn watermarked(&self, status: DeliveryStatus, up_to: DateTime<Utc>) -> Option<Self> {
        let sent = self
            .history
            .iter()
            .find(|c| c.attempt == self.attempt && c.status == DeliveryStatus::Sent && c.source.is_none())?;
        if sent.at > up_to {
            return None;
        }
        self.observed(
            self.attempt,
            &StatusEvent {
                status,
                at: up_to,
                source: WATERMARK_SOURCE.into(),
                error: None,
            },
        )
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

    fn event(status: DeliveryStatus, minute: u32, source: &str) -> StatusEvent {
        StatusEvent {
            status,
            at: at(minute),
            source: source.into(),
            error: status.is_failure().then(|| DeliveryError {
                code: "30003".into(),
                reason: "the handset was unreachable".into(),
            }),
        }
    }

    fn sent_at_one() -> Delivery {
        let id = ProviderMessageId::parse("SM1").unwrap();
        Delivery::queued(1, at(0))
            .settled(1, &AttemptOutcome::Sent(id), at(1))
            .unwrap()
    }

    #[test]
    fn statuses_only_advance_and_a_late_one_is_history() {
        let sent = sent_at_one();
        let delivered = sent
            .observed(1, &event(DeliveryStatus::Delivered, 3, "twilio_status_callback"))
            .unwrap();
        assert_eq!(delivered.status, DeliveryStatus::Delivered);
        // Twilio's `sent` callback arriving after `delivered`: kept, not applied.
        let late = delivered
            .observed(1, &event(DeliveryStatus::Sent, 2, "twilio_status_callback"))
            .unwrap();
        assert_eq!(late.status, DeliveryStatus::Delivered);
        assert_eq!(late.history.len(), delivered.history.len() + 1);
        // The same callback again changes nothing, even retried later (its time is its arrival).
        assert_eq!(
            late.observed(1, &event(DeliveryStatus::Sent, 2, "twilio_status_callback")),
            None
        );
        assert_eq!(
            late.observed(1, &event(DeliveryStatus::Sent, 9, "twilio_status_callback")),
            None
        );
        // WhatsApp's lone `read`: read, so delivered.
        let read = sent
            .observed(1, &event(DeliveryStatus::Read, 4, "whatsapp_statuses"))
            .unwrap();
        assert_eq!(read.status, DeliveryStatus::Read);
        assert!(!read.status.retryable());
    }

    #[test]
    fn an_undelivered_message_carries_the_providers_reason_and_may_be_retried() {
        let undelivered = sent_at_one()
            .observed(1, &event(DeliveryStatus::Undelivered, 5, "twilio_status_callback"))
            .unwrap();
        assert_eq!(undelivered.status, DeliveryStatus::Undelivered);
        assert_eq!(undelivered.error.as_ref().map(|e| e.code.as_str()), Some("30003"));
        assert_eq!(undelivered.updated_at, at(5));
        assert!(undelivered.retried(at(6)).is_some());
    }

    #[test]
    fn a_late_event_of_an_earlier_attempt_is_history_only() {
        let id = ProviderMessageId::parse("SM2").unwrap();
        let failed = sent_at_one()
            .observed(1, &event(DeliveryStatus::Undelivered, 5, "twilio_status_callback"))
            .unwrap();
        let second = failed
            .retried(at(6))
            .unwrap()
            .settled(2, &AttemptOutcome::Sent(id), at(7))
            .unwrap();
        let late = second
            .observed(1, &event(DeliveryStatus::Delivered, 8, "twilio_status_callback"))
            .unwrap();
        assert_eq!((late.status, late.attempt), (DeliveryStatus::Sent, 2));
        assert_eq!(
            late.history.last().map(|c| (c.status, c.attempt)),
            Some((DeliveryStatus::Delivered, 1))
        );
    }

    #[test]
    fn a_watermark_covers_what_was_sent_up_to_it_and_never_takes_a_status_back() {
        let sent = sent_at_one();
        assert_eq!(
            sent.watermarked(DeliveryStatus::Delivered, at(0)),
            None,
            "sent after it"
        );
        let delivered = sent.watermarked(DeliveryStatus::Delivered, at(1)).unwrap();
        assert_eq!(
            (delivered.status, delivered.updated_at),
            (DeliveryStatus::Delivered, at(1))
        );
        let read = delivered.watermarked(DeliveryStatus::Read, at(5)).unwrap();
        assert_eq!(read.status, DeliveryStatus::Read);
        // An older delivery watermark on a read message: history at most, still read.
        let later = read
            .watermarked(DeliveryStatus::Delivered, at(3))
            .unwrap_or(read.clone());
        assert_eq!(later.status, DeliveryStatus::Read);
        // Not sent (queued, failed): nothing to cover.
        assert_eq!(
            Delivery::queued(1, at(0)).watermarked(DeliveryStatus::Read, at(9)),
            None
        );
    }

    proptest::proptest! {
        /// Any order and any repetition of one message's status events ends in the same record.
        #[test]
        fn any_order_and_repetition_of_the_events_ends_in_the_same_record(
            picks in proptest::collection::vec((0usize..5, 2u32..30), 1..8),
            order in proptest::collection::vec(0usize..1000, 1..24),
        ) {
            let kinds = [
                DeliveryStatus::Sent,
                DeliveryStatus::Delivered,
                DeliveryStatus::Read,
                DeliveryStatus::Undelivered,
                DeliveryStatus::Failed,
            ];
            let events: Vec<StatusEvent> = picks
                .iter()
                .map(|(kind, minute)| event(kinds[*kind], *minute, "provider"))
                .collect();
            let apply = |sequence: &mut dyn Iterator<Item = &StatusEvent>| {
                sequence.fold(sent_at_one(), |record, e| record.observed(1, e).unwrap_or(record))
            };
            let in_order = apply(&mut events.iter());
            // Another order, with repetitions, that still holds every event at least once.
            let shuffled: Vec<&StatusEvent> = order
                .iter()
                .map(|i| &events[i % events.len()])
                .chain(events.iter().rev())
                .collect();
            let other = apply(&mut shuffled.into_iter());
            proptest::prop_assert_eq!(&in_order, &other);
            // The status is the most advanced event's.
            let most = events.iter().map(|e| e.status.precedence()).max().unwrap_or(0).max(2);
            proptest::prop_assert_eq!(in_order.status.precedence(), most);
        }
    }
}
