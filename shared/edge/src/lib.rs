//! The HTTP edge shared by every webhook function. A connector is a pure function
//! `(WebhookRequest, config) -> Result<Accepted, Rejection>`; this crate provides the request
//! view, the signature helper, configuration and secrets, metrics, and `respond`, which
//! publishes and answers.

pub mod config;
pub mod metrics;
pub mod request;
pub mod response;
pub mod signature;

pub use config::{ConfigError, Secret};
pub use request::WebhookRequest;
pub use response::{Accepted, Rejection, empty_ok, handshake_response, json_error, respond};

/// Logging for a Lambda function: `RUST_LOG` / `AWS_LAMBDA_LOG_LEVEL` pick the level and
/// `AWS_LAMBDA_LOG_FORMAT=JSON` (set by the template) switches to JSON lines.
pub fn init_logging() {
    lambda_http::tracing::init_default_subscriber();
}
