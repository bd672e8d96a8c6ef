//! The Throughline chat webhook as pure functions: signature and timestamp checks, the visitor
//! identity token, and normalization of each message of a delivery. No network, no clock.
//!
//! Contract (documented in README, schema in `functions/chat/chat-webhook.schema.json`):
//! `POST /widget` with `X-Throughline-Site: <site id>`, `X-Throughline-Timestamp: <unix seconds>`
//! and `X-Throughline-Signature: base64(HMAC-SHA256(site secret, timestamp + "." + raw body))`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use lambda_http::http::{Method, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use throughline_edge::signature::{self, Algorithm, Encoding};
use throughline_edge::{Accepted, Rejection, Secret, WebhookRequest};
use throughline_model::{
    Attachment, AttachmentSource, Channel, DeliveryStatus, Direction, E164, EmailAddress, Evidence, EvidenceSource,
    Feedback, Handle, Identity, Interaction, InteractionId, InteractionKind, NewInteraction, Platform, PlatformUserId,
    Provider, ProviderMessageId, SenderCheck, StatusEvent, StatusReport,
};

use crate::text;

pub const SITE_HEADER: &str = "x-throughline-site";
pub const TIMESTAMP_HEADER: &str = "x-throughline-timestamp";
pub const SIGNATURE_HEADER: &str = "x-throughline-signature";
/// Most messages one delivery may carry.
pub const MAX_MESSAGES: usize = 100;
/// Most attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 20;
/// Most `custom_attributes` one message may carry.
pub const MAX_CUSTOM_ATTRIBUTES: usize = 50;
/// Largest `custom_attributes` of one message: names plus values as recorded, in bytes.
pub const MAX_CUSTOM_ATTRIBUTES_BYTES: usize = 8 * 1024;
/// Longest URL, name, content type or locale a message may carry: far above any real one, and
/// small enough that the message's caps together keep it well under what the queue takes (an
/// interaction that still does not fit is dropped by the publisher, counted `too_large`).
pub const MAX_FIELD_BYTES: usize = 8 * 1024;
/// Clock skew allowed on an identity token's times (`exp`, `nbf`, `iat`, its lifetime): the
/// company's login backend and this function do not share a clock.
const TOKEN_CLOCK_SKEW_SECONDS: i64 = 60;

/// One site's secrets. Each list may hold several so that a secret can rotate: add the new one,
/// switch the sender, remove the old one.
#[derive(Debug, Clone)]
pub struct SiteSecrets {
    /// Sign deliveries (the company's chat backend or vendor holds them).
    pub webhook_secrets: Vec<Secret>,
    /// Sign visitor identity tokens (the company's login backend holds them).
    pub identity_secrets: Vec<Secret>,
}

#[derive(Debug, Clone)]
pub struct WidgetConfig {
    pub sites: BTreeMap<String, SiteSecrets>,
    /// How far a delivery's timestamp may be from now, either way; also how far a message's
    /// `sent_at` may be from the time it arrived before it is clamped.
    pub tolerance: TimeDelta,
    /// Longest an identity token may still be valid for when it arrives (`exp` - now): a token is
    /// a bearer credential the browser holds, so a long-lived one vouches long after a logout.
    pub identity_token_max_lifetime: TimeDelta,
}

/// `base64(HMAC-SHA256(secret, timestamp + "." + body))`: what a sender puts in
/// `X-Throughline-Signature`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    signature::chat_signature(secret, timestamp, body)
}

fn unauthorized(reason: &'static str) -> Rejection {
    Rejection::BadSignature {
        status: StatusCode::UNAUTHORIZED,
        reason,
    }
}

/// Checks site, timestamp window and signature; returns the site id and its secrets.
fn verify<'c>(
    req: &WebhookRequest,
    config: &'c WidgetConfig,
    now: DateTime<Utc>,
) -> Result<(&'c str, &'c SiteSecrets), Rejection> {
    let site = req
        .header(SITE_HEADER)
        .ok_or(unauthorized("missing x-throughline-site header"))?;
    let (site, secrets) = config
        .sites
        .get_key_value(site.trim())
        .ok_or(unauthorized("unknown site"))?;
    let timestamp = req
        .header(TIMESTAMP_HEADER)
        .ok_or(unauthorized("missing x-throughline-timestamp header"))?;
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| unauthorized("x-throughline-timestamp must be unix seconds"))?;
    let skew = now.timestamp().abs_diff(seconds);
    if skew > config.tolerance.num_seconds().unsigned_abs() {
        return Err(unauthorized("x-throughline-timestamp is outside the allowed window"));
    }
    let provided = req
        .header(SIGNATURE_HEADER)
        .ok_or(unauthorized("missing x-throughline-signature header"))?;
    let signed_by_any = signature::matches_any(
        Algorithm::HmacSha256,
        Encoding::Base64,
        &secrets.webhook_secrets,
        &[timestamp.as_bytes(), b".", &req.body],
        provided,
    );
    if signed_by_any {
        Ok((site, secrets))
    } else {
        Err(unauthorized("x-throughline-signature does not match this request"))
    }
}

/// The body of a delivery: messages, and statuses of the agents' replies; 1 to 100 in all.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Throughline chat webhook delivery")]
pub struct ChatDelivery {
    /// Each becomes its own interaction.
    #[serde(default)]
    pub messages: Vec<ChatMessage>,
    /// What became of replies Throughline sent to the site's backend: each goes onto its reply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<ChatStatus>,
    /// Answers to satisfaction surveys from the widget's own rating control: each becomes a
    /// `feedback` interaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratings: Vec<ChatRating>,
}

/// A visitor's answer to a satisfaction survey, given in the widget's own control (a survey
/// reaches the site's backend as an `agent_message` with its `survey_id`).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChatRating {
    /// Unique per site and stable across retries: the dedupe key. A visitor who changes their
    /// answer sends a new one (the latest counts).
    pub rating_id: String,
    /// The widget's id for the visitor's browser, as on their messages.
    pub visitor_id: String,
    /// The `survey_id` of the survey message.
    pub survey_id: String,
    /// 1 (poor) to 5 (great).
    pub rating: u8,
    /// What the visitor wrote with it: at most 2000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// When it was given (RFC 3339), clamped like a message's.
    pub sent_at: DateTime<Utc>,
    /// As on messages: the logged-in visitor's identity token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_token: Option<String>,
}

/// A rating's `feedback` interaction, or what is wrong with it: from the visitor as their
/// message would be (the same customer, identity token and clock rules).
fn rating_interaction(
    rating: &ChatRating,
    site: &PlatformUserId,
    secrets: &SiteSecrets,
    config: &WidgetConfig,
    received_at: DateTime<Utc>,
) -> Result<Interaction, String> {
    if !(1..=5).contains(&rating.rating) {
        return Err("rating must be 1 to 5".into());
    }
    if !throughline_feedback::token::is_survey_id(&rating.survey_id) {
        return Err("survey_id is not a survey's id".into());
    }
    if rating
        .remark
        .as_ref()
        .is_some_and(|r| r.chars().count() > throughline_feedback::link::MAX_REMARK_CHARS)
    {
        return Err(format!(
            "remark is longer than {} characters",
            throughline_feedback::link::MAX_REMARK_CHARS
        ));
    }
    let as_message = ChatMessage {
        message_id: rating.rating_id.clone(),
        visitor_id: rating.visitor_id.clone(),
        sent_at: rating.sent_at,
        author: Author::Visitor,
        text: rating.remark.clone(),
        attachments: Vec::new(),
        page_url: None,
        referrer: None,
        locale: None,
        custom_attributes: BTreeMap::new(),
        conversation_id: None,
        identity_token: rating.identity_token.clone(),
        prechat: None,
    };
    let mut interaction = normalize(&as_message, site, secrets, config, received_at)
        .map_err(|problem| problem.replace("message_id", "rating_id"))?;
    let remark = interaction
        .text
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    interaction.text = remark.clone();
    interaction.kind = InteractionKind::Feedback;
    interaction.attributes.insert("via".into(), "chat_rating".into());
    interaction.feedback = Some(Feedback {
        survey_id: rating.survey_id.clone(),
        rating: Some(rating.rating),
        remark,
        replaces: None,
        assignee: None,
    });
    Ok(interaction)
}

/// A reply's status, as the widget saw it.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChatStatus {
    /// The reply's id: the `id` the backend answered the send with, or else Throughline's
    /// interaction id it was sent under.
    pub message_id: String,
    /// `delivered` (shown in the visitor's widget) or `read` (seen by them).
    pub status: ChatStatusKind,
    /// When (RFC 3339).
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatStatusKind {
    Delivered,
    Read,
}

/// The source of the statuses the chat webhook reports.
pub const STATUS_SOURCE: &str = "chat_status";

/// A reply's status as a report, or what is wrong with it.
fn status_report(status: &ChatStatus, site: &PlatformUserId) -> Result<StatusReport, String> {
    let id = ProviderMessageId::parse(&status.message_id).map_err(|e| format!("message_id: {e}"))?;
    let endpoint = Handle::Platform {
        platform: Platform::WebChat,
        scope: None,
        id: site.clone(),
    };
    Ok(StatusReport {
        interaction_id: InteractionId::derive(Provider::WebChat, &endpoint, &id),
        event: StatusEvent {
            status: match status.status {
                ChatStatusKind::Delivered => DeliveryStatus::Delivered,
                ChatStatusKind::Read => DeliveryStatus::Read,
            },
            at: status.at,
            source: STATUS_SOURCE.into(),
            error: None,
        },
        recipient: None,
    })
}

/// One chat message.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChatMessage {
    /// Unique per site and stable across retries: the dedupe key.
    pub message_id: String,
    /// The widget's id for the visitor's browser (a cookie), anonymous.
    pub visitor_id: String,
    /// When the message was sent (RFC 3339). A time further from the delivery's arrival than the
    /// timestamp tolerance (5 minutes by default) is recorded at the window's edge, the claim kept
    /// as the `claimed_sent_at` attribute.
    pub sent_at: DateTime<Utc>,
    /// `visitor` (default) or `agent` (the company's answer, recorded as outbound).
    #[serde(default)]
    pub author: Author,
    /// At most 16 KiB of UTF-8; Unicode noncharacters are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// At most 20.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<ChatAttachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// The company's own facts about the visitor or session (plan, cart value, ...): at most 50,
    /// 8 KiB in all (names and values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_attributes: BTreeMap<String, Value>,
    /// The widget's conversation id, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// A token the company's backend signed for a logged-in visitor (HS256 JWT; see README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_token: Option<String>,
    /// What the visitor typed into a pre-chat form: claims, never proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prechat: Option<Prechat>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    #[default]
    Visitor,
    Agent,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ChatAttachment {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct Prechat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// The claims of a visitor identity token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityClaims {
    /// The company's user id: the visitor's handle on this site.
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Expiry, unix seconds. Required: a token without one would vouch forever.
    pub exp: i64,
    /// Not before, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued at, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

/// A verified identity, its identifiers already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedVisitor {
    pub user_id: PlatformUserId,
    pub email: Option<EmailAddress>,
    pub phone: Option<E164>,
    pub name: Option<String>,
}

/// Why an identity token did not count. The message is kept, as an anonymous visitor's, with the
/// code in its `identity` attribute: a webhook retry would not fix the token, so refusing the
/// delivery would only lose the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Malformed,
    UnsupportedAlgorithm,
    /// The header lists `crit` extensions, which must be understood to accept the token; this
    /// verifier understands none (RFC 7515 §4.1.11).
    UnsupportedCriticalHeader,
    BadSignature,
    Expired,
    /// `nbf` is still ahead.
    NotYetValid,
    /// `iat` is ahead: the issuer's clock is wrong, or the token was minted to be used later.
    IssuedInTheFuture,
    /// `exp` is further ahead than the site allows (`identity_token_max_lifetime`).
    LifetimeTooLong,
    InvalidClaims,
}

impl TokenProblem {
    pub fn code(self) -> &'static str {
        SenderCheck::from(self).as_str()
    }
}

impl From<TokenProblem> for SenderCheck {
    fn from(problem: TokenProblem) -> Self {
        match problem {
            TokenProblem::Malformed => SenderCheck::TokenMalformed,
            TokenProblem::UnsupportedAlgorithm => SenderCheck::TokenUnsupportedAlgorithm,
            TokenProblem::UnsupportedCriticalHeader => SenderCheck::TokenUnsupportedCriticalHeader,
            TokenProblem::BadSignature => SenderCheck::TokenBadSignature,
            TokenProblem::Expired => SenderCheck::TokenExpired,
            TokenProblem::NotYetValid => SenderCheck::TokenNotYetValid,
            TokenProblem::IssuedInTheFuture => SenderCheck::TokenIssuedInTheFuture,
            TokenProblem::LifetimeTooLong => SenderCheck::TokenLifetimeTooLong,
            TokenProblem::InvalidClaims => SenderCheck::TokenInvalidClaims,
        }
    }
}

/// Mints an identity token (HS256 JWT), as the company's backend does. For tests and samples.
pub fn mint_identity_token(secret: &str, claims: &IdentityClaims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{header}.{payload}");
    let mac = signature::hmac(Algorithm::HmacSha256, secret.as_bytes(), &[signing_input.as_bytes()]);
    format!("{signing_input}.{}", signature::encode(Encoding::Base64Url, &mac))
}

/// Verifies an HS256 JWT against any of the site's identity secrets. Only HS256 is accepted:
/// the algorithm is fixed by us, never chosen by the token (no `none`, no key confusion).
/// `exp` is required; `nbf` and `iat`, when present, must not be ahead of `now`; and `exp` must
/// be at most `max_lifetime` ahead (each within `TOKEN_CLOCK_SKEW_SECONDS`).
pub fn verify_identity_token(
    token: &str,
    secrets: &[Secret],
    max_lifetime: TimeDelta,
    now: DateTime<Utc>,
) -> Result<VerifiedVisitor, TokenProblem> {
    let mut parts = token.trim().split('.');
    let (Some(header), Some(payload), Some(mac), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenProblem::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenProblem::Malformed);
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&decode(header)?).map_err(|_| TokenProblem::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenProblem::Malformed)?;
    if alg != "HS256" {
        return Err(TokenProblem::UnsupportedAlgorithm);
    }
    // Any `crit`, even an empty or null one: a sender that sets it expects a check we do not make.
    if header.contains_key("crit") {
        return Err(TokenProblem::UnsupportedCriticalHeader);
    }
    let signing_input = &token.trim()[..header_len(token.trim())];
    let signed = signature::matches_any(
        Algorithm::HmacSha256,
        Encoding::Base64Url,
        secrets,
        &[signing_input.as_bytes()],
        mac,
    );
    if !signed {
        return Err(TokenProblem::BadSignature);
    }
    let claims: IdentityClaims = serde_json::from_slice(&decode(payload)?).map_err(|_| TokenProblem::InvalidClaims)?;
    let now = now.timestamp();
    // Saturating: the times are the token's, and no value of theirs may overflow (panic) here.
    let latest_start = now.saturating_add(TOKEN_CLOCK_SKEW_SECONDS);
    if claims.exp.saturating_add(TOKEN_CLOCK_SKEW_SECONDS) < now {
        return Err(TokenProblem::Expired);
    }
    if claims.nbf.is_some_and(|nbf| nbf > latest_start) {
        return Err(TokenProblem::NotYetValid);
    }
    if claims.iat.is_some_and(|iat| iat > latest_start) {
        return Err(TokenProblem::IssuedInTheFuture);
    }
    let max_lifetime = max_lifetime.num_seconds().saturating_add(TOKEN_CLOCK_SKEW_SECONDS);
    if claims.exp.saturating_sub(now) > max_lifetime {
        return Err(TokenProblem::LifetimeTooLong);
    }
    Ok(VerifiedVisitor {
        user_id: PlatformUserId::parse(&claims.sub).map_err(|_| TokenProblem::InvalidClaims)?,
        email: claims
            .email
            .as_deref()
            .map(EmailAddress::parse)
            .transpose()
            .map_err(|_| TokenProblem::InvalidClaims)?,
        phone: claims
            .phone
            .as_deref()
            .map(E164::parse)
            .transpose()
            .map_err(|_| TokenProblem::InvalidClaims)?,
        name: claims.name.filter(|n| !n.trim().is_empty()),
    })
}

/// Length of `header.payload` in a token already known to have three parts.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

/// Verifies and normalizes one delivery. A body that is not a delivery (not JSON, no `messages`
/// array, too few or too many) is refused; within it, each message that cannot become an
/// interaction is skipped as `malformed_event` and the others are accepted.
pub fn accept(req: &WebhookRequest, config: &WidgetConfig, received_at: DateTime<Utc>) -> Result<Accepted, Rejection> {
    if req.method != Method::POST {
        return Err(Rejection::MethodNotAllowed { allowed: "POST" });
    }
    let (site, secrets) = verify(req, config, received_at)?;
    if req.media_type().is_some_and(|t| t != "application/json") {
        return Err(Rejection::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default)]
        messages: Vec<Value>,
        #[serde(default)]
        statuses: Vec<Value>,
        #[serde(default)]
        ratings: Vec<Value>,
    }
    let envelope: Envelope = serde_json::from_slice(&req.body)
        .map_err(|e| Rejection::malformed(format!("body is not a chat delivery: {e}")))?;
    let events = envelope.messages.len() + envelope.statuses.len() + envelope.ratings.len();
    if events == 0 || events > MAX_MESSAGES {
        return Err(Rejection::malformed(format!(
            "messages, statuses and ratings must hold 1 to {MAX_MESSAGES} events in all"
        )));
    }
    let site_id = PlatformUserId::parse(site).map_err(|e| Rejection::malformed(format!("site: {e}")))?;
    let mut accepted = Accepted::default();
    for (index, raw) in envelope.messages.into_iter().enumerate() {
        let interaction = throughline_edge::json::parse_event::<ChatMessage>(&raw)
            .and_then(|message| normalize(&message, &site_id, secrets, config, received_at));
        match interaction {
            Ok(interaction) => accepted.interactions.push(interaction),
            Err(problem) => accepted.malformed_event(crate::CONNECTOR, &format!("messages[{index}]"), &problem),
        }
    }
    for (index, raw) in envelope.statuses.into_iter().enumerate() {
        match throughline_edge::json::parse_event::<ChatStatus>(&raw).and_then(|s| status_report(&s, &site_id)) {
            Ok(report) => accepted.statuses.push(report),
            Err(problem) => accepted.malformed_event(crate::CONNECTOR, &format!("statuses[{index}]"), &problem),
        }
    }
    for (index, raw) in envelope.ratings.into_iter().enumerate() {
        let interaction = throughline_edge::json::parse_event::<ChatRating>(&raw)
            .and_then(|rating| rating_interaction(&rating, &site_id, secrets, config, received_at));
        match interaction {
            Ok(interaction) => accepted.interactions.push(interaction),
            Err(problem) => accepted.malformed_event(crate::CONNECTOR, &format!("ratings[{index}]"), &problem),
        }
    }
    Ok(accepted)
}

/// When the message happened, for the timeline: `sent_at` is the sender's word, and a wrong
/// clock (or a bug) must not file a message years away, where it would sit above everything
/// newer forever or outside every conversation. So it is kept within the timestamp window around
/// the arrival; `Some(sent_at)` when it had to be moved.
fn occurred_at(
    sent_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    tolerance: TimeDelta,
) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
    let earliest = received_at
        .checked_sub_signed(tolerance)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let latest = received_at
        .checked_add_signed(tolerance)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let clamped = sent_at.clamp(earliest, latest);
    (clamped, (clamped != sent_at).then_some(sent_at))
}

/// One message's interaction, or what is wrong with it (naming fields, never quoting them).
fn normalize(
    message: &ChatMessage,
    site: &PlatformUserId,
    secrets: &SiteSecrets,
    config: &WidgetConfig,
    received_at: DateTime<Utc>,
) -> Result<Interaction, String> {
    let message_id = ProviderMessageId::parse(&message.message_id).map_err(|e| format!("message_id: {e}"))?;
    let visitor_id = PlatformUserId::parse(&message.visitor_id).map_err(|e| format!("visitor_id: {e}"))?;
    let text = match &message.text {
        Some(text) => text::message_text(text).map_err(|problem| format!("text {problem}"))?,
        None => None,
    };
    if message.attachments.len() > MAX_ATTACHMENTS {
        return Err(format!("attachments: more than {MAX_ATTACHMENTS}"));
    }
    if message.custom_attributes.len() > MAX_CUSTOM_ATTRIBUTES {
        return Err(format!("custom_attributes: more than {MAX_CUSTOM_ATTRIBUTES}"));
    }
    let mut custom_attributes = Vec::with_capacity(message.custom_attributes.len());
    let mut custom_bytes = 0;
    for (name, value) in &message.custom_attributes {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        custom_bytes += name.len() + text.len();
        if custom_bytes > MAX_CUSTOM_ATTRIBUTES_BYTES {
            return Err(format!(
                "custom_attributes: larger than {MAX_CUSTOM_ATTRIBUTES_BYTES} bytes"
            ));
        }
        custom_attributes.push((format!("custom.{name}"), text));
    }
    // Users and visitors live in separate namespaces: a visitor id is a cookie anyone can set,
    // so it must never be able to name a logged-in user's handle.
    let on_site = |platform, id: PlatformUserId| Handle::Platform {
        platform,
        scope: Some(site.clone()),
        id,
    };
    let visitor = || on_site(Platform::WebChatVisitor, visitor_id.clone());

    let identity = message.identity_token.as_deref().map(|token| {
        verify_identity_token(
            token,
            &secrets.identity_secrets,
            config.identity_token_max_lifetime,
            received_at,
        )
    });
    let (customer, verified, token_problem) = match identity {
        Some(Ok(user)) => (on_site(Platform::WebChatUser, user.user_id.clone()), Some(user), None),
        Some(Err(problem)) => (visitor(), None, Some(problem)),
        None => (visitor(), None, None),
    };

    let (occurred_at, claimed_sent_at) = occurred_at(message.sent_at, received_at, config.tolerance);
    let mut interaction = Interaction::new(NewInteraction {
        channel: Channel::Chat,
        provider: Provider::WebChat,
        direction: match message.author {
            Author::Visitor => Direction::Inbound,
            Author::Agent => Direction::Outbound,
        },
        customer,
        business_endpoint: Handle::Platform {
            platform: Platform::WebChat,
            scope: None,
            id: site.clone(),
        },
        provider_message_id: message_id,
        occurred_at,
        received_at,
    });
    interaction.text = text;
    interaction.thread.provider_thread_id = message.conversation_id.clone().filter(|c| !c.is_empty());
    let short = |name: &str, value: Option<&String>| match value {
        Some(value) if value.len() > MAX_FIELD_BYTES => Err(format!("{name} is longer than {MAX_FIELD_BYTES} bytes")),
        _ => Ok(()),
    };
    for (name, value) in [
        ("page_url", &message.page_url),
        ("referrer", &message.referrer),
        ("locale", &message.locale),
    ] {
        short(name, value.as_ref())?;
    }
    for (i, attachment) in message.attachments.iter().enumerate() {
        if attachment.url.trim().is_empty() {
            return Err(format!("attachments[{i}].url is empty"));
        }
        short(&format!("attachments[{i}].url"), Some(&attachment.url))?;
        short(&format!("attachments[{i}].name"), attachment.name.as_ref())?;
        short(
            &format!("attachments[{i}].content_type"),
            attachment.content_type.as_ref(),
        )?;
        interaction.attachments.push(Attachment {
            source: AttachmentSource::Url {
                url: attachment.url.clone(),
            },
            content_type: attachment.content_type.clone(),
            size_bytes: attachment.size,
            file_name: attachment.name.clone(),
            content_id: None,
            inline: false,
        });
    }

    let attributes = &mut interaction.attributes;
    attributes.insert("visitor_id".into(), visitor_id.to_string());
    let sender_check = match (&verified, token_problem) {
        (Some(_), _) => SenderCheck::Verified,
        (None, Some(problem)) => problem.into(),
        (None, None) => SenderCheck::Anonymous,
    };
    // Kept for readers of the attribute from before the field; `sender_check` decides.
    attributes.insert("identity".into(), sender_check.as_str().into());
    interaction.sender_check = Some(sender_check);
    if let Some(claimed) = claimed_sent_at {
        attributes.insert(
            "claimed_sent_at".into(),
            claimed.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        );
    }
    for (name, value) in [
        ("page_url", &message.page_url),
        ("referrer", &message.referrer),
        ("locale", &message.locale),
    ] {
        if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
            attributes.insert(name.into(), value.clone());
        }
    }
    attributes.extend(custom_attributes);

    let mut identities = Vec::new();
    if let Some(visitor) = &verified {
        let vouched = |handle| Identity {
            handle,
            evidence: Evidence::Verified,
            source: EvidenceSource::CompanyIdentityToken,
        };
        identities.extend(visitor.email.clone().map(|address| vouched(Handle::Email { address })));
        identities.extend(visitor.phone.clone().map(|number| vouched(Handle::Phone { number })));
        interaction.customer_display_name = visitor.name.clone();
    }
    if let Some(prechat) = &message.prechat {
        // A claim is kept only when it is a valid identifier and not already verified.
        let claimed = |handle: Handle| Identity {
            handle,
            evidence: Evidence::Claimed,
            source: EvidenceSource::PrechatForm,
        };
        let email = prechat.email.as_deref().and_then(|e| EmailAddress::parse(e).ok());
        let phone = prechat.phone.as_deref().and_then(|p| E164::parse(p).ok());
        for handle in email
            .map(|address| Handle::Email { address })
            .into_iter()
            .chain(phone.map(|number| Handle::Phone { number }))
        {
            if !identities.iter().any(|i| i.handle == handle) {
                identities.push(claimed(handle));
            }
        }
        if interaction.customer_display_name.is_none() {
            interaction.customer_display_name = prechat.name.clone().filter(|n| !n.trim().is_empty());
        }
    }
    interaction.identities = identities;
    Ok(interaction)
}
