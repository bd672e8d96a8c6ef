//! The shared interaction model: what every Throughline connector produces and the timeline
//! writer consumes. Values are parsed at the edge (`values`), so code holding an `Interaction`
//! holds valid phone numbers, addresses and ids.

#![warn(missing_docs)]

/// Declares an enum whose variants travel as strings: each variant's wire name is written once
/// and serves serde, the JSON Schema and `as_str`, with `ALL`, `parse` and `Display` made from
/// the same list (so no two spellings of one name can drift apart). Exported for the other
/// crates' string-valued enums (the store's `SuggestionStatus`, `LedgerAction`).
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($wire),+].len()] = [$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }

            /// The variant with this wire name.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod channel;
mod delivery;
mod error;
mod handle;
mod identity;
mod ids;
mod interaction;
mod outbound;
pub mod provider_errors;
mod queue;
mod values;

pub use channel::{Channel, Direction, Provider};
pub use delivery::{
    AttemptOutcome, Delivery, DeliveryChange, DeliveryError, DeliveryStatus, RecipientFact, RecipientState,
    StatusEvent, StatusReport, StatusSource, WATERMARK_SOURCE, WatermarkReport,
};
pub use error::ErrorCode;
pub use handle::{Handle, Platform};
pub use identity::{Evidence, EvidenceSource, IdentifierSource, Identity, SenderCheck};
pub use ids::{ConversationId, CustomerId, InteractionId, LedgerEntryId, MergeId, SuggestionId};
pub use interaction::{
    Attachment, AttachmentSource, Change, Feedback, Interaction, InteractionKind, InteractionUpdate, NewInteraction,
    SCHEMA_VERSION, StoredObject, ThreadHints,
};
pub use outbound::{
    EmailThreading, HUMAN_AGENT_WINDOW, MessengerTag, OptKeyword, OutboundAttachment, OutboundContent, OutboundMessage,
    SEND_JOB_VERSION, SERVICE_WINDOW, SendJob, SendRefusal, WhatsappTemplate, WindowDecision, check_content,
    check_window, text_limit,
};
pub use queue::{ErasureStep, QueueMessage, WireError};
pub use values::{E164, EmailAddress, IdempotencyKey, InvalidValue, PlatformUserId, ProviderMessageId, ShortCode};

/// U+FDD0..U+FDEF and the last two code points of every plane (U+xFFFE, U+xFFFF) are reserved
/// for a program's internal use and never meant for interchange: some consumers downstream
/// (search indexes, renderers, XML exports) refuse or mangle text that holds them. The queue
/// publisher removes them from every message; connectors that cap or judge text use this too.
pub fn is_noncharacter(c: char) -> bool {
    let c = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
}

/// The JSON Schema of the wire format (every `QueueMessage`), generated from
/// these types. The committed copy (`shared/model/interaction.schema.json`) is checked
/// against it by a test.
pub fn json_schema() -> String {
    let mut interaction = serde_json::to_value(schemars::schema_for!(Interaction)).expect("schema serializes");
    let mut update = serde_json::to_value(queue::update_json_schema()).expect("schema serializes");
    let mut erasure = serde_json::to_value(queue::erasure_json_schema()).expect("schema serializes");
    let mut status = serde_json::to_value(queue::status_json_schema()).expect("schema serializes");
    let mut watermark = serde_json::to_value(queue::watermark_json_schema()).expect("schema serializes");
    // `$ref`s point at the root's `$defs`: hoist every branch's definitions there.
    let mut defs = serde_json::Map::new();
    for branch in [&mut interaction, &mut update, &mut status, &mut watermark, &mut erasure] {
        let object = branch.as_object_mut().expect("a schema is an object");
        object.remove("$schema");
        if let Some(serde_json::Value::Object(branch_defs)) = object.remove("$defs") {
            defs.extend(branch_defs);
        }
    }
    let schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Throughline queue message",
        "description": "The body of every SQS message: an interaction, an update to one, a provider's status of an outbound message, a provider's watermark for a customer, or the rest of an erasure.",
        "oneOf": [interaction, update, status, watermark, erasure],
        "$defs": defs
    });
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serializes");
    text.push('\n');
    text
}
