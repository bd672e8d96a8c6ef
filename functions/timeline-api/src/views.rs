//! What the API answers, apart from what the store keeps. The store's records (`LedgerEntry`,
//! `LinkSuggestion`, timeline entries) are the table's JSON and change with the store; these
//! views are the public bodies `openapi.yaml` describes, made from the records (`From`). Their
//! JSON Schema is derived, and a test holds each to its `openapi.yaml` component, so neither
//! can drift from the other unnoticed.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use throughline_model::{
    Channel, ConversationId, CustomerId, Evidence, IdentifierSource, Interaction, InteractionId, LedgerEntryId,
    MergeId, SuggestionId,
};
use throughline_reasons::Taxonomy;
use throughline_service::ConversationStatus;
use throughline_service::rollup::{Distribution, Summary};
use throughline_store::{
    CompanyAttributes, Conversation, CustomerProfile, Export, LedgerAction, LedgerEntry, LinkSuggestion, QueuePage,
    SuggestionStatus, TimelineEntry, TimelinePage,
};

/// One fact of a customer's ledger (component `LedgerEntry`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LedgerEntryView {
    pub entry_id: LedgerEntryId,
    #[schemars(with = "String")]
    pub action: LedgerAction,
    pub at: DateTime<Utc>,
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_id: Option<MergeId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<CustomerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<CustomerId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion_id: Option<SuggestionId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conversations: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reason_codes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attribute_keys: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
}

impl From<LedgerEntry> for LedgerEntryView {
    fn from(entry: LedgerEntry) -> Self {
        Self {
            entry_id: entry.entry_id,
            action: entry.action,
            at: entry.at,
            actor: entry.actor,
            actor_principal_id: entry.actor_principal_id,
            reason: entry.reason,
            merge_id: entry.merge_id,
            source: entry.source,
            target: entry.target,
            identifiers: entry.identifiers,
            suggestion_id: entry.suggestion_id,
            conversations: entry.conversations,
            reason_codes: entry.reason_codes,
            assignee: entry.assignee,
            attribute_keys: entry.attribute_keys,
            redacted: entry.redacted,
        }
    }
}

/// "The claimant may be the owner" (component `LinkSuggestion`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LinkSuggestionView {
    pub suggestion_id: SuggestionId,
    pub claimant: CustomerId,
    pub owner: CustomerId,
    pub identifier: String,
    pub evidence: Evidence,
    pub source: IdentifierSource,
    pub interaction_id: String,
    #[schemars(with = "String")]
    pub status: SuggestionStatus,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_id: Option<MergeId>,
}

impl From<LinkSuggestion> for LinkSuggestionView {
    fn from(s: LinkSuggestion) -> Self {
        Self {
            suggestion_id: s.suggestion_id,
            claimant: s.claimant,
            owner: s.owner,
            identifier: s.identifier,
            evidence: s.evidence,
            source: s.source,
            interaction_id: s.interaction_id,
            status: s.status,
            created_at: s.created_at,
            decided_at: s.decided_at,
            decided_by: s.decided_by,
            merge_id: s.merge_id,
        }
    }
}

/// One interaction on a group's timeline, with the member it came in on (component
/// `TimelineEntry`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TimelineEntryView {
    pub customer_id: CustomerId,
    #[serde(flatten)]
    pub interaction: Interaction,
    /// On a reply: whether statuses after `sent` will come (`none` on Telegram).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_source: Option<throughline_model::StatusSource>,
}

impl TimelineEntryView {
    pub(crate) fn new(customer_id: CustomerId, interaction: Interaction) -> Self {
        let status_source = interaction
            .delivery
            .is_some()
            .then(|| throughline_model::StatusSource::of(interaction.channel));
        Self {
            customer_id,
            interaction,
            status_source,
        }
    }
}

/// A reply as the API took it (component `OutboundMessage`): its entry on the timeline, and
/// where it goes and why (absent when the same request is answered again, or on a retry).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct OutboundView {
    pub message: TimelineEntryView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
}

impl OutboundView {
    /// A reply answered again or retried: its entry, no routing.
    pub(crate) fn unrouted(customer_id: CustomerId, interaction: Interaction) -> Self {
        Self {
            message: TimelineEntryView::new(customer_id, interaction),
            routing: None,
        }
    }
}

/// Where a reply goes (component `Routing`): the customer's identifier and the company's
/// endpoint, as identifier keys, and the customer's message it answers.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Routing {
    pub channel: throughline_model::Channel,
    pub to: String,
    pub from: String,
    pub reason: crate::outbound::RoutingReason,
    pub answered_interaction_id: throughline_model::InteractionId,
}

impl From<TimelineEntry> for TimelineEntryView {
    fn from(entry: TimelineEntry) -> Self {
        Self::new(entry.customer_id, entry.interaction)
    }
}

/// A page of a group's timeline (component `TimelinePage`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TimelinePageView {
    pub customer_id: CustomerId,
    pub entries: Vec<TimelineEntryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl From<TimelinePage> for TimelinePageView {
    fn from(page: TimelinePage) -> Self {
        Self {
            customer_id: page.customer_id,
            entries: page.entries.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// Everything held on a customer (component `Export`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportView {
    pub exported_at: DateTime<Utc>,
    pub profile: CustomerProfile,
    pub interactions: Vec<TimelineEntryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub conversations: Vec<ConversationView>,
    pub suggestions: Vec<LinkSuggestionView>,
    pub ledger: Vec<LedgerEntryView>,
}

impl From<Export> for ExportView {
    fn from(export: Export) -> Self {
        Self {
            exported_at: export.exported_at,
            profile: export.profile,
            interactions: export.interactions.into_iter().map(Into::into).collect(),
            next_cursor: export.next_cursor,
            conversations: export.conversations.into_iter().map(Into::into).collect(),
            suggestions: export.suggestions.into_iter().map(Into::into).collect(),
            ledger: export.ledger.into_iter().map(Into::into).collect(),
        }
    }
}

/// A customer's link suggestions (component `SuggestionList`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SuggestionList {
    pub suggestions: Vec<LinkSuggestionView>,
}

/// A customer group's ledger, newest first (component `LedgerList`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LedgerList {
    pub entries: Vec<LedgerEntryView>,
}

/// The answer to a split: the new conversation and the ledger fact (component `SplitResult`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SplitResult {
    pub conversation_id: throughline_model::ConversationId,
    pub ledger_entry: LedgerEntryView,
}

/// A reason for contact on a conversation (component `ConversationReason`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReasonView {
    /// The taxonomy's current code (a renamed code shows under its new one).
    pub code: String,
    /// Its display name, when the taxonomy knows the code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Set by an agent; otherwise suggested by `rule`.
    pub confirmed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// One conversation with its lifecycle (component `Conversation`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ConversationView {
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
    #[schemars(with = "String")]
    pub status: ConversationStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    pub started_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_thread: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_customer_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_response_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reply_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub replies: u32,
    /// The mean of the waits agent replies ended (each customer message waiting → the next
    /// agent reply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average_reply_seconds: Option<i64>,
    pub reopens: u32,
    pub reasons: Vec<ReasonView>,
    /// `high` when the customer is in a segment marked `priority`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
}

/// A conversation's priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    High,
}

impl From<Conversation> for ConversationView {
    fn from(conversation: Conversation) -> Self {
        let lifecycle = conversation.lifecycle;
        let average_reply_seconds = lifecycle.average_reply().map(|t| t.num_seconds());
        Self {
            conversation_id: conversation.id,
            customer_id: conversation.customer_id,
            status: lifecycle.status,
            channel: lifecycle.channel,
            started_at: conversation.started_at,
            last_at: conversation.last_at,
            email_thread: conversation.email_thread,
            assignee: lifecycle.assignee,
            waiting_since: lifecycle.waiting_since,
            first_customer_at: lifecycle.first_customer_at,
            first_response_at: lifecycle.first_response_at,
            last_reply_at: lifecycle.last_reply_at,
            resolved_at: lifecycle.resolved_at,
            replies: lifecycle.replies,
            average_reply_seconds,
            reopens: lifecycle.reopens,
            reasons: conversation
                .reasons
                .into_iter()
                .map(|mark| ReasonView {
                    code: mark.code,
                    name: None,
                    confirmed: mark.confirmed,
                    rule: mark.rule,
                })
                .collect(),
            priority: None,
        }
    }
}

impl ConversationView {
    /// With `priority: high` when its customer is in a priority segment.
    pub fn with_priority(mut self, high: bool) -> Self {
        self.priority = high.then_some(Priority::High);
        self
    }

    /// Its reasons named as the taxonomy names them now (renamed codes through their aliases).
    pub fn named_by(mut self, taxonomy: Option<&Taxonomy>) -> Self {
        if let Some(taxonomy) = taxonomy {
            for reason in &mut self.reasons {
                if let Some(known) = taxonomy.resolve(&reason.code) {
                    reason.code = known.code.as_str().to_owned();
                    reason.name = Some(known.name.clone());
                }
            }
        }
        self
    }
}

/// A customer's conversations, the most recently active first (component `ConversationList`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ConversationList {
    pub customer_id: CustomerId,
    pub conversations: Vec<ConversationView>,
}

/// An agent's change to a conversation: the conversation now and the ledger fact (component
/// `ConversationChangeResult`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ConversationChangeResult {
    pub conversation: ConversationView,
    pub ledger_entry: LedgerEntryView,
    /// After a resolution, when surveys are configured: the satisfaction survey's fate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey: Option<SurveyOutcome>,
}

throughline_model::wire_enum! {
    /// What became of a resolution's survey (component `SurveyOutcome`'s `status`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
    pub enum SurveyStatus {
        /// Recorded on the timeline and queued for the sender.
        Queued = "queued",
        /// Not sent, for the `reason` given (a rule, not a failure).
        NotSent = "not_sent",
        /// Could not be recorded or queued (`reason`: the error's code); the resolution stands.
        Failed = "failed",
    }
}

/// A resolution's satisfaction survey (component `SurveyOutcome`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SurveyOutcome {
    pub survey_id: String,
    pub status: SurveyStatus,
    /// Why it was not sent: `not_enabled`, `recipient_blocked`, `window_closed`,
    /// `not_configured`, `no_customer_message`, `already_sent`; or the failure's error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Its entry on the timeline, once recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interaction_id: Option<InteractionId>,
}

/// One conversation in the queue of open work (component `QueueEntry`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct QueueEntryView {
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    pub waiting_since: DateTime<Utc>,
}

/// A page of the queue, newest waiting first (component `QueuePage`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct QueuePageView {
    pub conversations: Vec<QueueEntryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl From<QueuePage> for QueuePageView {
    fn from(page: QueuePage) -> Self {
        Self {
            conversations: page
                .entries
                .into_iter()
                .map(|entry| QueueEntryView {
                    conversation_id: entry.conversation_id,
                    customer_id: entry.customer_id,
                    channel: entry.channel,
                    assignee: entry.assignee,
                    waiting_since: entry.waiting_since,
                })
                .collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A customer's company attributes (component `CompanyAttributes`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AttributesView {
    pub customer_id: CustomerId,
    /// Key → value (string, number, boolean, or a `YYYY-MM-DD` date as a string).
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub attributes: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<CompanyAttributes> for AttributesView {
    fn from(stored: CompanyAttributes) -> Self {
        Self {
            customer_id: stored.customer_id,
            attributes: throughline_segments::attributes_json(&stored.attributes),
            updated_at: stored.updated_at,
        }
    }
}

/// The answer to setting attributes: them and the ledger fact (component
/// `AttributesChangeResult`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct AttributesChangeResult {
    pub attributes: AttributesView,
    pub ledger_entry: LedgerEntryView,
    /// The segments the customer is in now.
    pub segments: Vec<String>,
}

/// A page of a segment's members (component `SegmentMembers`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SegmentMembersView {
    pub segment: String,
    pub customers: Vec<SegmentMemberView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A segment's member: the group's root and since when.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SegmentMemberView {
    pub customer_id: CustomerId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

impl SegmentMembersView {
    pub fn of(segment: String, page: throughline_store::SegmentPage) -> Self {
        Self {
            segment,
            customers: page
                .members
                .into_iter()
                .map(|m| SegmentMemberView {
                    customer_id: m.customer_id,
                    since: m.since,
                })
                .collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A time's distribution (component `Distribution`): from fixed buckets, interpolated.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct DistributionView {
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90_seconds: Option<i64>,
}

impl From<Distribution> for DistributionView {
    fn from(distribution: Distribution) -> Self {
        Self {
            count: distribution.count,
            median_seconds: distribution.median.map(|t| t.num_seconds()),
            p90_seconds: distribution.p90.map(|t| t.num_seconds()),
        }
    }
}

/// A reason's resolved conversations (component `ReasonCount`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReasonCountView {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub confirmed: u64,
    pub suggested: u64,
}

/// The numbers of a report (component `ReportNumbers`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReportNumbers {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversations_opened: Option<u64>,
    pub conversations_resolved: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_messages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_messages: Option<u64>,
    pub first_response: DistributionView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<DistributionView>,
    pub resolution: DistributionView,
    pub reasons: Vec<ReasonCountView>,
    pub csat: CsatView,
}

/// Satisfaction of the conversations resolved (component `Csat`): the latest rating of each
/// survey answered.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CsatView {
    /// Surveys sent.
    pub surveys: u64,
    /// Surveys answered with a rating.
    pub responses: u64,
    /// Responses per survey sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_rate: Option<f64>,
    /// The mean rating (1–5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average: Option<f64>,
    /// The share of ratings of 4 or 5: the CSAT score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub satisfied: Option<f64>,
    /// Responses rating 1, 2, 3, 4 and 5.
    pub ratings: [u64; 5],
}

impl From<throughline_service::rollup::Csat> for CsatView {
    fn from(csat: throughline_service::rollup::Csat) -> Self {
        Self {
            surveys: csat.surveys,
            responses: csat.responses(),
            response_rate: csat.response_rate(),
            average: csat.average(),
            satisfied: csat.satisfied(),
            ratings: csat.ratings,
        }
    }
}

impl ReportNumbers {
    pub fn of(summary: Summary, taxonomy: Option<&Taxonomy>) -> Self {
        Self {
            conversations_opened: summary.conversations_opened,
            conversations_resolved: summary.conversations_resolved,
            inbound_messages: summary.inbound_messages,
            outbound_messages: summary.outbound_messages,
            first_response: summary.first_response.into(),
            reply: summary.reply.map(Into::into),
            resolution: summary.resolution.into(),
            reasons: summary
                .reasons
                .into_iter()
                .map(|r| ReasonCountView {
                    name: taxonomy
                        .and_then(|t| t.resolve(&r.code))
                        .map(|known| known.name.clone()),
                    code: r.code,
                    confirmed: r.confirmed,
                    suggested: r.suggested,
                })
                .collect(),
            csat: summary.csat.into(),
        }
    }
}

/// What a report read (component `ReportRead`): its cost.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReportRead {
    pub days: usize,
    pub items: usize,
    pub read_units: f64,
}

/// `GET /reports/summary` (component `ReportSummary`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReportSummaryView {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub business_hours: bool,
    #[serde(flatten)]
    pub numbers: ReportNumbers,
    pub read: ReportRead,
}

/// One day of `GET /reports/daily` (component `ReportDay`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReportDayView {
    pub day: NaiveDate,
    #[serde(flatten)]
    pub numbers: ReportNumbers,
}

/// `GET /reports/daily` (component `ReportDaily`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ReportDailyView {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub business_hours: bool,
    pub days: Vec<ReportDayView>,
    pub read: ReportRead,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use schemars::generate::SchemaSettings;
    use serde_json::Value;

    use super::*;

    /// The property names and required ones of a schema for what is serialized.
    fn shape(schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
        let names = |v: &Value| -> BTreeSet<String> {
            match v {
                Value::Object(map) => map.keys().cloned().collect(),
                Value::Array(list) => list.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
                _ => BTreeSet::new(),
            }
        };
        (names(&schema["properties"]), names(&schema["required"]))
    }

    fn derived<T: JsonSchema>() -> Value {
        let generator = SchemaSettings::draft2020_12().for_serialize().into_generator();
        serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap()
    }

    #[test]
    fn every_view_has_exactly_the_fields_its_openapi_component_lists() {
        let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(include_str!("../openapi.yaml")).unwrap();
        let spec: Value = serde_json::to_value(spec).unwrap();
        let component = |name: &str| spec["components"]["schemas"][name].clone();
        for (name, schema) in [
            ("LedgerEntry", derived::<LedgerEntryView>()),
            ("LinkSuggestion", derived::<LinkSuggestionView>()),
            ("TimelineEntry", derived::<TimelineEntryView>()),
            ("TimelinePage", derived::<TimelinePageView>()),
            ("SuggestionList", derived::<SuggestionList>()),
            ("LedgerList", derived::<LedgerList>()),
            ("SplitResult", derived::<SplitResult>()),
            ("OutboundMessage", derived::<OutboundView>()),
            ("Routing", derived::<Routing>()),
            ("Conversation", derived::<ConversationView>()),
            ("ConversationReason", derived::<ReasonView>()),
            ("ConversationList", derived::<ConversationList>()),
            ("ConversationChangeResult", derived::<ConversationChangeResult>()),
            ("QueueEntry", derived::<QueueEntryView>()),
            ("QueuePage", derived::<QueuePageView>()),
            ("Distribution", derived::<DistributionView>()),
            ("ReasonCount", derived::<ReasonCountView>()),
            ("Csat", derived::<CsatView>()),
            ("SurveyOutcome", derived::<SurveyOutcome>()),
            ("ReportRead", derived::<ReportRead>()),
            ("ReportSummary", derived::<ReportSummaryView>()),
            ("ReportDaily", derived::<ReportDailyView>()),
            ("ReportDay", derived::<ReportDayView>()),
            ("CompanyAttributes", derived::<AttributesView>()),
            ("AttributesChangeResult", derived::<AttributesChangeResult>()),
            ("SegmentMembers", derived::<SegmentMembersView>()),
        ] {
            let documented = component(name);
            assert!(documented.is_object(), "openapi.yaml has no component {name}");
            assert!(
                !shape(&schema).0.is_empty(),
                "{name}: the derived schema lists its properties"
            );
            assert_eq!(shape(&schema), shape(&documented), "{name}: (properties, required)");
        }
    }
}
