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
    /// The URL Twilio is configured to call, when it differs from the domain the event reports
    /// (custom domain, proxy, tunnel).
    pub public_url: Option<String>,
    pub publisher: InteractionPublisher,
}

impl SmsFunction {
    /// Reads `INTERACTIONS_QUEUE_URL`, `TWILIO_AUTH_TOKEN` (or `TWILIO_AUTH_TOKEN_PARAMETER`)
    /// and the optional `TWILIO_PUBLIC_URL`.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let publisher = InteractionPublisher::from_env(aws)?;
        let auth_token = config::load_secret(aws, "TWILIO_AUTH_TOKEN").await?;
        Ok(Self {
            twilio: TwilioConfig { auth_token },
            public_url: config::optional_env("TWILIO_PUBLIC_URL"),
            publisher,
        })
    }
}

/// The Lambda handler: verify, normalize, queue, then answer Twilio.
pub async fn handle(req: Request, function: &SmsFunction) -> Response<Body> {
    // The URL Twilio signed: `TWILIO_PUBLIC_URL`, else the domain the event reports.
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

#[cfg(test)]
mod tests {
    use lambda_http::http::StatusCode;
    use throughline_edge::Secret;

    use super::*;
    use crate::signature::{self, SIGNATURE_HEADER, Signed};
    use throughline_edge::ErrorCode;

    const TOKEN: &str = "test-auth-token";
    const DOMAIN: &str = "sms.throughline.example";

    fn params() -> Vec<(String, String)> {
        [
            ("MessageSid", "SM11111111111111111111111111111111"),
            ("From", "+14155550100"),
            ("To", "+14155550199"),
            ("Body", "Hello"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// A Function URL event for `DOMAIN` whose `Host` and `X-Forwarded-Proto` headers say
    /// `host` and `proto`, signed for `signed_url`.
    fn event(host: &str, proto: &str, signed_url: &str) -> Request {
        lambda_http::request::from_str(&event_json(host, proto, signed_url).to_string()).unwrap()
    }

    fn event_json(host: &str, proto: &str, signed_url: &str) -> serde_json::Value {
        let params = params();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/",
            "rawQueryString": "",
            "headers": {
                "content-type": "application/x-www-form-urlencoded",
                "host": host,
                "x-forwarded-proto": proto,
                SIGNATURE_HEADER: signature::compute(TOKEN, signed_url, Signed::Form(&params)),
            },
            "requestContext": {
                "accountId": "anonymous",
                "apiId": "sms",
                "domainName": DOMAIN,
                "domainPrefix": "sms",
                "http": { "method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "x" },
                "requestId": "req-1",
                "routeKey": "$default",
                "stage": "$default",
                "time": "24/Nov/2026:10:01:00 +0000",
                "timeEpoch": 1795514460000_i64
            },
            "body": body,
            "isBase64Encoded": false
        })
    }

    fn config() -> TwilioConfig {
        TwilioConfig {
            auth_token: Secret::new(TOKEN),
        }
    }

    fn verdict(
        req: Request,
        public_url: Option<&str>,
    ) -> Result<throughline_edge::Accepted, throughline_edge::Rejection> {
        accept(
            &WebhookRequest::from_lambda(req, public_url),
            &config(),
            chrono::Utc::now(),
        )
    }

    /// A publisher whose queue cannot be reached: only a request that is refused gets an answer
    /// other than 503 from `handle`.
    fn unreachable_publisher() -> InteractionPublisher {
        let sqs = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build();
        InteractionPublisher::new(aws_sdk_sqs::Client::from_conf(sqs), "http://127.0.0.1:9/000000000000/q")
    }

    /// A signature Twilio made for another webhook URL of the account (replayed with that URL's
    /// host in `Host`) must not verify here.
    #[tokio::test]
    async fn a_forged_host_header_is_403_even_when_signed_for_the_forged_url() {
        let function = SmsFunction {
            twilio: config(),
            public_url: None,
            publisher: unreachable_publisher(),
        };
        let forged = event("other-app.example", "https", "https://other-app.example/");
        assert_eq!(handle(forged, &function).await.status(), StatusCode::FORBIDDEN);
        let forged_scheme = event(DOMAIN, "http", &format!("http://{DOMAIN}/"));
        assert_eq!(handle(forged_scheme, &function).await.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn the_signed_url_is_the_request_contexts_domain_or_the_configured_public_url() {
        let genuine = format!("https://{DOMAIN}/");
        // Whatever the headers claim, the domain the event reports is what Twilio signed.
        assert!(verdict(event("other-app.example", "http", &genuine), None).is_ok());
        assert_eq!(
            WebhookRequest::from_lambda(event("other-app.example", "http", &genuine), None).url,
            genuine
        );

        let public = "https://hooks.example.com/twilio";
        assert!(verdict(event(DOMAIN, "https", public), Some(public)).is_ok());
        assert_eq!(
            verdict(event(DOMAIN, "https", &genuine), Some(public))
                .unwrap_err()
                .status(),
            StatusCode::FORBIDDEN,
            "the configured public URL wins over the event's domain"
        );
    }

    #[test]
    fn without_a_reported_domain_nothing_verifies() {
        let mut event = event_json(DOMAIN, "https", &format!("https://{DOMAIN}/"));
        event["requestContext"].as_object_mut().unwrap().remove("domainName");
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(verdict(req, None).unwrap_err().status(), StatusCode::FORBIDDEN);
    }
}
