//! Inbound email → SQS → writer → timeline, against the moto emulator (S3, SQS, DynamoDB): SES
//! via SNS and via S3 (only from the configured topic and action), Mailgun routes (tokens
//! claimed once, given back after a 503); threads scoped per customer; nothing doubled,
//! nothing lost when S3 or SQS is not there.

use lambda_http::http::StatusCode;
use throughline_e2e::*;
use throughline_model::{AttachmentSource, EmailAddress, Handle, InteractionKind};

fn email(address: &str) -> Handle {
    Handle::Email {
        address: EmailAddress::parse(address).unwrap(),
    }
}

fn ses_message_id(event: &serde_json::Value) -> String {
    event["Records"][0]["ses"]["mail"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned()
}

const SES_EVENTS: [&str; 10] = [
    "email/01-ses-sns-base64.json",
    "email/02-ses-sns-utf8-windows-1252.json",
    "email/03-ses-s3-large-with-attachments.json",
    "email/04-ses-sns-reply-quoted.json",
    "email/05-ses-sns-auto-reply.json",
    "email/06-ses-sns-bounce.json",
    "email/07-ses-sns-iso-2022-jp.json",
    "email/08-ses-sns-newsletter-reply-ada.json",
    "email/09-ses-sns-newsletter-reply-grace.json",
    "email/10-ses-sns-spam-fail.json",
];

#[tokio::test(flavor = "multi_thread")]
async fn ses_mail_becomes_timelines_with_threads_attachments_and_flags() {
    let stack = start_stack().await;
    let ses = ses_function(&stack);
    let queue = stack.interactions_queue().url.clone();

    // The S3 action stored the large mail before SES invoked the function.
    let large = sample_json("email/03-ses-s3-large-with-attachments.json");
    let raw = std::fs::read(event_path("email/mime/03-ada-large-with-attachments.eml")).unwrap();
    stack.put_inbound_mail(&ses_message_id(&large), raw).await.unwrap();

    for event in SES_EVENTS {
        let answer = throughline_email::handle_ses(sample_json(event), &ses).await;
        assert!(answer.is_ok(), "{event}: {answer:?}");
    }
    // A redelivered notification (Lambda retries async invocations) changes nothing.
    throughline_email::handle_ses(sample_json("email/01-ses-sns-base64.json"), &ses)
        .await
        .unwrap();
    // The same notification from a topic that is not the configured one is skipped, not failed.
    let mut foreign = sample_json("email/02-ses-sns-utf8-windows-1252.json");
    foreign["Records"][0]["Sns"]["TopicArn"] = "arn:aws:sns:us-east-1:210987654321:someone-else".into();
    let answer = throughline_email::handle_ses(foreign, &ses).await;
    assert_eq!(answer, Ok(serde_json::json!({ "queued": 0 })));
    assert_eq!(depth(&stack, &queue).await, 11);

    let store = stack.store();
    drain(&stack.writer_mapping(Some(1)), &store).await;

    let ada = timeline_of(&store, &email("ada@example.com")).await;
    let ids: Vec<&str> = ada.iter().map(|i| i.provider_message_id.as_str()).collect();
    assert!(ids.contains(&"CAAda1042-q1@mail.example.com"), "{ids:?}");
    assert_eq!(
        ids.iter().filter(|id| **id == "CAAda1042-q1@mail.example.com").count(),
        1,
        "one entry per Message-ID"
    );
    let photos = ada
        .iter()
        .find(|i| i.subject.as_deref() == Some("Photos of the damaged box"))
        .expect("the large mail");
    assert!(photos.attachments.len() >= 2);
    let bounce = ada
        .iter()
        .find(|i| i.attributes.get("automated").map(String::as_str) == Some("bounce"));
    assert_eq!(
        bounce.expect("the bounce, on the customer whose address failed").kind,
        InteractionKind::Automated
    );
    let question = ada
        .iter()
        .find(|i| i.provider_message_id.as_str() == "CAAda1042-q1@mail.example.com")
        .unwrap();
    assert_eq!(photos.thread.provider_thread_id, question.thread.provider_thread_id);
    for attachment in &photos.attachments {
        let AttachmentSource::MimePart { bucket, key, .. } = &attachment.source else {
            panic!("attachments point into the raw mail: {attachment:?}")
        };
        let object = stack::s3_client(&stack.aws)
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("the referenced mail exists in S3");
        assert!(object.content_length().unwrap_or_default() > 150_000);
    }
    let auto = ada
        .iter()
        .find(|i| i.attributes.get("automated").map(String::as_str) == Some("auto_reply"));
    assert_eq!(auto.expect("the auto-reply").kind, InteractionKind::Automated);
    let reply = ada.iter().find(|i| i.full_text.is_some()).expect("the quoted reply");
    assert!(!reply.text.as_deref().unwrap().contains("wrote:"));

    // Two customers answering one newsletter: two threads.
    let grace = timeline_of(&store, &email("grace@hopper.example")).await;
    let newsletter = |timeline: &[throughline_model::Interaction]| {
        timeline
            .iter()
            .find(|i| i.thread.references.iter().any(|r| r.starts_with("newsletter-2026-11")))
            .and_then(|i| i.thread.provider_thread_id.clone())
            .expect("a newsletter reply")
    };
    assert_ne!(newsletter(&ada), newsletter(&grace));
    assert!(grace.iter().any(|i| i.text.as_deref().is_some_and(|t| t.contains('€'))));

    let spam = timeline_of(&store, &email("offers@spam.example")).await;
    assert_eq!(spam[0].kind, InteractionKind::Quarantined);
    assert_eq!(depth(&stack, &stack.dead_letter_queue().url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_s3_object_fails_the_invocation_and_queues_nothing() {
    let stack = start_stack().await;
    let ses = ses_function(&stack);
    let failed = throughline_email::handle_ses(sample_json("email/03-ses-s3-large-with-attachments.json"), &ses).await;
    assert!(failed.is_err(), "Lambda must retry: {failed:?}");
    assert_eq!(depth(&stack, &stack.interactions_queue().url).await, 0);
}

/// Posts a Mailgun route delivery (an HTTP event) to the function.
async fn post(
    function: &throughline_email::MailgunFunction,
    event: &serde_json::Value,
) -> lambda_http::Response<lambda_http::Body> {
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    throughline_email::handle_mailgun(request, function).await
}

#[tokio::test(flavor = "multi_thread")]
async fn mailgun_routes_are_verified_and_replays_refused() {
    let stack = start_stack().await;
    let mailgun = mailgun_function(&stack);
    let queue = stack.interactions_queue().url.clone();
    // The same function with its queue gone: queueing fails, the answer is a 503.
    let broken = throughline_email::MailgunFunction {
        publisher: throughline_queue::InteractionPublisher::new(stack.sqs(), format!("{queue}-missing")),
        ..mailgun_function(&stack)
    };

    // Queueing fails: 503, and the token is given back, so Mailgun's retry of the very same
    // post (same timestamp, token and signature) is accepted once.
    let delivery = throughline_localstack::sign::fresh_event(&event_path("email/11-mailgun-mime.json")).unwrap();
    let failed = post(&broken, &delivery).await;
    assert_eq!(
        failed.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        body_text(&failed)
    );
    let retried = post(&mailgun, &delivery).await;
    assert_eq!(retried.status(), StatusCode::OK, "{}", body_text(&retried));
    let replay = post(&mailgun, &delivery).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert!(body_text(&replay).contains("token was used before"));

    // Two posts of one token at once (a replay racing the original): exactly one is taken.
    let raced = throughline_localstack::sign::fresh_event(&event_path("email/11-mailgun-mime.json")).unwrap();
    let (a, b) = tokio::join!(post(&mailgun, &raced), post(&mailgun, &raced));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::UNAUTHORIZED],
        "{} / {}",
        body_text(&a),
        body_text(&b)
    );

    for (event, message) in [
        (
            "email/12-mailgun-bad-signature.json",
            "signature does not match timestamp and token",
        ),
        (
            "email/13-mailgun-stale-timestamp.json",
            "timestamp is outside the allowed window",
        ),
    ] {
        let response = throughline_email::handle_mailgun(fresh_request(event), &mailgun).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{event}");
        assert!(
            body_text(&response).contains(message),
            "{event}: {}",
            body_text(&response)
        );
    }
    // Mailgun's own retry of the delivery (new token, same mail): one timeline entry.
    let retry = throughline_email::handle_mailgun(fresh_request("email/11-mailgun-mime.json"), &mailgun).await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(depth(&stack, &queue).await, 3);

    let store = stack.store();
    drain(&stack.writer_mapping(Some(1)), &store).await;
    let grace = timeline_of(&store, &email("grace@hopper.example")).await;
    assert_eq!(
        grace.len(),
        1,
        "valid, retried after a 503, raced and re-sent: one entry"
    );
    assert_eq!(grace[0].provider_message_id.as_str(), "grace-mg-1@hopper.example");
}
