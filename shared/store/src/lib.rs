//! The timeline store: one DynamoDB table holding customers, the handles that identify them,
//! and each customer's timeline. All reads and writes of that table go through `TimelineStore`.
//!
//! Items (`pk`, `sk`):
//! - `HANDLE#<handle key>`, `HANDLE` → which customer a handle belongs to (one GetItem).
//! - `CUSTOMER#<id>`, `PROFILE` → the customer.
//! - `CUSTOMER#<id>`, `TL#<occurred_at>#<interaction id>` → one timeline entry; a Query on the
//!   customer's partition, newest first, pages the timeline.
//! - `INTERACTION#<id>`, `INTERACTION` → where an interaction was recorded; its conditional put
//!   is what makes every retry and redelivery a no-op. A deletion that arrives before its
//!   interaction leaves this item as a tombstone (`deleted_at`, no `timeline_sk`).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use throughline_model::{Change, Evidence, Handle, Interaction, InteractionId, InteractionUpdate};

type Item = HashMap<String, AttributeValue>;

/// Largest timeline page a caller may ask for.
pub const MAX_PAGE_SIZE: i32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB {operation} failed: {message}")]
    Dynamo { operation: &'static str, message: String },
    #[error("stored item is not valid: {0}")]
    Corrupt(String),
    #[error("cursor is not valid")]
    BadCursor,
}

fn dynamo<E: std::error::Error + 'static>(operation: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Dynamo {
        operation,
        message: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
    }
}

/// A customer: `cus_` and a ULID, so ids sort by creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CustomerId(String);

impl CustomerId {
    fn generate() -> Self {
        Self(format!("cus_{}", ulid::Ulid::new().to_string().to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CustomerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `record` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// First time this interaction was seen: now on the customer's timeline.
    New { customer: CustomerId },
    /// Seen before (a retry or a redelivery): the timeline already has it.
    Duplicate { customer: CustomerId },
}

impl Recorded {
    pub fn customer(&self) -> &CustomerId {
        match self {
            Recorded::New { customer } | Recorded::Duplicate { customer } => customer,
        }
    }
}

/// What `apply` did with an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The interaction's timeline entry now carries the change.
    Updated { customer: CustomerId },
    /// Not recorded (yet): kept as a tombstone that the interaction gets if it ever arrives.
    Pending,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimelinePage {
    /// Newest first.
    pub entries: Vec<Interaction>,
    /// Pass back to get the next (older) page; `None` on the last page.
    pub next_cursor: Option<String>,
}

mod keys {
    use super::*;

    pub fn handle(handle: &Handle) -> (String, String) {
        (format!("HANDLE#{}", handle.key()), "HANDLE".into())
    }
    pub fn customer_pk(customer: &CustomerId) -> String {
        format!("CUSTOMER#{customer}")
    }
    pub const PROFILE: &str = "PROFILE";
    pub const TIMELINE_PREFIX: &str = "TL#";
    /// Fixed-width UTC time so that string order is time order.
    pub fn timeline_sk(occurred_at: DateTime<Utc>, id: &InteractionId) -> String {
        format!(
            "{TIMELINE_PREFIX}{}#{id}",
            occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true)
        )
    }
    pub fn interaction(id: &InteractionId) -> (String, String) {
        (format!("INTERACTION#{id}"), "INTERACTION".into())
    }
    /// `REPLAY#` items are the only ones a webhook function may touch (IAM `LeadingKeys`).
    pub fn replay(namespace: &str, value: &str) -> (String, String) {
        (format!("{REPLAY_PREFIX}{namespace}#{value}"), "REPLAY".into())
    }
    pub const REPLAY_PREFIX: &str = "REPLAY#";
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key_item(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// DynamoDB refused a write because its condition did not hold.
fn is_conditional_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// Fixed-width UTC time (milliseconds), as stored on markers.
fn millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn time_attr(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    optional_string_attr(item, name)
        .map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.to_utc())
                .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not a time")))
        })
        .transpose()
}

/// Changes that reached an interaction's marker before the interaction itself.
#[derive(Debug, Default)]
struct Pending {
    deleted_at: Option<DateTime<Utc>>,
    edit: Option<(DateTime<Utc>, Option<String>)>,
}

impl Pending {
    fn from_marker(marker: &Item) -> Result<Self, StoreError> {
        Ok(Self {
            deleted_at: time_attr(marker, "deleted_at")?,
            edit: time_attr(marker, "edited_at")?.map(|at| (at, optional_string_attr(marker, "edited_text"))),
        })
    }

    fn applied_to(&self, interaction: &Interaction) -> Interaction {
        let mut entry = interaction.clone();
        if self.deleted_at.is_some() {
            entry.deleted_at = self.deleted_at;
        }
        if let Some((at, text)) = &self.edit {
            entry.apply_edit(text.clone(), *at);
        }
        entry
    }
}

fn handle_item(handle: &Handle, customer: &CustomerId, now: &str) -> Item {
    let (pk, sk) = keys::handle(handle);
    let mut item = key_item(pk, sk);
    item.insert("customer_id".into(), s(customer.as_str()));
    item.insert("created_at".into(), s(now));
    item
}

fn optional_string_attr(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn string_attr(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Corrupt(format!("attribute {name} missing or not a string"))),
    }
}

#[derive(Debug, Clone)]
pub struct TimelineStore {
    client: Client,
    table: String,
}

impl TimelineStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Records an interaction on its customer's timeline exactly once, whatever the number of
    /// deliveries. Safe to run concurrently for the same interaction or the same new handle.
    pub async fn record(&self, interaction: &Interaction) -> Result<Recorded, StoreError> {
        let verified: Vec<&Handle> = interaction
            .identities
            .iter()
            .filter(|i| i.evidence == Evidence::Verified)
            .map(|i| &i.handle)
            .collect();
        let customer = self.resolve_customer_with(&interaction.customer, &verified).await?;
        let sk = keys::timeline_sk(interaction.occurred_at, &interaction.id);
        let (marker_pk, marker_sk) = keys::interaction(&interaction.id);

        let mut marker = key_item(marker_pk.clone(), marker_sk.clone());
        marker.insert("customer_id".into(), s(customer.as_str()));
        marker.insert("timeline_sk".into(), s(&sk));
        let claimed = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(marker))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match claimed {
            Ok(_) => {
                self.put_entry(&customer, &sk, interaction, false).await?;
                return Ok(Recorded::New { customer });
            }
            Err(e) if is_conditional_failure(&e) => {}
            Err(e) => return Err(dynamo("PutItem")(e)),
        }

        // The marker exists: either a delivery before this one, or a change (deletion, edit)
        // that arrived before the interaction it changes (providers do not deliver in order).
        let existing = self
            .get(marker_pk.clone(), marker_sk.clone(), true)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("interaction marker {} vanished", interaction.id)))?;
        if existing.contains_key("timeline_sk") {
            // Seen before. Make sure the entry exists where the first delivery put it (that
            // delivery may have stopped between its two writes), without overwriting it.
            let first_customer = CustomerId(string_attr(&existing, "customer_id")?);
            let first_sk = string_attr(&existing, "timeline_sk")?;
            let entry = Pending::from_marker(&existing)?.applied_to(interaction);
            self.put_entry(&first_customer, &first_sk, &entry, true).await?;
            return Ok(Recorded::Duplicate {
                customer: first_customer,
            });
        }
        // Changed before it arrived: claim the tombstone for this position. The claim returns
        // the marker as it is at that instant, so no change written before it is missed; a
        // change written after it sees `timeline_sk` and goes to the entry.
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(marker_pk, marker_sk)))
            .update_expression("SET customer_id = :c, timeline_sk = :sk")
            .condition_expression("attribute_not_exists(timeline_sk)")
            .expression_attribute_values(":c", s(customer.as_str()))
            .expression_attribute_values(":sk", s(&sk))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match claimed {
            Ok(output) => {
                let marker = output.attributes.unwrap_or_default();
                let entry = Pending::from_marker(&marker)?.applied_to(interaction);
                self.put_entry(&customer, &sk, &entry, false).await?;
                Ok(Recorded::New { customer })
            }
            // Another delivery claimed it a moment ago: this one is its duplicate.
            Err(e) if is_conditional_failure(&e) => Box::pin(self.record(interaction)).await,
            Err(e) => Err(dynamo("UpdateItem")(e)),
        }
    }

    /// Applies an update (a deletion or an edit) to an interaction's timeline entry. An update
    /// for an interaction not recorded yet is kept on its marker, and its arrival honours it.
    /// Idempotent; of two edits, the later (by provider time) wins whatever their order.
    pub async fn apply(&self, update: &InteractionUpdate) -> Result<Applied, StoreError> {
        let (pk, sk) = keys::interaction(&update.interaction_id);
        let marker = self.get(pk.clone(), sk.clone(), true).await?;
        if let Some(marker) = marker.as_ref().filter(|m| m.contains_key("timeline_sk")) {
            return self.change_entry(marker, update).await;
        }
        let pending = marker
            .as_ref()
            .map(Pending::from_marker)
            .transpose()?
            .unwrap_or_default();
        let at = millis(update.at);
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(pk, sk)));
        let written = match &update.change {
            Change::Deleted => request
                .update_expression("SET deleted_at = if_not_exists(deleted_at, :at)")
                .expression_attribute_values(":at", s(&at))
                .send()
                .await
                .map(drop),
            Change::Edited { .. } if pending.edit.as_ref().is_some_and(|(t, _)| *t > update.at) => Ok(()),
            Change::Edited { text } => {
                // Written only if no other edit landed since the read (else start over).
                let request = match marker.as_ref().and_then(|m| m.get("edited_at")) {
                    Some(previous) => request
                        .condition_expression("edited_at = :previous")
                        .expression_attribute_values(":previous", previous.clone()),
                    None => request.condition_expression("attribute_not_exists(edited_at)"),
                };
                let request = match text {
                    Some(text) => request
                        .update_expression("SET edited_at = :at, edited_text = :text")
                        .expression_attribute_values(":text", s(text)),
                    None => request.update_expression("SET edited_at = :at REMOVE edited_text"),
                };
                match request.expression_attribute_values(":at", s(&at)).send().await {
                    Ok(_) => Ok(()),
                    // Another change landed on the marker meanwhile: start over from it.
                    Err(e) if is_conditional_failure(&e) => return Box::pin(self.apply(update)).await,
                    Err(e) => Err(e),
                }
            }
        };
        written.map_err(dynamo("UpdateItem"))?;
        // Recorded between our read and write? Then its entry must get the change too.
        let (pk, sk) = keys::interaction(&update.interaction_id);
        match self.get(pk, sk, true).await?.filter(|m| m.contains_key("timeline_sk")) {
            Some(marker) => self.change_entry(&marker, update).await,
            None => Ok(Applied::Pending),
        }
    }

    async fn change_entry(&self, marker: &Item, update: &InteractionUpdate) -> Result<Applied, StoreError> {
        let customer = CustomerId(string_attr(marker, "customer_id")?);
        let (entry_pk, entry_sk) = (keys::customer_pk(&customer), string_attr(marker, "timeline_sk")?);
        // The marker exists but its entry not yet (a writer stopped between the two writes):
        // fail, so the update is retried after the interaction's redelivery repairs it.
        let not_written = || StoreError::Dynamo {
            operation: "UpdateItem",
            message: "timeline entry not written yet".into(),
        };
        let text = match &update.change {
            Change::Deleted => {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_item(entry_pk, entry_sk)))
                    .update_expression("SET deleted_at = if_not_exists(deleted_at, :at)")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":at", s(millis(update.at)))
                    .send()
                    .await;
                return match result {
                    Ok(_) => Ok(Applied::Updated { customer }),
                    Err(e) if is_conditional_failure(&e) => Err(not_written()),
                    Err(e) => Err(dynamo("UpdateItem")(e)),
                };
            }
            Change::Edited { text } => text,
        };
        // An edit rewrites the entry's text: read it, change it, write it back only if no other
        // edit got there first (then start over).
        let item = self
            .get(entry_pk.clone(), entry_sk.clone(), true)
            .await?
            .ok_or_else(not_written)?;
        let mut entry: Interaction =
            serde_dynamo::from_item(item.clone()).map_err(|e| StoreError::Corrupt(format!("timeline entry: {e}")))?;
        if entry.edited_at.is_some_and(|t| t > update.at) {
            return Ok(Applied::Updated { customer });
        }
        entry.apply_edit(text.clone(), update.at);
        let mut replacement: Item =
            serde_dynamo::to_item(&entry).map_err(|e| StoreError::Corrupt(format!("serialize: {e}")))?;
        replacement.extend(key_item(entry_pk, entry_sk));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(replacement));
        let put = match item.get("edited_at") {
            Some(previous) => put
                .condition_expression("edited_at = :previous")
                .expression_attribute_values(":previous", previous.clone()),
            None => put.condition_expression("attribute_exists(pk) AND attribute_not_exists(edited_at)"),
        };
        match put.send().await {
            Ok(_) => Ok(Applied::Updated { customer }),
            Err(e) if is_conditional_failure(&e) => Box::pin(self.change_entry(marker, update)).await,
            Err(e) => Err(dynamo("PutItem")(e)),
        }
    }

    async fn put_entry(
        &self,
        customer: &CustomerId,
        sk: &str,
        interaction: &Interaction,
        only_if_absent: bool,
    ) -> Result<(), StoreError> {
        let mut item: Item =
            serde_dynamo::to_item(interaction).map_err(|e| StoreError::Corrupt(format!("serialize: {e}")))?;
        item.insert("pk".into(), s(keys::customer_pk(customer)));
        item.insert("sk".into(), s(sk));
        let mut put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        if only_if_absent {
            put = put.condition_expression("attribute_not_exists(pk)");
        }
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if only_if_absent && is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(dynamo("PutItem")(e)),
        }
    }

    /// The customer a handle belongs to, creating the customer on first sight.
    pub async fn resolve_customer(&self, handle: &Handle) -> Result<CustomerId, StoreError> {
        self.resolve_customer_with(handle, &[]).await
    }

    /// The customer a handle belongs to, given `verified` further identifiers that the provider
    /// or the company vouches for (never mere claims). An unknown handle joins the customer of
    /// the first known verified identifier, or else a new customer is created with all of them;
    /// verified identifiers not known yet are attached to the customer. One that already belongs
    /// to another customer stays there: joining two customers is a merge, not a side effect.
    ///
    /// Race-safe: every handle item is written only if absent, so two writers that see a new
    /// handle at once cannot give it two customers; the loser re-reads and adopts the winner's.
    pub async fn resolve_customer_with(&self, handle: &Handle, verified: &[&Handle]) -> Result<CustomerId, StoreError> {
        let mut consistent = false;
        for _ in 0..3 {
            let own = self.customer_for(handle, consistent).await?;
            if let Some(customer) = own.as_ref().filter(|_| verified.is_empty()) {
                return Ok(customer.clone());
            }
            let mut linked = None;
            let mut unknown = Vec::new();
            for other in verified.iter().copied().filter(|h| *h != handle) {
                match self.customer_for(other, consistent).await? {
                    Some(customer) => {
                        linked.get_or_insert(customer);
                    }
                    None if !unknown.contains(&other) => unknown.push(other),
                    None => {}
                }
            }
            let customer = match (own, linked) {
                (Some(customer), _) => customer,
                (None, Some(customer)) => self.attach(handle, &customer).await?,
                (None, None) => match self.create_customer(handle, &unknown).await? {
                    Some(customer) => return Ok(customer),
                    None => {
                        // Another writer created one of these handles first: read again.
                        consistent = true;
                        continue;
                    }
                },
            };
            for other in unknown {
                self.attach(other, &customer).await?;
            }
            return Ok(customer);
        }
        Err(StoreError::Dynamo {
            operation: "TransactWriteItems",
            message: "customer resolution kept conflicting with other writers".into(),
        })
    }

    /// Creates a customer owning `handle` and `more`, in one transaction; `None` when one of the
    /// handles got a customer meanwhile.
    async fn create_customer(&self, handle: &Handle, more: &[&Handle]) -> Result<Option<CustomerId>, StoreError> {
        let customer = CustomerId::generate();
        let now = millis(Utc::now());
        let mut profile = key_item(keys::customer_pk(&customer), keys::PROFILE.into());
        profile.insert("customer_id".into(), s(customer.as_str()));
        profile.insert("created_at".into(), s(&now));
        profile.insert("first_handle".into(), s(handle.key()));

        let put = |item: Item| -> Result<TransactWriteItem, StoreError> {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let mut transaction = self.client.transact_write_items().transact_items(put(profile)?);
        for owned in std::iter::once(handle).chain(more.iter().copied()) {
            transaction = transaction.transact_items(put(handle_item(owned, &customer, &now))?);
        }
        match transaction.send().await {
            Ok(_) => Ok(Some(customer)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(dynamo("TransactWriteItems")(e)),
        }
    }

    /// Gives `handle` to `customer` unless it has a customer already; returns the handle's
    /// customer either way.
    async fn attach(&self, handle: &Handle, customer: &CustomerId) -> Result<CustomerId, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(handle_item(handle, customer, &millis(Utc::now()))))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(customer.clone()),
            Err(e) if is_conditional_failure(&e) => self
                .customer_for(handle, true)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("handle {} vanished", handle.key()))),
            Err(e) => Err(dynamo("PutItem")(e)),
        }
    }

    /// Whether a one-time value (a webhook's replay token) was remembered before.
    pub async fn was_seen(&self, namespace: &str, value: &str) -> Result<bool, StoreError> {
        let (pk, sk) = keys::replay(namespace, value);
        Ok(self.get(pk, sk, true).await?.is_some())
    }

    /// Remembers a one-time value until `until` (the table's TTL then removes it). `false` when
    /// it was remembered already.
    pub async fn remember(&self, namespace: &str, value: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let (pk, sk) = keys::replay(namespace, value);
        let mut item = key_item(pk, sk);
        item.insert("expires_at".into(), AttributeValue::N(until.timestamp().to_string()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(dynamo("PutItem")(e)),
        }
    }

    /// The customer a handle belongs to, if any.
    pub async fn customer_for(&self, handle: &Handle, consistent: bool) -> Result<Option<CustomerId>, StoreError> {
        let (pk, sk) = keys::handle(handle);
        match self.get(pk, sk, consistent).await? {
            Some(item) => Ok(Some(CustomerId(string_attr(&item, "customer_id")?))),
            None => Ok(None),
        }
    }

    async fn get(&self, pk: String, sk: String, consistent: bool) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(pk, sk)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(dynamo("GetItem"))?;
        Ok(output.item)
    }

    /// One page of a customer's timeline, newest first, in one Query.
    pub async fn timeline(
        &self,
        customer: &CustomerId,
        page_size: i32,
        cursor: Option<&str>,
    ) -> Result<TimelinePage, StoreError> {
        let pk = keys::customer_pk(customer);
        let start = cursor
            .map(|c| decode_cursor(c).map(|sk| key_item(pk.clone(), sk)))
            .transpose()?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :tl)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":tl", s(keys::TIMELINE_PREFIX))
            .scan_index_forward(false)
            .limit(page_size.clamp(1, MAX_PAGE_SIZE))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(dynamo("Query"))?;
        let entries = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(format!("timeline entry: {e}"))))
            .collect::<Result<Vec<Interaction>, _>>()?;
        let next_cursor = match output.last_evaluated_key {
            Some(key) => Some(encode_cursor(&string_attr(&key, "sk")?)),
            None => None,
        };
        Ok(TimelinePage { entries, next_cursor })
    }

    /// Every customer id, oldest first. A full-table scan: for the local stack and small
    /// tables only; agents look customers up by handle.
    pub async fn all_customers(&self) -> Result<Vec<CustomerId>, StoreError> {
        let mut customers = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :profile")
                .expression_attribute_values(":profile", s(keys::PROFILE))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(dynamo("Scan"))?;
            for item in output.items.unwrap_or_default() {
                customers.push(CustomerId(string_attr(&item, "customer_id")?));
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        customers.sort();
        Ok(customers)
    }
}

fn encode_cursor(sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(sk)
}

fn decode_cursor(cursor: &str) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let sk = String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)?;
    if sk.starts_with(keys::TIMELINE_PREFIX) {
        Ok(sk)
    } else {
        Err(StoreError::BadCursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_sort_keys_order_by_time() {
        let id = InteractionId::try_from(format!("ix_{}", "0".repeat(32))).unwrap();
        let t1 = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().to_utc();
        let t2 = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.5Z").unwrap().to_utc();
        let t3 = DateTime::parse_from_rfc3339("2026-10-02T03:04:05Z").unwrap().to_utc();
        let (a, b, c) = (
            keys::timeline_sk(t1, &id),
            keys::timeline_sk(t2, &id),
            keys::timeline_sk(t3, &id),
        );
        assert_eq!(a, format!("TL#2026-01-02T03:04:05.000Z#{id}"));
        assert!(a < b && b < c);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let sk = "TL#2026-01-02T03:04:05.000Z#ix_0";
        assert_eq!(decode_cursor(&encode_cursor(sk)).unwrap(), sk);
        assert!(matches!(decode_cursor("!!"), Err(StoreError::BadCursor)));
        assert!(matches!(
            decode_cursor(&encode_cursor("HANDLE#x")),
            Err(StoreError::BadCursor)
        ));
    }
}
