//! Ingestion: an interaction recorded exactly once on its customer's timeline, in its
//! conversation; updates (deletions, edits) applied to what was recorded.

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, TimeDelta, Utc};
use throughline_feedback::{OpenSurvey, RecordedAnswer, recorded_answer};
use throughline_model::{Change, ConversationId, Evidence, Feedback, Interaction, InteractionKind, InteractionUpdate};
use throughline_service::Observation;

use crate::conversation::{ConversationState, History, Placement, ReasonMark, open_conversation_update};
use crate::items::{
    Commit, Expr, Item, ProfileItem, commit_slot, count_attribute, id_attr, json_attr, key_item, keys,
    member_count_attribute, millis, number_value, optional_string_attr, string_attr, string_value, time_attr, to_json,
    tx_check, tx_put, tx_update, update_expression,
};
use crate::{Attempt, CustomerId, StoreError, TimelineStore, dynamo, is_conditional_failure, retry_optimistic};

/// What `record` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// First time this interaction was seen: now on the customer's timeline.
    New {
        /// The owner of the handle it came in on: its partition holds the entry.
        customer: CustomerId,
        /// The conversation the rule put it in.
        conversation: ConversationId,
        /// What it did to that conversation's lifecycle (an answer, a reopen), for metrics.
        observed: Observation,
    },
    /// Seen before (a retry or a redelivery): the timeline already has it.
    Duplicate {
        /// The customer its marker records: its partition holds the entry.
        customer: CustomerId,
    },
    /// Its id was recorded before for another customer handle: two different messages with
    /// one (provider, endpoint, message id), which a provider never sends (a forged or broken
    /// id). The first stays; this one is not recorded, and the writer counts it.
    Collision {
        /// The customer the first one was recorded for.
        customer: CustomerId,
    },
    /// Its customer was erased (a data-subject request): it stays erased.
    Erased,
}

impl Recorded {
    /// The customer whose partition holds an entry under this interaction's id; `None` when
    /// erased.
    pub fn customer(&self) -> Option<&CustomerId> {
        match self {
            Recorded::New { customer, .. } | Recorded::Duplicate { customer } | Recorded::Collision { customer } => {
                Some(customer)
            }
            Recorded::Erased => None,
        }
    }
}

/// What `apply` did with an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The interaction's timeline entry now carries the change.
    Updated {
        /// The customer whose partition holds the entry.
        customer: CustomerId,
    },
    /// Not recorded (yet): kept as a tombstone that the interaction gets if it ever arrives.
    Pending,
    /// The interaction's customer was erased: nothing to change.
    Erased,
}

/// What a writer lane (one customer handle's messages, one after another) keeps from its last
/// commit: the handle, the evidence it came with, its owner's profile and its root's profile as
/// that commit left them.
#[derive(Debug, Default)]
pub struct Lane {
    last: Option<(String, Evidence, ProfileItem, ProfileItem)>,
}

impl Lane {
    /// The owner and root for `interaction`, if the last commit was for its handle and it is a
    /// plain message (no identities of its own; no stronger evidence than that one's, which
    /// resolving again would record).
    fn recall(&mut self, interaction: &Interaction) -> Option<(ProfileItem, ProfileItem)> {
        let (handle, evidence, owner, root) = self.last.take()?;
        let plain = interaction.identities.is_empty()
            && handle == interaction.customer.key()
            && (evidence == Evidence::Verified || interaction.customer_evidence() == Evidence::Claimed);
        plain.then_some((owner, root))
    }

    fn remember(&mut self, interaction: &Interaction, committed: Option<(ProfileItem, ProfileItem)>) {
        self.last =
            committed.map(|(owner, root)| (interaction.customer.key(), interaction.customer_evidence(), owner, root));
    }
}

/// The customer an interaction is for, with its group's root.
enum Owner {
    /// Its profile and its group's root's (the same when it is the root).
    Live(Box<(ProfileItem, ProfileItem)>),
    /// It (or its group) was erased.
    Erased,
    /// Its profile is not visible yet (a read that raced its creation).
    NotVisible,
}

/// Changes that reached an interaction's marker before the interaction itself.
#[derive(Debug, Default)]
struct Pending {
    deleted_at: Option<DateTime<Utc>>,
    edit: Option<(DateTime<Utc>, Option<String>)>,
}

impl Pending {
    fn from_marker(marker: &Item) -> Result<Self, StoreError> {
        Ok(Self {
            deleted_at: time_attr(marker, "deleted_at")?,
            edit: time_attr(marker, "edited_at")?.map(|at| (at, optional_string_attr(marker, "edited_text"))),
        })
    }

    fn applied_to(&self, interaction: &Interaction) -> Interaction {
        let mut entry = interaction.clone();
        if self.deleted_at.is_some() {
            entry.deleted_at = self.deleted_at;
        }
        if let Some((at, text)) = &self.edit {
            entry.apply_edit(text.clone(), *at);
        }
        entry
    }
}

/// A timeline entry's item: the interaction at its position in its customer's partition.
fn entry_item(customer: &CustomerId, sk: &str, interaction: &Interaction) -> Result<Item, StoreError> {
    let mut item: Item =
        serde_dynamo::to_item(interaction).map_err(|e| StoreError::Corrupt(format!("serialize: {e}")))?;
    item.insert("pk".into(), string_value(keys::customer_pk(customer)));
    item.insert("sk".into(), string_value(sk));
    Ok(item)
}

/// An interaction's recording as planned: its conversation and its writes, made in this order
/// (no transaction; see `TimelineStore::record` for why the order is safe).
#[derive(Debug)]
struct PlannedRecord {
    conversation: ConversationId,
    /// What the interaction did to its conversation's lifecycle.
    observed: Observation,
    /// The marker: only if absent (or claiming a tombstone only if no other change landed
    /// since); it fixes the position, the conversation, the root and the version of the commit.
    marker: TransactWriteItem,
    /// The entry: only if absent.
    entry: TransactWriteItem,
    /// The root's history, when its part changed: only if at the version read.
    history: Option<TransactWriteItem>,
    /// The commit on the root's profile (open conversation, channel count, commit slot, version):
    /// only if at the version read and not erased.
    commit: TransactWriteItem,
    /// The root's open conversation as the commit writes it.
    open: ConversationState,
}

/// What a commit does to the group's open survey.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SurveyChange<'a> {
    Keep,
    /// The interaction answered it: the survey after the answer.
    Set(&'a OpenSurvey),
    /// It expired before the interaction: it goes, so that the profile every interaction
    /// rewrites is not kept larger than it needs to be.
    Remove,
}

impl<'a> SurveyChange<'a> {
    /// For an interaction at `at` when the group's survey is `open` and the interaction made it
    /// `answered`.
    fn of(open: Option<&OpenSurvey>, answered: Option<&'a OpenSurvey>, at: DateTime<Utc>) -> Self {
        match (answered, open) {
            (Some(answered), _) => SurveyChange::Set(answered),
            (None, Some(open)) if at > open.expires_at => SurveyChange::Remove,
            _ => SurveyChange::Keep,
        }
    }
}

/// A customer handle's fingerprint on a marker: a redelivery tells a colliding id (the same
/// interaction id for another handle) from a duplicate without reading the entry.
fn handle_fingerprint(handle: &throughline_model::Handle) -> String {
    crate::items::sha256_hex(handle.key().as_bytes())[..12].to_owned()
}

/// The commit of `interaction` on its group's root (`root`; `owner` is the customer whose
/// handle it came in on): the root's open conversation becomes `open`, the owner's count on the
/// channel grows by one (on the root's profile: its own count, or its member's), the commit slot
/// of the next version names the interaction, the group's calculated attributes take it in,
/// the group's open survey changes as `survey` says;
/// only if the root is at the version read, not erased and (for a member) still the owner's
/// root. Pure.
fn plan_commit(
    table: &str,
    interaction: &Interaction,
    (owner, root): (&ProfileItem, &ProfileItem),
    open: &ConversationState,
    opened: bool,
    survey: SurveyChange<'_>,
) -> Result<TransactWriteItem, StoreError> {
    let (slot, value) = commit_slot(root.version + 1, &interaction.id);
    let count = if owner.is_root() {
        count_attribute(interaction.channel)
    } else {
        member_count_attribute(&owner.customer, interaction.channel)
    };
    let expr = Expr::new()
        .name("#slot", &slot)
        .name("#count", &count)
        .value(":commit", string_value(value))
        .value(":one", number_value(1));
    let (mut set, mut remove, mut expr) = open_conversation_update(open, expr);
    set.push("#slot = :commit".into());
    if let Some(calculated) = root.calculated.observed(interaction, opened) {
        set.push("#calculated = :calculated".into());
        expr = expr
            .name("#calculated", "calculated")
            .value(":calculated", to_json(&calculated));
    }
    match survey {
        SurveyChange::Keep => {}
        SurveyChange::Set(survey) => {
            set.push("#survey = :survey".into());
            expr = expr.name("#survey", "survey").value(":survey", to_json(survey));
        }
        // `survey_id` stays: the same survey is never opened twice.
        SurveyChange::Remove => {
            remove.push("#survey".into());
            expr = expr.name("#survey", "survey");
        }
    }
    let update = update_expression(&set, &remove, &["#count :one".into(), "#version :one".into()]);
    let (mut condition, mut expr) = root.unchanged(expr);
    if !owner.is_root() {
        condition.push_str(" AND contains(#members, :owner)");
        expr = expr
            .name("#members", "members")
            .value(":owner", string_value(owner.customer.as_str()));
    }
    tx_update(table, keys::profile(&root.customer), &update, Some(&condition), expr)
}

/// What recording `interaction` for `owner` (whose group's root is `root`, possibly the owner
/// itself) writes, given its marker as read (`None`, or a tombstone of changes that arrived
/// first) and the root's conversation history when the open conversation alone does not
/// decide (`None`: it does); `survey`, what it does to the group's open survey. Pure.
#[allow(clippy::too_many_arguments)]
fn plan_record(
    table: &str,
    interaction: &Interaction,
    marker: Option<&Item>,
    (owner, root): (&ProfileItem, &ProfileItem),
    history: Option<&History>,
    window: TimeDelta,
    suggested: &[ReasonMark],
    survey: SurveyChange<'_>,
) -> Result<PlannedRecord, StoreError> {
    let marker_key = keys::interaction(&interaction.id);
    let (conversation, observed, open, history, retired) = match history {
        // The open conversation continues, or (`Placement::AfterOpen`) retires: then it goes
        // onto this interaction's marker, which the history's readers walk back through.
        None => {
            let mut state = root.conversation.clone();
            let (conversation, observed) = state.assign(interaction, window);
            state.suggest(&conversation, suggested);
            let (open, rest) = state.split_open();
            (conversation, observed, open, None, rest.recent.into_iter().next())
        }
        Some(history) => {
            let mut whole = history.around(&root.conversation);
            let (conversation, observed) = whole.assign(interaction, window);
            whole.suggest(&conversation, suggested);
            let (open, write) = history.write_back(table, &root.customer, &whole)?;
            (conversation, observed, open, write, None)
        }
    };
    let sk = keys::timeline_sk(interaction.occurred_at, &interaction.id);
    let mut fields = vec![
        ("customer_id", string_value(owner.customer.as_str())),
        ("timeline_sk", string_value(&sk)),
        ("conversation_id", string_value(conversation.as_str())),
        ("root", string_value(root.customer.as_str())),
        ("commit", number_value(root.version + 1)),
        ("handle", string_value(handle_fingerprint(&interaction.customer))),
    ];
    if let Some(retired) = &retired {
        fields.push(("previous", to_json(retired)));
    }
    // A survey's answer: redeliveries record it as the first delivery decided.
    if let Some(feedback) = &interaction.feedback {
        fields.push(("feedback", to_json(feedback)));
    }
    let (marker, mut entry) = match marker {
        None => {
            let mut item = key_item(marker_key);
            for (name, value) in fields {
                item.insert(name.into(), value);
            }
            (
                tx_put(table, item, Some("attribute_not_exists(pk)"), Expr::new())?,
                interaction.clone(),
            )
        }
        // Changed before it arrived: claim the tombstone for this position, with the changes it
        // holds, only if no other change landed since it was read.
        Some(tombstone) => {
            let mut condition = vec![
                "attribute_exists(pk)",
                "attribute_not_exists(timeline_sk)",
                "attribute_not_exists(erased_at)",
            ];
            let mut expr = Expr::new();
            let mut set = Vec::new();
            for (n, (name, value)) in fields.into_iter().enumerate() {
                set.push(format!("#f{n} = :f{n}"));
                expr = expr.name(&format!("#f{n}"), name).value(&format!(":f{n}"), value);
            }
            for (attribute, placeholder, equal, absent) in [
                (
                    "deleted_at",
                    ":d",
                    "deleted_at = :d",
                    "attribute_not_exists(deleted_at)",
                ),
                ("edited_at", ":e", "edited_at = :e", "attribute_not_exists(edited_at)"),
            ] {
                match tombstone.get(attribute) {
                    Some(value) => {
                        condition.push(equal);
                        expr = expr.value(placeholder, value.clone());
                    }
                    None => condition.push(absent),
                }
            }
            (
                tx_update(
                    table,
                    marker_key,
                    &format!("SET {}", set.join(", ")),
                    Some(&condition.join(" AND ")),
                    expr,
                )?,
                Pending::from_marker(tombstone)?.applied_to(interaction),
            )
        }
    };
    entry.conversation_id = Some(conversation.clone());
    let entry = tx_put(
        table,
        entry_item(&owner.customer, &sk, &entry)?,
        Some("attribute_not_exists(pk)"),
        Expr::new(),
    )?;
    let commit = plan_commit(table, interaction, (owner, root), &open, observed.opened, survey)?;
    Ok(PlannedRecord {
        conversation,
        observed,
        marker,
        entry,
        history,
        commit,
        open,
    })
}

impl TimelineStore {
    /// Records an interaction on its customer's timeline exactly once, whatever the number of
    /// deliveries, in the conversation the rule picks (`conversation`). Safe to run
    /// concurrently for the same interaction, the same customer or the same new identifier.
    ///
    /// 1. The interaction's marker decides first: erased → nothing; written → a redelivery,
    ///    which finishes what is unfinished (`finish`) and never makes a second entry.
    /// 2. The customer: the owner of the interaction's handle (see `identity`), whose entries
    ///    live in its own partition; its group's root holds the conversation state and counts.
    /// 3. Four single-item conditional writes, in this order (no transaction, which would
    ///    double the price of each):
    ///    - the **marker** (only if absent, or claiming a tombstone): it fixes the position,
    ///      the conversation, the root and the root's version this interaction commits as;
    ///    - the **entry** (only if absent), in the owner's partition;
    ///    - the root's conversation **history**, only when its part changed (rare);
    ///    - the **commit** on the root's profile: open conversation, the owner's channel count,
    ///      the commit slot of that version naming the interaction, the version +1; only if the
    ///      root is at the version read and not erased.
    ///
    /// Everything before the commit is idempotent and is redone by a redelivery; the commit is
    /// made at most once (its version condition), and a redelivery tells whether it was made
    /// from the commit slot. The entry precedes the commit, so an erasure (which tombstones the
    /// root first: no commit can follow) always finds the entry of a committed interaction;
    /// one whose commit fails on a tombstone withdraws what it wrote (`withdraw`).
    pub async fn record(&self, interaction: &Interaction) -> Result<Recorded, StoreError> {
        self.record_in(interaction, &mut Lane::default()).await
    }

    /// `record`, for one of a writer lane's interactions (the messages of one customer handle,
    /// one after another): after the lane's last commit for this handle, the owner and root it
    /// left are used instead of read again (a plain message: no identities of its own, no
    /// stronger evidence than that one's). Two round trips fewer; every condition the same.
    pub async fn record_in(&self, interaction: &Interaction, lane: &mut Lane) -> Result<Recorded, StoreError> {
        self.record_suggesting(interaction, &[], lane).await
    }

    /// `record_in`, with the reasons for contact the taxonomy's rules suggest for it: they
    /// join its conversation's reasons (each code once) in the same commit, at no write of
    /// their own.
    pub async fn record_suggesting(
        &self,
        interaction: &Interaction,
        suggested: &[ReasonMark],
        lane: &mut Lane,
    ) -> Result<Recorded, StoreError> {
        let marker_key = &keys::interaction(&interaction.id);
        let recalled = &lane.recall(interaction);
        let (recorded, committed, answer) = retry_optimistic("recording an interaction", |attempt| async move {
            // After a write whose condition failed everything is read again, consistently.
            let consistent = attempt > 0;
            let marker = self.get(marker_key.clone(), consistent).await?;
            if let Some(existing) = &marker {
                if existing.contains_key("erased_at") {
                    return Ok(Attempt::Done((Recorded::Erased, None, None)));
                }
                // The provider's id of a reply sent through the API (`outbound`): this is its
                // echo, and the reply's entry is the one entry.
                if existing.contains_key("alias_of") {
                    let customer = id_attr(existing, "customer_id")?;
                    return Ok(Attempt::Done((Recorded::Duplicate { customer }, None, None)));
                }
                if existing.contains_key("timeline_sk") {
                    return Ok(match Box::pin(self.finish(interaction, existing, suggested)).await? {
                        Attempt::Done((recorded, answer)) => Attempt::Done((recorded, None, answer)),
                        Attempt::Again => Attempt::Again,
                    });
                }
            }
            // The lane's last commit for this handle, on a first try: its owner and root as that
            // commit left them (if anything changed since, the commit's condition fails and the
            // next try reads everything).
            let (owner, owner_profile, root_profile, created) =
                if let Some((owner_profile, root_profile)) = recalled.as_ref().filter(|_| attempt == 0) {
                    (
                        owner_profile.customer.clone(),
                        owner_profile.clone(),
                        root_profile.clone(),
                        false,
                    )
                } else {
                    let Some(resolved) = Box::pin(self.resolve_interaction_customer(interaction)).await? else {
                        return Ok(Attempt::Done((Recorded::Erased, None, None)));
                    };
                    let owner = resolved.customer;
                    // A member whose handle names its root: that root's member list says all that is
                    // needed of it (a stale hint is no longer believed: the owner's profile is read).
                    let hinted = match resolved.root_hint.as_ref().filter(|r| **r != owner) {
                        Some(hint) => self
                            .profile_item(hint, consistent)
                            .await?
                            .filter(|r| r.erased_at.is_none() && r.is_root() && r.members.contains(&owner)),
                        None => None,
                    };
                    // A customer created just now: its profile is the one written (if that changed
                    // since, the commit's version condition fails and the next try reads).
                    let created = resolved.created.is_some();
                    let found = match (hinted, resolved.created) {
                        (Some(root), _) => Owner::Live(Box::new((ProfileItem::member_of(&owner, &root), root))),
                        (None, Some(created)) => self.group_of(Some(created), consistent).await?,
                        (None, None) => {
                            let found = self
                                .group_of(self.profile_item(&owner, consistent).await?, consistent)
                                .await?;
                            // Note the root on the handle when it is another customer, or when the
                            // handle still names a root it no longer belongs to.
                            if let Owner::Live(both) = &found
                                && (!both.0.is_root() || resolved.root_hint.is_some())
                                && resolved.root_hint.as_ref() != Some(&both.1.customer)
                            {
                                self.hint_root(&interaction.customer, &owner, &both.1.customer).await?;
                            }
                            found
                        }
                    };
                    let (owner_profile, root_profile) = match found {
                        Owner::Live(both) => *both,
                        // The handle still routes to an erased customer (an identifier attached while the
                        // erasure ran): release it, so the next try gives it a customer of its own.
                        Owner::Erased => {
                            self.release_handle(&interaction.customer.key(), &owner).await?;
                            return Ok(Attempt::Again);
                        }
                        Owner::NotVisible => {
                            if consistent {
                                self.finish_creation(interaction, &owner).await?;
                            }
                            return Ok(Attempt::Again);
                        }
                    };
                    if !owner_profile.is_root() && !root_profile.members.contains(&owner) {
                        // Read before a merge or unmerge that the root's profile shows: read again.
                        return Ok(Attempt::Again);
                    }
                    (owner, owner_profile, root_profile, created)
                };
            // An answer to the group's open survey is recorded as feedback (in the conversation
            // surveyed; no reasons suggested for it), and the commit notes it on the survey.
            let answer = recorded_answer(root_profile.survey.as_ref(), interaction);
            let (interaction, suggested) = match &answer {
                Some(answer) => (&answer.interaction, &[][..]),
                None => (interaction, suggested),
            };
            let survey = SurveyChange::of(
                root_profile.survey.as_ref(),
                answer.as_ref().and_then(|a| a.survey.as_ref()),
                interaction.occurred_at,
            );
            // The history is read only when the open conversation neither decides nor simply
            // retires (a new customer has none; a profile written before the history item
            // existed holds it whole).
            let placement = if root_profile.conversation.recent.len() > 1 {
                Placement::Whole
            } else {
                root_profile.conversation.placement(interaction, self.window)
            };
            let history = match placement {
                _ if created => Some(History::default()),
                Placement::Open | Placement::AfterOpen => None,
                Placement::Whole => Some(self.history(&root_profile, consistent).await?),
            };
            let planned = plan_record(
                &self.table,
                interaction,
                marker.as_ref(),
                (&owner_profile, &root_profile),
                history.as_ref(),
                self.window,
                suggested,
                survey,
            )?;
            if !self.write_one(planned.marker).await? {
                // Another delivery wrote it first, or another change reached the tombstone.
                return Ok(Attempt::Again);
            }
            self.write_one(planned.entry).await?;
            if let Some(history) = planned.history
                && !self.write_one(history).await?
            {
                return Ok(Attempt::Again);
            }
            if self.write_one(planned.commit).await? {
                // The root as this commit left it, for the lane's next interaction.
                let mut root_after = root_profile;
                root_after.version += 1;
                root_after.conversation = planned.open;
                match survey {
                    SurveyChange::Keep => {}
                    SurveyChange::Set(after) => root_after.survey = Some(after.clone()),
                    SurveyChange::Remove => root_after.survey = None,
                }
                return Ok(Attempt::Done((
                    Recorded::New {
                        customer: owner,
                        conversation: planned.conversation,
                        observed: planned.observed,
                    },
                    Some((owner_profile, root_after)),
                    answer,
                )));
            }
            // The root changed (another interaction, a merge), or a concurrent delivery of this
            // one committed, or it was erased: the next try finishes from the marker.
            Ok(Attempt::Again)
        })
        .await?;
        lane.remember(interaction, committed);
        if let Recorded::New { observed, .. } = &recorded {
            let recorded_as = answer.as_ref().map_or(interaction, |a| &a.interaction);
            Box::pin(self.roll_up_interaction(recorded_as, observed)).await;
            if let Some(answer) = &answer {
                Box::pin(self.roll_up_answer(answer)).await;
            }
        }
        if let Recorded::New { customer, .. } | Recorded::Duplicate { customer } = &recorded {
            // A redelivery notes it too: the note is idempotent, and may not have been made.
            self.note_sms_keyword(interaction, customer).await?;
        }
        Ok(recorded)
    }

    /// A profile (`None`: not visible yet) and its group's root, as they are.
    async fn group_of(&self, profile: Option<ProfileItem>, consistent: bool) -> Result<Owner, StoreError> {
        Ok(match profile {
            Some(profile) if profile.erased_at.is_none() && profile.is_root() => {
                Owner::Live(Box::new((profile.clone(), profile)))
            }
            Some(profile) if profile.erased_at.is_none() => match self.profile_item(&profile.root, consistent).await? {
                Some(root) if root.erased_at.is_none() => Owner::Live(Box::new((profile, root))),
                Some(_) => Owner::Erased,
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "root of {} has no profile",
                        profile.customer
                    )));
                }
            },
            Some(_) => Owner::Erased,
            None => Owner::NotVisible,
        })
    }

    /// A delivery of an interaction whose marker is written: a duplicate once its commit is
    /// made (read from the root's commit slot: one eventually consistent read), else what is
    /// left of its recording, against its group as it is now (the conversation the marker
    /// fixed; the commit moved to the current root and version, the marker first).
    async fn finish(
        &self,
        interaction: &Interaction,
        marker: &Item,
        suggested: &[ReasonMark],
    ) -> Result<Attempt<(Recorded, Option<RecordedAnswer>)>, StoreError> {
        let duplicate = |customer| Ok(Attempt::Done((Recorded::Duplicate { customer }, None)));
        let owner = id_attr::<CustomerId>(marker, "customer_id")?;
        let Some(commit) = marker
            .get("commit")
            .map(|_| crate::items::number_attr(marker, "commit"))
        else {
            // Written with its entry in one transaction, by an earlier version of the writer.
            return self
                .repair(interaction, marker)
                .await
                .map(|recorded| Attempt::Done((recorded, None)));
        };
        if optional_string_attr(marker, "handle").is_some_and(|h| h != handle_fingerprint(&interaction.customer)) {
            return Ok(Attempt::Done((Recorded::Collision { customer: owner }, None)));
        }
        // A survey's answer, as the first delivery decided.
        let feedback = json_attr::<Feedback>(marker, "feedback")?;
        let first_recorded = feedback.as_ref().map(|feedback| {
            let mut recorded = interaction.clone();
            recorded.kind = InteractionKind::Feedback;
            recorded.feedback = Some(feedback.clone());
            recorded
        });
        let (interaction, suggested) = match &first_recorded {
            Some(recorded) => (recorded, &[][..]),
            None => (interaction, suggested),
        };
        let root = id_attr::<CustomerId>(marker, "root")?;
        let committed = |profile: &Option<ProfileItem>| {
            profile
                .as_ref()
                .map_or(Commit::NotDone, |p| p.commit_of(&interaction.id, commit))
        };
        if committed(&self.profile_item(&root, false).await?) == Commit::Done {
            return duplicate(owner);
        }
        let root_profile = self.profile_item(&root, true).await?;
        if root_profile.as_ref().is_some_and(|r| r.erased_at.is_some()) {
            self.withdraw(interaction, marker, &owner, Some(&root)).await?;
            return Ok(Attempt::Done((Recorded::Erased, None)));
        }
        let sk = string_attr(marker, "timeline_sk")?;
        let entry_key = (keys::customer_pk(&owner), sk.clone());
        match committed(&root_profile) {
            Commit::Done => return duplicate(owner),
            // Eight more interactions of the group came between: whether its commit was made
            // is no longer known. Its entry is put back if missing, and it is not counted again
            // (a count may be one short, never doubled).
            Commit::Forgotten => {
                tracing::warn!(interaction_id = %interaction.id, "commit no longer known; not counted again");
                if self.get(entry_key, true).await?.is_none() {
                    self.write_one(self.entry_write(interaction, marker, &owner, &sk)?)
                        .await?;
                }
                return duplicate(owner);
            }
            Commit::NotDone => {}
        }
        // Unfinished: the entry (if the first try stopped before it), the state, the commit.
        let conversation = optional_string_attr(marker, "conversation_id")
            .and_then(|c| ConversationId::try_from(c).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("marker of {} has no conversation", interaction.id)))?;
        let owner_profile = self.profile_item(&owner, true).await?;
        let (owner_profile, current_root) = match self.group_of(owner_profile, true).await? {
            Owner::Live(both) => *both,
            Owner::Erased => {
                self.withdraw(interaction, marker, &owner, None).await?;
                return Ok(Attempt::Done((Recorded::Erased, None)));
            }
            Owner::NotVisible => return Ok(Attempt::Again),
        };
        let survey = feedback.as_ref().and_then(|feedback| {
            let open = current_root.survey.as_ref().filter(|s| s.id == feedback.survey_id)?;
            Some(open.answered(feedback))
        });
        if !owner_profile.is_root() && !current_root.members.contains(&owner) {
            return Ok(Attempt::Again);
        }
        if self.get(entry_key, true).await?.is_none() {
            self.write_one(self.entry_write(interaction, marker, &owner, &sk)?)
                .await?;
        }
        let (mut whole, history) = self.conversations(&current_root, true).await?;
        let observed = whole.assign_as(interaction, &conversation);
        whole.suggest(&conversation, suggested);
        let (open, history_write) = history.write_back(&self.table, &current_root.customer, &whole)?;
        let next = current_root.version + 1;
        if (&current_root.customer, next) != (&root, commit) {
            // The commit moves to the root and version it can be made at now, the marker first
            // (only if no other delivery moved it meanwhile).
            let moved = tx_update(
                &self.table,
                keys::interaction(&interaction.id),
                "SET #root = :root, #commit = :next",
                Some("#commit = :commit AND attribute_not_exists(erased_at)"),
                Expr::new()
                    .name("#root", "root")
                    .name("#commit", "commit")
                    .value(":root", string_value(current_root.customer.as_str()))
                    .value(":next", number_value(next))
                    .value(":commit", number_value(commit)),
            )?;
            if !self.write_one(moved).await? {
                return Ok(Attempt::Again);
            }
        }
        if let Some(history) = history_write
            && !self.write_one(history).await?
        {
            return Ok(Attempt::Again);
        }
        let commit = plan_commit(
            &self.table,
            interaction,
            (&owner_profile, &current_root),
            &open,
            observed.opened,
            SurveyChange::of(current_root.survey.as_ref(), survey.as_ref(), interaction.occurred_at),
        )?;
        if self.write_one(commit).await? {
            let answer = first_recorded.map(|interaction| RecordedAnswer { interaction, survey });
            return Ok(Attempt::Done((
                Recorded::New {
                    customer: owner,
                    conversation,
                    observed,
                },
                answer,
            )));
        }
        Ok(Attempt::Again)
    }

    /// The entry of an interaction whose marker is written, as the marker has it: its
    /// position, its conversation and the changes that reached the marker first.
    fn entry_write(
        &self,
        interaction: &Interaction,
        marker: &Item,
        owner: &CustomerId,
        sk: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut entry = Pending::from_marker(marker)?.applied_to(interaction);
        entry.conversation_id =
            optional_string_attr(marker, "conversation_id").and_then(|c| ConversationId::try_from(c).ok());
        tx_put(
            &self.table,
            entry_item(owner, sk, &entry)?,
            Some("attribute_not_exists(pk)"),
            Expr::new(),
        )
    }

    /// An interaction whose group was erased before its commit: what it wrote goes (its entry,
    /// and the erased root's history in case it wrote that after the erasure passed), and its
    /// marker says erased, so that every later delivery is dropped.
    async fn withdraw(
        &self,
        interaction: &Interaction,
        marker: &Item,
        owner: &CustomerId,
        erased_root: Option<&CustomerId>,
    ) -> Result<(), StoreError> {
        let sk = string_attr(marker, "timeline_sk")?;
        let mut doomed = vec![(keys::customer_pk(owner), sk)];
        doomed.extend(erased_root.map(keys::conversation_history));
        self.delete_all(doomed).await?;
        self.mark_erased(&[interaction.id.to_string()], owner, Utc::now()).await
    }

    /// A redelivery of a recorded interaction. The entry is written with its marker, so it
    /// exists; an entry missing under a marker (written by a version of the writer that wrote
    /// them apart and stopped between) is put back where the first delivery chose, only if
    /// neither the interaction nor its customer was erased.
    async fn repair(&self, interaction: &Interaction, marker: &Item) -> Result<Recorded, StoreError> {
        let customer = id_attr::<CustomerId>(marker, "customer_id")?;
        let sk = string_attr(marker, "timeline_sk")?;
        let entry_key = (keys::customer_pk(&customer), sk.clone());
        if let Some(entry) = self.get(entry_key.clone(), false).await? {
            let recorded_for = entry.get("customer").and_then(|handle| {
                serde_dynamo::from_attribute_value::<_, throughline_model::Handle>(handle.clone()).ok()
            });
            if recorded_for.is_some_and(|handle| handle != interaction.customer) {
                return Ok(Recorded::Collision { customer });
            }
            return Ok(Recorded::Duplicate { customer });
        }
        let written = self
            .transact(vec![
                tx_check(
                    &self.table,
                    keys::interaction(&interaction.id),
                    "attribute_not_exists(erased_at)",
                    Expr::new(),
                )?,
                tx_check(
                    &self.table,
                    keys::profile(&customer),
                    "attribute_not_exists(erased_at)",
                    Expr::new(),
                )?,
                self.entry_write(interaction, marker, &customer, &sk)?,
            ])
            .await?;
        if written || self.get(entry_key, true).await?.is_some() {
            return Ok(Recorded::Duplicate { customer });
        }
        let erased = self
            .get(keys::interaction(&interaction.id), true)
            .await?
            .is_some_and(|m| m.contains_key("erased_at"))
            || self
                .profile_item(&customer, true)
                .await?
                .is_some_and(|p| p.erased_at.is_some());
        if erased {
            return Ok(Recorded::Erased);
        }
        // Cancelled for another reason (a concurrent transaction): SQS delivers it again.
        Err(StoreError::Contention("repairing a timeline entry"))
    }

    /// Applies an update (a deletion or an edit) to an interaction's timeline entry. An update
    /// for an interaction not recorded yet is kept on its marker, and its arrival honours it.
    /// Idempotent; of two edits, the later (by provider time) wins whatever their order.
    pub async fn apply(&self, update: &InteractionUpdate) -> Result<Applied, StoreError> {
        let (pk, sk) = keys::interaction(&update.interaction_id);
        let marker = self.get((pk.clone(), sk.clone()), true).await?;
        if marker.as_ref().is_some_and(|m| m.contains_key("erased_at")) {
            return Ok(Applied::Erased);
        }
        if let Some(marker) = marker.as_ref().filter(|m| m.contains_key("timeline_sk")) {
            return self.change_entry(marker, update).await;
        }
        let pending = marker
            .as_ref()
            .map(Pending::from_marker)
            .transpose()?
            .unwrap_or_default();
        let at = millis(update.at);
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item((pk, sk))));
        let written = match &update.change {
            Change::Deleted => request
                .update_expression("SET deleted_at = if_not_exists(deleted_at, :at)")
                .expression_attribute_values(":at", string_value(&at))
                .send()
                .await
                .map(drop),
            Change::Edited { .. } if pending.edit.as_ref().is_some_and(|(t, _)| *t > update.at) => Ok(()),
            Change::Edited { text } => {
                // Written only if no other edit landed since the read (else start over).
                let request = match marker.as_ref().and_then(|m| m.get("edited_at")) {
                    Some(previous) => request
                        .condition_expression("edited_at = :previous")
                        .expression_attribute_values(":previous", previous.clone()),
                    None => request.condition_expression("attribute_not_exists(edited_at)"),
                };
                let request = match text {
                    Some(text) => request
                        .update_expression("SET edited_at = :at, edited_text = :text")
                        .expression_attribute_values(":text", string_value(text)),
                    None => request.update_expression("SET edited_at = :at REMOVE edited_text"),
                };
                match request
                    .expression_attribute_values(":at", string_value(&at))
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    // Another change landed on the marker meanwhile: start over from it.
                    Err(e) if is_conditional_failure(&e) => return Box::pin(self.apply(update)).await,
                    Err(e) => Err(e),
                }
            }
        };
        written.map_err(dynamo("UpdateItem"))?;
        // Recorded between our read and write? Then its entry must get the change too.
        let (pk, sk) = keys::interaction(&update.interaction_id);
        match self
            .get((pk, sk), true)
            .await?
            .filter(|m| m.contains_key("timeline_sk"))
        {
            Some(marker) => self.change_entry(&marker, update).await,
            None => Ok(Applied::Pending),
        }
    }

    async fn change_entry(&self, marker: &Item, update: &InteractionUpdate) -> Result<Applied, StoreError> {
        let customer = id_attr::<CustomerId>(marker, "customer_id")?;
        let (entry_pk, entry_sk) = (keys::customer_pk(&customer), string_attr(marker, "timeline_sk")?);
        // The marker exists but its entry not yet (a writer stopped between the two writes):
        // fail, so the update is retried after the interaction's redelivery repairs it.
        let not_written = || StoreError::Dynamo {
            operation: "UpdateItem",
            message: "timeline entry not written yet".into(),
        };
        let text = match &update.change {
            Change::Deleted => {
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key_item((entry_pk, entry_sk))))
                    .update_expression("SET deleted_at = if_not_exists(deleted_at, :at)")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":at", string_value(millis(update.at)))
                    .send()
                    .await;
                return match result {
                    Ok(_) => Ok(Applied::Updated { customer }),
                    Err(e) if is_conditional_failure(&e) => Err(not_written()),
                    Err(e) => Err(dynamo("UpdateItem")(e)),
                };
            }
            Change::Edited { text } => text,
        };
        // An edit rewrites the entry's text: read it, change it, write it back only if no other
        // edit got there first (then start over).
        let item = self
            .get((entry_pk.clone(), entry_sk.clone()), true)
            .await?
            .ok_or_else(not_written)?;
        let mut entry = crate::items::stored_interaction(item.clone())?;
        if entry.edited_at.is_some_and(|t| t > update.at) {
            return Ok(Applied::Updated { customer });
        }
        entry.apply_edit(text.clone(), update.at);
        // Only the edit's attributes change: a deletion or a conversation relabel landing
        // meanwhile is kept.
        let edited_at: aws_sdk_dynamodb::types::AttributeValue = serde_dynamo::to_attribute_value(entry.edited_at)
            .map_err(|e| StoreError::Corrupt(format!("serialize: {e}")))?;
        let mut set = vec!["edited_at = :at"];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item((entry_pk, entry_sk))))
            .expression_attribute_names("#text", "text")
            .expression_attribute_values(":at", edited_at);
        if let Some(original) = &entry.original_text {
            set.push("original_text = :original");
            request = request.expression_attribute_values(":original", string_value(original));
        }
        let expression = match &entry.text {
            Some(text) => {
                set.push("#text = :text");
                request = request.expression_attribute_values(":text", string_value(text));
                format!("SET {}", set.join(", "))
            }
            None => format!("SET {} REMOVE #text", set.join(", ")),
        };
        request = match item.get("edited_at") {
            Some(previous) => request
                .condition_expression("edited_at = :previous")
                .expression_attribute_values(":previous", previous.clone()),
            None => request.condition_expression("attribute_exists(pk) AND attribute_not_exists(edited_at)"),
        };
        match request.update_expression(expression).send().await {
            Ok(_) => Ok(Applied::Updated { customer }),
            Err(e) if is_conditional_failure(&e) => Box::pin(self.change_entry(marker, update)).await,
            Err(e) => Err(dynamo("UpdateItem")(e)),
        }
    }

    /// The stored profile of one customer (not its group).
    pub(crate) async fn profile_item(
        &self,
        customer: &CustomerId,
        consistent: bool,
    ) -> Result<Option<ProfileItem>, StoreError> {
        self.get(keys::profile(customer), consistent)
            .await?
            .map(|item| ProfileItem::from_item(&item))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::conversation::DEFAULT_WINDOW;

    const TABLE: &str = "timeline";

    fn sms(id: &str) -> Interaction {
        throughline_testkit::inbound_sms("+14155550100", id, throughline_testkit::sample_day_at(9, 0))
    }

    fn key_of(write: &TransactWriteItem) -> String {
        let key = write
            .put()
            .map(|p| p.item().clone())
            .or_else(|| write.update().map(|u| u.key().clone()))
            .unwrap_or_default();
        let part = |name: &str| match key.get(name) {
            Some(AttributeValue::S(v)) => v.clone(),
            _ => String::new(),
        };
        format!("{}|{}", part("pk"), part("sk"))
    }

    #[test]
    fn a_first_delivery_writes_marker_entry_and_commit_each_once_and_only_at_the_version_read() {
        let owner = ProfileItem::for_test(&CustomerId::generate(), 4, &[]);
        let interaction = sms("SM1");
        let planned = plan_record(
            TABLE,
            &interaction,
            None,
            (&owner, &owner),
            None,
            DEFAULT_WINDOW,
            &[],
            SurveyChange::Keep,
        )
        .unwrap();
        assert_eq!(
            planned.conversation,
            ConversationId::opened_by(&interaction.id),
            "it opens one"
        );
        assert_eq!(
            [&planned.marker, &planned.entry, &planned.commit].map(key_of),
            [
                format!("INTERACTION#{}|INTERACTION", interaction.id),
                format!(
                    "CUSTOMER#{}|{}",
                    owner.customer,
                    keys::timeline_sk(interaction.occurred_at, &interaction.id)
                ),
                format!("CUSTOMER#{}|PROFILE", owner.customer),
            ]
        );
        assert!(planned.history.is_none(), "nothing but the open conversation changed");
        let marker = planned.marker.put().unwrap();
        assert_eq!(
            marker.condition_expression(),
            Some("attribute_not_exists(pk)"),
            "only once"
        );
        for (name, value) in [
            ("root", string_value(owner.customer.as_str())),
            ("commit", number_value(5)),
            ("conversation_id", string_value(planned.conversation.as_str())),
        ] {
            assert_eq!(marker.item().get(name), Some(&value), "the marker fixes {name}");
        }
        let entry = planned.entry.put().unwrap();
        assert_eq!(entry.condition_expression(), Some("attribute_not_exists(pk)"));
        assert_eq!(
            entry.item().get("conversation_id"),
            Some(&AttributeValue::S(planned.conversation.to_string()))
        );
        let commit = planned.commit.update().unwrap();
        assert_eq!(
            commit.update_expression(),
            "SET #conversation = :state, #queue0 = :queue0, #queue1 = :queue1, #queue2 = :queue2, #slot = :commit, \
             #calculated = :calculated REMOVE #queue3 ADD #count :one, #version :one",
            "the customer waits: the conversation is in the queue, assigned to nobody; her message counts"
        );
        let values = commit.expression_attribute_values().unwrap();
        let AttributeValue::S(calculated) = &values[":calculated"] else {
            panic!("calculated attributes are JSON");
        };
        let calculated: throughline_segments::Calculated = serde_json::from_str(calculated).unwrap();
        assert_eq!(calculated.last_seen_at, Some(interaction.occurred_at));
        assert_eq!(calculated.days.values().flat_map(|c| c.values()).sum::<u32>(), 1);
        assert_eq!(values.get(":queue0"), Some(&string_value("open")));
        assert_eq!(
            values.get(":queue1"),
            Some(&string_value(format!(
                "{}#{}",
                millis(interaction.occurred_at),
                planned.conversation
            ))),
            "newest waiting first"
        );
        assert_eq!(values.get(":queue2"), Some(&string_value("sms")));
        assert_eq!(
            commit.condition_expression(),
            Some("#version = :version AND attribute_not_exists(erased_at)")
        );
        let names = commit.expression_attribute_names().unwrap();
        assert_eq!(names.get("#count").map(String::as_str), Some("count_sms"));
        assert_eq!(names.get("#slot").map(String::as_str), Some("ix5"));
        let fingerprint = &interaction.id.as_str()[3..15];
        assert_eq!(
            commit.expression_attribute_values().unwrap().get(":commit"),
            Some(&string_value(format!("{fingerprint}@5"))),
            "the slot of version 5 names it"
        );
    }

    #[test]
    fn an_agent_reply_takes_the_conversation_out_of_the_queue_and_suggestions_join_the_commit() {
        let owner = ProfileItem::for_test(&CustomerId::generate(), 1, &[]);
        let message = sms("SM1");
        let suggested = [ReasonMark {
            code: "delivery/late".into(),
            confirmed: false,
            rule: Some("delivery/late:0".into()),
        }];
        let planned = plan_record(
            TABLE,
            &message,
            None,
            (&owner, &owner),
            None,
            DEFAULT_WINDOW,
            &suggested,
            SurveyChange::Keep,
        )
        .unwrap();
        let open = planned.open.open().unwrap();
        assert_eq!(open.reasons, suggested, "in the commit it makes anyway");
        assert_eq!(open.lifecycle.status, throughline_service::ConversationStatus::Open);
        let mut root = owner.clone();
        root.version += 1;
        root.conversation = planned.open;
        let mut reply = sms("SM2");
        reply.direction = throughline_model::Direction::Outbound;
        reply.occurred_at += TimeDelta::minutes(5);
        let planned = plan_record(
            TABLE,
            &reply,
            None,
            (&root, &root),
            None,
            DEFAULT_WINDOW,
            &[],
            SurveyChange::Keep,
        )
        .unwrap();
        let answered = planned.open.open().unwrap();
        assert_eq!(
            answered.lifecycle.status,
            throughline_service::ConversationStatus::Pending
        );
        assert_eq!(answered.reasons, suggested, "kept");
        assert_eq!(planned.observed.answered.map(|a| a.waited), Some(TimeDelta::minutes(5)));
        let commit = planned.commit.update().unwrap();
        assert_eq!(
            commit.update_expression(),
            "SET #conversation = :state, #slot = :commit REMOVE #queue0, #queue1, #queue2, #queue3 \
             ADD #count :one, #version :one"
        );
    }

    #[test]
    fn a_merged_member_is_counted_and_committed_on_its_root_while_still_a_member() {
        let root_id = CustomerId::generate();
        let member = ProfileItem::for_test(
            &CustomerId::generate(),
            2,
            &[("root", AttributeValue::S(root_id.to_string()))],
        );
        let root = ProfileItem::for_test(
            &root_id,
            9,
            &[("members", AttributeValue::Ss(vec![member.customer.to_string()]))],
        );
        let planned = plan_record(
            TABLE,
            &sms("SM2"),
            None,
            (&member, &root),
            None,
            DEFAULT_WINDOW,
            &[],
            SurveyChange::Keep,
        )
        .unwrap();
        assert_eq!(key_of(&planned.commit), format!("CUSTOMER#{root_id}|PROFILE"));
        let commit = planned.commit.update().unwrap();
        assert_eq!(
            commit.condition_expression(),
            Some("#version = :version AND attribute_not_exists(erased_at) AND contains(#members, :owner)"),
            "only while still in the group read"
        );
        assert_eq!(
            commit
                .expression_attribute_names()
                .and_then(|n| n.get("#count"))
                .map(String::as_str),
            Some(format!("n_{}_sms", member.customer).as_str()),
            "the member's count, on its root"
        );
        let entry = planned.entry.put().unwrap();
        assert_eq!(
            entry.item().get("pk"),
            Some(&string_value(keys::customer_pk(&member.customer))),
            "the entry in the member's own partition"
        );
    }

    #[test]
    fn an_answer_rewrites_the_open_survey_in_the_commit_and_an_expired_one_goes() {
        let owner = ProfileItem::for_test(&CustomerId::generate(), 2, &[]);
        let at = throughline_testkit::sample_day_at(9, 0);
        let survey = OpenSurvey {
            id: "sv_1".into(),
            conversation_id: ConversationId::opened_by(&sms("SM0").id),
            channel: throughline_model::Channel::Sms,
            customer: sms("SM0").customer.key(),
            endpoint: sms("SM0").business_endpoint.key(),
            locale: None,
            sent_at: at - TimeDelta::hours(30),
            expires_at: at - TimeDelta::hours(6),
            resolved_at: at - TimeDelta::hours(30),
            resolved_channel: throughline_model::Channel::Sms,
            assignee: None,
            reasons: Vec::new(),
            rating: None,
            remarked: false,
        };
        let commit = |change| {
            let planned = plan_record(
                TABLE,
                &sms("SM1"),
                None,
                (&owner, &owner),
                None,
                DEFAULT_WINDOW,
                &[],
                change,
            )
            .unwrap();
            planned.commit.update().unwrap().update_expression().to_owned()
        };
        assert!(!commit(SurveyChange::Keep).contains("#survey"));
        assert!(commit(SurveyChange::Set(&survey)).contains("#survey = :survey"));
        assert!(
            commit(SurveyChange::Remove).contains("REMOVE #queue3, #survey"),
            "{}",
            commit(SurveyChange::Remove)
        );
        assert_eq!(
            SurveyChange::of(Some(&survey), None, at),
            SurveyChange::Remove,
            "expired"
        );
        assert_eq!(
            SurveyChange::of(Some(&survey), None, at - TimeDelta::hours(7)),
            SurveyChange::Keep,
            "still taking answers"
        );
        assert_eq!(SurveyChange::of(None, None, at), SurveyChange::Keep);
    }

    #[test]
    fn a_delivery_after_its_deletion_claims_the_tombstone_and_arrives_deleted() {
        let owner = ProfileItem::for_test(&CustomerId::generate(), 0, &[]);
        let interaction = sms("SM3");
        let deleted_at = "2026-11-24T09:05:00.000Z";
        let mut tombstone = key_item(keys::interaction(&interaction.id));
        tombstone.insert("deleted_at".into(), string_value(deleted_at));
        let planned = plan_record(
            TABLE,
            &interaction,
            Some(&tombstone),
            (&owner, &owner),
            None,
            DEFAULT_WINDOW,
            &[],
            SurveyChange::Keep,
        )
        .unwrap();
        let claim = planned.marker.update().unwrap();
        assert!(claim.update_expression().starts_with("SET #f0 = :f0, #f1 = :f1"));
        assert_eq!(
            claim.condition_expression(),
            Some(
                "attribute_exists(pk) AND attribute_not_exists(timeline_sk) AND attribute_not_exists(erased_at) \
                 AND deleted_at = :d AND attribute_not_exists(edited_at)"
            ),
            "only if no other change landed since it was read"
        );
        let entry = planned.entry.put().unwrap();
        assert_eq!(
            entry.item().get("deleted_at"),
            Some(&string_value("2026-11-24T09:05:00Z")),
            "the deletion it missed"
        );
        // A profile written before versions existed is still "unchanged" at version 0.
        let commit = planned.commit.update().unwrap();
        assert!(
            commit
                .condition_expression()
                .unwrap()
                .starts_with("(attribute_not_exists(#version)")
        );
    }
}
