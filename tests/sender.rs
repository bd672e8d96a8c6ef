//! The sender's one call per attempt, against the provider stub (`tools/provider_stub.py`),
//! which checks credentials and request shapes as each provider does and answers in its shapes:
//! every channel sends; refused credentials, outages, rate limits and silence each end as the
//! provider meant them, with exactly the calls the stub recorded.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use throughline_edge::Secret;
use throughline_localstack::providers::ProviderStub;
use throughline_localstack::venv::Venv;
use throughline_model::*;
use throughline_sender::{Credentials, ProviderApis, SendOutcome, Transports, send_once};
use throughline_testkit::outbound::sample_send_jobs;
use throughline_testkit::secrets::*;

struct Harness {
    stub: ProviderStub,
    credentials: Credentials,
    apis: ProviderApis,
    transports: Transports,
}

async fn harness() -> Harness {
    let venv = Venv::require().unwrap_or_else(|e| panic!("{e}"));
    let stub = ProviderStub::start(&venv, test_send_credentials)
        .await
        .unwrap_or_else(|e| panic!("the provider stub could not start: {e}"));
    let credentials = Credentials::from_document(&Secret::new(test_send_credentials(stub.base()))).unwrap();
    Harness {
        apis: ProviderApis::under(stub.base()),
        stub,
        credentials,
        // No SES here (tests/outbound.rs sends through the emulator's).
        transports: Transports::new(&no_aws(), Duration::from_millis(1_500)).unwrap(),
    }
}

/// An AWS configuration that is never called.
fn no_aws() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .build()
}

impl Harness {
    async fn send(&self, job: &SendJob) -> SendOutcome {
        send_once(&self.transports, job, &self.credentials, &self.apis, Utc::now())
            .await
            .unwrap_or_else(|refusal| panic!("refused: {refusal}"))
    }
}

fn every_channel() -> Vec<(&'static str, SendJob)> {
    sample_send_jobs()
}

fn sms() -> SendJob {
    every_channel().remove(0).1
}

#[tokio::test(flavor = "multi_thread")]
async fn every_channel_is_sent_with_one_call_the_provider_accepts() {
    let h = harness().await;
    let channels = every_channel();
    let mut ids = Vec::new();
    for (provider, job) in &channels {
        let outcome = h.send(job).await;
        let SendOutcome::Sent { provider_message_id } = outcome else {
            panic!("{provider} {:?}: {outcome:?}", job.message.channel);
        };
        ids.push((job.message.channel, provider_message_id.to_string()));
    }
    let received = h.stub.requests().await.unwrap();
    let providers: Vec<&str> = received.iter().map(|r| r.provider.as_str()).collect();
    assert_eq!(
        providers,
        channels.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        "one call each, in order"
    );
    // Each id has the shape its provider gives, as inbound messages and status events carry it.
    let shape = |channel: Channel, id: &str| match channel {
        Channel::Sms => id.starts_with("SM") && id.len() == 34,
        Channel::Whatsapp => id.starts_with("SM") || id.starts_with("wamid."),
        Channel::Messenger | Channel::Instagram => id.starts_with("m_"),
        Channel::Telegram => id.starts_with("111222333:"),
        Channel::X => id.bytes().all(|b| b.is_ascii_digit()),
        Channel::Email => id.ends_with(&format!("@{TEST_MAILGUN_DOMAIN}")) && !id.contains('<'),
        Channel::Chat => id.starts_with("ix_"),
    };
    for (channel, id) in &ids {
        assert!(shape(*channel, id), "{channel:?}: {id}");
    }
    // The threading reached Mailgun as headers.
    let mail = received.iter().find(|r| r.provider == "mailgun").unwrap();
    assert!(
        mail.body
            .contains("name=\"h:In-Reply-To\"\r\n\r\n<ada-1@mail.example.com>")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_fail_with_the_providers_code_and_are_not_retried() {
    let mut h = harness().await;
    // Every secret wrong, as after a rotation nobody told Throughline about.
    let document = test_send_credentials(h.stub.base()).replace("throughline-test-", "rotated-");
    h.credentials = Credentials::from_document(&Secret::new(document)).unwrap();
    let expected = [
        "20003",
        "20003",
        "190",
        "190",
        "190",
        "telegram:401",
        "x:401",
        "mailgun:401",
        "web_chat:401",
    ];
    for ((provider, job), code) in every_channel().iter().zip(expected) {
        match h.send(job).await {
            SendOutcome::Failed(failure) => assert_eq!(failure.provider_code, code, "{provider}"),
            other => panic!("{provider}: {other:?}"),
        }
    }
    assert_eq!(h.stub.requests().await.unwrap().len(), expected.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_is_transient_and_the_next_attempt_sends() {
    let h = harness().await;
    h.stub
        .script(
            "twilio",
            Some(503),
            throughline_testkit::outbound::twilio_outage(),
            json!({}),
            Duration::ZERO,
            1,
        )
        .await
        .unwrap();
    assert!(matches!(h.send(&sms()).await, SendOutcome::Transient { .. }));
    assert!(matches!(h.send(&sms()).await, SendOutcome::Sent { .. }));
    assert_eq!(h.stub.requests().await.unwrap().len(), 2);

    h.stub
        .script(
            "telegram",
            Some(429),
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3", "parameters": {"retry_after": 3}}),
            json!({}),
            Duration::ZERO,
            1,
        )
        .await
        .unwrap();
    let telegram = every_channel().into_iter().find(|(p, _)| *p == "telegram").unwrap().1;
    match h.send(&telegram).await {
        SendOutcome::Transient { retry_after, .. } => assert_eq!(retry_after, Some(chrono::Duration::seconds(3))),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_refusal_fails_with_words_an_agent_reads() {
    let h = harness().await;
    h.stub
        .script(
            "twilio",
            Some(400),
            throughline_testkit::outbound::twilio_unsubscribed(),
            json!({}),
            Duration::ZERO,
            1,
        )
        .await
        .unwrap();
    match h.send(&sms()).await {
        SendOutcome::Failed(failure) => {
            assert_eq!(failure.provider_code, "21610");
            assert!(failure.reason.contains("STOP"), "{}", failure.reason);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silence_after_the_request_is_unknown_and_no_connection_is_not_sent() {
    let h = harness().await;
    // The stub takes the request and answers only after the client gave up.
    h.stub
        .script("graph", None, Value::Null, json!({}), Duration::from_millis(3_000), 1)
        .await
        .unwrap();
    let whatsapp = every_channel().into_iter().find(|(p, _)| *p == "graph").unwrap().1;
    assert!(
        matches!(h.send(&whatsapp).await, SendOutcome::Unknown { .. }),
        "a request that may have been sent is unknown, not failed or retried"
    );
    assert_eq!(h.stub.requests().await.unwrap().len(), 1, "the provider did receive it");

    // Nothing listens there: nothing can have been sent.
    let port = throughline_localstack::emulator::free_port().unwrap();
    let nowhere = ProviderApis::under(&format!("http://127.0.0.1:{port}"));
    let outcome = send_once(&h.transports, &sms(), &h.credentials, &nowhere, Utc::now())
        .await
        .unwrap();
    match outcome {
        SendOutcome::Transient { failure, .. } => assert_eq!(failure.provider_code, "network"),
        other => panic!("{other:?}"),
    }
}
