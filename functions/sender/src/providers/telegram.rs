//! The Telegram Bot API: `POST /bot<token>/sendMessage` (or `sendPhoto`, `sendDocument`), JSON;
//! it answers `{"ok": true, "result": Message}` or `{"ok": false, "error_code", "description",
//! "parameters": {"retry_after"}}`.

use chrono::Duration;
use serde_json::{Value, json};
use throughline_model::{OutboundContent, OutboundMessage, Platform, SendRefusal};

use super::{platform_id, wrong_handle};
use crate::{Credentials, ProviderApis, ProviderRequest, ProviderResponse, SendOutcome};

pub(super) fn build(
    message: &OutboundMessage,
    credentials: &Credentials,
    apis: &ProviderApis,
) -> Result<ProviderRequest, SendRefusal> {
    let (bot, _) = platform_id(&message.from, &[Platform::Telegram]).ok_or(wrong_handle("the sender is not a bot"))?;
    let (user, _) =
        platform_id(&message.to, &[Platform::Telegram]).ok_or(wrong_handle("the recipient is not a Telegram user"))?;
    let token = credentials
        .telegram
        .get(bot)
        .ok_or(SendRefusal::ChannelNotConfigured(message.channel))?;
    let OutboundContent::Message { text, attachments } = &message.content else {
        return Err(SendRefusal::UnsupportedContent(
            "whatsapp_template is only for WhatsApp",
        ));
    };
    // A private chat's id is the user's id.
    let mut body = json!({"chat_id": user});
    let method = match attachments.first() {
        None => {
            body["text"] = text.as_deref().unwrap_or_default().into();
            "sendMessage"
        }
        Some(file) => {
            let field = if file.is_image() { "photo" } else { "document" };
            body[field] = file.url.as_str().into();
            if let Some(caption) = text {
                body["caption"] = caption.as_str().into();
            }
            if file.is_image() { "sendPhoto" } else { "sendDocument" }
        }
    };
    // Inbound Telegram ids are `<chat id>:<message id>`: a reply quotes the customer's message.
    if let Some((chat, id)) = message.reply_to.as_ref().and_then(|r| r.as_str().split_once(':'))
        && chat == user
        && let Ok(id) = id.parse::<i64>()
    {
        body["reply_parameters"] = json!({"message_id": id, "allow_sending_without_reply": true});
    }
    Ok(ProviderRequest {
        method: http::Method::POST,
        url: format!(
            "{}/bot{}/{method}",
            apis.telegram.trim_end_matches('/'),
            token.token.expose()
        ),
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string().into_bytes(),
    })
}

pub(super) fn interpret(response: &ProviderResponse) -> SendOutcome {
    let body = response.json().unwrap_or(Value::Null);
    if body.get("ok") == Some(&Value::Bool(true)) {
        let chat = body.pointer("/result/chat/id").and_then(Value::as_i64);
        let id = body.pointer("/result/message_id").and_then(Value::as_i64);
        // The same grammar as inbound ids, so later updates to it find it.
        let key = chat.zip(id).map(|(chat, id)| format!("{chat}:{id}"));
        return SendOutcome::sent_with("telegram", key.as_deref());
    }
    let code = body
        .get("error_code")
        .and_then(Value::as_i64)
        .unwrap_or(i64::from(response.status));
    let description = body.get("description").and_then(Value::as_str).unwrap_or_default();
    let provider_code = format!("telegram:{code}");
    let retry_after = body
        .pointer("/parameters/retry_after")
        .and_then(Value::as_i64)
        .map(Duration::seconds)
        .or_else(|| response.retry_after());
    match code {
        429 => SendOutcome::transient(
            retry_after,
            provider_code,
            "Telegram is rate limiting this bot; the message will be tried again",
        ),
        500..=599 => SendOutcome::transient(
            retry_after,
            provider_code,
            "Telegram was unavailable; the message will be tried again",
        ),
        403 if description.contains("blocked") => {
            SendOutcome::failed(provider_code, "the customer has blocked the bot")
        }
        403 => SendOutcome::failed(provider_code, "the bot may not write to this customer"),
        401 | 404 => SendOutcome::failed(
            provider_code,
            "Telegram refused the bot token: check it in the send credentials",
        ),
        400 if description.contains("chat not found") => SendOutcome::failed(
            provider_code,
            "Telegram does not know this chat (the customer never started the bot)",
        ),
        _ => SendOutcome::failed(provider_code, "Telegram refused the message"),
    }
}
