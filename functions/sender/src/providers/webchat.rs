//! The company's chat backend: a signed `POST` to the site's `outbound_url`, the chat webhook's
//! scheme reversed (`X-Throughline-Site`, `X-Throughline-Timestamp`, `X-Throughline-Signature` =
//! base64 HMAC-SHA256 of `timestamp + "." + body` under the site's secret). Any 2xx is taken;
//! the body may name the backend's id for the message (`{"id": "…"}`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use throughline_edge::signature::chat_signature;
use throughline_model::{Handle, OutboundContent, Platform, SendJob, SendRefusal};

use super::{platform_id, transient_status, wrong_handle};
use crate::{Credentials, ProviderRequest, ProviderResponse, SendOutcome};

pub(super) fn build(
    job: &SendJob,
    credentials: &Credentials,
    now: DateTime<Utc>,
) -> Result<ProviderRequest, SendRefusal> {
    let message = &job.message;
    let (site, _) =
        platform_id(&message.from, &[Platform::WebChat]).ok_or(wrong_handle("the sender is not a chat site"))?;
    let recipient = match &message.to {
        Handle::Platform {
            platform: Platform::WebChatUser,
            id,
            ..
        } => json!({"user_id": id.as_str()}),
        Handle::Platform {
            platform: Platform::WebChatVisitor,
            id,
            ..
        } => json!({"visitor_id": id.as_str()}),
        _ => return Err(wrong_handle("the recipient is not a chat user or visitor")),
    };
    let config = credentials
        .web_chat
        .get(site)
        .ok_or(SendRefusal::ChannelNotConfigured(message.channel))?;
    let OutboundContent::Message { text, attachments } = &message.content else {
        return Err(SendRefusal::UnsupportedContent(
            "whatsapp_template is only for WhatsApp",
        ));
    };
    let mut body = json!({
        "type": "agent_message",
        // Throughline's id: the same on every attempt, so the backend can drop a repeat.
        "message_id": job.interaction_id.as_str(),
        "attempt": job.attempt,
        "to": recipient,
        "text": text,
        "attachments": attachments,
        "in_reply_to": message.reply_to.as_ref().map(|r| r.as_str()),
        "sent_at": now.to_rfc3339(),
    });
    if let Some(survey) = &message.survey {
        // A satisfaction survey: the widget may show its own rating control for it.
        body["survey_id"] = survey.as_str().into();
    }
    let body = body.to_string().into_bytes();
    let timestamp = now.timestamp().to_string();
    let signature = chat_signature(config.secret.expose(), &timestamp, &body);
    Ok(ProviderRequest {
        method: http::Method::POST,
        url: config.outbound_url.clone(),
        headers: vec![
            ("content-type", "application/json".into()),
            ("x-throughline-site", site.to_owned()),
            ("x-throughline-timestamp", timestamp),
            ("x-throughline-signature", signature),
        ],
        body,
    })
}

pub(super) fn interpret(job: &SendJob, response: &ProviderResponse) -> SendOutcome {
    if (200..300).contains(&response.status) {
        let body = response.json().unwrap_or(Value::Null);
        // Without an id of its own, the backend's message goes by ours.
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(job.interaction_id.as_str());
        return SendOutcome::sent_with("web_chat", Some(id));
    }
    transient_status("web_chat", response).unwrap_or_else(|| {
        SendOutcome::failed(
            format!("web_chat:{}", response.status),
            format!("the site's backend refused the message (HTTP {})", response.status),
        )
    })
}
