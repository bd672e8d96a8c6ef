//! Meta connector: one webhook for a company's Facebook Page (Messenger), Instagram account and
//! WhatsApp Business number. `webhook` is the pure core; `handle` is the shell that answers the
//! handshake, publishes and acknowledges.

pub mod webhook;

#[cfg(test)]
mod tests;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use throughline_edge::{ConfigError, Secret, WebhookRequest, config};
use throughline_queue::InteractionPublisher;

pub use webhook::{MetaConfig, accept, handshake};

pub const CONNECTOR: &str = "facebook";

/// The `META_SECRETS` document (JSON), kept whole in one SecureString parameter:
/// `{"app_secrets": ["<app secret>", ...], "verify_token": "<token typed into the dashboard>"}`.
#[derive(Deserialize)]
struct SecretsDocument {
    app_secrets: Vec<String>,
    verify_token: String,
}

impl MetaConfig {
    /// Parses the `META_SECRETS` document. Errors name the problem, never a value.
    pub fn from_secrets(document: &Secret) -> Result<Self, ConfigError> {
        let document: SecretsDocument = serde_json::from_str(document.expose()).map_err(|e| {
            ConfigError::Invalid(format!(
                "META_SECRETS is not a valid secrets document (line {})",
                e.line()
            ))
        })?;
        let app_secrets: Vec<Secret> = document
            .app_secrets
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect();
        if app_secrets.is_empty() {
            return Err(ConfigError::Invalid("META_SECRETS has no app secret".into()));
        }
        if document.verify_token.is_empty() {
            return Err(ConfigError::Invalid("META_SECRETS has an empty verify_token".into()));
        }
        Ok(Self {
            app_secrets,
            verify_token: Secret::new(document.verify_token),
        })
    }
}

#[derive(Debug, Clone)]
pub struct FacebookFunction {
    pub meta: MetaConfig,
    pub publisher: InteractionPublisher,
}

impl FacebookFunction {
    /// Reads `INTERACTIONS_QUEUE_URL` and `META_SECRETS` (or `META_SECRETS_PARAMETER`).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let publisher = InteractionPublisher::from_env(aws)?;
        let secrets = config::load_secret(aws, "META_SECRETS").await?;
        Ok(Self {
            meta: MetaConfig::from_secrets(&secrets)?,
            publisher,
        })
    }
}

/// The Lambda handler: the subscription handshake on GET; verify, normalize, queue, answer on POST.
pub async fn handle(req: Request, function: &FacebookFunction) -> Response<Body> {
    let request = WebhookRequest::from_lambda(req, None);
    if request.method == Method::GET {
        return throughline_edge::handshake_response(handshake(&request, &function.meta), "text/plain");
    }
    let verdict = accept(&request, &function.meta, chrono::Utc::now());
    throughline_edge::respond(CONNECTOR, verdict, &function.publisher, throughline_edge::empty_ok).await
}
