//! WhatsApp Cloud API: a business account's `changes`, each a business number's messages.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::Value;
use throughline_edge::{Accepted, json};
use throughline_model::{
    Attachment, AttachmentSource, Channel, DeliveryError, DeliveryStatus, Direction, E164, Handle, Interaction,
    InteractionId, NewInteraction, Provider, StatusEvent, StatusReport,
};

use super::{message_id, referral_attributes};

#[derive(Debug, Deserialize)]
struct WhatsAppEntry {
    #[serde(default)]
    changes: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct WhatsAppChange {
    field: Option<String>,
    value: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct WhatsAppValue {
    metadata: WhatsAppMetadata,
    /// Typed one by one too: a contact that does not parse only costs its display name.
    #[serde(default)]
    contacts: Vec<Value>,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    statuses: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct WhatsAppMetadata {
    display_phone_number: String,
    phone_number_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WhatsAppContact {
    wa_id: Option<String>,
    profile: Option<WhatsAppProfile>,
}

#[derive(Debug, Deserialize)]
struct WhatsAppProfile {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WhatsAppMessage {
    from: String,
    id: String,
    timestamp: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    text: Option<TextBody>,
    context: Option<WhatsAppContext>,
    image: Option<WhatsAppMedia>,
    video: Option<WhatsAppMedia>,
    audio: Option<WhatsAppMedia>,
    document: Option<WhatsAppMedia>,
    sticker: Option<WhatsAppMedia>,
    location: Option<Location>,
    contacts: Option<Vec<Value>>,
    button: Option<Button>,
    interactive: Option<Interactive>,
    reaction: Option<Reaction>,
    referral: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct TextBody {
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WhatsAppContext {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WhatsAppMedia {
    id: Option<String>,
    mime_type: Option<String>,
    sha256: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Location {
    latitude: Option<f64>,
    longitude: Option<f64>,
    name: Option<String>,
    address: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Button {
    text: Option<String>,
    payload: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Interactive {
    button_reply: Option<Reply>,
    list_reply: Option<Reply>,
}

#[derive(Debug, Deserialize)]
struct Reply {
    id: Option<String>,
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Reaction {
    message_id: Option<String>,
    emoji: Option<String>,
}

/// `+` and the digits of a WhatsApp number (`wa_id`, `from`, `display_phone_number`).
fn whatsapp_number(value: &str, field: &str) -> Result<E164, String> {
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    E164::parse(&format!("+{digits}")).map_err(|e| format!("{field}: {e}"))
}

/// One WhatsApp entry: each change, and each message in a change, on its own.
pub(super) fn whatsapp_entry(entry: &Value, index: usize, received_at: DateTime<Utc>, accepted: &mut Accepted) {
    let path = format!("entry[{index}]");
    let entry: WhatsAppEntry = match json::parse_event(entry) {
        Ok(entry) => entry,
        Err(problem) => return accepted.malformed_event(crate::CONNECTOR, &path, &problem),
    };
    for (c, change) in entry.changes.iter().enumerate() {
        let path = format!("{path}.changes[{c}]");
        if let Err(problem) = whatsapp_change(change, &path, received_at, accepted) {
            accepted.malformed_event(crate::CONNECTOR, &path, &problem);
        }
    }
}

/// A change's `value` without a valid business number (`metadata`) is one malformed event: none
/// of its messages can be attributed. A message that does not parse is its own.
fn whatsapp_change(
    change: &Value,
    path: &str,
    received_at: DateTime<Utc>,
    accepted: &mut Accepted,
) -> Result<(), String> {
    let change: WhatsAppChange = json::parse_event(change)?;
    let (Some("messages"), Some(value)) = (change.field.as_deref(), &change.value) else {
        accepted.ignored.push("other_change");
        return Ok(());
    };
    let value: WhatsAppValue = json::parse_event(value).map_err(|problem| format!("value: {problem}"))?;
    let number = whatsapp_number(
        &value.metadata.display_phone_number,
        "value.metadata.display_phone_number",
    )?;
    let endpoint = Handle::Phone { number };
    let contacts: Vec<WhatsAppContact> = value
        .contacts
        .iter()
        .filter_map(|c| json::parse_event(c).ok())
        .collect();
    let names: HashMap<&str, &str> = contacts
        .iter()
        .filter_map(|c| Some((c.wa_id.as_deref()?, c.profile.as_ref()?.name.as_deref()?)))
        .collect();
    for (m, raw) in value.messages.iter().enumerate() {
        let path = format!("{path}.value.messages[{m}]");
        let message: WhatsAppMessage = match json::parse_event(raw) {
            Ok(message) => message,
            Err(problem) => {
                accepted.malformed_event(crate::CONNECTOR, &path, &problem);
                continue;
            }
        };
        match whatsapp_message(&message, &endpoint, received_at) {
            Ok(Some(mut interaction)) => {
                interaction.customer_display_name = names.get(message.from.as_str()).map(|n| n.to_string());
                if let Some(id) = &value.metadata.phone_number_id {
                    interaction.attributes.insert("phone_number_id".into(), id.clone());
                }
                accepted.interactions.push(interaction);
            }
            Ok(None) => accepted.ignored.push("unsupported_message"),
            Err(problem) => accepted.malformed_event(crate::CONNECTOR, &path, &problem),
        }
    }
    // Every status of the batch, each on its own: one that does not parse costs only itself.
    for (n, raw) in value.statuses.iter().enumerate() {
        let path = format!("{path}.value.statuses[{n}]");
        match json::parse_event::<WhatsAppStatus>(raw).and_then(|status| whatsapp_status(&status, &endpoint)) {
            Ok(Some(report)) => accepted.statuses.push(report),
            Ok(None) => accepted.ignored.push("status_other"),
            Err(problem) => accepted.malformed_event(crate::CONNECTOR, &path, &problem),
        }
    }
    Ok(())
}

/// WhatsApp's times: Unix seconds, as a string.
fn unix_seconds(value: Option<&str>) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(value?.trim().parse::<i64>().ok()?, 0).single()
}

/// One of `value.statuses[]`: what happened to a message the business sent.
#[derive(Debug, Deserialize)]
struct WhatsAppStatus {
    id: Option<String>,
    status: Option<String>,
    timestamp: Option<String>,
    #[serde(default)]
    errors: Vec<WhatsAppError>,
}

#[derive(Debug, Deserialize)]
struct WhatsAppError {
    code: Option<i64>,
}

/// The source of the statuses WhatsApp Cloud reports.
pub(super) const STATUS_SOURCE: &str = "whatsapp_statuses";

/// The report of one status, or `None` for one the status machine has no state for (a voice
/// message `played`, `deleted`, a `warning`). The message was sent from `endpoint`, so the
/// report names the interaction id the sender made an alias of the reply. A `read` alone is
/// read (WhatsApp sends no `delivered` when both happen at once); the status machine takes it
/// as delivered too.
fn whatsapp_status(status: &WhatsAppStatus, endpoint: &Handle) -> Result<Option<StatusReport>, String> {
    let kind = match status.status.as_deref().map(str::trim) {
        Some("sent") => DeliveryStatus::Sent,
        Some("delivered") => DeliveryStatus::Delivered,
        Some("read") => DeliveryStatus::Read,
        Some("failed") => DeliveryStatus::Failed,
        Some(_) => return Ok(None),
        None => return Err("status is missing".into()),
    };
    let id = message_id(status.id.as_deref(), "id")?;
    let at = unix_seconds(status.timestamp.as_deref()).ok_or("timestamp is missing or not Unix seconds")?;
    let error = (kind == DeliveryStatus::Failed).then(|| {
        let code = status.errors.iter().find_map(|e| e.code);
        DeliveryError {
            code: code.map_or_else(|| "unknown".into(), |c| c.to_string()),
            reason: code.map_or_else(
                || "WhatsApp could not deliver it and gave no reason".into(),
                |c| throughline_model::provider_errors::meta(c, None).1,
            ),
        }
    });
    Ok(Some(StatusReport {
        interaction_id: InteractionId::derive(Provider::Meta, endpoint, &id),
        event: StatusEvent {
            status: kind,
            at,
            source: STATUS_SOURCE.into(),
            error,
        },
        recipient: None,
    }))
}

fn whatsapp_message(
    message: &WhatsAppMessage,
    endpoint: &Handle,
    received_at: DateTime<Utc>,
) -> Result<Option<Interaction>, String> {
    let customer = whatsapp_number(&message.from, "from")?;
    let id = message_id(Some(&message.id), "id")?;
    let occurred_at = unix_seconds(message.timestamp.as_deref()).unwrap_or(received_at);
    let mut interaction = Interaction::new(NewInteraction {
        channel: Channel::Whatsapp,
        provider: Provider::Meta,
        direction: Direction::Inbound,
        customer: Handle::Phone { number: customer },
        business_endpoint: endpoint.clone(),
        provider_message_id: id,
        occurred_at,
        received_at,
    });
    interaction.thread.in_reply_to = message.context.as_ref().and_then(|c| c.id.clone());
    let attributes = &mut interaction.attributes;
    attributes.insert("message_type".into(), message.kind.clone());
    let media = match message.kind.as_str() {
        "image" => message.image.as_ref(),
        "video" => message.video.as_ref(),
        "audio" => message.audio.as_ref(),
        "document" => message.document.as_ref(),
        "sticker" => message.sticker.as_ref(),
        _ => None,
    };
    let text = match message.kind.as_str() {
        "text" => message.text.as_ref().and_then(|t| t.body.clone()),
        "image" | "video" | "audio" | "document" | "sticker" => {
            let media = media.ok_or_else(|| format!("{} is missing", message.kind))?;
            let file_id = media
                .id
                .clone()
                .ok_or_else(|| format!("{}.id is missing", message.kind))?;
            if let Some(sha256) = &media.sha256 {
                attributes.insert("media_sha256".into(), sha256.clone());
            }
            if let Some(url) = &media.url {
                attributes.insert("media_url".into(), url.clone());
            }
            interaction.attachments.push(Attachment {
                source: AttachmentSource::ProviderFile { file_id },
                content_type: media.mime_type.clone(),
                size_bytes: None,
                file_name: media.filename.clone(),
                content_id: None,
                inline: false,
            });
            media.caption.clone()
        }
        "location" => message.location.as_ref().map(|l| {
            if let (Some(lat), Some(lon)) = (l.latitude, l.longitude) {
                attributes.insert("latitude".into(), lat.to_string());
                attributes.insert("longitude".into(), lon.to_string());
            }
            let place = [l.name.as_deref(), l.address.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "Location: {}{}",
                place,
                match (l.latitude, l.longitude) {
                    (Some(lat), Some(lon)) if place.is_empty() => format!("{lat}, {lon}"),
                    (Some(lat), Some(lon)) => format!(" ({lat}, {lon})"),
                    _ => String::new(),
                }
            )
        }),
        "contacts" => {
            let shared: Vec<String> = message
                .contacts
                .iter()
                .flatten()
                .filter_map(|c| {
                    c.pointer("/name/formatted_name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect();
            Some(format!("Shared contact: {}", shared.join(", ")))
        }
        "button" => {
            let button = message.button.as_ref();
            if let Some(payload) = button.and_then(|b| b.payload.clone()) {
                attributes.insert("button_payload".into(), payload);
            }
            button.and_then(|b| b.text.clone())
        }
        "interactive" => {
            let reply = message
                .interactive
                .as_ref()
                .and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref()));
            if let Some(id) = reply.and_then(|r| r.id.clone()) {
                attributes.insert("interactive_reply_id".into(), id);
            }
            reply.and_then(|r| r.title.clone())
        }
        "reaction" => {
            let reaction = message.reaction.as_ref();
            interaction.thread.in_reply_to = reaction.and_then(|r| r.message_id.clone());
            reaction.and_then(|r| r.emoji.clone())
        }
        // order, system, unknown, unsupported, ...
        _ => return Ok(None),
    };
    interaction.text = text.filter(|t| !t.is_empty());
    referral_attributes(message.referral.as_ref(), &mut interaction);
    Ok(Some(interaction))
}
