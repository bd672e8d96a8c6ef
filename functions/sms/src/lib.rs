//! Twilio messaging connector: SMS, MMS and WhatsApp-via-Twilio webhooks in, verified and
//! normalized interactions onto the queue. `webhook::accept` is the pure core; `handle` is the
//! shell that publishes and answers.

pub mod signature;
pub mod webhook;

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Body, Request, Response};
use throughline_edge::{ConfigError, WebhookRequest, config};
use throughline_queue::InteractionPublisher;

pub use webhook::{EMPTY_TWIML, TwilioConfig, TwilioSmsWebhook, accept};

pub const CONNECTOR: &str = "sms";

/// Everything the function needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct SmsFunction {
    pub twilio: TwilioConfig,
    /// The URL Twilio is configured to call, when it differs from what the event shows
    /// (custom domain, proxy, tunnel).
    pub public_url: Option<String>,
    pub publisher: InteractionPublisher,
}

impl SmsFunction {
    /// Reads `INTERACTIONS_QUEUE_URL`, `TWILIO_AUTH_TOKEN` (or `TWILIO_AUTH_TOKEN_PARAMETER`)
    /// and the optional `TWILIO_PUBLIC_URL`.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let queue_url = config::required_env("INTERACTIONS_QUEUE_URL")?;
        let auth_token = config::load_secret(aws, "TWILIO_AUTH_TOKEN").await?;
        Ok(Self {
            twilio: TwilioConfig { auth_token },
            public_url: config::optional_env("TWILIO_PUBLIC_URL"),
            publisher: InteractionPublisher::new(aws_sdk_sqs::Client::new(aws), queue_url),
        })
    }
}

/// The Lambda handler: verify, normalize, queue, then answer Twilio.
pub async fn handle(req: Request, function: &SmsFunction) -> Response<Body> {
    let request = WebhookRequest::from_lambda(req, function.public_url.as_deref());
    let verdict = accept(&request, &function.twilio, chrono::Utc::now());
    throughline_edge::respond(CONNECTOR, verdict, &function.publisher, empty_twiml).await
}

fn empty_twiml() -> Response<Body> {
    Response::builder()
        .status(200)
        .header(CONTENT_TYPE, "text/xml")
        .body(Body::from(EMPTY_TWIML))
        .expect("static response parts are valid")
}
