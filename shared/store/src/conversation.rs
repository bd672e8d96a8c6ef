//! Which conversation an interaction belongs to. Pure: the state of a group lives with its root
//! in two parts: the open conversation on the root's profile, read and written back with every
//! interaction, and the rest (`History`, an item of its own, up to 50 records of ~150 bytes),
//! read and written only by an interaction the open conversation alone does not decide
//! (`open_decides`), and by merges, unmerges, splits and joins.
//!
//! The rule, in order:
//! 1. Automated and quarantined mail (auto-replies, bounces, lists, spam) is never part of the
//!    customer's conversation: it gets a conversation of its own and changes nothing.
//! 2. An email in a thread already seen (the email connector's thread key: mailbox, customer,
//!    root Message-ID) stays in that thread's conversation, however long ago it was.
//! 3. Otherwise a conversation continues when the interaction is within the inactivity window of
//!    it: no later than `window` after its last activity and no earlier than `window` before its
//!    start — on any channel, so SMS → email → chat is one conversation. The open conversation
//!    (the most recently active) is preferred; an earlier one is found too, because deliveries
//!    come out of order (a message sent yesterday but delivered after today's joins yesterday's
//!    conversation). Exception: a new email thread never joins a conversation that already has
//!    a different email thread: it is a separate topic, a new conversation.
//! 4. Otherwise a new conversation, named after this interaction.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use throughline_model::{Channel, ConversationId, CustomerId, Interaction, InteractionKind};
use throughline_service::{ConversationStatus, Lifecycle, Observation};

use crate::StoreError;
use crate::items::{
    Expr, Item, json_attr, key_item, keys, millis, number_attr, number_value, string_value, to_json, tx_put,
};

/// The default inactivity window.
pub const DEFAULT_WINDOW: TimeDelta = TimeDelta::hours(24);

/// Conversations remembered per customer for thread stickiness; older ones are forgotten.
pub(crate) const REMEMBERED: usize = 50;

impl ConversationRecord {
    /// A conversation opened at `at`, nothing in it taken in yet.
    pub(crate) fn opened(id: ConversationId, at: DateTime<Utc>, email_thread: Option<String>) -> Self {
        Self {
            id,
            started_at: at,
            last_at: at,
            email_thread,
            lifecycle: Lifecycle::default(),
            reasons: Vec::new(),
        }
    }
}

/// One conversation in a group's state: its id and its activity span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRecord {
    /// Named after the interaction that opened it (`cv_` + its id's hex).
    pub id: ConversationId,
    /// Start of its activity span: its earliest interaction's `occurred_at`.
    pub started_at: DateTime<Utc>,
    /// End of its activity span: its latest interaction's `occurred_at` (or, on the part a
    /// split kept, just before the split).
    pub last_at: DateTime<Utc>,
    /// The email thread this conversation holds, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_thread: Option<String>,
    /// Its status, assignee and times, kept by every interaction in it and by agents.
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
    /// Its reasons for contact: suggested by the taxonomy's rules at ingestion, confirmed by
    /// agents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<ReasonMark>,
}

/// One reason for contact on a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonMark {
    /// The taxonomy's code when it was set (a renamed code maps through the taxonomy's aliases
    /// when read; history is never rewritten).
    pub code: String,
    /// Set by an agent (`PUT /conversations/{id}/reasons`) rather than suggested by a rule.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed: bool,
    /// The rule that suggested it (`<code>:<rule index>`), for a suggestion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConversationState {
    /// Recent conversations; the open one is the one with the latest activity.
    #[serde(default)]
    pub recent: Vec<ConversationRecord>,
}

/// What deciding an interaction's conversation needs of its group's state (`placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// The open conversation alone decides.
    Open,
    /// A new conversation, the open one retiring (to the new one's marker: `previous`).
    AfterOpen,
    /// The whole state: the history is read.
    Whole,
}

/// A root's conversations other than the open one, as read: the history item (`stored`, at
/// `version`; `None`: no item yet) and the conversations retired since it was last written,
/// found by walking back from the open conversation through the `previous` record each
/// opening interaction's marker keeps (a new conversation retires the open one onto its own
/// marker, one small write it makes anyway, instead of rewriting the history item).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct History {
    /// All of them: the stored ones and the retired ones.
    pub state: ConversationState,
    pub stored: ConversationState,
    pub version: Option<u64>,
}

impl History {
    pub(crate) fn from_item(item: Option<&Item>) -> Result<Self, StoreError> {
        Ok(match item {
            None => Self::default(),
            Some(item) => {
                let stored: ConversationState = json_attr(item, "recent")?.unwrap_or_default();
                Self {
                    state: stored.clone(),
                    stored,
                    version: Some(number_attr(item, "version")),
                }
            }
        })
    }

    /// Adds conversations retired since the item was written (newest first, as walked).
    pub(crate) fn with_retired(mut self, retired: Vec<ConversationRecord>) -> Self {
        for record in retired.into_iter().rev() {
            if !self.state.recent.iter().any(|r| r.id == record.id) {
                self.state.recent.push(record);
            }
        }
        self.state.forget_oldest();
        self
    }

    /// A group's whole state, `open` being what its root's profile holds.
    pub(crate) fn around(&self, open: &ConversationState) -> ConversationState {
        open.with_history(&self.state)
    }

    /// What writing `whole` back means: the part for the root's profile, and the history item's
    /// write (only if this history is at the version read) when its part changed. Pure.
    pub(crate) fn write_back(
        &self,
        table: &str,
        root: &CustomerId,
        whole: &ConversationState,
    ) -> Result<(ConversationState, Option<TransactWriteItem>), StoreError> {
        let (open, rest) = whole.split_open();
        // Written when what is stored differs (retired conversations are folded in).
        if rest == self.stored {
            return Ok((open, None));
        }
        let mut item = key_item(keys::conversation_history(root));
        item.insert("recent".into(), to_json(&rest));
        item.insert("version".into(), number_value(self.version.map_or(1, |v| v + 1)));
        let write = match self.version {
            None => tx_put(table, item, Some("attribute_not_exists(pk)"), Expr::new())?,
            Some(version) => tx_put(
                table,
                item,
                Some("#version = :version"),
                Expr::new()
                    .name("#version", "version")
                    .value(":version", number_value(version)),
            )?,
        };
        Ok((open, Some(write)))
    }
}

/// The root profile's attributes that list its open conversation in the queue of open work
/// (the sparse `QueueIndex`): `queue` = `open` and `queue_at` = `<waiting since, or opened, UTC
/// millis>#<conversation id>` (the list is newest waiting first), with `queue_channel` (where it
/// opened) and `queue_assignee` for its filters; all absent unless that conversation is `open`.
/// An earlier conversation still unresolved when a newer one opened leaves the queue: the
/// customer waits on the newer one (it stays `open` on the customer's list of conversations).
const QUEUE_ATTRIBUTES: [&str; 4] = ["queue", "queue_at", "queue_channel", "queue_assignee"];

/// The queue's partition value: the only one.
pub(crate) const QUEUE_OPEN: &str = "open";

/// The queue's index (the template's `TimelineTable` declares it).
pub(crate) const QUEUE_INDEX: &str = "QueueIndex";

/// What a root's profile update sets and removes to hold `open` as its open conversation:
/// the `conversation` attribute and the queue attributes. The one way every writer of a root's
/// open conversation (the commit, merges, agents' changes) writes it.
pub(crate) fn open_conversation_update(open: &ConversationState, expr: Expr) -> (Vec<String>, Vec<String>, Expr) {
    let mut set = vec!["#conversation = :state".to_owned()];
    let mut expr = expr
        .name("#conversation", "conversation")
        .value(":state", to_json(open));
    let queued = queue_values(open);
    for (n, name) in QUEUE_ATTRIBUTES.iter().enumerate() {
        expr = expr.name(&format!("#queue{n}"), name);
    }
    let mut remove = Vec::new();
    for (n, value) in queued.into_iter().enumerate() {
        match value {
            Some(value) => {
                set.push(format!("#queue{n} = :queue{n}"));
                expr = expr.value(&format!(":queue{n}"), value);
            }
            None => remove.push(format!("#queue{n}")),
        }
    }
    (set, remove, expr)
}

/// What a profile that is no longer a group's root removes: it is not in the queue.
pub(crate) fn not_queued(expr: Expr) -> (Vec<String>, Expr) {
    let mut expr = expr;
    let mut remove = Vec::new();
    for (n, name) in QUEUE_ATTRIBUTES.iter().enumerate() {
        expr = expr.name(&format!("#queue{n}"), name);
        remove.push(format!("#queue{n}"));
    }
    (remove, expr)
}

/// The queue attributes' values for an open conversation state, in `QUEUE_ATTRIBUTES` order
/// (`None`: absent).
fn queue_values(open: &ConversationState) -> [Option<AttributeValue>; 4] {
    let Some(record) = open.open().filter(|r| r.lifecycle.status == ConversationStatus::Open) else {
        return [None, None, None, None];
    };
    let since = record.lifecycle.waiting_since.unwrap_or(record.started_at);
    [
        Some(string_value(QUEUE_OPEN)),
        Some(string_value(format!("{}#{}", millis(since), record.id))),
        record.lifecycle.channel.map(|c| string_value(c.as_str())),
        record.lifecycle.assignee.as_deref().map(string_value),
    ]
}

/// The email thread an interaction is in (the email connector's thread key); none off email.
fn email_thread(interaction: &Interaction) -> Option<&String> {
    (interaction.channel == Channel::Email)
        .then_some(interaction.thread.provider_thread_id.as_ref())
        .flatten()
}

impl ConversationState {
    /// The open conversation: the most recently active one (of two as recent, the greater id:
    /// the answer never depends on the records' order, which storing the state in two parts
    /// does not keep).
    pub(crate) fn open(&self) -> Option<&ConversationRecord> {
        self.recent.iter().max_by_key(|r| (r.last_at, &r.id))
    }

    /// Picks the interaction's conversation and advances the state.
    /// The conversation a reply answers in, when the state still remembers it: the timeline API
    /// records a reply with the `conversation_id` of the customer's message it answers
    /// (connectors leave it empty), so the reply is in that conversation whatever is open.
    fn answered_in(&self, interaction: &Interaction) -> Option<usize> {
        let answered = interaction.conversation_id.as_ref()?;
        self.recent.iter().position(|r| &r.id == answered)
    }

    pub(crate) fn assign(&mut self, interaction: &Interaction, window: TimeDelta) -> (ConversationId, Observation) {
        let at = interaction.occurred_at;
        match interaction.kind {
            InteractionKind::Automated | InteractionKind::Quarantined => {
                return (ConversationId::opened_by(&interaction.id), Observation::default());
            }
            // A survey's answer joins the conversation surveyed and changes nothing of it.
            InteractionKind::Feedback => {
                let surveyed = interaction.conversation_id.clone();
                return (
                    surveyed.unwrap_or_else(|| ConversationId::opened_by(&interaction.id)),
                    Observation::default(),
                );
            }
            InteractionKind::Message | InteractionKind::PublicPost => {}
        }
        let thread = email_thread(interaction).cloned();
        let by_thread = thread
            .as_ref()
            .and_then(|t| self.recent.iter().position(|r| r.email_thread.as_ref() == Some(t)));
        let continued = self.answered_in(interaction).or(by_thread).or_else(|| {
            // Conversations whose activity, widened by the window on both sides, covers this
            // time; a new email thread does not join one that has another thread.
            let fits = |r: &ConversationRecord| {
                at <= r.last_at + window
                    && at >= r.started_at - window
                    && !(thread.is_some() && r.email_thread.is_some())
            };
            let open = self.open().map(|o| o.id.clone());
            let candidates = || self.recent.iter().enumerate().filter(|(_, r)| fits(r));
            candidates()
                .find(|(_, r)| Some(&r.id) == open.as_ref())
                .or_else(|| candidates().max_by_key(|(_, r)| (r.last_at, &r.id)))
                .map(|(i, _)| i)
        });
        let index = match continued {
            Some(i) => i,
            None => {
                self.recent.push(ConversationRecord::opened(
                    ConversationId::opened_by(&interaction.id),
                    at,
                    None,
                ));
                self.recent.len() - 1
            }
        };
        let id = self.recent[index].id.clone();
        let observed = self.take_in(index, interaction, thread);
        (id, observed)
    }

    /// The conversation at `index` takes in `interaction`: its span widens, it keeps the first
    /// email thread it gets, its lifecycle observes it; then the oldest beyond what is
    /// remembered are forgotten.
    fn take_in(&mut self, index: usize, interaction: &Interaction, thread: Option<String>) -> Observation {
        let at = interaction.occurred_at;
        let record = &mut self.recent[index];
        record.started_at = record.started_at.min(at);
        record.last_at = record.last_at.max(at);
        if record.email_thread.is_none() {
            record.email_thread = thread;
        }
        let observed = record.lifecycle.observe(interaction);
        self.forget_oldest();
        observed
    }

    /// Advances the state with an interaction whose conversation was chosen before (its marker
    /// holds the choice, made against the state then): that conversation's span widens to take
    /// it in (remembered again if it was forgotten), as `assign` would have done.
    pub(crate) fn assign_as(&mut self, interaction: &Interaction, conversation: &ConversationId) -> Observation {
        if matches!(
            interaction.kind,
            InteractionKind::Automated | InteractionKind::Quarantined | InteractionKind::Feedback
        ) {
            return Observation::default();
        }
        let at = interaction.occurred_at;
        let thread = email_thread(interaction).cloned();
        let index = match self.recent.iter().position(|r| &r.id == conversation) {
            Some(index) => index,
            None => {
                self.recent
                    .push(ConversationRecord::opened(conversation.clone(), at, thread.clone()));
                self.recent.len() - 1
            }
        };
        self.take_in(index, interaction, thread)
    }

    /// An agent split `conversation` at an interaction at `at`: what follows is `new`.
    pub(crate) fn split(&mut self, conversation: &ConversationId, new: ConversationId, at: DateTime<Utc>) {
        if let Some(record) = self.recent.iter_mut().find(|r| &r.id == conversation) {
            let last_at = record.last_at;
            record.last_at = record.started_at.max(at - TimeDelta::milliseconds(1));
            // The part split off goes on as the conversation did: its status, assignee and
            // reasons; its times start again at the split.
            let mut lifecycle = record.lifecycle.clone();
            lifecycle.first_customer_at = lifecycle.first_customer_at.map(|first| first.max(at));
            lifecycle.first_response_at = lifecycle.first_response_at.filter(|first| *first >= at);
            let reasons = record.reasons.clone();
            let mut part = ConversationRecord {
                lifecycle,
                reasons,
                ..ConversationRecord::opened(new, at, None)
            };
            part.last_at = last_at.max(at);
            self.recent.push(part);
            self.forget_oldest();
        }
    }

    /// An agent joined `absorbed` into `kept`.
    pub(crate) fn join(&mut self, kept: &ConversationId, absorbed: &ConversationId) {
        let Some(gone) = self.recent.iter().position(|r| &r.id == absorbed) else {
            return;
        };
        let gone = self.recent.remove(gone);
        match self.recent.iter_mut().find(|r| &r.id == kept) {
            Some(record) => {
                record.started_at = record.started_at.min(gone.started_at);
                record.last_at = record.last_at.max(gone.last_at);
                record.email_thread = record.email_thread.take().or(gone.email_thread);
                record.lifecycle.join(&gone.lifecycle);
                for reason in gone.reasons {
                    if !record.reasons.iter().any(|r| r.code == reason.code) {
                        record.reasons.push(reason);
                    }
                }
            }
            None => self.recent.push(ConversationRecord {
                id: kept.clone(),
                ..gone
            }),
        }
    }

    /// Adds suggested reasons to a conversation (each code once: a code already there, suggested
    /// or confirmed, stays as it is). Automated mail has no record: nothing.
    pub(crate) fn suggest(&mut self, conversation: &ConversationId, suggested: &[ReasonMark]) {
        if let Some(record) = self.recent.iter_mut().find(|r| &r.id == conversation) {
            for mark in suggested {
                if !record.reasons.iter().any(|r| r.code == mark.code) {
                    record.reasons.push(mark.clone());
                }
            }
        }
    }

    /// Takes in another group's conversations (a merge): their customer continues them here.
    pub(crate) fn absorb(&mut self, other: &ConversationState) {
        for record in &other.recent {
            if !self.recent.iter().any(|r| r.id == record.id) {
                self.recent.push(record.clone());
            }
        }
        self.forget_oldest();
    }

    /// What `assign` on the whole state needs of it, this being its open conversation alone
    /// (`split_open`'s first half): `Open` when the open one decides (see `open_decides`);
    /// `AfterOpen` when the interaction comes more than the window after the open
    /// conversation's last activity with no email thread to look up: no remembered
    /// conversation can be that recent, so it opens a new one and the open one retires;
    /// `Whole` otherwise.
    pub(crate) fn placement(&self, interaction: &Interaction, window: TimeDelta) -> Placement {
        if self.open_decides(interaction, window) {
            return Placement::Open;
        }
        // A reply that names another conversation than the open one: it is in the rest.
        let threaded = email_thread(interaction).is_some() || interaction.conversation_id.is_some();
        match self.open() {
            Some(open) if !threaded && interaction.occurred_at > open.last_at + window => Placement::AfterOpen,
            _ => Placement::Whole,
        }
    }

    /// Whether `assign` on the whole state would pick what it picks on this part of it alone,
    /// the open conversation (`split_open`'s first half): for automated and quarantined mail
    /// and survey answers, which change nothing; for an email in the open conversation's thread; for anything else
    /// without a thread that falls within the open conversation's window (the open one is
    /// preferred, and no other record can hold the thread). The rest of the state is read only
    /// when this is false.
    pub(crate) fn open_decides(&self, interaction: &Interaction, window: TimeDelta) -> bool {
        if matches!(
            interaction.kind,
            InteractionKind::Automated | InteractionKind::Quarantined | InteractionKind::Feedback
        ) {
            return true;
        }
        let Some(open) = self.open() else {
            return false;
        };
        if let Some(answered) = &interaction.conversation_id {
            return &open.id == answered;
        }
        let thread = email_thread(interaction);
        match thread {
            Some(thread) => open.email_thread.as_ref() == Some(thread),
            None => {
                let at = interaction.occurred_at;
                at <= open.last_at + window && at >= open.started_at - window
            }
        }
    }

    /// The open conversation (written with every interaction, on the root's profile) and the
    /// rest, in their order (the history item, written only when it changes).
    pub(crate) fn split_open(&self) -> (ConversationState, ConversationState) {
        let open = self.open().map(|o| o.id.clone());
        let (hot, history): (Vec<_>, Vec<_>) = self.recent.iter().cloned().partition(|r| Some(&r.id) == open.as_ref());
        (ConversationState { recent: hot }, ConversationState { recent: history })
    }

    /// This part of a state with the rest (`history`) around it: one record per conversation,
    /// this part's where both have one.
    pub(crate) fn with_history(&self, history: &ConversationState) -> ConversationState {
        let mut recent: Vec<ConversationRecord> = history
            .recent
            .iter()
            .filter(|r| !self.recent.iter().any(|own| own.id == r.id))
            .cloned()
            .collect();
        recent.extend(self.recent.iter().cloned());
        ConversationState { recent }
    }

    pub(crate) fn forget_oldest(&mut self) {
        while self.recent.len() > REMEMBERED {
            let oldest = (0..self.recent.len())
                .min_by_key(|&i| (self.recent[i].last_at, &self.recent[i].id))
                .expect("not empty");
            self.recent.remove(oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use throughline_model::{Direction, E164, EmailAddress, Handle, NewInteraction, Provider, ProviderMessageId};

    use super::*;

    impl ConversationState {
        fn assigned(&mut self, interaction: &Interaction, window: TimeDelta) -> ConversationId {
            self.assign(interaction, window).0
        }
    }

    fn at(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap() + TimeDelta::hours(hours)
    }

    fn message(channel: Channel, id: &str, occurred_at: DateTime<Utc>) -> Interaction {
        let customer = match channel {
            Channel::Email => Handle::Email {
                address: EmailAddress::parse("ada@example.com").unwrap(),
            },
            _ => Handle::Phone {
                number: E164::parse("+14155550100").unwrap(),
            },
        };
        Interaction::new(NewInteraction {
            channel,
            provider: Provider::Twilio,
            direction: Direction::Inbound,
            business_endpoint: customer.clone(),
            customer,
            provider_message_id: ProviderMessageId::parse(id).unwrap(),
            occurred_at,
            received_at: occurred_at,
        })
    }

    fn email(id: &str, thread: &str, occurred_at: DateTime<Utc>) -> Interaction {
        let mut mail = message(Channel::Email, id, occurred_at);
        mail.thread.provider_thread_id = Some(thread.into());
        mail
    }

    #[test]
    fn sms_then_email_then_chat_within_the_window_is_one_conversation() {
        let mut state = ConversationState::default();
        let first = state.assigned(&message(Channel::Sms, "m1", at(0)), DEFAULT_WINDOW);
        assert_eq!(state.assigned(&email("m2", "t-a", at(20)), DEFAULT_WINDOW), first);
        assert_eq!(
            state.assigned(&message(Channel::Chat, "m3", at(43)), DEFAULT_WINDOW),
            first
        );
        assert_eq!(state.recent.len(), 1);
    }

    #[test]
    fn the_window_edge_is_inclusive_and_a_millisecond_more_opens_a_new_one() {
        let mut state = ConversationState::default();
        let first = state.assigned(&message(Channel::Sms, "m1", at(0)), DEFAULT_WINDOW);
        assert_eq!(
            state.assigned(&message(Channel::Sms, "m2", at(24)), DEFAULT_WINDOW),
            first
        );
        let later = at(48) + TimeDelta::milliseconds(1);
        let next = state.assigned(&message(Channel::Sms, "m3", later), DEFAULT_WINDOW);
        assert_ne!(next, first);
        assert_eq!(state.open().unwrap().id, next);
    }

    #[test]
    fn a_late_delivery_of_an_old_message_joins_its_conversation_without_reopening_it() {
        let mut state = ConversationState::default();
        let first = state.assigned(&message(Channel::Sms, "m1", at(0)), DEFAULT_WINDOW);
        let second = state.assigned(&message(Channel::Sms, "m2", at(100)), DEFAULT_WINDOW);
        // Delivered now, sent long before both: a conversation of its own, and the open one
        // stays the latest.
        let old = state.assigned(&message(Channel::Sms, "m0", at(-200)), DEFAULT_WINDOW);
        assert!(old != first && old != second);
        assert_eq!(state.open().unwrap().id, second);
        // Sent just before the open conversation started: it belongs there.
        assert_eq!(
            state.assigned(&message(Channel::Sms, "m3", at(90)), DEFAULT_WINDOW),
            second
        );
    }

    #[test]
    fn out_of_order_deliveries_rejoin_their_own_conversation_not_only_the_open_one() {
        let mut state = ConversationState::default();
        let today = state.assigned(&message(Channel::Sms, "m9", at(100)), DEFAULT_WINDOW);
        // Yesterday's messages delivered after today's: one conversation of their own, together.
        let yesterday = state.assigned(&message(Channel::Whatsapp, "m1", at(50)), DEFAULT_WINDOW);
        assert_ne!(yesterday, today);
        for (i, hour) in [51, 52, 53].into_iter().enumerate() {
            let late = message(Channel::Whatsapp, &format!("m{}", i + 2), at(hour));
            assert_eq!(state.assigned(&late, DEFAULT_WINDOW), yesterday);
        }
        assert_eq!(state.open().unwrap().id, today);
    }

    #[test]
    fn a_second_email_thread_is_a_separate_topic_and_its_replies_stay_with_it() {
        let mut state = ConversationState::default();
        let order = state.assigned(&email("m1", "t-order", at(0)), DEFAULT_WINDOW);
        let invoice = state.assigned(&email("m2", "t-invoice", at(1)), DEFAULT_WINDOW);
        assert_ne!(order, invoice, "a new thread while another is open: its own topic");
        // An SMS goes to the most recently active conversation.
        assert_eq!(
            state.assigned(&message(Channel::Sms, "m3", at(2)), DEFAULT_WINDOW),
            invoice
        );
        // A reply in the first thread, days later, is still that thread's conversation.
        assert_eq!(state.assigned(&email("m4", "t-order", at(200)), DEFAULT_WINDOW), order);
        assert_eq!(state.open().unwrap().id, order);
    }

    #[test]
    fn a_reply_continues_the_conversation_of_the_message_it_answers_whatever_is_open() {
        let mut state = ConversationState::default();
        let sms = state.assigned(&message(Channel::Sms, "m1", at(0)), DEFAULT_WINDOW);
        let mail = state.assigned(&email("m2", "t-order", at(30)), DEFAULT_WINDOW);
        assert_ne!(sms, mail);
        assert_eq!(state.open().unwrap().id, mail);
        // The agent answers the SMS a day later, while the email conversation is open.
        let mut reply = message(Channel::Sms, "r1", at(31));
        reply.direction = throughline_model::Direction::Outbound;
        reply.conversation_id = Some(sms.clone());
        assert!(
            !state.open_decides(&reply, DEFAULT_WINDOW),
            "the rest of the state holds it"
        );
        assert_eq!(state.placement(&reply, DEFAULT_WINDOW), Placement::Whole);
        assert_eq!(state.assigned(&reply, DEFAULT_WINDOW), sms);
        // A conversation the state no longer remembers: the rule as for any message.
        reply.conversation_id = Some(ConversationId::opened_by(
            &throughline_model::InteractionId::try_from(format!("ix_{}", "e".repeat(32))).unwrap(),
        ));
        assert_eq!(
            state.assigned(&reply, DEFAULT_WINDOW),
            sms,
            "the open one now, by the window"
        );
    }

    #[test]
    fn automated_mail_stands_alone_and_changes_nothing() {
        let mut state = ConversationState::default();
        let first = state.assigned(&message(Channel::Sms, "m1", at(0)), DEFAULT_WINDOW);
        let before = state.clone();
        let mut bounce = email("m2", "t-bounce", at(1));
        bounce.kind = InteractionKind::Automated;
        let own = state.assigned(&bounce, DEFAULT_WINDOW);
        assert_ne!(own, first);
        assert_eq!(state, before);
    }

    #[test]
    fn split_and_join_move_the_open_conversation() {
        let mut state = ConversationState::default();
        let first = state.assigned(&message(Channel::Sms, "m1", at(0)), DEFAULT_WINDOW);
        state.assigned(&message(Channel::Sms, "m2", at(5)), DEFAULT_WINDOW);
        let split = ConversationId::opened_by(&message(Channel::Sms, "m2", at(5)).id);
        state.split(&first, split.clone(), at(5));
        assert_eq!(state.open().unwrap().id, split);
        assert_eq!(
            state.assigned(&message(Channel::Sms, "m3", at(6)), DEFAULT_WINDOW),
            split
        );
        state.join(&first, &split);
        assert_eq!(state.open().unwrap().id, first);
        assert_eq!(state.recent.len(), 1);
    }

    proptest::proptest! {
        /// The open conversation alone decides whenever `placement` says so, a retiring one is
        /// only appended (to the markers' chain), and the whole state is read otherwise: the
        /// same conversations and the same state as assigning on the whole state every time.
        #[test]
        fn the_open_conversation_alone_decides_what_the_whole_state_would(
            steps in proptest::collection::vec((0i64..400, 0usize..4, proptest::bool::ANY), 1..80)
        ) {
            let mut whole = ConversationState::default();
            let (mut open, mut history) = (ConversationState::default(), ConversationState::default());
            // Conversations retired onto markers since the history was last written.
            let mut retired: Vec<ConversationRecord> = Vec::new();
            let all = |open: &ConversationState, history: &ConversationState, retired: &[ConversationRecord]| {
                let mut rest = history.clone();
                rest.recent.extend(retired.iter().cloned());
                let mut state = open.with_history(&rest);
                state.forget_oldest();
                state
            };
            for (n, (hour, kind, automated)) in steps.into_iter().enumerate() {
                let id = format!("m{n}");
                let mut item = match kind {
                    0 => message(Channel::Sms, &id, at(hour)),
                    1 => message(Channel::Chat, &id, at(hour)),
                    2 => email(&id, &format!("t-{}", hour % 3), at(hour)),
                    _ => message(Channel::Email, &id, at(hour)),
                };
                if automated && n % 5 == 0 {
                    item.kind = InteractionKind::Automated;
                }
                let before = whole.clone();
                let expected = whole.assigned(&item, DEFAULT_WINDOW);
                let got = match open.placement(&item, DEFAULT_WINDOW) {
                    Placement::Open => open.assigned(&item, DEFAULT_WINDOW),
                    Placement::AfterOpen => {
                        let id = open.assigned(&item, DEFAULT_WINDOW);
                        let rest;
                        (open, rest) = open.split_open();
                        proptest::prop_assert_eq!(rest.recent.len(), 1, "one retires");
                        retired.extend(rest.recent);
                        id
                    }
                    Placement::Whole => {
                        let mut state = all(&open, &history, &retired);
                        let id = state.assigned(&item, DEFAULT_WINDOW);
                        (open, history) = state.split_open();
                        retired.clear();
                        id
                    }
                };
                proptest::prop_assert_eq!(&got, &expected);
                // Applying the choice made (a redelivery finishing a recording) is what making it
                // did, and applying it once more changes nothing.
                let mut replayed = before;
                replayed.assign_as(&item, &expected);
                proptest::prop_assert_eq!(&replayed, &whole);
                replayed.assign_as(&item, &expected);
                proptest::prop_assert_eq!(&replayed, &whole);
                proptest::prop_assert!(open.recent.len() <= 1);
                let mut joined = all(&open, &history, &retired).recent;
                let mut reference = whole.recent.clone();
                joined.sort_by(|a, b| a.id.cmp(&b.id));
                reference.sort_by(|a, b| a.id.cmp(&b.id));
                proptest::prop_assert_eq!(joined, reference);
            }
        }
    }

    #[test]
    fn only_the_most_recent_conversations_are_remembered() {
        let mut state = ConversationState::default();
        for day in 0..(REMEMBERED as i64 + 5) {
            state.assigned(&message(Channel::Sms, &format!("m{day}"), at(day * 48)), DEFAULT_WINDOW);
        }
        assert_eq!(state.recent.len(), REMEMBERED);
        assert_eq!(state.open().unwrap().last_at, at((REMEMBERED as i64 + 4) * 48));
    }
}
