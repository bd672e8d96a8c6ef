//! Customers as agents see them: a group of merged customers with one profile; merge and
//! unmerge (planned by the pure `forest`, written in one transaction each); the append-only
//! ledger; link suggestions.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use throughline_model::{Channel, Evidence, Handle};

use crate::conversation::{ConversationRecord, ConversationState};
use crate::forest::{Forest, GraphError, Plan};
use crate::items::{
    Expr, ProfileItem, json_attr, key_item, keys, millis, optional_string_attr, s, string_attr, to_json, tx_put,
    tx_update,
};
use crate::{ATTEMPTS, Actor, CustomerId, StoreError, TimelineStore, dynamo, one};

/// Most items DynamoDB takes in one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionStatus {
    Open,
    Accepted,
    Rejected,
}

impl SuggestionStatus {
    /// The wire name, also the `status` attribute conditions read.
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionStatus::Open => "open",
            SuggestionStatus::Accepted => "accepted",
            SuggestionStatus::Rejected => "rejected",
        }
    }
}

/// "The claimant may be the owner": a claimed identifier that another customer owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSuggestion {
    pub suggestion_id: String,
    /// The customer whose interaction claimed the identifier.
    pub claimant: CustomerId,
    /// The customer that owns it.
    pub owner: CustomerId,
    /// The identifier's key (`email:ada@example.com`).
    pub identifier: String,
    /// `claimed`, or `verified` when the interaction vouched for it but the owner's own
    /// evidence is weaker or the claimant is a known customer already.
    pub evidence: Evidence,
    pub source: String,
    pub interaction_id: String,
    pub status: SuggestionStatus,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerAction {
    Merge,
    Unmerge,
    SuggestionRejected,
    ConversationSplit,
    ConversationJoin,
    Erase,
}

/// One fact of the append-only ledger: who did what, when, why, to which identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// `lg_` and a ULID: entries sort by time.
    pub entry_id: String,
    pub action: LedgerAction,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// The actor's IAM principal id, when an API caller (its ARN's session name is the caller's
    /// choice; this id is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_id: Option<String>,
    /// The merged (absorbed) customer, for merges and unmerges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<CustomerId>,
    /// The surviving customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<CustomerId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversations: Vec<String>,
    /// Set when a customer it names was erased: identifiers and reason are gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl LedgerEntry {
    pub(crate) fn new(action: LedgerAction, actor: &Actor) -> Self {
        Self {
            entry_id: format!("lg_{}", ulid::Ulid::new().to_string().to_lowercase()),
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
            redacted: false,
        }
    }
}

/// An identifier on a customer's profile, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierView {
    pub identifier: String,
    /// `verified` or `claimed`.
    pub evidence: Evidence,
    pub source: String,
    /// Whether it routes this customer's interactions (claims never do).
    pub owned: bool,
    /// The group member it belongs to.
    pub customer_id: CustomerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<DateTime<Utc>>,
}

/// A customer as an agent sees it: the whole merged group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerProfile {
    /// The group's root: the id every member resolves to.
    pub customer_id: CustomerId,
    /// The customers merged into it.
    pub members: Vec<CustomerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    pub identifiers: Vec<IdentifierView>,
    pub channels: Vec<Channel>,
    pub counts: BTreeMap<String, u64>,
    pub interaction_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_conversation: Option<ConversationRecord>,
}

/// An agent's merge: `source`'s group joins `target`'s, whose root survives.
#[derive(Debug, Clone)]
pub struct MergeRequest {
    pub source: CustomerId,
    pub target: CustomerId,
    pub actor: Actor,
}

/// A group's profiles, root first.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub root: ProfileItem,
    pub members: Vec<ProfileItem>,
}

impl Group {
    pub fn ids(&self) -> Vec<CustomerId> {
        std::iter::once(&self.root)
            .chain(&self.members)
            .map(|p| p.customer.clone())
            .collect()
    }

    pub fn profiles(&self) -> impl Iterator<Item = &ProfileItem> {
        std::iter::once(&self.root).chain(&self.members)
    }
}

impl From<GraphError> for StoreError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::AlreadyMerged => StoreError::AlreadyMerged,
            GraphError::NotMerged(merge) => StoreError::NotMerged(merge.to_string()),
            GraphError::Unknown(c) => StoreError::CustomerNotFound(c.to_string()),
        }
    }
}

impl TimelineStore {
    /// A customer's group: its root's profile and every member's.
    pub(crate) async fn load_group(&self, customer: &CustomerId, consistent: bool) -> Result<Group, StoreError> {
        let profile = self
            .profile_item(customer, consistent)
            .await?
            .ok_or_else(|| StoreError::CustomerNotFound(customer.to_string()))?;
        if profile.erased_at.is_some() {
            return Err(StoreError::CustomerErased(customer.to_string()));
        }
        let root = if profile.is_root() {
            profile
        } else {
            self.profile_item(&profile.root, consistent)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("root of {customer} has no profile")))?
        };
        if root.erased_at.is_some() {
            return Err(StoreError::CustomerErased(customer.to_string()));
        }
        let members = self.profiles(&root.members, consistent).await?;
        Ok(Group { root, members })
    }

    /// Profiles by id, in one BatchGetItem per 100.
    async fn profiles(&self, ids: &BTreeSet<CustomerId>, consistent: bool) -> Result<Vec<ProfileItem>, StoreError> {
        let ids: Vec<&CustomerId> = ids.iter().collect();
        let mut profiles = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|c| key_item(keys::profile(c))).collect()))
                    .consistent_read(consistent)
                    .build()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            while let Some(keys_and_attributes) = request.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys_and_attributes)
                    .send()
                    .await
                    .map_err(dynamo("BatchGetItem"))?;
                for item in output
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    profiles.push(ProfileItem::from_item(&item)?);
                }
                request = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
            }
        }
        profiles.sort_by(|a, b| a.customer.cmp(&b.customer));
        Ok(profiles)
    }

    /// The group a customer id belongs to: its root's id.
    pub async fn resolve_root(&self, customer: &CustomerId) -> Result<CustomerId, StoreError> {
        Ok(self.load_group(customer, false).await?.root.customer)
    }

    /// The customer (group) that owns an identifier.
    pub async fn find_customer(&self, handle: &Handle) -> Result<CustomerProfile, StoreError> {
        let owner = self
            .customer_for(handle, false)
            .await?
            .ok_or_else(|| StoreError::CustomerNotFound(handle.key()))?;
        self.customer_profile(&owner).await
    }

    /// The profile of a customer's group.
    pub async fn customer_profile(&self, customer: &CustomerId) -> Result<CustomerProfile, StoreError> {
        let group = self.load_group(customer, false).await?;
        let mut identifiers = Vec::new();
        let (mut first_seen_at, mut last_seen_at) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
        for member in group.ids() {
            identifiers.extend(self.identifiers(&member).await?);
            if let Some((first, last)) = self.first_and_last_seen(&member).await? {
                first_seen_at = Some(first_seen_at.map_or(first, |t| t.min(first)));
                last_seen_at = Some(last_seen_at.map_or(last, |t| t.max(last)));
            }
        }
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut channels = BTreeSet::new();
        for profile in group.profiles() {
            for (channel, count) in &profile.counts {
                *counts.entry(channel.as_str().to_owned()).or_default() += count;
                channels.insert(channel.as_str());
            }
        }
        Ok(CustomerProfile {
            customer_id: group.root.customer.clone(),
            members: group.members.iter().map(|p| p.customer.clone()).collect(),
            created_at: group.root.created_at,
            identifiers,
            channels: channels.into_iter().filter_map(Channel::parse).collect(),
            interaction_count: counts.values().sum(),
            counts,
            first_seen_at,
            last_seen_at,
            open_conversation: group.root.conversation.open().cloned(),
        })
    }

    /// One customer's identifiers (`ID#` items).
    pub(crate) async fn identifiers(&self, customer: &CustomerId) -> Result<Vec<IdentifierView>, StoreError> {
        self.query_prefix(&keys::customer_pk(customer), keys::IDENTIFIER_PREFIX, false)
            .await?
            .iter()
            .map(|item| {
                Ok(IdentifierView {
                    identifier: string_attr(item, "identifier")?,
                    evidence: crate::identity::parse_evidence(item),
                    source: optional_string_attr(item, "source").unwrap_or_default(),
                    owned: matches!(item.get("owned"), Some(AttributeValue::Bool(true))),
                    customer_id: customer.clone(),
                    first_seen_at: crate::items::time_attr(item, "first_seen_at")?,
                })
            })
            .collect()
    }

    /// Merges `source`'s group into `target`'s: one transaction over every profile whose root
    /// changes, both roots (each only if unchanged since read), the merge record and the
    /// ledger entries. Entries stay where they are. Retried on contention.
    pub async fn merge(&self, request: &MergeRequest) -> Result<LedgerEntry, StoreError> {
        self.merge_with(request, None).await
    }

    async fn merge_with(
        &self,
        request: &MergeRequest,
        suggestion: Option<&LinkSuggestion>,
    ) -> Result<LedgerEntry, StoreError> {
        for attempt in 0..ATTEMPTS {
            let source = self.load_group(&request.source, true).await?;
            let target = self.load_group(&request.target, true).await?;
            let mut forest = Forest::default();
            for profile in source.profiles().chain(target.profiles()) {
                forest.insert(profile.customer.clone(), profile.node());
            }
            let merge_id = format!("mg_{}", ulid::Ulid::new().to_string().to_lowercase());
            let plan = forest.merge(&source.root.customer, &target.root.customer, merge_id.clone())?;

            let mut entry = LedgerEntry::new(LedgerAction::Merge, &request.actor);
            entry.merge_id = Some(merge_id.clone());
            entry.source = Some(source.root.customer.clone());
            entry.target = Some(target.root.customer.clone());
            entry.identifiers = match suggestion {
                Some(s) => vec![s.identifier.clone()],
                None => {
                    let mut owned = Vec::new();
                    for member in source.ids() {
                        owned.extend(
                            self.identifiers(&member)
                                .await?
                                .into_iter()
                                .filter(|i| i.owned)
                                .map(|i| i.identifier),
                        );
                    }
                    owned
                }
            };
            entry.suggestion_id = suggestion.map(|s| s.suggestion_id.clone());

            // The survivor continues the absorbed group's conversations too.
            let mut conversation = target.root.conversation.clone();
            conversation.absorb(&source.root.conversation);
            let profiles: Vec<&ProfileItem> = source.profiles().chain(target.profiles()).collect();
            let survivor = BTreeMap::from([(target.root.customer.clone(), conversation)]);
            let mut writes = self.plan_writes(&plan, &profiles, &survivor)?;
            let mut record = key_item(keys::merge(&merge_id));
            record.insert("source".into(), s(source.root.customer.as_str()));
            record.insert("target".into(), s(target.root.customer.as_str()));
            record.insert("active".into(), AttributeValue::Bool(true));
            record.insert("merged_at".into(), s(millis(entry.at)));
            // The absorbed group's conversations, which the survivor continues while merged and
            // gives back on unmerge.
            let absorbed: Vec<String> = source
                .root
                .conversation
                .recent
                .iter()
                .map(|r| r.id.to_string())
                .collect();
            if !absorbed.is_empty() {
                record.insert("source_conversations".into(), AttributeValue::Ss(absorbed));
            }
            writes.push(tx_put(
                &self.table,
                record,
                Some("attribute_not_exists(pk)"),
                Expr::new(),
            )?);
            writes.extend(self.ledger_writes(&entry, [&source.root.customer, &target.root.customer])?);
            if let Some(suggestion) = suggestion {
                let mut decided = suggestion.clone();
                decided.status = SuggestionStatus::Accepted;
                decided.decided_at = Some(entry.at);
                decided.decided_by = Some(request.actor.who.clone());
                decided.merge_id = Some(merge_id.clone());
                writes.extend(self.suggestion_writes(&decided)?);
            }
            if writes.len() > MAX_TRANSACTION_ITEMS {
                return Err(StoreError::GroupTooLarge {
                    items: writes.len(),
                    limit: MAX_TRANSACTION_ITEMS,
                });
            }
            if self.transact(writes).await? {
                tracing::info!(%merge_id, source = %request.source, target = %request.target, "customers merged");
                return Ok(entry);
            }
            if let Some(suggestion) = suggestion {
                self.open_suggestion(&suggestion.owner, &suggestion.suggestion_id)
                    .await?;
            }
            crate::backoff(attempt + 1).await;
        }
        Err(StoreError::Contention("merging customers"))
    }

    /// Undoes a merge: the merged customer and what was merged into it before leave the group,
    /// with exactly the timelines they had (entries never moved).
    pub async fn unmerge(&self, merge_id: &str, actor: &Actor) -> Result<LedgerEntry, StoreError> {
        for attempt in 0..ATTEMPTS {
            let record = self
                .get(keys::merge(merge_id), true)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("merge {merge_id}")))?;
            if !matches!(record.get("active"), Some(AttributeValue::Bool(true))) {
                return Err(GraphError::NotMerged(merge_id.to_owned()).into());
            }
            let source = CustomerId::from_trusted(string_attr(&record, "source")?);
            let target = CustomerId::from_trusted(string_attr(&record, "target")?);
            let group = self.load_group(&source, true).await?;
            let mut forest = Forest::default();
            for profile in group.profiles() {
                forest.insert(profile.customer.clone(), profile.node());
            }
            let plan = forest.unmerge(merge_id)?;
            let mut entry = LedgerEntry::new(LedgerAction::Unmerge, actor);
            entry.merge_id = Some(merge_id.to_owned());
            entry.source = Some(source.clone());
            entry.target = Some(target.clone());
            let profiles: Vec<&ProfileItem> = group.profiles().collect();
            // The group keeps its conversations but those the merged customer brought.
            let given_back: Vec<String> = match record.get("source_conversations") {
                Some(AttributeValue::Ss(ids)) => ids.clone(),
                _ => Vec::new(),
            };
            // Every profile that stays in the group and holds them (the root, and members that
            // were roots while merged and would revive their state on a later unmerge).
            let mut states = BTreeMap::new();
            for profile in group.profiles() {
                let leaving = forest.node(&profile.customer).is_some_and(|n| n.root == source);
                let mut remaining = profile.conversation.clone();
                remaining.recent.retain(|r| !given_back.contains(&r.id.to_string()));
                if !leaving && remaining != profile.conversation {
                    states.insert(profile.customer.clone(), remaining);
                }
            }
            let mut writes = self.plan_writes(&plan, &profiles, &states)?;
            writes.push(tx_update(
                &self.table,
                keys::merge(merge_id),
                "SET active = :no, unmerged_at = :at",
                Some("active = :yes"),
                Expr::new()
                    .value(":no", AttributeValue::Bool(false))
                    .value(":yes", AttributeValue::Bool(true))
                    .value(":at", s(millis(entry.at))),
            )?);
            writes.extend(self.ledger_writes(&entry, [&source, &target])?);
            if self.transact(writes).await? {
                tracing::info!(%merge_id, "merge undone");
                return Ok(entry);
            }
            crate::backoff(attempt + 1).await;
        }
        Err(StoreError::Contention("unmerging customers"))
    }

    /// The profile writes of a plan: every changed node's root and parent, every affected
    /// root's member set, each only if the profile is at the version read.
    fn plan_writes(
        &self,
        plan: &Plan,
        profiles: &[&ProfileItem],
        conversations: &BTreeMap<CustomerId, ConversationState>,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError> {
        let touched: BTreeSet<&CustomerId> = plan
            .changes
            .iter()
            .map(|c| &c.customer)
            .chain(plan.members.keys())
            .chain(conversations.keys())
            .collect();
        let mut writes = Vec::new();
        for customer in touched {
            let profile = profiles
                .iter()
                .find(|p| &p.customer == customer)
                .ok_or_else(|| StoreError::Corrupt(format!("profile {customer} not loaded")))?;
            let mut set = vec!["#root = :root"];
            let mut remove = Vec::new();
            let mut expr = Expr::new().name("#root", "root").value(":one", one());
            let change = plan.changes.iter().find(|c| &c.customer == customer);
            let root = change.map_or(&profile.root, |c| &c.root);
            expr = expr.value(":root", s(root.as_str()));
            match change.map_or(&profile.parent, |c| &c.parent) {
                Some((parent, merge)) => {
                    set.push("parent = :parent, merge_id = :merge");
                    expr = expr.value(":parent", s(parent.as_str())).value(":merge", s(merge));
                }
                None => remove.push("parent, merge_id"),
            }
            match plan.members.get(customer) {
                Some(members) if !members.is_empty() => {
                    set.push("#members = :members");
                    expr = expr.name("#members", "members").value(
                        ":members",
                        AttributeValue::Ss(members.iter().map(|m| m.to_string()).collect()),
                    );
                }
                Some(_) => {
                    remove.push("#members");
                    expr = expr.name("#members", "members");
                }
                None => {}
            }
            if let Some(state) = conversations.get(customer) {
                set.push("#conversation = :state");
                expr = expr
                    .name("#conversation", "conversation")
                    .value(":state", to_json(state));
            }
            let mut update = format!("SET {}", set.join(", "));
            if !remove.is_empty() {
                update.push_str(&format!(" REMOVE {}", remove.join(", ")));
            }
            update.push_str(" ADD #version :one");
            let (condition, expr) = profile.unchanged(expr);
            writes.push(tx_update(
                &self.table,
                keys::profile(customer),
                &update,
                Some(&condition),
                expr,
            )?);
        }
        Ok(writes)
    }

    /// The entry, appended to each named customer's ledger (only if absent: append-only).
    pub(crate) fn ledger_writes<'a>(
        &self,
        entry: &LedgerEntry,
        customers: impl IntoIterator<Item = &'a CustomerId>,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError> {
        let customers: BTreeSet<&CustomerId> = customers.into_iter().collect();
        customers
            .into_iter()
            .map(|customer| {
                let mut item = key_item((keys::ledger_pk(customer), entry.entry_id.clone()));
                item.insert("entry".into(), to_json(entry));
                tx_put(&self.table, item, Some("attribute_not_exists(pk)"), Expr::new())
            })
            .collect()
    }

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
        let mut entries: BTreeMap<String, LedgerEntry> = BTreeMap::new();
        for customer in customers {
            for item in self.query_prefix(&keys::ledger_pk(customer), "lg_", false).await? {
                if let Some(entry) = json_attr::<LedgerEntry>(&item, "entry")? {
                    entries.insert(entry.entry_id.clone(), entry);
                }
            }
        }
        Ok(entries.into_values().rev().collect())
    }

    /// The link suggestions that involve a customer's group, newest first.
    pub async fn suggestions(&self, customer: &CustomerId) -> Result<Vec<LinkSuggestion>, StoreError> {
        let group = self.load_group(customer, false).await?;
        self.suggestions_of(&group.ids()).await
    }

    pub(crate) async fn suggestions_of(&self, customers: &[CustomerId]) -> Result<Vec<LinkSuggestion>, StoreError> {
        let mut found: BTreeMap<String, LinkSuggestion> = BTreeMap::new();
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

    async fn open_suggestion(&self, customer: &CustomerId, suggestion_id: &str) -> Result<LinkSuggestion, StoreError> {
        let suggestion = self
            .suggestions(customer)
            .await?
            .into_iter()
            .find(|s| s.suggestion_id == suggestion_id)
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
        suggestion_id: &str,
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
        suggestion_id: &str,
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
        let mut writes = self.suggestion_writes(&suggestion)?;
        writes.extend(self.ledger_writes(&entry, [&suggestion.claimant, &suggestion.owner])?);
        if self.transact(writes).await? {
            return Ok(entry);
        }
        // Decided meanwhile (409), or a concurrent transaction (retry later).
        self.open_suggestion(customer, suggestion_id).await?;
        Err(StoreError::Contention("rejecting a suggestion"))
    }

    /// Both copies of a suggestion, decided, only if still open.
    fn suggestion_writes(
        &self,
        suggestion: &LinkSuggestion,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StoreError> {
        let status = suggestion.status.as_str();
        [&suggestion.claimant, &suggestion.owner]
            .into_iter()
            .map(|customer| {
                tx_update(
                    &self.table,
                    keys::suggestion(customer, &suggestion.suggestion_id),
                    "SET #status = :status, suggestion = :suggestion",
                    Some("#status = :open"),
                    Expr::new()
                        .name("#status", "status")
                        .value(":status", s(status))
                        .value(":open", s(SuggestionStatus::Open.as_str()))
                        .value(":suggestion", to_json(suggestion)),
                )
            })
            .collect()
    }
}
