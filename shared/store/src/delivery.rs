//! Status events on outbound messages: what a provider reports about a message it was asked
//! to send (sent, delivered, read, failed), applied to the reply's timeline entry through the
//! alias marker the sender writes for the provider's id, by the pure `Delivery::observed`.
//!
//! A status can arrive before the sender has written the alias (the provider calls back while
//! the sender is still recording its answer): it is kept on the marker the alias will be
//! (`pending_statuses`, a string set of the events' JSON, so a redelivery adds nothing), and
//! applied by whichever comes second, the alias or the event (each re-reads after its write,
//! and applying is idempotent). Marker attributes (`INTERACTION#<derived id of the provider's
//! message>`): `alias_of`, `customer_id`, `timeline_sk`, `attempt` (the attempt the provider's
//! id belongs to) and `pending_statuses`.
//!
//! A watermark (Messenger's and Instagram's, X's read receipts: everything sent to that
//! customer before a time is delivered, or read) is one item per customer handle (`WATERMARK#<handle key>`, `delivered`
//! and `read` in millis, each only ever raised), applied to the replies of a timeline page when
//! it is read (`with_watermarks`): one write per event, whatever the number of messages.

use aws_sdk_dynamodb::types::AttributeValue;
use throughline_model::{
    Channel, CustomerId, Delivery, DeliveryStatus, Direction, Handle, RecipientFact, RecipientState, StatusEvent,
    StatusReport, WatermarkReport,
};

use crate::items::{Item, id_attr, key_item, keys, millis, stored_interaction, string_attr, string_value, time_attr};
use crate::timeline::TimelineEntry;
use crate::{StoreError, TimelineStore, written};

/// What `observe_status` did with a provider's status event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// The reply's entry took the event (its status may or may not have changed: a late event
    /// is history only).
    Applied {
        /// The customer whose partition holds the entry.
        customer: CustomerId,
        /// The reply's channel.
        channel: Channel,
        /// The entry's status before the event.
        previous: DeliveryStatus,
        /// The entry's record after it.
        delivery: Delivery,
    },
    /// The entry had this event already (a redelivery).
    Unchanged {
        /// The customer whose partition holds the entry.
        customer: CustomerId,
    },
    /// No reply is known by this provider id yet: kept for the sender's alias to apply.
    Pending,
    /// The reply's customer was erased.
    Erased,
}

/// The attribute that keeps statuses that arrived before their alias.
const PENDING: &str = "pending_statuses";

/// The events a marker keeps, in no order (the status machine needs none).
fn pending_events(marker: &Item) -> Result<Vec<StatusEvent>, StoreError> {
    let Some(AttributeValue::Ss(set)) = marker.get(PENDING) else {
        return Ok(Vec::new());
    };
    set.iter()
        .map(|json| serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("pending status: {e}"))))
        .collect()
}

/// The alias a marker is, if it is one: the reply's customer, entry and attempt.
fn alias_target(marker: &Item) -> Result<Option<(CustomerId, String, Option<u32>)>, StoreError> {
    // A reply's own marker (its `send_job`) names its entry too: reconciliation reports on a
    // reply whose provider id was never known (an `unknown` attempt) by the reply's id.
    let (attempt_attribute, what) = if marker.contains_key("alias_of") {
        ("attempt", "alias attempt")
    } else if marker.contains_key("send_job") && marker.contains_key("timeline_sk") {
        ("send_attempt", "send attempt")
    } else {
        return Ok(None);
    };
    let attempt = match marker.get(attempt_attribute) {
        Some(AttributeValue::N(n)) => Some(
            n.parse()
                .map_err(|_| StoreError::Corrupt(format!("{what} is not a number")))?,
        ),
        _ => None,
    };
    Ok(Some((
        id_attr(marker, "customer_id")?,
        string_attr(marker, "timeline_sk")?,
        attempt,
    )))
}

impl TimelineStore {
    /// Applies a provider's status event to the reply it is about, or keeps it until the
    /// sender names that reply (`Observed::Pending`). Idempotent and order-free.
    pub async fn observe_status(&self, report: &StatusReport) -> Result<Observed, StoreError> {
        if let Some(fact) = &report.recipient {
            self.note_recipient(fact, report.event.at).await?;
        }
        let key = keys::interaction(&report.interaction_id);
        let marker = self.get(key.clone(), true).await?;
        if marker.as_ref().is_some_and(|m| m.contains_key("erased_at")) {
            return Ok(Observed::Erased);
        }
        if let Some((customer, sk, attempt)) = marker.as_ref().map(alias_target).transpose()?.flatten() {
            return self
                .apply_statuses(&customer, &sk, attempt, std::slice::from_ref(&report.event))
                .await;
        }
        let event = serde_json::to_string(&report.event).map_err(|e| StoreError::Corrupt(format!("status: {e}")))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key.clone())))
            .update_expression("ADD #pending :event")
            .condition_expression("attribute_not_exists(erased_at)")
            .expression_attribute_names("#pending", PENDING)
            .expression_attribute_values(":event", AttributeValue::Ss(vec![event]))
            .send()
            .await;
        if !written("UpdateItem", result)? {
            return Ok(Observed::Erased);
        }
        // The alias written between our read and write did not see this event: apply it here.
        match self.get(key, true).await? {
            Some(marker) => match alias_target(&marker)? {
                Some((customer, sk, attempt)) => {
                    self.apply_statuses(&customer, &sk, attempt, &pending_events(&marker)?)
                        .await
                }
                None => Ok(Observed::Pending),
            },
            None => Ok(Observed::Pending),
        }
    }

    /// Applies the statuses a marker kept to the reply its alias now names.
    pub(crate) async fn apply_pending(&self, marker: &Item) -> Result<(), StoreError> {
        let events = pending_events(marker)?;
        if events.is_empty() {
            return Ok(());
        }
        if let Some((customer, sk, attempt)) = alias_target(marker)? {
            self.apply_statuses(&customer, &sk, attempt, &events).await?;
        }
        Ok(())
    }

    /// Folds `events` into the entry's delivery record in one conditional write (read again
    /// and retried if another change landed between).
    async fn apply_statuses(
        &self,
        customer: &CustomerId,
        sk: &str,
        attempt: Option<u32>,
        events: &[StatusEvent],
    ) -> Result<Observed, StoreError> {
        let entry_key = (keys::customer_pk(customer), sk.to_owned());
        for _ in 0..3 {
            let Some(item) = self.get(entry_key.clone(), true).await? else {
                // The alias exists, its entry does not: the reply's customer was erased.
                return Ok(Observed::Erased);
            };
            let entry = stored_interaction(item)?;
            let Some(current) = entry.delivery else {
                return Ok(Observed::Unchanged {
                    customer: customer.clone(),
                });
            };
            let attempt = attempt.unwrap_or(current.attempt);
            let next = events.iter().fold(None::<Delivery>, |next, event| {
                next.as_ref().unwrap_or(&current).observed(attempt, event).or(next)
            });
            let Some(next) = next else {
                return Ok(Observed::Unchanged {
                    customer: customer.clone(),
                });
            };
            if self.replace_delivery(&entry_key, &current, &next).await? {
                return Ok(Observed::Applied {
                    customer: customer.clone(),
                    channel: entry.channel,
                    previous: current.status,
                    delivery: next,
                });
            }
        }
        Err(StoreError::Contention("recording a delivery status"))
    }

    /// Raises the customer's `delivered` or `read` watermark to the report's, if it is later
    /// (`false`: it was not; a redelivery, or an older event). One conditional write.
    pub async fn record_watermark(&self, report: &WatermarkReport) -> Result<bool, StoreError> {
        let attribute = watermark_attribute(report.status)
            .ok_or_else(|| StoreError::Corrupt("a watermark is delivered or read".into()))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(watermark_key(&report.customer))))
            .update_expression("SET #mark = :up_to")
            .condition_expression("attribute_not_exists(#mark) OR #mark < :up_to")
            .expression_attribute_names("#mark", attribute)
            .expression_attribute_values(":up_to", string_value(millis(report.up_to)))
            .send()
            .await;
        written("UpdateItem", result)
    }

    /// The entries with the watermarks of their customers applied to their replies: one
    /// BatchGetItem for the handles of the replies a watermark could move (Messenger, Instagram
    /// and X, sent or delivered), none when there are none.
    pub(crate) async fn with_watermarks(
        &self,
        mut entries: Vec<TimelineEntry>,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        let mut handles: Vec<&Handle> = entries
            .iter()
            .filter(|e| watermark_may_move(e))
            .map(|e| &e.interaction.customer)
            .collect();
        handles.sort_by_key(|h| h.key());
        handles.dedup();
        if handles.is_empty() {
            return Ok(entries);
        }
        let items = self
            .batch_get(handles.iter().map(|h| watermark_key(h)).collect(), false)
            .await?;
        let mut marks = std::collections::HashMap::new();
        for item in items {
            let pk = string_attr(&item, "pk")?;
            marks.insert(pk, (time_attr(&item, "delivered")?, time_attr(&item, "read")?));
        }
        for entry in entries.iter_mut().filter(|e| watermark_may_move(e)) {
            let Some((delivered, read)) = marks.get(&watermark_key(&entry.interaction.customer).0) else {
                continue;
            };
            let Some(delivery) = entry.interaction.delivery.as_mut() else {
                continue;
            };
            for (status, up_to) in [(DeliveryStatus::Delivered, delivered), (DeliveryStatus::Read, read)] {
                if let Some(next) = up_to.and_then(|up_to| delivery.watermarked(status, up_to)) {
                    *delivery = next;
                }
            }
        }
        Ok(entries)
    }
}

fn watermark_key(customer: &Handle) -> (String, String) {
    keys::watermark(&customer.key())
}

fn watermark_attribute(status: DeliveryStatus) -> Option<&'static str> {
    match status {
        DeliveryStatus::Delivered => Some("delivered"),
        DeliveryStatus::Read => Some("read"),
        _ => None,
    }
}

/// A reply on a channel with watermarks that one could still move.
fn watermark_may_move(entry: &TimelineEntry) -> bool {
    let i = &entry.interaction;
    i.direction == Direction::Outbound
        && matches!(i.channel, Channel::Messenger | Channel::Instagram | Channel::X)
        && i.delivery
            .as_ref()
            .is_some_and(|d| matches!(d.status, DeliveryStatus::Sent | DeliveryStatus::Delivered))
}

/// The attribute of an address's `ID#` item that holds what a mail provider last learned about
/// it: `<RFC 3339 millis>|undeliverable` or `|opted_out` (fixed-width times: the later sorts last).
const RECIPIENT_STATE: &str = "recipient_state";

/// A stored recipient note: its state and time.
pub(crate) fn recipient_note(item: &Item) -> Option<(RecipientState, chrono::DateTime<chrono::Utc>)> {
    let note = crate::items::optional_string_attr(item, RECIPIENT_STATE)?;
    let (at, state) = note.split_once('|')?;
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?.to_utc();
    Some((RecipientState::parse(state)?, at))
}

impl TimelineStore {
    /// Notes a recipient's state (a hard bounce, a complaint) on their identifier, the latest by
    /// the event's time winning whatever the order. Nothing when the address is not a known
    /// customer's (or was erased).
    pub(crate) async fn note_recipient(
        &self,
        fact: &RecipientFact,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let Some(owner) = self.customer_for(&fact.handle, true).await? else {
            return Ok(());
        };
        let note = format!("{}|{}", millis(at), fact.state.as_str());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::identifier(&owner, &fact.handle.key()))))
            .update_expression("SET #note = :note")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#note) OR #note < :note)")
            .expression_attribute_names("#note", RECIPIENT_STATE)
            .expression_attribute_values(":note", string_value(note))
            .send()
            .await;
        // A later note is there already (or the identifier went with an erasure).
        written("UpdateItem", result)?;
        Ok(())
    }

    /// What a mail provider last reported about `to`, and when.
    pub async fn recipient_state(
        &self,
        to: &Handle,
    ) -> Result<Option<(RecipientState, chrono::DateTime<chrono::Utc>)>, StoreError> {
        let Some(owner) = self.customer_for(to, true).await? else {
            return Ok(None);
        };
        let item = self.get(keys::identifier(&owner, &to.key()), true).await?;
        Ok(item.as_ref().and_then(recipient_note))
    }
}

/// A sent reply whose provider does not promise to report its fate (Twilio: status callbacks
/// may never come), kept under the day it was sent so that reconciliation can ask later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitingStatus {
    /// The reply.
    pub reply: throughline_model::InteractionId,
    /// The provider's id for it and the id its status reports name (the alias); `None` when the
    /// attempt's outcome is `unknown` (no answer came: the provider may or may not have it).
    pub sent: Option<(throughline_model::ProviderMessageId, throughline_model::InteractionId)>,
    /// The attempt.
    pub attempt: u32,
    /// When the provider was called.
    pub called_at: chrono::DateTime<chrono::Utc>,
}

/// How long a sent reply is kept for reconciliation.
pub const AWAITING_TTL: chrono::TimeDelta = chrono::TimeDelta::days(7);

fn awaiting_pk(day: chrono::NaiveDate) -> String {
    format!("AWAITING#{day}")
}

impl TimelineStore {
    /// Keeps a reply the provider was called for under the day of `called_at`, with the
    /// provider's id when it answered one (`None`: the outcome is `unknown`), for
    /// reconciliation (one small put; expires after `AWAITING_TTL`). Idempotent.
    pub async fn await_status(
        &self,
        job: &throughline_model::SendJob,
        provider_id: Option<&throughline_model::ProviderMessageId>,
        called_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let sk = format!("{}#{}", job.interaction_id, job.attempt);
        let mut item = key_item((awaiting_pk(called_at.date_naive()), sk));
        item.insert("reply".into(), string_value(job.interaction_id.as_str()));
        if let Some(provider_id) = provider_id {
            let alias = throughline_model::InteractionId::derive(job.message.provider, &job.message.from, provider_id);
            item.insert("provider_message_id".into(), string_value(provider_id.as_str()));
            item.insert("alias".into(), string_value(alias.as_str()));
        }
        item.insert("attempt".into(), AttributeValue::N(job.attempt.to_string()));
        item.insert("called_at".into(), string_value(millis(called_at)));
        item.insert(
            "expires_at".into(),
            AttributeValue::N((called_at + AWAITING_TTL).timestamp().to_string()),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(crate::dynamo("PutItem"))?;
        Ok(())
    }

    /// A page of the replies sent on `day` and kept for reconciliation, and the cursor of the
    /// next page. One Query.
    pub async fn awaiting_on(
        &self,
        day: chrono::NaiveDate,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<AwaitingStatus>, Option<String>), StoreError> {
        let pk = awaiting_pk(day);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", string_value(&pk))
            .set_exclusive_start_key(cursor.map(|sk| key_item((pk.clone(), sk.to_owned()))))
            .limit(limit)
            .send()
            .await
            .map_err(crate::dynamo("Query"))?;
        let page = output
            .items()
            .iter()
            .map(|item| {
                let sent = match item.get("provider_message_id") {
                    Some(_) => Some((id_attr(item, "provider_message_id")?, id_attr(item, "alias")?)),
                    None => None,
                };
                Ok(AwaitingStatus {
                    reply: id_attr(item, "reply")?,
                    sent,
                    attempt: u32::try_from(crate::items::number_attr(item, "attempt")).unwrap_or(1),
                    called_at: time_attr(item, "called_at")?
                        .ok_or_else(|| StoreError::Corrupt("a kept reply has no called_at".into()))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next = output
            .last_evaluated_key()
            .and_then(|k| k.get("sk"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok((page, next))
    }
}
