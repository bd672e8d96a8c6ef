//! Mailgun routes in raw MIME mode (the route's URL ends in `mime`, the mail arrives whole in
//! `body-mime`) as pure functions: the form, the signature, the timestamp window. The check
//! that a token was never used before needs the store: the shell does it. No network, no clock.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::http::{Method, StatusCode};
use mail_parser::{MessageParser, MimeHeaders};
use throughline_edge::signature::{self, Algorithm, Encoding};
use throughline_edge::{Rejection, Secret, WebhookRequest};
use throughline_model::Provider;

use crate::mail::{Envelope, Verdict, Verdicts, normalize_address};

#[derive(Debug, Clone)]
pub struct MailgunConfig {
    /// The account's HTTP webhook signing key(s): more than one while rotating.
    pub signing_keys: Vec<Secret>,
    /// How far `timestamp` may be from now.
    pub tolerance: TimeDelta,
}

/// A verified delivery: the raw mail and what is needed to finish it.
#[derive(Debug, Clone)]
pub struct MailgunDelivery {
    pub token: String,
    pub raw_mime: Vec<u8>,
    pub envelope: Envelope,
}

/// Largest route POST accepted: Mailgun refuses messages over 25 MB, and the form adds only a
/// few short fields (recipient, sender, subject, timestamp, token, signature) and its framing.
/// Checked before the MIME parser sees the body, which it would otherwise read whole.
pub const MAX_FORM_BYTES: usize = 26 * 1024 * 1024;

/// hex HMAC-SHA256(signing key, timestamp + token): Mailgun's `signature`. It covers the
/// timestamp and the token only, not the body: a captured delivery's fields can be posted again
/// with another mail within the window, which is why a token is claimed once, atomically,
/// before the mail is processed (`handle_mailgun`).
pub fn sign(key: &str, timestamp: &str, token: &str) -> String {
    let mac = signature::hmac(
        Algorithm::HmacSha256,
        key.as_bytes(),
        &[timestamp.as_bytes(), token.as_bytes()],
    );
    signature::encode(Encoding::Hex, &mac)
}

fn unauthorized(reason: &'static str) -> Rejection {
    Rejection::BadSignature {
        status: StatusCode::UNAUTHORIZED,
        reason,
    }
}

/// The form's fields: `multipart/form-data` (what Mailgun posts) or url-encoded.
fn form_fields(req: &WebhookRequest) -> Result<HashMap<String, Vec<u8>>, Rejection> {
    match req.media_type().as_deref() {
        Some("application/x-www-form-urlencoded") => Ok(form_urlencoded::parse(&req.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned().into_bytes()))
            .collect()),
        Some("multipart/form-data") => {
            // multipart/form-data is MIME: let the MIME parser split it.
            let content_type = req.header("content-type").unwrap_or_default();
            let mut document = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
            document.extend_from_slice(&req.body);
            let parsed = MessageParser::default()
                .parse(&document)
                .ok_or_else(|| Rejection::malformed("body is not multipart/form-data"))?;
            let mut fields = HashMap::new();
            for part in &parsed.parts {
                let Some(name) = part.content_disposition().and_then(|d| d.attribute("name")) else {
                    continue;
                };
                // The raw bytes of the field, not a charset-decoded text: body-mime is a mail.
                // Offsets come from the parser: `get`, so no body can make them panic.
                let Some(raw) = parsed
                    .raw_message
                    .get(part.offset_body as usize..part.offset_end as usize)
                else {
                    continue;
                };
                let value = if name == "body-mime" {
                    strip_part_end(raw)
                } else {
                    part.contents()
                };
                fields.insert(name.to_owned(), value.to_vec());
            }
            Ok(fields)
        }
        _ => Err(Rejection::UnsupportedMediaType {
            expected: "multipart/form-data",
        }),
    }
}

/// Mailgun's signature over `timestamp` and `token`, within the window: the same for routes
/// and event webhooks.
fn verify(
    timestamp: &str,
    token: &str,
    provided: &str,
    config: &MailgunConfig,
    now: DateTime<Utc>,
) -> Result<(), Rejection> {
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| unauthorized("timestamp must be unix seconds"))?;
    if now.timestamp().abs_diff(seconds) > config.tolerance.num_seconds().unsigned_abs() {
        return Err(unauthorized("timestamp is outside the allowed window"));
    }
    let signed = signature::matches_any(
        Algorithm::HmacSha256,
        Encoding::Hex,
        &config.signing_keys,
        &[timestamp.as_bytes(), token.as_bytes()],
        provided,
    );
    if signed {
        Ok(())
    } else {
        Err(unauthorized("signature does not match timestamp and token"))
    }
}

/// Largest event webhook body: an event is a few KiB of JSON.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// A verified event webhook: its token (claimed like a route's) and what it reports.
#[derive(Debug, Clone)]
pub struct MailgunEvent {
    pub token: String,
    pub accepted: throughline_edge::Accepted,
}

/// Whether a POST is an event webhook (JSON) rather than a route (a form).
pub fn is_event(req: &WebhookRequest) -> bool {
    req.media_type().as_deref() == Some("application/json")
}

/// Verifies an event webhook's POST (`{"signature": {timestamp, token, signature},
/// "event-data": {...}}`, signed like routes) and returns the statuses it reports.
pub fn accept_event(
    req: &WebhookRequest,
    config: &MailgunConfig,
    now: DateTime<Utc>,
) -> Result<MailgunEvent, Rejection> {
    if req.method != Method::POST {
        return Err(Rejection::MethodNotAllowed { allowed: "POST" });
    }
    if req.body.len() > MAX_EVENT_BYTES {
        return Err(Rejection::malformed(format!(
            "body is larger than {MAX_EVENT_BYTES} bytes"
        )));
    }
    let body: serde_json::Value = serde_json::from_slice(&req.body)
        .map_err(|e| Rejection::malformed(format!("body is not JSON (line {}, column {})", e.line(), e.column())))?;
    let field = |name: &str| {
        body["signature"][name]
            .as_str()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let timestamp = field("timestamp").ok_or(unauthorized("signature.timestamp is missing"))?;
    let token = field("token").ok_or(unauthorized("signature.token is missing"))?;
    let provided = field("signature").ok_or(unauthorized("signature.signature is missing"))?;
    verify(&timestamp, &token, &provided, config, now)?;
    let data = &body["event-data"];
    if !data.is_object() {
        return Err(Rejection::malformed("event-data is missing"));
    }
    let mut accepted = throughline_edge::Accepted::default();
    match crate::events::mailgun_event(data) {
        Ok(reports) if reports.is_empty() => accepted.ignored.push("event_other"),
        Ok(reports) => accepted.statuses = reports,
        Err(problem) => return Err(Rejection::malformed(problem)),
    }
    Ok(MailgunEvent { token, accepted })
}

/// Verifies a route's POST and returns the mail in it.
pub fn accept(req: &WebhookRequest, config: &MailgunConfig, now: DateTime<Utc>) -> Result<MailgunDelivery, Rejection> {
    if req.method != Method::POST {
        return Err(Rejection::MethodNotAllowed { allowed: "POST" });
    }
    if req.body.len() > MAX_FORM_BYTES {
        return Err(Rejection::malformed(format!(
            "body is larger than {MAX_FORM_BYTES} bytes (Mailgun's message limit is 25 MB)"
        )));
    }
    let fields = form_fields(req)?;
    let text = |name: &str| {
        fields
            .get(name)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let timestamp = text("timestamp").ok_or(unauthorized("field timestamp is missing"))?;
    let token = text("token").ok_or(unauthorized("field token is missing"))?;
    let provided = text("signature").ok_or(unauthorized("field signature is missing"))?;
    verify(&timestamp, &token, &provided, config, now)?;
    let raw_mime = fields
        .get("body-mime")
        .filter(|b| !b.is_empty())
        .cloned()
        .ok_or_else(|| Rejection::malformed("field body-mime is missing: configure the route's URL to end in mime"))?;
    let recipient = text("recipient").ok_or_else(|| Rejection::malformed("field recipient is missing"))?;
    // With several recipients Mailgun posts once per route match; the first is this mailbox.
    let mailbox = recipient
        .split(',')
        .next()
        .and_then(normalize_address)
        .ok_or_else(|| Rejection::malformed("field recipient is not an email address"))?;
    Ok(MailgunDelivery {
        envelope: Envelope {
            provider: Provider::Mailgun,
            mailbox,
            delivery_id: token.clone(),
            verdicts: header_verdicts(&raw_mime),
            stored: None,
            received_at: now,
        },
        token,
        raw_mime,
    })
}

/// A form part's body without the line break that belongs to the next boundary.
fn strip_part_end(raw: &[u8]) -> &[u8] {
    raw.strip_suffix(b"\r\n")
        .or_else(|| raw.strip_suffix(b"\n"))
        .unwrap_or(raw)
}

/// Mailgun's own checks, as it adds them to the mail (`X-Mailgun-Spf`,
/// `X-Mailgun-Dkim-Check-Result`, `X-Mailgun-Sflag`).
fn header_verdicts(raw: &[u8]) -> Verdicts {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return Verdicts::default();
    };
    let header = |name: &'static str| message.header_raw(name).map(|v| v.trim().to_ascii_uppercase());
    let verdict = |value: Option<String>| {
        value.map(|v| match v.as_str() {
            "PASS" => Verdict::Pass,
            "FAIL" | "SOFTFAIL" => Verdict::Fail,
            _ => Verdict::Gray,
        })
    };
    Verdicts {
        spf: verdict(header("x-mailgun-spf")),
        dkim: verdict(header("x-mailgun-dkim-check-result")),
        dmarc: None,
        spam: header("x-mailgun-sflag").map(|v| if v == "YES" { Verdict::Fail } else { Verdict::Pass }),
        virus: None,
    }
}
