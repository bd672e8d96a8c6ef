//! The send credentials document and the providers' API addresses.
//!
//! `SEND_CREDENTIALS` (JSON, one SecureString parameter, like every secrets document; env for
//! local runs), every section optional — a channel without its section answers
//! `channel_not_configured`:
//!
//! ```json
//! {
//!   "twilio": {"account_sid": "AC…", "auth_token": "…", "status_callback": "https://…/twilio/status"},
//!   "whatsapp_cloud": {"+14155550199": {"phone_number_id": "1234567890", "access_token": "…"}},
//!   "meta_pages": {"<page id or Instagram account id>": {"access_token": "…"}},
//!   "telegram": {"<bot username>": {"token": "123456:ABC…"}},
//!   "x": {"<account user id>": {"access_token": "<OAuth 2.0 user token with dm.write>"}},
//!   "mailgun": {"api_key": "…", "domains": ["mg.example.com"]},
//!   "web_chat": {"<site id>": {"outbound_url": "https://…", "secret": "…"}},
//!   "human_agent_enabled": false
//! }
//! ```
//!
//! Twilio's `auth_token` may be an API key's secret, with `api_key_sid` beside it.

use std::collections::BTreeMap;

use serde::Deserialize;
use throughline_edge::{ConfigError, Secret};

/// A secret as the document holds it: deserialized straight into `Secret`, so `Debug` never
/// shows it.
#[derive(Clone, Deserialize)]
#[serde(from = "String")]
pub struct DocumentSecret(Secret);

impl From<String> for DocumentSecret {
    fn from(value: String) -> Self {
        Self(Secret::new(value))
    }
}

impl std::fmt::Debug for DocumentSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl DocumentSecret {
    /// The value, to put in a request.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// The Twilio account messages are sent from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioAccount {
    /// `AC…`: the account in the URL.
    pub account_sid: String,
    /// `SK…`, when `auth_token` is an API key's secret rather than the account's auth token.
    #[serde(default)]
    pub api_key_sid: Option<String>,
    /// The auth token (or the API key's secret).
    pub auth_token: DocumentSecret,
    /// The sms function's URL, for Twilio's status callbacks.
    #[serde(default)]
    pub status_callback: Option<String>,
}

/// A WhatsApp Cloud API number: its id at Meta and a token that may send from it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsappNumber {
    /// The phone number id (the `{phone-number-id}` of the send URL).
    pub phone_number_id: String,
    /// A system user access token with `whatsapp_business_messaging`.
    pub access_token: DocumentSecret,
}

/// A token that may send as a Facebook page or Instagram business account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageToken {
    /// The page access token.
    pub access_token: DocumentSecret,
}

/// A Telegram bot's token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotToken {
    /// `123456:ABC…`, from BotFather.
    pub token: DocumentSecret,
}

/// An X account's user-context token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XAccount {
    /// An OAuth 2.0 user access token with the `dm.write` scope.
    pub access_token: DocumentSecret,
}

/// The Mailgun account and the domains it sends for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailgunAccount {
    /// The private API key (`api` is the Basic auth user).
    pub api_key: DocumentSecret,
    /// The sending domains: a mailbox sends through its own domain, if listed.
    pub domains: Vec<String>,
}

/// Where a chat site's backend takes the agent's messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSite {
    /// The company's endpoint for agent messages.
    pub outbound_url: String,
    /// The site's secret: the delivery is signed with it, as the site signs what it sends.
    pub secret: DocumentSecret,
}

/// Replies through SES v2 (`SendEmail`, raw).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SesSending {
    /// Verified SES identities the replies go out from: domains (`acme.example`) or addresses.
    pub identities: Vec<String>,
    /// A configuration set for the sends (event destinations for delivery statuses).
    #[serde(default)]
    pub configuration_set: Option<String>,
}

/// The whole `SEND_CREDENTIALS` document.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Twilio: SMS, MMS and WhatsApp through Twilio.
    #[serde(default)]
    pub twilio: Option<TwilioAccount>,
    /// WhatsApp Cloud API numbers, by E.164 number.
    #[serde(default)]
    pub whatsapp_cloud: BTreeMap<String, WhatsappNumber>,
    /// Messenger pages and Instagram accounts, by id.
    #[serde(default)]
    pub meta_pages: BTreeMap<String, PageToken>,
    /// Telegram bots, by username.
    #[serde(default)]
    pub telegram: BTreeMap<String, BotToken>,
    /// X accounts, by user id.
    #[serde(default)]
    pub x: BTreeMap<String, XAccount>,
    /// Mailgun.
    #[serde(default)]
    pub mailgun: Option<MailgunAccount>,
    /// SES: the domains (or addresses) whose mailboxes reply through SES (the function's role
    /// sends; no secret).
    #[serde(default)]
    pub ses: Option<SesSending>,
    /// Chat sites, by site id.
    #[serde(default)]
    pub web_chat: BTreeMap<String, ChatSite>,
    /// Whether agents may use Messenger's `HUMAN_AGENT` tag (Meta grants it after App Review).
    #[serde(default)]
    pub human_agent_enabled: bool,
}

impl Credentials {
    /// Parses the document. Errors name the problem (line, field), never a value.
    pub fn from_document(document: &Secret) -> Result<Self, ConfigError> {
        serde_json::from_str(document.expose()).map_err(|e| {
            // serde's message for an unknown or missing field names the field, not its value.
            let what = e.to_string();
            let what = what.split(" at line").next().unwrap_or("invalid");
            let what = if e.is_syntax() { "not JSON" } else { what };
            ConfigError::Invalid(format!("SEND_CREDENTIALS: {what} (line {})", e.line()))
        })
    }
}

/// Where each provider's API is. The real addresses by default; tests and the local stack
/// point them at the stub server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderApis {
    /// `https://api.twilio.com`.
    pub twilio: String,
    /// `https://graph.facebook.com`.
    pub graph: String,
    /// The Graph API version in paths (`v23.0`).
    pub graph_version: String,
    /// `https://api.telegram.org`.
    pub telegram: String,
    /// `https://api.x.com`.
    pub x: String,
    /// `https://api.mailgun.net` (`https://api.eu.mailgun.net` for EU domains).
    pub mailgun: String,
}

impl Default for ProviderApis {
    fn default() -> Self {
        Self {
            twilio: "https://api.twilio.com".into(),
            graph: "https://graph.facebook.com".into(),
            graph_version: "v23.0".into(),
            telegram: "https://api.telegram.org".into(),
            x: "https://api.x.com".into(),
            mailgun: "https://api.mailgun.net".into(),
        }
    }
}

impl ProviderApis {
    /// Every provider under one base URL, at `<base>/twilio`, `/graph`, `/telegram`, `/x` and
    /// `/mailgun`: the local stack's provider stub (`tools/provider_stub.py`).
    pub fn under(base: &str) -> Self {
        Self {
            twilio: format!("{base}/twilio"),
            graph: format!("{base}/graph"),
            telegram: format!("{base}/telegram"),
            x: format!("{base}/x"),
            mailgun: format!("{base}/mailgun"),
            ..Self::default()
        }
    }
}
