//! The shared interaction model: what every Throughline connector produces and the timeline
//! writer consumes. Values are parsed at the edge (`values`), so code holding an `Interaction`
//! holds valid phone numbers, addresses and ids.

mod interaction;
mod values;

pub use interaction::{
    Attachment, AttachmentSource, Channel, Direction, Handle, Interaction, InteractionId, NewInteraction, Platform,
    Provider, SCHEMA_VERSION, ThreadHints, WireError,
};
pub use values::{E164, EmailAddress, InvalidValue, PlatformUserId, ProviderMessageId, ShortCode};

/// The JSON Schema of the wire format, generated from these types. The committed copy
/// (`shared/model/interaction.schema.json`) is checked against it by a test.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Interaction);
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serializes");
    text.push('\n');
    text
}
