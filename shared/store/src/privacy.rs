//! Data-subject requests: everything held on a customer as one document, and erasure.
//!
//! Erasure covers the whole group (the person the agent sees), in an order that keeps late
//! deliveries out: (1) every profile becomes a tombstone (`erased_at`, nothing personal), so
//! no ingestion transaction can commit against it; (2) every interaction's marker is marked
//! erased, so a provider retry or SQS redelivery of it is dropped (`Recorded::Erased`) instead
//! of recorded again; (3) entries, identifiers (with the handle items that routed them) and
//! suggestions are deleted; (4) ledger entries naming the customer keep who/when/what and lose
//! identifiers and reasons. Raw objects the entries name (raw mail in S3, which attachments
//! point into) are deleted, every version, just before their entries. Each erased identifier
//! is remembered for `SUPPRESSION_DAYS` by a hash (`SUPPRESSED#`), so a delivery sent before
//! the erasure that is still in flight is dropped instead of making a new customer of the
//! person.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::items::{json_attr, key_item, keys, millis, string_attr, string_value, to_json};
use crate::ledger::{LedgerAction, LedgerEntry, ledger_writes};
use crate::lifecycle::Conversation;
use crate::profiles::CustomerProfile;
use crate::suggestions::LinkSuggestion;
use throughline_model::StoredObject;

use crate::{Actor, CustomerId, StoreError, TimelineEntry, TimelineStore, dynamo, written};

/// How long an erased identifier's in-flight deliveries are dropped: longer than SQS keeps a
/// message (14 days) and than providers retry.
pub(crate) const SUPPRESSION_DAYS: i64 = 30;

/// Everything held on a customer (the API makes it one JSON document).
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// When this page was read.
    pub exported_at: DateTime<Utc>,
    /// The group's profile.
    pub profile: CustomerProfile,
    /// A page of them, newest first.
    pub interactions: Vec<TimelineEntry>,
    /// The next page's cursor (pass it back); absent on the last page.
    pub next_cursor: Option<String>,
    /// The conversations the group's root remembers (at most 50).
    pub conversations: Vec<Conversation>,
    /// The link suggestions involving any member, newest first.
    pub suggestions: Vec<LinkSuggestion>,
    /// Every member's ledger entries, newest first.
    pub ledger: Vec<LedgerEntry>,
}

/// Where an erasure stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureStatus {
    /// The erased group's root.
    pub customer_id: CustomerId,
    /// When the group was tombstoned.
    pub erased_at: DateTime<Utc>,
    /// The last step is done: nothing of the group is left and its ledgers are redacted.
    pub complete: bool,
    /// When the last step was done; absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// Items of a partition one erasure page reads and deletes.
const ERASURE_PAGE: i32 = 100;

/// What an erasure step removed, and whether the erasure is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    /// The erased group's root.
    pub customer_id: CustomerId,
    /// Every customer of the group: the root, then the other members.
    pub customers: Vec<CustomerId>,
    /// Timeline entries deleted by this step.
    pub interactions: usize,
    /// Raw objects (raw mail) deleted, every version.
    pub objects: usize,
    /// `ID#` items deleted by this step (the owned ones also suppressed and their handle items
    /// deleted).
    pub identifiers: usize,
    /// Suggestion items in the members' partitions deleted by this step (each with its copy in
    /// the other customer's partition).
    pub suggestions: usize,
    /// Entries of the members' ledgers redacted (an entry in two members' ledgers counts
    /// twice); only the last step redacts.
    pub ledger_entries_redacted: usize,
    /// When the group was tombstoned (by the erasure's first step).
    pub erased_at: DateTime<Utc>,
    /// Nothing of the group is left; else another step continues it.
    pub complete: bool,
}

impl TimelineStore {
    /// Everything held on a customer's group, its interactions a page at a time (newest
    /// first, as the timeline pages them): a customer with years of mail does not fit one
    /// answer. Follow `next_cursor` until it is absent; every page repeats the rest.
    pub async fn export(&self, customer: &CustomerId, cursor: Option<&str>) -> Result<Export, StoreError> {
        let profile = self.customer_profile(customer).await?;
        let group = self.load_group(customer, true).await?;
        let page = self
            .timeline(customer, crate::MAX_PAGE_SIZE, cursor, &Default::default())
            .await?;
        let ids = group.ids();
        Ok(Export {
            exported_at: Utc::now(),
            profile,
            interactions: page.entries,
            next_cursor: page.next_cursor,
            conversations: self
                .conversations(&group.root, true)
                .await?
                .0
                .recent
                .iter()
                .map(|record| Conversation::of(&group.root.customer, record))
                .collect(),
            suggestions: self.suggestions_of(&ids).await?,
            ledger: self.ledger_of(&ids).await?,
        })
    }

    /// Erases a customer's group, for as long as `deadline` allows. See the module
    /// documentation for the order and why. The group is tombstoned first; then its partitions
    /// are worked off a page at a time, each page's markers marked and its items deleted before
    /// the next is read, so every page is progress that stays done. A call that runs out of time
    /// returns `complete: false`; erasing the same customer again (the writer's erasure step,
    /// or the privacy officer asking again) continues where it stopped. The last step redacts
    /// the ledgers and records the erasure (once, as the actor who asked for it).
    pub async fn erase(
        &self,
        customer: &CustomerId,
        actor: &Actor,
        deadline: std::time::Instant,
    ) -> Result<Erasure, StoreError> {
        let (root, ids, erased_at) = self.tombstone_group(customer, actor).await?;
        let mut erasure = Erasure {
            customer_id: root.clone(),
            customers: ids.clone(),
            interactions: 0,
            objects: 0,
            identifiers: 0,
            suggestions: 0,
            ledger_entries_redacted: 0,
            erased_at,
            complete: false,
        };
        // Every call erases at least one page, so that steps always make progress.
        for member in &ids {
            while self.erase_page(member, erased_at, &mut erasure).await? {
                if std::time::Instant::now() >= deadline {
                    tracing::info!(customer = %root, interactions = erasure.interactions, "erasure continues in another step");
                    return Ok(erasure);
                }
            }
        }
        let tombstone = self.get(keys::profile(&root), true).await?.unwrap_or_default();
        if !tombstone.contains_key("erasure_completed_at") {
            erasure.ledger_entries_redacted = self.redact_ledger(&ids).await?;
            let requested_by = json_attr::<Actor>(&tombstone, "erasure_actor")?.unwrap_or_else(|| actor.clone());
            let mut entry = LedgerEntry::new(LedgerAction::Erase, &requested_by);
            entry.source = Some(root.clone());
            // One conditional put per ledger (a group may have more members than a transaction
            // takes items).
            for member in &ids {
                for write in ledger_writes(&self.table, &entry, [member])? {
                    self.transact(vec![write]).await?;
                }
            }
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_item(keys::profile(&root))))
                .update_expression("SET erasure_completed_at = :at")
                .expression_attribute_values(":at", string_value(millis(Utc::now())))
                .send()
                .await
                .map_err(dynamo("UpdateItem"))?;
        }
        erasure.complete = true;
        tracing::info!(customer = %root, interactions = erasure.interactions, identifiers = erasure.identifiers, "customer erased");
        Ok(erasure)
    }

    /// How the erasure of a customer stands (`StoreError::NotFound` if it was never erased).
    pub async fn erasure_status(&self, customer: &CustomerId) -> Result<ErasureStatus, StoreError> {
        let profile = self
            .profile_item(customer, true)
            .await?
            .ok_or_else(|| StoreError::CustomerNotFound(customer.to_string()))?;
        let erased_at = profile
            .erased_at
            .ok_or_else(|| StoreError::NotFound("erasure of this customer".into()))?;
        let root = profile.erased_root.clone().unwrap_or_else(|| customer.clone());
        let tombstone = self.get(keys::profile(&root), true).await?.unwrap_or_default();
        let completed_at = crate::items::time_attr(&tombstone, "erasure_completed_at")?;
        Ok(ErasureStatus {
            customer_id: root,
            erased_at,
            complete: completed_at.is_some(),
            completed_at,
        })
    }

    /// One page of a member's partition erased: its entries' markers marked erased, its owned
    /// identifiers suppressed and released, then the page's items (and the other copy of each
    /// suggestion) deleted. Reads only the attributes it needs. `false` when nothing but the
    /// profile's tombstone is left.
    async fn erase_page(
        &self,
        member: &CustomerId,
        erased_at: DateTime<Utc>,
        erasure: &mut Erasure,
    ) -> Result<bool, StoreError> {
        let pk = keys::customer_pk(member);
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", string_value(&pk))
            .projection_expression("#sk, #id, #owned, #suggestion, #raw, #attributes.#survey")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_names("#attributes", "attributes")
            .expression_attribute_names("#survey", "survey")
            .expression_attribute_names("#raw", "raw_object")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#owned", "owned")
            .expression_attribute_names("#suggestion", "suggestion")
            .consistent_read(true)
            .limit(ERASURE_PAGE)
            .send()
            .await
            .map_err(dynamo("Query"))?
            .items
            .unwrap_or_default();
        let mut markers = Vec::new();
        let mut deletions: BTreeSet<(String, String)> = BTreeSet::new();
        let mut objects: BTreeSet<StoredObject> = BTreeSet::new();
        for item in &page {
            let sk = string_attr(item, "sk")?;
            if sk == keys::PROFILE {
                continue;
            }
            if sk.starts_with(keys::TIMELINE_PREFIX) {
                markers.push(string_attr(item, "id")?);
                if let Some(raw) = item.get("raw_object") {
                    objects.insert(
                        serde_dynamo::from_attribute_value::<_, StoredObject>(raw.clone())
                            .map_err(|e| StoreError::Corrupt(format!("raw_object: {e}")))?,
                    );
                }
                // A survey sent by email or chat: its rating page item names the customer.
                if let Some(AttributeValue::M(attributes)) = item.get("attributes")
                    && let Some(AttributeValue::S(survey)) = attributes.get("survey")
                {
                    deletions.insert(keys::linked_survey(survey));
                }
                erasure.interactions += 1;
            } else if let Some(identifier) = sk.strip_prefix(keys::IDENTIFIER_PREFIX) {
                if matches!(item.get("owned"), Some(AttributeValue::Bool(true))) {
                    self.suppress(identifier, erased_at).await?;
                    self.release_handle(identifier, member).await?;
                }
                // Its watermarks name it too.
                deletions.insert(keys::watermark(identifier));
                erasure.identifiers += 1;
            } else if sk.starts_with(keys::SUGGESTION_PREFIX) {
                if let Some(suggestion) = json_attr::<LinkSuggestion>(item, "suggestion")? {
                    for party in [&suggestion.claimant, &suggestion.owner] {
                        deletions.insert(keys::suggestion(party, &suggestion.suggestion_id));
                    }
                }
                erasure.suggestions += 1;
            }
            deletions.insert((pk.clone(), sk));
        }
        if deletions.is_empty() {
            return Ok(false);
        }
        // Markers first, so that a redelivery of any of these interactions stays erased even if
        // this step stops before its entries are deleted.
        self.mark_erased(&markers, member, erased_at).await?;
        // Objects before the entries that name them: a step that stops in between finds them
        // again.
        if !objects.is_empty() {
            let s3 = self.objects.as_ref().ok_or(StoreError::Unconfigured(
                "no S3 client to delete raw mail with (with_objects)",
            ))?;
            for object in &objects {
                crate::objects::delete_every_version(s3, object).await?;
            }
            erasure.objects += objects.len();
        }
        self.delete_all(deletions.into_iter().collect()).await?;
        Ok(true)
    }

    /// Turns the group's profiles into tombstones, the root first and only if no merge or
    /// unmerge changed it since it was read (those condition on its version, so they are
    /// ordered against the erasure); the root's tombstone keeps the member list so that the
    /// erasure can be resumed. Returns the root, every member, and the erasure's time.
    async fn tombstone_group(
        &self,
        customer: &CustomerId,
        actor: &Actor,
    ) -> Result<(CustomerId, Vec<CustomerId>, DateTime<Utc>), StoreError> {
        crate::retry_optimistic("erasing a customer", |_| async move {
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
                return Ok(crate::Attempt::Done((root, ids, erased_at)));
            }
            let group = self.load_group(customer, true).await?;
            let ids = group.ids();
            let erased_at = Utc::now();
            let tombstone = |member: &CustomerId| {
                let mut item = key_item(keys::profile(member));
                item.insert("customer_id".into(), string_value(member.as_str()));
                item.insert("root".into(), string_value(member.as_str()));
                item.insert("erased_root".into(), string_value(group.root.customer.as_str()));
                item.insert("erased_at".into(), string_value(millis(erased_at)));
                item
            };
            let mut root_item = tombstone(&group.root.customer);
            // Who asked: the ledger records the erasure as theirs when its last step is done.
            root_item.insert("erasure_actor".into(), to_json(actor));
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
                return Ok(crate::Attempt::Again);
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
            Ok(crate::Attempt::Done((group.root.customer.clone(), ids, erased_at)))
        })
        .await
    }

    /// Remembers, for a while, that an identifier's customer was erased, so that deliveries
    /// sent before the erasure but still on their way (in the queue, in a provider's retries)
    /// do not make a new customer of them. Keyed by a hash of the identifier; expires after
    /// `SUPPRESSION_DAYS` (the table's TTL).
    async fn suppress(&self, identifier: &str, erased_at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut item = key_item(keys::suppressed(self.suppression_key()?, identifier));
        item.insert("erased_at".into(), string_value(millis(erased_at)));
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

    /// The markers of these interactions remember the erasure, and nothing else of them but
    /// whose they were: 25 per BatchWriteItem (a marker's other attributes, such as a pending
    /// edit's text, go with the rewrite).
    pub(crate) async fn mark_erased(
        &self,
        interaction_ids: &[String],
        customer: &CustomerId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for chunk in interaction_ids.chunks(25) {
            let requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|id| {
                    let id = throughline_model::InteractionId::try_from(id.clone())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    let mut marker = key_item(keys::interaction(&id));
                    marker.insert("customer_id".into(), string_value(customer.as_str()));
                    marker.insert("erased_at".into(), string_value(millis(at)));
                    PutRequest::builder()
                        .set_item(Some(marker))
                        .build()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            self.batch_write(requests).await?;
        }
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
            .expression_attribute_values(":c", string_value(customer.as_str()))
            .send()
            .await;
        written("DeleteItem", result).map(drop)
    }

    /// One BatchWriteItem (up to 25 requests), repeated with what DynamoDB leaves unprocessed.
    async fn batch_write(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
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
        Ok(())
    }

    /// Deletes items, 25 per BatchWriteItem, retrying what DynamoDB leaves unprocessed.
    pub(crate) async fn delete_all(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        for chunk in keys.chunks(25) {
            let requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key_item(key.clone())))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            self.batch_write(requests).await?;
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
            .set_key(Some(key_item((keys::ledger_pk(holder), entry.entry_id.to_string()))))
            .update_expression("SET #entry = :entry")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#entry", "entry")
            .expression_attribute_values(":entry", to_json(entry))
            .send()
            .await;
        written("UpdateItem", result).map(drop)
    }
}
