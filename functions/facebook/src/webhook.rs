//! Meta's webhook as pure functions: the subscription handshake, `X-Hub-Signature-256`, and the
//! normalization of Messenger, Instagram and WhatsApp Cloud API updates. No network, no clock.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use lambda_http::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use throughline_edge::signature::{self, Algorithm, Encoding};
use throughline_edge::{Accepted, Rejection, Secret, WebhookRequest, json};
use throughline_model::{
    Attachment, AttachmentSource, Channel, Direction, E164, Handle, Interaction, InteractionId, InteractionUpdate,
    NewInteraction, Platform, PlatformUserId, Provider, ProviderMessageId,
};

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// Every app whose webhooks this deployment receives (or one app's old and new secret).
    pub app_secrets: Vec<Secret>,
    /// The token typed into the app dashboard when subscribing the webhook.
    pub verify_token: Secret,
}

/// `sha256=` + hex HMAC-SHA256(app secret, body): what Meta sends in `X-Hub-Signature-256`.
pub fn sign(app_secret: &str, body: &[u8]) -> String {
    let mac = signature::hmac(Algorithm::HmacSha256, app_secret.as_bytes(), &[body]);
    format!("sha256={}", signature::encode(Encoding::Hex, &mac))
}

fn forbidden(reason: &'static str) -> Rejection {
    Rejection::BadSignature {
        status: StatusCode::FORBIDDEN,
        reason,
    }
}

/// The answer to the subscription handshake (`GET ?hub.mode=subscribe&hub.verify_token=...&
/// hub.challenge=...`): the raw challenge when the token matches.
pub fn handshake(req: &WebhookRequest, config: &MetaConfig) -> Result<String, Rejection> {
    let mut mode = None;
    let mut token = None;
    let mut challenge = None;
    for (key, value) in form_urlencoded::parse(req.query().unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "hub.mode" => mode = Some(value.into_owned()),
            "hub.verify_token" => token = Some(value.into_owned()),
            "hub.challenge" => challenge = Some(value.into_owned()),
            _ => {}
        }
    }
    if mode.as_deref() != Some("subscribe") {
        return Err(forbidden("hub.mode must be subscribe"));
    }
    let token = token.ok_or(forbidden("hub.verify_token is missing"))?;
    if !signature::secrets_equal(&token, config.verify_token.expose()) {
        return Err(forbidden("hub.verify_token does not match"));
    }
    challenge
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Rejection::malformed("hub.challenge is missing"))
}

fn verify(req: &WebhookRequest, config: &MetaConfig) -> Result<(), Rejection> {
    let provided = req
        .header(SIGNATURE_HEADER)
        .ok_or(forbidden("missing x-hub-signature-256 header"))?;
    let provided = provided
        .trim()
        .strip_prefix("sha256=")
        .ok_or(forbidden("signature must start with sha256="))?;
    // Over the raw bytes: Meta signs the escaped-unicode JSON it sent, not a re-serialization.
    let signed = signature::matches_any(
        Algorithm::HmacSha256,
        Encoding::Hex,
        &config.app_secrets,
        &[&req.body],
        provided,
    );
    if signed {
        Ok(())
    } else {
        Err(forbidden("x-hub-signature-256 does not match this request"))
    }
}

/// The envelope. Entries, and the events in them, are kept as JSON values and typed one by one,
/// so that a malformed one is that event's problem and not the whole delivery's.
#[derive(Debug, Deserialize)]
struct Notification {
    object: String,
    entry: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct PageEntry {
    id: String,
    #[serde(default)]
    messaging: Vec<Value>,
    #[serde(default)]
    standby: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct MessagingEvent {
    sender: Option<Party>,
    recipient: Option<Party>,
    timestamp: Option<i64>,
    message: Option<PageMessage>,
    postback: Option<Postback>,
    referral: Option<Value>,
    delivery: Option<Value>,
    read: Option<Value>,
    reaction: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Party {
    id: String,
}

#[derive(Debug, Deserialize)]
struct PageMessage {
    mid: Option<String>,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    is_deleted: bool,
    #[serde(default)]
    is_unsupported: bool,
    quick_reply: Option<QuickReply>,
    reply_to: Option<ReplyTo>,
    #[serde(default)]
    attachments: Vec<PageAttachment>,
    referral: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct QuickReply {
    payload: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReplyTo {
    mid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PageAttachment {
    #[serde(rename = "type")]
    kind: Option<String>,
    payload: Option<AttachmentPayload>,
}

#[derive(Debug, Deserialize)]
struct AttachmentPayload {
    url: Option<String>,
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Postback {
    mid: Option<String>,
    title: Option<String>,
    payload: Option<String>,
    referral: Option<Value>,
}

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

fn millis(ms: Option<i64>) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms?).single()
}

/// Problems below are relative to the event they are found in (`sender.id: ...`) and, like
/// `InvalidValue`'s, name the rule broken, never the value.
fn platform_id(value: &str, field: &str) -> Result<PlatformUserId, String> {
    PlatformUserId::parse(value).map_err(|e| format!("{field}: {e}"))
}

fn message_id(value: Option<&str>, field: &str) -> Result<ProviderMessageId, String> {
    ProviderMessageId::parse(value.unwrap_or_default()).map_err(|_| format!("{field} is missing"))
}

/// Verifies and normalizes one POST: every message of every entry. Only a body that is not a
/// notification at all is refused; an entry or event that does not parse is acknowledged with
/// the rest and counted (`Accepted::malformed_event`).
pub fn accept(req: &WebhookRequest, config: &MetaConfig, received_at: DateTime<Utc>) -> Result<Accepted, Rejection> {
    if req.method != Method::POST {
        return Err(Rejection::MethodNotAllowed { allowed: "POST, GET" });
    }
    verify(req, config)?;
    // Only now: the signature is over the bytes as Meta sent them.
    let body = json::replace_lone_surrogates(&req.body);
    let notification: Notification = serde_json::from_slice(&body).map_err(|e| {
        Rejection::malformed(format!(
            "body is not a Meta webhook notification: {}",
            json::problem(&e)
        ))
    })?;
    let mut accepted = Accepted::default();
    let channel = match notification.object.as_str() {
        "page" => Channel::Messenger,
        "instagram" => Channel::Instagram,
        "whatsapp_business_account" => {
            for (index, entry) in notification.entry.iter().enumerate() {
                whatsapp_entry(entry, index, received_at, &mut accepted);
            }
            return Ok(accepted);
        }
        _ => return Ok(Accepted::ignored("unknown_object")),
    };
    for (index, entry) in notification.entry.iter().enumerate() {
        page_entry(entry, index, channel, received_at, &mut accepted);
    }
    Ok(accepted)
}

/// One Messenger or Instagram entry: a page and its events. Without a valid page id none of its
/// events can be attributed, so the entry is one malformed event.
fn page_entry(entry: &Value, index: usize, channel: Channel, received_at: DateTime<Utc>, accepted: &mut Accepted) {
    let path = format!("entry[{index}]");
    let parsed = json::parse_event::<PageEntry>(entry).and_then(|e| Ok((platform_id(&e.id, "id")?, e)));
    let (page, entry) = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => return accepted.malformed_event(crate::CONNECTOR, &path, &problem),
    };
    for (list, events) in [("messaging", &entry.messaging), ("standby", &entry.standby)] {
        for (i, event) in events.iter().enumerate() {
            if let Err(problem) = page_event(event, channel, &page, list == "standby", received_at, accepted) {
                accepted.malformed_event(crate::CONNECTOR, &format!("{path}.{list}[{i}]"), &problem);
            }
        }
    }
}

/// One Messenger or Instagram event: a message (the customer's, or an echo of the page's own),
/// a postback, a deletion; delivery and read watermarks, reactions and bare referrals are
/// acknowledged and counted. It adds to `accepted` only once the event is known to be good, so
/// that an `Err` (the event is malformed) leaves nothing of it behind.
fn page_event(
    event: &Value,
    channel: Channel,
    page: &PlatformUserId,
    standby: bool,
    received_at: DateTime<Utc>,
    accepted: &mut Accepted,
) -> Result<(), String> {
    let event: MessagingEvent = json::parse_event(event)?;
    let ignored = if event.delivery.is_some() {
        Some("delivery")
    } else if event.read.is_some() {
        Some("read")
    } else if event.reaction.is_some() {
        Some("reaction")
    } else if event.message.is_none() && event.postback.is_none() {
        Some(if event.referral.is_some() {
            "referral"
        } else {
            "other_event"
        })
    } else {
        None
    };
    if let Some(reason) = ignored {
        accepted.ignored.push(reason);
        return Ok(());
    }
    let sender = platform_id(
        event.sender.as_ref().map(|p| p.id.as_str()).unwrap_or_default(),
        "sender.id",
    )?;
    let recipient = platform_id(
        event.recipient.as_ref().map(|p| p.id.as_str()).unwrap_or_default(),
        "recipient.id",
    )?;
    let platform = if channel == Channel::Instagram {
        Platform::Instagram
    } else {
        Platform::Messenger
    };
    let endpoint = Handle::Platform {
        platform,
        scope: None,
        id: page.clone(),
    };
    let is_echo = event.message.as_ref().is_some_and(|m| m.is_echo);
    // A page-scoped id means nothing without its page: the handle carries both.
    let customer = Handle::Platform {
        platform,
        scope: Some(page.clone()),
        id: if is_echo { recipient } else { sender },
    };
    let occurred_at = millis(event.timestamp).unwrap_or(received_at);

    let (mid, text) = match (&event.message, &event.postback) {
        (Some(message), _) => {
            let mid = message_id(message.mid.as_deref(), "message.mid")?;
            if message.is_deleted {
                accepted.updates.push(InteractionUpdate::deleted(
                    InteractionId::derive(Provider::Meta, &endpoint, &mid),
                    occurred_at,
                ));
                return Ok(());
            }
            if message.is_unsupported {
                accepted.ignored.push("unsupported_message");
                return Ok(());
            }
            (mid, message.text.clone())
        }
        (None, Some(postback)) => {
            // Older postbacks have no mid: the sender and the time identify the tap.
            let mid = match postback.mid.as_deref() {
                Some(mid) => message_id(Some(mid), "postback.mid")?,
                None => message_id(
                    Some(&format!(
                        "postback:{}:{}",
                        customer.key(),
                        event.timestamp.unwrap_or_default()
                    )),
                    "postback",
                )?,
            };
            (mid, postback.title.clone())
        }
        (None, None) => {
            accepted.ignored.push("other_event");
            return Ok(());
        }
    };

    let mut interaction = Interaction::new(NewInteraction {
        channel,
        provider: Provider::Meta,
        direction: if is_echo {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        customer,
        business_endpoint: endpoint,
        provider_message_id: mid,
        occurred_at,
        received_at,
    });
    interaction.text = text.filter(|t| !t.is_empty());
    let attributes = &mut interaction.attributes;
    if standby {
        attributes.insert("standby".into(), "true".into());
    }
    if let Some(message) = &event.message {
        if let Some(payload) = message.quick_reply.as_ref().and_then(|q| q.payload.clone()) {
            attributes.insert("quick_reply_payload".into(), payload);
        }
        interaction.thread.in_reply_to = message.reply_to.as_ref().and_then(|r| r.mid.clone());
        for attachment in &message.attachments {
            if let Some(a) = page_attachment(attachment) {
                interaction.attachments.push(a);
            }
        }
        referral_attributes(message.referral.as_ref().or(event.referral.as_ref()), &mut interaction);
    }
    if let Some(postback) = &event.postback {
        interaction.attributes.insert("postback".into(), "true".into());
        if let Some(payload) = &postback.payload {
            interaction
                .attributes
                .insert("postback_payload".into(), payload.clone());
        }
        referral_attributes(postback.referral.as_ref().or(event.referral.as_ref()), &mut interaction);
    }
    accepted.interactions.push(interaction);
    Ok(())
}

fn page_attachment(attachment: &PageAttachment) -> Option<Attachment> {
    let kind = attachment.kind.as_deref().unwrap_or("unknown");
    let payload = attachment.payload.as_ref()?;
    let url = payload.url.clone()?;
    // Meta gives a kind, not a MIME type; shares, reels and posts are links.
    let content_type = match kind {
        "image" | "sticker" => Some("image/*"),
        "video" => Some("video/*"),
        "audio" => Some("audio/*"),
        "file" => None,
        _ => Some("text/uri-list"),
    };
    Some(Attachment {
        source: AttachmentSource::Url { url },
        content_type: content_type.map(str::to_owned),
        size_bytes: None,
        file_name: payload.title.clone(),
        content_id: None,
        inline: false,
    })
}

/// Ads, m.me links and the like: kept as metadata.
fn referral_attributes(referral: Option<&Value>, interaction: &mut Interaction) {
    let Some(Value::Object(referral)) = referral else {
        return;
    };
    for key in ["source", "type", "ref", "ad_id", "referer_uri"] {
        if let Some(value) = referral.get(key).and_then(Value::as_str) {
            interaction
                .attributes
                .insert(format!("referral.{key}"), value.to_owned());
        }
    }
}

/// `+` and the digits of a WhatsApp number (`wa_id`, `from`, `display_phone_number`).
fn whatsapp_number(value: &str, field: &str) -> Result<E164, String> {
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    E164::parse(&format!("+{digits}")).map_err(|e| format!("{field}: {e}"))
}

/// One WhatsApp entry: each change, and each message in a change, on its own.
fn whatsapp_entry(entry: &Value, index: usize, received_at: DateTime<Utc>, accepted: &mut Accepted) {
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
    // Delivery statuses of the business's own sends: Throughline does not send yet.
    accepted.ignored.extend(value.statuses.iter().map(|_| "status"));
    Ok(())
}

fn whatsapp_message(
    message: &WhatsAppMessage,
    endpoint: &Handle,
    received_at: DateTime<Utc>,
) -> Result<Option<Interaction>, String> {
    let customer = whatsapp_number(&message.from, "from")?;
    let id = message_id(Some(&message.id), "id")?;
    let occurred_at = message
        .timestamp
        .as_deref()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .and_then(|t| Utc.timestamp_opt(t, 0).single())
        .unwrap_or(received_at);
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
