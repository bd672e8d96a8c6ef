//! X (Twitter) connector: the Account Activity webhook's CRC check, and its DMs, mentions and
//! replies as verified, normalized interactions on the queue. `webhook` is the pure core;
//! `handle` is the shell that publishes and answers.

pub mod webhook;

#[cfg(test)]
mod tests;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use throughline_edge::{ConfigError, WebhookRequest, config};
use throughline_queue::InteractionPublisher;

pub use webhook::{XConfig, accept, crc_response};

pub const CONNECTOR: &str = "x";

#[derive(Debug, Clone)]
pub struct XFunction {
    pub x: XConfig,
    pub publisher: InteractionPublisher,
}

impl XFunction {
    /// Reads `INTERACTIONS_QUEUE_URL` and `X_CONSUMER_SECRET` (or `X_CONSUMER_SECRET_PARAMETER`).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let publisher = InteractionPublisher::from_env(aws)?;
        let consumer_secret = config::load_secret(aws, "X_CONSUMER_SECRET").await?;
        Ok(Self {
            x: XConfig { consumer_secret },
            publisher,
        })
    }
}

/// The Lambda handler: the CRC check on GET; verify, normalize, queue, answer on POST.
pub async fn handle(req: Request, function: &XFunction) -> Response<Body> {
    let request = WebhookRequest::from_lambda(req, None);
    if request.method == Method::GET {
        return throughline_edge::handshake_response(crc_response(&request, &function.x), "application/json");
    }
    let verdict = accept(&request, &function.x, chrono::Utc::now());
    throughline_edge::respond(CONNECTOR, verdict, &function.publisher, throughline_edge::empty_ok).await
}
