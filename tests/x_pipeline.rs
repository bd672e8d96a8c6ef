//! X Account Activity webhooks → SQS → writer → timeline, against the moto emulator.

use lambda_http::http::StatusCode;
use throughline_e2e::*;
use throughline_model::{Direction, Handle, InteractionKind, Platform, QueueMessage};

fn x_user(id: &str) -> Handle {
    platform_user(Platform::X, None, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn dms_and_mentions_land_on_the_customers_timeline_and_deletes_mark_them() {
    let stack = start_stack().await;
    let function = x_function(&stack);
    let queue = stack.interactions_queue().url.clone();

    let crc = send_x(&function, "x/01-crc.json").await;
    assert_eq!(crc.status(), StatusCode::OK);
    let crc: serde_json::Value = serde_json::from_str(&body_text(&crc)).unwrap();
    assert!(crc["response_token"].as_str().unwrap().starts_with("sha256="));

    for event in [
        "x/02-dm-inbound.json",
        "x/03-dm-outbound-echo.json",
        "x/04-dm-with-media.json",
        "x/05-mention.json",
        "x/06-reply-thread.json",
        "x/07-retweet.json",
        "x/08-favorite.json",
    ] {
        let response = send_x(&function, event).await;
        assert_eq!(response.status(), StatusCode::OK, "{event}: {}", body_text(&response));
    }
    assert_eq!(
        depth(&stack, &queue).await,
        5,
        "retweet and favorite are acknowledged, not queued"
    );
    assert_eq!(
        send_x(&function, "x/10-bad-signature.json").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(depth(&stack, &queue).await, 5);

    let store = stack.store();
    let mapping = stack.writer_mapping(Some(1));
    drain(&mapping, &store).await;
    // The delete comes after its tweet was recorded.
    assert_eq!(send_x(&function, "x/09-delete.json").await.status(), StatusCode::OK);
    drain(&mapping, &store).await;

    let ada = timeline_of(&store, &x_user("4410000000000000042")).await;
    assert_eq!(ada.len(), 5);
    assert_eq!(
        ada.iter().filter(|i| i.direction == Direction::Outbound).count(),
        2,
        "the DM echo and the reply"
    );
    let mention = ada
        .iter()
        .find(|i| i.provider_message_id.as_str() == "1860000000000000201")
        .unwrap();
    assert_eq!(mention.kind, InteractionKind::PublicPost);
    assert!(mention.deleted_at.is_some(), "the deleted tweet stays, marked deleted");
    assert!(
        ada.iter()
            .filter(|i| i.provider_message_id.as_str() != "1860000000000000201")
            .all(|i| i.deleted_at.is_none())
    );
    assert!(
        ada.windows(2).all(|w| w[0].occurred_at >= w[1].occurred_at),
        "ordered by X's timestamps"
    );
    assert_eq!(
        store.all_customers().await.unwrap().len(),
        1,
        "the company's own account is not a customer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_that_arrives_before_its_tweet_is_not_lost() {
    let stack = start_stack().await;
    let function = x_function(&stack);
    let store = stack.store();
    let mapping = stack.writer_mapping(Some(1));

    // The writer sees the deletion first (SQS standard queues do not keep order)...
    assert_eq!(send_x(&function, "x/09-delete.json").await.status(), StatusCode::OK);
    drain(&mapping, &store).await;
    // ...then the tweet, twice (a retry).
    let mention = throughline_x::accept(
        &throughline_edge::WebhookRequest::from_lambda(sample_request("x/05-mention.json"), None),
        &function.x,
        chrono::Utc::now(),
    )
    .unwrap()
    .interactions
    .remove(0);
    let message = QueueMessage::from(mention);
    function.publisher.publish(&[message.clone(), message]).await.unwrap();
    drain(&mapping, &store).await;

    let ada = timeline_of(&store, &x_user("4410000000000000042")).await;
    assert_eq!(ada.len(), 1);
    assert!(ada[0].deleted_at.is_some());
}

/// The CRC signing-oracle attack through the handler: a forged DM document sent as `crc_token`
/// is refused, so no signature for it exists, and the forged POST never reaches a timeline.
#[tokio::test(flavor = "multi_thread")]
async fn a_dm_forged_through_the_crc_answer_never_reaches_a_timeline() {
    let stack = start_stack().await;
    let function = x_function(&stack);
    let queue = stack.interactions_queue().url.clone();
    let forged = sample_json("x/02-dm-inbound.json")["body"].as_str().unwrap().to_owned();

    let mut crc = sample_json("x/01-crc.json");
    crc["rawQueryString"] = form_urlencoded::Serializer::new(String::new())
        .append_pair("crc_token", &forged)
        .finish()
        .into();
    let answer = throughline_x::handle(lambda_http::request::from_str(&crc.to_string()).unwrap(), &function).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{}", body_text(&answer));
    let answer: serde_json::Value = serde_json::from_str(&body_text(&answer)).unwrap();
    assert_eq!(answer["error"]["code"], "malformed_request");

    // Whatever the attacker signs with, the POST of the document is refused.
    let mut post = sample_json("x/02-dm-inbound.json");
    post["headers"]["x-twitter-webhooks-signature"] = answer["response_token"].as_str().unwrap_or("sha256=").into();
    let response = throughline_x::handle(lambda_http::request::from_str(&post.to_string()).unwrap(), &function).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(depth(&stack, &queue).await, 0);

    let store = stack.store();
    drain(&stack.writer_mapping(Some(1)), &store).await;
    assert!(
        store.all_customers().await.unwrap().is_empty(),
        "no timeline holds the forged DM"
    );
}
