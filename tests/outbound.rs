//! Replies end to end: the timeline API records and queues them, the sender (its real handler,
//! over the OutboundQueue as the event source mapping delivers it) calls the provider stub
//! once per attempt, and the outcome is on the entry. The stub checks credentials and shapes
//! as each provider does; every test asserts the exact calls it received.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use throughline_e2e::*;
use throughline_edge::Secret;
use throughline_localstack::poller::EventSourceMapping;
use throughline_localstack::providers::ProviderStub;
use throughline_localstack::stack::{LocalStack, SENDER_BINARY};
use throughline_localstack::venv::Venv;
use throughline_model::*;
use throughline_sender::{Credentials, ProviderApis, Sender, Transports};
use throughline_testkit::outbound::sample_send_jobs;
use throughline_testkit::secrets::test_send_credentials;
use throughline_timeline_api::TimelineApi;

pub(crate) struct Outbound {
    pub(crate) stack: LocalStack,
    pub(crate) stub: ProviderStub,
    pub(crate) api: TimelineApi,
    pub(crate) sender: Sender,
    pub(crate) mapping: EventSourceMapping,
}

pub(crate) async fn outbound() -> Outbound {
    let stack = start_stack().await;
    let venv = Venv::require().unwrap_or_else(|e| panic!("{e}"));
    let stub = ProviderStub::start(&venv, test_send_credentials)
        .await
        .unwrap_or_else(|e| panic!("the provider stub could not start: {e}"));
    let credentials = Credentials::from_document(&Secret::new(test_send_credentials(stub.base()))).unwrap();
    stack
        .verify_ses_identity(throughline_testkit::secrets::TEST_SES_DOMAIN)
        .await
        .unwrap();
    let mut api = timeline_api(&stack);
    api.credentials = credentials.clone();
    let sender = Sender {
        store: stack.store(),
        sqs: stack.sqs(),
        queue_url: stack.outbound_queue().url.clone(),
        transports: Transports::new(&stack.aws, Duration::from_millis(1_500)).unwrap(),
        credentials,
        apis: ProviderApis::under(stub.base()),
        // A transient failure's job is visible again at once (deployed: 10 s, doubling).
        retry_base: Duration::ZERO,
        claim_timeout: throughline_sender::CLAIM_TIMEOUT,
    };
    let mapping = stack.mapping_of(SENDER_BINARY, Some(1));
    Outbound {
        stack,
        stub,
        api,
        sender,
        mapping,
    }
}

/// The customer's message a reply answers: from the sample job's customer to its endpoint.
pub(crate) fn customer_message(job: &SendJob, message_id: &str, at: DateTime<Utc>) -> Interaction {
    let mut inbound = Interaction::new(NewInteraction {
        channel: job.message.channel,
        provider: job.message.provider,
        direction: Direction::Inbound,
        customer: job.message.to.clone(),
        business_endpoint: job.message.from.clone(),
        provider_message_id: ProviderMessageId::parse(message_id).unwrap(),
        occurred_at: at,
        received_at: at,
    });
    inbound.text = Some("Where is my order?".into());
    if job.message.channel == Channel::Email {
        inbound.subject = Some("Order A-1001".into());
        inbound.sender_check = Some(SenderCheck::Verified);
        inbound.thread.provider_thread_id = Some("email:thread-a1001".into());
    }
    inbound
}

pub(crate) fn sample(provider: &str, channel: Channel) -> SendJob {
    sample_send_jobs()
        .into_iter()
        .find(|(p, job)| *p == provider && job.message.channel == channel)
        .map(|(_, job)| job)
        .unwrap_or_else(|| panic!("no sample job for {provider} {channel:?}"))
}

impl Outbound {
    pub(crate) fn client(&self) -> ApiClient<'_> {
        ApiClient(&self.api)
    }

    /// Records the customer's message; their customer id.
    /// A reloading document as a function reads it deployed: the SSM parameter the template's
    /// `parameter` names, the sample documents put there first.
    pub(crate) async fn stack_document<T>(
        &self,
        parameter: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> throughline_edge::config::Reloading<T> {
        self.stack.put_sample_secrets().await.unwrap();
        let name = &self.stack.resources.parameters[parameter];
        throughline_edge::config::Reloading::from_parameter(&self.stack.aws, name, parse, Duration::from_secs(60))
            .await
            .unwrap()
    }

    pub(crate) async fn customer_wrote(&self, inbound: &Interaction) -> CustomerId {
        self.stack
            .store()
            .record(inbound)
            .await
            .unwrap()
            .customer()
            .unwrap()
            .clone()
    }

    /// Works the outbound queue until it is empty, as Lambda's event source mapping would.
    pub(crate) async fn drain(&self) {
        self.drain_with(&self.sender).await
    }

    async fn drain_with(&self, sender: &Sender) {
        for _ in 0..30 {
            if self.mapping.backlog().await.unwrap() == 0 {
                return;
            }
            self.mapping
                .poll_once(1, |event| async { Ok(throughline_sender::handle(event, sender).await) })
                .await
                .unwrap();
        }
        panic!("the outbound queue did not drain");
    }

    pub(crate) async fn calls(&self) -> Vec<throughline_localstack::providers::Received> {
        self.stub.requests().await.unwrap()
    }

    /// The reply's entry as the timeline shows it.
    pub(crate) async fn reply_entry(&self, customer: &CustomerId, id: &str) -> Value {
        let (status, page) = self.client().timeline(customer, "direction=outbound").await;
        assert_eq!(status, 200, "{page}");
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no entry {id} on the timeline: {page:#}"))
    }
}

pub(crate) fn reply_id(answer: &Value) -> String {
    answer["message"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_goes_where_the_customer_wrote_on_every_channel_with_one_call_each() {
    let o = outbound().await;
    let now = Utc::now();
    let mut replies = Vec::new();
    for (n, (provider, job)) in sample_send_jobs().into_iter().enumerate() {
        // Telegram's inbound ids are `<chat id>:<message id>`.
        let message_id = match job.message.channel {
            Channel::Telegram => "111222333:6".to_owned(),
            _ => format!("in-{n}"),
        };
        // In order: the SMS and both WhatsApp samples write from one number (one customer), and
        // each reply answers the latest message.
        let inbound = customer_message(
            &job,
            &message_id,
            now - TimeDelta::minutes(5) + TimeDelta::seconds(n as i64),
        );
        let customer = o.customer_wrote(&inbound).await;
        let (status, answer) = o
            .client()
            .send_message(&customer, &format!("reply-{n}"), json!({ "text": "It ships today." }))
            .await;
        assert_eq!(status, 202, "{provider} {:?}: {answer}", job.message.channel);
        let message = &answer["message"];
        assert_eq!(message["direction"], "outbound");
        assert_eq!(message["delivery"]["status"], "queued");
        assert_eq!(message["author"], AGENT_ARN);
        assert_eq!(message["text"], "It ships today.");
        let routing = &answer["routing"];
        assert_eq!(routing["reason"], "latest");
        assert_eq!(routing["to"], job.message.to.key());
        assert_eq!(routing["from"], job.message.from.key());
        assert_eq!(routing["answered_interaction_id"], inbound.id.as_str());
        replies.push((provider, customer, reply_id(&answer)));
    }
    // Nothing is called before the sender works the queue.
    assert!(o.calls().await.is_empty());
    o.drain().await;
    let calls = o.calls().await;
    let providers: Vec<&str> = calls.iter().map(|c| c.provider.as_str()).collect();
    let mut expected: Vec<&str> = replies.iter().map(|(p, _, _)| *p).collect();
    let mut sorted = providers.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "one call per reply: {providers:?}");
    for (provider, customer, id) in &replies {
        let entry = o.reply_entry(customer, id).await;
        assert_eq!(entry["delivery"]["status"], "sent", "{provider}: {entry:#}");
        assert!(entry["delivery"]["provider_message_id"].is_string(), "{entry:#}");
        // In the conversation of the message it answers.
        let (_, page) = o.client().timeline(customer, "").await;
        let conversations: Vec<&Value> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["conversation_id"])
            .collect();
        assert!(conversations.windows(2).all(|w| w[0] == w[1]), "{provider}: {page:#}");
    }
    // The Telegram reply answers the customer's message, threaded as a reply.
    let telegram = calls.iter().find(|c| c.provider == "telegram").unwrap();
    let body: Value = serde_json::from_str(&telegram.body).unwrap();
    assert_eq!(body["reply_parameters"]["message_id"], json!(6), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_answers_the_same_message_another_body_is_refused_and_a_down_queue_is_retried() {
    let o = outbound().await;
    let job = sample("twilio", Channel::Sms);
    let customer = o.customer_wrote(&customer_message(&job, "SMin1", Utc::now())).await;
    let body = json!({ "text": "Your refund is on its way." });
    // The queue unreachable: 503, the entry on the timeline as queued, nothing called.
    let down = TimelineApi {
        outbound: throughline_queue::InteractionPublisher::new(
            o.stack.sqs(),
            format!("{}-missing", o.stack.outbound_queue().url),
        ),
        ..o.api.clone()
    };
    let (status, error) = ApiClient(&down).send_message(&customer, "k-1", body.clone()).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (503, Some("queue_unavailable")),
        "{error}"
    );
    let (status, first) = o.client().send_message(&customer, "k-1", body.clone()).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["message"]["delivery"]["status"], "queued");
    // Key order and spacing aside, the same body: the same message.
    let (status, again) = o
        .client()
        .raw_with(
            "POST",
            &format!("/customers/{customer}/messages"),
            Some(json!({ "text": "Your refund is on its way." })),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(reply_id(&again), reply_id(&first));
    let (status, reused) = o
        .client()
        .send_message(&customer, "k-1", json!({ "text": "Something else" }))
        .await;
    assert_eq!(
        (status, reused["error"]["code"].as_str()),
        (409, Some("idempotency_key_reused"))
    );
    let (status, missing) = o
        .client()
        .raw("POST", &format!("/customers/{customer}/messages"), Some(body.clone()))
        .await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (400, Some("invalid_header"))
    );
    o.drain().await;
    // Three jobs were queued for one attempt; the provider was called once.
    let calls = o.calls().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let form: Vec<(String, String)> = form_urlencoded::parse(calls[0].body.as_bytes()).into_owned().collect();
    assert!(
        form.contains(&("Body".into(), "Your refund is on its way.".into())),
        "{form:?}"
    );
    let entry = o.reply_entry(&customer, &reply_id(&first)).await;
    assert_eq!(entry["delivery"]["status"], "sent");
    let (_, page) = o.client().timeline(&customer, "direction=outbound").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1, "one entry: {page:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_job_is_not_sent_again_and_an_interrupted_attempt_is_unknown() {
    let o = outbound().await;
    let job = sample("twilio", Channel::Sms);
    let customer = o.customer_wrote(&customer_message(&job, "SMin2", Utc::now())).await;
    let (_, first) = o
        .client()
        .send_message(&customer, "k-2", json!({ "text": "One" }))
        .await;
    o.drain().await;
    let id = InteractionId::try_from(reply_id(&first)).unwrap();
    // SQS delivers the job again after it was sent: no second call.
    let sent_job = o.stack.store().send_job(&id).await.unwrap().unwrap();
    o.api.outbound.publish(&[sent_job]).await.unwrap();
    o.drain().await;
    assert_eq!(o.calls().await.len(), 1);

    // A sender that claimed an attempt and stopped while calling: its redelivery, once the claim
    // is older than a call can take, does not call (the provider may have sent it) and the
    // reply is unknown.
    let (_, second) = o
        .client()
        .send_message(&customer, "k-3", json!({ "text": "Two" }))
        .await;
    let second_id = InteractionId::try_from(reply_id(&second)).unwrap();
    let job = o.stack.store().send_job(&second_id).await.unwrap().unwrap();
    let store = o.stack.store();
    let claimed = store
        .claim_send(&job, Utc::now(), throughline_sender::CLAIM_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(claimed, throughline_store::Claim::Granted);
    let in_flight = store
        .claim_send(&job, Utc::now(), throughline_sender::CLAIM_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        in_flight,
        throughline_store::Claim::InFlight,
        "a young claim may still be calling"
    );
    let after_the_stop = Sender {
        claim_timeout: Duration::ZERO,
        ..o.sender.clone()
    };
    o.drain_with(&after_the_stop).await;
    assert_eq!(o.calls().await.len(), 1, "no call after an interrupted one");
    let entry = o.reply_entry(&customer, second_id.as_str()).await;
    assert_eq!(entry["delivery"]["status"], "unknown", "{entry:#}");
    assert_eq!(entry["delivery"]["error"]["code"], "interrupted");
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retried_permanent_ones_fail_and_silence_is_unknown_until_retried() {
    let o = outbound().await;
    let job = sample("twilio", Channel::Sms);
    let customer = o.customer_wrote(&customer_message(&job, "SMin3", Utc::now())).await;

    // 503 once, then accepted: two calls, sent.
    o.stub
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
    let (_, flaky) = o.client().send_message(&customer, "t-1", json!({ "text": "A" })).await;
    o.drain().await;
    assert_eq!(o.calls().await.len(), 2);
    let entry = o.reply_entry(&customer, &reply_id(&flaky)).await;
    assert_eq!(entry["delivery"]["status"], "sent", "{entry:#}");

    // Unsubscribed at Twilio: failed at once, with the code and a reason; retried by the agent.
    o.stub
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
    let (_, refused) = o.client().send_message(&customer, "t-2", json!({ "text": "B" })).await;
    o.drain().await;
    assert_eq!(o.calls().await.len(), 3);
    let entry = o.reply_entry(&customer, &reply_id(&refused)).await;
    assert_eq!(entry["delivery"]["status"], "failed", "{entry:#}");
    assert_eq!(entry["delivery"]["error"]["code"], "21610");
    let (status, retried) = o.client().retry_message(&customer, reply_id(&refused)).await;
    assert_eq!(status, 202, "{retried}");
    assert_eq!(retried["message"]["delivery"]["attempt"], 2);
    assert_eq!(retried["message"]["delivery"]["status"], "queued");
    o.drain().await;
    assert_eq!(o.calls().await.len(), 4);
    let entry = o.reply_entry(&customer, &reply_id(&refused)).await;
    assert_eq!(
        (
            entry["delivery"]["status"].as_str(),
            entry["delivery"]["attempt"].as_u64()
        ),
        (Some("sent"), Some(2))
    );
    let (status, sent) = o.client().retry_message(&customer, reply_id(&refused)).await;
    assert_eq!((status, sent["error"]["code"].as_str()), (409, Some("not_retryable")));

    // No answer in time: unknown, never sent again by itself.
    o.stub
        .script("twilio", None, Value::Null, json!({}), Duration::from_millis(3_000), 1)
        .await
        .unwrap();
    let (_, silent) = o.client().send_message(&customer, "t-3", json!({ "text": "C" })).await;
    o.drain().await;
    assert_eq!(o.calls().await.len(), 5);
    let entry = o.reply_entry(&customer, &reply_id(&silent)).await;
    assert_eq!(entry["delivery"]["status"], "unknown", "{entry:#}");
    assert_eq!(entry["delivery"]["error"]["code"], "no_answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_channel_rules_refuse_before_anything_is_recorded() {
    let o = outbound().await;
    let now = Utc::now();
    // WhatsApp, 25 h after the customer's last message: only a template.
    let whatsapp = sample("graph", Channel::Whatsapp);
    let customer = o
        .customer_wrote(&customer_message(&whatsapp, "wamid.in1", now - TimeDelta::hours(25)))
        .await;
    let (status, closed) = o
        .client()
        .send_message(&customer, "w-1", json!({ "text": "Hello?" }))
        .await;
    assert_eq!(
        (status, closed["error"]["code"].as_str()),
        (422, Some("window_closed")),
        "{closed}"
    );
    let (status, template) = o
        .client()
        .send_message(
            &customer,
            "w-1",
            json!({ "whatsapp_template": { "name": "order_update", "language": "en_US" } }),
        )
        .await;
    assert_eq!(status, 202, "a refused request leaves its key free: {template}");
    // Too long for WhatsApp.
    let (status, long) = o
        .client()
        .send_message(&customer, "w-2", json!({ "text": "x".repeat(4_097) }))
        .await;
    assert_eq!((status, long["error"]["code"].as_str()), (422, Some("text_too_long")));

    // SMS: STOP refuses, START allows again (another number than the WhatsApp customer's).
    let mut sms = sample("twilio", Channel::Sms);
    sms.message.to = Handle::Phone {
        number: E164::parse("+14155550123").unwrap(),
    };
    let mut stop = customer_message(&sms, "SMstop", now - TimeDelta::minutes(3));
    stop.text = Some("STOP".into());
    let texter = o.customer_wrote(&stop).await;
    let (status, opted_out) = o.client().send_message(&texter, "s-1", json!({ "text": "Hi" })).await;
    assert_eq!(
        (status, opted_out["error"]["code"].as_str()),
        (422, Some("recipient_opted_out"))
    );
    // A fact on her profile: her number, and the business number it stopped.
    let (_, profile) = o.client().profile(&texter).await;
    let number = profile["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["identifier"] == "phone:+14155550123")
        .cloned()
        .unwrap();
    assert_eq!(number["sms_opted_out"], json!([sms.message.from.key()]), "{profile:#}");
    // An older START delivered late changes nothing: the latest keyword by time decides.
    let mut late = customer_message(&sms, "SMlate", now - TimeDelta::minutes(4));
    late.text = Some("START".into());
    o.customer_wrote(&late).await;
    let (status, _) = o.client().send_message(&texter, "s-1", json!({ "text": "Hi" })).await;
    assert_eq!(status, 422);
    let mut start = customer_message(&sms, "SMstart", now - TimeDelta::minutes(1));
    start.text = Some("start".into());
    o.customer_wrote(&start).await;
    let (status, allowed) = o.client().send_message(&texter, "s-1", json!({ "text": "Hi" })).await;
    assert_eq!(status, 202, "{allowed}");

    // A mailbox whose domain the credentials do not list.
    let mut ses = sample("mailgun", Channel::Email);
    ses.message.provider = Provider::Ses;
    ses.message.from = Handle::Email {
        address: EmailAddress::parse("support@elsewhere.example").unwrap(),
    };
    let mailer = o.customer_wrote(&customer_message(&ses, "ses-in-1", now)).await;
    let (status, unconfigured) = o.client().send_message(&mailer, "e-1", json!({ "text": "Hi" })).await;
    assert_eq!(
        (status, unconfigured["error"]["code"].as_str()),
        (422, Some("channel_not_configured"))
    );

    o.drain().await;
    // Only the two allowed replies were sent; the refused ones were never recorded.
    assert_eq!(o.calls().await.len(), 2);
    let (_, page) = o.client().timeline(&customer, "direction=outbound").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{page:#}");
    let (_, page) = o.client().timeline(&mailer, "direction=outbound").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 0, "{page:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_providers_echo_is_the_reply_whether_it_comes_after_or_before_the_answer() {
    let o = outbound().await;
    let messenger = sample("graph", Channel::Messenger);
    let echo_of = |provider_id: &str| {
        let mut echo = customer_message(&messenger, provider_id, Utc::now());
        echo.direction = Direction::Outbound;
        echo.text = Some("On its way".into());
        echo
    };
    let customer = o
        .customer_wrote(&customer_message(
            &messenger,
            "m_in1",
            Utc::now() - TimeDelta::minutes(2),
        ))
        .await;

    // After: the echo finds the alias, and is the reply.
    let (_, after) = o
        .client()
        .send_message(&customer, "e-1", json!({ "text": "On its way" }))
        .await;
    o.drain().await;
    let entry = o.reply_entry(&customer, &reply_id(&after)).await;
    let provider_id = entry["delivery"]["provider_message_id"].as_str().unwrap().to_owned();
    let recorded = o.stack.store().record(&echo_of(&provider_id)).await.unwrap();
    assert!(
        matches!(recorded, throughline_store::Recorded::Duplicate { .. }),
        "{recorded:?}"
    );

    // Before: the stub is told the id it will answer with, and the echo is recorded first.
    o.stub
        .script(
            "graph",
            Some(200),
            json!({"recipient_id": "6010000000000042", "message_id": "m_EchoFirst0001"}),
            json!({}),
            Duration::ZERO,
            1,
        )
        .await
        .unwrap();
    let (_, before) = o
        .client()
        .send_message(&customer, "e-2", json!({ "text": "On its way" }))
        .await;
    o.customer_wrote(&echo_of("m_EchoFirst0001")).await;
    let (_, page) = o.client().timeline(&customer, "direction=outbound").await;
    assert_eq!(
        page["entries"].as_array().unwrap().len(),
        3,
        "the echo, for now: {page:#}"
    );
    o.drain().await;
    let (_, page) = o.client().timeline(&customer, "direction=outbound").await;
    let ids: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let mut expected = vec![reply_id(&after), reply_id(&before)];
    let mut ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected, "two replies, no echo entries: {page:#}");
    // The echo delivered again is a duplicate too.
    let recorded = o.stack.store().record(&echo_of("m_EchoFirst0001")).await.unwrap();
    assert!(
        matches!(recorded, throughline_store::Recorded::Duplicate { .. }),
        "{recorded:?}"
    );
}

/// A mail as the customer's mail program sends it, normalized as the SES function does.
pub(crate) fn mail_from_ada(message_id: &str, headers: &str, body: &str) -> Interaction {
    let raw = format!(
        "From: Ada Lovelace <ada@example.com>\r\nTo: support@acme.example\r\nMessage-ID: <{message_id}>\r\n\
         Date: {}\r\n{headers}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        Utc::now().to_rfc2822()
    );
    let pass = Some(throughline_email::mail::Verdict::Pass);
    let envelope = throughline_email::mail::Envelope {
        provider: Provider::Ses,
        mailbox: EmailAddress::parse("support@acme.example").unwrap(),
        delivery_id: message_id.into(),
        verdicts: throughline_email::mail::Verdicts {
            spf: pass,
            dkim: pass,
            dmarc: pass,
            spam: pass,
            virus: pass,
        },
        stored: None,
        received_at: Utc::now(),
    };
    throughline_email::mail::normalize(raw.as_bytes(), &envelope).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_reply_goes_out_through_ses_threaded_and_the_customers_answer_comes_back_to_it() {
    let o = outbound().await;
    let question = mail_from_ada(
        "ada-q1@mail.example.com",
        "Subject: Order A-1001\r\n",
        "Where is my order?",
    );
    let customer = o.customer_wrote(&question).await;
    let (status, reply) = o
        .client()
        .send_message(&customer, "mail-1", json!({ "text": "It ships today." }))
        .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["message"]["subject"], "Re: Order A-1001");
    o.drain().await;
    // Sent by SES (the emulator's), from the mailbox she wrote to, in her thread.
    let sent = o.stack.ses_sent().await.unwrap();
    let (ses_id, source, raw) = sent
        .iter()
        .find(|(_, _, raw)| raw.contains("ada-q1@mail.example.com"))
        .cloned()
        .unwrap_or_else(|| panic!("SES sent no reply in her thread: {sent:?}"));
    assert_eq!(source, "support@acme.example");
    for header in [
        "Subject: Re: Order A-1001",
        "In-Reply-To: <ada-q1@mail.example.com>",
        "References: <ada-q1@mail.example.com>",
        "To: <ada@example.com>",
    ] {
        assert!(raw.contains(header), "{header} missing from:\n{raw}");
    }
    assert!(raw.contains("It ships today."), "{raw}");
    assert!(o.calls().await.is_empty(), "SES, not an HTTP provider");
    // Recorded with the Message-ID SES gave it, the one her answer will name.
    let entry = o.reply_entry(&customer, &reply_id(&reply)).await;
    assert_eq!(entry["delivery"]["status"], "sent", "{entry:#}");
    let ses_message_id = format!("{ses_id}@{}.amazonses.com", o.stack.aws.region().unwrap());
    assert_eq!(entry["delivery"]["provider_message_id"], ses_message_id.as_str());

    // Her answer, as her mail program threads it: into the same conversation.
    let answer = mail_from_ada(
        "ada-q2@mail.example.com",
        &format!(
            "Subject: Re: Re: Order A-1001\r\nIn-Reply-To: <{ses_message_id}>\r\nReferences: <ada-q1@mail.example.com> <{ses_message_id}>\r\n"
        ),
        "Thank you!",
    );
    o.customer_wrote(&answer).await;
    let (_, page) = o.client().timeline(&customer, "").await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{page:#}");
    assert!(
        entries
            .iter()
            .all(|e| e["conversation_id"] == entries[0]["conversation_id"]),
        "question, reply and answer are one conversation: {page:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn where_the_customer_is_is_their_latest_message_across_a_merged_group() {
    let o = outbound().await;
    let now = Utc::now();
    let sms = sample("twilio", Channel::Sms);
    let messenger = sample("graph", Channel::Messenger);
    let ada = o
        .customer_wrote(&customer_message(&sms, "SMgroup1", now - TimeDelta::minutes(30)))
        .await;
    let on_messenger = o
        .customer_wrote(&customer_message(&messenger, "m_group1", now - TimeDelta::minutes(10)))
        .await;
    let (status, merged) = o.client().merge(&ada, &on_messenger, Some("same person")).await;
    assert_eq!(status, 200, "{merged}");
    // Asked through the group's root, the member's Messenger message is the latest: there.
    let (status, reply) = o
        .client()
        .send_message(&ada, "g-1", json!({ "text": "Found it." }))
        .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["routing"]["channel"], "messenger");
    assert_eq!(reply["routing"]["to"], messenger.message.to.key());
    // The reply is on the member whose handle it goes to, shown on the group's timeline.
    assert_eq!(reply["message"]["customer_id"], on_messenger.as_str());
    // She texts again: now SMS is where she is.
    o.customer_wrote(&customer_message(&sms, "SMgroup2", now - TimeDelta::minutes(1)))
        .await;
    let (_, reply) = o
        .client()
        .send_message(&on_messenger, "g-2", json!({ "text": "Texting you." }))
        .await;
    assert_eq!(reply["routing"]["channel"], "sms", "{reply}");
    o.drain().await;
    let providers: Vec<String> = o.calls().await.into_iter().map(|c| c.provider).collect();
    assert_eq!(providers.len(), 2);
    assert!(
        providers.contains(&"graph".to_owned()) && providers.contains(&"twilio".to_owned()),
        "{providers:?}"
    );
}
