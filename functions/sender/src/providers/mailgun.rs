//! Mailgun's Messages API: `POST /v3/{domain}/messages`, multipart form, Basic auth `api:<key>`,
//! thread headers as `h:` fields; 200 `{"id": "<…@domain>", "message": "Queued. Thank you."}`,
//! errors `{"message": "…"}`.

use serde_json::Value;
use throughline_model::{OutboundMessage, SendRefusal};

use super::{mail_addresses, transient_status};
use crate::request::{basic_auth, multipart};
use crate::{Credentials, ProviderApis, ProviderRequest, ProviderResponse, SendOutcome};

pub(super) fn build(
    message: &OutboundMessage,
    credentials: &Credentials,
    apis: &ProviderApis,
) -> Result<ProviderRequest, SendRefusal> {
    let (from, to, domain) = mail_addresses(message)?;
    let account = credentials
        .mailgun
        .as_ref()
        .ok_or(SendRefusal::ChannelNotConfigured(message.channel))?;
    if !account.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        return Err(SendRefusal::ChannelNotConfigured(message.channel));
    }
    let threading = message.email.clone().unwrap_or_default();
    let mut fields: Vec<(&str, String)> = vec![
        ("from", from.to_string()),
        ("to", to.to_string()),
        ("subject", threading.subject.unwrap_or_default()),
        ("text", message.content.text().unwrap_or_default().to_owned()),
    ];
    if let Some(answered) = threading.in_reply_to {
        fields.push(("h:In-Reply-To", answered));
    }
    if !threading.references.is_empty() {
        fields.push(("h:References", threading.references.join(" ")));
    }
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (boundary, body) = multipart(&pairs);
    Ok(ProviderRequest {
        method: http::Method::POST,
        url: format!("{}/v3/{domain}/messages", apis.mailgun.trim_end_matches('/')),
        headers: vec![
            ("authorization", basic_auth("api", account.api_key.expose())),
            ("content-type", format!("multipart/form-data; boundary={boundary}")),
        ],
        body,
    })
}

pub(super) fn interpret(response: &ProviderResponse) -> SendOutcome {
    if (200..300).contains(&response.status) {
        let body = response.json().unwrap_or(Value::Null);
        // The Message-ID it will carry, as inbound mail ids are kept: without angle brackets.
        let id = body
            .get("id")
            .and_then(Value::as_str)
            .map(|id| id.trim().trim_matches(['<', '>']));
        return SendOutcome::sent_with("mailgun", id);
    }
    if let Some(transient) = transient_status("mailgun", response) {
        return transient;
    }
    let code = format!("mailgun:{}", response.status);
    match response.status {
        401 | 403 => SendOutcome::failed(
            code,
            "Mailgun refused the API key or domain: check the send credentials",
        ),
        _ => SendOutcome::failed(code, "Mailgun refused the message (e.g. an invalid address)"),
    }
}
