//! Merge and unmerge. The store loads the groups involved; the pure planners here (over the pure
//! `forest`) decide every write; one transaction makes them, each write conditioned on the
//! profile being the one read, so a concurrent change cancels it and the next try plans anew.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use crate::conversation::{ConversationState, History, not_queued, open_conversation_update};
use throughline_model::{Channel, MergeId};

use crate::forest::{Forest, GraphError, Plan};
use crate::items::{
    Expr, ProfileItem, count_attribute, id_attr, key_item, keys, member_count_attribute, millis, number_value,
    string_value, tx_put, tx_update, update_expression,
};
use crate::ledger::{LedgerAction, LedgerEntry, ledger_writes};
use crate::profiles::Group;
use crate::suggestions::{LinkSuggestion, SuggestionStatus, suggestion_writes};
use crate::{Actor, Attempt, CustomerId, StoreError, TimelineStore, retry_optimistic};

/// Most items DynamoDB takes in one transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// An agent's merge: `source`'s group joins `target`'s, whose root survives.
#[derive(Debug, Clone)]
pub struct MergeRequest {
    /// A customer of the group that joins (its root stops being a root).
    pub source: CustomerId,
    /// A customer of the group that survives (its root stays the root).
    pub target: CustomerId,
    /// Who asks, and why.
    pub actor: Actor,
}

impl From<GraphError> for StoreError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::AlreadyMerged => StoreError::AlreadyMerged,
            GraphError::NotMerged(merge) => StoreError::NotMerged(merge),
            GraphError::Unknown(c) => StoreError::CustomerNotFound(c.to_string()),
        }
    }
}

/// A change planned: its ledger entry and the writes of its one transaction.
#[derive(Debug)]
pub(crate) struct Planned {
    pub entry: LedgerEntry,
    pub writes: Vec<TransactWriteItem>,
}

/// What merging `source`'s group into `target`'s writes: every profile whose root or parent
/// changes and both roots' member sets (`forest`), the survivor's conversation state absorbing
/// the source's, the merge record (what unmerge reads), the ledger entry on both roots, and an
/// accepted suggestion's two copies. `entry` is the new `Merge` fact (its id and time);
/// `identifiers` the ones the ledger names. Pure.
pub(crate) fn plan_merge(
    table: &str,
    (source, target): (&Group, &Group),
    histories: &BTreeMap<CustomerId, History>,
    merge_id: MergeId,
    mut entry: LedgerEntry,
    identifiers: Vec<String>,
    suggestion: Option<&LinkSuggestion>,
) -> Result<Planned, StoreError> {
    let mut forest = Forest::default();
    for profile in source.profiles().chain(target.profiles()) {
        forest.insert(profile.customer.clone(), profile.node());
    }
    let plan = forest.merge(&source.root.customer, &target.root.customer, merge_id.clone())?;
    entry.merge_id = Some(merge_id.clone());
    entry.source = Some(source.root.customer.clone());
    entry.target = Some(target.root.customer.clone());
    entry.identifiers = identifiers;
    entry.suggestion_id = suggestion.map(|s| s.suggestion_id.clone());

    // The survivor continues the absorbed group's conversations too.
    let whole = |root: &ProfileItem| history_of(histories, &root.customer).around(&root.conversation);
    let absorbed_state = whole(&source.root);
    let mut conversation = whole(&target.root);
    conversation.absorb(&absorbed_state);
    let profiles: Vec<&ProfileItem> = source.profiles().chain(target.profiles()).collect();
    let survivor = BTreeMap::from([(target.root.customer.clone(), conversation)]);
    let mut writes = profile_writes(table, &plan, &profiles, &survivor, histories)?;
    let mut record = key_item(keys::merge(&merge_id));
    record.insert("source".into(), string_value(source.root.customer.as_str()));
    record.insert("target".into(), string_value(target.root.customer.as_str()));
    record.insert("active".into(), AttributeValue::Bool(true));
    record.insert("merged_at".into(), string_value(millis(entry.at)));
    // The absorbed group's conversations, which the survivor continues while merged and gives
    // back on unmerge.
    let absorbed: Vec<String> = absorbed_state.recent.iter().map(|r| r.id.to_string()).collect();
    if !absorbed.is_empty() {
        record.insert("source_conversations".into(), AttributeValue::Ss(absorbed));
    }
    writes.push(tx_put(table, record, Some("attribute_not_exists(pk)"), Expr::new())?);
    writes.extend(ledger_writes(
        table,
        &entry,
        [&source.root.customer, &target.root.customer],
    )?);
    if let Some(suggestion) = suggestion {
        let mut decided = suggestion.clone();
        decided.status = SuggestionStatus::Accepted;
        decided.decided_at = Some(entry.at);
        decided.decided_by = Some(entry.actor.clone());
        decided.merge_id = Some(merge_id);
        writes.extend(suggestion_writes(table, &decided)?);
    }
    if writes.len() > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::GroupTooLarge {
            items: writes.len(),
            limit: MAX_TRANSACTION_ITEMS,
        });
    }
    Ok(Planned { entry, writes })
}

/// What undoing merge `merge_id` (of `source` into `target`, per its record) writes: the
/// profiles the cut moves (`forest`), the conversations the source brought (`given_back`) gone
/// from every profile that stays, the record made inactive (only if still active), the ledger
/// entry on both customers. `group` is the merged group as loaded. Pure.
pub(crate) fn plan_unmerge(
    table: &str,
    group: &Group,
    histories: &BTreeMap<CustomerId, History>,
    merge_id: &MergeId,
    (source, target): (&CustomerId, &CustomerId),
    given_back: &[String],
    mut entry: LedgerEntry,
) -> Result<Planned, StoreError> {
    let mut forest = Forest::default();
    for profile in group.profiles() {
        forest.insert(profile.customer.clone(), profile.node());
    }
    let plan = forest.unmerge(merge_id)?;
    entry.merge_id = Some(merge_id.clone());
    entry.source = Some(source.clone());
    entry.target = Some(target.clone());
    let profiles: Vec<&ProfileItem> = group.profiles().collect();
    // Every profile that stays in the group and holds the given-back conversations (the root,
    // and members that were roots while merged and would revive their state on a later
    // unmerge).
    let mut states = BTreeMap::new();
    for profile in group.profiles() {
        let leaving = forest.node(&profile.customer).is_some_and(|n| &n.root == source);
        let whole = history_of(histories, &profile.customer).around(&profile.conversation);
        let mut remaining = whole.clone();
        remaining.recent.retain(|r| !given_back.contains(&r.id.to_string()));
        if !leaving && remaining != whole {
            states.insert(profile.customer.clone(), remaining);
        }
    }
    let mut writes = profile_writes(table, &plan, &profiles, &states, histories)?;
    writes.push(tx_update(
        table,
        keys::merge(merge_id),
        "SET active = :no, unmerged_at = :at",
        Some("active = :yes"),
        Expr::new()
            .value(":no", AttributeValue::Bool(false))
            .value(":yes", AttributeValue::Bool(true))
            .value(":at", string_value(millis(entry.at))),
    )?);
    writes.extend(ledger_writes(table, &entry, [source, target])?);
    Ok(Planned { entry, writes })
}

/// A customer's conversation history as loaded (none loaded: none).
fn history_of<'a>(
    histories: &'a BTreeMap<CustomerId, History>,
    customer: &CustomerId,
) -> std::borrow::Cow<'a, History> {
    histories.get(customer).map_or_else(
        || std::borrow::Cow::Owned(History::default()),
        std::borrow::Cow::Borrowed,
    )
}

/// The profile writes of a forest plan: every changed node's root and parent, every affected
/// root's member set, the given whole conversation states (the open conversation on the
/// profile, the rest on its history item when it changed), each only if the profile (and the
/// history) is at the version read.
fn profile_writes(
    table: &str,
    plan: &Plan,
    profiles: &[&ProfileItem],
    conversations: &BTreeMap<CustomerId, ConversationState>,
    histories: &BTreeMap<CustomerId, History>,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let find = |customer: &CustomerId| profiles.iter().find(|p| &p.customer == customer);
    // What a root counted for its members moves into their own counts whenever its member set
    // changes, so that every count is where its customer's group is.
    let mut settled: BTreeMap<&CustomerId, &BTreeMap<Channel, u64>> = BTreeMap::new();
    let mut settling: BTreeMap<&CustomerId, Vec<String>> = BTreeMap::new();
    for root in plan.members.keys().filter_map(&find) {
        for (member, counts) in &root.member_counts {
            if find(member).is_some() {
                settled.insert(member, counts);
                settling
                    .entry(&root.customer)
                    .or_default()
                    .extend(counts.keys().map(|c| member_count_attribute(member, *c)));
            }
        }
    }
    let touched: BTreeSet<&CustomerId> = plan
        .changes
        .iter()
        .map(|c| &c.customer)
        .chain(plan.members.keys())
        .chain(conversations.keys())
        .chain(settled.keys().copied())
        .collect();
    let mut writes = Vec::new();
    for customer in touched {
        let profile = profiles
            .iter()
            .find(|p| &p.customer == customer)
            .ok_or_else(|| StoreError::Corrupt(format!("profile {customer} not loaded")))?;
        let mut set = vec!["#root = :root"];
        let mut remove = Vec::new();
        let mut expr = Expr::new().name("#root", "root").value(":one", number_value(1));
        let change = plan.changes.iter().find(|c| &c.customer == customer);
        let root = change.map_or(&profile.root, |c| &c.root);
        expr = expr.value(":root", string_value(root.as_str()));
        match change.map_or(&profile.parent, |c| &c.parent) {
            Some((parent, merge)) => {
                set.push("parent = :parent, merge_id = :merge");
                expr = expr
                    .value(":parent", string_value(parent.as_str()))
                    .value(":merge", string_value(merge.as_str()));
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
        let mut set: Vec<String> = set.into_iter().map(str::to_owned).collect();
        let mut remove: Vec<String> = remove.into_iter().map(str::to_owned).collect();
        // A root holds its open conversation (and its place in the queue); a profile that is
        // no longer a root leaves the queue.
        let open = match conversations.get(customer) {
            Some(whole) => {
                let (open, history_write) = history_of(histories, customer).write_back(table, customer, whole)?;
                writes.extend(history_write);
                Some(open)
            }
            None => (root == customer).then(|| profile.conversation.clone()),
        };
        expr = match open {
            Some(open) => {
                let (more_set, more_remove, expr) = open_conversation_update(&open, expr);
                set.extend(more_set);
                remove.extend(more_remove);
                expr
            }
            None => {
                let (more_remove, expr) = not_queued(expr);
                remove.extend(more_remove);
                expr
            }
        };
        for (n, name) in settling.get(customer).into_iter().flatten().enumerate() {
            remove.push(format!("#drop{n}"));
            expr = expr.name(&format!("#drop{n}"), name);
        }
        let mut add = vec!["#version :one".to_owned()];
        for (n, (channel, count)) in settled.get(customer).into_iter().flat_map(|c| c.iter()).enumerate() {
            add.push(format!("#settle{n} :settle{n}"));
            expr = expr
                .name(&format!("#settle{n}"), &count_attribute(*channel))
                .value(&format!(":settle{n}"), number_value(*count));
        }
        let update = update_expression(&set, &remove, &add);
        let (condition, expr) = profile.unchanged(expr);
        writes.push(tx_update(
            table,
            keys::profile(customer),
            &update,
            Some(&condition),
            expr,
        )?);
    }
    Ok(writes)
}

impl TimelineStore {
    /// Merges `source`'s group into `target`'s: one transaction over every profile whose root
    /// changes, both roots (each only if unchanged since read), the merge record and the
    /// ledger entries. Entries stay where they are. Retried on contention.
    pub async fn merge(&self, request: &MergeRequest) -> Result<LedgerEntry, StoreError> {
        self.merge_with(request, None).await
    }

    /// A merge, and when it accepts a suggestion the suggestion decided in the same
    /// transaction.
    pub(crate) async fn merge_with(
        &self,
        request: &MergeRequest,
        suggestion: Option<&LinkSuggestion>,
    ) -> Result<LedgerEntry, StoreError> {
        retry_optimistic("merging customers", |_| async move {
            let source = self.load_group(&request.source, true).await?;
            let target = self.load_group(&request.target, true).await?;
            let identifiers = match suggestion {
                Some(s) => vec![s.identifier.clone()],
                None => self.owned_identifiers(&source).await?,
            };
            let merge_id = MergeId::generate();
            let histories = self.histories([&source.root, &target.root]).await?;
            let planned = plan_merge(
                &self.table,
                (&source, &target),
                &histories,
                merge_id.clone(),
                LedgerEntry::new(LedgerAction::Merge, &request.actor),
                identifiers,
                suggestion,
            )?;
            if self.transact(planned.writes).await? {
                tracing::info!(%merge_id, source = %request.source, target = %request.target, "customers merged");
                return Ok(Attempt::Done(planned.entry));
            }
            // Decided meanwhile is a 409, not a retry.
            if let Some(suggestion) = suggestion {
                self.open_suggestion(&suggestion.owner, &suggestion.suggestion_id)
                    .await?;
            }
            Ok(Attempt::Again)
        })
        .await
    }

    /// The conversation histories of these profiles (consistent reads), of those that have one.
    async fn histories<'a>(
        &self,
        profiles: impl IntoIterator<Item = &'a ProfileItem>,
    ) -> Result<BTreeMap<CustomerId, History>, StoreError> {
        let mut histories = BTreeMap::new();
        for profile in profiles {
            let history = self.history(profile, true).await?;
            if history.version.is_some() || !history.state.recent.is_empty() {
                histories.insert(profile.customer.clone(), history);
            }
        }
        Ok(histories)
    }

    /// The identifiers a group's members own (those a merge moves into the survivor's group).
    async fn owned_identifiers(&self, group: &Group) -> Result<Vec<String>, StoreError> {
        let mut owned = Vec::new();
        for member in group.ids() {
            owned.extend(
                self.identifiers(&member)
                    .await?
                    .into_iter()
                    .filter(|i| i.owned)
                    .map(|i| i.identifier),
            );
        }
        Ok(owned)
    }

    /// Undoes a merge: the merged customer and what was merged into it before leave the group,
    /// with exactly the timelines they had (entries never moved).
    pub async fn unmerge(&self, merge_id: &MergeId, actor: &Actor) -> Result<LedgerEntry, StoreError> {
        retry_optimistic("unmerging customers", |_| async move {
            let record = self
                .get(keys::merge(merge_id), true)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("merge {merge_id}")))?;
            if !matches!(record.get("active"), Some(AttributeValue::Bool(true))) {
                return Err(GraphError::NotMerged(merge_id.clone()).into());
            }
            let source = id_attr::<CustomerId>(&record, "source")?;
            let target = id_attr::<CustomerId>(&record, "target")?;
            let given_back: Vec<String> = match record.get("source_conversations") {
                Some(AttributeValue::Ss(ids)) => ids.clone(),
                _ => Vec::new(),
            };
            let group = self.load_group(&source, true).await?;
            let histories = self.histories(group.profiles()).await?;
            let planned = plan_unmerge(
                &self.table,
                &group,
                &histories,
                merge_id,
                (&source, &target),
                &given_back,
                LedgerEntry::new(LedgerAction::Unmerge, actor),
            )?;
            if self.transact(planned.writes).await? {
                tracing::info!(%merge_id, "merge undone");
                return Ok(Attempt::Done(planned.entry));
            }
            Ok(Attempt::Again)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use throughline_model::SuggestionId;

    use super::*;

    const TABLE: &str = "timeline";

    fn profile(customer: &CustomerId, version: u64, extra: &[(&str, AttributeValue)]) -> ProfileItem {
        ProfileItem::for_test(customer, version, extra)
    }

    fn alone(customer: &CustomerId, version: u64) -> Group {
        Group {
            root: profile(customer, version, &[]),
            members: Vec::new(),
        }
    }

    fn actor() -> Actor {
        Actor {
            who: "arn:aws:iam::123456789012:user/agent".into(),
            principal_id: None,
            reason: Some("same person".into()),
        }
    }

    fn updates(writes: &[TransactWriteItem]) -> Vec<(String, String, String)> {
        writes
            .iter()
            .filter_map(|w| w.update())
            .map(|u| {
                let sk = match u.key().get("sk") {
                    Some(AttributeValue::S(sk)) => sk.clone(),
                    _ => String::new(),
                };
                let pk = match u.key().get("pk") {
                    Some(AttributeValue::S(pk)) => pk.clone(),
                    _ => String::new(),
                };
                (
                    format!("{pk}|{sk}"),
                    u.update_expression().to_owned(),
                    u.condition_expression().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    fn puts_under(writes: &[TransactWriteItem], pk_prefix: &str) -> usize {
        writes
            .iter()
            .filter_map(|w| w.put())
            .filter(|p| matches!(p.item().get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with(pk_prefix)))
            .count()
    }

    #[test]
    fn what_a_root_counted_for_its_members_moves_into_their_own_counts_when_its_group_changes() {
        let (source, member, target) = (CustomerId::generate(), CustomerId::generate(), CustomerId::generate());
        let since_joined = format!("n_{member}_sms");
        let group = Group {
            root: profile(
                &source,
                4,
                &[
                    ("members", AttributeValue::Ss(vec![member.to_string()])),
                    (since_joined.as_str(), AttributeValue::N("3".into())),
                ],
            ),
            members: vec![profile(
                &member,
                1,
                &[
                    ("root", AttributeValue::S(source.to_string())),
                    ("parent", AttributeValue::S(source.to_string())),
                    ("merge_id", AttributeValue::S(MergeId::generate().to_string())),
                    ("count_sms", AttributeValue::N("2".into())),
                ],
            )],
        };
        assert_eq!(group.root.member_counts[&member][&Channel::Sms], 3);
        let planned = plan_merge(
            TABLE,
            (&group, &alone(&target, 0)),
            &BTreeMap::new(),
            MergeId::generate(),
            LedgerEntry::new(LedgerAction::Merge, &actor()),
            Vec::new(),
            None,
        )
        .unwrap();
        let update_of = |customer: &CustomerId| {
            planned
                .writes
                .iter()
                .filter_map(|w| w.update())
                .find(|u| u.key().get("pk") == Some(&AttributeValue::S(keys::customer_pk(customer))))
                .cloned()
                .unwrap()
        };
        let source_update = update_of(&source);
        let names = source_update.expression_attribute_names().unwrap();
        assert!(source_update.update_expression().contains("#drop0"));
        assert_eq!(names["#drop0"], since_joined, "the root no longer counts for it");
        let member_update = update_of(&member);
        assert!(member_update.update_expression().contains("#settle0 :settle0"));
        assert_eq!(
            member_update.expression_attribute_names().unwrap()["#settle0"],
            "count_sms"
        );
        assert_eq!(
            member_update.expression_attribute_values().unwrap()[":settle0"],
            AttributeValue::N("3".into()),
            "its own count takes the 3"
        );
    }

    #[test]
    fn a_merge_of_two_customers_moves_the_source_under_the_target_in_one_transaction() {
        let (source, target) = (CustomerId::generate(), CustomerId::generate());
        let merge_id = MergeId::generate();
        let planned = plan_merge(
            TABLE,
            (&alone(&source, 3), &alone(&target, 7)),
            &BTreeMap::new(),
            merge_id.clone(),
            LedgerEntry::new(LedgerAction::Merge, &actor()),
            vec!["email:ada@example.com".into()],
            None,
        )
        .expect("a plan");
        let updates = updates(&planned.writes);
        assert_eq!(updates.len(), 2, "both profiles change: {updates:?}");
        let (_, source_update, source_condition) = updates
            .iter()
            .find(|(key, ..)| key.contains(source.as_str()))
            .expect("the source's profile is written");
        assert!(
            source_update.contains("parent = :parent, merge_id = :merge"),
            "{source_update}"
        );
        assert!(
            source_condition.starts_with("#version = :version"),
            "only at the version read"
        );
        let (_, target_update, _) = updates
            .iter()
            .find(|(key, ..)| key.contains(target.as_str()))
            .expect("the target's profile is written");
        assert!(target_update.contains("#members = :members"), "{target_update}");
        assert!(
            target_update.contains("#conversation = :state"),
            "the survivor continues the conversations"
        );
        assert_eq!(puts_under(&planned.writes, "MERGE#"), 1, "the merge record");
        assert_eq!(
            puts_under(&planned.writes, "LEDGER#"),
            2,
            "the fact on both customers' ledgers"
        );
        assert_eq!(planned.writes.len(), 5);
        assert_eq!(planned.entry.merge_id, Some(merge_id));
        assert_eq!(planned.entry.source.as_ref(), Some(&source));
        assert_eq!(planned.entry.target.as_ref(), Some(&target));
        assert_eq!(planned.entry.identifiers, ["email:ada@example.com"]);
    }

    #[test]
    fn merging_a_customer_into_its_own_group_is_refused() {
        let root = CustomerId::generate();
        let member = CustomerId::generate();
        let group = Group {
            root: profile(&root, 2, &[("members", AttributeValue::Ss(vec![member.to_string()]))]),
            members: vec![profile(
                &member,
                1,
                &[
                    ("root", string_value(root.as_str())),
                    ("parent", string_value(root.as_str())),
                    ("merge_id", string_value(MergeId::generate().as_str())),
                ],
            )],
        };
        let refused = plan_merge(
            TABLE,
            (&group, &group),
            &BTreeMap::new(),
            MergeId::generate(),
            LedgerEntry::new(LedgerAction::Merge, &actor()),
            Vec::new(),
            None,
        );
        assert_eq!(refused.map(|p| p.writes.len()), Err(StoreError::AlreadyMerged));
    }

    #[test]
    fn accepting_a_suggestion_decides_both_of_its_copies_in_the_merge() {
        let (claimant, owner) = (CustomerId::generate(), CustomerId::generate());
        let suggestion_id = SuggestionId::derive(&claimant, &owner, "email:ada@example.com");
        let suggestion = LinkSuggestion {
            suggestion_id: suggestion_id.clone(),
            claimant: claimant.clone(),
            owner: owner.clone(),
            identifier: "email:ada@example.com".into(),
            evidence: throughline_model::Evidence::Claimed,
            source: throughline_model::IdentifierSource::Provider(throughline_model::Provider::Ses),
            interaction_id: "ix_1".into(),
            status: SuggestionStatus::Open,
            created_at: chrono::Utc::now(),
            decided_at: None,
            decided_by: None,
            merge_id: None,
        };
        let planned = plan_merge(
            TABLE,
            (&alone(&claimant, 0), &alone(&owner, 0)),
            &BTreeMap::new(),
            MergeId::generate(),
            LedgerEntry::new(LedgerAction::Merge, &actor()),
            vec![suggestion.identifier.clone()],
            Some(&suggestion),
        )
        .expect("a plan");
        let decided: Vec<_> = updates(&planned.writes)
            .into_iter()
            .filter(|(key, ..)| key.contains(suggestion_id.as_str()))
            .collect();
        assert_eq!(decided.len(), 2, "the claimant's and the owner's copy");
        assert!(
            decided.iter().all(|(_, _, condition)| condition == "#status = :open"),
            "only if still open"
        );
        assert_eq!(planned.entry.suggestion_id, Some(suggestion_id));
        // A fresh profile (version 0) may predate the version attribute.
        assert!(
            updates(&planned.writes)
                .iter()
                .any(|(_, _, condition)| condition.starts_with("(attribute_not_exists(#version)"))
        );
    }

    #[test]
    fn a_group_too_large_for_one_transaction_is_refused_before_anything_is_written() {
        let source_root = CustomerId::generate();
        let members: Vec<CustomerId> = (0..99).map(|_| CustomerId::generate()).collect();
        let source = Group {
            root: profile(
                &source_root,
                1,
                &[(
                    "members",
                    AttributeValue::Ss(members.iter().map(|m| m.to_string()).collect()),
                )],
            ),
            members: members
                .iter()
                .map(|m| {
                    profile(
                        m,
                        1,
                        &[
                            ("root", string_value(source_root.as_str())),
                            ("parent", string_value(source_root.as_str())),
                            ("merge_id", string_value(MergeId::generate().as_str())),
                        ],
                    )
                })
                .collect(),
        };
        let refused = plan_merge(
            TABLE,
            (&source, &alone(&CustomerId::generate(), 0)),
            &BTreeMap::new(),
            MergeId::generate(),
            LedgerEntry::new(LedgerAction::Merge, &actor()),
            Vec::new(),
            None,
        );
        assert!(
            matches!(refused, Err(StoreError::GroupTooLarge { items, limit: 100 }) if items > 100),
            "{refused:?}"
        );
    }

    #[test]
    fn an_unmerge_cuts_the_merge_and_marks_its_record_inactive_only_if_active() {
        let (source, target) = (CustomerId::generate(), CustomerId::generate());
        let merge_id = MergeId::generate();
        let group = Group {
            root: profile(&target, 1, &[("members", AttributeValue::Ss(vec![source.to_string()]))]),
            members: vec![profile(
                &source,
                1,
                &[
                    ("root", string_value(target.as_str())),
                    ("parent", string_value(target.as_str())),
                    ("merge_id", string_value(merge_id.as_str())),
                ],
            )],
        };
        let planned = plan_unmerge(
            TABLE,
            &group,
            &BTreeMap::new(),
            &merge_id,
            (&source, &target),
            &[],
            LedgerEntry::new(LedgerAction::Unmerge, &actor()),
        )
        .expect("a plan");
        let updates = updates(&planned.writes);
        let (_, source_update, _) = updates
            .iter()
            .find(|(key, ..)| key == &format!("CUSTOMER#{source}|PROFILE"))
            .expect("the source's profile is written");
        assert!(source_update.contains("REMOVE parent, merge_id"), "{source_update}");
        let (_, record_update, record_condition) = updates
            .iter()
            .find(|(key, ..)| key.contains(merge_id.as_str()))
            .expect("the merge record");
        assert!(record_update.starts_with("SET active = :no"));
        assert_eq!(record_condition, "active = :yes");
        assert_eq!(puts_under(&planned.writes, "LEDGER#"), 2);
        assert_eq!(
            plan_unmerge(
                TABLE,
                &alone(&target, 0),
                &BTreeMap::new(),
                &merge_id,
                (&source, &target),
                &[],
                LedgerEntry::new(LedgerAction::Unmerge, &actor())
            )
            .map(|p| p.writes.len()),
            Err(StoreError::NotMerged(merge_id.clone()))
        );
    }
}
