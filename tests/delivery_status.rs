//! Delivery status end to end: a reply goes out through the sender and the provider stub, the
//! provider's status webhooks go through their connector (signed as the provider signs them),
//! the queue and the writer, and the reply's entry on the timeline API shows where it is.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use throughline_e2e::*;
use throughline_localstack::sign::{meta_event_with, twilio_event_with};
use throughline_model::*;

use crate::outbound::{Outbound, customer_message, outbound, reply_id, sample};

/// Twilio's status callback for `sid`, as Twilio signs it.
fn twilio_callback(sid: &str, status: &str, error_code: Option<&str>) -> lambda_http::Request {
    let mut set = vec![
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("MessageStatus", status),
        ("SmsStatus", status),
    ];
    if let Some(code) = error_code {
        set.push(("ErrorCode", code));
    }
    let event = twilio_event_with(&event_path("sms/05-status-callback.json"), &set).unwrap();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// WhatsApp Cloud's webhook with these `statuses[]`, as Meta signs it.
fn whatsapp_statuses(statuses: Value) -> lambda_http::Request {
    let event = meta_event_with(&event_path("facebook/20-whatsapp-status-batch.json"), |body| {
        body["entry"][0]["changes"][0]["value"]["statuses"] = statuses;
    })
    .unwrap();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

impl Outbound {
    /// The sample customer of `provider`'s `channel` wrote `message_id` a minute ago: the
    /// sample job and their customer id.
    async fn wrote_on(&self, provider: &str, channel: Channel, message_id: &str) -> (SendJob, CustomerId) {
        let job = sample(provider, channel);
        let customer = self
            .customer_wrote(&customer_message(&job, message_id, Utc::now() - TimeDelta::minutes(1)))
            .await;
        (job, customer)
    }

    /// One reply per key, each sent before the next is asked for; their interaction ids.
    async fn replies(&self, customer: &CustomerId, keys: &[&str]) -> Vec<String> {
        let mut ids = Vec::new();
        for key in keys {
            let (status, answer) = self
                .client()
                .send_message(customer, key, json!({ "text": "Your order ships today" }))
                .await;
            assert_eq!(status, 202, "{answer}");
            ids.push(reply_id(&answer));
            self.drain().await;
        }
        ids
    }

    /// Works the interactions queue (where the connectors put status reports) until empty.
    pub(crate) async fn write(&self) {
        drain(&self.stack.writer_mapping(Some(1)), &self.stack.store()).await;
    }

    async fn callback(&self, request: lambda_http::Request) {
        let response = throughline_sms::handle(request, &sms_function(&self.stack)).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    }
}

fn history(entry: &Value) -> Vec<(String, Option<String>)> {
    entry["delivery"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_owned(),
                c["source"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn twilio_statuses_before_the_send_result_out_of_order_and_again_end_in_one_delivered_history() {
    let o = outbound().await;
    let (_, customer) = o.wrote_on("twilio", Channel::Sms, "SMin0001").await;
    let sid = "SM5a7e5000000000000000000000000001";
    o.stub
        .script(
            "twilio",
            Some(201),
            json!({"sid": sid, "status": "queued", "error_code": null}),
            json!({}),
            Duration::ZERO,
            1,
        )
        .await
        .unwrap();
    let (status, answer) = o
        .client()
        .send_message(&customer, "d-1", json!({ "text": "Your order ships today" }))
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = reply_id(&answer);

    // Twilio calls back before the sender has recorded its answer: kept, not lost.
    o.callback(twilio_callback(sid, "delivered", None)).await;
    o.write().await;
    assert_eq!(o.reply_entry(&customer, &id).await["delivery"]["status"], "queued");

    o.drain().await;
    let entry = o.reply_entry(&customer, &id).await;
    assert_eq!(entry["delivery"]["status"], "delivered", "{entry:#}");

    // The `sent` callback arrives late, and `delivered` comes again (Twilio retried it): the
    // late one is history, the repeat is nothing.
    o.callback(twilio_callback(sid, "sent", None)).await;
    o.callback(twilio_callback(sid, "delivered", None)).await;
    o.write().await;
    let entry = o.reply_entry(&customer, &id).await;
    assert_eq!(entry["delivery"]["status"], "delivered", "{entry:#}");
    let callback = Some("twilio_status_callback".to_owned());
    let mut changes = history(&entry);
    changes.sort();
    assert_eq!(
        changes,
        [
            ("delivered".to_owned(), callback.clone()),
            ("queued".to_owned(), None),
            ("sent".to_owned(), None),
            ("sent".to_owned(), callback),
        ],
        "{entry:#}"
    );
    assert!(entry["delivery"].get("error").is_none(), "{entry:#}");

    // A callback for a message Throughline did not send (another app on the number) stays
    // pending and touches no entry; a forged one is refused and queues nothing.
    o.callback(twilio_callback("SM5a7e50000000000000000000000000ff", "delivered", None))
        .await;
    let mut forged = twilio_callback(sid, "failed", Some("30003"));
    forged
        .headers_mut()
        .insert("x-twilio-signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".parse().unwrap());
    let response = throughline_sms::handle(forged, &sms_function(&o.stack)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    o.write().await;
    assert_eq!(history(&o.reply_entry(&customer, &id).await).len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undelivered_sms_carries_the_carriers_reason_and_an_agent_may_send_it_again() {
    let o = outbound().await;
    let (_, customer) = o.wrote_on("twilio", Channel::Sms, "SMin0002").await;
    let [id] = <[String; 1]>::try_from(o.replies(&customer, &["d-2"]).await).unwrap();
    let entry = o.reply_entry(&customer, &id).await;
    let sid = entry["delivery"]["provider_message_id"].as_str().unwrap().to_owned();

    o.callback(twilio_callback(&sid, "undelivered", Some("30003"))).await;
    o.write().await;
    let entry = o.reply_entry(&customer, &id).await;
    assert_eq!(entry["delivery"]["status"], "undelivered", "{entry:#}");
    assert_eq!(entry["delivery"]["error"]["code"], "30003");
    assert!(
        entry["delivery"]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{entry:#}"
    );
    let (status, (_, failed)) = (200, o.client().timeline(&customer, "status=undelivered").await);
    assert_eq!(status, 200);
    assert_eq!(failed["entries"].as_array().unwrap().len(), 1, "{failed:#}");

    let (status, retried) = o.client().retry_message(&customer, &id).await;
    assert_eq!(status, 202, "{retried}");
    o.drain().await;
    let entry = o.reply_entry(&customer, &id).await;
    assert_eq!(
        (
            entry["delivery"]["status"].as_str(),
            entry["delivery"]["attempt"].as_u64()
        ),
        (Some("sent"), Some(2))
    );
    // The first attempt's late `delivered` is history: it says nothing of the second.
    o.callback(twilio_callback(&sid, "delivered", None)).await;
    o.write().await;
    let entry = o.reply_entry(&customer, &id).await;
    assert_eq!(entry["delivery"]["status"], "sent", "{entry:#}");
    assert!(history(&entry).contains(&("delivered".into(), Some("twilio_status_callback".into()))));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_whatsapp_status_of_a_batch_lands_and_a_lone_read_is_read() {
    let o = outbound().await;
    let (_, customer) = o.wrote_on("graph", Channel::Whatsapp, "wamid.in0001").await;
    let ids = o.replies(&customer, &["w-1", "w-2"]).await;
    let mut wamids = Vec::new();
    for id in &ids {
        let entry = o.reply_entry(&customer, id).await;
        wamids.push(entry["delivery"]["provider_message_id"].as_str().unwrap().to_owned());
    }
    let now = Utc::now().timestamp();
    let facebook = facebook_function(&o.stack);
    let response = throughline_facebook::handle(
        whatsapp_statuses(json!([
            {"id": wamids[0], "status": "sent", "timestamp": (now - 3).to_string(), "recipient_id": "14155550100",
             "conversation": {"id": "c1", "origin": {"type": "service"}}, "pricing": {"billable": true, "pricing_model": "PMP", "category": "service"}},
            {"id": wamids[0], "status": "delivered", "timestamp": (now - 2).to_string(), "recipient_id": "14155550100"},
            {"id": wamids[1], "status": "read", "timestamp": (now - 1).to_string(), "recipient_id": "14155550100"},
        ])),
        &facebook,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    o.write().await;
    let first = o.reply_entry(&customer, &ids[0]).await;
    let second = o.reply_entry(&customer, &ids[1]).await;
    assert_eq!(first["delivery"]["status"], "delivered", "{first:#}");
    assert_eq!(second["delivery"]["status"], "read", "{second:#}");
    assert_eq!(
        second["delivery"]["updated_at"]
            .as_str()
            .map(|t| t.parse::<chrono::DateTime<Utc>>().unwrap().timestamp()),
        Some(now - 1),
        "the provider's time"
    );

    // A failure, later, on the first: delivered outranks a failure reported for it.
    let response = throughline_facebook::handle(
        whatsapp_statuses(json!([
            {"id": wamids[0], "status": "failed", "timestamp": now.to_string(), "recipient_id": "14155550100",
             "errors": [{"code": 131026, "title": "Message undeliverable"}]},
        ])),
        &facebook,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    o.write().await;
    let first = o.reply_entry(&customer, &ids[0]).await;
    assert_eq!(first["delivery"]["status"], "delivered", "{first:#}");
    assert!(history(&first).contains(&("failed".into(), Some("whatsapp_statuses".into()))));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_messenger_watermark_covers_every_reply_sent_before_it() {
    let o = outbound().await;
    let (messenger, customer) = o.wrote_on("graph", Channel::Messenger, "m_in0001").await;
    let ids = o.replies(&customer, &["m-1", "m-2", "m-3"]).await;
    let watermark = Utc::now().timestamp_millis();
    // The page, the customer's id on it: as Meta sends them.
    let (Handle::Platform { id: page, .. }, Handle::Platform { id: psid, .. }) =
        (&messenger.message.from, &messenger.message.to)
    else {
        panic!("Messenger handles")
    };
    let receipts = |kind: &str, up_to: i64| {
        let event = meta_event_with(&event_path("facebook/09-messenger-delivery-read.json"), |body| {
            body["entry"][0]["id"] = page.as_str().into();
            body["entry"][0]["messaging"] = json!([{
                "sender": {"id": psid.as_str()}, "recipient": {"id": page.as_str()},
                "timestamp": up_to + 100, kind: {"watermark": up_to}
            }]);
        })
        .unwrap();
        lambda_http::request::from_str(&event.to_string()).unwrap()
    };
    let facebook = facebook_function(&o.stack);
    let response = throughline_facebook::handle(receipts("delivery", watermark), &facebook).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    o.write().await;
    for id in &ids {
        let entry = o.reply_entry(&customer, id).await;
        assert_eq!(entry["delivery"]["status"], "delivered", "{entry:#}");
    }
    // A read watermark, then an older delivery one redelivered: read stays.
    throughline_facebook::handle(receipts("read", watermark + 1), &facebook).await;
    throughline_facebook::handle(receipts("delivery", watermark - 60_000), &facebook).await;
    o.write().await;
    for id in &ids {
        let entry = o.reply_entry(&customer, id).await;
        assert_eq!(entry["delivery"]["status"], "read", "{entry:#}");
        assert!(history(&entry).contains(&("read".into(), Some(WATERMARK_SOURCE.into()))));
    }
    // A reply sent after the watermark is not covered by it.
    let (_, later) = o
        .client()
        .send_message(&customer, "m-4", json!({ "text": "One more thing" }))
        .await;
    o.drain().await;
    assert_eq!(
        o.reply_entry(&customer, &reply_id(&later)).await["delivery"]["status"],
        "sent"
    );
}

/// SES's event about a reply it sent, as the configuration set publishes it to the stack's
/// events topic: the sample `name`, about `ses_id` from `source` to `recipient`.
fn ses_event(o: &Outbound, name: &str, ses_id: &str, source: &str, recipient: &str) -> Value {
    let mut event = sample_json(&format!("email/{name}"));
    let record = &mut event["Records"][0]["Sns"];
    record["TopicArn"] = o.stack.resources.topics["OutboundMailEventsTopic"].clone().into();
    let mut message: Value = serde_json::from_str(record["Message"].as_str().unwrap()).unwrap();
    message["mail"]["messageId"] = ses_id.into();
    message["mail"]["source"] = source.into();
    // Now: after the customer's mail and the reply.
    let now = Utc::now().to_rfc3339();
    message["mail"]["timestamp"] = now.clone().into();
    // Each sample is one event type, with its detail (and the recipients it names): a sample
    // without them is a broken sample, not a test to pass over.
    let (detail, recipients) = match message["eventType"].as_str() {
        Some("Delivery") => ("delivery", None),
        Some("Bounce") => ("bounce", Some("bouncedRecipients")),
        Some("Complaint") => ("complaint", Some("complainedRecipients")),
        other => panic!("{name}: no SES event type this test knows: {other:?}"),
    };
    let detail = message
        .get_mut(detail)
        .unwrap_or_else(|| panic!("{name} has no {detail}"));
    detail["timestamp"] = now.into();
    if let Some(list) = recipients {
        detail[list][0]["emailAddress"] = recipient.into();
        assert!(detail[list][0].is_object(), "{name} has no {list}");
    }
    record["Message"] = message.to_string().into();
    event
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hard_bounce_fails_the_reply_and_refuses_the_next_until_the_customer_writes_again() {
    let o = outbound().await;
    let question =
        crate::outbound::mail_from_ada("ada-b1@mail.example.com", "Subject: Order A-1001\r\n", "Where is it?");
    let customer = o.customer_wrote(&question).await;
    let (status, reply) = o
        .client()
        .send_message(&customer, "b-1", json!({ "text": "It ships today." }))
        .await;
    assert_eq!(status, 202, "{reply}");
    o.drain().await;
    let id = reply_id(&reply);
    let sent = o.stack.ses_sent().await.unwrap();
    let (ses_id, source, _) = sent.last().cloned().unwrap();

    // SES delivers first, then the recipient's server bounces it for good.
    let ses = ses_function(&o.stack);
    for name in ["14-ses-event-delivery.json", "15-ses-event-bounce.json"] {
        throughline_email::handle_ses(ses_event(&o, name, &ses_id, &source, "ada@example.com"), &ses)
            .await
            .unwrap();
    }
    o.write().await;
    let entry = o.reply_entry(&customer, &id).await;
    // Delivered outranks a failure reported for the same message: the bounce is history.
    assert_eq!(entry["delivery"]["status"], "delivered", "{entry:#}");
    assert!(history(&entry).contains(&("undelivered".into(), Some("ses_event".into()))));
    let (_, profile) = o.client().profile(&customer).await;
    let ada = profile["identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["identifier"] == "email:ada@example.com")
        .cloned()
        .unwrap();
    assert_eq!(ada["recipient_state"], "undeliverable", "{profile:#}");

    // The next reply is refused before anything is recorded or sent.
    let (status, refused) = o
        .client()
        .send_message(&customer, "b-2", json!({ "text": "Did you get it?" }))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("recipient_undeliverable")),
        "{refused}"
    );

    // She writes again (her address works after all): replies go out again.
    let mut again = crate::outbound::mail_from_ada("ada-b2@mail.example.com", "Subject: Order A-1001\r\n", "Hello?");
    again.occurred_at = Utc::now() + TimeDelta::seconds(1);
    o.customer_wrote(&again).await;
    let (status, answer) = o
        .client()
        .send_message(&customer, "b-3", json!({ "text": "Yes, it ships today." }))
        .await;
    assert_eq!(status, 202, "{answer}");

    // A bounce before delivery fails it; a complaint opts the address out.
    o.drain().await;
    let sent = o.stack.ses_sent().await.unwrap();
    let (ses_id, source, _) = sent.last().cloned().unwrap();
    throughline_email::handle_ses(
        ses_event(&o, "15-ses-event-bounce.json", &ses_id, &source, "ada@example.com"),
        &ses,
    )
    .await
    .unwrap();
    o.write().await;
    let entry = o.reply_entry(&customer, &reply_id(&answer)).await;
    assert_eq!(entry["delivery"]["status"], "undelivered", "{entry:#}");
    assert_eq!(entry["delivery"]["error"]["code"], "bounce:Permanent/General");
}

#[tokio::test(flavor = "multi_thread")]
async fn mailgun_event_webhooks_are_verified_taken_once_and_queued() {
    let stack = start_stack().await;
    let mailgun = mailgun_function(&stack);
    let queue = stack.interactions_queue().url.clone();
    let event =
        throughline_localstack::sign::fresh_event(&event_path("email/18-mailgun-event-failed-permanent.json")).unwrap();
    let request = || lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = throughline_email::handle_mailgun(request(), &mailgun).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    assert_eq!(depth(&stack, &queue).await, 1, "one status report");
    // The same signed token again (a capture replayed): refused, nothing queued.
    let replay = throughline_email::handle_mailgun(request(), &mailgun).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    let mut forged = event.clone();
    let mut body: Value = serde_json::from_str(forged["body"].as_str().unwrap()).unwrap();
    body["signature"]["signature"] = "0".repeat(64).into();
    forged["body"] = body.to_string().into();
    let forged =
        throughline_email::handle_mailgun(lambda_http::request::from_str(&forged.to_string()).unwrap(), &mailgun).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(depth(&stack, &queue).await, 1);
    // The writer keeps it for the reply it names (none yet here): nothing fails.
    drain(&stack.writer_mapping(Some(1)), &stack.store()).await;
    assert_eq!(depth(&stack, &queue).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_x_read_receipt_reads_every_reply_up_to_the_dm_it_names() {
    let o = outbound().await;
    let (x, customer) = o.wrote_on("x", Channel::X, "1860000000000000001").await;
    let ids = o.replies(&customer, &["x-1", "x-2"]).await;
    let first = o.reply_entry(&customer, &ids[0]).await;
    let dm_id = first["delivery"]["provider_message_id"].as_str().unwrap().to_owned();
    let (Handle::Platform { id: account, .. }, Handle::Platform { id: ada, .. }) = (&x.message.from, &x.message.to)
    else {
        panic!("X handles")
    };
    // Ada read up to the first reply: X's read receipt, signed as X signs it.
    let mut event = sample_json("x/11-dm-read.json");
    let body = json!({
        "for_user_id": account.as_str(),
        "direct_message_mark_read_events": [{
            "created_timestamp": Utc::now().timestamp_millis().to_string(),
            "sender_id": ada.as_str(), "target": {"recipient_id": account.as_str()},
            "last_read_event_id": dm_id
        }]
    })
    .to_string();
    event["headers"]["x-twitter-webhooks-signature"] =
        throughline_x::webhook::sign(throughline_testkit::secrets::TEST_X_CONSUMER_SECRET, body.as_bytes()).into();
    event["body"] = body.into();
    event["isBase64Encoded"] = false.into();
    let response = throughline_x::handle(
        lambda_http::request::from_str(&event.to_string()).unwrap(),
        &x_function(&o.stack),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    o.write().await;
    assert_eq!(o.reply_entry(&customer, &ids[0]).await["delivery"]["status"], "read");
    // The second was sent after the DM the receipt names.
    assert_eq!(o.reply_entry(&customer, &ids[1]).await["delivery"]["status"], "sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chat_webhooks_statuses_go_onto_the_agents_reply() {
    let o = outbound().await;
    let (_, customer) = o.wrote_on("chat", Channel::Chat, "wm-in-1").await;
    let [id] = <[String; 1]>::try_from(o.replies(&customer, &["c-1"]).await).unwrap();
    // The backend answered without an id of its own: the reply goes by Throughline's.
    let entry = o.reply_entry(&customer, &id).await;
    assert_eq!(entry["delivery"]["provider_message_id"], id.as_str());

    let mut event = sample_json("chat/14-widget-status.json");
    let body = json!({ "statuses": [
        { "message_id": id, "status": "read", "at": Utc::now().to_rfc3339() },
        { "message_id": id, "status": "delivered", "at": (Utc::now() - TimeDelta::seconds(5)).to_rfc3339() }
    ] })
    .to_string();
    let timestamp = Utc::now().timestamp().to_string();
    event["headers"]["x-throughline-timestamp"] = timestamp.clone().into();
    event["headers"]["x-throughline-signature"] = throughline_edge::signature::chat_signature(
        throughline_testkit::secrets::TEST_CHAT_SECRET,
        &timestamp,
        body.as_bytes(),
    )
    .into();
    event["body"] = body.into();
    let request = || lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = throughline_chat::handle(request(), &chat_function(&o.stack)).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    o.write().await;
    let entry = o.reply_entry(&customer, &id).await;
    assert_eq!(entry["delivery"]["status"], "read", "{entry:#}");
    let mut forged = event.clone();
    forged["headers"]["x-throughline-signature"] = "AAAA".into();
    let refused = throughline_chat::handle(
        lambda_http::request::from_str(&forged.to_string()).unwrap(),
        &chat_function(&o.stack),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciliation_asks_twilio_about_replies_still_sent_and_only_those() {
    let o = outbound().await;
    let (_, customer) = o.wrote_on("twilio", Channel::Sms, "SMin0009").await;
    let ids = o.replies(&customer, &["r-1", "r-2", "r-3"]).await;
    // The second's callback came: it is not asked about.
    let second = o.reply_entry(&customer, &ids[1]).await;
    let sid = second["delivery"]["provider_message_id"].as_str().unwrap().to_owned();
    o.callback(twilio_callback(&sid, "delivered", None)).await;
    o.write().await;

    let reconciler = throughline_sender::reconcile::Reconciler {
        store: o.stack.store(),
        publisher: throughline_queue::InteractionPublisher::new(o.stack.sqs(), &o.stack.interactions_queue().url),
        http: throughline_sender::ProviderClient::new(Duration::from_millis(1_500)).unwrap(),
        credentials: o.sender.credentials.clone(),
        apis: o.sender.apis.clone(),
    };
    // Twilio's record of the first says undelivered (30003); of the third, delivered.
    let first_sid = o.reply_entry(&customer, &ids[0]).await["delivery"]["provider_message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = o.calls().await.len();
    o.stub
        .script_path(
            "twilio",
            &format!("/Messages/{first_sid}.json"),
            200,
            json!({"sid": first_sid, "status": "undelivered", "error_code": 30003,
                   "date_updated": Utc::now().to_rfc2822()}),
        )
        .await
        .unwrap();
    let today = Utc::now().date_naive();
    let reconciled = throughline_sender::reconcile::run(&reconciler, today).await.unwrap();
    assert_eq!(
        (
            reconciled.kept,
            reconciled.looked_up,
            reconciled.reported,
            reconciled.failed
        ),
        (3, 2, 2, 0),
        "{reconciled:?}"
    );
    let lookups: Vec<_> = o.calls().await.into_iter().skip(before).collect();
    assert_eq!(lookups.len(), 2, "one Fetch Message per reply still sent");
    assert!(
        lookups
            .iter()
            .all(|c| c.provider == "twilio" && c.path.ends_with(".json") && c.path.contains("/Messages/SM"))
    );
    assert!(
        !lookups.iter().any(|c| c.path.contains(&sid)),
        "not the one whose callback came"
    );
    o.write().await;
    let first = o.reply_entry(&customer, &ids[0]).await;
    assert_eq!(
        (
            first["delivery"]["status"].as_str(),
            first["delivery"]["error"]["code"].as_str()
        ),
        (Some("undelivered"), Some("30003")),
        "{first:#}"
    );
    let third = o.reply_entry(&customer, &ids[2]).await;
    assert_eq!(third["delivery"]["status"], "delivered", "{third:#}");
    assert!(history(&third).contains(&("delivered".into(), Some("twilio_reconciliation".into()))));

    // Run again (the scheduler's retry): nothing left to ask, nothing doubled.
    let again = throughline_sender::reconcile::run(&reconciler, today).await.unwrap();
    assert_eq!((again.looked_up, again.reported), (0, 0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciliation_tells_an_unknown_reply_twilio_has_from_one_it_never_got() {
    let o = outbound().await;
    let (_, customer) = o.wrote_on("twilio", Channel::Sms, "SMin0010").await;
    // Both calls get no answer in time (the sender waits 1.5 s): Twilio made the first message,
    // then answered too late; it refused the second, too late to say so.
    let mut ids = Vec::new();
    for (key, status, text) in [
        ("u-1", None, "Your order ships today"),
        ("u-2", Some(500), "It left the warehouse"),
    ] {
        o.stub
            .script(
                "twilio",
                status,
                json!({"code": 20500, "message": "Internal Server Error", "status": 500}),
                json!({}),
                Duration::from_millis(2_500),
                1,
            )
            .await
            .unwrap();
        let (accepted, answer) = o.client().send_message(&customer, key, json!({ "text": text })).await;
        assert_eq!(accepted, 202, "{answer}");
        o.drain().await;
        let id = reply_id(&answer);
        assert_eq!(o.reply_entry(&customer, &id).await["delivery"]["status"], "unknown");
        ids.push(id);
    }
    let reconciler = throughline_sender::reconcile::Reconciler {
        store: o.stack.store(),
        publisher: throughline_queue::InteractionPublisher::new(o.stack.sqs(), &o.stack.interactions_queue().url),
        http: throughline_sender::ProviderClient::new(Duration::from_millis(1_500)).unwrap(),
        credentials: o.sender.credentials.clone(),
        apis: o.sender.apis.clone(),
    };
    let reconciled = throughline_sender::reconcile::run(&reconciler, Utc::now().date_naive())
        .await
        .unwrap();
    assert_eq!((reconciled.looked_up, reconciled.reported), (2, 2), "{reconciled:?}");
    o.write().await;
    let had = o.reply_entry(&customer, &ids[0]).await;
    assert_eq!(had["delivery"]["status"], "delivered", "Twilio had it: {had:#}");
    let never = o.reply_entry(&customer, &ids[1]).await;
    assert_eq!(
        (
            never["delivery"]["status"].as_str(),
            never["delivery"]["error"]["code"].as_str()
        ),
        (Some("failed"), Some("not_sent")),
        "{never:#}"
    );
    // Failed, so an agent may send it again, knowing the customer will not get it twice.
    let (status, retried) = o.client().retry_message(&customer, &ids[1]).await;
    assert_eq!(status, 202, "{retried}");
}
