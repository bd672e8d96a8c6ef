//! Meta webhooks (Messenger, Instagram, WhatsApp) → SQS → writer → timeline, against the moto
//! emulator: WhatsApp joins the customer known by SMS, the page's own answers are outbound,
//! entries are ordered by message time, a retried batch is recorded once.

use lambda_http::http::StatusCode;
use throughline_e2e::*;
use throughline_model::{Channel, Direction, Handle, Platform};

const PAGE: &str = "1060000000000001";

fn messenger_user(psid: &str) -> Handle {
    platform_user(Platform::Messenger, Some(PAGE), psid)
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_samples_become_timelines_and_whatsapp_joins_the_sms_customer() {
    let stack = start_stack().await;
    let sms = sms_function(&stack);
    let meta = facebook_function(&stack);
    let queue = stack.interactions_queue().url.clone();

    let handshake = send_facebook(&meta, "facebook/01-handshake-ok.json").await;
    assert_eq!(handshake.status(), StatusCode::OK);
    assert_eq!(body_text(&handshake), "1158201444");
    assert_eq!(
        send_facebook(&meta, "facebook/02-handshake-bad-token.json")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    assert_eq!(send(&sms, "sms/01-inbound-sms.json").await.status(), StatusCode::OK);
    for event in [
        "facebook/03-messenger-text.json",
        "facebook/04-messenger-attachment.json",
        "facebook/05-messenger-quick-reply.json",
        "facebook/06-messenger-postback.json",
        "facebook/07-messenger-reply.json",
        "facebook/08-messenger-echo.json",
        "facebook/09-messenger-delivery-read.json",
        "facebook/10-instagram-text.json",
        "facebook/11-instagram-delete.json",
        "facebook/12-whatsapp-text.json",
        "facebook/13-whatsapp-image-caption.json",
        "facebook/14-whatsapp-location.json",
        "facebook/15-whatsapp-interactive-reply.json",
        "facebook/16-whatsapp-status.json",
        "facebook/18-unicode-body.json",
    ] {
        let response = send_facebook(&meta, event).await;
        assert_eq!(response.status(), StatusCode::OK, "{event}: {}", body_text(&response));
    }
    let forged = send_facebook(&meta, "facebook/19-bad-signature.json").await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // sms 1 + messenger 6 and 2 watermarks + instagram 1 message and 1 delete + whatsapp 4 and
    // 1 status + unicode 1.
    assert_eq!(depth(&stack, &queue).await, 17, "forgeries queue nothing");

    let store = stack.store();
    drain(&stack.writer_mapping(Some(1)), &store).await;

    let ada = timeline_of(&store, &phone("+14155550100")).await;
    assert_eq!(
        ada.len(),
        5,
        "the SMS and four WhatsApp Cloud API messages: one customer"
    );
    assert_eq!(ada.iter().filter(|i| i.channel == Channel::Whatsapp).count(), 4);

    // Sent reply-before-echo, listed by message time: the page's answer sits between.
    let messenger = timeline_of(&store, &messenger_user("6010000000000042")).await;
    let order: Vec<&str> = messenger.iter().map(|i| i.provider_message_id.as_str()).collect();
    assert_eq!(
        order,
        [
            "m_AdaMessenger006",
            "m_PageAnswer005",
            "m_AdaPostback004",
            "m_AdaMessenger003",
            "m_AdaMessenger002",
            "m_AdaMessenger001"
        ]
    );
    assert_eq!(messenger[1].direction, Direction::Outbound);

    let instagram = timeline_of(
        &store,
        &platform_user(Platform::Instagram, Some("17841400000000001"), "1784000000000777"),
    )
    .await;
    assert_eq!(instagram.len(), 1);
    assert!(
        instagram[0].deleted_at.is_some(),
        "the Instagram delete marks the message"
    );

    let unicode = timeline_of(&store, &messenger_user("6010000000000099")).await;
    assert_eq!(
        unicode[0].text.as_deref(),
        Some("Ça arrive quand ? 日本からです 📦 — merci !")
    );
    assert_eq!(depth(&stack, &stack.dead_letter_queue().url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_50_message_batch_is_recorded_once() {
    let stack = start_stack().await;
    let meta = facebook_function(&stack);
    for _ in 0..2 {
        let response = send_facebook(&meta, "facebook/17-batch-50-messages.json").await;
        assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    }
    assert_eq!(depth(&stack, &stack.interactions_queue().url).await, 100);
    let store = stack.store();
    drain(&stack.writer_mapping(Some(1)), &store).await;
    let mut total = 0;
    for n in 0..5 {
        let timeline = timeline_of(&store, &messenger_user(&format!("60200000000000{n:02}"))).await;
        assert_eq!(timeline.len(), 10);
        assert!(timeline.windows(2).all(|w| w[0].occurred_at >= w[1].occurred_at));
        total += timeline.len();
    }
    assert_eq!(total, 50);
    assert_eq!(depth(&stack, &stack.dead_letter_queue().url).await, 0);
}

/// A signed Meta delivery of these Messenger messages (mid, text) from one user to the page.
fn messenger_delivery(psid: &str, messages: &[(&str, &str)]) -> lambda_http::Request {
    let messaging: Vec<serde_json::Value> = messages
        .iter()
        .enumerate()
        .map(|(n, (mid, text))| {
            serde_json::json!({
                "sender": { "id": psid },
                "recipient": { "id": PAGE },
                "timestamp": 1_795_520_001_000i64 + n as i64 * 1000,
                "message": { "mid": mid, "text": text }
            })
        })
        .collect();
    let body = serde_json::json!({
        "object": "page",
        "entry": [{ "id": PAGE, "time": 1_795_520_000_000i64, "messaging": messaging }]
    })
    .to_string();
    let mut event = sample_json("facebook/03-messenger-text.json");
    event["headers"]["x-hub-signature-256"] =
        throughline_facebook::webhook::sign(secrets::TEST_META_APP_SECRET, body.as_bytes()).into();
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// `respond`'s drop path against the real queue: one interaction of a delivery is larger than an
/// SQS message can be, so it is dropped (and counted as ignored `too_large`: that metric line is
/// not observed here) and the rest are queued and recorded, and Meta gets its 200 (a 5xx would make it resend the same bytes until it gave up on all
/// three). moto refuses an entry as the sender's fault only for an invalid `DelaySeconds`, which
/// the publisher never sends, so the `rejected_by_queue` drop cannot be produced here: it is
/// covered by `throughline_queue`'s pure `refusals` test, and in `respond` it takes this same
/// `dropped` path.
#[tokio::test(flavor = "multi_thread")]
async fn an_interaction_too_large_for_sqs_is_dropped_and_the_rest_queued_and_acknowledged() {
    let stack = start_stack().await;
    let meta = facebook_function(&stack);
    let queue = stack.interactions_queue().url.clone();
    let psid = "6010000000000123";
    let huge = "x".repeat(300 * 1024);
    let request = messenger_delivery(
        psid,
        &[
            ("m_TooLargeFirst", "first"),
            ("m_TooLargeHuge", &huge),
            ("m_TooLargeThird", "third"),
        ],
    );
    let response = throughline_facebook::handle(request, &meta).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    assert_eq!(depth(&stack, &queue).await, 2, "the two that fit are queued");

    let store = stack.store();
    drain(&stack.writer_mapping(Some(1)), &store).await;
    let timeline = timeline_of(&store, &messenger_user(psid)).await;
    let recorded: Vec<(&str, Option<&str>)> = timeline
        .iter()
        .map(|i| (i.provider_message_id.as_str(), i.text.as_deref()))
        .collect();
    assert_eq!(
        recorded,
        [("m_TooLargeThird", Some("third")), ("m_TooLargeFirst", Some("first"))]
    );
    assert_eq!(depth(&stack, &stack.dead_letter_queue().url).await, 0);
}
