//! Twilio's Messages API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded,
//! Basic auth (Account SID + auth token, or API key SID + secret).

use chrono::DateTime;
use throughline_model::{
    Channel, DeliveryError, OutboundContent, OutboundMessage, ProviderMessageId, SendRefusal, StatusEvent,
};

use super::{phone, transient_status, wrong_handle};
use crate::credentials::TwilioAccount;
use crate::request::{basic_auth, form};
use crate::{Credentials, ProviderApis, ProviderRequest, ProviderResponse, SendOutcome};

/// The account, and its Basic authorization (Account SID + auth token, or API key SID + secret).
fn account(credentials: &Credentials, channel: Channel) -> Result<(&TwilioAccount, String), SendRefusal> {
    let account = credentials
        .twilio
        .as_ref()
        .ok_or(SendRefusal::ChannelNotConfigured(channel))?;
    let user = account.api_key_sid.as_deref().unwrap_or(&account.account_sid);
    Ok((account, basic_auth(user, account.auth_token.expose())))
}

/// The `To` and `From` Twilio knows the message by: the numbers, both prefixed `whatsapp:` on
/// WhatsApp (the same API).
fn addresses(message: &OutboundMessage) -> Result<(String, String), SendRefusal> {
    let to = phone(&message.to).ok_or(wrong_handle("the recipient is not a phone number"))?;
    let from = phone(&message.from).ok_or(wrong_handle("the sender is not a phone number"))?;
    let address = |n: &str| match message.channel {
        Channel::Whatsapp => format!("whatsapp:{n}"),
        _ => n.to_owned(),
    };
    Ok((address(to), address(from)))
}

pub(super) fn build(
    message: &OutboundMessage,
    credentials: &Credentials,
    apis: &ProviderApis,
) -> Result<ProviderRequest, SendRefusal> {
    let (account, authorization) = account(credentials, message.channel)?;
    let (to, from) = addresses(message)?;
    let mut fields: Vec<(&str, String)> = vec![("To", to), ("From", from)];
    match &message.content {
        OutboundContent::Message { text, attachments } => {
            if let Some(text) = text {
                fields.push(("Body", text.clone()));
            }
            fields.extend(attachments.iter().map(|a| ("MediaUrl", a.url.clone())));
        }
        OutboundContent::WhatsappTemplate(template) => {
            // Twilio sends WhatsApp templates as Content Templates: the SID and its variables.
            if !template.name.starts_with("HX") {
                return Err(SendRefusal::UnsupportedContent(
                    "through Twilio a whatsapp_template name is its Content SID (HX…)",
                ));
            }
            fields.push(("ContentSid", template.name.clone()));
            if !template.components.is_null() {
                fields.push(("ContentVariables", template.components.to_string()));
            }
        }
    }
    if let Some(callback) = &account.status_callback {
        fields.push(("StatusCallback", callback.clone()));
    }
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    Ok(ProviderRequest {
        method: http::Method::POST,
        url: format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            apis.twilio.trim_end_matches('/'),
            account.account_sid
        ),
        headers: vec![
            ("authorization", authorization),
            ("content-type", "application/x-www-form-urlencoded".into()),
        ],
        body: form(&pairs),
    })
}

/// Twilio answers 201 with the message (`sid`, `status`), or an error
/// `{"code": 21610, "message": "…", "more_info": "…", "status": 400}`.
pub(super) fn interpret(response: &ProviderResponse) -> SendOutcome {
    let body = response.json();
    let field = |name: &str| body.as_ref().and_then(|b| b.get(name));
    if (200..300).contains(&response.status) {
        return SendOutcome::sent_with("twilio", field("sid").and_then(|s| s.as_str()));
    }
    let code = field("code").and_then(|c| c.as_i64());
    if let Some(transient) = transient_status("twilio", response) {
        return match code {
            Some(code) => SendOutcome::transient(
                response.retry_after(),
                code.to_string(),
                throughline_model::provider_errors::twilio(code),
            ),
            None => transient,
        };
    }
    match code {
        Some(code) => SendOutcome::failed(code.to_string(), throughline_model::provider_errors::twilio(code)),
        None => SendOutcome::failed(
            format!("twilio:{}", response.status),
            format!("Twilio refused the message (HTTP {})", response.status),
        ),
    }
}

/// Twilio's Fetch Message (`GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`): what
/// reconciliation asks about a reply whose status callbacks may not have come.
pub(crate) fn fetch(
    sid: &ProviderMessageId,
    credentials: &Credentials,
    apis: &ProviderApis,
) -> Result<ProviderRequest, SendRefusal> {
    let (account, authorization) = account(credentials, Channel::Sms)?;
    Ok(ProviderRequest {
        method: http::Method::GET,
        url: format!(
            "{}/2010-04-01/Accounts/{}/Messages/{}.json",
            apis.twilio.trim_end_matches('/'),
            account.account_sid,
            sid.as_str()
        ),
        headers: vec![("authorization", authorization)],
        body: Vec::new(),
    })
}

/// The status a fetched message's record gives (`status`, `error_code`, at `date_updated`), or
/// `None` when it has none of the status machine's (still `queued`, `sending`…). An answer that
/// is not a message record is an error, in words for the log (never its content).
pub(crate) fn interpret_fetch(response: &ProviderResponse) -> Result<Option<StatusEvent>, String> {
    if response.status != 200 {
        return Err(format!("Twilio answered HTTP {}", response.status));
    }
    let body = response.json().ok_or("Twilio's answer is not JSON")?;
    let status = body["status"].as_str().ok_or("the message record has no status")?;
    let Some(status) = throughline_model::provider_errors::twilio_status(status) else {
        return Ok(None);
    };
    let at = body["date_updated"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
        .map(|t| t.to_utc())
        .ok_or("the message record has no date_updated")?;
    let error = body["error_code"]
        .as_i64()
        .filter(|_| status.is_failure())
        .map(|code| DeliveryError {
            code: code.to_string(),
            reason: throughline_model::provider_errors::twilio(code),
        });
    Ok(Some(StatusEvent {
        status,
        at,
        source: RECONCILIATION_SOURCE.into(),
        error,
    }))
}

/// The source of the statuses reconciliation reads from Twilio.
pub(crate) const RECONCILIATION_SOURCE: &str = "twilio_reconciliation";

/// Twilio's List Messages from `from` to `to` (`GET …/Messages.json?To=&From=&PageSize=50`, the
/// newest first): what reconciliation reads of a reply whose send got no answer, to learn
/// whether Twilio has it.
pub(crate) fn list(
    message: &OutboundMessage,
    credentials: &Credentials,
    apis: &ProviderApis,
) -> Result<ProviderRequest, SendRefusal> {
    let (account, authorization) = account(credentials, message.channel)?;
    let (to, from) = addresses(message)?;
    let size = LIST_PAGE.to_string();
    let query = form(&[
        ("To", to.as_str()),
        ("From", from.as_str()),
        ("PageSize", size.as_str()),
    ]);
    Ok(ProviderRequest {
        method: http::Method::GET,
        url: format!(
            "{}/2010-04-01/Accounts/{}/Messages.json?{}",
            apis.twilio.trim_end_matches('/'),
            account.account_sid,
            String::from_utf8_lossy(&query)
        ),
        headers: vec![("authorization", authorization)],
        body: Vec::new(),
    })
}

/// Messages per List Messages page.
pub(crate) const LIST_PAGE: usize = 50;

/// One message of a List Messages page: its sid, when Twilio created it, and its text (compared
/// in memory with the reply's, never logged).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub sid: ProviderMessageId,
    pub created_at: DateTime<chrono::Utc>,
    pub body: Option<String>,
}

/// The messages of a List Messages answer; an answer that is not a page is an error, in words
/// for the log (never its content).
pub(crate) fn interpret_list(response: &ProviderResponse) -> Result<Vec<Listed>, String> {
    if response.status != 200 {
        return Err(format!("Twilio answered HTTP {}", response.status));
    }
    let body = response.json().ok_or("Twilio's answer is not JSON")?;
    let messages = body["messages"].as_array().ok_or("the answer has no messages")?;
    Ok(messages
        .iter()
        .filter_map(|m| {
            Some(Listed {
                sid: ProviderMessageId::parse(m["sid"].as_str()?).ok()?,
                created_at: DateTime::parse_from_rfc2822(m["date_created"].as_str()?).ok()?.to_utc(),
                body: m["body"].as_str().map(str::to_owned),
            })
        })
        .collect())
}
