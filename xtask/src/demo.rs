//! `cargo xtask demo`: the whole local stack, the sample events in, the unified timelines out.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{Value, json};
use throughline_model::{Handle, Interaction};
use throughline_store::TimelineStore;

use crate::agent::TimelineClient;
use crate::lambda::{HttpCall, LambdaEmulator};
use crate::poller::{EventSourceMapping, queue_depth};
use crate::providers::ProviderStub;
use crate::stack::{
    CHAT_BINARY, FACEBOOK_BINARY, LocalStack, MAILGUN_BINARY, SENDER_BINARY, SES_EMAIL_BINARY, SMS_BINARY,
    TIMELINE_API_BINARY, WEBHOOKS, WRITER_BINARY, X_BINARY,
};
use crate::venv::Venv;
use crate::{Result, workspace_root};

/// Local redeliveries after 10 s instead of the queue's minutes: long enough that a batch still
/// being written is not handed out a second time (that churn is all the emulator would do).
const LOCAL_VISIBILITY_TIMEOUT: i32 = 10;

/// Customers printed at most after each burst of written batches.
const PRINTED_PER_BURST: usize = 10;

/// Batches the serving writer works on at once, as Lambda's SQS event source starts with.
const SERVE_POLLERS: usize = 5;

/// The demo, stopped by Ctrl-C at any step: the stack's processes (the emulator, `cargo lambda
/// watch` and the functions it started) are stopped when the demo's future is dropped.
pub async fn run(serve: bool) -> Result<()> {
    let stopped = tokio::select! {
        result = run_stack(serve) => result,
        _ = tokio::signal::ctrl_c() => {
            println!("\n==> Ctrl-C: stopping the functions and the emulator");
            Ok(())
        }
    };
    let _ = std::fs::remove_file(crate::agent::local_api_file());
    stopped
}

async fn run_stack(serve: bool) -> Result<()> {
    let venv = Venv::ensure()?;
    step("building the Lambda functions");
    crate::venv::run(
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .arg("build")
            .args(FUNCTION_BINARIES.iter().flat_map(|b| ["--bin", b]))
            .current_dir(workspace_root()),
        "build the functions",
    )?;

    step("starting the emulator and creating infra/template.yaml's table and queues in it");
    let stack = LocalStack::start(&venv).await?;
    stack.put_sample_secrets().await?;
    println!("    moto server      {}", stack.moto.endpoint());
    println!("    DynamoDB table   {}", stack.table_name());
    println!("    SQS queue        {}", stack.interactions_queue().url);
    println!("    dead-letter      {}", stack.dead_letter_queue().url);
    let stub = ProviderStub::start(&venv, throughline_testkit::secrets::test_send_credentials).await?;
    stack.put_send_credentials(stub.base()).await?;
    println!(
        "    provider stub    {} (Twilio, Graph API, Telegram, X, Mailgun, chat backend)",
        stub.base()
    );

    step("starting the functions under `cargo lambda watch` (Lambda Runtime API emulator)");
    let mut env = stack.functions_env(&FUNCTION_BINARIES)?;
    // The sample events were signed for this public URL, as if the function sat behind it. With
    // a tunnel in front of the local webhook, set TWILIO_PUBLIC_URL to the tunnel's URL instead.
    let public_url =
        std::env::var("TWILIO_PUBLIC_URL").unwrap_or_else(|_| throughline_testkit::events::SAMPLE_PUBLIC_URL.into());
    env.push(("TWILIO_PUBLIC_URL".into(), public_url.clone()));
    // The sender's providers are the stub; a transient failure's retry is due at once.
    env.push(("PROVIDER_API_BASE_URL".into(), stub.base().to_owned()));
    env.push(("SEND_RETRY_BASE_SECONDS".into(), "0".into()));
    // One writer instance per poller, so their batches are written side by side.
    let lambda = LambdaEmulator::start(&venv, &env, true, SERVE_POLLERS).await?;
    println!("    Twilio webhook   {}", lambda.function_url(SMS_BINARY));
    println!("    X webhook        {}", lambda.function_url(X_BINARY));
    println!(
        "    chat webhook     {}widget, {}telegram/<bot>",
        lambda.function_url(CHAT_BINARY),
        lambda.function_url(CHAT_BINARY)
    );
    println!("    Meta webhook     {}", lambda.function_url(FACEBOOK_BINARY));
    println!("    Mailgun webhook  {}mailgun", lambda.function_url(MAILGUN_BINARY));
    println!("    SES function     {SES_EMAIL_BINARY} (Lambda Invoke API)");
    println!("    timeline API     {}", lambda.function_url(TIMELINE_API_BINARY));
    println!("    function logs    {}", lambda.log().display());

    let mapping = stack.writer_mapping(Some(LOCAL_VISIBILITY_TIMEOUT));
    for (binary, dir) in WEBHOOKS {
        step(&format!("sending every sample webhook in {dir}/ to {binary} over HTTP"));
        // Survey answers wait for their surveys (`feedback_and_segments`).
        let mut events = sample_events(&workspace_root().join(dir))?;
        events.retain(|p| !p.to_string_lossy().contains("-survey-"));
        for path in &events {
            send_event(&lambda, binary, path).await?;
        }
        if let Some(first) = events
            .iter()
            .find(|p| p.to_string_lossy().ends_with("inbound-sms.json"))
        {
            println!("    (a provider retry of the same message:)");
            send_event(&lambda, binary, first).await?;
        }
    }

    send_sample_mail(&stack, &lambda).await?;

    step("feeding the writer from the queue, as Lambda's SQS event source mapping does");
    drain(&stack, &mapping, &lambda).await?;

    let api = TimelineClient::new(lambda.function_url(TIMELINE_API_BINARY));
    one_customer_across_channels(&api).await?;
    agents_answer_ada(&api, &stack, &mapping, &lambda, &stub).await?;
    api.print_customer(ADA_PHONE).await?;
    service_report(&api).await?;
    feedback_and_segments(&api, &stack, &mapping, &lambda).await?;

    step("every other customer (DynamoDB, newest 12 interactions each)");
    let ada = stack
        .store()
        .customer_for(&throughline_model::Handle::parse_key(ADA_PHONE)?, true)
        .await?
        .ok_or("Ada has no customer")?;
    let ada = stack.store().resolve_root(&ada).await?;
    print_timelines(&stack.store(), Some(&ada)).await?;
    let dlq = queue_depth(&stack.sqs(), &stack.dead_letter_queue().url).await?;
    println!("\n    messages in the dead-letter queue: {dlq}");

    if serve {
        step("serving until Ctrl-C");
        std::fs::write(crate::agent::local_api_file(), lambda.function_url(TIMELINE_API_BINARY))?;
        println!(
            "    timeline API at {} — try: cargo xtask timeline {ADA_PHONE}",
            lambda.function_url(TIMELINE_API_BINARY)
        );
        println!("    POST Twilio webhooks to {}", lambda.function_url(SMS_BINARY));
        println!("    (Twilio signatures are checked for the URL {public_url}, with the test token; see README)");
        serve_until_stopped(&stack.store(), &mapping, &lambda).await?;
    }
    step("stopping the functions and the emulator");
    Ok(())
}

/// Feeds the writer from the queue with `SERVE_POLLERS` batches in flight, and prints the
/// customers each batch touched (only those) as their batches are written. Printing never holds
/// up polling: it runs beside the pollers and coalesces what arrived while it printed.
async fn serve_until_stopped(
    store: &TimelineStore,
    mapping: &EventSourceMapping,
    lambda: &LambdaEmulator,
) -> Result<()> {
    let (touched, mut written) = tokio::sync::mpsc::unbounded_channel::<Vec<Handle>>();
    let pollers =
        futures_util::future::try_join_all((0..SERVE_POLLERS).map(|_| poll_forever(mapping, lambda, touched.clone())));
    let printer = async {
        while let Some(mut handles) = written.recv().await {
            while let Ok(more) = written.try_recv() {
                handles.extend(more);
            }
            handles.sort_by_key(Handle::key);
            handles.dedup();
            // A burst (a 1000-message delivery) is summed up, not printed customer by customer:
            // the printing (and even finding each handle's customer) would compete with the
            // writer for the emulator.
            let more = handles.len().saturating_sub(PRINTED_PER_BURST);
            handles.truncate(PRINTED_PER_BURST);
            let mut customers = Vec::new();
            for handle in handles {
                if let Some(customer) = store.customer_for(&handle, false).await? {
                    customers.push(store.resolve_root(&customer).await?);
                }
            }
            customers.sort();
            customers.dedup();
            print_customers(store, &customers).await?;
            if more > 0 {
                println!("\n    … and the customers of {more} more identifiers, written since the last print");
            }
        }
        Result::<()>::Ok(())
    };
    tokio::select! {
        polled = pollers => polled.map(drop),
        printed = printer => printed,
    }
}

/// One of the serving event source's pollers: each written batch's handles go to `touched`.
async fn poll_forever(
    mapping: &EventSourceMapping,
    lambda: &LambdaEmulator,
    touched: tokio::sync::mpsc::UnboundedSender<Vec<Handle>>,
) -> Result<()> {
    loop {
        let touched = touched.clone();
        mapping
            .poll_once(1, |event| async move {
                let handles = handles_in(&event);
                let answer = lambda.invoke_writer(event).await;
                let _ = touched.send(handles);
                answer
            })
            .await?;
    }
}

/// The customers' handles of a batch's interactions and watermarks (an update or a status names
/// only an interaction).
pub fn handles_in(event: &SqsEvent) -> Vec<Handle> {
    let mut handles: Vec<Handle> = event
        .records
        .iter()
        .filter_map(|record| throughline_model::QueueMessage::from_json(record.body.as_deref()?).ok())
        .filter_map(|message| match message {
            throughline_model::QueueMessage::Interaction(interaction) => Some(interaction.customer),
            throughline_model::QueueMessage::Watermark(watermark) => Some(watermark.customer),
            throughline_model::QueueMessage::Update(_)
            | throughline_model::QueueMessage::Status(_)
            | throughline_model::QueueMessage::Erasure(_) => None,
        })
        .collect();
    handles.sort_by_key(Handle::key);
    handles.dedup();
    handles
}

/// The sample customer's phone number (SMS, WhatsApp, and the phone her chat token vouches for).
const ADA_PHONE: &str = "phone:+14155550100";

/// Ada's accounts with no verified evidence linking them to her: an agent confirmed them.
const AGENT_CONFIRMED: [(&str, &str); 2] = [
    ("Messenger", "messenger:1060000000000001:6010000000000042"),
    ("X", "x::4410000000000000042"),
];

/// The story of the sample customer, told through the timeline API (the real binary under
/// `cargo lambda watch`): verified evidence linked her SMS, WhatsApp, email and logged-in chat;
/// an agent merges her Messenger and X accounts; her one timeline, conversation by
/// conversation; the pre-chat claim of her address stays a suggestion.
async fn one_customer_across_channels(api: &TimelineClient) -> Result<()> {
    step("one customer across channels: Ada, through the timeline API");
    let ada = api.find(ADA_PHONE).await?;
    let ada_id = ada["customer_id"].as_str().ok_or("no customer id")?.to_owned();
    println!(
        "    verified evidence linked her SMS, WhatsApp, email and logged-in chat: customer {ada_id}, {} identifiers",
        ada["identifiers"].as_array().map_or(0, Vec::len)
    );
    for (channel, identifier) in AGENT_CONFIRMED {
        let other = api.find(identifier).await?;
        let other_id = other["customer_id"].as_str().ok_or("no customer id")?;
        let entry = api
            .merge(
                &ada_id,
                other_id,
                &format!("agent confirmed on a call that this {channel} account is Ada's"),
            )
            .await?;
        println!(
            "    agent merged her {channel} customer {other_id}: ledger {} (merge {})",
            entry["entry_id"].as_str().unwrap_or_default(),
            entry["merge_id"].as_str().unwrap_or_default()
        );
    }
    // Her X and Messenger messages were about the same order as her email, WhatsApp and chat
    // ones, but arrived as another customer's: the agent joins those conversations too.
    let timeline = api.timeline(&ada_id).await?;
    let conversation_of = |channel: &str| {
        timeline
            .iter()
            .find(|e| e["channel"] == channel)
            .and_then(|e| e["conversation_id"].as_str())
            .map(str::to_owned)
    };
    let conversations: Vec<String> = ["chat", "x", "messenger"]
        .into_iter()
        .filter_map(conversation_of)
        .collect();
    if conversations.len() != 3 {
        return Err(format!(
            "Ada's timeline should hold her chat, X and Messenger messages; found conversations for {} of them",
            conversations.len()
        )
        .into());
    }
    api.join(&ada_id, &conversations, "same topic: order 1042").await?;
    println!("    agent joined her X and Messenger conversations into the one about order 1042");
    Ok(())
}

/// An agent answers Ada on WhatsApp, email, Messenger and SMS, through the timeline API; the
/// sender (under `cargo lambda watch`) sends each through its provider (the stub; SES in the
/// emulator). The channel rules refuse what providers would: WhatsApp free text 8 days after
/// her last message (a template goes), a text to a number that sent STOP; and one provider
/// refuses a send, which the timeline shows as failed with the reason.
async fn agents_answer_ada(
    api: &TimelineClient,
    stack: &LocalStack,
    writer: &EventSourceMapping,
    lambda: &LambdaEmulator,
    stub: &ProviderStub,
) -> Result<()> {
    step("agents answer Ada where she wrote, through the timeline API and the sender");
    let ada = api.find(ADA_PHONE).await?;
    let ada_id = ada["customer_id"].as_str().ok_or("no customer id")?.to_owned();
    let identifier = |prefix: &str| -> Result<String> {
        ada["identifiers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["identifier"].as_str())
            .find(|i| i.starts_with(prefix))
            .map(str::to_owned)
            .ok_or_else(|| format!("Ada has no {prefix} identifier").into())
    };
    let reply = |key: &'static str, body: serde_json::Value| {
        let ada_id = ada_id.clone();
        async move {
            let (status, answer) = api.send_message(&ada_id, key, body).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, answer))
        }
    };
    let show = |what: &str, status: u16, answer: &serde_json::Value| match status {
        202 => println!(
            "    {what}: 202, queued to {} from {} ({})",
            answer["routing"]["to"].as_str().unwrap_or_default(),
            answer["routing"]["from"].as_str().unwrap_or_default(),
            answer["routing"]["reason"].as_str().unwrap_or_default(),
        ),
        _ => println!(
            "    {what}: {status} {}: {}",
            answer["error"]["code"].as_str().unwrap_or_default(),
            answer["error"]["message"].as_str().unwrap_or_default()
        ),
    };

    // Her latest WhatsApp Cloud API message (she also writes through Twilio's WhatsApp).
    let latest_cloud_whatsapp = || async {
        let entries = api.timeline(&ada_id).await?;
        entries
            .iter()
            .find(|e| e["channel"] == "whatsapp" && e["provider"] == "meta" && e["direction"] == "inbound")
            .and_then(|e| e["id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| Box::<dyn std::error::Error + Send + Sync>::from("Ada has no WhatsApp Cloud message"))
    };
    // WhatsApp: her last message to the Cloud API number is 8 days old.
    let answered = latest_cloud_whatsapp().await?;
    let whatsapp = json!({ "in_reply_to": answered, "text": "Your replacement shipped today." });
    let (status, answer) = reply("demo-wa-1", whatsapp.clone()).await?;
    show("WhatsApp, free text 8 days after her last message", status, &answer);
    if status != 422 {
        return Err(format!("the WhatsApp window should have refused it: {answer}").into());
    }
    let template = json!({ "in_reply_to": answered,
        "whatsapp_template": { "name": "order_update", "language": "en_US" } });
    let (status, answer) = reply("demo-wa-1", template).await?;
    show("WhatsApp, the approved template instead", status, &answer);

    // She answers on WhatsApp and Messenger now: the windows are open again.
    let now = chrono::Utc::now();
    let events = workspace_root().join("events/facebook");
    let fresh_whatsapp = crate::sign::meta_event_with(&events.join("12-whatsapp-text.json"), |body| {
        let message = &mut body["entry"][0]["changes"][0]["value"]["messages"][0];
        message["id"] = "wamid.DemoAdaAnswersNow".into();
        message["timestamp"] = now.timestamp().to_string().into();
        message["text"]["body"] = "Thanks! Can it come to my office instead?".into();
    })?;
    let fresh_messenger = crate::sign::meta_event_with(&events.join("03-messenger-text.json"), |body| {
        let event = &mut body["entry"][0]["messaging"][0];
        // Before the WhatsApp message, whose time has whole seconds only.
        event["timestamp"] = (now.timestamp_millis() - 2_000).into();
        event["message"]["mid"] = "m_DemoAdaAnswersNow".into();
        event["message"]["text"] = "Also asking here: office delivery possible?".into();
    })?;
    // Messenger first: her last word is on WhatsApp, where her survey will go.
    for event in [&fresh_messenger, &fresh_whatsapp] {
        let (status, _, _) = lambda.call_url(FACEBOOK_BINARY, &HttpCall::from_event(event)?).await?;
        println!("    Ada writes again through Meta's webhook: {status}");
    }
    drain(stack, writer, lambda).await?;

    let whatsapp = json!({ "in_reply_to": latest_cloud_whatsapp().await?, "text": "Yes: to your office, tomorrow." });
    let (status, answer) = reply("demo-wa-2", whatsapp).await?;
    show("WhatsApp (Cloud API), now", status, &answer);
    let (status, answer) = reply(
        "demo-messenger-1",
        json!({ "channel": "messenger", "to": identifier("messenger:")?, "text": "Yes, we can deliver to your office." }),
    )
    .await?;
    show("Messenger (Send API, RESPONSE)", status, &answer);
    let (status, answer) = reply(
        "demo-email-1",
        json!({ "channel": "email", "to": identifier("email:")?, "text": "Dear Ada, your replacement shipped today." }),
    )
    .await?;
    show("email (SES, in her thread)", status, &answer);
    let (status, answer) = reply(
        "demo-sms-1",
        json!({ "channel": "sms", "to": ADA_PHONE, "text": "Your replacement ships today." }),
    )
    .await?;
    show("SMS (Twilio)", status, &answer);
    // X refuses this one (she does not take DMs from the account any more).
    stub.script(
        "x",
        Some(403),
        json!({"title": "Forbidden", "detail": "You are not permitted to send a DM to this user.", "type": "about:blank", "status": 403}),
        json!({}),
        Duration::ZERO,
        1,
    )
    .await?;
    let (status, answer) = reply(
        "demo-x-1",
        json!({ "channel": "x", "to": identifier("x:")?, "text": "We replied by email." }),
    )
    .await?;
    show("X (v2 DM)", status, &answer);

    // Someone texts STOP to the company's number: no reply may text them.
    let stop = crate::sign::twilio_event_with(
        &workspace_root().join("events/sms/01-inbound-sms.json"),
        &[
            ("From", STOP_TEXTER),
            ("Body", "STOP"),
            ("MessageSid", "SMdemoStop0001"),
            ("SmsSid", "SMdemoStop0001"),
        ],
    )?;
    let (status, _, _) = lambda.call_url(SMS_BINARY, &HttpCall::from_event(&stop)?).await?;
    println!("    {STOP_TEXTER} texts STOP: {status}");
    drain(stack, writer, lambda).await?;
    let texter = api.find(&format!("phone:{STOP_TEXTER}")).await?;
    let texter = texter["customer_id"].as_str().ok_or("no customer id")?;
    let (status, answer) = api
        .send_message(texter, "demo-stop-1", json!({ "text": "Your order ships today." }))
        .await?;
    show("SMS to the number that sent STOP", status, &answer);

    step("the sender works the outbound queue (one provider call per reply)");
    drain_outbound(stack, lambda).await?;
    let calls = stub.requests().await?;
    let providers: Vec<String> = calls.iter().map(|c| format!("{} {}", c.provider, c.path)).collect();
    println!("    the provider stub received {} calls:", calls.len());
    for call in providers {
        println!("      {call}");
    }
    let sent = stack.ses_sent().await?;
    println!("    SES sent {} mail (threaded under her message)", sent.len());
    providers_report_back(api, &ada_id, stack, writer, lambda).await
}

/// The providers' status webhooks about Ada's replies, as each provider signs them (the stub
/// sends nothing back, so the demo plays the provider): Twilio's `delivered` callback for the
/// SMS, WhatsApp's `delivered` and `read` for the WhatsApp replies, Messenger's delivery and
/// read watermarks, SES's `Delivery` event for the mail; then each reply's status as an agent
/// sees it.
async fn providers_report_back(
    api: &TimelineClient,
    ada_id: &str,
    stack: &LocalStack,
    writer: &EventSourceMapping,
    lambda: &LambdaEmulator,
) -> Result<()> {
    step("the providers report back (their status webhooks, signed as they sign them)");
    let now = chrono::Utc::now();
    let replies: Vec<serde_json::Value> = api
        .timeline(ada_id)
        .await?
        .into_iter()
        .filter(|e| e["direction"] == "outbound" && e["delivery"]["status"] == "sent")
        .collect();
    let events = workspace_root().join("events");
    for reply in &replies {
        // A sent reply has its provider's id: without it the demo's story is broken.
        let id = reply["delivery"]["provider_message_id"]
            .as_str()
            .ok_or("a sent reply without its provider's id")?;
        let endpoint = &reply["business_endpoint"];
        let (binary, event) = match (reply["channel"].as_str(), reply["provider"].as_str()) {
            (Some("sms"), Some("twilio")) => {
                let from = endpoint["number"].as_str().ok_or("a phone endpoint")?;
                let callback = crate::sign::twilio_event_with(
                    &events.join("sms/05-status-callback.json"),
                    &[
                        ("MessageSid", id),
                        ("SmsSid", id),
                        ("From", from),
                        ("MessageStatus", "delivered"),
                    ],
                )?;
                (SMS_BINARY, callback)
            }
            (Some("whatsapp"), Some("meta")) => {
                let number = endpoint["number"].as_str().ok_or("a phone endpoint")?;
                let statuses = crate::sign::meta_event_with(
                    &events.join("facebook/20-whatsapp-status-batch.json"),
                    |body| {
                        let value = &mut body["entry"][0]["changes"][0]["value"];
                        value["metadata"]["display_phone_number"] = number.trim_start_matches('+').into();
                        value["statuses"] = json!([
                            {"id": id, "status": "delivered", "timestamp": (now.timestamp() - 1).to_string(), "recipient_id": "14155550100"},
                            {"id": id, "status": "read", "timestamp": now.timestamp().to_string(), "recipient_id": "14155550100"},
                        ]);
                    },
                )?;
                (FACEBOOK_BINARY, statuses)
            }
            (Some("messenger"), _) => {
                let (page, psid) = (
                    endpoint["id"].as_str().ok_or("a page")?,
                    reply["customer"]["id"].as_str().ok_or("a page-scoped id")?,
                );
                let receipts =
                    crate::sign::meta_event_with(&events.join("facebook/09-messenger-delivery-read.json"), |body| {
                        body["entry"][0]["id"] = page.into();
                        body["entry"][0]["messaging"] = json!([
                            {"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": now.timestamp_millis(),
                             "delivery": {"watermark": now.timestamp_millis()}},
                            {"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": now.timestamp_millis(),
                             "read": {"watermark": now.timestamp_millis()}},
                        ]);
                    })?;
                (FACEBOOK_BINARY, receipts)
            }
            (Some("email"), Some("ses")) => {
                // SES's event publishing (the replies' configuration set → the events topic),
                // as SNS invokes the SES function.
                let mut delivery: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
                    events.join("email/14-ses-event-delivery.json"),
                )?)?;
                let record = &mut delivery["Records"][0]["Sns"];
                let mut message: serde_json::Value =
                    serde_json::from_str(record["Message"].as_str().ok_or("an SNS message")?)?;
                message["mail"]["messageId"] = id.split('@').next().unwrap_or(id).into();
                message["mail"]["source"] = endpoint["address"].clone();
                message["mail"]["timestamp"] = now.to_rfc3339().into();
                message["delivery"]["timestamp"] = now.to_rfc3339().into();
                record["Message"] = message.to_string().into();
                lambda.invoke(SES_EMAIL_BINARY, &delivery).await?;
                println!("    SES reports on the email reply (event publishing)");
                continue;
            }
            (channel, provider) => {
                return Err(format!(
                    "the demo plays no provider's report for a {channel:?} reply through {provider:?}"
                )
                .into());
            }
        };
        let (status, _, _) = lambda.call_url(binary, &HttpCall::from_event(&event)?).await?;
        if status != 200 {
            return Err(format!("the {} webhook refused the provider's report: {status}", binary).into());
        }
        println!(
            "    {} reports on the {} reply: {status}",
            reply["provider"].as_str().unwrap_or_default(),
            reply["channel"].as_str().unwrap_or_default()
        );
    }
    drain(stack, writer, lambda).await?;
    let reported: Vec<&str> = replies.iter().filter_map(|r| r["id"].as_str()).collect();
    for reply in api
        .timeline(ada_id)
        .await?
        .iter()
        .filter(|e| e["direction"] == "outbound" && e["delivery"].is_object())
    {
        let delivery = &reply["delivery"];
        // What a provider reported on must show it: a reply still `sent` here is a broken story.
        if reply["id"].as_str().is_some_and(|id| reported.contains(&id)) && delivery["status"] == "sent" {
            return Err(format!(
                "a {} reply is still sent after its provider reported on it",
                reply["channel"]
            )
            .into());
        }
        let ticks = match delivery["status"].as_str().unwrap_or_default() {
            "sent" => "✓",
            "delivered" => "✓✓",
            "read" => "✓✓ read",
            other => other,
        };
        let source = match reply["status_source"].as_str() {
            Some("none") => " (no receipts on this channel)",
            _ => "",
        };
        println!(
            "    {:<9} {:<16} {ticks}{source}",
            reply["channel"].as_str().unwrap_or_default(),
            delivery["status"].as_str().unwrap_or_default(),
        );
    }
    Ok(())
}

/// A number that texts STOP in the demo.
const STOP_TEXTER: &str = "+14155550177";

/// Every function the demo runs.
const FUNCTION_BINARIES: [&str; 9] = [
    SMS_BINARY,
    X_BINARY,
    CHAT_BINARY,
    FACEBOOK_BINARY,
    SES_EMAIL_BINARY,
    MAILGUN_BINARY,
    WRITER_BINARY,
    TIMELINE_API_BINARY,
    SENDER_BINARY,
];

/// The sample mail: SES events through the Invoke API (as SES and SNS invoke the function),
/// after putting the large mail where SES's S3 action would; Mailgun deliveries over HTTP.
async fn send_sample_mail(stack: &LocalStack, lambda: &LambdaEmulator) -> Result<()> {
    step(&format!(
        "sending every sample mail in events/email/ ({SES_EMAIL_BINARY}, {MAILGUN_BINARY})"
    ));
    let dir = workspace_root().join("events/email");
    for path in sample_events(&dir)? {
        let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if event["Records"].is_array() {
            if let Some(id) = event["Records"][0]["ses"]["mail"]["messageId"].as_str() {
                let eml = std::fs::read_dir(dir.join("mime"))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .find(|p| {
                        p.file_name()
                            .is_some_and(|f| f.to_string_lossy().starts_with(&name[..3]))
                    })
                    .ok_or(format!("no raw mail for {name} in events/email/mime/"))?;
                stack.put_inbound_mail(id, std::fs::read(eml)?).await?;
            }
            let answer = match lambda.invoke(SES_EMAIL_BINARY, &event).await {
                Ok(answer) => answer.to_string(),
                Err(e) => format!("invocation failed: {e}"),
            };
            println!("    {name:<32} → {answer}");
        } else {
            send_event(lambda, MAILGUN_BINARY, &path).await?;
        }
    }
    Ok(())
}

/// Ada's conversations resolved with their reasons (the suggested ones confirmed; one she
/// wrote about without a rule matching gets `product/question`), then the service report of
/// the days the sample events and the demo wrote on.
async fn service_report(api: &TimelineClient) -> Result<()> {
    step("an agent resolves Ada's conversations with their reasons, and the service report");
    let ada = api.find(ADA_PHONE).await?;
    let ada_id = ada["customer_id"].as_str().ok_or("no customer id")?;
    let mut earliest = chrono::Utc::now().date_naive();
    for conversation in api.conversations(ada_id).await? {
        if let Some(started) = conversation["started_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            earliest = earliest.min(started.date_naive());
        }
        if conversation["status"] == "resolved" {
            continue;
        }
        let id = conversation["conversation_id"].as_str().ok_or("no conversation id")?;
        let mut reasons: Vec<String> = conversation["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["code"].as_str().map(str::to_owned))
            .collect();
        if reasons.is_empty() {
            reasons.push("product/question".into());
        }
        let answer = api.resolve(id, &reasons).await?;
        let resolved = &answer["conversation"];
        if resolved["status"] != "resolved" {
            return Err(format!("conversation {id} is {} after resolving it", resolved["status"]).into());
        }
        let survey = &answer["survey"];
        println!(
            "    resolved {id} ({}) with {}; survey {} {}",
            conversation["channel"].as_str().unwrap_or("?"),
            reasons.join(", "),
            survey["status"].as_str().unwrap_or("-"),
            survey["channel"]
                .as_str()
                .or(survey["reason"].as_str())
                .unwrap_or_default()
        );
    }
    let today = chrono::Utc::now().date_naive();
    api.print_report(&earliest.to_string(), &today.to_string()).await
}

/// The surveys of Ada's resolutions go out; she answers the last one (the group's open survey)
/// on WhatsApp, where she wrote last: a tap on the survey's button, then a remark, through the
/// Meta function; the report counts it; then her CRM's attribute puts her in `high_value`.
async fn feedback_and_segments(
    api: &TimelineClient,
    stack: &LocalStack,
    mapping: &EventSourceMapping,
    lambda: &LambdaEmulator,
) -> Result<()> {
    step("the sender sends the surveys; Ada answers the last one on WhatsApp: a tap on 4, then a remark");
    drain_outbound(stack, lambda).await?;
    let now = chrono::Utc::now();
    let events = workspace_root().join("events/facebook");
    let tap = crate::sign::meta_event_with(&events.join("21-whatsapp-survey-button.json"), |body| {
        body["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = now.timestamp().to_string().into();
    })?;
    let remark = crate::sign::meta_event_with(&events.join("12-whatsapp-text.json"), |body| {
        let message = &mut body["entry"][0]["changes"][0]["value"]["messages"][0];
        message["id"] = "wamid.DemoAdaRemark".into();
        message["timestamp"] = (now.timestamp() + 1).to_string().into();
        message["text"]["body"] = "Thanks, that was quick!".into();
    })?;
    for (what, event) in [("her tap on 4", &tap), ("her remark", &remark)] {
        let (status, _, _) = lambda.call_url(FACEBOOK_BINARY, &HttpCall::from_event(event)?).await?;
        println!("    {what} through Meta's webhook: {status}");
    }
    drain(stack, mapping, lambda).await?;
    let ada = api.find(ADA_PHONE).await?;
    let ada_id = ada["customer_id"].as_str().ok_or("no customer id")?;
    let feedback: Vec<Value> = api
        .timeline(ada_id)
        .await?
        .into_iter()
        .filter(|e| e["kind"] == "feedback")
        .collect();
    if feedback.is_empty() {
        return Err("Ada's answers were not recorded as feedback".into());
    }
    for entry in feedback.iter().rev() {
        println!(
            "    feedback on {} ({}): rating {}, remark {}",
            entry["channel"].as_str().unwrap_or("?"),
            entry["feedback"]["survey_id"].as_str().unwrap_or("?"),
            entry["feedback"]["rating"],
            entry["feedback"]["remark"]
        );
    }
    let today = chrono::Utc::now().date_naive().to_string();
    api.print_report(&today, &today).await?;

    step("her CRM says she is worth 1500: she joins the high_value segment");
    let set = api.set_attributes(ada_id, json!({ "lifetime_value": 1500 })).await?;
    println!("    her segments: {}", set["segments"]);
    let members = api.segment_members("high_value").await?;
    println!(
        "    high_value: {}",
        members
            .iter()
            .filter_map(|m| m["customer_id"].as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !members.iter().any(|m| m["customer_id"] == ada_id) {
        return Err("high_value does not list Ada".into());
    }
    Ok(())
}

/// Works the outbound queue until it is empty, as the sender's event source mapping does.
async fn drain_outbound(stack: &LocalStack, lambda: &LambdaEmulator) -> Result<()> {
    let outbound = stack.mapping_of(SENDER_BINARY, Some(LOCAL_VISIBILITY_TIMEOUT));
    // The first invocation starts the sender's instances under `cargo lambda watch`, which on a
    // busy machine takes most of a minute by itself (one demo run right after a CI run did).
    let deadline = Instant::now() + Duration::from_secs(180);
    while outbound.backlog().await? > 0 {
        if Instant::now() > deadline {
            return Err("the outbound queue did not drain within 180 s".into());
        }
        outbound
            .poll_once(1, |event| async {
                let response = lambda.invoke(SENDER_BINARY, &serde_json::to_value(event)?).await?;
                Ok(serde_json::from_value(response)?)
            })
            .await?;
    }
    Ok(())
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn sample_events(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

async fn send_event(lambda: &LambdaEmulator, binary: &str, path: &Path) -> Result<()> {
    let event = crate::sign::fresh_event(path)?;
    let call = HttpCall::from_event(&event)?;
    let (status, content_type, body) = lambda.call_url(binary, &call).await?;
    let answer = if content_type.starts_with("application/json") {
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(body)
    } else {
        body
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    println!("    {name:<32} → {status} {answer}");
    Ok(())
}

/// Polls until the queue is empty (failed messages are retried until SQS moves them to the DLQ).
async fn drain(stack: &LocalStack, mapping: &EventSourceMapping, lambda: &LambdaEmulator) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while mapping.backlog().await? > 0 {
        if Instant::now() > deadline {
            return Err("the queue did not drain within 120 s".into());
        }
        let outcome = mapping.poll_once(1, |event| lambda.invoke_writer(event)).await?;
        if outcome.received > 0 {
            println!(
                "    batch of {}: {} processed and deleted, {} reported failed",
                outcome.received, outcome.deleted, outcome.failed
            );
        }
    }
    let _ = stack;
    Ok(())
}

/// Most entries printed per customer (the newest); older ones are counted.
const PRINTED_PER_CUSTOMER: usize = 12;

/// Prints every customer's timeline (but `except`), oldest first, one line per interaction.
pub async fn print_timelines(store: &TimelineStore, except: Option<&throughline_model::CustomerId>) -> Result<()> {
    let mut customers = store.all_customers().await?;
    customers.retain(|c| Some(c) != except);
    print_customers(store, &customers).await
}

/// Prints these customers' timelines, oldest first, one line per interaction.
async fn print_customers(store: &TimelineStore, customers: &[throughline_model::CustomerId]) -> Result<()> {
    for customer in customers {
        let customer = customer.clone();
        let mut entries: Vec<Interaction> = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .timeline(&customer, 100, cursor.as_deref(), &Default::default())
                .await?;
            entries.extend(page.entries.into_iter().map(|e| e.interaction));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        entries.reverse();
        let mut handles: Vec<String> = entries.iter().map(|i| describe(&i.customer)).collect();
        handles.sort();
        handles.dedup();
        let name = entries.iter().find_map(|i| i.customer_display_name.clone());
        println!(
            "\n    customer {customer}{}  —  {}",
            name.map(|n| format!(" ({n})")).unwrap_or_default(),
            handles.join(", ")
        );
        let hidden = entries.len().saturating_sub(PRINTED_PER_CUSTOMER);
        if hidden > 0 {
            println!("      … {hidden} earlier");
        }
        for i in &entries[hidden..] {
            let text = i.text.as_deref().unwrap_or("");
            let attachments = match i.attachments.len() {
                0 => String::new(),
                n => format!("  [{n} attachment{}]", if n == 1 { "" } else { "s" }),
            };
            let deleted = match (i.deleted_at, i.edited_at) {
                (Some(_), _) => "  (deleted by the customer)",
                (None, Some(_)) => "  (edited by the customer)",
                (None, None) => "",
            };
            let public = if i.kind == throughline_model::InteractionKind::PublicPost {
                "[public] "
            } else {
                ""
            };
            println!(
                "      {}  {:<9} {:<8} {public}{text}{attachments}{deleted}",
                i.occurred_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                format!("{:?}", i.channel).to_lowercase(),
                format!("{:?}", i.direction).to_lowercase(),
            );
        }
    }
    Ok(())
}

fn describe(handle: &Handle) -> String {
    match handle {
        Handle::Phone { number } => number.to_string(),
        other => other.key(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_touches_the_customers_of_its_interactions_once_each() {
        let path = workspace_root().join("events/timeline-writer/sqs-batch.json");
        let mut event: SqsEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        // The sample: one SMS and one poison message. The SMS again (a second message of hers).
        event.records.push(event.records[0].clone());
        let handles = handles_in(&event);
        assert_eq!(
            handles.iter().map(Handle::key).collect::<Vec<_>>(),
            vec!["phone:+14155550100".to_owned()],
            "her handle once; the unparseable record skipped"
        );
    }
}
