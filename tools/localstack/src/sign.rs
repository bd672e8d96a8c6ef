//! `cargo xtask sign FILE...`: (re)computes the provider signature of sample events with the
//! documented test secrets, exactly as the provider would. Which signature a folder's events
//! carry is `SIGNERS`: `X-Twilio-Signature` (over the event's public URL and parameters),
//! `x-twitter-webhooks-signature` and `x-hub-signature-256` (over the body), for web chat a
//! fresh `X-Throughline-Timestamp` with its signature (identity tokens re-minted too, since the
//! chat webhook refuses stale deliveries), for Mailgun a fresh timestamp and token. The events
//! that are signed otherwise on purpose (a wrong signature, a stale timestamp, a previous
//! secret) are listed in `SIGNING`, with how.

use std::path::Path;

use chrono::{DateTime, Utc};
use throughline_chat::widget::{self, IdentityClaims};
use throughline_sms::signature::{Signed, compute};

use crate::Result;
use crate::lambda::HttpCall;
use throughline_testkit::secrets::{
    TEST_CHAT_IDENTITY_SECRET, TEST_CHAT_PREVIOUS_SECRET, TEST_CHAT_SECRET, TEST_MAILGUN_SIGNING_KEY,
    TEST_META_APP_SECRET, TEST_TWILIO_AUTH_TOKEN, TEST_X_CONSUMER_SECRET,
};

/// The signature a folder's sample events carry: their provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signer {
    /// `X-Twilio-Signature` over the public URL and the form parameters.
    Twilio,
    /// `x-twitter-webhooks-signature` over the body.
    X,
    /// `x-hub-signature-256` over the body.
    Meta,
    /// Web-chat deliveries (`/widget`): a timestamp and a signature over it and the body.
    /// Telegram sends a fixed secret token: nothing to sign.
    Chat,
    /// Mailgun deliveries (`/mailgun`): a timestamp and token, signed. SES events are not
    /// signed (SNS and SES trust the invoking service).
    Email,
}

/// `events/<folder>` → what signs its events.
const SIGNERS: [(&str, Signer); 5] = [
    ("sms", Signer::Twilio),
    ("x", Signer::X),
    ("facebook", Signer::Meta),
    ("chat", Signer::Chat),
    ("email", Signer::Email),
];

/// How a sample event is signed: validly for now, or otherwise on purpose (it tests a refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signing {
    Valid,
    /// Left wrong; where the provider signs a time, the time is fresh, so that the event is
    /// refused for its signature and not for its age.
    WrongSignature,
    /// Keeps its old timestamp, validly signed: refused for its age.
    Stale,
    /// Signed with the chat site's previous (still active) secret.
    PreviousSecret,
}

/// The sample events (`<folder>/<file>` under `events/`) not signed `Valid`, and how.
const SIGNING: [(&str, Signing); 8] = [
    ("sms/06-bad-signature.json", Signing::WrongSignature),
    ("x/10-bad-signature.json", Signing::WrongSignature),
    ("facebook/19-bad-signature.json", Signing::WrongSignature),
    ("chat/05-widget-stale-timestamp.json", Signing::Stale),
    ("chat/06-widget-bad-signature.json", Signing::WrongSignature),
    ("chat/07-widget-rotated-secret.json", Signing::PreviousSecret),
    ("email/12-mailgun-bad-signature.json", Signing::WrongSignature),
    ("email/13-mailgun-stale-timestamp.json", Signing::Stale),
];

/// `<folder>/<file>` of a path under `events/`.
fn event_name(path: &Path) -> String {
    let part = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    format!("{}/{}", part(path.parent()), part(Some(path)))
}

fn signer_of(path: &Path) -> Option<Signer> {
    let folder = event_name(path);
    let folder = folder.split('/').next().unwrap_or_default();
    SIGNERS.iter().find(|(f, _)| *f == folder).map(|(_, signer)| *signer)
}

fn signing_of(path: &Path) -> Signing {
    let name = event_name(path);
    SIGNING
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(Signing::Valid, |(_, signing)| *signing)
}

/// A sample event ready to send now: those whose provider signs a time re-signed for this
/// moment (see the module doc); every other event as it is on disk.
pub fn fresh_event(path: &Path) -> Result<serde_json::Value> {
    let mut event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let signing = signing_of(path);
    if is_chat_widget_event(path, &event) {
        refresh_chat_widget_event(&mut event, signing, Utc::now())?;
    }
    if is_mailgun_event(path, &event) && signing != Signing::Stale {
        refresh_mailgun_event(&mut event, signing, Utc::now())?;
    }
    Ok(event)
}

fn is_mailgun_event(path: &Path, event: &serde_json::Value) -> bool {
    signer_of(path) == Some(Signer::Email) && event["rawPath"].as_str() == Some("/mailgun")
}

/// Re-signs a Mailgun route delivery (or event webhook) at `now` with a new token (Mailgun signs timestamp and
/// token, not the body, and Throughline refuses stale timestamps and reused tokens). A
/// `WrongSignature` event keeps its wrong signature.
fn refresh_mailgun_event(event: &mut serde_json::Value, signing: Signing, now: DateTime<Utc>) -> Result<()> {
    let body = String::from_utf8(HttpCall::from_event(event)?.body)?;
    let timestamp = now.timestamp().to_string();
    let token = fresh_token(now);
    // An event webhook: the same signature, in the JSON body's `signature` object.
    if event["headers"]["content-type"].as_str() == Some("application/json") {
        let mut json: serde_json::Value = serde_json::from_str(&body)?;
        json["signature"]["timestamp"] = timestamp.clone().into();
        json["signature"]["token"] = token.clone().into();
        if signing != Signing::WrongSignature {
            json["signature"]["signature"] =
                throughline_email::mailgun::sign(TEST_MAILGUN_SIGNING_KEY, &timestamp, &token).into();
        }
        event["body"] = json.to_string().into();
        event["isBase64Encoded"] = false.into();
        return Ok(());
    }
    let mut body = replace_form_field(&body, "timestamp", &timestamp)?;
    body = replace_form_field(&body, "token", &token)?;
    if signing != Signing::WrongSignature {
        let signature = throughline_email::mailgun::sign(TEST_MAILGUN_SIGNING_KEY, &timestamp, &token);
        body = replace_form_field(&body, "signature", &signature)?;
    }
    event["body"] = body.into();
    event["isBase64Encoded"] = false.into();
    Ok(())
}

/// 50 lower-case hex characters, different on every call.
fn fresh_token(now: DateTime<Utc>) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}:{}:{}",
        now.timestamp_nanos_opt().unwrap_or_default(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut token = throughline_edge::signature::sha256_hex(seed.as_bytes());
    token.truncate(50);
    token
}

/// Replaces the value of a `multipart/form-data` field.
fn replace_form_field(body: &str, field: &str, value: &str) -> Result<String> {
    let marker = format!("name=\"{field}\"");
    let at = body.find(&marker).ok_or(format!("form field {field} not found"))?;
    let start = at + body[at..].find("\r\n\r\n").ok_or("form field without a body")? + 4;
    let end = start + body[start..].find("\r\n").ok_or("form field without an end")?;
    Ok(format!("{}{value}{}", &body[..start], &body[end..]))
}

fn is_chat_widget_event(path: &Path, event: &serde_json::Value) -> bool {
    signer_of(path) == Some(Signer::Chat) && event["rawPath"].as_str() == Some("/widget")
}

/// Re-signs a web-chat delivery at `now` (a `WrongSignature` one only gets a fresh timestamp):
/// identity tokens re-minted to expire an hour later, the timestamp set to `now` (kept when
/// `Stale`), the signature recomputed with the current secret (the previous one for
/// `PreviousSecret`).
fn refresh_chat_widget_event(event: &mut serde_json::Value, signing: Signing, now: DateTime<Utc>) -> Result<()> {
    if signing == Signing::WrongSignature {
        // Fresh, so that it is refused for its signature and not for its age.
        event["headers"][widget::TIMESTAMP_HEADER] = now.timestamp().to_string().into();
        return Ok(());
    }
    let body = HttpCall::from_event(event)?.body;
    let mut delivery: serde_json::Value = serde_json::from_slice(&body)?;
    // The messages move to now, the newest at now and the others as far before it as they
    // were (the webhook clamps a `sent_at` outside its window); a stale delivery stays as it is.
    let sent_at = |message: &serde_json::Value| {
        message["sent_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc())
    };
    let newest = delivery["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(sent_at)
        .max();
    let shift = match newest {
        Some(newest) if signing != Signing::Stale => now - newest,
        _ => chrono::TimeDelta::zero(),
    };
    // `get_mut`: indexing would add a `messages: null` to a delivery of statuses only.
    let messages = delivery.get_mut("messages").and_then(serde_json::Value::as_array_mut);
    for message in messages.into_iter().flatten() {
        if let Some(sent_at) = sent_at(message) {
            message["sent_at"] = (sent_at + shift)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into();
        }
    }
    // `get_mut`: indexing would add a `messages: null` to a delivery of statuses only.
    let messages = delivery.get_mut("messages").and_then(serde_json::Value::as_array_mut);
    for message in messages.into_iter().flatten() {
        let Some(token) = message["identity_token"].as_str() else {
            continue;
        };
        let payload = token.split('.').nth(1).ok_or("identity_token is not a JWT")?;
        let payload = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)?;
        let mut claims: IdentityClaims = serde_json::from_slice(&payload)?;
        claims.iat = Some(now.timestamp());
        claims.exp = now.timestamp() + 3600;
        message["identity_token"] = widget::mint_identity_token(TEST_CHAT_IDENTITY_SECRET, &claims).into();
    }
    let body = delivery.to_string();
    let timestamp = match event["headers"][widget::TIMESTAMP_HEADER].as_str() {
        Some(old) if signing == Signing::Stale => old.to_owned(),
        _ => now.timestamp().to_string(),
    };
    let secret = if signing == Signing::PreviousSecret {
        TEST_CHAT_PREVIOUS_SECRET
    } else {
        TEST_CHAT_SECRET
    };
    event["headers"][widget::SIGNATURE_HEADER] = widget::sign(secret, &timestamp, body.as_bytes()).into();
    event["headers"][widget::TIMESTAMP_HEADER] = timestamp.into();
    event["body"] = body.into();
    event["isBase64Encoded"] = false.into();
    Ok(())
}

/// The URL a Function URL / HTTP API event was requested at.
pub fn event_url(event: &serde_json::Value) -> Result<String> {
    let host = event["requestContext"]["domainName"]
        .as_str()
        .ok_or("event has no requestContext.domainName")?;
    let path = event["rawPath"].as_str().unwrap_or("/");
    let query = event["rawQueryString"].as_str().unwrap_or_default();
    Ok(if query.is_empty() {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}{path}?{query}")
    })
}

/// The signature Twilio would send for this event.
/// A Meta sample event with its JSON body changed by `edit` (a new message, now), signed as
/// Meta signs (`x-hub-signature-256` with the test app secret).
pub fn meta_event_with(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> Result<serde_json::Value> {
    let mut event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut body: serde_json::Value = serde_json::from_slice(&HttpCall::from_event(&event)?.body)?;
    edit(&mut body);
    let body = body.to_string();
    event["headers"]["x-hub-signature-256"] =
        throughline_facebook::webhook::sign(TEST_META_APP_SECRET, body.as_bytes()).into();
    event["body"] = body.into();
    event["isBase64Encoded"] = false.into();
    Ok(event)
}

/// A Twilio sample event with some form parameters set (`Body`, `From`, `MessageSid`…),
/// signed as Twilio signs (the public URL and the parameters, with the test auth token).
pub fn twilio_event_with(path: &Path, set: &[(&str, &str)]) -> Result<serde_json::Value> {
    let mut event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut pairs = form_urlencoded_pairs(&HttpCall::from_event(&event)?.body);
    for (name, value) in set {
        match pairs.iter_mut().find(|(n, _)| n == name) {
            Some(pair) => pair.1 = (*value).to_owned(),
            None => pairs.push(((*name).to_owned(), (*value).to_owned())),
        }
    }
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    event["body"] = body.into();
    event["isBase64Encoded"] = false.into();
    event["headers"]["x-twilio-signature"] = twilio_signature(&event, TEST_TWILIO_AUTH_TOKEN)?.into();
    Ok(event)
}

pub fn twilio_signature(event: &serde_json::Value, token: &str) -> Result<String> {
    let call = HttpCall::from_event(event)?;
    let url = event_url(event)?;
    if call.method == "GET" {
        return Ok(compute(token, &url, Signed::UrlOnly));
    }
    let params: Vec<(String, String)> = form_urlencoded_pairs(&call.body);
    Ok(compute(token, &url, Signed::Form(&params)))
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub fn sign_files(files: &[String]) -> Result<()> {
    for file in files {
        let path = Path::new(file);
        let signing = signing_of(path);
        let mut event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let signer = signer_of(path).ok_or_else(|| format!("{file}: not under events/<provider folder>/"))?;
        if signing == Signing::WrongSignature {
            println!("{file}: left with its wrong signature");
            continue;
        }
        let signature = match signer {
            Signer::Email if is_mailgun_event(path, &event) && signing != Signing::Stale => {
                refresh_mailgun_event(&mut event, signing, Utc::now())?;
                "signed with a fresh timestamp and token".to_owned()
            }
            Signer::Chat if is_chat_widget_event(path, &event) => {
                refresh_chat_widget_event(&mut event, signing, Utc::now())?;
                format!("signed at {}", event["headers"][widget::TIMESTAMP_HEADER])
            }
            Signer::Email => {
                println!("{file}: left as it is (SES events are not signed; a stale one stays stale)");
                continue;
            }
            Signer::Chat => {
                println!("{file}: Telegram sends a fixed secret token, nothing to sign");
                continue;
            }
            Signer::Twilio => {
                let signature = twilio_signature(&event, TEST_TWILIO_AUTH_TOKEN)?;
                event["headers"]["x-twilio-signature"] = signature.clone().into();
                signature
            }
            Signer::X | Signer::Meta => {
                if event["body"].is_null() {
                    println!("{file}: no body to sign");
                    continue;
                }
                let body = HttpCall::from_event(&event)?.body;
                let (header, signature) = match signer {
                    Signer::X => (
                        "x-twitter-webhooks-signature",
                        throughline_x::webhook::sign(TEST_X_CONSUMER_SECRET, &body),
                    ),
                    _ => (
                        "x-hub-signature-256",
                        throughline_facebook::webhook::sign(TEST_META_APP_SECRET, &body),
                    ),
                };
                event["headers"][header] = signature.clone().into();
                signature
            }
        };
        std::fs::write(path, serde_json::to_string_pretty(&event)? + "\n")?;
        println!("{file}: {signature}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_signed_otherwise_on_purpose_exists_and_has_a_signer() {
        let events = throughline_testkit::events::events_dir();
        for (name, signing) in SIGNING {
            let path = events.join(name);
            assert!(path.is_file(), "{name} is listed as {signing:?} but is not in events/");
            assert_eq!(event_name(&path), name);
            assert!(signer_of(&path).is_some(), "{name}: its folder has no signer");
        }
        assert_eq!(signing_of(&events.join("sms/01-inbound-sms.json")), Signing::Valid);
        assert_eq!(signer_of(&events.join("timeline-api/01-find-customer.json")), None);
    }
}
