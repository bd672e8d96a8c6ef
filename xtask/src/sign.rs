//! `cargo xtask sign FILE...`: (re)computes the provider signature of sample events with the
//! documented test secrets, exactly as the provider would: `X-Twilio-Signature` for files under
//! `events/sms/` (over the event's public URL and parameters), `x-twitter-webhooks-signature`
//! for files under `events/twitter/` (over the body). Files whose name contains
//! `bad-signature` are left wrong on purpose.

use std::path::Path;

use throughline_sms::signature::{Signed, compute};

use crate::Result;
use crate::lambda::HttpCall;
use crate::stack::{TEST_TWILIO_AUTH_TOKEN, TEST_X_CONSUMER_SECRET};

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
        let (header, signature) = if file.contains("twitter") {
            if event["body"].is_null() {
                println!("{file}: no body to sign");
                continue;
            }
            let body = HttpCall::from_event(&event)?.body;
            (
                "x-twitter-webhooks-signature",
                throughline_twitter::webhook::sign(TEST_X_CONSUMER_SECRET, &body),
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
