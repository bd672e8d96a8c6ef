//! What an interaction travels on: the channel the customer used, the provider that delivered
//! it, and which way it went.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

wire_enum! {
    /// The channel the customer used, as the agent sees it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum Channel {
        Sms = "sms",
        Email = "email",
        Whatsapp = "whatsapp",
        Chat = "chat",
        Messenger = "messenger",
        Instagram = "instagram",
        X = "x",
        Telegram = "telegram",
    }
}

wire_enum! {
    /// The company that delivered the webhook (one channel can come through several providers).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum Provider {
        Twilio = "twilio",
        Ses = "ses",
        Mailgun = "mailgun",
        Sendgrid = "sendgrid",
        Postmark = "postmark",
        Meta = "meta",
        X = "x",
        Telegram = "telegram",
        WebChat = "web_chat",
    }
}

wire_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum Direction {
        /// From the customer to the company.
        Inbound = "inbound",
        /// From the company to the customer (an agent answering in a provider's own inbox).
        Outbound = "outbound",
    }
}
