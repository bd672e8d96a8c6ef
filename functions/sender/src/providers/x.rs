//! X API v2: `POST /2/dm_conversations/with/{participant_id}/messages` with a user-context Bearer
//! token; 201 `{"data": {"dm_conversation_id", "dm_event_id"}}`, errors as problem documents
//! (`{"title", "detail", "type", "status"}`), rate limits with `x-rate-limit-reset` (epoch s).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use throughline_model::{OutboundMessage, Platform, SendRefusal};

use super::{platform_id, wrong_handle};
use crate::request::until;
use crate::{Credentials, ProviderApis, ProviderRequest, ProviderResponse, SendOutcome};

pub(super) fn build(
    message: &OutboundMessage,
    credentials: &Credentials,
    apis: &ProviderApis,
) -> Result<ProviderRequest, SendRefusal> {
    let (account, _) =
        platform_id(&message.from, &[Platform::X]).ok_or(wrong_handle("the sender is not an X account"))?;
    let (participant, _) =
        platform_id(&message.to, &[Platform::X]).ok_or(wrong_handle("the recipient is not an X user"))?;
    let token = credentials
        .x
        .get(account)
        .ok_or(SendRefusal::ChannelNotConfigured(message.channel))?;
    // `check_content` allows no files on X (they need a media upload first): text it is.
    let text = message.content.text().unwrap_or_default();
    Ok(ProviderRequest {
        method: http::Method::POST,
        url: format!(
            "{}/2/dm_conversations/with/{participant}/messages",
            apis.x.trim_end_matches('/')
        ),
        headers: vec![
            ("authorization", format!("Bearer {}", token.access_token.expose())),
            ("content-type", "application/json".into()),
        ],
        body: json!({"text": text}).to_string().into_bytes(),
    })
}

pub(super) fn interpret(response: &ProviderResponse, now: DateTime<Utc>) -> SendOutcome {
    let body = response.json().unwrap_or(Value::Null);
    let status = response.status;
    if (200..300).contains(&status) {
        return SendOutcome::sent_with("x", body.pointer("/data/dm_event_id").and_then(Value::as_str));
    }
    let code = format!("x:{status}");
    match status {
        429 => {
            let wait = response
                .header("x-rate-limit-reset")
                .and_then(|r| r.trim().parse::<i64>().ok())
                .map(|reset| until(reset, now));
            SendOutcome::transient(
                wait,
                code,
                "X is rate limiting this account; the message will be tried again",
            )
        }
        500..=599 => SendOutcome::transient(None, code, "X was unavailable; the message will be tried again"),
        401 => SendOutcome::failed(code, "X refused the account's token: renew it in the send credentials"),
        403 => SendOutcome::failed(
            code,
            "X does not allow this account to message this user (they do not accept messages from it)",
        ),
        _ => SendOutcome::failed(code, "X refused the message"),
    }
}
