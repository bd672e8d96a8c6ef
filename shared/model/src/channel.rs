//! What an interaction travels on: the channel the customer used, the provider that delivered
//! it, and which way it went.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The channel the customer used, as the agent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Email,
    Whatsapp,
    Chat,
    Messenger,
    Instagram,
    X,
    Telegram,
}

impl Channel {
    pub const ALL: [Channel; 8] = [
        Channel::Sms,
        Channel::Email,
        Channel::Whatsapp,
        Channel::Chat,
        Channel::Messenger,
        Channel::Instagram,
        Channel::X,
        Channel::Telegram,
    ];

    /// The wire name (`sms`, `whatsapp`, `x`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Whatsapp => "whatsapp",
            Channel::Chat => "chat",
            Channel::Messenger => "messenger",
            Channel::Instagram => "instagram",
            Channel::X => "x",
            Channel::Telegram => "telegram",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The company that delivered the webhook (one channel can come through several providers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Twilio,
    Ses,
    Mailgun,
    Sendgrid,
    Postmark,
    Meta,
    X,
    Telegram,
    WebChat,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Twilio => "twilio",
            Provider::Ses => "ses",
            Provider::Mailgun => "mailgun",
            Provider::Sendgrid => "sendgrid",
            Provider::Postmark => "postmark",
            Provider::Meta => "meta",
            Provider::X => "x",
            Provider::Telegram => "telegram",
            Provider::WebChat => "web_chat",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer to the company.
    Inbound,
    /// From the company to the customer (an agent answering in a provider's own inbox).
    Outbound,
}

impl Direction {
    /// The wire name (`inbound`, `outbound`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}
