//! Link suggestions: "the claimant may be the owner", kept on both customers until an agent
//! accepts (a merge) or rejects (a ledger fact) it.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use throughline_model::{Evidence, IdentifierSource, MergeId, SuggestionId};

use crate::items::{Expr, json_attr, keys, string_value, to_json, tx_update};
use crate::ledger::{LedgerAction, LedgerEntry, ledger_writes};
use crate::merges::MergeRequest;
use crate::{Actor, CustomerId, StoreError, TimelineStore};

throughline_model::wire_enum! {
    /// Where a suggestion stands; also the `status` attribute conditions read.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum SuggestionStatus {
        /// Waiting for an agent's decision.
        Open = "open",
        /// Accepted: the claimant's group merged into the owner's.
        Accepted = "accepted",
        /// Rejected: the ledger keeps the decision.
        Rejected = "rejected",
    }
}

/// "The claimant may be the owner": a claimed identifier that another customer owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSuggestion {
    /// `sg_` and a hash of (claimant, owner, identifier): one suggestion per claim.
    pub suggestion_id: SuggestionId,
    /// The customer whose interaction claimed the identifier.
    pub claimant: CustomerId,
    /// The customer that owns it.
    pub owner: CustomerId,
    /// The identifier's key (`email:ada@example.com`).
    pub identifier: String,
    /// `claimed`, or `verified` when the interaction vouched for it but the owner's own
    /// evidence is weaker or the claimant is a known customer already.
    pub evidence: Evidence,
    /// Who gave the claimed identifier.
    pub source: IdentifierSource,
    /// The interaction that brought the claim.
    pub interaction_id: String,
    /// Where it stands.
    pub status: SuggestionStatus,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was accepted or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// Who accepted or rejected it (`Actor::who`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The merge its acceptance made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_id: Option<MergeId>,
}

impl TimelineStore {
    /// The link suggestions that involve a customer's group, newest first.
    pub async fn suggestions(&self, customer: &CustomerId) -> Result<Vec<LinkSuggestion>, StoreError> {
        let group = self.load_group(customer, false).await?;
        self.suggestions_of(&group.ids()).await
    }

    pub(crate) async fn suggestions_of(&self, customers: &[CustomerId]) -> Result<Vec<LinkSuggestion>, StoreError> {
        let mut found: BTreeMap<SuggestionId, LinkSuggestion> = BTreeMap::new();
        for customer in customers {
            for item in self
                .query_prefix(&keys::customer_pk(customer), keys::SUGGESTION_PREFIX, true)
                .await?
            {
                if let Some(suggestion) = json_attr::<LinkSuggestion>(&item, "suggestion")? {
                    found.insert(suggestion.suggestion_id.clone(), suggestion);
                }
            }
        }
        let mut list: Vec<LinkSuggestion> = found.into_values().collect();
        list.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(list)
    }

    pub(crate) async fn open_suggestion(
        &self,
        customer: &CustomerId,
        suggestion_id: &SuggestionId,
    ) -> Result<LinkSuggestion, StoreError> {
        let suggestion = self
            .suggestions(customer)
            .await?
            .into_iter()
            .find(|s| &s.suggestion_id == suggestion_id)
            .ok_or_else(|| StoreError::NotFound(format!("suggestion {suggestion_id}")))?;
        if suggestion.status != SuggestionStatus::Open {
            return Err(StoreError::SuggestionDecided(suggestion_id.to_string()));
        }
        Ok(suggestion)
    }

    /// Accepts a suggestion: the claimant's group merges into the owner's, in the same
    /// transaction that marks the suggestion accepted.
    pub async fn accept_suggestion(
        &self,
        customer: &CustomerId,
        suggestion_id: &SuggestionId,
        actor: &Actor,
    ) -> Result<LedgerEntry, StoreError> {
        let suggestion = self.open_suggestion(customer, suggestion_id).await?;
        let request = MergeRequest {
            source: suggestion.claimant.clone(),
            target: suggestion.owner.clone(),
            actor: actor.clone(),
        };
        self.merge_with(&request, Some(&suggestion)).await
    }

    /// Rejects a suggestion; the ledger keeps the decision.
    pub async fn reject_suggestion(
        &self,
        customer: &CustomerId,
        suggestion_id: &SuggestionId,
        actor: &Actor,
    ) -> Result<LedgerEntry, StoreError> {
        let mut suggestion = self.open_suggestion(customer, suggestion_id).await?;
        let mut entry = LedgerEntry::new(LedgerAction::SuggestionRejected, actor);
        entry.suggestion_id = Some(suggestion.suggestion_id.clone());
        entry.source = Some(suggestion.claimant.clone());
        entry.target = Some(suggestion.owner.clone());
        entry.identifiers = vec![suggestion.identifier.clone()];
        suggestion.status = SuggestionStatus::Rejected;
        suggestion.decided_at = Some(entry.at);
        suggestion.decided_by = Some(actor.who.clone());
        let mut writes = suggestion_writes(&self.table, &suggestion)?;
        writes.extend(ledger_writes(
            &self.table,
            &entry,
            [&suggestion.claimant, &suggestion.owner],
        )?);
        if self.transact(writes).await? {
            return Ok(entry);
        }
        // Decided meanwhile (409), or a concurrent transaction (retry later).
        self.open_suggestion(customer, suggestion_id).await?;
        Err(StoreError::Contention("rejecting a suggestion"))
    }
}

/// Both copies of a suggestion, decided, only if still open.
pub(crate) fn suggestion_writes(
    table: &str,
    suggestion: &LinkSuggestion,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let status = suggestion.status.as_str();
    [&suggestion.claimant, &suggestion.owner]
        .into_iter()
        .map(|customer| {
            tx_update(
                table,
                keys::suggestion(customer, &suggestion.suggestion_id),
                "SET #status = :status, suggestion = :suggestion",
                Some("#status = :open"),
                Expr::new()
                    .name("#status", "status")
                    .value(":status", string_value(status))
                    .value(":open", string_value(SuggestionStatus::Open.as_str()))
                    .value(":suggestion", to_json(suggestion)),
            )
        })
        .collect()
}
