//! `cargo xtask sign FILE...`: (re)computes the provider signature of sample events with the
//! documented test secrets, exactly as the provider would: `X-Twilio-Signature` for files under
//! `events/sms/` (over the event's public URL and parameters), `x-twitter-webhooks-signature`
//! for files under `events/twitter/` and `x-hub-signature-256` under `events/facebook/` (over
//! the body), and for web-chat files under `events/chat/`
//! a fresh `X-Throughline-Timestamp` with its signature (identity tokens re-minted too), since
//! the chat webhook refuses stale deliveries. Files whose name contains `bad-signature` are left
//! wrong on purpose; a `stale-timestamp` file keeps its old timestamp, validly signed.

use std::path::Path;

use chrono::{DateTime, Utc};
use throughline_chat::widget::{self, IdentityClaims};
use throughline_sms::signature::{Signed, compute};

use crate::Result;
use crate::lambda::HttpCall;
use crate::stack::{
    TEST_CHAT_IDENTITY_SECRET, TEST_CHAT_PREVIOUS_SECRET, TEST_CHAT_SECRET, TEST_MAILGUN_SIGNING_KEY,
    TEST_META_APP_SECRET, TEST_TWILIO_AUTH_TOKEN, TEST_X_CONSUMER_SECRET,
};

/// A sample event ready to send now: web-chat deliveries re-signed for this moment (see the
/// module doc); every other event as it is on disk.
pub fn fresh_event(path: &Path) -> Result<serde_json::Value> {
    let mut event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if is_chat_widget_event(path, &event) {
        refresh_chat_widget_event(&mut event, &name, Utc::now())?;
    }
    if is_mailgun_event(path, &event) && !name.contains("stale-timestamp") {
        refresh_mailgun_event(&mut event, &name, Utc::now())?;
    }
    Ok(event)
}

fn is_mailgun_event(path: &Path, event: &serde_json::Value) -> bool {
    path.to_string_lossy().contains("email") && event["rawPath"].as_str() == Some("/mailgun")
}

/// Re-signs a Mailgun route delivery at `now` with a new token (Mailgun signs timestamp and
/// token, not the body, and Throughline refuses stale timestamps and reused tokens). A
/// `bad-signature` file keeps its wrong signature.
fn refresh_mailgun_event(event: &mut serde_json::Value, name: &str, now: DateTime<Utc>) -> Result<()> {
    let body = String::from_utf8(HttpCall::from_event(event)?.body)?;
    let timestamp = now.timestamp().to_string();
    let token = fresh_token(now);
    let mut body = replace_form_field(&body, "timestamp", &timestamp)?;
    body = replace_form_field(&body, "token", &token)?;
    if !name.contains("bad-signature") {
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
    path.to_string_lossy().contains("chat") && event["rawPath"].as_str() == Some("/widget")
}

/// Re-signs a web-chat delivery at `now` (a `bad-signature` one only gets a fresh timestamp):
/// identity tokens re-minted to expire an hour later,
/// the timestamp set to `now` (kept in a `stale-timestamp` file), the signature recomputed with
/// the current secret (the previous one in a `rotated-secret` file).
fn refresh_chat_widget_event(event: &mut serde_json::Value, name: &str, now: DateTime<Utc>) -> Result<()> {
    if name.contains("bad-signature") {
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
        Some(newest) if !name.contains("stale-timestamp") => now - newest,
        _ => chrono::TimeDelta::zero(),
    };
    for message in delivery["messages"].as_array_mut().into_iter().flatten() {
        if let Some(sent_at) = sent_at(message) {
            message["sent_at"] = (sent_at + shift)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into();
        }
    }
    for message in delivery["messages"].as_array_mut().into_iter().flatten() {
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
        Some(old) if name.contains("stale-timestamp") => old.to_owned(),
        _ => now.timestamp().to_string(),
    };
    let secret = if name.contains("rotated-secret") {
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
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("bad-signature"))
        {
            println!("{file}: left with its wrong signature");
            continue;
        }
        let mut event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        if file.contains("email") {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if !is_mailgun_event(path, &event) || name.contains("stale-timestamp") {
                println!("{file}: left as it is (SES events are not signed; a stale one stays stale)");
                continue;
            }
            refresh_mailgun_event(&mut event, &name, Utc::now())?;
            std::fs::write(path, serde_json::to_string_pretty(&event)? + "\n")?;
            println!("{file}: signed with a fresh timestamp and token");
            continue;
        }
        if file.contains("chat") {
            if !is_chat_widget_event(path, &event) {
                println!("{file}: Telegram sends a fixed secret token, nothing to sign");
                continue;
            }
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            refresh_chat_widget_event(&mut event, &name, Utc::now())?;
            std::fs::write(path, serde_json::to_string_pretty(&event)? + "\n")?;
            println!("{file}: signed at {}", event["headers"][widget::TIMESTAMP_HEADER]);
            continue;
        }
        let signs_body = file.contains("twitter") || file.contains("facebook");
        if signs_body && event["body"].is_null() {
            println!("{file}: no body to sign");
            continue;
        }
        let (header, signature) = if file.contains("twitter") {
            let body = HttpCall::from_event(&event)?.body;
            (
                "x-twitter-webhooks-signature",
                throughline_twitter::webhook::sign(TEST_X_CONSUMER_SECRET, &body),
            )
        } else if file.contains("facebook") {
            let body = HttpCall::from_event(&event)?.body;
            (
                "x-hub-signature-256",
                throughline_facebook::webhook::sign(TEST_META_APP_SECRET, &body),
            )
        } else {
            ("x-twilio-signature", twilio_signature(&event, TEST_TWILIO_AUTH_TOKEN)?)
        };
        event["headers"][header] = signature.clone().into();
        std::fs::write(path, serde_json::to_string_pretty(&event)? + "\n")?;
        println!("{file}: {signature}");
    }
    Ok(())
}
