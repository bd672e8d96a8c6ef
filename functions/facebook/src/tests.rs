//! Unit tests on the pure core, with the published vector and the sample events in
//! events/facebook/ (signed with the documented test app secret).

use std::collections::HashSet;
use throughline_edge::ErrorCode;

use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use proptest::prelude::*;
use throughline_edge::{Accepted, Secret, WebhookRequest};
use throughline_model::{
    AttachmentSource, Change, Channel, DeliveryStatus, Direction, E164, Handle, InteractionId, Provider,
    ProviderMessageId,
};

use crate::webhook::{MetaConfig, SIGNATURE_HEADER, accept, handshake, sign};

use throughline_testkit::secrets::{
    TEST_META_APP_SECRET as TEST_APP_SECRET, TEST_META_VERIFY_TOKEN as TEST_VERIFY_TOKEN,
};

fn now() -> DateTime<Utc> {
    throughline_testkit::sample_day_at(12, 0)
}

fn config() -> MetaConfig {
    MetaConfig {
        app_secrets: vec![Secret::new("another-apps-secret"), Secret::new(TEST_APP_SECRET)],
        verify_token: Secret::new(TEST_VERIFY_TOKEN),
    }
}

fn sample(name: &str) -> WebhookRequest {
    WebhookRequest::from_lambda(
        throughline_testkit::events::lambda_request(&format!("facebook/{name}")),
        None,
    )
}

fn accepted(name: &str) -> Accepted {
    accept(&sample(name), &config(), now()).unwrap_or_else(|r| panic!("{name}: {r:?}"))
}

fn with_body(body: &str) -> WebhookRequest {
    let mut req = sample("03-messenger-text.json");
    req.body = body.as_bytes().to_vec();
    req.headers.insert(
        SIGNATURE_HEADER,
        sign(TEST_APP_SECRET, body.as_bytes()).parse().unwrap(),
    );
    req
}

#[test]
fn published_vector() {
    assert_eq!(
        sign("TEST_APP_SECRET", b"test"),
        "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221"
    );
}

#[test]
fn handshake_answers_the_challenge_only_for_the_verify_token() {
    assert_eq!(
        handshake(&sample("01-handshake-ok.json"), &config()).unwrap(),
        "1158201444"
    );
    let rejection = handshake(&sample("02-handshake-bad-token.json"), &config()).unwrap_err();
    assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
    let mut no_mode = sample("01-handshake-ok.json");
    no_mode.url = no_mode.url.replace("hub.mode=subscribe", "hub.mode=unsubscribe");
    assert_eq!(
        handshake(&no_mode, &config()).unwrap_err().status(),
        StatusCode::FORBIDDEN
    );
}

#[test]
fn signatures_are_checked_over_the_raw_bytes_for_any_configured_app() {
    let forged = accept(&sample("19-bad-signature.json"), &config(), now()).unwrap_err();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let mut missing = sample("03-messenger-text.json");
    missing.headers.remove(SIGNATURE_HEADER);
    assert_eq!(
        accept(&missing, &config(), now()).unwrap_err().message(),
        "missing x-hub-signature-256 header"
    );
    let only_other_app = MetaConfig {
        app_secrets: vec![Secret::new("another-apps-secret")],
        ..config()
    };
    assert!(accept(&sample("03-messenger-text.json"), &only_other_app, now()).is_err());
    let mut get = sample("03-messenger-text.json");
    get.method = Method::PUT;
    assert_eq!(
        accept(&get, &config(), now()).unwrap_err().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[test]
fn a_body_with_escaped_unicode_verifies_and_decodes() {
    let req = sample("18-unicode-body.json");
    let raw = String::from_utf8(req.body.clone()).unwrap();
    assert!(
        raw.contains(r"\u00c7a") && raw.is_ascii(),
        "the sample keeps Meta's escaped form"
    );
    let accepted = accept(&req, &config(), now()).unwrap();
    assert_eq!(
        accepted.interactions[0].text.as_deref(),
        Some("Ça arrive quand ? 日本からです 📦 — merci !")
    );
    // Re-serializing (unescaped UTF-8) would change the bytes, hence the signature.
    let reserialized = serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&raw).unwrap()).unwrap();
    assert_ne!(
        sign(TEST_APP_SECRET, reserialized.as_bytes()),
        sign(TEST_APP_SECRET, raw.as_bytes())
    );
}

#[test]
fn messenger_messages_attachments_quick_replies_postbacks_replies_and_echoes() {
    let text = &accepted("03-messenger-text.json").interactions[0];
    assert_eq!(text.channel, Channel::Messenger);
    assert_eq!(text.provider, Provider::Meta);
    assert_eq!(text.direction, Direction::Inbound);
    assert_eq!(text.customer.key(), "messenger:1060000000000001:6010000000000042");
    assert_eq!(text.business_endpoint.key(), "messenger::1060000000000001");
    assert_eq!(text.provider_message_id.as_str(), "m_AdaMessenger001");
    assert_eq!(text.occurred_at.timestamp_millis(), 1795520001000);

    let media = &accepted("04-messenger-attachment.json").interactions[0];
    assert_eq!(media.text, None);
    assert_eq!(media.attachments.len(), 2);
    assert_eq!(media.attachments[0].content_type.as_deref(), Some("image/*"));
    assert_eq!(media.attachments[1].file_name.as_deref(), Some("invoice-1042.pdf"));
    assert!(matches!(&media.attachments[1].source, AttachmentSource::Url { url } if url.contains("invoice-1042.pdf")));

    let quick = &accepted("05-messenger-quick-reply.json").interactions[0];
    assert_eq!(quick.attributes["quick_reply_payload"], "REPLACE_ORDER_1042");

    let postback = &accepted("06-messenger-postback.json").interactions[0];
    assert_eq!(postback.text.as_deref(), Some("Track my order"));
    assert_eq!(postback.attributes["postback_payload"], "TRACK_ORDER");
    assert_eq!(postback.attributes["referral.ref"], "order-1042");

    let reply = &accepted("07-messenger-reply.json").interactions[0];
    assert_eq!(reply.thread.in_reply_to.as_deref(), Some("m_PageAnswer005"));

    let echo = &accepted("08-messenger-echo.json").interactions[0];
    assert_eq!(echo.direction, Direction::Outbound);
    assert_eq!(
        echo.customer, text.customer,
        "an echo belongs to the customer it was sent to"
    );

    let receipts = accepted("09-messenger-delivery-read.json");
    assert!(receipts.interactions.is_empty() && receipts.ignored.is_empty());
    // One watermark each, for the customer (the sender) on that page, whatever they cover.
    let marks: Vec<(String, DeliveryStatus, i64)> = receipts
        .watermarks
        .iter()
        .map(|w| (w.customer.key(), w.status, w.up_to.timestamp_millis()))
        .collect();
    assert_eq!(
        marks,
        [
            (text.customer.key(), DeliveryStatus::Delivered, 1795520005400),
            (text.customer.key(), DeliveryStatus::Read, 1795520005500),
        ]
    );
}

#[test]
fn an_instagram_read_receipt_names_its_message_and_a_bad_watermark_costs_only_itself() {
    let body = r#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1795520000000,"messaging":[
        {"sender":{"id":"9010000000000042"},"recipient":{"id":"17841400000000001"},"timestamp":1795520006000,"read":{"mid":"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx"}},
        {"sender":{"id":"9010000000000042"},"recipient":{"id":"17841400000000001"},"timestamp":1795520006000,"delivery":{"watermark":"soon"}}]}]}"#;
    let accepted = accept(&with_body(body), &config(), now()).unwrap();
    let [read] = accepted.statuses.as_slice() else {
        panic!("one status: {:?}", accepted.statuses)
    };
    let account = Handle::Platform {
        platform: throughline_model::Platform::Instagram,
        scope: None,
        id: throughline_model::PlatformUserId::parse("17841400000000001").unwrap(),
    };
    assert_eq!(
        read.interaction_id,
        InteractionId::derive(
            Provider::Meta,
            &account,
            &ProviderMessageId::parse("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx").unwrap()
        )
    );
    assert_eq!(read.event.status, DeliveryStatus::Read);
    assert!(accepted.watermarks.is_empty());
    assert_eq!(accepted.ignored, vec!["malformed_event"]);
}

#[test]
fn instagram_messages_and_deletes() {
    let message = &accepted("10-instagram-text.json").interactions[0];
    assert_eq!(message.channel, Channel::Instagram);
    assert_eq!(message.customer.key(), "instagram:17841400000000001:1784000000000777");
    let delete = accepted("11-instagram-delete.json");
    assert!(delete.interactions.is_empty());
    assert_eq!(delete.updates.len(), 1);
    assert_eq!(delete.updates[0].interaction_id, message.id);
    assert_eq!(delete.updates[0].change, Change::Deleted);
}

#[test]
fn whatsapp_text_media_location_interactive_and_statuses() {
    let text = &accepted("12-whatsapp-text.json").interactions[0];
    assert_eq!(text.channel, Channel::Whatsapp);
    assert_eq!(
        text.customer.key(),
        "phone:+14155550100",
        "the same handle as SMS from that number"
    );
    assert_eq!(text.business_endpoint.key(), "phone:+15550783881");
    assert_eq!(text.customer_display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(text.occurred_at.timestamp(), 1795520100);
    assert_eq!(text.attributes["phone_number_id"], "106540352242922");

    let image = &accepted("13-whatsapp-image-caption.json").interactions[0];
    assert_eq!(image.text.as_deref(), Some("The label on the box"));
    assert_eq!(
        image.attachments[0].source,
        AttachmentSource::ProviderFile {
            file_id: "1203948576611234".into()
        }
    );
    assert_eq!(image.attachments[0].content_type.as_deref(), Some("image/jpeg"));
    assert!(image.attributes.contains_key("media_sha256"));

    let location = &accepted("14-whatsapp-location.json").interactions[0];
    assert_eq!(
        location.text.as_deref(),
        Some("Location: Acme Pickup Point, 1 Market St, San Francisco (37.7749, -122.4194)")
    );

    let interactive = &accepted("15-whatsapp-interactive-reply.json").interactions[0];
    assert_eq!(interactive.text.as_deref(), Some("I'll pick it up"));
    assert_eq!(interactive.attributes["interactive_reply_id"], "pickup");
    assert!(interactive.thread.in_reply_to.as_deref().unwrap().starts_with("wamid."));

    let status = accepted("16-whatsapp-status.json");
    assert!(status.interactions.is_empty());
    assert_eq!(status.statuses.len(), 1);
    assert_eq!(status.statuses[0].event.status, DeliveryStatus::Read);
}

#[test]
fn every_whatsapp_status_of_a_batch_is_reported_with_its_time_and_failure() {
    let batch = accepted("20-whatsapp-status-batch.json");
    let business = Handle::Phone {
        number: E164::parse("+15550783881").unwrap(),
    };
    let id = |wamid: &str| InteractionId::derive(Provider::Meta, &business, &ProviderMessageId::parse(wamid).unwrap());
    let got: Vec<(InteractionId, DeliveryStatus, i64, Option<String>)> = batch
        .statuses
        .iter()
        .map(|r| {
            (
                r.interaction_id.clone(),
                r.event.status,
                r.event.at.timestamp(),
                r.event.error.as_ref().map(|e| e.code.clone()),
            )
        })
        .collect();
    let first = id("wamid.HBgLMTQxNTU1NTAxMDAVAgARGBJBQ01FT1VUMDAyAA==");
    assert_eq!(
        got,
        [
            (first.clone(), DeliveryStatus::Sent, 1795520100, None),
            (first, DeliveryStatus::Delivered, 1795520102, None),
            (
                id("wamid.HBgLMTQxNTU1NTAxMDAVAgARGBJBQ01FT1VUMDAzAA=="),
                DeliveryStatus::Read,
                1795520160,
                None
            ),
            (
                id("wamid.HBgLMTQxNTU1NTAxNzcVAgARGBJBQ01FT1VUMDA0AA=="),
                DeliveryStatus::Failed,
                1795520200,
                Some("131026".into())
            ),
        ]
    );
    assert!(
        batch.statuses[3]
            .event
            .error
            .as_ref()
            .unwrap()
            .reason
            .contains("could not deliver")
    );
    // `deleted` has no state in the status machine: acknowledged, not reported.
    assert_eq!(batch.ignored, vec!["status_other"]);
    assert!(batch.interactions.is_empty());
}

#[test]
fn a_whatsapp_status_that_does_not_parse_costs_only_itself() {
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"display_phone_number":"15550783881"},"statuses":[{"id":"wamid.A","status":"delivered"},{"id":"wamid.B","status":"read","timestamp":"1795520160"}]}}]}]}"#;
    let accepted = accept(&with_body(body), &config(), now()).unwrap();
    assert_eq!(accepted.statuses.len(), 1);
    assert_eq!(accepted.ignored, vec!["malformed_event"]);
}

#[test]
fn a_batch_of_50_across_three_entries_is_50_distinct_interactions() {
    let batch = accepted("17-batch-50-messages.json");
    assert_eq!(batch.interactions.len(), 50);
    let ids: HashSet<&InteractionId> = batch.interactions.iter().map(|i| &i.id).collect();
    assert_eq!(ids.len(), 50);
    let customers: HashSet<String> = batch.interactions.iter().map(|i| i.customer.key()).collect();
    assert_eq!(customers.len(), 5);
}

#[test]
fn only_a_body_that_is_not_a_notification_is_refused() {
    for (body, expected) in [
        ("<html>", "body is not a Meta webhook notification: expected value"),
        ("[]", "body is not a Meta webhook notification: invalid type or value"),
        (
            r#"{"object":"page"}"#,
            "body is not a Meta webhook notification: missing field `entry`",
        ),
        (
            r#"{"entry":[]}"#,
            "body is not a Meta webhook notification: missing field `object`",
        ),
        (
            r#"{"object":"page","entry":{}}"#,
            "body is not a Meta webhook notification: invalid type or value",
        ),
    ] {
        let rejection = accept(&with_body(body), &config(), now()).unwrap_err();
        assert_eq!(rejection.status(), StatusCode::BAD_REQUEST);
        assert!(rejection.message().starts_with(expected), "{}", rejection.message());
    }
    let unknown = accept(&with_body(r#"{"object":"user","entry":[]}"#), &config(), now()).unwrap();
    assert_eq!(unknown.ignored, vec!["unknown_object"]);
}

/// A Messenger event of customer 6010000000000042 to page 1060000000000001.
fn messenger_event(mid: &str, text: &str) -> serde_json::Value {
    serde_json::json!({"sender": {"id": "6010000000000042"}, "recipient": {"id": "1060000000000001"},
        "timestamp": 1795520001000_i64, "message": {"mid": mid, "text": text}})
}

#[test]
fn a_malformed_messenger_event_is_ignored_and_the_rest_of_the_delivery_accepted() {
    let mut events: Vec<serde_json::Value> = (0..1000).map(|i| messenger_event(&format!("m_{i}"), "hi")).collect();
    events[1] = serde_json::json!({"recipient": {"id": "1"}, "timestamp": 1, "message": {"mid": "m", "text": "x"}});
    events[2] = serde_json::json!({"sender": {"id": "2"}, "recipient": {"id": "1"}, "message": {"text": "no mid"}});
    events[3] =
        serde_json::json!({"sender": {"id": 2}, "recipient": {"id": "1"}, "message": {"mid": "m", "text": "x"}});
    events[4] = serde_json::json!("not an event");
    let body = serde_json::json!({"object": "page", "entry": [
        {"id": "1060000000000001", "messaging": events},
        {"id": 5, "messaging": [messenger_event("m_lost", "x")]},
        {"messaging": [messenger_event("m_lost_too", "x")]},
        {"id": "1060000000000001", "messaging": {"not": "a list"}},
        {"id": "1060000000000001", "standby": [messenger_event("m_standby", "x"), {"sender": {"id": ""}, "message": {"mid": "m"}}]},
    ]});
    let accepted = accept(&with_body(&body.to_string()), &config(), now()).unwrap();
    assert_eq!(accepted.interactions.len(), 996 + 1);
    assert_eq!(accepted.ignored, vec!["malformed_event"; 4 + 3 + 1]);
    assert!(
        accepted
            .interactions
            .iter()
            .all(|i| i.provider_message_id.as_str() != "m_lost")
    );
}

#[test]
fn a_malformed_whatsapp_change_or_message_is_ignored_and_the_rest_accepted() {
    let message = |id: &str, kind: &str| {
        serde_json::json!({"from": "14155550100", "id": id, "type": kind,
        "text": {"body": "hello"}})
    };
    let value = |number: Option<&str>, messages: Vec<serde_json::Value>| {
        let metadata = match number {
            Some(n) => serde_json::json!({"display_phone_number": n, "phone_number_id": "1065"}),
            None => serde_json::json!({"phone_number_id": "1065"}),
        };
        serde_json::json!({"field": "messages", "value": {"metadata": metadata,
            "contacts": [{"wa_id": 14155550100_i64}, {"wa_id": "14155550100", "profile": {"name": "Ada"}}],
            "messages": messages}})
    };
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [
        {"changes": [
            value(None, vec![message("wamid.lost", "text")]),
            value(Some("1555"), vec![message("wamid.lost2", "text")]),
            value(Some("15550783881"), vec![
                message("wamid.1", "text"),
                message("wamid.image", "image"),
                serde_json::json!({"from": "14155550100", "id": "wamid.noid", "type": "image", "image": {"mime_type": "image/jpeg"}}),
                serde_json::json!({"id": "wamid.nofrom", "type": "text"}),
                message("wamid.2", "text"),
            ]),
            "not a change",
        ]},
        {"changes": "not a list"},
    ]});
    let accepted = accept(&with_body(&body.to_string()), &config(), now()).unwrap();
    let ids: Vec<&str> = accepted
        .interactions
        .iter()
        .map(|i| i.provider_message_id.as_str())
        .collect();
    assert_eq!(ids, vec!["wamid.1", "wamid.2"]);
    assert_eq!(accepted.interactions[0].customer_display_name.as_deref(), Some("Ada"));
    assert_eq!(accepted.ignored, vec!["malformed_event"; 2 + 3 + 1 + 1]);
}

#[test]
fn a_lone_surrogate_escape_costs_only_the_character() {
    // A UTF-16 surrogate without its other half: serde_json refuses such a document as a whole.
    let body = r#"{"object":"page","entry":[{"id":"1060000000000001","messaging":[{"sender":{"id":"6010000000000042"},"recipient":{"id":"1060000000000001"},"timestamp":1795520001000,"message":{"mid":"m_cut","text":"cut \ud83d here \udce6"}}]}]}"#;
    assert!(serde_json::from_str::<serde_json::Value>(body).is_err());
    let accepted = accept(&with_body(body), &config(), now()).unwrap();
    assert_eq!(
        accepted.interactions[0].text.as_deref(),
        Some("cut \u{FFFD} here \u{FFFD}")
    );
    // The signature is still checked over the bytes as sent.
    let mut tampered = with_body(body);
    tampered.body = body.replace(r"\ud83d", r"\uFFFD").into_bytes();
    assert_eq!(
        accept(&tampered, &config(), now()).unwrap_err().status(),
        StatusCode::FORBIDDEN
    );
}

proptest! {
    #[test]
    fn no_signed_body_makes_it_panic(body in "\\PC{0,400}") {
        let _ = accept(&with_body(&body), &config(), now());
    }

    #[test]
    fn no_json_shaped_notification_makes_it_panic(
        object in prop_oneof!["page", "instagram", "whatsapp_business_account"],
        entry in meta_shaped_json(),
    ) {
        let body = serde_json::json!({ "object": object, "entry": [entry] }).to_string();
        let _ = accept(&with_body(&body), &config(), now());
    }
}

/// JSON built from the field names Meta uses, so that generated bodies reach deep into the
/// normalization code instead of stopping at the parser.
fn meta_shaped_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9+ ]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        let key = prop_oneof![
            "id",
            "messaging",
            "standby",
            "sender",
            "recipient",
            "timestamp",
            "message",
            "mid",
            "text",
            "is_echo",
            "is_deleted",
            "attachments",
            "type",
            "payload",
            "url",
            "postback",
            "changes",
            "field",
            "value",
            "metadata",
            "display_phone_number",
            "messages",
            "from",
            "contacts",
            "statuses",
            "image",
            "location",
            "interactive",
            "button_reply",
            "reaction",
            "context",
            "referral",
            "delivery",
            "read",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key.prop_map(String::from), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
