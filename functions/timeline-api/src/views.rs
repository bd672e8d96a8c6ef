//! What the API answers, apart from what the store keeps. The store's records (`LedgerEntry`,
//! `LinkSuggestion`, timeline entries) are the table's JSON and change with the store; these
//! views are the public bodies `openapi.yaml` describes, made from the records (`From`). Their
//! JSON Schema is derived, and a test holds each to its `openapi.yaml` component, so neither
//! can drift from the other unnoticed.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use throughline_model::{CustomerId, Evidence, IdentifierSource, Interaction, LedgerEntryId, MergeId, SuggestionId};
use throughline_store::{
    ConversationRecord, CustomerProfile, Export, LedgerAction, LedgerEntry, LinkSuggestion, SuggestionStatus,
    TimelineEntry, TimelinePage,
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
    pub conversations: Vec<ConversationRecord>,
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
            conversations: export.conversations,
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
