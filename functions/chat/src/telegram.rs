//! Telegram Bot API webhook updates as pure functions: the secret-token check and the
//! normalization of `message` / `edited_message`. No network, no clock. An update that is not
//! JSON or has no `update_id` is refused; a verified update whose message cannot be read is
//! acknowledged as `malformed_event` (Telegram would only retry the same bytes).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use lambda_http::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use throughline_edge::signature;
use throughline_edge::{Accepted, Rejection, Secret, WebhookRequest};
use throughline_model::{
    Attachment, AttachmentSource, Channel, Direction, Handle, Interaction, InteractionId, InteractionUpdate,
    NewInteraction, Platform, PlatformUserId, Provider, ProviderMessageId,
};

use crate::text;

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// Longest `secret_token` `setWebhook` takes.
const SECRET_TOKEN_MAX_CHARS: usize = 256;

/// One bot: its username (the business endpoint) and the `secret_token` given to `setWebhook`.
#[derive(Debug, Clone)]
pub struct TelegramBot {
    pub username: PlatformUserId,
    pub secret_token: Secret,
}

impl TelegramBot {
    /// A bot from its configuration. The token must be one `setWebhook` accepts (1 to 256 of
    /// `A-Z a-z 0-9 _ -`): Telegram would refuse any other, so the webhook would never be called
    /// with it, and an empty one would match a request sending an empty header. Errors name the
    /// bot, never the token.
    pub fn new(username: &str, secret_token: Secret) -> Result<Self, String> {
        let username = PlatformUserId::parse(username).map_err(|e| format!("bot username: {e}"))?;
        let token = secret_token.expose();
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if token.is_empty() || token.len() > SECRET_TOKEN_MAX_CHARS || !token.bytes().all(allowed) {
            return Err(format!(
                "telegram bot {username}: the secret token must be 1 to {SECRET_TOKEN_MAX_CHARS} characters of A-Z, a-z, 0-9, _ and -"
            ));
        }
        Ok(Self { username, secret_token })
    }
}

#[derive(Debug, Deserialize)]
struct Message {
    message_id: i64,
    from: Option<User>,
    chat: Chat,
    date: i64,
    edit_date: Option<i64>,
    text: Option<String>,
    caption: Option<String>,
    reply_to_message: Option<MessageRef>,
    media_group_id: Option<String>,
    #[serde(default)]
    photo: Vec<TelegramFile>,
    document: Option<TelegramFile>,
    voice: Option<TelegramFile>,
    audio: Option<TelegramFile>,
    video: Option<TelegramFile>,
    video_note: Option<TelegramFile>,
    animation: Option<TelegramFile>,
    sticker: Option<TelegramFile>,
}

#[derive(Debug, Deserialize)]
struct User {
    id: i64,
    #[serde(default)]
    is_bot: bool,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
    language_code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Chat {
    id: i64,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MessageRef {
    message_id: i64,
}

#[derive(Debug, Deserialize)]
struct TelegramFile {
    file_id: String,
    file_name: Option<String>,
    mime_type: Option<String>,
    file_size: Option<u64>,
}

fn unauthorized(reason: &'static str) -> Rejection {
    Rejection::BadSignature {
        status: StatusCode::UNAUTHORIZED,
        reason,
    }
}

fn verify(req: &WebhookRequest, bot: &TelegramBot) -> Result<(), Rejection> {
    let provided = req
        .header(SECRET_HEADER)
        .ok_or(unauthorized("missing x-telegram-bot-api-secret-token header"))?;
    if signature::secrets_equal(provided, bot.secret_token.expose()) {
        Ok(())
    } else {
        Err(unauthorized("x-telegram-bot-api-secret-token does not match"))
    }
}

fn unix(seconds: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(seconds, 0).single()
}

/// The provider message id: Telegram message ids are only unique within their chat.
fn message_key(chat: i64, message_id: i64) -> ProviderMessageId {
    ProviderMessageId::parse(&format!("{chat}:{message_id}")).expect("two integers make a valid id")
}

fn bot_handle(bot: &TelegramBot) -> Handle {
    Handle::Platform {
        platform: Platform::Telegram,
        scope: None,
        id: bot.username.clone(),
    }
}

/// Verifies and normalizes one update for `bot` (chosen by the URL path).
pub fn accept(req: &WebhookRequest, bot: &TelegramBot, received_at: DateTime<Utc>) -> Result<Accepted, Rejection> {
    if req.method != Method::POST {
        return Err(Rejection::MethodNotAllowed { allowed: "POST" });
    }
    verify(req, bot)?;
    let mut update: BTreeMap<String, Value> = serde_json::from_slice(&req.body)
        .map_err(|e| Rejection::malformed(format!("body is not a Telegram update: {e}")))?;
    if !update.get("update_id").is_some_and(Value::is_i64) {
        return Err(Rejection::malformed("update_id is missing or not an integer"));
    }
    let parse = |value: Value| throughline_edge::json::parse_event::<Message>(&value);
    let skipped = |at: &str, problem: String| {
        let mut accepted = Accepted::default();
        accepted.malformed_event(crate::CONNECTOR, at, &problem);
        accepted
    };
    if let Some(value) = update.remove("message") {
        return Ok(
            match parse(value).and_then(|message| new_message(&message, bot, received_at)) {
                Ok(Ok(interaction)) => Accepted::interactions(vec![interaction]),
                Ok(Err(reason)) => Accepted::ignored(reason),
                Err(problem) => skipped("message", problem),
            },
        );
    }
    if let Some(value) = update.remove("edited_message") {
        return Ok(match parse(value).and_then(|message| edit(message, bot, received_at)) {
            Ok(Ok(update)) => Accepted {
                updates: vec![update],
                ..Accepted::default()
            },
            Ok(Err(reason)) => Accepted::ignored(reason),
            Err(problem) => skipped("edited_message", problem),
        });
    }
    // Callback queries, channel posts, membership changes, reactions, ...: acknowledged, counted.
    let kind = update.keys().find(|k| k.as_str() != "update_id").map(String::as_str);
    Ok(Accepted::ignored(match kind {
        Some("callback_query") => "callback_query",
        Some("channel_post" | "edited_channel_post") => "channel_post",
        Some("my_chat_member" | "chat_member" | "chat_join_request") => "chat_membership",
        Some("message_reaction" | "message_reaction_count") => "reaction",
        Some("inline_query" | "chosen_inline_result") => "inline_query",
        _ => "other_update",
    }))
}

/// The text of a message (or its caption), capped and cleaned; the problem names the field.
fn message_text(message: &Message) -> Result<Option<String>, String> {
    match (&message.text, &message.caption) {
        (Some(text), _) => text::message_text(text).map_err(|problem| format!("text {problem}")),
        (None, Some(caption)) => text::message_text(caption).map_err(|problem| format!("caption {problem}")),
        (None, None) => Ok(None),
    }
}

/// The update an edit is, or the reason it is not recorded; `Err` is what makes it malformed.
fn edit(
    message: Message,
    bot: &TelegramBot,
    received_at: DateTime<Utc>,
) -> Result<Result<InteractionUpdate, &'static str>, String> {
    if message.from.as_ref().is_none_or(|u| u.is_bot) {
        return Ok(Err("bot_message"));
    }
    let id = InteractionId::derive(
        Provider::Telegram,
        &bot_handle(bot),
        &message_key(message.chat.id, message.message_id),
    );
    let at = message
        .edit_date
        .and_then(unix)
        .or_else(|| unix(message.date))
        .unwrap_or(received_at);
    Ok(Ok(InteractionUpdate::edited(id, message_text(&message)?, at)))
}

/// The interaction for a new message, or the reason it is not one; `Err` is what makes it
/// malformed.
fn new_message(
    message: &Message,
    bot: &TelegramBot,
    received_at: DateTime<Utc>,
) -> Result<Result<Interaction, &'static str>, String> {
    let Some(from) = message.from.as_ref().filter(|u| !u.is_bot) else {
        return Ok(Err("bot_message"));
    };
    let attachments = attachments(message);
    let text = message_text(message)?;
    if text.is_none() && attachments.is_empty() {
        // Locations, contacts, polls, service messages (members joined, pinned, ...).
        return Ok(Err("unsupported_message"));
    }
    let customer = PlatformUserId::parse(&from.id.to_string()).map_err(|e| format!("from.id: {e}"))?;
    let mut interaction = Interaction::new(NewInteraction {
        channel: Channel::Telegram,
        provider: Provider::Telegram,
        // A bot receives only what others write; its own sends do not come back as updates.
        direction: Direction::Inbound,
        customer: Handle::Platform {
            platform: Platform::Telegram,
            scope: None,
            id: customer,
        },
        business_endpoint: bot_handle(bot),
        provider_message_id: message_key(message.chat.id, message.message_id),
        occurred_at: unix(message.date).unwrap_or(received_at),
        received_at,
    });
    interaction.text = text;
    interaction.attachments = attachments;
    interaction.thread.provider_thread_id = Some(format!("chat:{}", message.chat.id));
    interaction.thread.in_reply_to = message
        .reply_to_message
        .as_ref()
        .map(|r| message_key(message.chat.id, r.message_id).to_string());
    let name = [from.first_name.as_deref(), from.last_name.as_deref()]
        .into_iter()
        .flatten()
        .filter(|n| !n.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    interaction.customer_display_name = Some(name).filter(|n| !n.is_empty());
    let attributes = &mut interaction.attributes;
    for (key, value) in [
        ("username", from.username.as_ref()),
        ("locale", from.language_code.as_ref()),
        ("chat_type", message.chat.kind.as_ref()),
        ("media_group_id", message.media_group_id.as_ref()),
    ] {
        if let Some(value) = value {
            attributes.insert(key.into(), value.clone());
        }
    }
    Ok(Ok(interaction))
}

fn attachments(message: &Message) -> Vec<Attachment> {
    let attachment = |file: &TelegramFile, default_type: Option<&str>| Attachment {
        source: AttachmentSource::ProviderFile {
            file_id: file.file_id.clone(),
        },
        content_type: file.mime_type.clone().or(default_type.map(str::to_owned)),
        size_bytes: file.file_size,
        file_name: file.file_name.clone(),
        content_id: None,
        inline: false,
    };
    let mut attachments = Vec::new();
    // Telegram sends each photo in several sizes, smallest first: keep the largest.
    if let Some(photo) = message.photo.last() {
        attachments.push(attachment(photo, Some("image/jpeg")));
    }
    for (file, default_type) in [
        (&message.animation, Some("video/mp4")),
        (&message.document, None),
        (&message.voice, Some("audio/ogg")),
        (&message.audio, None),
        (&message.video, Some("video/mp4")),
        (&message.video_note, Some("video/mp4")),
        (&message.sticker, Some("image/webp")),
    ] {
        // An animation also comes as a document with the same file: keep it once.
        if let Some(file) = file
            && !attachments.iter().any(|a| {
                a.source
                    == AttachmentSource::ProviderFile {
                        file_id: file.file_id.clone(),
                    }
            })
        {
            attachments.push(attachment(file, default_type));
        }
    }
    attachments
}
