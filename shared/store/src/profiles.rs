//! Customers as agents see them: a group of merged customers (its root's profile and every
//! member's) and the one profile the API shows for it.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use throughline_model::{Channel, Evidence, Handle, IdentifierSource};

use crate::conversation::{ConversationRecord, ConversationState, History};
use crate::items::{ProfileItem, keys, optional_string_attr, string_attr};
use crate::{CustomerId, StoreError, TimelineStore};

/// An identifier on a customer's profile (its `ID#` item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierView {
    /// Its key (`phone:+14155550100`, `email:ada@example.com`).
    pub identifier: String,
    /// `verified` or `claimed`.
    pub evidence: Evidence,
    /// Who gave it (absent on identifiers recorded before sources were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<IdentifierSource>,
    /// Whether it routes this customer's interactions (claims never do).
    pub owned: bool,
    /// The group member it belongs to.
    pub customer_id: CustomerId,
    /// When it was first recorded on that member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<DateTime<Utc>>,
    /// A phone number: the business numbers (identifier keys) it last texted STOP to, which
    /// replies may not text until it texts START.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sms_opted_out: Vec<String>,
    /// An email address: what the mail provider last reported about it (a hard bounce:
    /// `undeliverable`; a complaint: `opted_out`), which replies respect until a newer mail from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_state: Option<throughline_model::RecipientState>,
    /// When it was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_state_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A customer as an agent sees it: the whole merged group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerProfile {
    /// The group's root: the id every member resolves to.
    pub customer_id: CustomerId,
    /// The customers merged into it.
    pub members: Vec<CustomerId>,
    /// When the root customer was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Every member's identifiers, the root's first.
    pub identifiers: Vec<IdentifierView>,
    /// The channels the group has interactions on, by wire name in alphabetical order.
    pub channels: Vec<Channel>,
    /// Interactions per channel (by wire name), summed over the members.
    pub counts: BTreeMap<String, u64>,
    /// Every interaction of the group: the sum of `counts`.
    pub interaction_count: u64,
    /// When the group's earliest interaction occurred; absent with none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<DateTime<Utc>>,
    /// When the group's latest interaction occurred; absent with none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The group's most recently active conversation; absent with none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_conversation: Option<ConversationRecord>,
    /// The segments the group is in, by name.
    #[serde(default)]
    pub segments: Vec<String>,
    /// The group's calculated attributes as segments read them (`last_seen`, `last_channel`,
    /// `interactions_30d`, `most_frequent_channel_30d`, `conversations_30d`, `ratings`, `average_rating`,
    /// `last_rating`), kept current by every interaction's commit.
    #[serde(default)]
    pub calculated: serde_json::Value,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub root: ProfileItem,
    pub members: Vec<ProfileItem>,
}

impl Group {
    pub(crate) fn ids(&self) -> Vec<CustomerId> {
        std::iter::once(&self.root)
            .chain(&self.members)
            .map(|p| p.customer.clone())
            .collect()
    }

    pub(crate) fn profiles(&self) -> impl Iterator<Item = &ProfileItem> {
        std::iter::once(&self.root).chain(&self.members)
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
        let items = self
            .batch_get(ids.iter().map(keys::profile).collect(), consistent)
            .await?;
        let mut profiles = items
            .iter()
            .map(ProfileItem::from_item)
            .collect::<Result<Vec<_>, _>>()?;
        profiles.sort_by(|a, b| a.customer.cmp(&b.customer));
        Ok(profiles)
    }

    /// A root's conversations other than its open one: its history item, and those retired
    /// since it was written (walked back from the open conversation, marker by marker, to the
    /// first one the item holds: one eventually consistent read each).
    pub(crate) async fn history(&self, root: &ProfileItem, consistent: bool) -> Result<History, StoreError> {
        let history = History::from_item(
            self.get(keys::conversation_history(&root.customer), consistent)
                .await?
                .as_ref(),
        )?;
        let mut retired: Vec<ConversationRecord> = Vec::new();
        let mut next = root.conversation.open().map(|open| open.id.clone());
        while let Some(conversation) = next.take() {
            if retired.len() >= crate::conversation::REMEMBERED {
                break;
            }
            let Some(marker) = self.get(keys::interaction(&conversation.opener()), consistent).await? else {
                break;
            };
            let Some(previous) = crate::items::json_attr::<ConversationRecord>(&marker, "previous")? else {
                break;
            };
            if history.stored.recent.iter().any(|r| r.id == previous.id) || retired.iter().any(|r| r.id == previous.id)
            {
                break;
            }
            next = Some(previous.id.clone());
            retired.push(previous);
        }
        Ok(history.with_retired(retired))
    }

    /// A root's whole conversation state (its open conversation and its history) and the
    /// history as read.
    pub(crate) async fn conversations(
        &self,
        root: &ProfileItem,
        consistent: bool,
    ) -> Result<(ConversationState, History), StoreError> {
        let history = self.history(root, consistent).await?;
        Ok((history.around(&root.conversation), history))
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
            // Not the identifier itself: it is personal data, and errors reach logs.
            .ok_or_else(|| StoreError::CustomerNotFound("for that identifier".into()))?;
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
        // Each member's own counts, and what its root counted for it since it joined.
        let since_joined = group.root.member_counts.values().flat_map(|c| c.iter());
        for (channel, count) in group.profiles().flat_map(|p| p.counts.iter()).chain(since_joined) {
            *counts.entry(channel.as_str().to_owned()).or_default() += count;
            channels.insert(channel.as_str());
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
            calculated: throughline_segments::attributes_json(&group.root.calculated.attributes(Utc::now())),
            segments: self
                .memberships_of(&group.root.customer)
                .await?
                .into_iter()
                .map(|m| m.segment)
                .collect(),
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
                    source: optional_string_attr(item, "source").and_then(|s| IdentifierSource::parse(&s)),
                    owned: matches!(item.get("owned"), Some(AttributeValue::Bool(true))),
                    customer_id: customer.clone(),
                    first_seen_at: crate::items::time_attr(item, "first_seen_at")?,
                    sms_opted_out: TimelineStore::sms_opt_outs(item),
                    recipient_state: crate::delivery::recipient_note(item).map(|(state, _)| state),
                    recipient_state_at: crate::delivery::recipient_note(item).map(|(_, at)| at),
                })
            })
            .collect()
    }
}
