//! Unit tests on the pure core, with the published vectors and the sample events in
//! events/x/ (signed with the documented test secret).

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use throughline_edge::ErrorCode;
use throughline_edge::{Accepted, Rejection, Secret, WebhookRequest};
use throughline_model::{Channel, Direction, InteractionId, InteractionKind, PlatformUserId, Provider};

use crate::webhook::{SIGNATURE_HEADER, XConfig, accept, crc_response, sign};

use throughline_testkit::secrets::TEST_X_CONSUMER_SECRET as TEST_SECRET;

const ACCOUNT: &str = "3001000000000000001";
const ADA: &str = "4410000000000000042";

fn now() -> DateTime<Utc> {
    throughline_testkit::sample_day_at(11, 30)
}

fn config() -> XConfig {
    XConfig {
        consumer_secret: Secret::new(TEST_SECRET),
    }
}

fn sample(name: &str) -> WebhookRequest {
    WebhookRequest::from_lambda(throughline_testkit::events::lambda_request(&format!("x/{name}")), None)
}

fn accepted(name: &str) -> Accepted {
    accept(&sample(name), &config(), now()).unwrap_or_else(|r| panic!("{name}: {r:?}"))
}

#[test]
fn published_signature_vectors() {
    assert_eq!(
        sign("test", b"test=1&other_test=2"),
        "sha256=25Cu3iwbbiqBTwQRzcKJZwisjf736V2Q8UaTlkfLSoc="
    );
    assert_eq!(
        sign("test", br#"{"test_number":1,"test_string":"two"}"#),
        "sha256=YWHphPn/JFq43jkF0y4/w8R/SelmLjvpunhVFY8JhlI="
    );
}

#[test]
fn crc_vector_and_sample() {
    let mut req = sample("01-crc.json");
    let vector = XConfig {
        consumer_secret: Secret::new("z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu"),
    };
    let body: serde_json::Value = serde_json::from_str(&crc_response(&req, &vector).unwrap()).unwrap();
    assert_eq!(
        body["response_token"],
        "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="
    );
    req.url = "https://x.throughline.example/".into();
    assert_eq!(
        crc_response(&req, &vector).unwrap_err().status(),
        StatusCode::BAD_REQUEST
    );
}

/// A GET whose `crc_token` is `token`.
fn crc_request(token: &str) -> WebhookRequest {
    let mut req = sample("01-crc.json");
    req.url = format!(
        "https://x.throughline.example/?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("crc_token", token)
            .finish()
    );
    req
}

#[test]
fn the_crc_answer_signs_only_tokens_x_can_send() {
    for token in [
        "a",
        "9b4507b3-9040-4669-9ca3-6b94edb50553",
        "AZaz09_=+/-",
        &"x".repeat(255),
    ] {
        assert!(crc_response(&crc_request(token), &config()).is_ok(), "{token}");
    }
    for token in [&"x".repeat(256), "a b", "a.b", "{}", "ünï", "a\nb"] {
        let err = crc_response(&crc_request(token), &config()).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{token}");
    }
}

/// The signing-oracle attack: a whole Account Activity document sent as `crc_token`, its answer
/// used as the signature of a POST of that document. The CRC must refuse to sign it, and no
/// other token's answer verifies the document.
#[test]
fn a_document_sent_as_crc_token_is_never_signed() {
    let forged = String::from_utf8(sample("02-dm-inbound.json").body).unwrap();
    let answer = crc_response(&crc_request(&forged), &config());
    assert_eq!(answer.unwrap_err().status(), StatusCode::BAD_REQUEST);

    let answered: serde_json::Value =
        serde_json::from_str(&crc_response(&crc_request("abc"), &config()).unwrap()).unwrap();
    let mut post = sample("02-dm-inbound.json");
    post.headers.insert(
        SIGNATURE_HEADER,
        answered["response_token"].as_str().unwrap().parse().unwrap(),
    );
    assert_eq!(
        accept(&post, &config(), now()).unwrap_err().status(),
        StatusCode::FORBIDDEN
    );
}

#[test]
fn an_empty_url_entity_leaves_the_text_alone() {
    let body = serde_json::json!({
        "for_user_id": ACCOUNT,
        "direct_message_events": [{"type": "message_create", "id": "77", "created_timestamp": "1795518060000",
            "message_create": {"sender_id": ADA, "target": {"recipient_id": ACCOUNT},
                "message_data": {"text": "hello", "entities": {"urls": [
                    {"url": "", "expanded_url": "https://evil.example/"}]}}}}]
    });
    let dm = accept(&signed(&body.to_string()), &config(), now())
        .unwrap()
        .interactions
        .remove(0);
    assert_eq!(dm.text.as_deref(), Some("hello"));
}

#[test]
fn inbound_dm_expands_links_and_names_the_customer() {
    let a = accepted("02-dm-inbound.json");
    let [dm] = a.interactions.as_slice() else {
        panic!("one DM")
    };
    assert_eq!(
        (dm.channel, dm.direction, dm.kind),
        (Channel::X, Direction::Inbound, InteractionKind::Message)
    );
    assert_eq!(
        dm.customer.key(),
        format!("x::{ADA}"),
        "the stable numeric id, never the screen name"
    );
    assert_eq!(dm.business_endpoint.key(), format!("x::{ACCOUNT}"));
    assert!(
        dm.text
            .as_deref()
            .unwrap()
            .contains("https://shop.example.com/orders/1042")
    );
    assert_eq!(dm.customer_display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(dm.attributes["screen_name"], "ada_l");
    assert_eq!(
        dm.thread.provider_thread_id.as_deref(),
        Some(format!("dm:{ACCOUNT}-{ADA}").as_str())
    );
    assert_eq!(dm.occurred_at.timestamp_millis(), 1795518060000);
}

#[test]
fn the_accounts_own_dm_is_outbound_to_the_customer() {
    let dm = accepted("03-dm-outbound-echo.json").interactions.remove(0);
    assert_eq!(dm.direction, Direction::Outbound);
    assert_eq!(dm.customer.key(), format!("x::{ADA}"));
    assert_eq!(
        dm.thread.provider_thread_id.as_deref(),
        Some(format!("dm:{ACCOUNT}-{ADA}").as_str())
    );
}

#[test]
fn dm_media_and_quick_reply() {
    let dm = accepted("04-dm-with-media.json").interactions.remove(0);
    assert_eq!(dm.attachments.len(), 1);
    assert_eq!(dm.attachments[0].content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(dm.attributes["quick_reply_metadata"], "order-1042");
}

#[test]
fn mentions_are_public_posts_and_replies_carry_the_thread() {
    let mention = accepted("05-mention.json").interactions.remove(0);
    assert_eq!(
        (mention.kind, mention.direction),
        (InteractionKind::PublicPost, Direction::Inbound)
    );
    assert_eq!(mention.attributes["mentions_account"], "true");
    assert!(mention.text.as_deref().unwrap().ends_with("📦"));

    let reply = accepted("06-reply-thread.json").interactions.remove(0);
    assert_eq!(
        (reply.kind, reply.direction),
        (InteractionKind::PublicPost, Direction::Outbound)
    );
    assert_eq!(reply.customer.key(), format!("x::{ADA}"));
    assert_eq!(reply.thread.in_reply_to.as_deref(), Some("1860000000000000201"));
}

#[test]
fn retweets_and_favorites_are_counted_and_ignored() {
    let retweet = accepted("07-retweet.json");
    assert!(retweet.interactions.is_empty());
    assert_eq!(retweet.ignored, vec!["retweet"]);
    let favorite = accepted("08-favorite.json");
    assert!(favorite.interactions.is_empty());
    assert_eq!(favorite.ignored, vec!["favorite"]);
}

#[test]
fn a_deleted_tweet_marks_its_interaction() {
    let delete = accepted("09-delete.json");
    let [update] = delete.updates.as_slice() else {
        panic!("one update")
    };
    let account = throughline_model::Handle::Platform {
        platform: throughline_model::Platform::X,
        scope: None,
        id: PlatformUserId::parse(ACCOUNT).unwrap(),
    };
    let mention_id = accepted("05-mention.json").interactions.remove(0).id;
    assert_eq!(update.interaction_id, mention_id);
    assert_eq!(
        update.interaction_id,
        InteractionId::derive(
            Provider::X,
            &account,
            &throughline_model::ProviderMessageId::parse("1860000000000000201").unwrap()
        )
    );
}

#[test]
fn bad_or_missing_signatures_are_403() {
    let err = accept(&sample("10-bad-signature.json"), &config(), now()).unwrap_err();
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    let mut req = sample("02-dm-inbound.json");
    req.headers.remove(SIGNATURE_HEADER);
    assert_eq!(
        accept(&req, &config(), now()).unwrap_err().status(),
        StatusCode::FORBIDDEN
    );
    let other = XConfig {
        consumer_secret: Secret::new("another"),
    };
    assert_eq!(
        accept(&sample("02-dm-inbound.json"), &other, now())
            .unwrap_err()
            .status(),
        StatusCode::FORBIDDEN
    );
}

fn signed(body: &str) -> WebhookRequest {
    let mut req = sample("02-dm-inbound.json");
    req.body = body.as_bytes().to_vec();
    req.headers
        .insert(SIGNATURE_HEADER, sign(TEST_SECRET, body.as_bytes()).parse().unwrap());
    req
}

#[test]
fn only_a_body_that_is_not_a_delivery_is_400() {
    let cases = [
        ("<html>", "body is not an Account Activity event: expected value"),
        (r#"{"direct_message_events":[]}"#, "for_user_id is missing"),
        (
            r#"{"for_user_id":7}"#,
            "body is not an Account Activity event: invalid type or value",
        ),
        (
            r#"{"for_user_id":"1","direct_message_events":{}}"#,
            "body is not an Account Activity event: invalid type or value",
        ),
    ];
    for (body, expected) in cases {
        let err = accept(&signed(body), &config(), now()).unwrap_err();
        assert!(
            matches!(&err, Rejection::Malformed { problem } if problem.starts_with(expected)),
            "{body}: {err:?}"
        );
    }
}

#[test]
fn a_malformed_event_is_ignored_and_the_rest_of_the_delivery_accepted() {
    let dm = |id: &str| {
        serde_json::json!({"type": "message_create", "id": id, "created_timestamp": "1795518060000",
        "message_create": {"sender_id": ADA, "target": {"recipient_id": ACCOUNT}, "message_data": {"text": "hi"}}})
    };
    let tweet = |id: &str| serde_json::json!({"id_str": id, "text": "@acme hi", "user": {"id_str": ADA}});
    let body = serde_json::json!({
        "for_user_id": ACCOUNT,
        "users": {ADA: {"name": "Ada", "screen_name": "ada"}, ACCOUNT: "not a user"},
        "direct_message_events": [
            dm("1"),
            {"type": "message_create", "id": "9"},
            {"type": "message_create", "id": 9, "message_create": {}},
            "not an event",
            dm("2"),
        ],
        "tweet_create_events": [tweet("10"), {"id_str": "5"}, {"id_str": "6", "user": {"id_str": ["x"]}}, tweet("11")],
        "tweet_delete_events": [{"status": {"id": "10"}}, {"status": {}}, {"status": {"id": 10}}],
    });
    let accepted = accept(&signed(&body.to_string()), &config(), now()).unwrap();
    let ids: Vec<&str> = accepted
        .interactions
        .iter()
        .map(|i| i.provider_message_id.as_str())
        .collect();
    assert_eq!(ids, vec!["1", "2", "10", "11"]);
    assert_eq!(accepted.interactions[0].customer_display_name.as_deref(), Some("Ada"));
    assert_eq!(accepted.updates.len(), 1);
    assert_eq!(accepted.ignored, vec!["malformed_event"; 3 + 2 + 2]);
}

#[test]
fn a_lone_surrogate_escape_costs_only_the_character() {
    let body = format!(
        r#"{{"for_user_id":"{ACCOUNT}","direct_message_events":[{{"type":"message_create","id":"3","message_create":{{"sender_id":"{ADA}","target":{{"recipient_id":"{ACCOUNT}"}},"message_data":{{"text":"cut \ud83d"}}}}}}]}}"#
    );
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_err());
    let dm = accept(&signed(&body), &config(), now()).unwrap().interactions.remove(0);
    assert_eq!(dm.text.as_deref(), Some("cut \u{FFFD}"));
}

#[test]
fn arbitrary_json_never_panics() {
    for body in [
        "{}",
        "[]",
        "null",
        r#"{"for_user_id":""}"#,
        r#"{"for_user_id":"1","users":[1]}"#,
        "\u{0}",
        "{\"a\":",
    ] {
        let _ = accept(&signed(body), &config(), now());
    }
}

proptest::proptest! {
    /// Any signed body, JSON or not, gets an answer: never a panic.
    #[test]
    fn any_signed_body_gets_an_answer(body in "\\PC{0,300}") {
        let _ = accept(&signed(&body), &config(), now());
    }

    #[test]
    fn any_signed_dm_shape_gets_an_answer(id in "\\PC{0,20}", sender in "\\PC{0,20}", text in "\\PC{0,50}") {
        let body = serde_json::json!({
            "for_user_id": ACCOUNT,
            "direct_message_events": [{"type": "message_create", "id": id, "created_timestamp": "x",
                "message_create": {"sender_id": sender, "target": {"recipient_id": ACCOUNT},
                    "message_data": {"text": text}}}]
        });
        let _ = accept(&signed(&body.to_string()), &config(), now());
    }
}

#[test]
fn the_customers_read_receipt_is_a_read_watermark_at_the_time_in_the_last_read_id() {
    let read = accepted("11-dm-read.json");
    assert!(read.interactions.is_empty() && read.ignored.is_empty(), "{read:?}");
    let [watermark] = read.watermarks.as_slice() else {
        panic!("one watermark: {read:?}")
    };
    assert_eq!(watermark.customer.key(), format!("x::{ADA}"));
    assert_eq!(watermark.status, throughline_model::DeliveryStatus::Read);
    // The snowflake's time: 2026-11-24T10:04:59Z.
    assert_eq!(watermark.up_to.timestamp_millis(), 1795518299000);

    // The account's own read (an agent read Ada's DM in X's app) is nobody's receipt; a
    // receipt without an id is malformed, alone.
    let body = format!(
        r#"{{"for_user_id":"{ACCOUNT}","direct_message_mark_read_events":[
            {{"created_timestamp":"1","sender_id":"{ACCOUNT}","target":{{"recipient_id":"{ADA}"}},"last_read_event_id":"2125183894025142272"}},
            {{"created_timestamp":"1","sender_id":"{ADA}","target":{{"recipient_id":"{ACCOUNT}"}}}}]}}"#
    );
    let accepted = accept(&signed(&body), &config(), now()).unwrap();
    assert!(accepted.watermarks.is_empty());
    assert_eq!(accepted.ignored, vec!["own_read", "malformed_event"]);
}
