//! Every AWS call a function's real code makes is allowed by that function's IAM policy in
//! infra/template.yaml. moto does not enforce IAM, so a missing action would only show on AWS
//! (as messages failing five times and landing in the DLQ). Each function here signs with its
//! own access key id (its logical id); `tools/moto_server.py` logs the IAM actions each key's
//! requests need, and the test compares them with the template.
//!
//! One test in its own binary: it sets the functions' environment variables, as Lambda would.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeDelta, Utc};
use lambda_http::http::StatusCode;
use serde_json::json;
use throughline_e2e::*;
use throughline_model::{Channel, InteractionUpdate};
use throughline_store::{Recorded, TimelineStore};

/// The stack's configuration, signing as `function`.
fn signing_as(stack: &stack::LocalStack, function: &str) -> SdkConfig {
    stack
        .aws
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            function,
            "testing",
            None,
            None,
            "permissions-test",
        )))
        .build()
}

/// The writer's paths: new and known customers, merges of groups with members (on verified
/// evidence), updates, and a handle that still routes to an erased customer.
async fn exercise_the_writer(writer: &TimelineStore) -> String {
    let now = Utc::now();
    let ada_sms = interaction(Channel::Sms, phone("+14155550100"), "SMp1", now);
    let ada = writer.record(&ada_sms).await.unwrap().customer().unwrap().clone();
    writer
        .record(&interaction(Channel::Sms, phone("+14155550100"), "SMp2", now))
        .await
        .unwrap();
    writer
        .record(&interaction(Channel::Email, email("ada@example.com"), "mail-p3", now))
        .await
        .unwrap();
    // The token vouches for both: the SMS and email customers merge.
    writer
        .record(&verified_chat(
            "u-1",
            "wm-p4",
            now + TimeDelta::minutes(1),
            &[phone("+14155550100"), email("ada@example.com")],
        ))
        .await
        .unwrap();
    // A third customer joins the group, which now has members.
    writer
        .record(&interaction(Channel::Sms, phone("+14155550101"), "SMp5", now))
        .await
        .unwrap();
    writer
        .record(&verified_chat(
            "u-2",
            "wm-p6",
            now + TimeDelta::minutes(2),
            &[phone("+14155550101"), email("ada@example.com")],
        ))
        .await
        .unwrap();
    writer
        .apply(&InteractionUpdate::deleted(ada_sms.id.clone(), now))
        .await
        .unwrap();
    writer
        .apply(&InteractionUpdate::edited(
            throughline_model::InteractionId::derive(
                ada_sms.provider,
                &ada_sms.business_endpoint,
                &throughline_model::ProviderMessageId::parse("SMp2").unwrap(),
            ),
            Some("edited".into()),
            now,
        ))
        .await
        .unwrap();
    ada.to_string()
}

/// The API takes a reply and refuses one (giving its key back); the sender sends it after one
/// transient failure (its retry delayed through SQS).
async fn exercise_replies(
    stack: &stack::LocalStack,
    stub: &throughline_localstack::providers::ProviderStub,
    timeline_api: &throughline_timeline_api::TimelineApi,
    sender_aws: &SdkConfig,
    reconciler_aws: &SdkConfig,
    page_aws: &SdkConfig,
    ada: &str,
) {
    // A reply, sent by the sender after one transient failure (its retry delayed through SQS),
    // and a refused one (its key given back).
    let (status, reply) = ApiClient(timeline_api)
        .send_message(
            ada,
            "perm-1",
            json!({ "text": "On its way", "channel": "sms", "to": "phone:+14155550100" }),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let (status, refused) = ApiClient(timeline_api)
        .send_message(
            ada,
            "perm-2",
            json!({ "text": "x".repeat(1_601), "channel": "sms", "to": "phone:+14155550100" }),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    // A reply from an SES mailbox, to a customer who wrote to it.
    let mut mail = interaction(
        Channel::Email,
        email("grace@example.com"),
        "grace-q1@mail.example.com",
        Utc::now(),
    );
    mail.provider = throughline_model::Provider::Ses;
    mail.business_endpoint = email("support@acme.example");
    mail.subject = Some("Invoice".into());
    let grace = stack.store().record(&mail).await.unwrap().customer().unwrap().clone();
    let (status, reply) = ApiClient(timeline_api)
        .send_message(&grace, "perm-3", json!({ "text": "Attached again." }))
        .await;
    assert_eq!(status, 202, "{reply}");
    // Her conversation resolved: its survey (the settings from SSM) opened, recorded, queued.
    let (status, list) = ApiClient(timeline_api).conversations(&grace).await;
    assert_eq!(status, 200, "{list}");
    let conversation = list["conversations"][0]["conversation_id"].as_str().unwrap().to_owned();
    let (status, resolved) = ApiClient(timeline_api).resolve(&conversation, &[]).await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["survey"]["status"], "queued", "{resolved:#}");
    // She rates on the page her email links to (the survey's own item, read by the page).
    let page = throughline_rating_page::RatingPage::from_env(page_aws).await.unwrap();
    let survey = resolved["survey"]["survey_id"].as_str().unwrap();
    let token = throughline_feedback::FeedbackToken {
        survey: survey.to_owned(),
        expires_at: Utc::now() + TimeDelta::hours(1),
    }
    .sign(&page.keys[0]);
    let link = format!("https://page.example/feedback/{token}");
    let shown = throughline_rating_page::handle(page_request(&link, None), &page).await;
    assert_eq!(shown.status(), StatusCode::OK, "{}", body_text(&shown));
    let form = [("form", "01JPERMISSIONS000000000000"), ("rating", "4")];
    let rated = throughline_rating_page::handle(page_request(&link, Some(&form)), &page).await;
    assert_eq!(rated.status(), StatusCode::OK, "{}", body_text(&rated));
    stub.script(
        "twilio",
        Some(503),
        throughline_testkit::outbound::twilio_outage(),
        json!({}),
        std::time::Duration::ZERO,
        1,
    )
    .await
    .unwrap();
    let sender = throughline_sender::Sender::from_env(sender_aws).await.unwrap();
    let outbound = stack.mapping_of(stack::SENDER_BINARY, Some(1));
    while outbound.backlog().await.unwrap() > 0 {
        outbound
            .poll_once(1, |event| async {
                Ok(throughline_sender::handle(event, &sender).await)
            })
            .await
            .unwrap();
    }
    assert_eq!(
        stub.requests().await.unwrap().len(),
        2,
        "one transient failure, then sent"
    );
    // The daily reconciliation of the SMS reply, still `sent`: one lookup, one report queued.
    let reconciler = throughline_sender::reconcile::Reconciler::from_env(reconciler_aws)
        .await
        .unwrap();
    let reconciled = throughline_sender::reconcile::run(&reconciler, Utc::now().date_naive())
        .await
        .unwrap();
    assert_eq!((reconciled.looked_up, reconciled.reported), (1, 1), "{reconciled:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_aws_call_of_every_function_is_allowed_by_its_template_policy() {
    let stack = start_stack().await;
    stack.put_sample_secrets().await.unwrap();
    let venv = throughline_localstack::venv::Venv::require().unwrap_or_else(|e| panic!("{e}"));
    let stub = throughline_localstack::providers::ProviderStub::start(&venv, secrets::test_send_credentials)
        .await
        .unwrap_or_else(|e| panic!("the provider stub could not start: {e}"));
    stack.put_send_credentials(stub.base()).await.unwrap();
    let binaries = [
        "throughline-sms",
        "throughline-x",
        "throughline-chat",
        "throughline-facebook",
        "throughline-email-ses",
        "throughline-email-mailgun",
        "throughline-timeline-writer",
        "throughline-timeline-api",
        "throughline-sender",
        "throughline-reconciler",
        "throughline-rating-page",
    ];
    let mut env = stack.functions_env(&binaries).unwrap();
    // The sender's providers are the stub; a transient failure's retry is due at once.
    env.push(("PROVIDER_API_BASE_URL".into(), stub.base().to_owned()));
    env.push(("SEND_RETRY_BASE_SECONDS".into(), "0".into()));
    for (name, value) in env {
        // SAFETY: this binary's only test sets them before any function reads them.
        unsafe { std::env::set_var(name, value) };
    }
    let functions: BTreeMap<&str, String> = binaries
        .iter()
        .map(|binary| (*binary, stack.template.function_for_binary(binary).unwrap()))
        .collect();
    let aws = |binary: &str| signing_as(&stack, &functions[binary]);

    // The webhooks, each with a sample its provider sends, configured as main configures them.
    let sms = throughline_sms::SmsFunction::from_env(&aws("throughline-sms"))
        .await
        .unwrap();
    let response = throughline_sms::handle(sample_request("sms/01-inbound-sms.json"), &sms).await;
    assert_eq!(response.status(), StatusCode::OK);
    let x = throughline_x::XFunction::from_env(&aws("throughline-x")).await.unwrap();
    let response = throughline_x::handle(sample_request("x/02-dm-inbound.json"), &x).await;
    assert_eq!(response.status(), StatusCode::OK);
    let chat = throughline_chat::ChatFunction::from_env(&aws("throughline-chat"))
        .await
        .unwrap();
    let response = throughline_chat::handle(fresh_request("chat/01-widget-message.json"), &chat).await;
    assert_eq!(response.status(), StatusCode::OK);
    let meta = throughline_facebook::FacebookFunction::from_env(&aws("throughline-facebook"))
        .await
        .unwrap();
    let response = throughline_facebook::handle(sample_request("facebook/12-whatsapp-text.json"), &meta).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mailgun = throughline_email::MailgunFunction::from_env(&aws("throughline-email-mailgun"))
        .await
        .unwrap();
    let response = throughline_email::handle_mailgun(fresh_request("email/11-mailgun-mime.json"), &mailgun).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    // Its queue unreachable: 503, and the token's claim is given back.
    let broken = throughline_email::MailgunFunction {
        publisher: throughline_queue::InteractionPublisher::new(
            aws_sdk_sqs::Client::new(&aws("throughline-email-mailgun")),
            format!("{}-missing", stack.interactions_queue().url),
        ),
        ..mailgun.clone()
    };
    let response = throughline_email::handle_mailgun(fresh_request("email/11-mailgun-mime.json"), &broken).await;
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        body_text(&response)
    );
    // Every webhook took its publishing path (a 200 for an ignored event would not have).
    let queue = stack.interactions_queue().url.clone();
    assert_eq!(depth(&stack, &queue).await, 5, "one interaction from each webhook");

    // SES: via SNS (the mail kept because it has attachments, if any) and via S3.
    let ses = throughline_email::SesFunction::from_env(&aws("throughline-email-ses"))
        .await
        .unwrap();
    let large = sample_json("email/03-ses-s3-large-with-attachments.json");
    let raw = std::fs::read(event_path("email/mime/03-ada-large-with-attachments.eml")).unwrap();
    let message_id = large["Records"][0]["ses"]["mail"]["messageId"].as_str().unwrap();
    stack.put_inbound_mail(message_id, raw).await.unwrap();
    for event in [
        "email/01-ses-sns-base64.json",
        "email/03-ses-s3-large-with-attachments.json",
    ] {
        let answer = throughline_email::handle_ses(sample_json(event), &ses)
            .await
            .unwrap_or_else(|e| panic!("{event}: {e}"));
        // Queued, not skipped (a record from another topic or action would be acknowledged too).
        assert_eq!(answer, json!({ "queued": 1 }), "{event}");
    }

    // The writer, on its own table client.
    let writer_aws = aws("throughline-timeline-writer");
    let writer = TimelineStore::new(aws_sdk_dynamodb::Client::new(&writer_aws), stack.table_name())
        .with_suppression_key(secrets::TEST_SUPPRESSION_KEY)
        .with_objects(throughline_store::s3_client(&writer_aws));
    let writer_function = throughline_timeline_writer::Writer {
        store: writer.clone(),
        publisher: throughline_queue::InteractionPublisher::new(
            aws_sdk_sqs::Client::new(&writer_aws),
            &stack.interactions_queue().url,
        ),
        // One page per step: the steps hand the rest on through the queue.
        erasure_budget: std::time::Duration::ZERO,
        // As `from_env` reads it (SSM, with the writer's own key): the template names one, so
        // a missing parameter or policy fails here rather than turning suggestions off.
        taxonomy: Some(
            throughline_reasons::from_env(&writer_aws)
                .await
                .unwrap()
                .expect("the template gives the writer REASONS_TAXONOMY_PARAMETER"),
        ),
    };
    let mapping = stack.writer_mapping(Some(1));
    let drain_as_the_writer = || async {
        while mapping.backlog().await.unwrap() > 0 {
            mapping
                .poll_once(1, |event| async {
                    Ok(throughline_timeline_writer::handle(event, &writer_function).await)
                })
                .await
                .unwrap();
        }
    };
    drain_as_the_writer().await;
    let ada = exercise_the_writer(&writer).await;

    // The API: every route family, erasure last.
    let api_aws = aws("throughline-timeline-api");
    let api_from_env = Box::pin(throughline_timeline_api::TimelineApi::from_env(&api_aws))
        .await
        .unwrap();
    let timeline_api = throughline_timeline_api::TimelineApi {
        store: TimelineStore::new(aws_sdk_dynamodb::Client::new(&api_aws), stack.table_name())
            .with_suppression_key(secrets::TEST_SUPPRESSION_KEY)
            .with_objects(throughline_store::s3_client(&api_aws)),
        publisher: throughline_queue::InteractionPublisher::new(
            aws_sdk_sqs::Client::new(&api_aws),
            &stack.interactions_queue().url,
        ),
        outbound: throughline_queue::InteractionPublisher::new(
            aws_sdk_sqs::Client::new(&api_aws),
            &stack.outbound_queue().url,
        ),
        // As `from_env` reads them (SSM).
        credentials: api_from_env.credentials,
        // No time at all: the writer's erasure steps do the work (their calls are checked too).
        erasure_budget: std::time::Duration::ZERO,
        allow_unsigned: false,
        reasons: api_from_env.reasons,
        surveys: api_from_env.surveys,
        segments: api_from_env.segments,
    };
    assert!(
        timeline_api.reasons.taxonomy.is_some(),
        "the template gives the API REASONS_TAXONOMY_PARAMETER"
    );
    assert!(
        timeline_api.surveys.is_some(),
        "the template gives the API SURVEYS_PARAMETER and FEEDBACK_KEY_PARAMETER"
    );
    assert!(
        timeline_api.segments.is_some(),
        "the template gives the API SEGMENTS_PARAMETER"
    );
    let x_customer = writer
        .record(&interaction(
            Channel::X,
            platform_user(throughline_model::Platform::X, None, "99"),
            "x-p7",
            Utc::now(),
        ))
        .await
        .unwrap()
        .customer()
        .unwrap()
        .to_string();
    for (method, path) in [
        ("GET", "/customers?identifier=phone%3A%2B14155550100".to_owned()),
        ("GET", format!("/customers/{ada}")),
        ("GET", format!("/customers/{ada}/timeline")),
        ("GET", format!("/customers/{ada}/suggestions")),
        ("GET", format!("/customers/{ada}/ledger")),
        ("GET", format!("/customers/{ada}/export")),
    ] {
        let (status, body) = ApiClient(&timeline_api).raw(method, &path, None).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
    }
    // Her CRM attributes put her in a segment, and out again; the segment is listed.
    for value in [1500, 10] {
        let (status, set) = ApiClient(&timeline_api)
            .set_attributes(&ada, json!({ "lifetime_value": value }))
            .await;
        assert_eq!(status, 200, "{set}");
    }
    let (status, members) = ApiClient(&timeline_api)
        .raw("GET", "/segments/high_value/customers", None)
        .await;
    assert_eq!(status, 200, "{members}");
    // Boxed: the test's future would not fit the test thread's stack with it inline.
    Box::pin(exercise_replies(
        &stack,
        &stub,
        &timeline_api,
        &aws("throughline-sender"),
        &aws("throughline-reconciler"),
        &aws("throughline-rating-page"),
        &ada,
    ))
    .await;
    let (status, merge) = ApiClient(&timeline_api)
        .merge(&ada, &x_customer, Some("same person"))
        .await;
    assert_eq!(status, 200, "{merge}");
    let (status, body) = ApiClient(&timeline_api)
        .unmerge(merge["merge_id"].as_str().unwrap(), Some("not her"))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = ApiClient(&timeline_api).erase(&ada, "request DSR-2").await;
    assert_eq!(status, 202, "{body}");
    drain_as_the_writer().await;
    let (_, state) = ApiClient(&timeline_api).erasure_status(&ada).await;
    assert_eq!(state["complete"], true, "{state}");
    // Her mail that SES's S3 action kept went with her, every version.
    let versions = stack::s3_client(&stack.aws)
        .list_object_versions()
        .bucket(stack.mail_bucket())
        .prefix(format!("inbound/{message_id}"))
        .send()
        .await
        .unwrap();
    assert!(
        versions.versions().is_empty() && versions.delete_markers().is_empty(),
        "{versions:?}"
    );

    // A handle attached to the erased customer while its erasure ran (put back here by hand):
    // the writer releases it and gives the next message a customer of its own.
    let admin = aws_sdk_dynamodb::Client::new(&stack.aws);
    admin
        .put_item()
        .table_name(stack.table_name())
        .item("pk", AttributeValue::S("HANDLE#phone:+14155550100".into()))
        .item("sk", AttributeValue::S("HANDLE".into()))
        .item("customer_id", AttributeValue::S(ada.clone()))
        .item("evidence", AttributeValue::S("verified".into()))
        .send()
        .await
        .unwrap();
    let after = interaction(
        Channel::Sms,
        phone("+14155550100"),
        "SMp8",
        Utc::now() + TimeDelta::minutes(5),
    );
    let recorded = writer.record(&after).await.unwrap();
    assert!(
        matches!(&recorded, Recorded::New { customer, .. } if customer.to_string() != ada),
        "{recorded:?}"
    );

    let actions: BTreeMap<String, BTreeSet<String>> =
        reqwest::get(format!("{}/_throughline/actions", stack.moto.endpoint()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        !actions.contains_key("_unreadable"),
        "the emulator could not tell what some requests needed: {:?}",
        actions.get("_unreadable")
    );
    let mut missing = Vec::new();
    for function in functions.values() {
        let used = actions
            .get(function)
            .unwrap_or_else(|| panic!("{function} made no AWS call: the test does not exercise it"));
        let allowed = stack.template.allowed_actions(function).unwrap();
        for action in used.difference(&allowed) {
            missing.push(format!("{function} calls {action}"));
        }
    }
    assert!(
        missing.is_empty(),
        "infra/template.yaml does not allow:\n{}",
        missing.join("\n")
    );
    // The paths this test exists for were taken.
    assert!(
        actions[&functions["throughline-email-mailgun"]].contains("dynamodb:DeleteItem"),
        "the Mailgun function never gave a claim back"
    );
    // Erasing her raw mail was done by the API's step or the writer's, whichever reached it.
    let erasers = [
        &actions[&functions["throughline-timeline-writer"]],
        &actions[&functions["throughline-timeline-api"]],
    ];
    for action in ["s3:ListBucketVersions", "s3:DeleteObjectVersion"] {
        assert!(
            erasers.iter().any(|used| used.contains(action)),
            "no erasure called {action}"
        );
    }
    let sender_actions = &actions[&functions["throughline-sender"]];
    for action in [
        "sqs:ChangeMessageVisibility",
        "dynamodb:PutItem",
        "ssm:GetParameter",
        "ses:SendEmail",
    ] {
        assert!(
            sender_actions.contains(action),
            "the sender never called {action}: {sender_actions:?}"
        );
    }
    let reconciler_actions = &actions[&functions["throughline-reconciler"]];
    for action in ["dynamodb:Query", "sqs:SendMessage", "ssm:GetParameter"] {
        assert!(
            reconciler_actions.contains(action),
            "the reconciler never called {action}: {reconciler_actions:?}"
        );
    }
    let writer_actions = &actions[&functions["throughline-timeline-writer"]];
    for action in [
        "dynamodb:BatchGetItem",
        "dynamodb:DeleteItem",
        "dynamodb:TransactWriteItems",
        "dynamodb:BatchWriteItem",
        "sqs:SendMessage",
    ] {
        assert!(
            writer_actions.contains(action),
            "the writer never called {action}: {writer_actions:?}"
        );
    }
}
