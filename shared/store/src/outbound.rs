//! Outbound messages on the timeline: the API's memory of an `Idempotency-Key`, the send job
//! kept on the reply's marker (for retries), the sender's claim on an attempt (at most one
//! provider call per message and attempt), each attempt's outcome on the entry, and the
//! provider's message id as an alias of the entry so that its echo is never a second entry
//! and its status events find the entry (`delivery`).
//!
//! Marker attributes (`INTERACTION#<reply id>`): `send_job` (the job's JSON, attempt 1),
//! `send_attempt` (the last attempt claimed) and `send_state` (`calling` while the provider is
//! called; `retry` after a transient failure; `done`). An alias marker (`INTERACTION#<id of the
//! provider's message>`) has `alias_of`, `customer_id`, `timeline_sk` and `attempt` of the reply.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use throughline_model::{
    AttemptOutcome, Channel, CustomerId, Delivery, Direction, Handle, IdempotencyKey, Interaction, InteractionId,
    OptKeyword, ProviderMessageId, SendJob,
};

use crate::items::{
    Item, id_attr, key_item, keys, number_attr, optional_string_attr, sha256_hex, stored_interaction, string_attr,
    string_value,
};
use crate::{Recorded, StoreError, TimelineStore, dynamo, written};

/// How long an `Idempotency-Key` is remembered with the request it came with (the issue asks
/// for at least 24 h). After that the reply's derived id still keeps a repeat from making a
/// second message: it answers the one recorded.
pub const IDEMPOTENCY_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(48);

/// What the store knew of a request's `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remembered {
    /// First seen now.
    New,
    /// Seen with the same request: answer the same message again.
    Same,
    /// Seen with another request (409 `idempotency_key_reused`).
    Reused,
}

/// Whether the sender may call the provider for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Claimed now: call, then `settle_send`.
    Granted,
    /// This attempt ran before and is settled, or a later attempt exists: do not call.
    AlreadyRan,
    /// Another delivery of the job (the API queues a job again when asked again) claimed this
    /// attempt moments ago and may be calling now: do not call. If that one stops, its own
    /// redelivery finds the claim old: `Interrupted`.
    InFlight,
    /// This attempt was claimed longer ago than a call can take and never settled: a sender
    /// stopped while calling, so the provider may have sent it. Settle it `unknown`; do not call.
    Interrupted,
    /// The customer was erased: nothing to send.
    Erased,
}

/// What one provider call came to, for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// Settled: sent, failed or unknown.
    Settled(AttemptOutcome),
    /// Not taken now (5xx, 429, no connection): the attempt is tried again through the queue.
    Transient,
}

/// The hash a request's body is remembered by.
pub fn request_hash(body: &[u8]) -> String {
    sha256_hex(body)
}

fn idempotency_key(customer: &CustomerId, key: &IdempotencyKey) -> (String, String) {
    // The key is the caller's text: only its hash is kept.
    (
        format!("IDEMPOTENCY#{customer}#{}", sha256_hex(key.as_str().as_bytes())),
        "IDEMPOTENCY".into(),
    )
}

/// The attribute of a customer number's `ID#` item that holds its latest SMS keyword to one
/// business number: `<RFC 3339 millis>|out` or `|in` (fixed-width times: the later sorts last).
fn sms_keyword_attribute(endpoint: &Handle) -> String {
    format!("sms_keyword@{}", endpoint.key())
}

/// Whether a stored keyword note says "opted out".
fn opted_out_note(note: &str) -> bool {
    note.ends_with("|out")
}

impl TimelineStore {
    /// Notes an SMS opt-out (`STOP`…) or opt-in (`START`…) on the customer number's identifier,
    /// per business number: the latest by the message's time wins, whatever the order of
    /// deliveries. A fact on the profile (`IdentifierView::sms_opted_out`), and what the API
    /// checks before texting that number from that business number. Anything else: nothing.
    pub(crate) async fn note_sms_keyword(
        &self,
        interaction: &Interaction,
        owner: &CustomerId,
    ) -> Result<(), StoreError> {
        if interaction.channel != Channel::Sms || interaction.direction != Direction::Inbound {
            return Ok(());
        }
        let Some(keyword) = interaction.text.as_deref().and_then(OptKeyword::parse) else {
            return Ok(());
        };
        let note = format!(
            "{}|{}",
            crate::items::millis(interaction.occurred_at),
            match keyword {
                OptKeyword::OptOut => "out",
                OptKeyword::OptIn => "in",
            }
        );
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::identifier(owner, &interaction.customer.key()))))
            .update_expression("SET #note = :note")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#note) OR #note < :note)")
            .expression_attribute_names("#note", sms_keyword_attribute(&interaction.business_endpoint))
            .expression_attribute_values(":note", string_value(note))
            .send()
            .await;
        // A later keyword is noted already (or the identifier is gone with an erasure).
        written("UpdateItem", result)?;
        Ok(())
    }

    /// Whether the customer number `to` last told business number `from` to stop.
    pub async fn sms_opted_out(&self, to: &Handle, from: &Handle) -> Result<bool, StoreError> {
        let Some(owner) = self.customer_for(to, true).await? else {
            return Ok(false);
        };
        let item = self.get(keys::identifier(&owner, &to.key()), true).await?;
        Ok(item
            .as_ref()
            .and_then(|i| optional_string_attr(i, &sms_keyword_attribute(from)))
            .is_some_and(|note| opted_out_note(&note)))
    }

    /// The business numbers an identifier's item says it opted out of (its profile's facts).
    pub(crate) fn sms_opt_outs(item: &Item) -> Vec<String> {
        let mut out: Vec<String> = item
            .iter()
            .filter_map(|(name, value)| {
                let endpoint = name.strip_prefix("sms_keyword@")?;
                matches!(value, AttributeValue::S(note) if opted_out_note(note)).then(|| endpoint.to_owned())
            })
            .collect();
        out.sort();
        out
    }

    /// Remembers `key` for a request to `customer` with body hash `hash` until `now` +
    /// `IDEMPOTENCY_TTL`, or says how it was seen before. The first request with a key claims
    /// it (a conditional put), so of two different requests racing with one key exactly one is
    /// recorded.
    pub async fn remember_request(
        &self,
        customer: &CustomerId,
        key: &IdempotencyKey,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Remembered, StoreError> {
        let item_key = idempotency_key(customer, key);
        let mut item = key_item(item_key.clone());
        item.insert("request_hash".into(), string_value(hash));
        item.insert(
            "expires_at".into(),
            AttributeValue::N((now + IDEMPOTENCY_TTL).timestamp().to_string()),
        );
        if self.put_new(item).await? {
            return Ok(Remembered::New);
        }
        let seen = self.get(item_key, true).await?;
        Ok(
            match seen.as_ref().and_then(|i| optional_string_attr(i, "request_hash")) {
                Some(seen) if seen == hash => Remembered::Same,
                Some(_) => Remembered::Reused,
                // Expired between the put and the read: as good as new.
                None => Remembered::New,
            },
        )
    }

    /// Forgets `key` if it is still remembered with `hash`: the request was refused before
    /// anything was recorded, so the key may be used for a corrected one.
    pub async fn forget_request(
        &self,
        customer: &CustomerId,
        key: &IdempotencyKey,
        hash: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(idempotency_key(customer, key))))
            .condition_expression("request_hash = :hash")
            .expression_attribute_values(":hash", string_value(hash))
            .send()
            .await;
        written("DeleteItem", result)?;
        Ok(())
    }

    /// The send job kept on a reply's marker (attempt 1).
    pub async fn send_job(&self, reply: &InteractionId) -> Result<Option<SendJob>, StoreError> {
        let Some(marker) = self.get(keys::interaction(reply), true).await? else {
            return Ok(None);
        };
        optional_string_attr(&marker, "send_job")
            .map(|job| SendJob::from_json(&job).map_err(|e| StoreError::Corrupt(format!("send job: {e}"))))
            .transpose()
    }

    /// Records an outbound reply on its customer's timeline (the ingest path: conversation,
    /// counts, exactly once) and keeps its send job on its marker for retries. Idempotent.
    pub async fn record_outbound(&self, interaction: &Interaction, job: &SendJob) -> Result<Recorded, StoreError> {
        let recorded = self.record(interaction).await?;
        if matches!(recorded, Recorded::Erased) {
            return Ok(recorded);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::interaction(&interaction.id))))
            .update_expression("SET send_job = if_not_exists(send_job, :job)")
            .condition_expression("attribute_exists(timeline_sk) AND attribute_not_exists(erased_at)")
            .expression_attribute_values(":job", string_value(job.to_json()))
            .send()
            .await;
        written("UpdateItem", result)?;
        Ok(recorded)
    }

    /// The recorded entry of an interaction, with the member whose partition holds it.
    pub async fn entry(&self, id: &InteractionId) -> Result<Option<(CustomerId, Interaction)>, StoreError> {
        let Some(marker) = self.get(keys::interaction(id), true).await? else {
            return Ok(None);
        };
        self.entry_of_marker(&marker).await
    }

    async fn entry_of_marker(&self, marker: &Item) -> Result<Option<(CustomerId, Interaction)>, StoreError> {
        if marker.contains_key("erased_at") || !marker.contains_key("timeline_sk") {
            return Ok(None);
        }
        let customer: CustomerId = id_attr(marker, "customer_id")?;
        let sk = string_attr(marker, "timeline_sk")?;
        let Some(item) = self.get((keys::customer_pk(&customer), sk), true).await? else {
            return Ok(None);
        };
        Ok(Some((customer, stored_interaction(item)?)))
    }

    /// Claims `job`'s attempt before the provider is called: a conditional write on the reply's
    /// marker that only one delivery of the job can make, and none after the attempt ran. A
    /// claim not settled within `call_time` (longer than any call can take) is taken for a
    /// sender that stopped while calling.
    pub async fn claim_send(
        &self,
        job: &SendJob,
        now: DateTime<Utc>,
        call_time: std::time::Duration,
    ) -> Result<Claim, StoreError> {
        let key = keys::interaction(&job.interaction_id);
        let attempt = AttributeValue::N(job.attempt.to_string());
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key.clone())))
            .update_expression("SET send_attempt = :attempt, send_state = :calling, send_claimed_at = :now")
            .condition_expression(
                "attribute_exists(timeline_sk) AND attribute_not_exists(erased_at) AND \
                 (attribute_not_exists(send_attempt) OR send_attempt < :attempt OR \
                 (send_attempt = :attempt AND send_state = :retry))",
            )
            .expression_attribute_values(":attempt", attempt)
            .expression_attribute_values(":calling", string_value("calling"))
            .expression_attribute_values(":retry", string_value("retry"))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp_millis().to_string()))
            .send()
            .await;
        if written("UpdateItem", claimed)? {
            return Ok(Claim::Granted);
        }
        let marker = self.get(key, true).await?;
        let Some(marker) = marker else {
            return Err(StoreError::NotFound(format!("interaction {}", job.interaction_id)));
        };
        if marker.contains_key("erased_at") {
            return Ok(Claim::Erased);
        }
        if !marker.contains_key("timeline_sk") {
            return Err(StoreError::NotFound(format!("interaction {}", job.interaction_id)));
        }
        let ran = number_attr(&marker, "send_attempt");
        let state = optional_string_attr(&marker, "send_state");
        if ran != u64::from(job.attempt) || state.as_deref() != Some("calling") {
            return Ok(Claim::AlreadyRan);
        }
        let claimed_at = number_attr(&marker, "send_claimed_at");
        let age = u64::try_from(now.timestamp_millis())
            .unwrap_or(0)
            .saturating_sub(claimed_at);
        Ok(if u128::from(age) >= call_time.as_millis() {
            Claim::Interrupted
        } else {
            Claim::InFlight
        })
    }

    /// Records what `job`'s claimed attempt came to. Transient: the claim is released for the
    /// next delivery of the job. Settled: the entry's delivery record changes (only if it is
    /// still this attempt's, queued), a sent message's provider id becomes an alias of the entry
    /// (folding in an echo recorded first), and the claim is closed. Each step is idempotent, so
    /// a redelivery after a stop in between finishes it.
    pub async fn settle_send(&self, job: &SendJob, result: &SendResult, at: DateTime<Utc>) -> Result<(), StoreError> {
        let key = keys::interaction(&job.interaction_id);
        let state = match result {
            SendResult::Transient => "retry",
            SendResult::Settled(outcome) => {
                let marker = self
                    .get(key.clone(), true)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("interaction {}", job.interaction_id)))?;
                if marker.contains_key("erased_at") {
                    return Ok(());
                }
                let (customer, sk) = (
                    id_attr::<CustomerId>(&marker, "customer_id")?,
                    string_attr(&marker, "timeline_sk")?,
                );
                self.settle_entry(&customer, &sk, job.attempt, outcome, at).await?;
                if let AttemptOutcome::Sent(provider_id) = outcome {
                    self.alias(job, &customer, &sk, provider_id).await?;
                }
                "done"
            }
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .update_expression("SET send_state = :state")
            .condition_expression("send_attempt = :attempt AND attribute_not_exists(erased_at)")
            .expression_attribute_values(":state", string_value(state))
            .expression_attribute_values(":attempt", AttributeValue::N(job.attempt.to_string()))
            .send()
            .await;
        // A later attempt claimed meanwhile (or an erasure): its state is its own.
        written("UpdateItem", result)?;
        Ok(())
    }

    /// The entry's delivery record after `attempt`'s outcome: read, advanced by the pure rule,
    /// written back only if unchanged since the read.
    async fn settle_entry(
        &self,
        customer: &CustomerId,
        sk: &str,
        attempt: u32,
        outcome: &AttemptOutcome,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let entry_key = (keys::customer_pk(customer), sk.to_owned());
        for _ in 0..3 {
            let Some(item) = self.get(entry_key.clone(), true).await? else {
                return Err(StoreError::NotFound("timeline entry of a reply".into()));
            };
            let entry = stored_interaction(item)?;
            let Some(current) = entry.delivery else {
                return Ok(());
            };
            let Some(next) = current.settled(attempt, outcome, at) else {
                return Ok(());
            };
            if self.replace_delivery(&entry_key, &current, &next).await? {
                return Ok(());
            }
        }
        Err(StoreError::Contention("recording a send outcome"))
    }

    /// Writes `next` as the entry's delivery record if the record is still `previous` (its
    /// attempt, status, time and number of changes: two events that only add history must not
    /// overwrite each other).
    pub(crate) async fn replace_delivery(
        &self,
        entry_key: &(String, String),
        previous: &Delivery,
        next: &Delivery,
    ) -> Result<bool, StoreError> {
        let value =
            serde_dynamo::to_attribute_value(next).map_err(|e| StoreError::Corrupt(format!("delivery: {e}")))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(entry_key.clone())))
            .update_expression("SET #delivery = :next")
            .condition_expression(
                "#delivery.#attempt = :attempt AND #delivery.#status = :status AND #delivery.#updated_at = :updated_at \
                 AND size(#delivery.#history) = :changes",
            )
            .expression_attribute_names("#delivery", "delivery")
            .expression_attribute_names("#history", "history")
            .expression_attribute_values(":changes", AttributeValue::N(previous.history.len().to_string()))
            .expression_attribute_names("#attempt", "attempt")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#updated_at", "updated_at")
            .expression_attribute_values(":next", value)
            .expression_attribute_values(":attempt", AttributeValue::N(previous.attempt.to_string()))
            .expression_attribute_values(":status", string_value(previous.status.as_str()))
            .expression_attribute_values(
                ":updated_at",
                serde_dynamo::to_attribute_value(previous.updated_at)
                    .map_err(|e| StoreError::Corrupt(format!("delivery: {e}")))?,
            )
            .send()
            .await;
        written("UpdateItem", result)
    }

    /// Makes the provider's id of a sent reply an alias of its entry: the provider's echo of it
    /// (same provider, endpoint and id, so the same derived interaction id) then finds this
    /// marker and is a duplicate, and its status events find the entry. An echo recorded first
    /// is folded in: its marker becomes the alias and its entry goes, leaving the reply's.
    /// Statuses that arrived first are applied (`apply_pending`).
    async fn alias(
        &self,
        job: &SendJob,
        customer: &CustomerId,
        sk: &str,
        provider_id: &ProviderMessageId,
    ) -> Result<(), StoreError> {
        let message = &job.message;
        let alias_id = InteractionId::derive(message.provider, &message.from, provider_id);
        let alias_key = keys::interaction(&alias_id);
        let mut item = key_item(alias_key.clone());
        item.insert("alias_of".into(), string_value(job.interaction_id.as_str()));
        item.insert("customer_id".into(), string_value(customer.as_str()));
        item.insert("timeline_sk".into(), string_value(sk));
        item.insert("attempt".into(), AttributeValue::N(job.attempt.to_string()));
        if self.put_new(item).await? {
            return Ok(());
        }
        for _ in 0..3 {
            let Some(marker) = self.get(alias_key.clone(), true).await? else {
                return Ok(());
            };
            if marker.contains_key("erased_at") {
                return Ok(());
            }
            if marker.contains_key("alias_of") {
                // Written by an earlier delivery of this settlement, which may have stopped
                // before applying what was pending.
                return self.apply_pending(&marker).await;
            }
            let claim = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_item(alias_key.clone())))
                .expression_attribute_values(":reply", string_value(job.interaction_id.as_str()))
                .expression_attribute_values(":customer", string_value(customer.as_str()))
                .expression_attribute_values(":sk", string_value(sk))
                .expression_attribute_values(":attempt", AttributeValue::N(job.attempt.to_string()))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
            let Some(echo_sk) = optional_string_attr(&marker, "timeline_sk") else {
                // Only statuses (or a deletion) arrived first: the marker becomes the alias.
                let result = claim
                    .update_expression(
                        "SET alias_of = :reply, customer_id = :customer, timeline_sk = :sk, attempt = :attempt",
                    )
                    .condition_expression("attribute_not_exists(timeline_sk) AND attribute_not_exists(erased_at)")
                    .send()
                    .await;
                match result {
                    Ok(output) => return self.apply_pending(&output.attributes.unwrap_or_default()).await,
                    Err(e) if crate::is_conditional_failure(&e) => continue,
                    Err(e) => return Err(dynamo("UpdateItem")(e)),
                }
            };
            // The echo came first and has its own entry: the marker turns into the alias of the
            // reply's entry (so its redeliveries are duplicates), then the echo's entry goes.
            let echo_customer: CustomerId = id_attr(&marker, "customer_id")?;
            let result = claim
                .update_expression(
                    "SET alias_of = :reply, customer_id = :customer, timeline_sk = :sk, attempt = :attempt, \
                     folded_entry = :echo",
                )
                .condition_expression("timeline_sk = :echo AND attribute_not_exists(alias_of)")
                .expression_attribute_values(":echo", string_value(&echo_sk))
                .send()
                .await;
            let folded = match result {
                Ok(output) => output.attributes.unwrap_or_default(),
                Err(e) if crate::is_conditional_failure(&e) => continue,
                Err(e) => return Err(dynamo("UpdateItem")(e)),
            };
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_item((keys::customer_pk(&echo_customer), echo_sk))))
                .send()
                .await
                .map_err(dynamo("DeleteItem"))?;
            return self.apply_pending(&folded).await;
        }
        Err(StoreError::Contention("making a provider id an alias of a reply"))
    }

    /// A new attempt at a reply whose last one `failed` or is `unknown`, asked for by an agent:
    /// its entry goes back to `queued` with the next attempt number, and the job to queue for
    /// it is returned. `customer` must be the reply's customer's group.
    pub async fn retry_send(
        &self,
        customer: &CustomerId,
        reply: &InteractionId,
        at: DateTime<Utc>,
    ) -> Result<(SendJob, CustomerId, Interaction), StoreError> {
        let not_found = || StoreError::NotFound(format!("message {reply}"));
        for _ in 0..3 {
            let marker = self.get(keys::interaction(reply), true).await?.ok_or_else(not_found)?;
            let job = optional_string_attr(&marker, "send_job").ok_or_else(not_found)?;
            let mut job = SendJob::from_json(&job).map_err(|e| StoreError::Corrupt(format!("send job: {e}")))?;
            let owner: CustomerId = id_attr(&marker, "customer_id")?;
            if self.resolve_root(&owner).await? != self.resolve_root(customer).await? {
                return Err(not_found());
            }
            let sk = string_attr(&marker, "timeline_sk")?;
            let entry_key = (keys::customer_pk(&owner), sk);
            let item = self.get(entry_key.clone(), true).await?.ok_or_else(not_found)?;
            let mut entry = stored_interaction(item)?;
            let delivery = entry.delivery.clone().ok_or_else(not_found)?;
            let Some(next) = delivery.retried(at) else {
                return Err(StoreError::NotRetryable(delivery.status.as_str()));
            };
            if self.replace_delivery(&entry_key, &delivery, &next).await? {
                job.attempt = next.attempt;
                entry.delivery = Some(next);
                return Ok((job, owner, entry));
            }
        }
        Err(StoreError::Contention("retrying a message"))
    }
}
