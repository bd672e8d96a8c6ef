//! Meta's webhook as pure functions: the subscription handshake, `X-Hub-Signature-256`, and the
//! normalization of Messenger, Instagram and WhatsApp Cloud API updates. No network, no clock.
//! The envelope and what the products share are here; each product's events are its module's
//! (`messenger` for Messenger and Instagram, `whatsapp`).

use chrono::{DateTime, TimeZone, Utc};
use lambda_http::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use throughline_edge::signature::{self, Algorithm, Encoding};
use throughline_edge::{Accepted, Rejection, Secret, WebhookRequest, json};

mod messenger;
mod whatsapp;

use messenger::page_entry;
use throughline_model::{Channel, Interaction, PlatformUserId, ProviderMessageId};
use whatsapp::whatsapp_entry;

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

pub(super) fn millis(ms: Option<i64>) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms?).single()
}

/// Problems below are relative to the event they are found in (`sender.id: ...`) and, like
/// `InvalidValue`'s, name the rule broken, never the value.
pub(super) fn platform_id(value: &str, field: &str) -> Result<PlatformUserId, String> {
    PlatformUserId::parse(value).map_err(|e| format!("{field}: {e}"))
}

pub(super) fn message_id(value: Option<&str>, field: &str) -> Result<ProviderMessageId, String> {
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

/// Ads, m.me links and the like: kept as metadata.
pub(super) fn referral_attributes(referral: Option<&Value>, interaction: &mut Interaction) {
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
