//! Meta's Graph API: WhatsApp Cloud (`POST /{version}/{phone-number-id}/messages`) and the
//! Messenger/Instagram Send API (`POST /{version}/{page-id}/messages`), JSON, Bearer token. Both
//! answer errors as `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`.

use serde_json::{Value, json};
use throughline_model::{Channel, MessengerTag, OutboundContent, OutboundMessage, Platform, SendRefusal};

use super::{phone, platform_id, transient_status, wrong_handle};
use crate::{Credentials, ProviderApis, ProviderRequest, ProviderResponse, SendOutcome};

fn graph_post(apis: &ProviderApis, node: &str, token: &str, body: &Value) -> ProviderRequest {
    ProviderRequest {
        method: http::Method::POST,
        url: format!(
            "{}/{}/{node}/messages",
            apis.graph.trim_end_matches('/'),
            apis.graph_version
        ),
        headers: vec![
            ("authorization", format!("Bearer {token}")),
            ("content-type", "application/json".into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

pub(super) fn build_whatsapp(
    message: &OutboundMessage,
    credentials: &Credentials,
    apis: &ProviderApis,
) -> Result<ProviderRequest, SendRefusal> {
    let from = phone(&message.from).ok_or(wrong_handle("the sender is not a WhatsApp number"))?;
    let number = credentials
        .whatsapp_cloud
        .get(from)
        .ok_or(SendRefusal::ChannelNotConfigured(Channel::Whatsapp))?;
    let to = phone(&message.to).ok_or(wrong_handle("the recipient is not a phone number"))?;
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        // The WhatsApp id form: the number's digits.
        "to": to.trim_start_matches('+'),
    });
    match &message.content {
        OutboundContent::WhatsappTemplate(template) => {
            body["type"] = "template".into();
            body["template"] = json!({"name": template.name, "language": {"code": template.language}});
            if !template.components.is_null() {
                body["template"]["components"] = template.components.clone();
            }
        }
        OutboundContent::Message { text, attachments } => match attachments.first() {
            None => {
                body["type"] = "text".into();
                body["text"] = json!({"body": text.as_deref().unwrap_or_default(), "preview_url": false});
            }
            Some(file) => {
                let kind = if file.is_image() { "image" } else { "document" };
                let mut media = json!({"link": file.url});
                if let Some(caption) = text {
                    media["caption"] = caption.as_str().into();
                }
                if let (Some(name), "document") = (&file.file_name, kind) {
                    media["filename"] = name.as_str().into();
                }
                body["type"] = kind.into();
                body[kind] = media;
            }
        },
    }
    if let Some(answered) = &message.reply_to {
        body["context"] = json!({"message_id": answered.as_str()});
    }
    Ok(graph_post(
        apis,
        &number.phone_number_id,
        number.access_token.expose(),
        &body,
    ))
}

pub(super) fn build_page(
    message: &OutboundMessage,
    credentials: &Credentials,
    apis: &ProviderApis,
) -> Result<ProviderRequest, SendRefusal> {
    let platforms = [Platform::Messenger, Platform::Instagram];
    let (page, _) = platform_id(&message.from, &platforms).ok_or(wrong_handle("the sender is not a page"))?;
    let (recipient, _) = platform_id(&message.to, &platforms)
        .ok_or(wrong_handle("the recipient is not a Messenger or Instagram user"))?;
    let token = credentials
        .meta_pages
        .get(page)
        .ok_or(SendRefusal::ChannelNotConfigured(message.channel))?;
    let content = match &message.content {
        OutboundContent::Message {
            text: Some(text),
            attachments,
        } if attachments.is_empty() => json!({"text": text}),
        OutboundContent::Message { attachments, .. } => {
            let file = attachments
                .first()
                .ok_or(SendRefusal::UnsupportedContent("nothing to send"))?;
            let kind = match file.content_type.as_deref().unwrap_or_default() {
                t if t.starts_with("image/") => "image",
                t if t.starts_with("video/") => "video",
                t if t.starts_with("audio/") => "audio",
                _ => "file",
            };
            json!({"attachment": {"type": kind, "payload": {"url": file.url, "is_reusable": false}}})
        }
        OutboundContent::WhatsappTemplate(_) => {
            return Err(SendRefusal::UnsupportedContent(
                "whatsapp_template is only for WhatsApp",
            ));
        }
    };
    let mut body = json!({"recipient": {"id": recipient}, "message": content});
    match message.messenger_tag {
        Some(MessengerTag::HumanAgent) => {
            body["messaging_type"] = "MESSAGE_TAG".into();
            body["tag"] = "HUMAN_AGENT".into();
        }
        None => body["messaging_type"] = "RESPONSE".into(),
    }
    Ok(graph_post(apis, page, token.access_token.expose(), &body))
}

/// WhatsApp answers `{"messaging_product", "contacts": [...], "messages": [{"id": "wamid…"}]}`;
/// Messenger `{"recipient_id", "message_id"}`.
pub(super) fn interpret(channel: Channel, response: &ProviderResponse) -> SendOutcome {
    let body = response.json().unwrap_or(Value::Null);
    if (200..300).contains(&response.status) {
        let id = match channel {
            Channel::Whatsapp => body.pointer("/messages/0/id"),
            _ => body.get("message_id"),
        };
        return SendOutcome::sent_with("meta", id.and_then(Value::as_str));
    }
    let error = body.get("error");
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let subcode = error.and_then(|e| e.get("error_subcode")).and_then(Value::as_i64);
    let Some(code) = code else {
        return transient_status("meta", response).unwrap_or_else(|| {
            SendOutcome::failed(
                format!("meta:{}", response.status),
                format!("Meta refused the message (HTTP {})", response.status),
            )
        });
    };
    let provider_code = match subcode {
        Some(sub) => format!("{code}/{sub}"),
        None => code.to_string(),
    };
    let (transient, reason) = throughline_model::provider_errors::meta(code, subcode);
    if transient || response.status >= 500 {
        SendOutcome::transient(response.retry_after(), provider_code, reason)
    } else {
        SendOutcome::failed(provider_code, reason)
    }
}
