//! The append-only ledger: every merge, unmerge, decision and erasure, with its actor, kept in
//! the ledger of each customer it names.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use throughline_model::{LedgerEntryId, MergeId, SuggestionId};

use crate::items::{Expr, json_attr, key_item, keys, to_json, tx_put};
use crate::{Actor, CustomerId, StoreError, TimelineStore};

throughline_model::wire_enum! {
    /// What a ledger fact records.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum LedgerAction {
        /// One group merged into another (by an agent, an accepted suggestion or verified
        /// evidence).
        Merge = "merge",
        /// A merge undone.
        Unmerge = "unmerge",
        /// An agent rejected a link suggestion (accepting one is a `Merge`).
        SuggestionRejected = "suggestion_rejected",
        /// A conversation split at an interaction.
        ConversationSplit = "conversation_split",
        /// Conversations joined into the first one named.
        ConversationJoin = "conversation_join",
        /// A conversation resolved (with its confirmed reasons).
        ConversationResolved = "conversation_resolved",
        /// A resolved conversation opened again by an agent.
        ConversationReopened = "conversation_reopened",
        /// A conversation assigned (to `assignee`, or to nobody).
        ConversationAssigned = "conversation_assigned",
        /// A conversation's confirmed reasons set.
        ConversationReasons = "conversation_reasons",
        /// A customer's company attributes set (the keys in `attribute_keys`).
        AttributesSet = "attributes_set",
        /// A group erased: appended to each member's ledger, as the actor who asked.
        Erase = "erase",
    }
}

/// One fact of the append-only ledger: who did what, when, why, to which identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// `lg_` and a ULID: entries sort by time.
    pub entry_id: LedgerEntryId,
    /// What it records.
    pub action: LedgerAction,
    /// When the change was made (the store's clock).
    pub at: DateTime<Utc>,
    /// Who: `Actor::who` (an IAM ARN, or a system name such as `VERIFIED_EVIDENCE_ACTOR`).
    pub actor: String,
    /// The actor's IAM principal id, when an API caller (its ARN's session name is the caller's
    /// choice; this id is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_principal_id: Option<String>,
    /// Why, in the actor's words; removed by redaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The merge made (`Merge`) or undone (`Unmerge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_id: Option<MergeId>,
    /// The merged (absorbed) customer, for merges and unmerges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<CustomerId>,
    /// The surviving customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<CustomerId>,
    /// Identifier keys involved: those a merge moved (the absorbed group's owned ones, or the
    /// accepted suggestion's), a rejected suggestion's; removed by redaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<String>,
    /// The suggestion accepted (`Merge`) or rejected; removed by redaction (it is derived from
    /// an identifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion_id: Option<SuggestionId>,
    /// Conversation ids: the one split then the new one, or those joined (the kept one first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversations: Vec<String>,
    /// Reason codes: a conversation's confirmed reasons after the change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason_codes: Vec<String>,
    /// The principal a conversation was assigned to (`ConversationAssigned`; none: unassigned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// The company attributes a change set (their keys; the values stay off the ledger).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_keys: Vec<String>,
    /// Set when a customer it names was erased: identifiers and reason are gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl LedgerEntry {
    pub(crate) fn new(action: LedgerAction, actor: &Actor) -> Self {
        Self {
            entry_id: LedgerEntryId::generate(),
            action,
            at: Utc::now(),
            actor: actor.who.clone(),
            actor_principal_id: actor.principal_id.clone(),
            reason: actor.reason.clone(),
            merge_id: None,
            source: None,
            target: None,
            identifiers: Vec::new(),
            suggestion_id: None,
            conversations: Vec::new(),
            reason_codes: Vec::new(),
            assignee: None,
            attribute_keys: Vec::new(),
            redacted: false,
        }
    }
}

/// The entry, appended to each named customer's ledger (only if absent: append-only).
pub(crate) fn ledger_writes<'a>(
    table: &str,
    entry: &LedgerEntry,
    customers: impl IntoIterator<Item = &'a CustomerId>,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let customers: BTreeSet<&CustomerId> = customers.into_iter().collect();
    customers
        .into_iter()
        .map(|customer| {
            let mut item = key_item((keys::ledger_pk(customer), entry.entry_id.to_string()));
            item.insert("entry".into(), to_json(entry));
            tx_put(table, item, Some("attribute_not_exists(pk)"), Expr::new())
        })
        .collect()
}

impl TimelineStore {
    /// The ledger of a customer's group, newest first.
    pub async fn ledger(&self, customer: &CustomerId) -> Result<Vec<LedgerEntry>, StoreError> {
        let group = self.load_group(customer, false).await?;
        self.ledger_of(&group.ids()).await
    }

    /// One customer's own ledger, erased or not (an erased customer's ledger keeps its facts).
    pub async fn ledger_entries_of(&self, customer: &CustomerId) -> Result<Vec<LedgerEntry>, StoreError> {
        self.ledger_of(std::slice::from_ref(customer)).await
    }

    pub(crate) async fn ledger_of(&self, customers: &[CustomerId]) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut entries: BTreeMap<LedgerEntryId, LedgerEntry> = BTreeMap::new();
        for customer in customers {
            for item in self.query_prefix(&keys::ledger_pk(customer), "lg_", false).await? {
                if let Some(entry) = json_attr::<LedgerEntry>(&item, "entry")? {
                    entries.insert(entry.entry_id.clone(), entry);
                }
            }
        }
        Ok(entries.into_values().rev().collect())
    }
}
