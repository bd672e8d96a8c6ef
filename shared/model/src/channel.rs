//! What an interaction travels on: the channel the customer used, the provider that delivered
//! it, and which way it went.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

wire_enum! {
    /// The channel the customer used, as the agent sees it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum Channel {
        /// SMS and MMS to a phone number or short code.
        Sms = "sms",
        /// Email to a company mailbox.
        Email = "email",
        /// WhatsApp, through Meta's Cloud API or Twilio.
        Whatsapp = "whatsapp",
        /// The company's own chat: its website widget or in-house apps.
        Chat = "chat",
        /// Facebook Messenger, to a Facebook page.
        Messenger = "messenger",
        /// Instagram direct messages, to a business account.
        Instagram = "instagram",
        /// X: direct messages, mentions and replies.
        X = "x",
        /// Telegram, to a company bot.
        Telegram = "telegram",
    }
}

wire_enum! {
    /// The company that delivered the webhook (one channel can come through several providers).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum Provider {
        /// Twilio: SMS, MMS and WhatsApp.
        Twilio = "twilio",
        /// Amazon SES inbound email.
        Ses = "ses",
        /// Mailgun inbound email.
        Mailgun = "mailgun",
        /// SendGrid, an email provider (no connector receives from it yet).
        Sendgrid = "sendgrid",
        /// Postmark, an email provider (no connector receives from it yet).
        Postmark = "postmark",
        /// Meta: Messenger, Instagram and the WhatsApp Cloud API.
        Meta = "meta",
        /// X's Account Activity API.
        X = "x",
        /// The Telegram Bot API.
        Telegram = "telegram",
        /// The Throughline chat webhook, which the company's widget or apps post to.
        WebChat = "web_chat",
    }
}

wire_enum! {
    /// Which way a message went between the customer and the company.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
    pub enum Direction {
        /// From the customer to the company.
        Inbound = "inbound",
        /// From the company to the customer (an agent answering in a provider's own inbox).
        Outbound = "outbound",
    }
}
