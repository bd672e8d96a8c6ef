//! A group's timeline, newest first: one Query per member partition per page, merged by sort
//! key. The cursor is a position in the timeline (the sort key `TL#<time>#<interaction id>`,
//! unique across partitions), not a partition's key: new interactions land in front of it and
//! merges or unmerges change which partitions are read, never where the cursor points. Also:
//! splitting and joining conversations.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use throughline_model::{Channel, ConversationId, DeliveryStatus, Direction, Interaction, InteractionId};

use crate::conversation::open_conversation_update;
use crate::items::{Expr, Item, keys, millis, number_value, string_attr, string_value, tx_update, update_expression};
use crate::ledger::{LedgerAction, LedgerEntry, ledger_writes};
use crate::profiles::Group;
use crate::{Actor, Attempt, CustomerId, MAX_PAGE_SIZE, StoreError, TimelineStore, dynamo, retry_optimistic, written};

/// One interaction on a group's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// The group member whose identifier it came in on (whose partition holds it).
    pub customer_id: CustomerId,
    /// The interaction as recorded, with its conversation id and any deletion or edit.
    pub interaction: Interaction,
}

/// What a page is restricted to. Time bounds are inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineFilter {
    /// Only interactions on this channel.
    pub channel: Option<Channel>,
    /// Only interactions in this direction.
    pub direction: Option<Direction>,
    /// Only interactions in this conversation.
    pub conversation: Option<ConversationId>,
    /// Only outbound messages whose delivery is in this status (`failed`: the replies to look at).
    pub status: Option<DeliveryStatus>,
    /// Only interactions that occurred at or after this (to the millisecond).
    pub from: Option<DateTime<Utc>>,
    /// Only interactions that occurred at or before this (to the millisecond).
    pub to: Option<DateTime<Utc>>,
}

/// One page of a group's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelinePage {
    /// The group's root.
    pub customer_id: CustomerId,
    /// Newest first. With filters a page may hold fewer entries than asked (even none) while
    /// `next_cursor` is set: keep following it.
    pub entries: Vec<TimelineEntry>,
    /// Pass back to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub(crate) fn encode_cursor(sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(sk)
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<String, StoreError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let sk = String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)?;
    // Exactly a timeline sort key: `TL#<RFC 3339 millis>#<interaction id>`.
    let (time, id) = sk
        .strip_prefix(keys::TIMELINE_PREFIX)
        .and_then(|rest| rest.split_once('#'))
        .ok_or(StoreError::BadCursor)?;
    let time = DateTime::parse_from_rfc3339(time).map_err(|_| StoreError::BadCursor)?;
    let id = InteractionId::try_from(id.to_owned()).map_err(|_| StoreError::BadCursor)?;
    if keys::timeline_sk(time.to_utc(), &id) == sk {
        Ok(sk)
    } else {
        Err(StoreError::BadCursor)
    }
}

/// What one member's Query returned: its matching entries (newest first) and, when it stopped
/// before the end, the last sort key it evaluated.
struct MemberPage {
    entries: Vec<(String, TimelineEntry)>,
    frontier: Option<String>,
}

/// Merges members' pages: every entry at or above the highest frontier is known for sure (each
/// member evaluated everything above its own frontier); the page is the newest `limit` of
/// those. The next cursor is the last entry taken, or the frontier when fewer were known.
fn merge_pages(pages: Vec<MemberPage>, limit: usize) -> (Vec<TimelineEntry>, Option<String>) {
    let frontier = pages.iter().filter_map(|p| p.frontier.clone()).max();
    let mut known: Vec<(String, TimelineEntry)> = pages
        .into_iter()
        .flat_map(|p| p.entries)
        .filter(|(sk, _)| frontier.as_ref().is_none_or(|f| sk >= f))
        .collect();
    known.sort_by(|a, b| b.0.cmp(&a.0));
    if known.len() > limit {
        known.truncate(limit);
        let cursor = known.last().map(|(sk, _)| encode_cursor(sk));
        return (known.into_iter().map(|(_, e)| e).collect(), cursor);
    }
    (
        known.into_iter().map(|(_, e)| e).collect(),
        frontier.map(|f| encode_cursor(&f)),
    )
}

fn entry_from_item(customer: &CustomerId, item: Item) -> Result<(String, TimelineEntry), StoreError> {
    let sk = string_attr(&item, "sk")?;
    let interaction = crate::items::stored_interaction(item)?;
    Ok((
        sk,
        TimelineEntry {
            customer_id: customer.clone(),
            interaction,
        },
    ))
}

impl TimelineStore {
    /// One page of a customer's (group's) timeline, newest first: one Query per member.
    pub async fn timeline(
        &self,
        customer: &CustomerId,
        limit: usize,
        cursor: Option<&str>,
        filter: &TimelineFilter,
    ) -> Result<TimelinePage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let before = cursor.map(decode_cursor).transpose()?;
        let group = self.load_group(customer, false).await?;
        let pages = futures_util::future::try_join_all(
            group
                .ids()
                .into_iter()
                .map(|member| self.member_page(member, limit, before.clone(), filter)),
        )
        .await?;
        let (entries, next_cursor) = merge_pages(pages, limit);
        let entries = self.with_watermarks(entries).await?;
        Ok(TimelinePage {
            customer_id: group.root.customer,
            entries,
            next_cursor,
        })
    }

    async fn member_page(
        &self,
        member: CustomerId,
        limit: usize,
        before: Option<String>,
        filter: &TimelineFilter,
    ) -> Result<MemberPage, StoreError> {
        let low = match filter.from {
            Some(from) => format!("{}{}", keys::TIMELINE_PREFIX, millis(from)),
            None => keys::TIMELINE_PREFIX.to_owned(),
        };
        // `$` sorts right after `#`: the end of the `TL#` range.
        let mut high = match filter.to {
            Some(to) => format!("{}{}#~", keys::TIMELINE_PREFIX, millis(to)),
            None => "TL$".to_owned(),
        };
        if let Some(before) = &before {
            high = high.min(before.clone());
        }
        let mut conditions = Vec::new();
        let mut expr = Expr::new()
            .value(":pk", string_value(keys::customer_pk(&member)))
            .value(":low", string_value(&low))
            .value(":high", string_value(&high));
        if let Some(channel) = filter.channel {
            conditions.push("#channel = :channel");
            expr = expr
                .name("#channel", "channel")
                .value(":channel", string_value(channel.as_str()));
        }
        if let Some(direction) = filter.direction {
            conditions.push("#direction = :direction");
            expr = expr
                .name("#direction", "direction")
                .value(":direction", string_value(direction.as_str()));
        }
        if let Some(status) = filter.status {
            conditions.push("#delivery.#delivery_status = :delivery_status");
            expr = expr
                .name("#delivery", "delivery")
                .name("#delivery_status", "status")
                .value(":delivery_status", string_value(status.as_str()));
        }
        if let Some(conversation) = &filter.conversation {
            conditions.push("#conversation = :conversation");
            expr = expr
                .name("#conversation", "conversation_id")
                .value(":conversation", string_value(conversation.as_str()));
        }
        let mut entries = Vec::new();
        if low > high {
            return Ok(MemberPage {
                entries,
                frontier: None,
            });
        }
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .set_filter_expression((!conditions.is_empty()).then(|| conditions.join(" AND ")))
            .set_expression_attribute_names((!expr.names.is_empty()).then(|| expr.names.clone()))
            .set_expression_attribute_values(Some(expr.values.clone()))
            .scan_index_forward(false)
            // One more: the entry at the cursor itself is read and dropped.
            .limit(limit as i32 + 1)
            .send()
            .await
            .map_err(dynamo("Query"))?;
        for item in output.items.unwrap_or_default() {
            let (sk, entry) = entry_from_item(&member, item)?;
            if before.as_ref().is_none_or(|b| &sk < b) {
                entries.push((sk, entry));
            }
        }
        let frontier = output
            .last_evaluated_key
            .map(|key| string_attr(&key, "sk"))
            .transpose()?;
        Ok(MemberPage { entries, frontier })
    }

    /// When a customer's first and last interactions happened (two one-item Queries).
    pub(crate) async fn first_and_last_seen(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        let mut ends = Vec::with_capacity(2);
        for forward in [true, false] {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :tl)")
                .expression_attribute_values(":pk", string_value(keys::customer_pk(customer)))
                .expression_attribute_values(":tl", string_value(keys::TIMELINE_PREFIX))
                .projection_expression("occurred_at")
                .scan_index_forward(forward)
                .limit(1)
                .send()
                .await
                .map_err(dynamo("Query"))?;
            match output.items.unwrap_or_default().first() {
                Some(item) => ends.push(
                    crate::items::time_attr(item, "occurred_at")?
                        .ok_or_else(|| StoreError::Corrupt("entry without occurred_at".into()))?,
                ),
                None => return Ok(None),
            }
        }
        Ok(Some((ends[0], ends[1])))
    }

    /// Every entry of a group (all pages), newest first, optionally of one conversation.
    pub(crate) async fn all_entries(
        &self,
        group: &Group,
        conversation: Option<&ConversationId>,
    ) -> Result<Vec<(String, TimelineEntry)>, StoreError> {
        let mut all = Vec::new();
        for member in group.ids() {
            for item in self
                .query_prefix(&keys::customer_pk(&member), keys::TIMELINE_PREFIX, true)
                .await?
            {
                let (sk, entry) = entry_from_item(&member, item)?;
                if conversation.is_none_or(|c| entry.interaction.conversation_id.as_ref() == Some(c)) {
                    all.push((sk, entry));
                }
            }
        }
        all.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(all)
    }

    /// Splits a conversation at an interaction: it and everything after it in that
    /// conversation become a new conversation (named after it). Returns the new id.
    pub async fn split_conversation(
        &self,
        customer: &CustomerId,
        conversation: &ConversationId,
        at: &InteractionId,
        actor: &Actor,
    ) -> Result<(ConversationId, LedgerEntry), StoreError> {
        let group = self.load_group(customer, true).await?;
        let entries = self.all_entries(&group, Some(conversation)).await?;
        let (split_sk, split_entry) = entries
            .iter()
            .find(|(_, e)| &e.interaction.id == at)
            .ok_or_else(|| StoreError::NotFound(format!("interaction {at} in conversation {conversation}")))?;
        let new = ConversationId::opened_by(at);
        if &new == conversation || entries.iter().all(|(sk, _)| sk >= split_sk) {
            return Err(StoreError::NothingToSplit);
        }
        let moving: Vec<&(String, TimelineEntry)> = entries.iter().filter(|(sk, _)| sk >= split_sk).collect();
        for (sk, entry) in &moving {
            self.relabel(&entry.customer_id, sk, conversation, &new).await?;
        }
        let split_at = split_entry.interaction.occurred_at;
        self.change_conversations(&group.root.customer, |state| {
            state.split(conversation, new.clone(), split_at);
            Ok(())
        })
        .await?;
        let mut entry = LedgerEntry::new(LedgerAction::ConversationSplit, actor);
        entry.conversations = vec![conversation.to_string(), new.to_string()];
        self.append_ledger(&entry, &group.root.customer).await?;
        Ok((new, entry))
    }

    /// Joins conversations into the first one given.
    pub async fn join_conversations(
        &self,
        customer: &CustomerId,
        conversations: &[ConversationId],
        actor: &Actor,
    ) -> Result<LedgerEntry, StoreError> {
        let (kept, absorbed) = conversations.split_first().ok_or(StoreError::NothingToJoin)?;
        let group = self.load_group(customer, true).await?;
        for other in absorbed.iter().filter(|c| *c != kept) {
            let entries = self.all_entries(&group, Some(other)).await?;
            if entries.is_empty() {
                return Err(StoreError::NotFound(format!("conversation {other}")));
            }
            for (sk, entry) in &entries {
                self.relabel(&entry.customer_id, sk, other, kept).await?;
            }
            self.change_conversations(&group.root.customer, |state| {
                state.join(kept, other);
                Ok(())
            })
            .await?;
        }
        let mut entry = LedgerEntry::new(LedgerAction::ConversationJoin, actor);
        entry.conversations = conversations.iter().map(|c| c.to_string()).collect();
        self.append_ledger(&entry, &group.root.customer).await?;
        Ok(entry)
    }

    /// Moves one entry from conversation `from` to `to` (a no-op if it moved already).
    async fn relabel(
        &self,
        customer: &CustomerId,
        sk: &str,
        from: &ConversationId,
        to: &ConversationId,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(crate::items::key_item((
                keys::customer_pk(customer),
                sk.to_owned(),
            ))))
            .update_expression("SET conversation_id = :to")
            .condition_expression("conversation_id = :from")
            .expression_attribute_values(":to", string_value(to.as_str()))
            .expression_attribute_values(":from", string_value(from.as_str()))
            .send()
            .await;
        written("UpdateItem", result).map(drop)
    }

    /// Read-modify-write of a root's whole conversation state (its open conversation and its
    /// history), only if unchanged since read; `change` may refuse (nothing is written).
    pub(crate) async fn change_conversations<T>(
        &self,
        root: &CustomerId,
        change: impl Fn(&mut crate::conversation::ConversationState) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let change = &change;
        retry_optimistic("changing conversations", |_| async move {
            let profile = self
                .profile_item(root, true)
                .await?
                .ok_or_else(|| StoreError::CustomerNotFound(root.to_string()))?;
            let (mut state, history) = self.conversations(&profile, true).await?;
            let changed = change(&mut state)?;
            let (open, history_write) = history.write_back(&self.table, root, &state)?;
            let (set, remove, expr) = open_conversation_update(&open, Expr::new().value(":one", number_value(1)));
            let (condition, expr) = profile.unchanged(expr);
            let update = update_expression(&set, &remove, &["#version :one".into()]);
            let mut writes = vec![tx_update(
                &self.table,
                keys::profile(root),
                &update,
                Some(&condition),
                expr,
            )?];
            writes.extend(history_write);
            Ok(if self.transact(writes).await? {
                Attempt::Done(changed)
            } else {
                Attempt::Again
            })
        })
        .await
    }

    pub(crate) async fn append_ledger(&self, entry: &LedgerEntry, customer: &CustomerId) -> Result<(), StoreError> {
        let writes = ledger_writes(&self.table, entry, [customer])?;
        if self.transact(writes).await? {
            Ok(())
        } else {
            Err(StoreError::Contention("appending to the ledger"))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;
    use throughline_model::{E164, Handle, NewInteraction, Provider, ProviderMessageId};

    use super::*;

    fn entry(member: usize, n: usize, minute: i64, channel: Channel) -> (String, TimelineEntry) {
        let phone = Handle::Phone {
            number: E164::parse("+14155550100").unwrap(),
        };
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap() + chrono::TimeDelta::minutes(minute);
        let interaction = Interaction::new(NewInteraction {
            channel,
            provider: Provider::Twilio,
            direction: Direction::Inbound,
            customer: phone.clone(),
            business_endpoint: phone,
            provider_message_id: ProviderMessageId::parse(&format!("m{member}-{n}")).unwrap(),
            occurred_at: at,
            received_at: at,
        });
        let customer = CustomerId::parse(&format!("cus_{member:026}")).unwrap();
        (
            keys::timeline_sk(at, &interaction.id),
            TimelineEntry {
                customer_id: customer,
                interaction,
            },
        )
    }

    /// What DynamoDB answers `member_page`'s Query: `Limit` counts items read before the
    /// filter, the item at the cursor is read (BETWEEN is inclusive) and dropped, and a read
    /// that stops at the limit returns the last key it read.
    fn query(partition: &[(String, TimelineEntry)], before: Option<&str>, limit: usize, only_sms: bool) -> MemberPage {
        let mut newest_first: Vec<&(String, TimelineEntry)> = partition
            .iter()
            .filter(|(sk, _)| before.is_none_or(|b| sk.as_str() <= b))
            .collect();
        newest_first.sort_by(|a, b| b.0.cmp(&a.0));
        let read: Vec<&(String, TimelineEntry)> = newest_first.into_iter().take(limit + 1).collect();
        let frontier = (read.len() == limit + 1).then(|| read[limit].0.clone());
        let entries = read
            .into_iter()
            .filter(|(sk, e)| {
                before.is_none_or(|b| sk.as_str() < b) && (!only_sms || e.interaction.channel == Channel::Sms)
            })
            .cloned()
            .collect();
        MemberPage { entries, frontier }
    }

    proptest! {
        /// Following cursors over any group (1 to 4 members, any sizes, with or without a
        /// filter) yields every matching entry exactly once, newest first, in pages of at most
        /// `limit`.
        #[test]
        fn pages_of_a_group_cover_its_timeline_exactly_once(
            members in prop::collection::vec(prop::collection::vec((0i64..500, any::<bool>()), 0..25), 1..5),
            limit in 1usize..8,
            only_sms in any::<bool>(),
        ) {
            let partitions: Vec<Vec<(String, TimelineEntry)>> = members
                .iter()
                .enumerate()
                .map(|(m, entries)| {
                    entries
                        .iter()
                        .enumerate()
                        .map(|(n, (minute, sms))| entry(m, n, *minute, if *sms { Channel::Sms } else { Channel::Email }))
                        .collect()
                })
                .collect();
            let mut expected: Vec<String> = partitions
                .iter()
                .flatten()
                .filter(|(_, e)| !only_sms || e.interaction.channel == Channel::Sms)
                .map(|(sk, _)| sk.clone())
                .collect();
            expected.sort_by(|a, b| b.cmp(a));
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..1000 {
                let before = cursor.as_deref().map(|c| decode_cursor(c).unwrap());
                let pages = partitions.iter().map(|p| query(p, before.as_deref(), limit, only_sms)).collect();
                let (entries, next) = merge_pages(pages, limit);
                prop_assert!(entries.len() <= limit);
                seen.extend(entries.iter().map(|e| keys::timeline_sk(e.interaction.occurred_at, &e.interaction.id)));
                match next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            prop_assert_eq!(seen, expected);
        }
    }

    #[test]
    fn timeline_sort_keys_order_by_time() {
        let id = InteractionId::try_from(format!("ix_{}", "0".repeat(32))).unwrap();
        let t1 = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let t2 = t1 + chrono::TimeDelta::milliseconds(500);
        let t3 = Utc.with_ymd_and_hms(2026, 10, 2, 3, 4, 5).unwrap();
        let (a, b, c) = (
            keys::timeline_sk(t1, &id),
            keys::timeline_sk(t2, &id),
            keys::timeline_sk(t3, &id),
        );
        assert_eq!(a, format!("TL#2026-01-02T03:04:05.000Z#{id}"));
        assert!(a < b && b < c);
        assert!(c.as_str() < "TL$", "the end of the TL# range");
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let sk = format!("TL#2026-01-02T03:04:05.000Z#ix_{}", "0".repeat(32));
        assert_eq!(decode_cursor(&encode_cursor(&sk)).unwrap(), sk);
        for bad in [
            "TL#2026-01-02T03:04:05.000Z#ix_0",
            "TL#yesterday#ix_",
            &format!("{sk}x"),
            &"TL#".repeat(400),
        ] {
            assert!(
                matches!(decode_cursor(&encode_cursor(bad)), Err(StoreError::BadCursor)),
                "{bad}"
            );
        }
        assert!(matches!(decode_cursor("!!"), Err(StoreError::BadCursor)));
        assert!(matches!(
            decode_cursor(&encode_cursor("HANDLE#x")),
            Err(StoreError::BadCursor)
        ));
        assert!(matches!(
            decode_cursor(&encode_cursor("TL#")),
            Err(StoreError::BadCursor)
        ));
    }
}
