//! What the mail providers report about the replies they sent, as pure functions: SES event
//! publishing (a configuration set's SNS notifications: `Send`, `Delivery`, `Bounce`,
//! `Complaint`, `DeliveryDelay`, `Reject`) and Mailgun's event webhooks (`delivered`,
//! `failed`, `complained`, `rejected`). Each becomes a status report for the reply (by the id
//! the sender made an alias of it) and, for a hard bounce or a complaint, a fact about the
//! recipient's address. No network, no clock.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use throughline_model::{
    DeliveryError, DeliveryStatus, EmailAddress, Handle, InteractionId, Provider, ProviderMessageId, RecipientFact,
    RecipientState, StatusEvent, StatusReport,
};

use crate::mail::normalize_address;

/// The source of the statuses SES event publishing reports.
pub const SES_SOURCE: &str = "ses_event";
/// The source of the statuses Mailgun's event webhooks report.
pub const MAILGUN_SOURCE: &str = "mailgun_event";

/// The address in a header value (`Acme Support <support@acme.example>` or a bare address).
fn address_in(value: &str) -> Option<EmailAddress> {
    let inner = match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value,
    };
    normalize_address(inner)
}

fn mailbox(address: EmailAddress) -> Handle {
    Handle::Email { address }
}

/// One report per recipient fact (a bounce names each address), or one without.
fn reports(id: InteractionId, event: StatusEvent, facts: impl IntoIterator<Item = RecipientFact>) -> Vec<StatusReport> {
    let mut reports: Vec<StatusReport> = facts
        .into_iter()
        .map(|fact| StatusReport {
            interaction_id: id.clone(),
            event: event.clone(),
            recipient: Some(fact),
        })
        .collect();
    if reports.is_empty() {
        reports.push(StatusReport {
            interaction_id: id,
            event,
            recipient: None,
        });
    }
    reports
}

fn error(code: String, reason: impl Into<String>) -> Option<DeliveryError> {
    Some(DeliveryError {
        code,
        reason: reason.into(),
    })
}

/// The addresses under `list` (`bouncedRecipients`, `complainedRecipients`), as facts.
fn facts(list: &Value, state: RecipientState) -> Vec<RecipientFact> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["emailAddress"].as_str().and_then(address_in))
        .map(|address| RecipientFact {
            handle: mailbox(address),
            state,
        })
        .collect()
}

fn rfc3339(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?).ok().map(|t| t.to_utc())
}

/// The reports of one SES event publishing notification (an SNS message's JSON), sent through
/// `region`'s SES (the id SES gives the wire `Message-ID`, `<MessageId>@<region>.amazonses.com`,
/// is the provider id the sender recorded). `Ok(empty)`: an event type with no state here
/// (`Open`, `Click`, `Rendering Failure`, `Subscription`).
pub fn ses_event(message: &Value, region: &str) -> Result<Vec<StatusReport>, String> {
    let kind = message["eventType"]
        .as_str()
        .or_else(|| message["notificationType"].as_str())
        .ok_or("eventType is missing")?;
    let mail = &message["mail"];
    let message_id = mail["messageId"].as_str().ok_or("mail.messageId is missing")?;
    let provider_id = ProviderMessageId::parse(&format!("{message_id}@{region}.amazonses.com"))
        .map_err(|_| "mail.messageId is not an id".to_owned())?;
    let from = mail["source"]
        .as_str()
        .and_then(address_in)
        .ok_or("mail.source is not an email address")?;
    let id = InteractionId::derive(Provider::Ses, &mailbox(from), &provider_id);
    let sent_at = rfc3339(&mail["timestamp"]);
    let at = |detail: &Value| rfc3339(&detail["timestamp"]).or(sent_at).ok_or("timestamp is missing");
    let event = |status, at, error| StatusEvent {
        status,
        at,
        source: SES_SOURCE.into(),
        error,
    };
    Ok(match kind {
        "Send" => reports(id, event(DeliveryStatus::Sent, at(&Value::Null)?, None), []),
        "Delivery" => {
            let delivery = &message["delivery"];
            reports(id, event(DeliveryStatus::Delivered, at(delivery)?, None), [])
        }
        "Bounce" => {
            let bounce = &message["bounce"];
            let kind = bounce["bounceType"].as_str().unwrap_or("Undetermined");
            let sub = bounce["bounceSubType"].as_str().unwrap_or("General");
            let code = format!("bounce:{kind}/{sub}");
            if kind == "Permanent" {
                let reason = match sub {
                    "NoEmail" => "the address does not exist (hard bounce)",
                    "Suppressed" | "OnAccountSuppressionList" => {
                        "SES did not send it: the address is on the suppression list after earlier bounces"
                    }
                    "UnsupportedRecipient" => "the receiving server does not take mail for this address",
                    _ => "the receiving server refused it for good (hard bounce)",
                };
                reports(
                    id,
                    event(DeliveryStatus::Undelivered, at(bounce)?, error(code, reason)),
                    facts(&bounce["bouncedRecipients"], RecipientState::Undeliverable),
                )
            } else {
                // A soft bounce: SES gave up on this try; kept in the history, not a failure.
                let reason = match sub {
                    "MailboxFull" => "the recipient's mailbox is full (soft bounce)",
                    "MessageTooLarge" => "the receiving server found it too large (soft bounce)",
                    _ => "the receiving server refused it for now (soft bounce)",
                };
                reports(id, event(DeliveryStatus::Sent, at(bounce)?, error(code, reason)), [])
            }
        }
        "Complaint" => {
            let complaint = &message["complaint"];
            // It arrived: the recipient reported it as spam.
            reports(
                id,
                event(
                    DeliveryStatus::Delivered,
                    at(complaint)?,
                    error("complaint".into(), "the recipient marked it as spam"),
                ),
                facts(&complaint["complainedRecipients"], RecipientState::OptedOut),
            )
        }
        "DeliveryDelay" => {
            let delay = &message["deliveryDelay"];
            let kind = delay["delayType"].as_str().unwrap_or("General");
            reports(
                id,
                event(
                    DeliveryStatus::Sent,
                    at(delay)?,
                    error(
                        format!("delay:{kind}"),
                        "delivery is delayed; SES keeps trying until the message expires",
                    ),
                ),
                [],
            )
        }
        "Reject" => reports(
            id,
            event(
                DeliveryStatus::Failed,
                at(&Value::Null)?,
                error("reject".into(), "SES refused to send it (it found a virus in it)"),
            ),
            [],
        ),
        _ => Vec::new(),
    })
}

/// The reports of one Mailgun event (`event-data`); `Ok(empty)`: an event with no state here
/// (`accepted`, `opened`, `clicked`, `unsubscribed`, `stored`).
pub fn mailgun_event(data: &Value) -> Result<Vec<StatusReport>, String> {
    let kind = data["event"].as_str().ok_or("event-data.event is missing")?;
    if !matches!(kind, "delivered" | "failed" | "complained" | "rejected") {
        return Ok(Vec::new());
    }
    let headers = &data["message"]["headers"];
    let message_id = headers["message-id"]
        .as_str()
        .map(|id| id.trim().trim_matches(['<', '>']))
        .ok_or("event-data.message.headers.message-id is missing")?;
    let provider_id =
        ProviderMessageId::parse(message_id).map_err(|_| "event-data.message.headers.message-id is not an id")?;
    let from = headers["from"]
        .as_str()
        .and_then(address_in)
        .or_else(|| data["envelope"]["sender"].as_str().and_then(address_in))
        .ok_or("event-data.message.headers.from is not an email address")?;
    let id = InteractionId::derive(Provider::Mailgun, &mailbox(from), &provider_id);
    let at = data["timestamp"]
        .as_f64()
        .and_then(|t| Utc.timestamp_millis_opt((t * 1000.0) as i64).single())
        .ok_or("event-data.timestamp is not unix seconds")?;
    let recipient = data["recipient"].as_str().and_then(address_in);
    let fact = |state| {
        recipient.clone().map(|address| RecipientFact {
            handle: mailbox(address),
            state,
        })
    };
    let event = |status, error| StatusEvent {
        status,
        at,
        source: MAILGUN_SOURCE.into(),
        error,
    };
    let smtp = data["delivery-status"]["code"].as_i64();
    Ok(match kind {
        "delivered" => reports(id, event(DeliveryStatus::Delivered, None), []),
        "complained" => reports(
            id,
            event(
                DeliveryStatus::Delivered,
                error("complaint".into(), "the recipient marked it as spam"),
            ),
            fact(RecipientState::OptedOut),
        ),
        "rejected" => reports(
            id,
            event(
                DeliveryStatus::Failed,
                error("mailgun:rejected".into(), "Mailgun refused to send it"),
            ),
            [],
        ),
        _ => {
            let reason = data["reason"].as_str().unwrap_or("generic");
            let code = match smtp {
                Some(smtp) => format!("mailgun:{reason}/{smtp}"),
                None => format!("mailgun:{reason}"),
            };
            if data["severity"].as_str() == Some("permanent") {
                let (words, bounced) = match reason {
                    "bounce" => ("the receiving server refused it for good (hard bounce)", true),
                    "suppress-bounce" => ("Mailgun did not send it: the address bounced before", true),
                    "suppress-complaint" => ("Mailgun did not send it: the recipient complained before", false),
                    "suppress-unsubscribe" => ("Mailgun did not send it: the recipient unsubscribed", false),
                    _ => ("Mailgun could not deliver it", false),
                };
                let facts = if bounced {
                    fact(RecipientState::Undeliverable)
                } else {
                    None
                };
                reports(id, event(DeliveryStatus::Undelivered, error(code, words)), facts)
            } else {
                reports(
                    id,
                    event(
                        DeliveryStatus::Sent,
                        error(code, "the receiving server refused it for now; Mailgun tries again"),
                    ),
                    [],
                )
            }
        }
    })
}
