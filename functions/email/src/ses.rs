//! Amazon SES receiving events as pure functions: the SNS action (the notification carries the
//! raw mail) and the Lambda action that follows an S3 action (headers only; the raw mail is the
//! S3 object named by `mail.messageId`). No network.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use throughline_model::{EmailAddress, Provider};

use crate::mail::{Envelope, Verdict, Verdicts, normalize_address};

/// One mail SES received, as an event announced it.
#[derive(Debug, Clone, PartialEq)]
pub struct SesMail {
    /// SES's id for the mail: also the S3 object key (after the action's prefix).
    pub message_id: String,
    pub recipients: Vec<EmailAddress>,
    pub verdicts: Verdicts,
    pub timestamp: Option<DateTime<Utc>>,
    /// The raw mail when the notification carried it (SNS action).
    pub content: Option<Vec<u8>>,
}

/// Why an event is not a SES receipt event this function understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventProblem {
    #[error("event has no Records")]
    NoRecords,
    #[error("Records[{0}] is neither an SNS nor a SES record")]
    UnknownRecord(usize),
    #[error("Records[{index}]: {problem}")]
    Malformed { index: usize, problem: String },
}

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "notificationType")]
    notification_type: Option<String>,
    mail: Mail,
    receipt: Receipt,
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Mail {
    #[serde(rename = "messageId")]
    message_id: String,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Receipt {
    #[serde(default)]
    recipients: Vec<String>,
    spf_verdict: Option<Status>,
    dkim_verdict: Option<Status>,
    dmarc_verdict: Option<Status>,
    spam_verdict: Option<Status>,
    virus_verdict: Option<Status>,
    action: Option<Action>,
}

#[derive(Debug, Deserialize)]
struct Status {
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Action {
    #[serde(rename = "type")]
    kind: Option<String>,
    function_arn: Option<String>,
    encoding: Option<String>,
}

/// Who may deliver mail to the function. A field left unset accepts any (the deployed function
/// always has the topic: `from_env` requires it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailSources {
    /// `INBOUND_MAIL_TOPIC_ARN`: the SNS topic SES's SNS action publishes to. SNS sets a
    /// record's `TopicArn` itself, so a notification from any other topic (one this function
    /// was subscribed to by mistake, or one others may publish to) is refused: its content and
    /// verdicts would be whatever its publisher wrote.
    pub topic_arn: Option<String>,
    /// `SES_RECEIPT_FUNCTION_ARN`: the function ARN the receipt rule's Lambda action names.
    /// A SES record whose `receipt.action` is not that Lambda action is refused. (The event
    /// names no receipt rule, so the rule itself can only be pinned by the invoke permission's
    /// `SourceArn`.)
    pub receipt_function_arn: Option<String>,
    /// `OUTBOUND_MAIL_EVENTS_TOPIC_ARN`: the SNS topic the replies' configuration set publishes
    /// SES's events about them to (sends, deliveries, bounces, complaints); unset: none taken.
    pub events_topic_arn: Option<String>,
}

/// A record skipped because it did not come from a configured source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// An SNS record from a topic other than `MailSources::topic_arn`.
    UnexpectedTopic { index: usize },
    /// A SES record whose action is not the Lambda action `MailSources::receipt_function_arn`.
    UnexpectedReceiptAction { index: usize },
    /// An event about a reply that does not parse: a retry would not change it.
    MalformedEvent { index: usize },
}

impl Refused {
    /// The log's and the metric's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::UnexpectedTopic { .. } => "unexpected_topic",
            Refused::UnexpectedReceiptAction { .. } => "unexpected_receipt_action",
            Refused::MalformedEvent { .. } => "malformed_event",
        }
    }
}

/// What an event announced: the mails to take, and the records refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Announced {
    pub mails: Vec<SesMail>,
    /// What SES reported about replies (from `MailSources::events_topic_arn`).
    pub statuses: Vec<throughline_model::StatusReport>,
    pub refused: Vec<Refused>,
}

/// The mails an SNS or SES event announces. Notifications of other types (SES's setup
/// notification) yield nothing; records not from `sources` are refused, not errors (a retry
/// would not change where they came from).
pub fn mails_in(event: &Value, sources: &MailSources) -> Result<Announced, EventProblem> {
    let records = event["Records"].as_array().ok_or(EventProblem::NoRecords)?;
    let mut announced = Announced::default();
    for (index, record) in records.iter().enumerate() {
        let malformed = |problem: String| EventProblem::Malformed { index, problem };
        let sns = record["Sns"]["Message"].as_str();
        let topic = record["Sns"]["TopicArn"].as_str();
        if let (Some(message), Some(events)) = (sns, &sources.events_topic_arn)
            && topic == Some(events.as_str())
        {
            // `arn:aws:sns:<region>:<account>:<name>`: the events are of that region's SES.
            let region = events.split(':').nth(3).unwrap_or_default();
            match serde_json::from_str(message)
                .map_err(|e| e.to_string())
                .and_then(|m| crate::events::ses_event(&m, region))
            {
                Ok(reports) => announced.statuses.extend(reports),
                Err(problem) => {
                    tracing::warn!(index, problem, "SES event about a reply does not parse");
                    announced.refused.push(Refused::MalformedEvent { index });
                }
            }
            continue;
        }
        // Before the message is read: a foreign topic's message is not parsed at all.
        if sns.is_some()
            && let Some(expected) = &sources.topic_arn
            && record["Sns"]["TopicArn"].as_str() != Some(expected.as_str())
        {
            announced.refused.push(Refused::UnexpectedTopic { index });
            continue;
        }
        let notification: Notification = if let Some(message) = sns {
            let value: Value =
                serde_json::from_str(message).map_err(|e| malformed(format!("Sns.Message is not JSON: {e}")))?;
            if value["notificationType"].as_str() != Some("Received") {
                continue;
            }
            serde_json::from_value(value).map_err(|e| malformed(format!("Sns.Message: {e}")))?
        } else if record["ses"].is_object() {
            serde_json::from_value(record["ses"].clone()).map_err(|e| malformed(format!("ses: {e}")))?
        } else {
            return Err(EventProblem::UnknownRecord(index));
        };
        if notification
            .notification_type
            .as_deref()
            .is_some_and(|t| t != "Received")
        {
            continue;
        }
        if sns.is_none()
            && let Some(expected) = &sources.receipt_function_arn
        {
            let action = notification.receipt.action.as_ref();
            let lambda = action.and_then(|a| a.kind.as_deref()) == Some("Lambda");
            if !lambda || action.and_then(|a| a.function_arn.as_deref()) != Some(expected.as_str()) {
                announced.refused.push(Refused::UnexpectedReceiptAction { index });
                continue;
            }
        }
        let content = match notification.content {
            None => None,
            Some(content) => {
                let base64 = notification
                    .receipt
                    .action
                    .as_ref()
                    .and_then(|a| a.encoding.as_deref())
                    .is_some_and(|e| e.eq_ignore_ascii_case("BASE64"));
                Some(if base64 {
                    BASE64
                        .decode(content.trim())
                        .map_err(|_| malformed("content is not base64".into()))?
                } else {
                    content.into_bytes()
                })
            }
        };
        let receipt = &notification.receipt;
        let verdict = |s: &Option<Status>| s.as_ref().and_then(|s| s.status.as_deref()).and_then(Verdict::parse);
        announced.mails.push(SesMail {
            message_id: notification.mail.message_id.clone(),
            recipients: receipt.recipients.iter().filter_map(|r| normalize_address(r)).collect(),
            verdicts: Verdicts {
                spf: verdict(&receipt.spf_verdict),
                dkim: verdict(&receipt.dkim_verdict),
                dmarc: verdict(&receipt.dmarc_verdict),
                spam: verdict(&receipt.spam_verdict),
                virus: verdict(&receipt.virus_verdict),
            },
            timestamp: notification.mail.timestamp,
            content,
        });
    }
    Ok(announced)
}

impl SesMail {
    /// The envelope for `normalize`; `None` when SES named no recipient it could parse.
    pub fn envelope(&self, received_at: DateTime<Utc>) -> Option<Envelope> {
        Some(Envelope {
            provider: Provider::Ses,
            mailbox: self.recipients.first()?.clone(),
            delivery_id: self.message_id.clone(),
            verdicts: self.verdicts,
            stored: None,
            received_at: self.timestamp.unwrap_or(received_at),
        })
    }
}
