//! Outbound: an agent's reply as it travels to a provider, and the channel rules that decide,
//! before anything is queued, whether it may go at all.
//!
//! Everything here is pure. The timeline API checks the rules (`check_text`, `check_window`,
//! `OptKeyword`) and queues a `SendJob`; the sender turns the job into one provider request.

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::ProviderMessageId;
use crate::{Channel, CustomerId, Handle, InteractionId, Provider, WireError};

/// Version of the send job's wire format (`SendJob::schema_version`).
pub const SEND_JOB_VERSION: u32 = 1;

/// A file sent with a reply, by a URL the provider fetches it from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutboundAttachment {
    /// A public `https` URL the provider downloads the file from.
    pub url: String,
    /// The MIME type (`image/png`), which decides how the channel shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The name the customer sees for a document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

impl OutboundAttachment {
    /// Shown as a picture (rather than offered as a file) where the channel can.
    pub fn is_image(&self) -> bool {
        self.content_type.as_deref().is_some_and(|t| t.starts_with("image/"))
    }
}

/// A WhatsApp message template, the only thing WhatsApp lets a business send outside the
/// customer service window. For the Cloud API `name` is the template's name; through Twilio it
/// is the Content SID (`HX…`) and `components` the template's variables (`{"1": "Ada"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WhatsappTemplate {
    /// The approved template's name (Cloud API) or Content SID (Twilio).
    pub name: String,
    /// Its language code (`en_US`).
    pub language: String,
    /// The template's components (Cloud API) or variables (Twilio), passed through as given.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub components: serde_json::Value,
}

wire_enum! {
    /// A Messenger/Instagram message tag: permission to send outside the 24-hour window.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum MessengerTag {
        /// A human agent answering within 7 days of the customer's message (needs Meta's
        /// Human Agent permission; enabled per deployment).
        HumanAgent = "HUMAN_AGENT",
    }
}

/// What a reply says: free text (with files), or a WhatsApp template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundContent {
    /// Text, files, or both (at least one of them).
    Message {
        /// The text, as plain text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// The files, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<OutboundAttachment>,
    },
    /// A WhatsApp template.
    WhatsappTemplate(WhatsappTemplate),
}

impl OutboundContent {
    /// The text, if the content has any.
    pub fn text(&self) -> Option<&str> {
        match self {
            OutboundContent::Message { text, .. } => text.as_deref(),
            OutboundContent::WhatsappTemplate(_) => None,
        }
    }

    /// The files, if any.
    pub fn attachments(&self) -> &[OutboundAttachment] {
        match self {
            OutboundContent::Message { attachments, .. } => attachments,
            OutboundContent::WhatsappTemplate(_) => &[],
        }
    }
}

/// An email reply's threading: what makes the customer's mail program show it in their thread,
/// and their answer come back into the same conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EmailThreading {
    /// The subject (`Re: ` + the customer's subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The `Message-ID` of the customer's mail answered, angle brackets included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// The thread's `References`, oldest first, the answered mail's id last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

/// One reply, as the sender sends it: who from, who to, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutboundMessage {
    /// The channel it goes out on.
    pub channel: Channel,
    /// The provider that sends it.
    pub provider: Provider,
    /// The company's number, mailbox, page, account, bot or site it is sent from: the one the
    /// customer wrote to.
    pub from: Handle,
    /// The customer's handle it is sent to.
    pub to: Handle,
    /// What it says.
    pub content: OutboundContent,
    /// The provider's id of the customer's message it answers (a Telegram reply, a WhatsApp
    /// context), when it answers one on the same channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ProviderMessageId>,
    /// Email only: subject and thread headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailThreading>,
    /// Messenger/Instagram only: the tag it is sent with outside the standard window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messenger_tag: Option<MessengerTag>,
    /// A satisfaction survey: its id (`sv_…`). A chat site's backend gets it with the message,
    /// so its widget may show its own rating control and answer with a `ratings` delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey: Option<String>,
}

/// The OutboundQueue's message body: send attempt `attempt` of the outbound interaction
/// `interaction_id`, whose entry is already on `customer_id`'s timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SendJob {
    /// `SEND_JOB_VERSION`; a sender refuses others.
    pub schema_version: u32,
    /// The outbound interaction.
    pub interaction_id: InteractionId,
    /// The customer whose timeline holds it.
    pub customer_id: CustomerId,
    /// Which attempt this is: 1, then one more for each retry an agent asks for. The sender
    /// calls the provider at most once per attempt.
    pub attempt: u32,
    /// What to send.
    pub message: OutboundMessage,
}

impl SendJob {
    /// Parses an SQS body, refusing versions this code does not understand.
    pub fn from_json(body: &str) -> Result<Self, WireError> {
        let job: SendJob = serde_json::from_str(body).map_err(WireError::from_serde)?;
        if job.schema_version != SEND_JOB_VERSION {
            return Err(WireError::UnsupportedVersion(job.schema_version));
        }
        Ok(job)
    }

    /// The SQS body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a SendJob always serializes")
    }
}

/// Why a reply may not go out: refused before anything is queued (the API's `422` codes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendRefusal {
    /// The channel's reply window is closed and the reply is not a kind it allows then.
    #[error("the {channel} reply window closed at {closed_at}; {remedy}")]
    WindowClosed {
        /// The channel.
        channel: Channel,
        /// When it closed (or the start of time: the customer never wrote on this endpoint).
        closed_at: DateTime<Utc>,
        /// What would be allowed instead.
        remedy: &'static str,
    },
    /// The customer asked this number to stop sending (SMS `STOP`) and has not restarted.
    #[error("the recipient opted out of messages from this sender")]
    RecipientOptedOut,
    /// The recipient's address bounced for good, and no mail came from it since.
    #[error("the recipient's address bounced (it does not take mail); it is tried again after a newer mail from it")]
    RecipientUndeliverable,
    /// No send credentials for the business endpoint.
    #[error("no send credentials are configured for this {0} endpoint")]
    ChannelNotConfigured(Channel),
    /// The channel cannot carry this content.
    #[error("{0}")]
    UnsupportedContent(&'static str),
    /// The text is longer than the channel takes.
    #[error("the text has {length} characters; {channel} takes at most {limit}")]
    TextTooLong {
        /// The channel.
        channel: Channel,
        /// Its limit, in characters.
        limit: usize,
        /// The text's length, in characters.
        length: usize,
    },
}

impl SendRefusal {
    /// The stable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            SendRefusal::WindowClosed { .. } => "window_closed",
            SendRefusal::RecipientOptedOut => "recipient_opted_out",
            SendRefusal::RecipientUndeliverable => "recipient_undeliverable",
            SendRefusal::ChannelNotConfigured(_) => "channel_not_configured",
            SendRefusal::UnsupportedContent(_) => "unsupported_content",
            SendRefusal::TextTooLong { .. } => "text_too_long",
        }
    }
}

/// The longest text the channel takes, in characters (Unicode scalar values), if it has a limit
/// we know: Twilio's `Body` 1,600; WhatsApp 4,096; Messenger 2,000; Instagram 1,000; Telegram
/// 4,096; an X DM 10,000. Email and the company's own chat have none.
pub fn text_limit(channel: Channel) -> Option<usize> {
    match channel {
        Channel::Sms => Some(1_600),
        Channel::Whatsapp => Some(4_096),
        Channel::Messenger => Some(2_000),
        Channel::Instagram => Some(1_000),
        Channel::Telegram => Some(4_096),
        Channel::X => Some(10_000),
        Channel::Email | Channel::Chat => None,
    }
}

/// Checks what a reply carries against what `channel` through `provider` can send in one
/// message: some text or a file, at most one file where the channel sends one per message, no
/// files where sending them needs an upload first, templates only on WhatsApp, the text limit.
pub fn check_content(channel: Channel, provider: Provider, content: &OutboundContent) -> Result<(), SendRefusal> {
    use SendRefusal::UnsupportedContent;
    let (text, attachments) = match content {
        OutboundContent::WhatsappTemplate(_) if channel == Channel::Whatsapp => return Ok(()),
        OutboundContent::WhatsappTemplate(_) => {
            return Err(UnsupportedContent("whatsapp_template is only for WhatsApp"));
        }
        OutboundContent::Message { text, attachments } => (text.as_deref(), attachments),
    };
    if text.is_none_or(|t| t.trim().is_empty()) && attachments.is_empty() {
        return Err(UnsupportedContent("a message needs text or an attachment"));
    }
    if attachments.iter().any(|a| !a.url.starts_with("https://")) {
        return Err(UnsupportedContent("attachment urls must be https"));
    }
    let most_files = match (channel, provider) {
        // MMS takes up to 10 media URLs; WhatsApp through Twilio one.
        (Channel::Sms, Provider::Twilio) => 10,
        (Channel::Whatsapp | Channel::Telegram | Channel::Chat, _) => 1,
        // A Messenger/Instagram message is text or one attachment, never both.
        (Channel::Messenger | Channel::Instagram, _) if text.is_some() => 0,
        (Channel::Messenger | Channel::Instagram, _) => 1,
        // X and Mailgun take files only as uploads made before the send.
        _ => 0,
    };
    if attachments.len() > most_files {
        return Err(UnsupportedContent(match most_files {
            0 => "this channel cannot send attachments with this message (send text and files separately)",
            _ => "too many attachments for one message on this channel",
        }));
    }
    if let (Some(text), Some(limit)) = (text, text_limit(channel)) {
        let length = text.chars().count();
        if length > limit {
            return Err(SendRefusal::TextTooLong { channel, limit, length });
        }
    }
    Ok(())
}

/// How a reply may go out, given the window: as it is, or only as what the channel allows
/// outside it (which the caller already chose: a template, a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowDecision {
    /// The channel has no window, or it is open.
    Open,
    /// The window is closed, and the reply is a kind allowed then (a WhatsApp template; a
    /// Messenger message tagged `HUMAN_AGENT` within 7 days).
    AllowedOutside,
}

/// Meta's customer service window: 24 hours from the customer's last message.
pub const SERVICE_WINDOW: Duration = Duration::hours(24);
/// How long after the customer's last message a `HUMAN_AGENT`-tagged reply may go.
pub const HUMAN_AGENT_WINDOW: Duration = Duration::days(7);

/// The reply window rule. WhatsApp (Cloud API or Twilio): free-form only within 24 hours of the
/// customer's last message to that number, templates any time. Messenger and Instagram: within
/// 24 hours, or within 7 days with the `HUMAN_AGENT` tag where the deployment enabled it.
/// Other channels have no window. `last_inbound` is the customer's last message to the same
/// business endpoint (`None`: never).
pub fn check_window(
    message: &OutboundMessage,
    last_inbound: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    human_agent_enabled: bool,
) -> Result<WindowDecision, SendRefusal> {
    let since = |window: Duration| last_inbound.is_some_and(|at| now - at <= window);
    let closed_at = last_inbound.map_or(DateTime::<Utc>::UNIX_EPOCH, |at| at + SERVICE_WINDOW);
    match message.channel {
        Channel::Whatsapp => match (&message.content, since(SERVICE_WINDOW)) {
            (_, true) => Ok(WindowDecision::Open),
            (OutboundContent::WhatsappTemplate(_), false) => Ok(WindowDecision::AllowedOutside),
            _ => Err(SendRefusal::WindowClosed {
                channel: message.channel,
                closed_at,
                remedy: "send an approved whatsapp_template instead",
            }),
        },
        Channel::Messenger | Channel::Instagram => {
            let tagged = message.messenger_tag == Some(MessengerTag::HumanAgent);
            if since(SERVICE_WINDOW) {
                Ok(WindowDecision::Open)
            } else if tagged && human_agent_enabled && since(HUMAN_AGENT_WINDOW) {
                Ok(WindowDecision::AllowedOutside)
            } else {
                Err(SendRefusal::WindowClosed {
                    channel: message.channel,
                    closed_at,
                    remedy: if human_agent_enabled {
                        "within 7 days of the customer's message, tag it messenger_tag HUMAN_AGENT"
                    } else {
                        "wait for the customer to write again"
                    },
                })
            }
        }
        _ => Ok(WindowDecision::Open),
    }
}

/// An SMS keyword that changes whether a number may be texted: the carriers' and Twilio's
/// standard opt-out and opt-in words, matched as the whole message (trimmed, any case), as
/// Twilio matches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKeyword {
    /// `STOP`, `STOPALL`, `UNSUBSCRIBE`, `CANCEL`, `END`, `QUIT`.
    OptOut,
    /// `START`, `UNSTOP`, `YES`.
    OptIn,
}

impl OptKeyword {
    /// The keyword `text` is, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        let word = text.trim().trim_end_matches(['.', '!']).to_ascii_uppercase();
        match word.as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Some(OptKeyword::OptOut),
            "START" | "UNSTOP" | "YES" => Some(OptKeyword::OptIn),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{E164, PlatformUserId};
    use chrono::TimeZone;

    fn at(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 9, 12, 0, 0).unwrap() + Duration::hours(hours)
    }

    fn message(channel: Channel, content: OutboundContent) -> OutboundMessage {
        let phone = |n: &str| Handle::Phone {
            number: E164::parse(n).unwrap(),
        };
        let (from, to) = match channel {
            Channel::Messenger | Channel::Instagram => (
                Handle::Platform {
                    platform: crate::Platform::Messenger,
                    scope: None,
                    id: PlatformUserId::parse("1234").unwrap(),
                },
                Handle::Platform {
                    platform: crate::Platform::Messenger,
                    scope: Some(PlatformUserId::parse("1234").unwrap()),
                    id: PlatformUserId::parse("5678").unwrap(),
                },
            ),
            _ => (phone("+14155550199"), phone("+14155550100")),
        };
        OutboundMessage {
            channel,
            provider: Provider::Meta,
            from,
            to,
            content,
            reply_to: None,
            email: None,
            messenger_tag: None,
            survey: None,
        }
    }

    fn text(t: &str) -> OutboundContent {
        OutboundContent::Message {
            text: Some(t.to_owned()),
            attachments: vec![],
        }
    }

    fn template() -> OutboundContent {
        OutboundContent::WhatsappTemplate(WhatsappTemplate {
            name: "order_update".into(),
            language: "en_US".into(),
            components: serde_json::Value::Null,
        })
    }

    #[test]
    fn whatsapp_free_text_needs_the_24_hour_window_and_a_template_does_not() {
        let free = message(Channel::Whatsapp, text("hi"));
        assert_eq!(
            check_window(&free, Some(at(0)), at(24), false),
            Ok(WindowDecision::Open)
        );
        let refused = check_window(&free, Some(at(0)), at(25), false).unwrap_err();
        assert_eq!(refused.code(), "window_closed");
        assert!(matches!(refused, SendRefusal::WindowClosed { closed_at, .. } if closed_at == at(24)));
        assert_eq!(
            check_window(&free, None, at(0), false).unwrap_err().code(),
            "window_closed"
        );
        let tpl = message(Channel::Whatsapp, template());
        assert_eq!(
            check_window(&tpl, Some(at(0)), at(25), false),
            Ok(WindowDecision::AllowedOutside)
        );
        assert_eq!(
            check_window(&tpl, None, at(0), false),
            Ok(WindowDecision::AllowedOutside)
        );
    }

    #[test]
    fn messenger_human_agent_tag_reaches_7_days_only_when_enabled() {
        let mut tagged = message(Channel::Messenger, text("hi"));
        tagged.messenger_tag = Some(MessengerTag::HumanAgent);
        assert_eq!(
            check_window(&tagged, Some(at(0)), at(23), false),
            Ok(WindowDecision::Open)
        );
        assert_eq!(
            check_window(&tagged, Some(at(0)), at(30), false).unwrap_err().code(),
            "window_closed"
        );
        assert_eq!(
            check_window(&tagged, Some(at(0)), at(24 * 7), true),
            Ok(WindowDecision::AllowedOutside)
        );
        assert_eq!(
            check_window(&tagged, Some(at(0)), at(24 * 7 + 1), true)
                .unwrap_err()
                .code(),
            "window_closed"
        );
        let untagged = message(Channel::Instagram, text("hi"));
        assert_eq!(
            check_window(&untagged, Some(at(0)), at(30), true).unwrap_err().code(),
            "window_closed"
        );
    }

    #[test]
    fn channels_without_a_window_are_always_open() {
        for channel in [
            Channel::Sms,
            Channel::Email,
            Channel::Chat,
            Channel::Telegram,
            Channel::X,
        ] {
            assert_eq!(
                check_window(&message(channel, text("hi")), None, at(0), false),
                Ok(WindowDecision::Open)
            );
        }
    }

    #[test]
    fn text_limits_count_characters_not_bytes() {
        let ok = "é".repeat(1_600);
        assert_eq!(check_content(Channel::Sms, Provider::Twilio, &text(&ok)), Ok(()));
        let long = "é".repeat(1_601);
        assert_eq!(
            check_content(Channel::Sms, Provider::Twilio, &text(&long)),
            Err(SendRefusal::TextTooLong {
                channel: Channel::Sms,
                limit: 1_600,
                length: 1_601
            })
        );
        assert_eq!(
            check_content(Channel::Messenger, Provider::Meta, &text(&"a".repeat(2_001)))
                .unwrap_err()
                .code(),
            "text_too_long"
        );
        assert_eq!(
            check_content(Channel::Email, Provider::Mailgun, &text(&"a".repeat(100_000))),
            Ok(())
        );
    }

    #[test]
    fn content_each_channel_cannot_carry_is_refused() {
        let file = |url: &str| OutboundAttachment {
            url: url.into(),
            content_type: Some("image/png".into()),
            file_name: None,
        };
        let with = |t: Option<&str>, n: usize| OutboundContent::Message {
            text: t.map(str::to_owned),
            attachments: (0..n).map(|_| file("https://example.com/a.png")).collect(),
        };
        let refused =
            |c: Channel, p: Provider, content: &OutboundContent| check_content(c, p, content).err().map(|e| e.code());
        assert_eq!(refused(Channel::Sms, Provider::Twilio, &with(Some("x"), 10)), None);
        assert_eq!(
            refused(Channel::Sms, Provider::Twilio, &with(Some("x"), 11)),
            Some("unsupported_content")
        );
        assert_eq!(
            refused(Channel::Whatsapp, Provider::Meta, &with(Some("caption"), 1)),
            None
        );
        assert_eq!(
            refused(Channel::Whatsapp, Provider::Meta, &with(None, 2)),
            Some("unsupported_content")
        );
        assert_eq!(refused(Channel::Messenger, Provider::Meta, &with(None, 1)), None);
        assert_eq!(
            refused(Channel::Messenger, Provider::Meta, &with(Some("x"), 1)),
            Some("unsupported_content")
        );
        assert_eq!(
            refused(Channel::X, Provider::X, &with(Some("x"), 1)),
            Some("unsupported_content")
        );
        assert_eq!(
            refused(Channel::Sms, Provider::Twilio, &with(Some("  "), 0)),
            Some("unsupported_content")
        );
        assert_eq!(
            refused(Channel::Sms, Provider::Twilio, &template()),
            Some("unsupported_content")
        );
        assert_eq!(refused(Channel::Whatsapp, Provider::Twilio, &template()), None);
        let plain_http = OutboundContent::Message {
            text: None,
            attachments: vec![file("http://example.com/a.png")],
        };
        assert_eq!(
            refused(Channel::Sms, Provider::Twilio, &plain_http),
            Some("unsupported_content")
        );
    }

    #[test]
    fn opt_keywords_are_whole_messages_in_any_case() {
        for word in [
            "STOP",
            "stop",
            " Stop. ",
            "STOPALL",
            "unsubscribe",
            "Cancel",
            "END",
            "quit",
        ] {
            assert_eq!(OptKeyword::parse(word), Some(OptKeyword::OptOut), "{word}");
        }
        for word in ["START", "unstop", "Yes"] {
            assert_eq!(OptKeyword::parse(word), Some(OptKeyword::OptIn), "{word}");
        }
        for text in ["please stop", "stop it", "STOPP", "", "don't cancel my order"] {
            assert_eq!(OptKeyword::parse(text), None, "{text}");
        }
    }

    #[test]
    fn a_send_job_round_trips_and_other_versions_are_refused() {
        let job = SendJob {
            schema_version: SEND_JOB_VERSION,
            interaction_id: InteractionId::try_from(format!("ix_{}", "a".repeat(32))).unwrap(),
            customer_id: CustomerId::generate(),
            attempt: 1,
            message: message(Channel::Whatsapp, template()),
        };
        assert_eq!(SendJob::from_json(&job.to_json()).unwrap(), job);
        let other = job.to_json().replace("\"schema_version\":1", "\"schema_version\":2");
        assert!(matches!(
            SendJob::from_json(&other),
            Err(WireError::UnsupportedVersion(2))
        ));
    }
}
