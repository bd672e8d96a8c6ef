//! The X Account Activity webhook as pure functions: the CRC challenge, signature verification,
//! and normalization of direct messages and tweets into interactions. No network, no clock.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use lambda_http::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use throughline_edge::signature::{self, Algorithm, Encoding};
use throughline_edge::{Accepted, Rejection, Secret, WebhookRequest};
use throughline_model::{
    Attachment, AttachmentSource, Channel, Direction, Handle, Interaction, InteractionId, InteractionKind,
    InteractionUpdate, NewInteraction, Platform, PlatformUserId, Provider, ProviderMessageId,
};

pub const SIGNATURE_HEADER: &str = "x-twitter-webhooks-signature";

#[derive(Debug, Clone)]
pub struct XConfig {
    pub consumer_secret: Secret,
}

/// `sha256=` + base64 HMAC-SHA256(consumer secret, message): the CRC answer and the POST signature.
pub fn sign(secret: &str, message: &[u8]) -> String {
    let mac = signature::hmac(Algorithm::HmacSha256, secret.as_bytes(), &[message]);
    format!("sha256={}", signature::encode(Encoding::Base64, &mac))
}

/// The answer to X's challenge-response check (`GET ?crc_token=...`): the JSON body.
pub fn crc_response(req: &WebhookRequest, config: &XConfig) -> Result<String, Rejection> {
    let token = form_urlencoded::parse(req.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "crc_token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Rejection::malformed("query parameter crc_token is missing"))?;
    let response_token = sign(config.consumer_secret.expose(), token.as_bytes());
    Ok(serde_json::json!({ "response_token": response_token }).to_string())
}

fn verify(req: &WebhookRequest, config: &XConfig) -> Result<(), Rejection> {
    let bad = |reason| Rejection::BadSignature {
        status: StatusCode::FORBIDDEN,
        reason,
    };
    let provided = req
        .header(SIGNATURE_HEADER)
        .ok_or(bad("missing x-twitter-webhooks-signature header"))?;
    let provided = provided
        .trim()
        .strip_prefix("sha256=")
        .ok_or(bad("signature must start with sha256="))?;
    let mac = signature::hmac(
        Algorithm::HmacSha256,
        config.consumer_secret.expose().as_bytes(),
        &[&req.body],
    );
    if signature::matches(Encoding::Base64, provided, &mac) {
        Ok(())
    } else {
        Err(bad("x-twitter-webhooks-signature does not match this request"))
    }
}

/// One Account Activity delivery. Only what Throughline uses is typed; the rest is ignored.
#[derive(Debug, Deserialize)]
struct ActivityPayload {
    for_user_id: Option<String>,
    #[serde(default)]
    direct_message_events: Vec<DirectMessageEvent>,
    #[serde(default)]
    tweet_create_events: Vec<Value>,
    #[serde(default)]
    tweet_delete_events: Vec<TweetDeleteEvent>,
    #[serde(default)]
    users: HashMap<String, XUser>,
    #[serde(flatten)]
    other: HashMap<String, Value>,
}

#[derive(Debug, Deserialize)]
struct DirectMessageEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    created_timestamp: Option<String>,
    message_create: Option<MessageCreate>,
    /// Some published examples nest the users map inside the event: read it there too.
    #[serde(default)]
    users: HashMap<String, XUser>,
}

#[derive(Debug, Deserialize)]
struct MessageCreate {
    target: Option<Target>,
    sender_id: Option<String>,
    message_data: Option<MessageData>,
}

#[derive(Debug, Deserialize)]
struct Target {
    recipient_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct MessageData {
    text: Option<String>,
    entities: Option<Entities>,
    attachment: Option<DmAttachment>,
    quick_reply_response: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Entities {
    #[serde(default)]
    urls: Vec<UrlEntity>,
}

#[derive(Debug, Deserialize)]
struct UrlEntity {
    url: Option<String>,
    expanded_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DmAttachment {
    media: Option<Media>,
}

#[derive(Debug, Deserialize)]
struct Media {
    id_str: Option<String>,
    media_url_https: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct XUser {
    name: Option<String>,
    screen_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TweetDeleteEvent {
    status: Option<DeletedStatus>,
    timestamp_ms: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DeletedStatus {
    id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Tweet {
    id_str: Option<String>,
    created_at: Option<String>,
    timestamp_ms: Option<String>,
    text: Option<String>,
    extended_tweet: Option<ExtendedTweet>,
    user: Option<TweetUser>,
    in_reply_to_status_id_str: Option<String>,
    in_reply_to_user_id_str: Option<String>,
    retweeted_status: Option<Value>,
    entities: Option<TweetEntities>,
}

#[derive(Debug, Deserialize)]
struct ExtendedTweet {
    full_text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TweetUser {
    id_str: Option<String>,
    name: Option<String>,
    screen_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct TweetEntities {
    #[serde(default)]
    user_mentions: Vec<Mention>,
}

#[derive(Debug, Deserialize)]
struct Mention {
    id_str: Option<String>,
}

fn user_id(value: Option<&str>, field: &str) -> Result<PlatformUserId, Rejection> {
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Rejection::malformed(format!("{field} is missing")))?;
    PlatformUserId::parse(value).map_err(|e| Rejection::malformed(format!("{field}: {e}")))
}

fn x_handle(id: PlatformUserId) -> Handle {
    Handle::Platform {
        platform: Platform::X,
        scope: None,
        id,
    }
}

fn millis(value: Option<&str>) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(value?.trim().parse().ok()?).single()
}

/// Verifies and normalizes one POST.
pub fn accept(req: &WebhookRequest, config: &XConfig, received_at: DateTime<Utc>) -> Result<Accepted, Rejection> {
    if req.method != Method::POST {
        return Err(Rejection::MethodNotAllowed { allowed: "POST, GET" });
    }
    verify(req, config)?;
    let payload: ActivityPayload = serde_json::from_slice(&req.body)
        .map_err(|e| Rejection::malformed(format!("body is not an Account Activity event: {e}")))?;
    let account = user_id(payload.for_user_id.as_deref(), "for_user_id")?;
    let mut accepted = Accepted::default();

    for (index, event) in payload.direct_message_events.iter().enumerate() {
        if event.kind.as_deref() != Some("message_create") {
            accepted.ignored.push("dm_event_type");
            continue;
        }
        let users = if payload.users.is_empty() {
            &event.users
        } else {
            &payload.users
        };
        accepted
            .interactions
            .push(direct_message(event, index, &account, users, received_at)?);
    }
    for (index, raw) in payload.tweet_create_events.iter().enumerate() {
        let tweet: Tweet = serde_json::from_value(raw.clone())
            .map_err(|e| Rejection::malformed(format!("tweet_create_events[{index}]: {e}")))?;
        match tweet_interaction(&tweet, index, &account, received_at)? {
            Some(interaction) => accepted.interactions.push(interaction),
            None => accepted.ignored.push(if tweet.retweeted_status.is_some() {
                "retweet"
            } else {
                "own_tweet"
            }),
        }
    }
    for (index, delete) in payload.tweet_delete_events.iter().enumerate() {
        let id = delete.status.as_ref().and_then(|s| s.id.as_deref());
        let tweet_id = ProviderMessageId::parse(id.unwrap_or_default())
            .map_err(|_| Rejection::malformed(format!("tweet_delete_events[{index}].status.id is missing")))?;
        accepted.updates.push(InteractionUpdate::deleted(
            InteractionId::derive(Provider::X, &x_handle(account.clone()), &tweet_id),
            millis(delete.timestamp_ms.as_deref()).unwrap_or(received_at),
        ));
    }
    // Favorites, follows, blocks, mutes, typing and read indicators, ...: acknowledged, counted.
    for (key, value) in &payload.other {
        if key.ends_with("_events") && value.as_array().is_some_and(|a| !a.is_empty()) {
            accepted.ignored.push(ignored_reason(key));
        }
    }
    Ok(accepted)
}

fn ignored_reason(key: &str) -> &'static str {
    match key {
        "favorite_events" => "favorite",
        "follow_events" => "follow",
        "block_events" => "block",
        "mute_events" => "mute",
        "direct_message_indicate_typing_events" => "typing",
        "direct_message_mark_read_events" => "read",
        "user_event" => "user_event",
        _ => "other_activity",
    }
}

fn direct_message(
    event: &DirectMessageEvent,
    index: usize,
    account: &PlatformUserId,
    users: &HashMap<String, XUser>,
    received_at: DateTime<Utc>,
) -> Result<Interaction, Rejection> {
    let field = |name: &str| format!("direct_message_events[{index}].{name}");
    let message_id = ProviderMessageId::parse(event.id.as_deref().unwrap_or_default())
        .map_err(|_| Rejection::malformed(format!("{} is missing", field("id"))))?;
    let create = event
        .message_create
        .as_ref()
        .ok_or_else(|| Rejection::malformed(format!("{} is missing", field("message_create"))))?;
    let sender = user_id(create.sender_id.as_deref(), &field("message_create.sender_id"))?;
    let recipient = user_id(
        create.target.as_ref().and_then(|t| t.recipient_id.as_deref()),
        &field("message_create.target.recipient_id"),
    )?;
    // The subscribed account's own DMs come back too: they are the company's answers.
    let (direction, customer) = if &sender == account {
        (Direction::Outbound, recipient.clone())
    } else {
        (Direction::Inbound, sender.clone())
    };
    let (low, high) = if sender.as_str() <= recipient.as_str() {
        (&sender, &recipient)
    } else {
        (&recipient, &sender)
    };

    let occurred_at = millis(event.created_timestamp.as_deref()).unwrap_or(received_at);
    let mut interaction = Interaction::new(NewInteraction {
        channel: Channel::X,
        provider: Provider::X,
        direction,
        customer: x_handle(customer.clone()),
        business_endpoint: x_handle(account.clone()),
        provider_message_id: message_id,
        occurred_at,
        received_at,
    });
    let data = create.message_data.as_ref();
    interaction.text = data
        .and_then(|d| d.text.as_ref())
        .map(|text| expand_urls(text, data.and_then(|d| d.entities.as_ref())));
    interaction.thread.provider_thread_id = Some(format!("dm:{low}-{high}"));
    if let Some(media) = data.and_then(|d| d.attachment.as_ref()).and_then(|a| a.media.as_ref())
        && let Some(url) = &media.media_url_https
    {
        interaction.attachments.push(Attachment {
            source: AttachmentSource::Url { url: url.clone() },
            content_type: media.kind.as_deref().map(media_content_type).map(str::to_owned),
            size_bytes: None,
            file_name: media.id_str.clone(),
            content_id: None,
            inline: false,
        });
    }
    if let Some(reply) = data.and_then(|d| d.quick_reply_response.as_ref())
        && let Some(metadata) = reply.get("metadata").and_then(Value::as_str)
    {
        interaction
            .attributes
            .insert("quick_reply_metadata".into(), metadata.to_owned());
    }
    if let Some(user) = users.get(customer.as_str()) {
        interaction.customer_display_name = user.name.clone();
        if let Some(screen_name) = &user.screen_name {
            interaction.attributes.insert("screen_name".into(), screen_name.clone());
        }
    }
    Ok(interaction)
}

/// `t.co` links replaced by what they point to, so the agent sees the real URL.
fn expand_urls(text: &str, entities: Option<&Entities>) -> String {
    let mut text = text.to_owned();
    for entity in entities.map(|e| e.urls.as_slice()).unwrap_or_default() {
        if let (Some(short), Some(expanded)) = (&entity.url, &entity.expanded_url) {
            text = text.replace(short.as_str(), expanded);
        }
    }
    text
}

fn media_content_type(kind: &str) -> &'static str {
    match kind {
        "photo" => "image/jpeg",
        "animated_gif" => "image/gif",
        "video" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// A mention of, or reply to, the company is a public post on the customer's timeline; the
/// company's own replies are outbound; plain retweets and unrelated own tweets are ignored.
fn tweet_interaction(
    tweet: &Tweet,
    index: usize,
    account: &PlatformUserId,
    received_at: DateTime<Utc>,
) -> Result<Option<Interaction>, Rejection> {
    if tweet.retweeted_status.is_some() {
        return Ok(None);
    }
    let field = |name: &str| format!("tweet_create_events[{index}].{name}");
    let author = user_id(
        tweet.user.as_ref().and_then(|u| u.id_str.as_deref()),
        &field("user.id_str"),
    )?;
    let (direction, customer) = if &author == account {
        match tweet
            .in_reply_to_user_id_str
            .as_deref()
            .filter(|id| *id != account.as_str())
        {
            Some(customer) => (
                Direction::Outbound,
                user_id(Some(customer), &field("in_reply_to_user_id_str"))?,
            ),
            None => return Ok(None),
        }
    } else {
        (Direction::Inbound, author.clone())
    };
    let tweet_id = ProviderMessageId::parse(tweet.id_str.as_deref().unwrap_or_default())
        .map_err(|_| Rejection::malformed(format!("{} is missing", field("id_str"))))?;
    let occurred_at = millis(tweet.timestamp_ms.as_deref())
        .or_else(|| {
            tweet
                .created_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_str(t, "%a %b %d %H:%M:%S %z %Y").ok())
                .map(|t| t.to_utc())
        })
        .unwrap_or(received_at);
    let mut interaction = Interaction::new(NewInteraction {
        channel: Channel::X,
        provider: Provider::X,
        direction,
        customer: x_handle(customer),
        business_endpoint: x_handle(account.clone()),
        provider_message_id: tweet_id,
        occurred_at,
        received_at,
    });
    interaction.kind = InteractionKind::PublicPost;
    interaction.text = tweet
        .extended_tweet
        .as_ref()
        .and_then(|e| e.full_text.clone())
        .or_else(|| tweet.text.clone());
    interaction.thread.in_reply_to = tweet.in_reply_to_status_id_str.clone();
    if direction == Direction::Inbound
        && let Some(user) = &tweet.user
    {
        interaction.customer_display_name = user.name.clone();
        if let Some(screen_name) = &user.screen_name {
            interaction.attributes.insert("screen_name".into(), screen_name.clone());
        }
    }
    let mentions_account = tweet.entities.as_ref().is_some_and(|e| {
        e.user_mentions
            .iter()
            .any(|m| m.id_str.as_deref() == Some(account.as_str()))
    });
    interaction
        .attributes
        .insert("mentions_account".into(), mentions_account.to_string());
    Ok(Some(interaction))
}
