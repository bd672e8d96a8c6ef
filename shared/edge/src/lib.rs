//! The HTTP edge shared by every webhook function. A connector is a pure function
//! `(WebhookRequest, config) -> Result<Accepted, Rejection>`; this crate provides the request
//! view, the signature helper, JSON event parsing, configuration and secrets, logging, metrics,
//! and `respond`, which publishes and answers.

#![warn(missing_docs)]

pub mod config;
pub mod json;
pub mod logging;
pub mod metrics;
pub mod request;
pub mod response;
pub mod serve;
pub mod signature;

pub use config::{ConfigError, Secret};
pub use request::WebhookRequest;
// For the entry-point macros (`serve_http!`, `serve_event!`).
pub use lambda_http;
pub use response::{
    Accepted, MALFORMED_EVENT, Rejection, empty_ok, error_response, handshake_response, json_error, report_ignored,
    respond,
};
pub use throughline_model::ErrorCode;

/// Logging for a Lambda function: `RUST_LOG` / `AWS_LAMBDA_LOG_LEVEL` pick the level,
/// `AWS_LAMBDA_LOG_FORMAT=JSON` (set by the template) switches to JSON lines, and at `debug` or
/// `trace` the runtime, SDK and HTTP crates stay at `info` (see `logging::QUIET_TARGETS`).
pub fn init_logging() {
    logging::init();
}
