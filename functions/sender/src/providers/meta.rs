//! Meta's Graph API: WhatsApp Cloud (`POST /{version}/{phone-number-id}/messages`) and the
//! Messenger/Instagram Send API (`POST /{version}/{page-id}/messages`), JSON, Bearer token. Both
//! answer errors as `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`.

use serde_json::{Value, json};
use throughline_model::{Channel, MessengerTag, OutboundContent, OutboundMessage, Platform, SendRefusal};

use super::{phone, platform_id, transient_status, wrong_handle};
use crate::{Credentials, ProviderApis, ProviderRequest, ProviderResponse, SendOutcome};

fn graph_post(apis: &ProviderApis, node: &str, token: &str, body: &Value) -> ProviderRequest {
    ProviderRequest {
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
    let (transient, reason) = explain(code, subcode);
    if transient || response.status >= 500 {
        SendOutcome::transient(response.retry_after(), provider_code, reason)
    } else {
        SendOutcome::failed(provider_code, reason)
    }
}

/// Graph API error codes: whether another try may succeed, and what happened in an agent's words
/// (WhatsApp Cloud API error codes; Messenger Send API errors).
fn explain(code: i64, subcode: Option<i64>) -> (bool, String) {
    let (transient, reason) = match (code, subcode) {
        (1 | 2, _) | (131000 | 131016, _) => (true, "Meta had a temporary problem; the message will be tried again"),
        (4 | 17 | 32 | 613 | 80007 | 130429, _) => (
            true,
            "Meta is rate limiting this sender; the message will be tried again",
        ),
        (131056, _) => (
            true,
            "too many messages to this customer in a short time; the message will be tried again",
        ),
        (1200, _) => (
            true,
            "Messenger could not send it just now; the message will be tried again",
        ),
        (131047, _) | (470, _) => (
            false,
            "the WhatsApp 24-hour window is closed: only an approved template can be sent",
        ),
        (10, Some(2018278)) | (10, Some(2534022)) => {
            (false, "the Messenger 24-hour window is closed for this customer")
        }
        (551, _) => (false, "this person is not available on Messenger right now"),
        (131026, _) => (
            false,
            "WhatsApp could not deliver to this number (not on WhatsApp, or an old app)",
        ),
        (131051, _) => (false, "WhatsApp does not support this kind of message"),
        (131052 | 131053, _) => (false, "WhatsApp could not fetch the attachment from its URL"),
        (132000 | 132001 | 132005 | 132007 | 132012, _) => {
            (false, "WhatsApp refused the template (name, language or parameters)")
        }
        (368, _) | (131031, _) => (false, "Meta has blocked this sender for a policy violation"),
        (190, _) => (false, "Meta refused the access token: renew it in the send credentials"),
        (10 | 200 | 3, _) => (false, "this app lacks the permission to send as this page or number"),
        (100, _) => (false, "Meta refused a parameter of the message (e.g. the recipient id)"),
        _ => (false, "Meta refused the message"),
    };
    (transient, format!("{reason} (error {code})"))
}
