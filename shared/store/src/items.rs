//! Keys, attribute access and write builders: the table's vocabulary, shared by every part of
//! the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use chrono::{DateTime, SecondsFormat, Utc};
use throughline_model::{Channel, Handle, InteractionId, MergeId, SuggestionId};

use crate::conversation::ConversationState;
use crate::forest::Node;
use crate::{CustomerId, StoreError};

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) mod keys {
    use super::*;

    pub(crate) fn handle(handle: &Handle) -> (String, String) {
        handle_key(&handle.key())
    }
    /// A customer handle's delivery and read watermarks (Messenger, Instagram).
    pub(crate) fn watermark(handle_key: &str) -> (String, String) {
        (format!("WATERMARK#{handle_key}"), "WATERMARK".into())
    }
    pub(crate) fn handle_key(key: &str) -> (String, String) {
        (format!("HANDLE#{key}"), "HANDLE".into())
    }
    pub(crate) fn customer_pk(customer: &CustomerId) -> String {
        format!("{CUSTOMER_PREFIX}{customer}")
    }
    pub(crate) const CUSTOMER_PREFIX: &str = "CUSTOMER#";
    pub(crate) const CONVERSATION_HISTORY: &str = "CONVERSATIONS";
    /// A group root's conversations other than its open one (the open one is on its profile).
    pub(crate) fn conversation_history(customer: &CustomerId) -> (String, String) {
        (customer_pk(customer), CONVERSATION_HISTORY.to_owned())
    }
    pub(crate) const PROFILE: &str = "PROFILE";
    /// A customer's company attributes (on the group's root).
    pub(crate) fn attributes(customer: &CustomerId) -> (String, String) {
        (customer_pk(customer), "ATTRIBUTES".into())
    }
    pub(crate) fn profile(customer: &CustomerId) -> (String, String) {
        (customer_pk(customer), PROFILE.into())
    }
    pub(crate) const TIMELINE_PREFIX: &str = "TL#";
    /// Fixed-width UTC time so that string order is time order.
    pub(crate) fn timeline_sk(occurred_at: DateTime<Utc>, id: &InteractionId) -> String {
        format!("{TIMELINE_PREFIX}{}#{id}", millis(occurred_at))
    }
    pub(crate) const IDENTIFIER_PREFIX: &str = "ID#";
    pub(crate) fn identifier(customer: &CustomerId, key: &str) -> (String, String) {
        (customer_pk(customer), format!("{IDENTIFIER_PREFIX}{key}"))
    }
    pub(crate) const SUGGESTION_PREFIX: &str = "SUGGESTION#";
    pub(crate) fn suggestion(customer: &CustomerId, id: &SuggestionId) -> (String, String) {
        (customer_pk(customer), format!("{SUGGESTION_PREFIX}{id}"))
    }
    pub(crate) fn interaction(id: &InteractionId) -> (String, String) {
        (format!("INTERACTION#{id}"), "INTERACTION".into())
    }
    pub(crate) fn merge(id: &MergeId) -> (String, String) {
        (format!("MERGE#{id}"), "MERGE".into())
    }
    /// An erased identifier, by HMAC-SHA256 of its key under the deployment's secret
    /// suppression key, so the item neither holds the identifier nor lets anyone who reads the
    /// table test a guess (phone numbers are few enough to try them all against a plain hash).
    pub(crate) fn suppressed(suppression_key: &[u8], identifier_key: &str) -> (String, String) {
        use hmac::{KeyInit as _, Mac as _};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(suppression_key).expect("HMAC takes any key length");
        mac.update(identifier_key.as_bytes());
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        (format!("SUPPRESSED#{hex}"), "SUPPRESSED".into())
    }
    pub(crate) fn ledger_pk(customer: &CustomerId) -> String {
        format!("LEDGER#{customer}")
    }
    /// `REPLAY#` items are the only ones a webhook function may touch (IAM `LeadingKeys`).
    pub(crate) fn replay(namespace: &str, value: &str) -> (String, String) {
        (format!("{REPLAY_PREFIX}{namespace}#{value}"), "REPLAY".into())
    }
    pub(crate) const REPLAY_PREFIX: &str = "REPLAY#";
    pub(crate) const SEGMENT_PREFIX: &str = "SEGMENT#";
    /// A group root's membership of a segment (the sparse `SegmentIndex` lists a segment's).
    pub(crate) fn segment_membership(customer: &CustomerId, segment: &str) -> (String, String) {
        (customer_pk(customer), format!("{SEGMENT_PREFIX}{segment}"))
    }
    /// What a rating page link leads to. `SURVEY#` items are the only ones the rating page may
    /// read (IAM `LeadingKeys`).
    pub(crate) fn linked_survey(survey_id: &str) -> (String, String) {
        (format!("SURVEY#{survey_id}"), "SURVEY".into())
    }
}

pub(crate) fn string_value(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn number_value(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn key_item((pk, sk): (String, String)) -> Item {
    HashMap::from([("pk".to_owned(), string_value(pk)), ("sk".to_owned(), string_value(sk))])
}

/// Fixed-width UTC time (milliseconds), as stored everywhere.
pub(crate) fn millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn optional_string_attr(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub(crate) fn string_attr(item: &Item, name: &str) -> Result<String, StoreError> {
    optional_string_attr(item, name)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a string")))
}

/// A stored id (`CustomerId`, `MergeId`…). The store writes only ids it parsed or generated, so
/// one that does not parse is a corrupt item.
pub(crate) fn stored_id<T: TryFrom<String>>(value: String, name: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("attribute {name} is not a valid id")))
}

/// An id attribute (see `stored_id`).
pub(crate) fn id_attr<T: TryFrom<String>>(item: &Item, name: &str) -> Result<T, StoreError> {
    stored_id(string_attr(item, name)?, name)
}

/// A string-set attribute of ids (see `stored_id`); absent is empty.
pub(crate) fn id_set_attr<T: TryFrom<String>, C: FromIterator<T>>(item: &Item, name: &str) -> Result<C, StoreError> {
    match item.get(name) {
        Some(AttributeValue::Ss(ids)) => ids.iter().map(|id| stored_id(id.clone(), name)).collect(),
        _ => Ok(std::iter::empty().collect()),
    }
}

pub(crate) fn number_attr(item: &Item, name: &str) -> u64 {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    }
}

pub(crate) fn time_attr(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    optional_string_attr(item, name)
        .map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.to_utc())
                .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not a time")))
        })
        .transpose()
}

pub(crate) fn json_attr<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<Option<T>, StoreError> {
    optional_string_attr(item, name)
        .map(|text| serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}"))))
        .transpose()
}

/// A timeline entry's item as the interaction it stores.
pub(crate) fn stored_interaction(item: Item) -> Result<throughline_model::Interaction, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(format!("timeline entry: {e}")))
}

/// SHA-256 of `bytes`, in lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn to_json(value: &impl serde::Serialize) -> AttributeValue {
    string_value(serde_json::to_string(value).expect("store values always serialize"))
}

/// Names and values of one expression. Every attribute name goes through `#name` so that no
/// reserved word ever breaks an expression.
#[derive(Debug, Default, Clone)]
pub(crate) struct Expr {
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub(crate) fn new() -> Self {
        Self::default()
    }
    pub(crate) fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.into(), attribute.into());
        self
    }
    pub(crate) fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.into(), value);
        self
    }
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// An `UpdateExpression` from its clauses, the empty ones left out.
pub(crate) fn update_expression(set: &[String], remove: &[String], add: &[String]) -> String {
    [("SET", set), ("REMOVE", remove), ("ADD", add)]
        .into_iter()
        .filter(|(_, clause)| !clause.is_empty())
        .map(|(verb, clause)| format!("{verb} {}", clause.join(", ")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn built<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Corrupt(format!("request: {e}")))
}

/// One item of a `TransactWriteItems`.
pub(crate) fn tx_put(
    table: &str,
    item: Item,
    condition: Option<&str>,
    expr: Expr,
) -> Result<TransactWriteItem, StoreError> {
    let put = built(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(Into::into))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

pub(crate) fn tx_update(
    table: &str,
    key: (String, String),
    update: &str,
    condition: Option<&str>,
    expr: Expr,
) -> Result<TransactWriteItem, StoreError> {
    let update = built(
        Update::builder()
            .table_name(table)
            .set_key(Some(key_item(key)))
            .update_expression(update)
            .set_condition_expression(condition.map(Into::into))
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build(),
    )?;
    Ok(TransactWriteItem::builder().update(update).build())
}

pub(crate) fn tx_delete(table: &str, key: (String, String)) -> Result<TransactWriteItem, StoreError> {
    let delete = built(
        aws_sdk_dynamodb::types::Delete::builder()
            .table_name(table)
            .set_key(Some(key_item(key)))
            .build(),
    )?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

pub(crate) fn tx_check(
    table: &str,
    key: (String, String),
    condition: &str,
    expr: Expr,
) -> Result<TransactWriteItem, StoreError> {
    let check = built(
        ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(key_item(key)))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build(),
    )?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// A customer's profile item, as stored.
#[derive(Debug, Clone)]
pub(crate) struct ProfileItem {
    pub customer: CustomerId,
    pub created_at: Option<DateTime<Utc>>,
    /// The root of the customer's merge group (itself when not merged).
    pub root: CustomerId,
    pub parent: Option<(CustomerId, MergeId)>,
    /// On a root: every other member of its group.
    pub members: BTreeSet<CustomerId>,
    /// Raised by every change a condition must see (merges, conversation state).
    pub version: u64,
    pub erased_at: Option<DateTime<Utc>>,
    /// On an erased customer's tombstone: the root of the group erased with it, and (on the
    /// root) every member, so that an interrupted erasure can be finished.
    pub erased_root: Option<CustomerId>,
    pub erased_members: Vec<CustomerId>,
    /// Interactions recorded in this customer's partition, per channel (on a member: those
    /// counted before it joined its group's root, whose profile counts the rest).
    pub counts: BTreeMap<Channel, u64>,
    /// On a root: its members' interactions since they joined it, per member and channel
    /// (settled into the members' own `counts` when a merge or an unmerge moves them).
    pub member_counts: BTreeMap<CustomerId, BTreeMap<Channel, u64>>,
    /// On a root: the last `COMMIT_SLOTS` interactions recorded against it, slot by version
    /// (`version % COMMIT_SLOTS` → the interaction's fingerprint and that version).
    pub commits: BTreeMap<u64, (String, u64)>,
    /// On a root: the group's open conversation (the rest is its history item; a profile
    /// written before the history item existed holds all of them here).
    pub conversation: ConversationState,
    /// On a root: the satisfaction survey out and taking answers (the latest one sent).
    pub survey: Option<throughline_feedback::OpenSurvey>,
    /// On a root: the group's calculated attributes, kept by every commit.
    pub calculated: throughline_segments::Calculated,
}

pub(crate) fn count_attribute(channel: Channel) -> String {
    format!("count_{}", channel.as_str())
}

/// On a root, a member's interactions on a channel since it joined.
pub(crate) fn member_count_attribute(member: &CustomerId, channel: Channel) -> String {
    format!("n_{member}_{}", channel.as_str())
}

/// The interactions a root remembers having counted: enough for a redelivery that finds its
/// recording unfinished to tell whether the root's part was done, unless this many others of
/// the group were recorded in between.
pub(crate) const COMMIT_SLOTS: u64 = 8;

/// The attribute of the commit slot of `version`, and its value for `interaction`.
pub(crate) fn commit_slot(version: u64, interaction: &InteractionId) -> (String, String) {
    (
        format!("ix{}", version % COMMIT_SLOTS),
        format!("{}@{version}", interaction_fingerprint(interaction)),
    )
}

/// 48 bits of an interaction id: enough to tell the few a slot could hold apart.
pub(crate) fn interaction_fingerprint(interaction: &InteractionId) -> &str {
    let id = interaction.as_str();
    id.get(3..15).unwrap_or(id)
}

/// What a root's commit slots say of an interaction's commit at `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Its slot holds it at that version.
    Done,
    /// Not at that version (another interaction, or a merge, took it; or not yet).
    NotDone,
    /// Its slot has been taken by a later version: no longer known.
    Forgotten,
}

impl ProfileItem {
    pub(crate) fn from_item(item: &Item) -> Result<Self, StoreError> {
        let customer: CustomerId = id_attr(item, "customer_id")?;
        let root = match optional_string_attr(item, "root") {
            Some(root) => stored_id(root, "root")?,
            None => customer.clone(),
        };
        let parent = match (
            optional_string_attr(item, "parent"),
            optional_string_attr(item, "merge_id"),
        ) {
            (Some(parent), Some(merge)) => {
                Some((stored_id(parent, "parent")?, stored_id::<MergeId>(merge, "merge_id")?))
            }
            _ => None,
        };
        let members = id_set_attr(item, "members")?;
        let counts = Channel::ALL
            .into_iter()
            .map(|c| (c, number_attr(item, &count_attribute(c))))
            .filter(|(_, count)| *count > 0)
            .collect();
        let mut member_counts: BTreeMap<CustomerId, BTreeMap<Channel, u64>> = BTreeMap::new();
        let mut commits = BTreeMap::new();
        for (name, value) in item {
            if let Some((member, channel)) = name.strip_prefix("n_").and_then(|rest| rest.rsplit_once('_')) {
                if let (Some(member), Some(channel)) = (CustomerId::parse(member), Channel::parse(channel)) {
                    let count = number_attr(item, name);
                    if count > 0 {
                        member_counts.entry(member).or_default().insert(channel, count);
                    }
                }
            } else if let (Some(slot), AttributeValue::S(text)) = (name.strip_prefix("ix"), value)
                && let (Ok(slot), Some((fingerprint, version))) = (slot.parse::<u64>(), text.split_once('@'))
                && let Ok(version) = version.parse()
            {
                commits.insert(slot, (fingerprint.to_owned(), version));
            }
        }
        Ok(Self {
            created_at: time_attr(item, "created_at")?,
            root,
            parent,
            members,
            version: number_attr(item, "version"),
            erased_at: time_attr(item, "erased_at")?,
            erased_root: optional_string_attr(item, "erased_root")
                .map(|root| stored_id(root, "erased_root"))
                .transpose()?,
            erased_members: id_set_attr(item, "erased_members")?,
            counts,
            member_counts,
            commits,
            conversation: json_attr(item, "conversation")?.unwrap_or_default(),
            survey: json_attr(item, "survey")?,
            calculated: json_attr(item, "calculated")?.unwrap_or_default(),
            customer,
        })
    }

    pub(crate) fn is_root(&self) -> bool {
        self.root == self.customer
    }

    /// A member as its root's profile shows it (listed in its `members`): enough to record an
    /// interaction for it, whose count and commit are on the root.
    pub(crate) fn member_of(customer: &CustomerId, root: &ProfileItem) -> Self {
        Self {
            customer: customer.clone(),
            created_at: None,
            root: root.customer.clone(),
            parent: None,
            members: BTreeSet::new(),
            version: 0,
            erased_at: None,
            erased_root: None,
            erased_members: Vec::new(),
            counts: BTreeMap::new(),
            member_counts: BTreeMap::new(),
            commits: BTreeMap::new(),
            conversation: ConversationState::default(),
            survey: None,
            calculated: throughline_segments::Calculated::default(),
        }
    }

    /// Whether `interaction` was recorded against this root at `version`.
    pub(crate) fn commit_of(&self, interaction: &InteractionId, version: u64) -> Commit {
        match self.commits.get(&(version % COMMIT_SLOTS)) {
            Some((fingerprint, at)) if *at == version && fingerprint == interaction_fingerprint(interaction) => {
                Commit::Done
            }
            Some((_, at)) if *at > version => Commit::Forgotten,
            _ => Commit::NotDone,
        }
    }

    pub(crate) fn node(&self) -> Node {
        Node {
            parent: self.parent.clone(),
            root: self.root.clone(),
        }
    }

    /// The condition that this profile is still at the version read.
    pub(crate) fn unchanged(&self, expr: Expr) -> (String, Expr) {
        let expr = expr
            .name("#version", "version")
            .value(":version", number_value(self.version));
        let condition = if self.version == 0 {
            "(attribute_not_exists(#version) OR #version = :version) AND attribute_not_exists(erased_at)"
        } else {
            "#version = :version AND attribute_not_exists(erased_at)"
        };
        (condition.to_owned(), expr)
    }
}

#[cfg(test)]
impl ProfileItem {
    /// A profile as `from_item` reads it: `customer` at `version`, with `extra` attributes
    /// (`root`, `parent`, `merge_id`, `members`, `conversation`…).
    pub(crate) fn for_test(customer: &CustomerId, version: u64, extra: &[(&str, AttributeValue)]) -> Self {
        let mut item = key_item(keys::profile(customer));
        item.insert("customer_id".into(), string_value(customer.as_str()));
        item.insert("version".into(), number_value(version));
        for (name, value) in extra {
            item.insert((*name).into(), value.clone());
        }
        Self::from_item(&item).expect("a profile item")
    }
}

#[cfg(test)]
mod tests {
    use super::keys;

    #[test]
    fn a_commit_slot_tells_done_from_not_done_until_a_later_version_takes_it() {
        use super::*;
        let (ours, theirs) = (
            InteractionId::derive(
                throughline_model::Provider::Twilio,
                &Handle::Phone {
                    number: throughline_model::E164::parse("+14155550199").unwrap(),
                },
                &throughline_model::ProviderMessageId::parse("SM1").unwrap(),
            ),
            InteractionId::derive(
                throughline_model::Provider::Twilio,
                &Handle::Phone {
                    number: throughline_model::E164::parse("+14155550199").unwrap(),
                },
                &throughline_model::ProviderMessageId::parse("SM2").unwrap(),
            ),
        );
        let customer = CustomerId::generate();
        let with_slot = |interaction: &InteractionId, version: u64| {
            let (slot, value) = commit_slot(version, interaction);
            ProfileItem::for_test(&customer, version, &[(slot.as_str(), AttributeValue::S(value))])
        };
        assert_eq!(with_slot(&ours, 5).commit_of(&ours, 5), Commit::Done);
        assert_eq!(
            with_slot(&theirs, 5).commit_of(&ours, 5),
            Commit::NotDone,
            "another took 5"
        );
        assert_eq!(
            with_slot(&ours, 4).commit_of(&ours, 12),
            Commit::NotDone,
            "12 not reached"
        );
        assert_eq!(
            with_slot(&theirs, 5 + COMMIT_SLOTS).commit_of(&ours, 5),
            Commit::Forgotten,
            "the slot of 5 is 13's now"
        );
        assert_eq!(
            ProfileItem::for_test(&customer, 9, &[]).commit_of(&ours, 5),
            Commit::NotDone
        );
    }

    #[test]
    fn suppressed_items_are_keyed_by_a_secret_not_a_plain_hash() {
        use sha2::Digest as _;
        let identifier = "phone:+14155550100";
        let (with_one, _) = keys::suppressed(b"one secret", identifier);
        let (with_other, _) = keys::suppressed(b"another secret", identifier);
        assert_ne!(with_one, with_other, "the key decides the item");
        assert_eq!(with_one, keys::suppressed(b"one secret", identifier).0, "deterministic");
        let plain: String = sha2::Sha256::digest(identifier.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!with_one.contains(&plain), "not guessable without the key");
        assert!(!with_one.contains("4155550100"));
    }
}
