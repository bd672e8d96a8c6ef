//! What the end-to-end tests share: a local stack per test (its own moto server, with the
//! template's resources), the real handlers wired to it, and the sample events.
//! A missing emulator is a failure with instructions, never a skip.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::{Body, Request, Response};
use throughline_edge::Secret;
use throughline_localstack::poller::{EventSourceMapping, PollOutcome, queue_depth};
use throughline_localstack::stack::LocalStack;
use throughline_localstack::venv::Venv;
use throughline_queue::InteractionPublisher;
use throughline_sms::{SmsFunction, TwilioConfig};
use throughline_store::TimelineStore;
use throughline_testkit::secrets::TEST_TWILIO_AUTH_TOKEN;

pub use throughline_localstack::stack;
pub use throughline_testkit::secrets;

/// A fresh local stack (its own tables, buckets and queues in the emulator this test binary
/// shares), or a panic saying how to get the emulator.
pub async fn start_stack() -> LocalStack {
    let venv = Venv::require().unwrap_or_else(|e| panic!("{e}"));
    LocalStack::start_shared(&venv)
        .await
        .unwrap_or_else(|e| panic!("could not start the local stack: {e}"))
}

/// The SMS function as `main` builds it, aimed at the stack's queue.
pub fn sms_function(stack: &LocalStack) -> SmsFunction {
    sms_function_for_queue(stack, &stack.interactions_queue().url)
}

pub fn sms_function_for_queue(stack: &LocalStack, queue_url: &str) -> SmsFunction {
    SmsFunction {
        twilio: TwilioConfig {
            auth_token: Secret::new(TEST_TWILIO_AUTH_TOKEN),
        },
        public_url: None,
        publisher: InteractionPublisher::new(stack.sqs(), queue_url),
    }
}

pub use throughline_testkit::events::{event_json as sample_json, event_path, lambda_request as sample_request};

pub async fn send(function: &SmsFunction, relative: &str) -> Response<Body> {
    throughline_sms::handle(sample_request(relative), function).await
}

pub fn body_text(response: &Response<Body>) -> String {
    String::from_utf8_lossy(response.body().as_ref()).into_owned()
}

/// The writer as `main` builds it, aimed at the stack.
pub fn writer(stack: &LocalStack) -> throughline_timeline_writer::Writer {
    throughline_timeline_writer::Writer {
        store: stack.store(),
        publisher: InteractionPublisher::new(stack.sqs(), &stack.interactions_queue().url),
        erasure_budget: throughline_timeline_writer::DEFAULT_ERASURE_BUDGET,
        taxonomy: None,
    }
}

/// Runs the writer in-process on one batch from the queue, as Lambda's event source would.
pub async fn poll_writer(mapping: &EventSourceMapping, store: &TimelineStore) -> PollOutcome {
    let writer = throughline_timeline_writer::Writer {
        store: store.clone(),
        publisher: InteractionPublisher::new(mapping.sqs.clone(), &mapping.queue_url),
        erasure_budget: throughline_timeline_writer::DEFAULT_ERASURE_BUDGET,
        taxonomy: None,
    };
    mapping
        .poll_once(1, |event: SqsEvent| async move {
            Ok(throughline_timeline_writer::handle(event, &writer).await)
        })
        .await
        .expect("poll")
}

/// Polls until the queue is empty.
pub async fn drain(mapping: &EventSourceMapping, store: &TimelineStore) {
    for _ in 0..60 {
        if mapping.backlog().await.unwrap() == 0 {
            return;
        }
        poll_writer(mapping, store).await;
    }
    panic!("queue did not drain");
}

pub async fn depth(stack: &LocalStack, queue_url: &str) -> u64 {
    queue_depth(&stack.sqs(), queue_url).await.unwrap()
}

/// The X function as `main` builds it, aimed at the stack's queue.
pub fn x_function(stack: &LocalStack) -> throughline_x::XFunction {
    throughline_x::XFunction {
        x: throughline_x::XConfig {
            consumer_secret: Secret::new(secrets::TEST_X_CONSUMER_SECRET),
        },
        publisher: InteractionPublisher::new(stack.sqs(), &stack.interactions_queue().url),
    }
}

pub async fn send_x(function: &throughline_x::XFunction, relative: &str) -> Response<Body> {
    throughline_x::handle(sample_request(relative), function).await
}

/// A customer's whole timeline (up to 100 entries), newest first; panics if the handle is unknown.
pub async fn timeline_of(
    store: &TimelineStore,
    handle: &throughline_model::Handle,
) -> Vec<throughline_model::Interaction> {
    let customer = store
        .customer_for(handle, true)
        .await
        .unwrap()
        .expect("customer exists");
    store
        .timeline(&customer, 100, None, &Default::default())
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.interaction)
        .collect()
}

/// The chat function as `main` builds it, with the sample events' secrets.
pub fn chat_function(stack: &LocalStack) -> throughline_chat::ChatFunction {
    let secrets = Secret::new(secrets::test_chat_secrets());
    throughline_chat::ChatFunction {
        chat: throughline_chat::ChatConfig::from_secrets(
            &secrets,
            chrono::TimeDelta::seconds(throughline_chat::DEFAULT_TOLERANCE_SECONDS),
        )
        .unwrap(),
        publisher: InteractionPublisher::new(stack.sqs(), &stack.interactions_queue().url),
    }
}

/// Sends a sample chat event, re-signed for now as a live sender would sign it.
pub async fn send_chat(function: &throughline_chat::ChatFunction, relative: &str) -> Response<Body> {
    throughline_chat::handle(fresh_request(relative), function).await
}

pub fn phone(number: &str) -> throughline_model::Handle {
    throughline_model::Handle::Phone {
        number: throughline_model::E164::parse(number).unwrap(),
    }
}

/// A user on a platform, within `scope` (page, site) where the platform scopes its ids.
pub fn platform_user(
    platform: throughline_model::Platform,
    scope: Option<&str>,
    id: &str,
) -> throughline_model::Handle {
    let parse = |s: &str| throughline_model::PlatformUserId::parse(s).unwrap();
    throughline_model::Handle::Platform {
        platform,
        scope: scope.map(parse),
        id: parse(id),
    }
}

/// The Facebook function as `main` builds it, with the sample events' secrets.
pub fn facebook_function(stack: &LocalStack) -> throughline_facebook::FacebookFunction {
    throughline_facebook::FacebookFunction {
        meta: throughline_facebook::MetaConfig::from_secrets(&Secret::new(secrets::test_meta_secrets())).unwrap(),
        publisher: InteractionPublisher::new(stack.sqs(), &stack.interactions_queue().url),
    }
}

pub async fn send_facebook(function: &throughline_facebook::FacebookFunction, relative: &str) -> Response<Body> {
    throughline_facebook::handle(sample_request(relative), function).await
}

/// Where the email functions keep and read raw mail in the stack's bucket.
pub fn mail_storage(stack: &LocalStack) -> throughline_email::MailStorage {
    throughline_email::MailStorage {
        s3: stack::s3_client(&stack.aws),
        bucket: stack.mail_bucket().to_owned(),
        inbound_bucket: stack.mail_bucket().to_owned(),
        inbound_prefix: "inbound/".into(),
    }
}

/// The SES email function as `main` builds it, aimed at the stack.
pub fn ses_function(stack: &LocalStack) -> throughline_email::SesFunction {
    throughline_email::SesFunction {
        storage: mail_storage(stack),
        publisher: InteractionPublisher::new(stack.sqs(), &stack.interactions_queue().url),
        // Where the sample events say they come from, as a deployment configures it.
        sources: throughline_email::MailSources {
            topic_arn: Some(stack.resources.topics["InboundMailTopic"].clone()),
            receipt_function_arn: Some("arn:aws:lambda:us-east-1:123456789012:function:throughline-email-ses".into()),
            events_topic_arn: Some(stack.resources.topics["OutboundMailEventsTopic"].clone()),
        },
    }
}

/// The Mailgun function as `main` builds it, with the sample events' signing key.
pub fn mailgun_function(stack: &LocalStack) -> throughline_email::MailgunFunction {
    throughline_email::MailgunFunction {
        mailgun: throughline_email::MailgunConfig {
            signing_keys: vec![Secret::new(secrets::TEST_MAILGUN_SIGNING_KEY)],
            tolerance: chrono::TimeDelta::seconds(throughline_email::DEFAULT_TOLERANCE_SECONDS),
        },
        storage: mail_storage(stack),
        store: stack.store(),
        publisher: InteractionPublisher::new(stack.sqs(), &stack.interactions_queue().url),
    }
}

/// The rating page as `main` builds it, with the test feedback key.
pub fn rating_page(stack: &LocalStack) -> throughline_rating_page::RatingPage {
    throughline_rating_page::RatingPage {
        store: stack.store(),
        publisher: InteractionPublisher::new(stack.sqs(), &stack.interactions_queue().url),
        keys: throughline_feedback::signing_keys(secrets::TEST_FEEDBACK_KEY).unwrap(),
    }
}

/// A browser's request for the rating page at `link` (its URL): a GET, or the POST of `form`
/// (URL-encoded fields).
pub fn page_request(link: &str, form: Option<&[(&str, &str)]>) -> Request {
    let builder = lambda_http::http::Request::builder()
        .uri(link)
        .header("accept", "text/html,application/xhtml+xml")
        .header("accept-language", "en-GB,en;q=0.8");
    match form {
        None => builder.method("GET").body(Body::Empty),
        Some(fields) => builder
            .method("POST")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields)
                    .finish(),
            )),
    }
    .unwrap()
}

/// A sample HTTP event as a sender would send it now: chat and Mailgun deliveries re-signed
/// (their webhooks refuse stale timestamps and, for Mailgun, reused tokens).
pub fn fresh_request(relative: &str) -> Request {
    let event = throughline_localstack::sign::fresh_event(&event_path(relative)).unwrap();
    lambda_http::request::from_str(&event.to_string()).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

pub mod client;
pub mod openapi;

pub use client::ApiClient;

/// The IAM principal the tests' API calls are signed as.
pub const AGENT_ARN: &str = "arn:aws:iam::123456789012:user/agent-grace";

/// The timeline API as `main` builds it, aimed at the stack's table.
pub fn timeline_api(stack: &stack::LocalStack) -> throughline_timeline_api::TimelineApi {
    throughline_timeline_api::TimelineApi {
        store: stack.store(),
        publisher: InteractionPublisher::new(stack.sqs(), &stack.interactions_queue().url),
        outbound: InteractionPublisher::new(stack.sqs(), &stack.outbound_queue().url),
        // No endpoint can send: the outbound tests give theirs (`outbound::Harness`).
        credentials: throughline_sender::Credentials::default(),
        erasure_budget: throughline_timeline_api::DEFAULT_ERASURE_BUDGET,
        allow_unsigned: false,
        reasons: Default::default(),
        surveys: None,
        segments: None,
    }
}

/// An API Gateway HTTP API (payload 2.0) request, IAM-authorized as `AGENT_ARN`.
pub fn api_request(method: &str, path_and_query: &str, body: Option<&serde_json::Value>) -> Request {
    let event = api_event(method, path_and_query, body);
    lambda_http::request::from_str(&event.to_string()).expect("a valid HTTP API event")
}

/// The event of `api_request`, to change before sending.
pub fn api_event(method: &str, path_and_query: &str, body: Option<&serde_json::Value>) -> serde_json::Value {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    serde_json::json!({
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": { "content-type": "application/json", "host": "api.throughline.example" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "timelineapi",
            "domainName": "api.throughline.example",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "tests" },
            "requestId": "test-request",
            "routeKey": "ANY /{proxy+}",
            "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795600000000i64,
            "authorizer": { "iam": {
                "accessKey": "AKIAEXAMPLE", "accountId": "123456789012", "callerId": "AIDAEXAMPLE",
                "principalOrgId": null, "userArn": AGENT_ARN, "userId": "AIDAEXAMPLE"
            } }
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

/// A normalized interaction as a connector would queue it.
pub fn interaction(
    channel: throughline_model::Channel,
    customer: throughline_model::Handle,
    message_id: &str,
    occurred_at: chrono::DateTime<chrono::Utc>,
) -> throughline_model::Interaction {
    use throughline_model::{Channel, Provider};
    let provider = match channel {
        Channel::Sms => Provider::Twilio,
        Channel::Email => Provider::Ses,
        Channel::Whatsapp | Channel::Messenger | Channel::Instagram => Provider::Meta,
        Channel::Chat => Provider::WebChat,
        Channel::X => Provider::X,
        Channel::Telegram => Provider::Telegram,
    };
    let mut interaction = throughline_model::Interaction::new(throughline_model::NewInteraction {
        channel,
        provider,
        direction: throughline_model::Direction::Inbound,
        customer,
        business_endpoint: phone("+14155550199"),
        provider_message_id: throughline_model::ProviderMessageId::parse(message_id).unwrap(),
        occurred_at,
        received_at: occurred_at,
    });
    interaction.text = Some(format!("message {message_id}"));
    if channel == Channel::Email {
        interaction.sender_check = Some(throughline_model::SenderCheck::Verified);
        interaction.attributes.insert("sender_verified".into(), "true".into());
    }
    interaction
}

pub fn email(address: &str) -> throughline_model::Handle {
    throughline_model::Handle::Email {
        address: throughline_model::EmailAddress::parse(address).unwrap(),
    }
}

/// A logged-in chat message whose company-signed identity token vouches for `verified`.
pub fn verified_chat(
    user: &str,
    message_id: &str,
    when: chrono::DateTime<chrono::Utc>,
    verified: &[throughline_model::Handle],
) -> throughline_model::Interaction {
    use throughline_model::{Channel, Evidence, EvidenceSource, Identity, Platform};
    let user = platform_user(Platform::WebChatUser, Some(secrets::TEST_CHAT_SITE), user);
    let mut chat = interaction(Channel::Chat, user, message_id, when);
    chat.identities = verified
        .iter()
        .map(|handle| Identity {
            handle: handle.clone(),
            evidence: Evidence::Verified,
            source: EvidenceSource::CompanyIdentityToken,
        })
        .collect();
    chat
}
