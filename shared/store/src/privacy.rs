//! Data-subject requests: everything held on a customer as one document, and erasure.
//!
//! Erasure covers the whole group (the person the agent sees), in an order that keeps late
//! deliveries out: (1) every profile becomes a tombstone (`erased_at`, nothing personal), so
//! no ingestion transaction can commit against it; (2) every interaction's marker is marked
//! erased, so a provider retry or SQS redelivery of it is dropped (`Recorded::Erased`) instead
//! of recorded again; (3) entries, identifiers (with the handle items that routed them) and
//! suggestions are deleted; (4) ledger entries naming the customer keep who/when/what and lose
//! identifiers and reasons. Each erased identifier is remembered for `SUPPRESSION_DAYS` by a hash
//! (`SUPPRESSED#`), so a delivery sent before the erasure that is still in flight is dropped
//! instead of making a new customer of the person.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::conversation::ConversationRecord;
use crate::groups::{CustomerProfile, LedgerAction, LedgerEntry, LinkSuggestion};
use crate::items::{json_attr, key_item, keys, millis, s, string_attr, to_json};
use crate::{Actor, CustomerId, StoreError, TimelineEntry, TimelineStore, dynamo, written};

/// How long an erased identifier's in-flight deliveries are dropped: longer than SQS keeps a
/// message (14 days) and than providers retry.
pub const SUPPRESSION_DAYS: i64 = 30;

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
    /// Erasing an erased customer runs the clean-up again (an erasure interrupted half-way is
    /// finished by asking again) and reports what it removed this time.
    pub async fn erase(&self, customer: &CustomerId, actor: &Actor) -> Result<Erasure, StoreError> {
        let (root, ids, erased_at) = self.tombstone_group(customer).await?;
        let (mut interactions, mut identifiers, mut suggestions) = (0, 0, 0);
        let mut deletions: Vec<(String, String)> = Vec::new();
        for member in &ids {
            let pk = keys::customer_pk(member);
            for item in self.query_prefix(&pk, "", true).await? {
                let sk = string_attr(&item, "sk")?;
                if sk.starts_with(keys::TIMELINE_PREFIX) {
                    let id = string_attr(&item, "id")?;
                    self.mark_erased(&id, erased_at).await?;
                    interactions += 1;
                } else if let Some(identifier) = sk.strip_prefix(keys::IDENTIFIER_PREFIX) {
                    if matches!(
                        item.get("owned"),
                        Some(aws_sdk_dynamodb::types::AttributeValue::Bool(true))
                    ) {
                        self.suppress(identifier, erased_at).await?;
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
                principal_id: actor.principal_id.clone(),
                // The erasure's justification (a request reference), kept with the fact.
                reason: actor.reason.clone(),
            },
        );
        entry.source = Some(root.clone());
        // One conditional put per ledger (a group may have more members than a transaction
        // takes items).
        for member in &ids {
            for write in self.ledger_writes(&entry, [member])? {
                self.transact(vec![write]).await?;
            }
        }
        tracing::info!(customer = %root, interactions, identifiers, "customer erased");
        Ok(Erasure {
            customer_id: root,
            customers: ids,
            interactions,
            identifiers,
            suggestions,
            ledger_entries_redacted,
            erased_at,
        })
    }

    /// Turns the group's profiles into tombstones, the root first and only if no merge or
    /// unmerge changed it since it was read (those condition on its version, so they are
    /// ordered against the erasure); the root's tombstone keeps the member list so that the
    /// erasure can be resumed. Returns the root, every member, and the erasure's time.
    async fn tombstone_group(
        &self,
        customer: &CustomerId,
    ) -> Result<(CustomerId, Vec<CustomerId>, DateTime<Utc>), StoreError> {
        for attempt in 0..crate::ATTEMPTS {
            if let Some(profile) = self.profile_item(customer, true).await?
                && let Some(erased_at) = profile.erased_at
            {
                // Erased before (or half-way): the same group again.
                let root = profile.erased_root.clone().unwrap_or_else(|| customer.clone());
                let members = match self.profile_item(&root, true).await? {
                    Some(root_profile) => root_profile.erased_members.clone(),
                    None => Vec::new(),
                };
                let mut ids = vec![root.clone()];
                ids.extend(members.into_iter().filter(|m| m != &root));
                if !ids.contains(customer) {
                    ids.push(customer.clone());
                }
                return Ok((root, ids, erased_at));
            }
            let group = self.load_group(customer, true).await?;
            let ids = group.ids();
            let erased_at = Utc::now();
            let tombstone = |member: &CustomerId| {
                let mut item = key_item(keys::profile(member));
                item.insert("customer_id".into(), s(member.as_str()));
                item.insert("root".into(), s(member.as_str()));
                item.insert("erased_root".into(), s(group.root.customer.as_str()));
                item.insert("erased_at".into(), s(millis(erased_at)));
                item
            };
            let mut root_item = tombstone(&group.root.customer);
            root_item.insert(
                "erased_members".into(),
                aws_sdk_dynamodb::types::AttributeValue::Ss(ids.iter().map(|c| c.to_string()).collect()),
            );
            let (condition, expr) = group.root.unchanged(crate::items::Expr::new());
            let root_written = crate::written(
                "PutItem",
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(root_item))
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(expr.names))
                    .set_expression_attribute_values(Some(expr.values))
                    .send()
                    .await,
            )?;
            if !root_written {
                crate::backoff(attempt + 1).await;
                continue;
            }
            for member in &group.members {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(tombstone(&member.customer)))
                    .send()
                    .await
                    .map_err(dynamo("PutItem"))?;
            }
            return Ok((group.root.customer.clone(), ids, erased_at));
        }
        Err(StoreError::Contention("erasing a customer"))
    }

    /// Remembers, for a while, that an identifier's customer was erased, so that deliveries
    /// sent before the erasure but still on their way (in the queue, in a provider's retries)
    /// do not make a new customer of them. Keyed by a hash of the identifier; expires after
    /// `SUPPRESSION_DAYS` (the table's TTL).
    async fn suppress(&self, identifier: &str, erased_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = key_item(keys::suppressed(self.suppression_key()?, identifier));
        item.insert("erased_at".into(), s(millis(erased_at)));
        item.insert(
            "expires_at".into(),
            aws_sdk_dynamodb::types::AttributeValue::N(
                (erased_at + chrono::TimeDelta::days(SUPPRESSION_DAYS))
                    .timestamp()
                    .to_string(),
            ),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(dynamo("PutItem"))?;
        Ok(())
    }

    /// When the customer of an identifier was erased, if within the suppression period.
    pub(crate) async fn suppressed_since(
        &self,
        handle: &throughline_model::Handle,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self
            .get(keys::suppressed(self.suppression_key()?, &handle.key()), false)
            .await?
        {
            Some(item) => crate::items::time_attr(&item, "erased_at"),
            None => Ok(None),
        }
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
    pub(crate) async fn release_handle(&self, identifier: &str, customer: &CustomerId) -> Result<(), StoreError> {
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
                // Derived from an identifier: a dictionary could reverse it.
                entry.suggestion_id = None;
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
