//! Data-subject requests: everything held on a customer as one document, and erasure.
//!
//! Erasure covers the whole group (the person the agent sees), in an order that keeps late
//! deliveries out: (1) every profile becomes a tombstone (`erased_at`, nothing personal), so
//! no ingestion transaction can commit against it; (2) every interaction's marker is marked
//! erased, so a provider retry or SQS redelivery of it is dropped (`Recorded::Erased`) instead
//! of recorded again; (3) entries, identifiers (with the handle items that routed them) and
//! suggestions are deleted; (4) ledger entries naming the customer keep who/when/what and lose
//! identifiers and reasons.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::conversation::ConversationRecord;
use crate::groups::{CustomerProfile, LedgerAction, LedgerEntry, LinkSuggestion, sort_key};
use crate::items::{json_attr, key_item, keys, millis, s, string_attr, to_json};
use crate::{Actor, CustomerId, StoreError, TimelineEntry, TimelineStore, dynamo, written};

/// Everything held on a customer, as one JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    pub exported_at: DateTime<Utc>,
    pub profile: CustomerProfile,
    /// Oldest first.
    pub interactions: Vec<TimelineEntry>,
    pub conversations: Vec<ConversationRecord>,
    pub suggestions: Vec<LinkSuggestion>,
    pub ledger: Vec<LedgerEntry>,
}

/// What an erasure removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    pub customer_id: CustomerId,
    pub customers: Vec<CustomerId>,
    pub interactions: usize,
    pub identifiers: usize,
    pub suggestions: usize,
    pub ledger_entries_redacted: usize,
    pub erased_at: DateTime<Utc>,
}

impl TimelineStore {
    /// Everything held on a customer's group.
    pub async fn export(&self, customer: &CustomerId) -> Result<Export, StoreError> {
        let profile = self.customer_profile(customer).await?;
        let group = self.load_group(customer, true).await?;
        let mut interactions: Vec<TimelineEntry> = self
            .all_entries(&group, None)
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        interactions.reverse();
        let ids = group.ids();
        Ok(Export {
            exported_at: Utc::now(),
            profile,
            interactions,
            conversations: group.root.conversation.recent.clone(),
            suggestions: self.suggestions_of(&ids).await?,
            ledger: self.ledger_of(&ids).await?,
        })
    }

    /// Erases a customer's group. See the module documentation for the order and why.
    pub async fn erase(&self, customer: &CustomerId, actor: &Actor) -> Result<Erasure, StoreError> {
        let group = self.load_group(customer, true).await?;
        let ids = group.ids();
        let erased_at = Utc::now();
        for member in &ids {
            let mut tombstone = key_item(keys::profile(member));
            tombstone.insert("customer_id".into(), s(member.as_str()));
            tombstone.insert("root".into(), s(member.as_str()));
            tombstone.insert("erased_at".into(), s(millis(erased_at)));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(tombstone))
                .send()
                .await
                .map_err(dynamo("PutItem"))?;
        }
        let (mut interactions, mut identifiers, mut suggestions) = (0, 0, 0);
        let mut deletions: Vec<(String, String)> = Vec::new();
        for member in &ids {
            let pk = keys::customer_pk(member);
            for item in self.query_prefix(&pk, "", true).await? {
                let sk = sort_key(&item)?;
                if sk.starts_with(keys::TIMELINE_PREFIX) {
                    let id = string_attr(&item, "id")?;
                    self.mark_erased(&id, erased_at).await?;
                    interactions += 1;
                } else if let Some(identifier) = sk.strip_prefix(keys::IDENTIFIER_PREFIX) {
                    if matches!(
                        item.get("owned"),
                        Some(aws_sdk_dynamodb::types::AttributeValue::Bool(true))
                    ) {
                        self.release_handle(identifier, member).await?;
                    }
                    identifiers += 1;
                } else if sk.starts_with(keys::SUGGESTION_PREFIX) {
                    if let Some(suggestion) = json_attr::<LinkSuggestion>(&item, "suggestion")? {
                        for party in [&suggestion.claimant, &suggestion.owner] {
                            deletions.push(keys::suggestion(party, &suggestion.suggestion_id));
                        }
                    }
                    suggestions += 1;
                } else if sk == keys::PROFILE {
                    continue;
                }
                deletions.push((pk.clone(), sk));
            }
        }
        let deletions: BTreeSet<(String, String)> = deletions.into_iter().collect();
        self.delete_all(deletions.into_iter().collect()).await?;
        let ledger_entries_redacted = self.redact_ledger(&ids).await?;
        let mut entry = LedgerEntry::new(
            LedgerAction::Erase,
            &Actor {
                who: actor.who.clone(),
                reason: None,
            },
        );
        entry.source = Some(group.root.customer.clone());
        let writes = self.ledger_writes(&entry, ids.iter())?;
        self.transact(writes).await?;
        tracing::info!(customer = %group.root.customer, interactions, identifiers, "customer erased");
        Ok(Erasure {
            customer_id: group.root.customer.clone(),
            customers: ids,
            interactions,
            identifiers,
            suggestions,
            ledger_entries_redacted,
            erased_at,
        })
    }

    /// The interaction's marker remembers that it was erased (and forgets any pending text).
    async fn mark_erased(&self, interaction_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let id = throughline_model::InteractionId::try_from(interaction_id.to_owned())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::interaction(&id))))
            .update_expression("SET erased_at = :at REMOVE edited_text")
            .expression_attribute_values(":at", s(millis(at)))
            .send()
            .await
            .map_err(dynamo("UpdateItem"))?;
        Ok(())
    }

    /// Deletes the handle item that routed an identifier to `customer` (if it still does).
    async fn release_handle(&self, identifier: &str, customer: &CustomerId) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::handle_key(identifier))))
            .condition_expression("customer_id = :c")
            .expression_attribute_values(":c", s(customer.as_str()))
            .send()
            .await;
        written("DeleteItem", result).map(drop)
    }

    /// Deletes items, 25 per BatchWriteItem, retrying what DynamoDB leaves unprocessed.
    async fn delete_all(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key_item(key.clone())))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            while !requests.is_empty() {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(dynamo("BatchWriteItem"))?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// Every ledger entry naming an erased customer, in every ledger that holds a copy, keeps
    /// its non-personal facts only.
    async fn redact_ledger(&self, erased: &[CustomerId]) -> Result<usize, StoreError> {
        let mut redacted = 0;
        for member in erased {
            for item in self.query_prefix(&keys::ledger_pk(member), "lg_", true).await? {
                let Some(mut entry) = json_attr::<LedgerEntry>(&item, "entry")? else {
                    continue;
                };
                entry.identifiers.clear();
                entry.reason = None;
                entry.redacted = true;
                let holders: BTreeSet<&CustomerId> = [Some(member), entry.source.as_ref(), entry.target.as_ref()]
                    .into_iter()
                    .flatten()
                    .collect();
                for holder in holders {
                    self.rewrite_ledger_copy(holder, &entry).await?;
                }
                redacted += 1;
            }
        }
        Ok(redacted)
    }

    async fn rewrite_ledger_copy(&self, holder: &CustomerId, entry: &LedgerEntry) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item((keys::ledger_pk(holder), entry.entry_id.clone()))))
            .update_expression("SET #entry = :entry")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#entry", "entry")
            .expression_attribute_values(":entry", to_json(entry))
            .send()
            .await;
        written("UpdateItem", result).map(drop)
    }
}
