//! Conversations as agents work them: a customer's conversations with their status, an agent's
//! changes (resolve, reopen, assign, reasons), each a ledger fact, and the queue of open work.
//! The lifecycle itself is `throughline_service::Lifecycle` (pure), kept on each conversation's
//! record in its group's state (`conversation.rs`): every interaction updates it in the commit
//! it makes anyway, so keeping it costs no write of its own.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use throughline_model::{Channel, ConversationId};
use throughline_service::rollup::Resolved;
use throughline_service::{Lifecycle, LifecycleRefusal, Resolution};

use crate::conversation::{ConversationRecord, QUEUE_INDEX, QUEUE_OPEN, ReasonMark};
use crate::items::{Item, keys, optional_string_attr, string_attr, string_value};
use crate::ledger::{LedgerAction, LedgerEntry};
use crate::profiles::Group;
use crate::{Actor, CustomerId, MAX_PAGE_SIZE, StoreError, TimelineStore, dynamo};

/// One conversation of a customer (a group), as agents see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Named after the interaction that opened it.
    pub id: ConversationId,
    /// The group's root.
    pub customer_id: CustomerId,
    /// Its activity span: its earliest interaction's time.
    pub started_at: DateTime<Utc>,
    /// Its latest interaction's time.
    pub last_at: DateTime<Utc>,
    /// The email thread it holds (the email connector's thread key), if any.
    pub email_thread: Option<String>,
    /// Its status, assignee and times.
    pub lifecycle: Lifecycle,
    /// Its reasons for contact, suggested and confirmed.
    pub reasons: Vec<ReasonMark>,
}

impl Conversation {
    pub(crate) fn of(customer: &CustomerId, record: &ConversationRecord) -> Self {
        Self {
            id: record.id.clone(),
            customer_id: customer.clone(),
            started_at: record.started_at,
            last_at: record.last_at,
            email_thread: record.email_thread.clone(),
            lifecycle: record.lifecycle.clone(),
            reasons: record.reasons.clone(),
        }
    }
}

/// An agent's change to a conversation. Reason codes are the taxonomy's current codes (the API
/// resolves aliases and refuses unknown codes before this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationChange {
    /// Resolve it; `reasons`, when given, become its confirmed reasons; with `reason_required`
    /// a conversation that would have no confirmed reason is refused.
    Resolve {
        /// The codes to confirm (none: its confirmed reasons stay).
        reasons: Vec<String>,
        /// Refuse it when it would have no confirmed reason.
        reason_required: bool,
    },
    /// Open it again.
    Reopen,
    /// Assign it to a principal, or to nobody.
    Assign(Option<String>),
    /// Its confirmed reasons become exactly these; suggestions stay suggestions.
    Reasons(Vec<String>),
}

/// What a change did.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    /// The conversation as it is now.
    pub conversation: Conversation,
    /// The ledger fact.
    pub entry: LedgerEntry,
    /// For a resolution: when, and how long after it opened.
    pub resolution: Option<Resolution>,
}

/// Sets the confirmed reasons of a conversation: each code given is confirmed (a suggestion of
/// it keeps its rule), every other confirmed one goes, unconfirmed suggestions stay. Pure.
fn confirm_reasons(marks: &mut Vec<ReasonMark>, codes: &[String]) {
    marks.retain(|mark| !mark.confirmed || codes.contains(&mark.code));
    for code in codes {
        match marks.iter_mut().find(|mark| &mark.code == code) {
            Some(mark) => mark.confirmed = true,
            None => marks.push(ReasonMark {
                code: code.clone(),
                confirmed: true,
                rule: None,
            }),
        }
    }
}

/// Applies `change` to a conversation's record at `now`. Pure.
fn apply_change(
    record: &mut ConversationRecord,
    change: &ConversationChange,
    now: DateTime<Utc>,
) -> Result<Option<Resolution>, StoreError> {
    let refused = |refusal: LifecycleRefusal| match refusal {
        LifecycleRefusal::AlreadyResolved => StoreError::AlreadyResolved(record.id.to_string()),
        LifecycleRefusal::NotResolved => StoreError::NotResolved(record.id.to_string()),
    };
    match change {
        ConversationChange::Resolve {
            reasons,
            reason_required,
        } => {
            if !reasons.is_empty() {
                confirm_reasons(&mut record.reasons, reasons);
            }
            if *reason_required && !record.reasons.iter().any(|r| r.confirmed) {
                return Err(StoreError::ReasonRequired);
            }
            let opened = record.started_at;
            record.lifecycle.resolve(now, opened).map(Some).map_err(refused)
        }
        ConversationChange::Reopen => record.lifecycle.reopen().map(|()| None).map_err(refused),
        ConversationChange::Assign(assignee) => {
            record.lifecycle.assign(assignee.clone());
            Ok(None)
        }
        ConversationChange::Reasons(codes) => {
            confirm_reasons(&mut record.reasons, codes);
            Ok(None)
        }
    }
}

/// What the queue of open work lists: one customer's open conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The open conversation.
    pub conversation_id: ConversationId,
    /// The group's root.
    pub customer_id: CustomerId,
    /// Where it opened.
    pub channel: Option<Channel>,
    /// Who it is assigned to.
    pub assignee: Option<String>,
    /// The customer waits since then (or, with nobody waiting, since it opened).
    pub waiting_since: DateTime<Utc>,
}

/// What the queue is restricted to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    /// Only conversations that opened on this channel.
    pub channel: Option<Channel>,
    /// Only conversations assigned to this principal.
    pub assignee: Option<String>,
}

/// One page of the queue, newest waiting first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePage {
    /// Newest waiting first.
    pub entries: Vec<QueueEntry>,
    /// Pass back for the next page; with filters a page may be short (even empty) with one.
    pub next_cursor: Option<String>,
}

/// Queries one page of the queue may take before it answers short with a cursor.
const QUEUE_QUERIES: usize = 5;

/// The queue's cursor: the index position of the last entry evaluated (its profile's key and
/// its `queue_at`), base64url of `<pk> <queue_at>`.
fn encode_queue_cursor(pk: &str, at: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{pk} {at}"))
}

fn decode_queue_cursor(cursor: &str) -> Result<Item, StoreError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)?;
    let (pk, at) = text.split_once(' ').ok_or(StoreError::BadCursor)?;
    let customer = pk.strip_prefix(keys::CUSTOMER_PREFIX).ok_or(StoreError::BadCursor)?;
    CustomerId::parse(customer).ok_or(StoreError::BadCursor)?;
    queue_position(at).ok_or(StoreError::BadCursor)?;
    Ok(Item::from([
        ("pk".to_owned(), string_value(pk)),
        ("sk".to_owned(), string_value(keys::PROFILE)),
        ("queue".to_owned(), string_value(QUEUE_OPEN)),
        ("queue_at".to_owned(), string_value(at)),
    ]))
}

/// `queue_at` = `<waiting since, RFC 3339 millis>#<conversation id>`.
fn queue_position(at: &str) -> Option<(DateTime<Utc>, ConversationId)> {
    let (since, conversation) = at.split_once('#')?;
    let since = DateTime::parse_from_rfc3339(since).ok()?.to_utc();
    let conversation = ConversationId::try_from(conversation.to_owned()).ok()?;
    Some((since, conversation))
}

fn queue_entry(item: &Item) -> Result<QueueEntry, StoreError> {
    let corrupt = || StoreError::Corrupt("queue entry".into());
    let pk = string_attr(item, "pk")?;
    let customer_id = pk
        .strip_prefix(keys::CUSTOMER_PREFIX)
        .and_then(CustomerId::parse)
        .ok_or_else(corrupt)?;
    let (waiting_since, conversation_id) = queue_position(&string_attr(item, "queue_at")?).ok_or_else(corrupt)?;
    Ok(QueueEntry {
        conversation_id,
        customer_id,
        channel: optional_string_attr(item, "queue_channel").and_then(|c| Channel::parse(&c)),
        assignee: optional_string_attr(item, "queue_assignee"),
        waiting_since,
    })
}

impl TimelineStore {
    /// A customer's (group's) remembered conversations, the most recently active first.
    pub async fn customer_conversations(
        &self,
        customer: &CustomerId,
    ) -> Result<(CustomerId, Vec<Conversation>), StoreError> {
        let group = self.load_group(customer, false).await?;
        let (state, _) = self.conversations(&group.root, false).await?;
        let root = group.root.customer.clone();
        let mut conversations: Vec<Conversation> = state
            .recent
            .iter()
            .map(|record| Conversation::of(&root, record))
            .collect();
        conversations.sort_by(|a, b| (b.last_at, &b.id).cmp(&(a.last_at, &a.id)));
        Ok((root, conversations))
    }

    /// The group whose state holds `conversation`: that of the customer its opening
    /// interaction's marker names.
    async fn conversation_group(&self, conversation: &ConversationId) -> Result<Group, StoreError> {
        let not_found = || StoreError::NotFound(format!("conversation {conversation}"));
        let marker = self
            .get(keys::interaction(&conversation.opener()), false)
            .await?
            .ok_or_else(not_found)?;
        let customer = optional_string_attr(&marker, "customer_id")
            .and_then(|c| CustomerId::parse(&c))
            .ok_or_else(not_found)?;
        self.load_group(&customer, false).await
    }

    /// One conversation.
    pub async fn conversation(&self, conversation: &ConversationId) -> Result<Conversation, StoreError> {
        let group = self.conversation_group(conversation).await?;
        let (state, _) = self.conversations(&group.root, false).await?;
        state
            .recent
            .iter()
            .find(|r| &r.id == conversation)
            .map(|record| Conversation::of(&group.root.customer, record))
            .ok_or_else(|| StoreError::NotFound(format!("conversation {conversation}")))
    }

    /// An agent's change to a conversation, read-modify-written on its group's state, then a
    /// ledger fact in the root's ledger.
    pub async fn change_conversation(
        &self,
        conversation: &ConversationId,
        change: &ConversationChange,
        actor: &Actor,
    ) -> Result<Changed, StoreError> {
        let root = self.conversation_group(conversation).await?.root.customer;
        let now = Utc::now();
        let (record, resolution) = self
            .change_conversations(&root, |state| {
                let record = state
                    .recent
                    .iter_mut()
                    .find(|r| &r.id == conversation)
                    .ok_or_else(|| StoreError::NotFound(format!("conversation {conversation}")))?;
                let resolution = apply_change(record, change, now)?;
                Ok((record.clone(), resolution))
            })
            .await?;
        let (action, reason_codes, assignee) = match change {
            ConversationChange::Resolve { .. } => (LedgerAction::ConversationResolved, confirmed(&record), None),
            ConversationChange::Reopen => (LedgerAction::ConversationReopened, Vec::new(), None),
            ConversationChange::Assign(assignee) => (LedgerAction::ConversationAssigned, Vec::new(), assignee.clone()),
            ConversationChange::Reasons(_) => (LedgerAction::ConversationReasons, confirmed(&record), None),
        };
        let mut entry = LedgerEntry::new(action, actor);
        entry.conversations = vec![conversation.to_string()];
        entry.reason_codes = reason_codes;
        entry.assignee = assignee;
        self.append_ledger(&entry, &root).await?;
        if let Some(resolved) = resolution.as_ref().and_then(|r| resolved(&record, r)) {
            self.roll_up_resolution(&resolved).await;
        }
        Ok(Changed {
            conversation: Conversation::of(&root, &record),
            entry,
            resolution,
        })
    }

    /// One page of the queue of open work, newest waiting first: Queries of the sparse
    /// `QueueIndex` (its one partition, `open`), the filters applied by DynamoDB.
    pub async fn open_queue(
        &self,
        filter: &QueueFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<QueuePage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let mut start = cursor.map(decode_queue_cursor).transpose()?;
        let mut entries = Vec::new();
        for _ in 0..QUEUE_QUERIES {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(QUEUE_INDEX)
                .key_condition_expression("#queue = :open")
                .expression_attribute_names("#queue", "queue")
                .expression_attribute_values(":open", string_value(QUEUE_OPEN))
                .scan_index_forward(false)
                .limit(i32::try_from(limit - entries.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            let mut conditions = Vec::new();
            if let Some(channel) = filter.channel {
                conditions.push("#channel = :channel");
                query = query
                    .expression_attribute_names("#channel", "queue_channel")
                    .expression_attribute_values(":channel", string_value(channel.as_str()));
            }
            if let Some(assignee) = &filter.assignee {
                conditions.push("#assignee = :assignee");
                query = query
                    .expression_attribute_names("#assignee", "queue_assignee")
                    .expression_attribute_values(":assignee", string_value(assignee));
            }
            if !conditions.is_empty() {
                query = query.filter_expression(conditions.join(" AND "));
            }
            let output = query.send().await.map_err(dynamo("Query"))?;
            for item in output.items() {
                entries.push(queue_entry(item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() || entries.len() >= limit {
                break;
            }
        }
        let next_cursor = match &start {
            Some(key) => Some(encode_queue_cursor(
                &string_attr(key, "pk")?,
                &string_attr(key, "queue_at")?,
            )),
            None => None,
        };
        Ok(QueuePage { entries, next_cursor })
    }
}

/// A resolved conversation as its rollup needs it (none for one no customer or agent ever
/// wrote in: it counts on no channel).
fn resolved(record: &ConversationRecord, resolution: &Resolution) -> Option<Resolved> {
    let lifecycle = &record.lifecycle;
    Some(Resolved {
        at: resolution.at,
        opened_at: record.started_at,
        channel: lifecycle.channel?,
        assignee: lifecycle.assignee.clone(),
        confirmed: confirmed(record),
        suggested: record
            .reasons
            .iter()
            .filter(|r| !r.confirmed)
            .map(|r| r.code.clone())
            .collect(),
        first_response: lifecycle.first_customer_at.zip(lifecycle.first_response_at),
    })
}

fn confirmed(record: &ConversationRecord) -> Vec<String> {
    record
        .reasons
        .iter()
        .filter(|r| r.confirmed)
        .map(|r| r.code.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use throughline_service::ConversationStatus;

    use super::*;

    fn record() -> ConversationRecord {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        let opener = throughline_model::InteractionId::try_from(format!("ix_{}", "a".repeat(32))).unwrap();
        ConversationRecord::opened(ConversationId::opened_by(&opener), at, None)
    }

    fn mark(code: &str, confirmed: bool) -> ReasonMark {
        ReasonMark {
            code: code.into(),
            confirmed,
            rule: (!confirmed).then(|| format!("{code}:0")),
        }
    }

    #[test]
    fn confirming_reasons_keeps_suggestions_apart_and_replaces_the_confirmed_set() {
        let mut marks = vec![mark("billing/refund", false), mark("delivery/late", false)];
        confirm_reasons(&mut marks, &["billing/refund".into(), "account/login".into()]);
        assert_eq!(
            marks,
            [
                ReasonMark {
                    code: "billing/refund".into(),
                    confirmed: true,
                    rule: Some("billing/refund:0".into())
                },
                mark("delivery/late", false),
                mark("account/login", true),
            ]
        );
        confirm_reasons(&mut marks, &[]);
        assert_eq!(
            marks,
            [mark("delivery/late", false)],
            "an emptied set leaves only suggestions"
        );
    }

    #[test]
    fn resolving_without_a_reason_is_refused_when_one_is_required() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
        let mut conversation = record();
        conversation.reasons.push(mark("delivery/late", false));
        let resolve = |reasons: Vec<String>| ConversationChange::Resolve {
            reasons,
            reason_required: true,
        };
        assert!(matches!(
            apply_change(&mut conversation, &resolve(vec![]), now),
            Err(StoreError::ReasonRequired)
        ));
        assert_eq!(conversation.lifecycle.status, ConversationStatus::Open, "unchanged");
        let resolution = apply_change(&mut conversation, &resolve(vec!["delivery/late".into()]), now)
            .unwrap()
            .unwrap();
        assert_eq!(resolution.after, chrono::TimeDelta::hours(1));
        assert_eq!(conversation.lifecycle.status, ConversationStatus::Resolved);
        assert!(matches!(
            apply_change(&mut conversation, &resolve(vec![]), now),
            Err(StoreError::AlreadyResolved(_))
        ));
        apply_change(&mut conversation, &ConversationChange::Reopen, now).unwrap();
        assert!(matches!(
            apply_change(&mut conversation, &ConversationChange::Reopen, now),
            Err(StoreError::NotResolved(_))
        ));
    }

    #[test]
    fn queue_cursors_round_trip_and_reject_garbage() {
        let pk = format!("CUSTOMER#{}", CustomerId::generate());
        let at = format!("2026-11-24T09:00:00.000Z#cv_{}", "a".repeat(32));
        let key = decode_queue_cursor(&encode_queue_cursor(&pk, &at)).unwrap();
        assert_eq!(string_attr(&key, "pk").unwrap(), pk);
        assert_eq!(string_attr(&key, "queue_at").unwrap(), at);
        for bad in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode("CUSTOMER#x 2026"),
            &URL_SAFE_NO_PAD.encode(&pk),
        ] {
            assert!(matches!(decode_queue_cursor(bad), Err(StoreError::BadCursor)), "{bad}");
        }
    }
}
