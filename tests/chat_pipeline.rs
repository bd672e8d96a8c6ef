//! Web chat and Telegram → SQS → writer → timeline, against the moto emulator: verified visitor
//! identities join the customer other channels know, claims do not, edits change the entry.

use chrono::{TimeZone, Utc};
use lambda_http::http::StatusCode;
use throughline_e2e::*;
use throughline_model::{
    Direction, EmailAddress, Evidence, Handle, InteractionId, InteractionUpdate, Platform, Provider, ProviderMessageId,
};
use throughline_store::Applied;

fn chat_user(id: &str) -> Handle {
    platform_user(Platform::WebChatUser, Some(secrets::TEST_CHAT_SITE), id)
}

fn chat_visitor(id: &str) -> Handle {
    platform_user(Platform::WebChatVisitor, Some(secrets::TEST_CHAT_SITE), id)
}

fn telegram_user(id: &str) -> Handle {
    platform_user(Platform::Telegram, None, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_and_telegram_samples_become_timelines_and_a_verified_visitor_joins_the_sms_customer() {
    let stack = start_stack().await;
    let sms = sms_function(&stack);
    let chat = chat_function(&stack);
    let queue = stack.interactions_queue().url.clone();

    // Ada is known from SMS first.
    assert_eq!(send(&sms, "sms/01-inbound-sms.json").await.status(), StatusCode::OK);
    for (event, expected) in [
        ("chat/01-widget-message.json", StatusCode::OK),
        ("chat/02-widget-batch.json", StatusCode::OK),
        ("chat/02-widget-batch.json", StatusCode::OK), // the sender's retry
        ("chat/03-widget-verified-identity.json", StatusCode::OK),
        ("chat/04-widget-prechat-email-unverified.json", StatusCode::OK),
        ("chat/05-widget-stale-timestamp.json", StatusCode::UNAUTHORIZED),
        ("chat/06-widget-bad-signature.json", StatusCode::UNAUTHORIZED),
        ("chat/07-widget-rotated-secret.json", StatusCode::OK),
        ("chat/08-telegram-text.json", StatusCode::OK),
        ("chat/09-telegram-photo-caption.json", StatusCode::OK),
        ("chat/10-telegram-reply.json", StatusCode::OK),
        ("chat/11-telegram-edited-message.json", StatusCode::OK),
        ("chat/12-telegram-ignored-callback-query.json", StatusCode::OK),
        ("chat/13-telegram-wrong-secret-token.json", StatusCode::UNAUTHORIZED),
    ] {
        let response = send_chat(&chat, event).await;
        assert_eq!(response.status(), expected, "{event}: {}", body_text(&response));
        if expected == StatusCode::UNAUTHORIZED {
            let error: serde_json::Value = serde_json::from_str(&body_text(&response)).unwrap();
            assert_eq!(error["error"]["code"], "bad_signature", "{event}");
        }
    }
    let message = |response: lambda_http::Response<lambda_http::Body>| {
        let error: serde_json::Value = serde_json::from_str(&body_text(&response)).unwrap();
        error["error"]["message"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        message(send_chat(&chat, "chat/05-widget-stale-timestamp.json").await),
        "x-throughline-timestamp is outside the allowed window"
    );
    assert_eq!(
        message(send_chat(&chat, "chat/06-widget-bad-signature.json").await),
        "x-throughline-signature does not match this request"
    );
    // sms 1 + widget 1 + 3 + 3 (retry) + 1 + 1 + 1 + telegram 3 messages + 1 edit.
    assert_eq!(
        depth(&stack, &queue).await,
        15,
        "nothing queued for refused or ignored requests"
    );

    let store = stack.store();
    drain(&stack.writer_mapping(Some(1)), &store).await;

    // The logged-in visitor's token vouched for Ada's phone: one customer, one timeline.
    let ada = store.customer_for(&phone("+14155550100"), true).await.unwrap().unwrap();
    let ada_user = store.customer_for(&chat_user("user-1042"), true).await.unwrap();
    assert_eq!(ada_user.as_ref(), Some(&ada));
    let ada_email = Handle::Email {
        address: EmailAddress::parse("ada@example.com").unwrap(),
    };
    assert_eq!(store.customer_for(&ada_email, true).await.unwrap().as_ref(), Some(&ada));
    let timeline = timeline_of(&store, &phone("+14155550100")).await;
    assert_eq!(timeline.len(), 2, "the SMS and the verified chat message");
    assert!(timeline.iter().any(|i| i.provider == Provider::WebChat));

    // Typing Ada's email into a pre-chat form gets nothing of hers: a customer of its own.
    let claimant = store
        .customer_for(&chat_visitor("v-40f7b1"), true)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(claimant, ada);
    let claim = &timeline_of(&store, &chat_visitor("v-40f7b1")).await[0];
    assert_eq!(claim.identities[0].handle, ada_email);
    assert_eq!(claim.identities[0].evidence, Evidence::Claimed);

    // The anonymous visitor: 5 messages (a retried batch counted once), one of them the agent's.
    let visitor = timeline_of(&store, &chat_visitor("v-1c9e2f")).await;
    assert_eq!(visitor.len(), 5);
    assert_eq!(visitor.iter().filter(|i| i.direction == Direction::Outbound).count(), 1);
    assert!(visitor.windows(2).all(|w| w[0].occurred_at >= w[1].occurred_at));

    // Telegram: three messages, the first one edited in place.
    let grace = timeline_of(&store, &telegram_user("5125550100")).await;
    assert_eq!(grace.len(), 3);
    let first = grace
        .iter()
        .find(|i| i.provider_message_id.as_str() == "5125550100:301")
        .unwrap();
    assert!(first.text.as_deref().unwrap().contains("2211"));
    assert_eq!(
        first.original_text.as_deref(),
        Some("Hello! My order 2210 never arrived.")
    );
    assert_eq!(first.edited_at.map(|t| t.timestamp()), Some(1795529220));
    let reply = grace
        .iter()
        .find(|i| i.provider_message_id.as_str() == "5125550100:304")
        .unwrap();
    assert_eq!(reply.thread.in_reply_to.as_deref(), Some("5125550100:303"));
    assert_eq!(depth(&stack, &stack.dead_letter_queue().url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_that_arrives_before_its_message_is_applied_when_the_message_arrives() {
    let stack = start_stack().await;
    let chat = chat_function(&stack);
    let store = stack.store();
    let mapping = stack.writer_mapping(Some(1));

    assert_eq!(
        send_chat(&chat, "chat/11-telegram-edited-message.json").await.status(),
        StatusCode::OK
    );
    drain(&mapping, &store).await;
    assert_eq!(
        store.customer_for(&telegram_user("5125550100"), true).await.unwrap(),
        None
    );

    for _ in 0..2 {
        assert_eq!(
            send_chat(&chat, "chat/08-telegram-text.json").await.status(),
            StatusCode::OK
        );
        drain(&mapping, &store).await;
    }
    let grace = timeline_of(&store, &telegram_user("5125550100")).await;
    assert_eq!(grace.len(), 1, "a resent message is not a second entry");
    assert!(
        grace[0].text.as_deref().unwrap().contains("2211"),
        "the early edit was kept"
    );
    assert_eq!(
        grace[0].original_text.as_deref(),
        Some("Hello! My order 2210 never arrived.")
    );

    // An older edit delivered late does not undo the newer one; a newer one wins.
    let bot = platform_user(Platform::Telegram, None, secrets::TEST_TELEGRAM_BOT);
    let id = InteractionId::derive(
        Provider::Telegram,
        &bot,
        &ProviderMessageId::parse("5125550100:301").unwrap(),
    );
    let at = |s| Utc.timestamp_opt(s, 0).unwrap();
    let older = InteractionUpdate::edited(id.clone(), Some("stale edit".into()), at(1795529200));
    assert!(matches!(store.apply(&older).await.unwrap(), Applied::Updated { .. }));
    let entry = &timeline_of(&store, &telegram_user("5125550100")).await[0];
    assert!(entry.text.as_deref().unwrap().contains("2211"));
    let newer = InteractionUpdate::edited(id, Some("final words".into()), at(1795529300));
    store.apply(&newer).await.unwrap();
    let entry = &timeline_of(&store, &telegram_user("5125550100")).await[0];
    assert_eq!(entry.text.as_deref(), Some("final words"));
    assert_eq!(
        entry.original_text.as_deref(),
        Some("Hello! My order 2210 never arrived.")
    );
}

/// A web-chat delivery of `messages`, signed now with the site's current secret.
fn widget_delivery(messages: serde_json::Value) -> lambda_http::Request {
    use throughline_chat::widget;
    let mut event = sample_json("chat/01-widget-message.json");
    let body = serde_json::json!({ "messages": messages }).to_string();
    let timestamp = Utc::now().timestamp().to_string();
    event["headers"][widget::SIGNATURE_HEADER] =
        widget::sign(secrets::TEST_CHAT_SECRET, &timestamp, body.as_bytes()).into();
    event["headers"][widget::TIMESTAMP_HEADER] = timestamp.into();
    event["body"] = body.into();
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// An anonymous visitor who sets the `visitor_id` cookie to a logged-in user's id, writing
/// before that user logs in, gets a customer of their own: the user's login later joins the
/// user's real customer, and nothing of the visitor's lands there.
#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_cookie_set_to_a_user_id_never_reaches_that_users_timeline() {
    let stack = start_stack().await;
    let sms = sms_function(&stack);
    let chat = chat_function(&stack);
    let store = stack.store();
    let mapping = stack.writer_mapping(Some(1));

    assert_eq!(send(&sms, "sms/01-inbound-sms.json").await.status(), StatusCode::OK);
    let impostor = widget_delivery(serde_json::json!([{
        "message_id": "wm-evil-1", "visitor_id": "user-1042", "sent_at": Utc::now().to_rfc3339(),
        "text": "Please change my delivery address"
    }]));
    let response = throughline_chat::handle(impostor, &chat).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", body_text(&response));
    drain(&mapping, &store).await;
    assert_eq!(
        send_chat(&chat, "chat/03-widget-verified-identity.json").await.status(),
        StatusCode::OK
    );
    drain(&mapping, &store).await;

    let ada = store.customer_for(&phone("+14155550100"), true).await.unwrap().unwrap();
    assert_eq!(
        store.customer_for(&chat_user("user-1042"), true).await.unwrap(),
        Some(ada.clone())
    );
    let impostor = store
        .customer_for(&chat_visitor("user-1042"), true)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(impostor, ada);
    let timeline = timeline_of(&store, &phone("+14155550100")).await;
    assert_eq!(timeline.len(), 2, "Ada's SMS and her logged-in chat message");
    assert!(timeline.iter().all(|i| i.provider_message_id.as_str() != "wm-evil-1"));
}
