//! Amazon SES v2 `SendEmail` with raw content: the reply's MIME built here (`mail-builder`), sent
//! through the SDK by the shell. SES replaces the Message-ID with its own,
//! `<MessageId@<region>.amazonses.com>`: that is the id the customer's answer names in
//! `In-Reply-To`, so it is the one recorded. Errors are SES's codes (`MessageRejected`,
//! `MailFromDomainNotVerifiedException`, `TooManyRequestsException`…).

use chrono::{DateTime, Utc};
use mail_builder::MessageBuilder;
use throughline_model::{InteractionId, OutboundMessage, SendRefusal};

use super::mail_addresses;
use crate::{Credentials, SendOutcome};

/// One raw send: the envelope and the MIME message.
#[derive(Clone, PartialEq, Eq)]
pub struct SesEmail {
    /// The mailbox it goes out from (a verified identity, or in a verified domain).
    pub from: String,
    /// The customer's address.
    pub to: String,
    /// The whole MIME message.
    pub raw: Vec<u8>,
    /// The configuration set to send with, if the document names one.
    pub configuration_set: Option<String>,
}

impl std::fmt::Debug for SesEmail {
    // Addresses and the message are the customer's: only the size is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SesEmail").field("raw_bytes", &self.raw.len()).finish()
    }
}

fn without_brackets(id: &str) -> &str {
    id.trim().trim_matches(['<', '>'])
}

pub(super) fn build(
    id: &InteractionId,
    message: &OutboundMessage,
    credentials: &Credentials,
    now: DateTime<Utc>,
) -> Result<SesEmail, SendRefusal> {
    let (from, to, domain) = mail_addresses(message)?;
    let sending = credentials
        .ses
        .as_ref()
        .ok_or(SendRefusal::ChannelNotConfigured(message.channel))?;
    if !sending
        .identities
        .iter()
        .any(|i| i.eq_ignore_ascii_case(domain) || i.eq_ignore_ascii_case(from.as_str()))
    {
        return Err(SendRefusal::ChannelNotConfigured(message.channel));
    }
    let threading = message.email.clone().unwrap_or_default();
    let mut mime = MessageBuilder::new()
        .from(from.as_str())
        .to(to.as_str())
        .subject(threading.subject.unwrap_or_default())
        .date(now.timestamp())
        // Replaced by SES; set so that nothing depends on the host's name.
        .message_id(format!("{}@throughline.invalid", id.as_str()))
        .text_body(message.content.text().unwrap_or_default().to_owned());
    if let Some(answered) = &threading.in_reply_to {
        mime = mime.in_reply_to(without_brackets(answered).to_owned());
    }
    if !threading.references.is_empty() {
        let references: Vec<String> = threading
            .references
            .iter()
            .map(|r| without_brackets(r).to_owned())
            .collect();
        mime = mime.references(references);
    }
    let raw = mime
        .write_to_vec()
        .map_err(|_| SendRefusal::UnsupportedContent("the email could not be built"))?;
    Ok(SesEmail {
        from: from.to_string(),
        to: to.to_string(),
        raw,
        configuration_set: sending.configuration_set.clone(),
    })
}

/// What SES answered, as the shell reads it from the SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SesAnswer {
    /// Accepted, with SES's message id.
    Accepted {
        /// `MessageId` of the answer.
        message_id: String,
    },
    /// An error answer: its code and HTTP status.
    Refused {
        /// SES's error code (`MessageRejected`).
        code: String,
        /// Its HTTP status.
        status: u16,
    },
    /// No request reached SES (no connection): safe to try again.
    NotSent(String),
    /// Sent, and no answer in time (or none that could be read): it may have been sent.
    NoAnswer(String),
}

/// What SES's answer means. `region` makes SES's id the Message-ID the customer's mail
/// program sees (`<MessageId@<region>.amazonses.com>`, kept without angle brackets).
pub fn interpret(answer: &SesAnswer, region: &str) -> SendOutcome {
    match answer {
        SesAnswer::Accepted { message_id } => {
            SendOutcome::sent_with("ses", Some(&format!("{message_id}@{region}.amazonses.com")))
        }
        SesAnswer::Refused { code, status } => match code.as_str() {
            "TooManyRequestsException" | "LimitExceededException" | "Throttling" | "ThrottlingException" => {
                SendOutcome::transient(
                    None,
                    code.clone(),
                    "SES is rate limiting sends; the message will be tried again",
                )
            }
            _ if *status >= 500 => SendOutcome::transient(
                None,
                code.clone(),
                "SES could not take it now; the message will be tried again",
            ),
            "MessageRejected" => SendOutcome::failed(
                code.clone(),
                "SES rejected the message (the sender may not be verified, or the message is not valid)",
            ),
            "MailFromDomainNotVerifiedException" => {
                SendOutcome::failed(code.clone(), "the mailbox's domain is not verified in SES")
            }
            "AccountSuspendedException" | "SendingPausedException" => {
                SendOutcome::failed(code.clone(), "sending is paused or suspended for this SES account")
            }
            _ => SendOutcome::failed(code.clone(), format!("SES refused the message ({code})")),
        },
        SesAnswer::NotSent(why) => {
            SendOutcome::transient(None, "network", format!("{why}; the message will be tried again"))
        }
        SesAnswer::NoAnswer(why) => SendOutcome::Unknown {
            reason: format!("{why}: SES may have sent it, so it is not sent again by itself"),
        },
    }
}
