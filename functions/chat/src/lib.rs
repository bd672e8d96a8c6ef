//! Chat connector: the Throughline chat webhook (website widgets, in-house apps) at `/widget`
//! and Telegram bots at `/telegram/<bot username>`, one function behind one URL. `widget` and
//! `telegram` are the pure cores; `handle` routes, publishes and answers.

pub mod telegram;
pub mod text;
pub mod widget;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use throughline_edge::{Accepted, ConfigError, Rejection, Secret, WebhookRequest, config, metrics};
use throughline_model::{PlatformUserId, SenderCheck};
use throughline_queue::InteractionPublisher;

pub use telegram::TelegramBot;
pub use widget::{SiteSecrets, WidgetConfig};

pub const CONNECTOR: &str = "chat";
/// Default window for a delivery's timestamp, either side of now.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;
/// Default for how long an identity token may still be valid when it arrives: a day.
pub const DEFAULT_IDENTITY_TOKEN_MAX_LIFETIME_SECONDS: i64 = 24 * 60 * 60;

/// Everything the connector verifies with: the sites' secrets and the Telegram bots.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    pub widget: WidgetConfig,
    pub telegram_bots: BTreeMap<String, TelegramBot>,
}

/// The `CHAT_SECRETS` document (JSON), kept whole in one SecureString parameter:
/// `{"sites": {"<site>": {"webhook_secrets": [...], "identity_secrets": [...]}},
///   "telegram_bots": {"<bot username>": "<secret token>"}}`.
#[derive(Deserialize)]
struct SecretsDocument {
    #[serde(default)]
    sites: BTreeMap<String, SiteSecretsDocument>,
    #[serde(default)]
    telegram_bots: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct SiteSecretsDocument {
    webhook_secrets: Vec<String>,
    #[serde(default)]
    identity_secrets: Vec<String>,
}

impl ChatConfig {
    /// Parses the `CHAT_SECRETS` document. Errors name the problem, never a secret. Identity
    /// tokens get the default maximum lifetime (`DEFAULT_IDENTITY_TOKEN_MAX_LIFETIME_SECONDS`).
    pub fn from_secrets(document: &Secret, tolerance: TimeDelta) -> Result<Self, ConfigError> {
        Self::parse_secrets(document, tolerance).map_err(ConfigError::Invalid)
    }

    fn parse_secrets(document: &Secret, tolerance: TimeDelta) -> Result<Self, String> {
        let document: SecretsDocument = serde_json::from_str(document.expose())
            .map_err(|e| format!("CHAT_SECRETS is not a valid secrets document (line {})", e.line()))?;
        let secrets = |list: Vec<String>| -> Vec<Secret> {
            list.into_iter().filter(|s| !s.is_empty()).map(Secret::new).collect()
        };
        let mut sites = BTreeMap::new();
        for (site, site_secrets) in document.sites {
            PlatformUserId::parse(&site).map_err(|e| format!("CHAT_SECRETS site id: {e}"))?;
            let webhook_secrets = secrets(site_secrets.webhook_secrets);
            if webhook_secrets.is_empty() {
                return Err(format!("CHAT_SECRETS site {site} has no webhook secret"));
            }
            let identity_secrets = secrets(site_secrets.identity_secrets);
            sites.insert(
                site,
                SiteSecrets {
                    webhook_secrets,
                    identity_secrets,
                },
            );
        }
        let mut telegram_bots = BTreeMap::new();
        for (username, token) in document.telegram_bots {
            let bot = TelegramBot::new(&username, Secret::new(token)).map_err(|e| format!("CHAT_SECRETS {e}"))?;
            telegram_bots.insert(username, bot);
        }
        Ok(Self {
            widget: WidgetConfig {
                sites,
                tolerance,
                identity_token_max_lifetime: TimeDelta::seconds(DEFAULT_IDENTITY_TOKEN_MAX_LIFETIME_SECONDS),
            },
            telegram_bots,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ChatFunction {
    pub chat: ChatConfig,
    pub publisher: InteractionPublisher,
}

impl ChatFunction {
    /// Reads `INTERACTIONS_QUEUE_URL`, `CHAT_SECRETS` (or `CHAT_SECRETS_PARAMETER`) and the
    /// optional `CHAT_TIMESTAMP_TOLERANCE_SECONDS` (default 300) and
    /// `CHAT_IDENTITY_TOKEN_MAX_LIFETIME_SECONDS` (default 86400).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let publisher = InteractionPublisher::from_env(aws)?;
        let secrets = config::load_secret(aws, "CHAT_SECRETS").await?;
        let seconds = |var: &str, default: i64| config::positive_seconds(var, config::optional_env(var), default);
        let tolerance = seconds("CHAT_TIMESTAMP_TOLERANCE_SECONDS", DEFAULT_TOLERANCE_SECONDS)?;
        let max_lifetime = seconds(
            "CHAT_IDENTITY_TOKEN_MAX_LIFETIME_SECONDS",
            DEFAULT_IDENTITY_TOKEN_MAX_LIFETIME_SECONDS,
        )?;
        let mut chat = ChatConfig::from_secrets(&secrets, tolerance)?;
        chat.widget.identity_token_max_lifetime = max_lifetime;
        Ok(Self { chat, publisher })
    }
}

/// Routes a request to the web-chat or the Telegram core.
pub fn accept(req: &WebhookRequest, config: &ChatConfig, received_at: DateTime<Utc>) -> Result<Accepted, Rejection> {
    let path = req.path().trim_end_matches('/');
    if path == "/widget" {
        return widget::accept(req, &config.widget, received_at);
    }
    if let Some(bot) = path.strip_prefix("/telegram/") {
        // An unknown bot answers like a wrong secret: the path is not a way to probe for bots.
        let bot = config.telegram_bots.get(bot).ok_or(Rejection::BadSignature {
            status: lambda_http::http::StatusCode::UNAUTHORIZED,
            reason: "x-telegram-bot-api-secret-token does not match",
        })?;
        return telegram::accept(req, bot, received_at);
    }
    Err(Rejection::NotFound)
}

/// The Lambda handler: verify, normalize, queue, then answer `200 {"ok":true}`.
pub async fn handle(req: Request, function: &ChatFunction) -> Response<Body> {
    let request = WebhookRequest::from_lambda(req, None);
    let verdict = accept(&request, &function.chat, Utc::now());
    if let Ok(accepted) = &verdict {
        for interaction in &accepted.interactions {
            if let Some(code) = interaction
                .sender_check
                .filter(|check| check.is_token_refused())
                .map(SenderCheck::as_str)
            {
                tracing::warn!(connector = CONNECTOR, code, "identity token not accepted");
                metrics::count(CONNECTOR, metrics::UNVERIFIED_IDENTITY_TOKENS, code, 1);
            }
        }
    }
    throughline_edge::respond(CONNECTOR, verdict, &function.publisher, || {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"ok":true}"#))
            .expect("static response parts are valid")
    })
    .await
}

/// The JSON Schema of a chat webhook delivery; the committed copy
/// (`functions/chat/chat-webhook.schema.json`) is checked against it by a test.
pub fn delivery_json_schema() -> String {
    let mut text =
        serde_json::to_string_pretty(&schemars::schema_for!(widget::ChatDelivery)).expect("schema serializes");
    text.push('\n');
    text
}
