//! Messenger and Instagram: a page's (or account's) `messaging` and `standby` events.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use throughline_edge::{Accepted, json};
use throughline_model::{
    Attachment, AttachmentSource, Channel, DeliveryStatus, Direction, Handle, Interaction, InteractionId,
    InteractionUpdate, NewInteraction, Platform, PlatformUserId, Provider, StatusEvent, StatusReport, WatermarkReport,
};

use super::{message_id, millis, platform_id, referral_attributes};

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

/// One Messenger or Instagram entry: a page and its events. Without a valid page id none of its
/// events can be attributed, so the entry is one malformed event.
pub(super) fn page_entry(
    entry: &Value,
    index: usize,
    channel: Channel,
    received_at: DateTime<Utc>,
    accepted: &mut Accepted,
) {
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

/// The event's `sender` or `recipient` id.
fn party(party: &Option<Party>, field: &str) -> Result<PlatformUserId, String> {
    platform_id(party.as_ref().map(|p| p.id.as_str()).unwrap_or_default(), field)
}

fn platform_of(channel: Channel) -> Platform {
    if channel == Channel::Instagram {
        Platform::Instagram
    } else {
        Platform::Messenger
    }
}

/// The page (or Instagram account) as the company's endpoint.
fn page_endpoint(platform: Platform, page: &PlatformUserId) -> Handle {
    Handle::Platform {
        platform,
        scope: None,
        id: page.clone(),
    }
}

/// A customer's page-scoped id: it means nothing without its page, so the handle carries both.
fn page_scoped(platform: Platform, page: &PlatformUserId, id: PlatformUserId) -> Handle {
    Handle::Platform {
        platform,
        scope: Some(page.clone()),
        id,
    }
}

/// What a `delivery` or `read` event says.
#[derive(Debug, Deserialize)]
struct Receipt {
    /// Everything sent before it (milliseconds) was delivered, or read.
    watermark: Option<i64>,
    /// Instagram's read receipt names the message read instead.
    mid: Option<String>,
}

/// The source of Instagram's read receipts by message id.
const INSTAGRAM_READ_SOURCE: &str = "instagram_read";

/// A delivery or read receipt from the customer (`sender`): a watermark for that customer,
/// one report whatever the number of messages it covers; Instagram's `read.mid`, a status of
/// that one message.
fn receipt_event(
    event: &MessagingEvent,
    status: DeliveryStatus,
    receipt: &Value,
    channel: Channel,
    page: &PlatformUserId,
    accepted: &mut Accepted,
) -> Result<(), String> {
    let receipt: Receipt = json::parse_event(receipt)?;
    let platform = platform_of(channel);
    let customer = page_scoped(platform, page, party(&event.sender, "sender.id")?);
    if let Some(up_to) = receipt.watermark {
        let up_to = millis(Some(up_to)).ok_or("watermark is not a time in milliseconds")?;
        accepted.watermarks.push(WatermarkReport {
            customer,
            status,
            up_to,
        });
        return Ok(());
    }
    let mid = message_id(receipt.mid.as_deref(), "watermark or mid")?;
    let at = millis(event.timestamp).ok_or("timestamp is missing")?;
    accepted.statuses.push(StatusReport {
        interaction_id: InteractionId::derive(Provider::Meta, &page_endpoint(platform, page), &mid),
        event: StatusEvent {
            status,
            at,
            source: INSTAGRAM_READ_SOURCE.into(),
            error: None,
        },
        recipient: None,
    });
    Ok(())
}

/// One Messenger or Instagram event: a message (the customer's, or an echo of the page's own),
/// a postback, a deletion, a delivery or read receipt; reactions and bare referrals are
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
    if let Some((status, receipt)) = (event.delivery.as_ref().map(|d| (DeliveryStatus::Delivered, d)))
        .or_else(|| event.read.as_ref().map(|r| (DeliveryStatus::Read, r)))
    {
        return receipt_event(&event, status, receipt, channel, page, accepted);
    }
    let ignored = if event.reaction.is_some() {
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
    let sender = party(&event.sender, "sender.id")?;
    let recipient = party(&event.recipient, "recipient.id")?;
    let platform = platform_of(channel);
    let endpoint = page_endpoint(platform, page);
    let is_echo = event.message.as_ref().is_some_and(|m| m.is_echo);
    let customer = page_scoped(platform, page, if is_echo { recipient } else { sender });
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
