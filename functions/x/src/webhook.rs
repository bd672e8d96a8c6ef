//! The X Account Activity webhook as pure functions: the CRC challenge, signature verification,
//! and normalization of direct messages and tweets into interactions. No network, no clock.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use lambda_http::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use throughline_edge::signature::{self, Algorithm, Encoding};
use throughline_edge::{Accepted, Rejection, Secret, WebhookRequest, json};
use throughline_model::{
    Attachment, AttachmentSource, Channel, DeliveryStatus, Direction, Handle, Interaction, InteractionId,
    InteractionKind, InteractionUpdate, NewInteraction, Platform, PlatformUserId, Provider, ProviderMessageId,
    WatermarkReport,
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
///
/// The answer is the HMAC of the token under the same key and encoding as a POST's signature,
/// so signing an arbitrary token would be a signing oracle: whoever sends a whole Account
/// Activity document as `crc_token` gets the signature that makes X's webhook accept it. X's
/// tokens are short base64-like strings, so only those are answered: no JSON document (which
/// needs `{`, `"` and `:`) can ever be signed.
pub fn crc_response(req: &WebhookRequest, config: &XConfig) -> Result<String, Rejection> {
    let token = form_urlencoded::parse(req.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "crc_token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Rejection::malformed("query parameter crc_token is missing"))?;
    if !is_crc_token(&token) {
        return Err(Rejection::malformed(
            "query parameter crc_token must be 1-255 characters of A-Z a-z 0-9 _ = + / -",
        ));
    }
    let response_token = sign(config.consumer_secret.expose(), token.as_bytes());
    Ok(serde_json::json!({ "response_token": response_token }).to_string())
}

/// A token X can send: 1–255 characters of `[A-Za-z0-9_=+/-]`.
fn is_crc_token(token: &str) -> bool {
    (1..=255).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'=' | b'+' | b'/' | b'-'))
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
/// The events are kept as JSON values and typed one by one, so that a malformed one is that
/// event's problem and not the whole delivery's.
#[derive(Debug, Deserialize)]
struct ActivityPayload {
    for_user_id: Option<String>,
    #[serde(default)]
    direct_message_events: Vec<Value>,
    #[serde(default)]
    tweet_create_events: Vec<Value>,
    #[serde(default)]
    tweet_delete_events: Vec<Value>,
    /// Only a source of display names: read leniently (`display_user`).
    #[serde(default)]
    users: Value,
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
    users: Value,
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

/// Problems name the field (relative to its event) and the rule broken, never the value.
fn user_id(value: Option<&str>, field: &str) -> Result<PlatformUserId, String> {
    let value = value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{field} is missing"))?;
    PlatformUserId::parse(value).map_err(|e| format!("{field}: {e}"))
}

/// The display name and screen name of `id` in a `users` map, if it has a usable entry: a
/// missing or odd one only costs the name.
fn display_user(users: &Value, id: &str) -> Option<XUser> {
    json::parse_event(users.get(id)?).ok()
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

/// Verifies and normalizes one POST. Only a body that is not an Account Activity delivery
/// (not JSON, no `for_user_id`) is refused; an event that does not parse is acknowledged with
/// the rest and counted (`Accepted::malformed_event`).
pub fn accept(req: &WebhookRequest, config: &XConfig, received_at: DateTime<Utc>) -> Result<Accepted, Rejection> {
    if req.method != Method::POST {
        return Err(Rejection::MethodNotAllowed { allowed: "POST, GET" });
    }
    verify(req, config)?;
    // Only now: the signature is over the bytes as X sent them.
    let body = json::replace_lone_surrogates(&req.body);
    let payload: ActivityPayload = serde_json::from_slice(&body)
        .map_err(|e| Rejection::malformed(format!("body is not an Account Activity event: {}", json::problem(&e))))?;
    let account = user_id(payload.for_user_id.as_deref(), "for_user_id").map_err(Rejection::malformed)?;
    let mut accepted = Accepted::default();

    for (index, event) in payload.direct_message_events.iter().enumerate() {
        match direct_message(event, &account, &payload.users, received_at) {
            Ok(Some(interaction)) => accepted.interactions.push(interaction),
            Ok(None) => accepted.ignored.push("dm_event_type"),
            Err(problem) => {
                accepted.malformed_event(crate::CONNECTOR, &format!("direct_message_events[{index}]"), &problem)
            }
        }
    }
    for (index, raw) in payload.tweet_create_events.iter().enumerate() {
        let outcome = json::parse_event::<Tweet>(raw)
            .and_then(|tweet| Ok((tweet_interaction(&tweet, &account, received_at)?, tweet)));
        match outcome {
            Ok((Some(interaction), _)) => accepted.interactions.push(interaction),
            Ok((None, tweet)) => accepted.ignored.push(if tweet.retweeted_status.is_some() {
                "retweet"
            } else {
                "own_tweet"
            }),
            Err(problem) => {
                accepted.malformed_event(crate::CONNECTOR, &format!("tweet_create_events[{index}]"), &problem)
            }
        }
    }
    for (index, raw) in payload.tweet_delete_events.iter().enumerate() {
        match tweet_deletion(raw, &account, received_at) {
            Ok(update) => accepted.updates.push(update),
            Err(problem) => {
                accepted.malformed_event(crate::CONNECTOR, &format!("tweet_delete_events[{index}]"), &problem)
            }
        }
    }
    // The customer read the account's DMs up to an event: a read watermark for them.
    let reads = payload.other.get(READ_EVENTS).and_then(Value::as_array);
    for (index, raw) in reads.into_iter().flatten().enumerate() {
        match read_receipt(raw, &account) {
            Ok(Some(watermark)) => accepted.watermarks.push(watermark),
            Ok(None) => accepted.ignored.push("own_read"),
            Err(problem) => accepted.malformed_event(crate::CONNECTOR, &format!("{READ_EVENTS}[{index}]"), &problem),
        }
    }
    // Favorites, follows, blocks, mutes, typing indicators, ...: acknowledged, counted.
    for (key, value) in &payload.other {
        if key != READ_EVENTS && key.ends_with("_events") && value.as_array().is_some_and(|a| !a.is_empty()) {
            accepted.ignored.push(ignored_reason(key));
        }
    }
    Ok(accepted)
}

const READ_EVENTS: &str = "direct_message_mark_read_events";

#[derive(Debug, Deserialize)]
struct MarkRead {
    sender_id: Option<String>,
    last_read_event_id: Option<String>,
}

/// X's ids are snowflakes: milliseconds since X's epoch in the bits above the lowest 22.
const SNOWFLAKE_EPOCH_MS: i64 = 1_288_834_974_657;

fn snowflake_time(id: &str) -> Option<DateTime<Utc>> {
    let id: i64 = id.trim().parse().ok()?;
    Utc.timestamp_millis_opt((id >> 22) + SNOWFLAKE_EPOCH_MS).single()
}

/// A read receipt: the reader (`sender_id`) read every DM of the conversation up to
/// `last_read_event_id`, whose time is in the id. The customer's, a read watermark for them;
/// the account's own (an agent read the customer's DM in X's app): `None`.
fn read_receipt(raw: &Value, account: &PlatformUserId) -> Result<Option<WatermarkReport>, String> {
    let read: MarkRead = json::parse_event(raw)?;
    let reader = user_id(read.sender_id.as_deref(), "sender_id")?;
    if &reader == account {
        return Ok(None);
    }
    let up_to = read
        .last_read_event_id
        .as_deref()
        .and_then(snowflake_time)
        .ok_or("last_read_event_id is not an X id")?;
    Ok(Some(WatermarkReport {
        customer: x_handle(reader),
        status: DeliveryStatus::Read,
        up_to,
    }))
}

fn tweet_deletion(
    raw: &Value,
    account: &PlatformUserId,
    received_at: DateTime<Utc>,
) -> Result<InteractionUpdate, String> {
    let delete: TweetDeleteEvent = json::parse_event(raw)?;
    let id = delete.status.as_ref().and_then(|s| s.id.as_deref());
    let tweet_id = ProviderMessageId::parse(id.unwrap_or_default()).map_err(|_| "status.id is missing".to_owned())?;
    Ok(InteractionUpdate::deleted(
        InteractionId::derive(Provider::X, &x_handle(account.clone()), &tweet_id),
        millis(delete.timestamp_ms.as_deref()).unwrap_or(received_at),
    ))
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

/// A `message_create` event as an interaction; `None` for other DM event types. `users` is the
/// delivery's users map; the event's own is read when that one is empty.
fn direct_message(
    event: &Value,
    account: &PlatformUserId,
    users: &Value,
    received_at: DateTime<Utc>,
) -> Result<Option<Interaction>, String> {
    let event: DirectMessageEvent = json::parse_event(event)?;
    if event.kind.as_deref() != Some("message_create") {
        return Ok(None);
    }
    let users = if users.as_object().is_some_and(|u| !u.is_empty()) {
        users
    } else {
        &event.users
    };
    let message_id =
        ProviderMessageId::parse(event.id.as_deref().unwrap_or_default()).map_err(|_| "id is missing".to_owned())?;
    let create = event
        .message_create
        .as_ref()
        .ok_or_else(|| "message_create is missing".to_owned())?;
    let sender = user_id(create.sender_id.as_deref(), "message_create.sender_id")?;
    let recipient = user_id(
        create.target.as_ref().and_then(|t| t.recipient_id.as_deref()),
        "message_create.target.recipient_id",
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
    if let Some(user) = display_user(users, customer.as_str()) {
        interaction.customer_display_name = user.name;
        if let Some(screen_name) = user.screen_name {
            interaction.attributes.insert("screen_name".into(), screen_name);
        }
    }
    Ok(Some(interaction))
}

/// `t.co` links replaced by what they point to, so the agent sees the real URL.
fn expand_urls(text: &str, entities: Option<&Entities>) -> String {
    let mut text = text.to_owned();
    for entity in entities.map(|e| e.urls.as_slice()).unwrap_or_default() {
        // An empty `url` would match between every character and multiply the text.
        if let (Some(short), Some(expanded)) = (&entity.url, &entity.expanded_url)
            && !short.is_empty()
        {
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
    account: &PlatformUserId,
    received_at: DateTime<Utc>,
) -> Result<Option<Interaction>, String> {
    if tweet.retweeted_status.is_some() {
        return Ok(None);
    }
    let author = user_id(tweet.user.as_ref().and_then(|u| u.id_str.as_deref()), "user.id_str")?;
    let (direction, customer) = if &author == account {
        match tweet
            .in_reply_to_user_id_str
            .as_deref()
            .filter(|id| *id != account.as_str())
        {
            Some(customer) => (Direction::Outbound, user_id(Some(customer), "in_reply_to_user_id_str")?),
            None => return Ok(None),
        }
    } else {
        (Direction::Inbound, author.clone())
    };
    let tweet_id = ProviderMessageId::parse(tweet.id_str.as_deref().unwrap_or_default())
        .map_err(|_| "id_str is missing".to_owned())?;
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
