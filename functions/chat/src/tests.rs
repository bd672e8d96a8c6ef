use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lambda_http::http::{HeaderMap, HeaderName, Method, StatusCode};
use proptest::prelude::*;
use serde_json::json;
use throughline_edge::ErrorCode;
use throughline_edge::{Rejection, Secret, WebhookRequest};
use throughline_model::{
    AttachmentSource, Change, Channel, Direction, E164, EmailAddress, Evidence, EvidenceSource, Handle, InteractionId,
    Platform, PlatformUserId, Provider, ProviderMessageId, SenderCheck,
};

use crate::widget::{self, IdentityClaims, TokenProblem, mint_identity_token, verify_identity_token};
use crate::{ChatConfig, accept};

const SITE: &str = "acme-web";
const OLD_SECRET: &str = "old-webhook-secret";
const NEW_SECRET: &str = "new-webhook-secret";
const IDENTITY_SECRET: &str = "identity-secret";
const BOT: &str = "acme_support_bot";
const BOT_TOKEN: &str = "telegram-secret-token";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn config() -> ChatConfig {
    let document = json!({
        "sites": { SITE: { "webhook_secrets": [OLD_SECRET, NEW_SECRET], "identity_secrets": [IDENTITY_SECRET] } },
        "telegram_bots": { BOT: BOT_TOKEN }
    });
    ChatConfig::from_secrets(&Secret::new(document.to_string()), TimeDelta::seconds(300)).unwrap()
}

fn request(path: &str, headers: &[(&str, String)], body: &[u8]) -> WebhookRequest {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    WebhookRequest {
        method: Method::POST,
        headers: map,
        url: format!("https://chat.throughline.example{path}"),
        body: body.to_vec(),
    }
}

fn widget_request(body: &serde_json::Value, secret: &str, at: DateTime<Utc>) -> WebhookRequest {
    let body = body.to_string();
    let timestamp = at.timestamp().to_string();
    request(
        "/widget",
        &[
            ("content-type", "application/json".into()),
            (widget::SITE_HEADER, SITE.into()),
            (widget::TIMESTAMP_HEADER, timestamp.clone()),
            (
                widget::SIGNATURE_HEADER,
                widget::sign(secret, &timestamp, body.as_bytes()),
            ),
        ],
        body.as_bytes(),
    )
}

fn message(id: &str) -> serde_json::Value {
    json!({
        "message_id": id,
        "visitor_id": "v-7f3a",
        "sent_at": "2026-11-24T11:59:30Z",
        "text": "Is the blue one back in stock?",
        "page_url": "https://shop.example.com/p/blue",
        "custom_attributes": { "plan": "pro", "cart_value": 42.5 }
    })
}

fn claims(exp: i64) -> IdentityClaims {
    IdentityClaims {
        sub: "user-42".into(),
        email: Some("Ada@Example.com".into()),
        phone: Some("+14155550100".into()),
        name: Some("Ada Lovelace".into()),
        exp,
        nbf: None,
        iat: None,
    }
}

/// The lifetime limit the test sites have (the default).
fn max_lifetime() -> TimeDelta {
    TimeDelta::seconds(crate::DEFAULT_IDENTITY_TOKEN_MAX_LIFETIME_SECONDS)
}

/// The one interaction a validly signed delivery of `message` becomes.
fn accept_one(message: serde_json::Value) -> throughline_model::Interaction {
    let body = json!({ "messages": [message] });
    let mut accepted = accept(&widget_request(&body, OLD_SECRET, now()), &config(), now()).unwrap();
    assert_eq!(accepted.interactions.len(), 1);
    accepted.interactions.remove(0)
}

fn status(result: Result<throughline_edge::Accepted, Rejection>) -> StatusCode {
    result.unwrap_err().status()
}

#[test]
fn a_signed_widget_message_becomes_an_anonymous_visitors_interaction() {
    let accepted = accept(
        &widget_request(&json!({ "messages": [message("m-1")] }), OLD_SECRET, now()),
        &config(),
        now(),
    )
    .unwrap();
    let [interaction] = accepted.interactions.as_slice() else {
        panic!("one interaction")
    };
    assert_eq!(interaction.channel, Channel::Chat);
    assert_eq!(interaction.provider, Provider::WebChat);
    assert_eq!(interaction.direction, Direction::Inbound);
    assert_eq!(interaction.customer.key(), "web_chat_visitor:acme-web:v-7f3a");
    assert_eq!(interaction.business_endpoint.key(), "web_chat::acme-web");
    assert_eq!(interaction.text.as_deref(), Some("Is the blue one back in stock?"));
    assert_eq!(interaction.occurred_at.to_rfc3339(), "2026-11-24T11:59:30+00:00");
    assert_eq!(interaction.sender_check, Some(SenderCheck::Anonymous));
    assert_eq!(interaction.attributes["identity"], "anonymous");
    assert_eq!(interaction.attributes["page_url"], "https://shop.example.com/p/blue");
    assert_eq!(interaction.attributes["custom.plan"], "pro");
    assert_eq!(interaction.attributes["custom.cart_value"], "42.5");
    assert!(interaction.identities.is_empty());
    assert_eq!(
        interaction.id,
        InteractionId::derive(
            Provider::WebChat,
            &interaction.business_endpoint,
            &ProviderMessageId::parse("m-1").unwrap()
        )
    );
}

#[test]
fn either_active_secret_signs_during_a_rotation() {
    let body = json!({ "messages": [message("m-1")] });
    assert!(accept(&widget_request(&body, NEW_SECRET, now()), &config(), now()).is_ok());
    assert_eq!(
        status(accept(
            &widget_request(&body, "retired-secret", now()),
            &config(),
            now()
        )),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn stale_or_future_timestamps_and_tampering_are_unauthorized() {
    let body = json!({ "messages": [message("m-1")] });
    let config = config();
    for at in [now() - TimeDelta::seconds(301), now() + TimeDelta::seconds(301)] {
        let rejection = accept(&widget_request(&body, OLD_SECRET, at), &config, now()).unwrap_err();
        assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            rejection.message(),
            "x-throughline-timestamp is outside the allowed window"
        );
    }
    assert!(
        accept(
            &widget_request(&body, OLD_SECRET, now() - TimeDelta::seconds(299)),
            &config,
            now()
        )
        .is_ok()
    );

    let mut tampered = widget_request(&body, OLD_SECRET, now());
    tampered.body = tampered
        .body
        .iter()
        .map(|b| if *b == b'1' { b'2' } else { *b })
        .collect();
    assert_eq!(status(accept(&tampered, &config, now())), StatusCode::UNAUTHORIZED);

    let mut other_site = widget_request(&body, OLD_SECRET, now());
    other_site
        .headers
        .insert(widget::SITE_HEADER, "elsewhere".parse().unwrap());
    assert_eq!(
        accept(&other_site, &config, now()).unwrap_err().message(),
        "unknown site"
    );

    // The timestamp is signed: moving it voids the signature.
    let mut moved = widget_request(&body, OLD_SECRET, now());
    moved.headers.insert(
        widget::TIMESTAMP_HEADER,
        (now().timestamp() + 1).to_string().parse().unwrap(),
    );
    assert_eq!(status(accept(&moved, &config, now())), StatusCode::UNAUTHORIZED);
}

#[test]
fn a_verified_identity_token_makes_the_user_id_the_handle_and_its_identifiers_verified() {
    let token = mint_identity_token(IDENTITY_SECRET, &claims(now().timestamp() + 600));
    let mut m = message("m-2");
    m["identity_token"] = token.into();
    m["prechat"] = json!({ "email": "someone.else@example.com", "name": "Typed Name" });
    let interaction = &accept_one(m);
    assert_eq!(interaction.customer.key(), "web_chat_user:acme-web:user-42");
    assert_eq!(interaction.sender_check, Some(SenderCheck::Verified));
    assert_eq!(interaction.attributes["identity"], "verified");
    assert_eq!(interaction.attributes["visitor_id"], "v-7f3a");
    assert_eq!(interaction.customer_display_name.as_deref(), Some("Ada Lovelace"));
    let summary: Vec<(String, Evidence, EvidenceSource)> = interaction
        .identities
        .iter()
        .map(|i| (i.handle.key(), i.evidence, i.source))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "email:ada@example.com".into(),
                Evidence::Verified,
                EvidenceSource::CompanyIdentityToken
            ),
            (
                "phone:+14155550100".into(),
                Evidence::Verified,
                EvidenceSource::CompanyIdentityToken
            ),
            (
                "email:someone.else@example.com".into(),
                Evidence::Claimed,
                EvidenceSource::PrechatForm
            ),
        ]
    );
}

#[test]
fn a_prechat_email_without_a_token_is_only_a_claim() {
    let mut m = message("m-3");
    m["prechat"] = json!({ "email": "ada@example.com", "phone": "not a number", "name": "Ada" });
    let interaction = &accept_one(m);
    assert_eq!(interaction.customer.key(), "web_chat_visitor:acme-web:v-7f3a");
    assert_eq!(interaction.identities.len(), 1, "the invalid phone is dropped");
    assert_eq!(interaction.identities[0].evidence, Evidence::Claimed);
    assert_eq!(
        interaction.identities[0].handle,
        Handle::Email {
            address: EmailAddress::parse("ada@example.com").unwrap()
        }
    );
    assert_eq!(interaction.customer_display_name.as_deref(), Some("Ada"));
}

#[test]
fn identity_tokens_that_do_not_verify_leave_an_anonymous_visitor() {
    let secrets = [Secret::new(IDENTITY_SECRET)];
    let valid = mint_identity_token(IDENTITY_SECRET, &claims(now().timestamp() + 600));
    let visitor = verify_identity_token(&valid, &secrets, max_lifetime(), now()).unwrap();
    assert_eq!(visitor.phone, Some(E164::parse("+14155550100").unwrap()));

    let expired = mint_identity_token(IDENTITY_SECRET, &claims(now().timestamp() - 61));
    let forged = mint_identity_token("not-the-secret", &claims(now().timestamp() + 600));
    let (header_payload, _) = valid.rsplit_once('.').unwrap();
    let payload = header_payload.split('.').nth(1).unwrap();
    // alg "none" with the signature stripped: the classic JWT downgrade.
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let mut bad_phone = claims(now().timestamp() + 600);
    bad_phone.phone = Some("0155".into());
    let bad_phone = mint_identity_token(IDENTITY_SECRET, &bad_phone);
    for (token, problem) in [
        (expired.as_str(), TokenProblem::Expired),
        (forged.as_str(), TokenProblem::BadSignature),
        (none.as_str(), TokenProblem::UnsupportedAlgorithm),
        (bad_phone.as_str(), TokenProblem::InvalidClaims),
        ("a.b", TokenProblem::Malformed),
        ("!!.??.**", TokenProblem::Malformed),
    ] {
        assert_eq!(
            verify_identity_token(token, &secrets, max_lifetime(), now()),
            Err(problem),
            "{token}"
        );
    }

    let mut m = message("m-4");
    m["identity_token"] = expired.into();
    let interaction = &accept_one(m);
    assert_eq!(interaction.customer.key(), "web_chat_visitor:acme-web:v-7f3a");
    assert_eq!(interaction.sender_check, Some(SenderCheck::TokenExpired));
    assert_eq!(interaction.attributes["identity"], "identity_token_expired");
    assert!(interaction.identities.is_empty());
}

#[test]
fn a_batch_is_one_interaction_per_message_and_agents_are_outbound() {
    let mut agent = message("m-6");
    agent["author"] = "agent".into();
    agent["conversation_id"] = "conv-9".into();
    agent["attachments"] = json!([{ "url": "https://cdn.example.com/a.pdf", "content_type": "application/pdf", "name": "a.pdf", "size": 1200 }]);
    let body = json!({ "messages": [message("m-5"), agent] });
    let accepted = accept(&widget_request(&body, OLD_SECRET, now()), &config(), now()).unwrap();
    assert_eq!(accepted.interactions.len(), 2);
    assert_ne!(accepted.interactions[0].id, accepted.interactions[1].id);
    let answer = &accepted.interactions[1];
    assert_eq!(answer.direction, Direction::Outbound);
    assert_eq!(answer.thread.provider_thread_id.as_deref(), Some("conv-9"));
    assert_eq!(answer.attachments[0].size_bytes, Some(1200));
    assert_eq!(answer.attachments[0].file_name.as_deref(), Some("a.pdf"));
}

#[test]
fn statuses_of_replies_name_the_reply_by_the_id_it_was_sent_under() {
    let body = json!({ "statuses": [
        { "message_id": "bk-42", "status": "delivered", "at": "2026-11-24T10:00:01Z" },
        { "message_id": "bk-42", "status": "read", "at": "2026-11-24T10:00:09Z" },
        { "message_id": "bk-43", "status": "typing", "at": "2026-11-24T10:00:09Z" }
    ] });
    let accepted = accept(&widget_request(&body, OLD_SECRET, now()), &config(), now()).unwrap();
    assert!(accepted.interactions.is_empty());
    let site = Handle::Platform {
        platform: throughline_model::Platform::WebChat,
        scope: None,
        id: throughline_model::PlatformUserId::parse("acme-web").unwrap(),
    };
    let reply = InteractionId::derive(
        Provider::WebChat,
        &site,
        &throughline_model::ProviderMessageId::parse("bk-42").unwrap(),
    );
    let got: Vec<_> = accepted
        .statuses
        .iter()
        .map(|r| (r.interaction_id.clone(), r.event.status, r.event.at.to_rfc3339()))
        .collect();
    assert_eq!(
        got,
        [
            (
                reply.clone(),
                throughline_model::DeliveryStatus::Delivered,
                "2026-11-24T10:00:01+00:00".to_owned()
            ),
            (
                reply,
                throughline_model::DeliveryStatus::Read,
                "2026-11-24T10:00:09+00:00".to_owned()
            ),
        ]
    );
    // An unknown status is that event's problem only.
    assert_eq!(accepted.ignored, vec!["malformed_event"]);
}

#[test]
fn a_rating_from_the_widgets_control_is_feedback_from_the_visitor() {
    let rating = |id: &str, value: serde_json::Value| {
        json!({ "rating_id": id, "visitor_id": "v-7f3a", "survey_id": "sv_0a1b2c", "rating": value,
                "remark": "  Very helpful ", "sent_at": "2026-11-24T11:59:58Z" })
    };
    let mut no_remark = rating("r-2", json!(5));
    no_remark.as_object_mut().unwrap().remove("remark");
    let mut other_survey = rating("r-5", json!(3));
    other_survey["survey_id"] = "ada@example.com".into();
    let body = json!({ "ratings": [
        rating("r-1", json!(4)), no_remark, rating("r-3", json!(6)), rating("r-4", json!("four")), other_survey
    ] });
    let accepted = accept(&widget_request(&body, NEW_SECRET, now()), &config(), now()).unwrap();
    assert_eq!(accepted.interactions.len(), 2, "{:?}", accepted.ignored);
    assert_eq!(
        accepted.ignored,
        vec!["malformed_event"; 3],
        "a bad rating is its own problem"
    );
    let answer = &accepted.interactions[0];
    assert_eq!(answer.kind, throughline_model::InteractionKind::Feedback);
    assert_eq!(answer.direction, Direction::Inbound);
    assert_eq!(answer.customer.key(), "web_chat_visitor:acme-web:v-7f3a");
    let feedback = answer.feedback.as_ref().unwrap();
    assert_eq!(
        (feedback.survey_id.as_str(), feedback.rating, feedback.remark.as_deref()),
        ("sv_0a1b2c", Some(4), Some("Very helpful"))
    );
    assert_eq!(answer.attributes["via"], "chat_rating");
    let plain = accepted.interactions[1].feedback.as_ref().unwrap();
    assert_eq!((plain.rating, plain.remark.as_deref()), (Some(5), None));
    // A retried delivery is the same interaction.
    let again = accept(&widget_request(&body, NEW_SECRET, now()), &config(), now()).unwrap();
    assert_eq!(again.interactions[0].id, answer.id);
}

#[test]
fn a_body_that_is_not_a_delivery_is_400() {
    let config = config();
    let too_many: Vec<_> = (0..101).map(|i| message(&format!("m-{i}"))).collect();
    for (body, expected) in [
        (
            json!({ "messages": [] }),
            "messages, statuses and ratings must hold 1 to 100 events in all",
        ),
        (
            json!({ "messages": too_many }),
            "messages, statuses and ratings must hold 1 to 100 events in all",
        ),
        (
            json!({ "message": {} }),
            "messages, statuses and ratings must hold 1 to 100 events in all",
        ),
        (json!({ "messages": "hi" }), "body is not a chat delivery: "),
        (json!(["not", "an", "object"]), "body is not a chat delivery: "),
    ] {
        let rejection = accept(&widget_request(&body, OLD_SECRET, now()), &config, now()).unwrap_err();
        assert_eq!(rejection.status(), StatusCode::BAD_REQUEST);
        assert!(rejection.message().starts_with(expected), "{}", rejection.message());
    }
    let mut not_json = widget_request(&json!({}), OLD_SECRET, now());
    not_json.body = b"messages=1".to_vec();
    let timestamp = now().timestamp().to_string();
    not_json.headers.insert(
        widget::SIGNATURE_HEADER,
        widget::sign(OLD_SECRET, &timestamp, &not_json.body).parse().unwrap(),
    );
    assert_eq!(status(accept(&not_json, &config, now())), StatusCode::BAD_REQUEST);
}

/// The delivery's verdict: the ids of the messages accepted, and the reasons of those skipped.
fn verdict(messages: Vec<serde_json::Value>) -> (Vec<String>, Vec<&'static str>) {
    let body = json!({ "messages": messages });
    let accepted = accept(&widget_request(&body, OLD_SECRET, now()), &config(), now()).unwrap();
    let ids = accepted
        .interactions
        .iter()
        .map(|i| i.provider_message_id.to_string())
        .collect();
    (ids, accepted.ignored)
}

/// Regression: one bad message made the whole delivery a 400, losing the good ones with it.
#[test]
fn one_malformed_message_is_skipped_and_the_others_accepted() {
    let mut no_visitor = message("m-7");
    no_visitor.as_object_mut().unwrap().remove("visitor_id");
    let mut bad_time = message("m-8");
    bad_time["sent_at"] = "yesterday".into();
    let mut bad_id = message("");
    bad_id["message_id"] = "".into();
    let mut empty_url = message("m-9");
    empty_url["attachments"] = json!([{ "url": " " }]);
    let mut bad_author = message("m-10");
    bad_author["author"] = "robot".into();
    let (ids, ignored) = verdict(vec![
        message("ok-1"),
        no_visitor,
        bad_time,
        json!("not a message"),
        bad_id,
        empty_url,
        bad_author,
        message("ok-2"),
    ]);
    assert_eq!(ids, vec!["ok-1", "ok-2"]);
    assert_eq!(ignored, vec!["malformed_event"; 6]);

    // Every message malformed: still acknowledged, nothing to queue.
    let (ids, ignored) = verdict(vec![json!(42)]);
    assert!(ids.is_empty());
    assert_eq!(ignored, vec!["malformed_event"]);
}

/// Regression: nothing bounded a message's text, attributes or attachments.
#[test]
fn a_message_over_a_cap_is_malformed() {
    use widget::{MAX_ATTACHMENTS, MAX_CUSTOM_ATTRIBUTES, MAX_CUSTOM_ATTRIBUTES_BYTES};
    let with = |id: &str, field: &str, value: serde_json::Value| {
        let mut m = message(id);
        m[field] = value;
        m
    };
    let attachments = |n: usize| {
        json!(
            (0..n)
                .map(|i| json!({ "url": format!("https://cdn.example.com/{i}") }))
                .collect::<Vec<_>>()
        )
    };
    let attributes = |n: usize, size: usize| {
        json!(
            (0..n)
                .map(|i| (format!("a{i:02}"), json!("x".repeat(size))))
                .collect::<serde_json::Map<_, _>>()
        )
    };
    let max_text = "é".repeat(crate::text::MAX_TEXT_BYTES / 2);
    // Each pair: at the cap (accepted), then one past it (skipped).
    let (ids, ignored) = verdict(vec![
        with("text-ok", "text", max_text.clone().into()),
        with("text-long", "text", format!("{max_text}!").into()),
        with("att-ok", "attachments", attachments(MAX_ATTACHMENTS)),
        with("att-many", "attachments", attachments(MAX_ATTACHMENTS + 1)),
        with("attr-ok", "custom_attributes", attributes(MAX_CUSTOM_ATTRIBUTES, 1)),
        with(
            "attr-many",
            "custom_attributes",
            attributes(MAX_CUSTOM_ATTRIBUTES + 1, 1),
        ),
        // 3-byte names: exactly the byte cap, then one byte over it.
        with(
            "attr-size-ok",
            "custom_attributes",
            attributes(2, MAX_CUSTOM_ATTRIBUTES_BYTES / 2 - 3),
        ),
        with(
            "attr-big",
            "custom_attributes",
            attributes(2, MAX_CUSTOM_ATTRIBUTES_BYTES / 2 - 2),
        ),
        with(
            "huge-url",
            "attachments",
            json!([{ "url": format!("https://cdn.example.com/{}", "x".repeat(widget::MAX_FIELD_BYTES)) }]),
        ),
    ]);
    assert_eq!(ids, vec!["text-ok", "att-ok", "attr-ok", "attr-size-ok"]);
    assert_eq!(ignored, vec!["malformed_event"; 5]);
}

/// Regression: Unicode noncharacters went into the timeline as they came.
#[test]
fn noncharacters_are_stripped_from_text() {
    let mut m = message("m-11");
    m["text"] = "Where\u{FDD0} is my\u{FFFE} order?\u{10FFFF}".into();
    assert_eq!(accept_one(m).text.as_deref(), Some("Where is my order?"));
    let mut only = message("m-12");
    only["text"] = "\u{FFFF}".into();
    assert_eq!(accept_one(only).text, None);
}

/// Regression: a sender's clock (or bug) placed messages anywhere in time.
#[test]
fn a_sent_at_outside_the_timestamp_window_is_clamped_and_the_claim_kept() {
    for (sent_at, occurred_at) in [
        ("2020-01-01T00:00:00Z", now() - TimeDelta::seconds(300)),
        ("2099-12-31T23:59:59.250Z", now() + TimeDelta::seconds(300)),
    ] {
        let mut m = message("m-13");
        m["sent_at"] = sent_at.into();
        let interaction = accept_one(m);
        assert_eq!(interaction.occurred_at, occurred_at, "{sent_at}");
        assert_eq!(interaction.attributes["claimed_sent_at"], sent_at);
    }
    // Within the window: as sent, with no claim recorded.
    for at in [now() - TimeDelta::seconds(300), now() + TimeDelta::seconds(300)] {
        let mut m = message("m-14");
        m["sent_at"] = at.to_rfc3339().into();
        let interaction = accept_one(m);
        assert_eq!(interaction.occurred_at, at);
        assert!(!interaction.attributes.contains_key("claimed_sent_at"));
    }
}

fn telegram_request(update: &serde_json::Value, secret: &str) -> WebhookRequest {
    request(
        &format!("/telegram/{BOT}"),
        &[
            ("content-type", "application/json".into()),
            (crate::telegram::SECRET_HEADER, secret.into()),
        ],
        update.to_string().as_bytes(),
    )
}

fn telegram_message(message_id: i64) -> serde_json::Value {
    json!({
        "message_id": message_id,
        "from": { "id": 777000123, "is_bot": false, "first_name": "Ada", "last_name": "Lovelace", "username": "ada_l", "language_code": "en" },
        "chat": { "id": 777000123, "type": "private", "first_name": "Ada" },
        "date": 1795521600,
        "text": "Hello from Telegram"
    })
}

#[test]
fn telegram_text_photo_and_reply() {
    let config = config();
    let text = accept(
        &telegram_request(&json!({ "update_id": 1, "message": telegram_message(10) }), BOT_TOKEN),
        &config,
        now(),
    )
    .unwrap();
    let interaction = &text.interactions[0];
    assert_eq!(interaction.channel, Channel::Telegram);
    assert_eq!(interaction.customer.key(), "telegram::777000123");
    assert_eq!(interaction.business_endpoint.key(), "telegram::acme_support_bot");
    assert_eq!(interaction.provider_message_id.as_str(), "777000123:10");
    assert_eq!(interaction.customer_display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(interaction.attributes["username"], "ada_l");
    assert_eq!(interaction.occurred_at.timestamp(), 1795521600);

    let mut photo = telegram_message(11);
    photo.as_object_mut().unwrap().remove("text");
    photo["caption"] = "The box arrived like this".into();
    photo["photo"] = json!([
        { "file_id": "small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 1000 },
        { "file_id": "large", "file_unique_id": "l", "width": 1280, "height": 1280, "file_size": 90000 }
    ]);
    photo["reply_to_message"] = telegram_message(10);
    let accepted = accept(
        &telegram_request(&json!({ "update_id": 2, "message": photo }), BOT_TOKEN),
        &config,
        now(),
    )
    .unwrap();
    let interaction = &accepted.interactions[0];
    assert_eq!(interaction.text.as_deref(), Some("The box arrived like this"));
    assert_eq!(interaction.attachments.len(), 1);
    assert_eq!(
        interaction.attachments[0].source,
        AttachmentSource::ProviderFile {
            file_id: "large".into()
        }
    );
    assert_eq!(interaction.attachments[0].size_bytes, Some(90000));
    assert_eq!(interaction.thread.in_reply_to.as_deref(), Some("777000123:10"));
    assert_eq!(interaction.thread.provider_thread_id.as_deref(), Some("chat:777000123"));
}

#[test]
fn a_telegram_edit_is_an_update_of_the_earlier_interaction() {
    let config = config();
    let original = accept(
        &telegram_request(&json!({ "update_id": 1, "message": telegram_message(10) }), BOT_TOKEN),
        &config,
        now(),
    )
    .unwrap();
    let mut edited = telegram_message(10);
    edited["text"] = "Hello from Telegram (edited)".into();
    edited["edit_date"] = 1795521660.into();
    let accepted = accept(
        &telegram_request(&json!({ "update_id": 3, "edited_message": edited }), BOT_TOKEN),
        &config,
        now(),
    )
    .unwrap();
    assert!(accepted.interactions.is_empty());
    let [update] = accepted.updates.as_slice() else {
        panic!("one update")
    };
    assert_eq!(update.interaction_id, original.interactions[0].id);
    assert_eq!(
        update.change,
        Change::Edited {
            text: Some("Hello from Telegram (edited)".into())
        }
    );
    assert_eq!(update.at.timestamp(), 1795521660);
}

#[test]
fn telegram_updates_it_does_not_record_are_acknowledged_and_counted() {
    let config = config();
    let mut bot = telegram_message(12);
    bot["from"]["is_bot"] = true.into();
    let mut location = telegram_message(13);
    location.as_object_mut().unwrap().remove("text");
    location["location"] = json!({ "latitude": 51.5, "longitude": -0.1 });
    for (update, reason) in [
        (
            json!({ "update_id": 4, "callback_query": { "id": "1" } }),
            "callback_query",
        ),
        (json!({ "update_id": 5, "my_chat_member": {} }), "chat_membership"),
        (json!({ "update_id": 6, "poll": {} }), "other_update"),
        (json!({ "update_id": 7, "message": bot }), "bot_message"),
        (json!({ "update_id": 8, "message": location }), "unsupported_message"),
    ] {
        let accepted = accept(&telegram_request(&update, BOT_TOKEN), &config, now()).unwrap();
        assert_eq!(accepted.ignored, vec![reason]);
        assert!(accepted.interactions.is_empty() && accepted.updates.is_empty());
    }
}

#[test]
fn telegram_secret_and_shape_are_checked() {
    let config = config();
    let update = json!({ "update_id": 1, "message": telegram_message(10) });
    assert_eq!(
        status(accept(&telegram_request(&update, "wrong"), &config, now())),
        StatusCode::UNAUTHORIZED
    );
    let mut missing = telegram_request(&update, BOT_TOKEN);
    missing.headers.remove(crate::telegram::SECRET_HEADER);
    assert_eq!(status(accept(&missing, &config, now())), StatusCode::UNAUTHORIZED);
    let mut unknown_bot = telegram_request(&update, BOT_TOKEN);
    unknown_bot.url = "https://chat.throughline.example/telegram/other_bot".into();
    assert_eq!(status(accept(&unknown_bot, &config, now())), StatusCode::UNAUTHORIZED);

    let rejection = accept(&telegram_request(&json!({ "message": {} }), BOT_TOKEN), &config, now()).unwrap_err();
    assert_eq!(rejection.message(), "update_id is missing or not an integer");
}

/// Regression: a verified update whose message could not be read was a 400, which Telegram
/// retries with the same bytes.
#[test]
fn a_telegram_message_that_cannot_be_read_is_a_malformed_event() {
    let config = config();
    let mut no_chat = telegram_message(10);
    no_chat.as_object_mut().unwrap().remove("chat");
    let mut long_text = telegram_message(11);
    long_text["text"] = "x".repeat(crate::text::MAX_TEXT_BYTES + 1).into();
    let mut long_edit = telegram_message(12);
    long_edit["caption"] = "x".repeat(crate::text::MAX_TEXT_BYTES + 1).into();
    long_edit.as_object_mut().unwrap().remove("text");
    for update in [
        json!({ "update_id": 1, "message": no_chat }),
        json!({ "update_id": 2, "message": "hi" }),
        json!({ "update_id": 3, "message": long_text }),
        json!({ "update_id": 4, "edited_message": { "message_id": "x" } }),
        json!({ "update_id": 5, "edited_message": long_edit }),
    ] {
        let accepted = accept(&telegram_request(&update, BOT_TOKEN), &config, now()).unwrap();
        assert_eq!(accepted.ignored, vec!["malformed_event"], "{}", update["update_id"]);
        assert!(accepted.interactions.is_empty() && accepted.updates.is_empty());
    }
    let mut noncharacters = telegram_message(13);
    noncharacters["text"] = "Hi\u{FDD0}!".into();
    let accepted = accept(
        &telegram_request(&json!({ "update_id": 6, "message": noncharacters }), BOT_TOKEN),
        &config,
        now(),
    )
    .unwrap();
    assert_eq!(accepted.interactions[0].text.as_deref(), Some("Hi!"));
}

/// Regression: an empty token was accepted, and matched a request with an empty header.
#[test]
fn a_telegram_secret_token_telegram_would_refuse_is_a_configuration_error() {
    for token in ["", "has space", "ünïcode", "semi;colon", &"x".repeat(257)] {
        let document = json!({ "telegram_bots": { BOT: token } });
        let err =
            invalid(ChatConfig::from_secrets(&Secret::new(document.to_string()), TimeDelta::seconds(300)).unwrap_err());
        assert_eq!(
            err,
            "CHAT_SECRETS telegram bot acme_support_bot: the secret token must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -"
        );
    }
    for token in ["a", "A-z_09", &"x".repeat(256)] {
        let document = json!({ "telegram_bots": { BOT: token } });
        assert!(ChatConfig::from_secrets(&Secret::new(document.to_string()), TimeDelta::seconds(300)).is_ok());
    }
}

/// An HS256 token with any header, signed with the identity secret.
fn token_with_header(header: &serde_json::Value, claims: &IdentityClaims) -> String {
    use base64::Engine as _;
    use throughline_edge::signature::{self, Algorithm, Encoding};
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(&serde_json::to_vec(claims).unwrap())
    );
    let mac = signature::hmac(Algorithm::HmacSha256, IDENTITY_SECRET.as_bytes(), &[input.as_bytes()]);
    format!("{input}.{}", signature::encode(Encoding::Base64Url, &mac))
}

/// Regression: tokens not yet valid, issued in the future, valid for years, or demanding
/// extensions (`crit`) we do not implement all vouched.
#[test]
fn identity_tokens_ahead_of_time_too_long_lived_or_with_crit_are_refused() {
    let secrets = [Secret::new(IDENTITY_SECRET)];
    let t = now().timestamp();
    let with = |edit: &dyn Fn(&mut IdentityClaims)| {
        let mut c = claims(t + 600);
        edit(&mut c);
        mint_identity_token(IDENTITY_SECRET, &c)
    };
    let verify = |token: &str| verify_identity_token(token, &secrets, max_lifetime(), now()).map(|_| ());
    let day = 24 * 60 * 60;
    for (token, expected) in [
        (with(&|c| c.nbf = Some(t + 61)), Err(TokenProblem::NotYetValid)),
        (with(&|c| c.nbf = Some(t + 60)), Ok(())),
        (with(&|c| c.iat = Some(t + 61)), Err(TokenProblem::IssuedInTheFuture)),
        (with(&|c| c.iat = Some(t + 60)), Ok(())),
        (with(&|c| c.exp = t + day + 61), Err(TokenProblem::LifetimeTooLong)),
        (with(&|c| c.exp = t + day + 60), Ok(())),
        (with(&|c| c.exp = i64::MAX), Err(TokenProblem::LifetimeTooLong)),
        (with(&|c| c.exp = i64::MIN), Err(TokenProblem::Expired)),
        (with(&|c| c.iat = Some(i64::MAX)), Err(TokenProblem::IssuedInTheFuture)),
        (
            token_with_header(
                &json!({ "alg": "HS256", "crit": ["b64"], "b64": false }),
                &claims(t + 600),
            ),
            Err(TokenProblem::UnsupportedCriticalHeader),
        ),
        (
            token_with_header(&json!({ "alg": "HS256", "crit": [] }), &claims(t + 600)),
            Err(TokenProblem::UnsupportedCriticalHeader),
        ),
        (
            token_with_header(&json!({ "alg": "HS256", "typ": "JWT", "kid": "k1" }), &claims(t + 600)),
            Ok(()),
        ),
    ] {
        assert_eq!(verify(&token), expected, "{token}");
    }

    // Each problem has its own code, and it is what the interaction records.
    let codes: std::collections::BTreeSet<&str> = [
        TokenProblem::Malformed,
        TokenProblem::UnsupportedAlgorithm,
        TokenProblem::UnsupportedCriticalHeader,
        TokenProblem::BadSignature,
        TokenProblem::Expired,
        TokenProblem::NotYetValid,
        TokenProblem::IssuedInTheFuture,
        TokenProblem::LifetimeTooLong,
        TokenProblem::InvalidClaims,
    ]
    .into_iter()
    .map(TokenProblem::code)
    .collect();
    assert_eq!(codes.len(), 9);
    let mut m = message("m-15");
    m["identity_token"] = with(&|c| c.nbf = Some(t + 3600)).into();
    let interaction = accept_one(m);
    assert_eq!(interaction.attributes["identity"], "identity_token_not_yet_valid");
    assert_eq!(interaction.customer.key(), "web_chat_visitor:acme-web:v-7f3a");
    assert!(interaction.identities.is_empty());
}

#[test]
fn the_identity_token_lifetime_limit_is_the_sites_setting() {
    let mut config = config();
    config.widget.identity_token_max_lifetime = TimeDelta::seconds(600);
    let deliver = |exp: i64, config: &ChatConfig| {
        let mut m = message("m-16");
        m["identity_token"] = mint_identity_token(IDENTITY_SECRET, &claims(exp)).into();
        let body = json!({ "messages": [m] });
        let accepted = accept(&widget_request(&body, OLD_SECRET, now()), config, now()).unwrap();
        accepted.interactions[0].attributes["identity"].clone()
    };
    let t = now().timestamp();
    assert_eq!(deliver(t + 660, &config), "verified");
    assert_eq!(deliver(t + 661, &config), "identity_token_lifetime_too_long");
    assert_eq!(
        deliver(t + 2 * 24 * 3600, &crate::tests::config()),
        "identity_token_lifetime_too_long",
        "a day by default"
    );
}

#[test]
fn unknown_paths_are_not_found() {
    let req = request("/nothing-here", &[], b"{}");
    assert_eq!(status(accept(&req, &config(), now())), StatusCode::NOT_FOUND);
}

/// The problem a configuration error names.
fn invalid(error: throughline_edge::ConfigError) -> String {
    match error {
        throughline_edge::ConfigError::Invalid(problem) => problem,
        other => panic!("not an invalid-configuration error: {other}"),
    }
}

#[test]
fn the_secrets_document_is_checked_without_quoting_it() {
    let err = invalid(ChatConfig::from_secrets(&Secret::new("{not json"), TimeDelta::seconds(300)).unwrap_err());
    assert!(!err.contains("not json"), "{err}");
    let err = invalid(
        ChatConfig::from_secrets(
            &Secret::new(r#"{"sites":{"s":{"webhook_secrets":[]}}}"#),
            TimeDelta::seconds(300),
        )
        .unwrap_err(),
    );
    assert_eq!(err, "CHAT_SECRETS site s has no webhook secret");
}

#[test]
fn committed_delivery_schema_matches_the_code() {
    let committed = include_str!("../chat-webhook.schema.json");
    assert!(
        committed == crate::delivery_json_schema(),
        "functions/chat/chat-webhook.schema.json is out of date: run `cargo xtask schema`"
    );
}

#[test]
fn platform_handles_scope_visitors_by_site() {
    let handle = Handle::Platform {
        platform: Platform::WebChatVisitor,
        scope: Some(PlatformUserId::parse(SITE).unwrap()),
        id: PlatformUserId::parse("v-7f3a").unwrap(),
    };
    assert_eq!(handle.key(), "web_chat_visitor:acme-web:v-7f3a");
}

/// A visitor cookie set to a logged-in user's id names a visitor, never that user.
#[test]
fn a_visitor_id_equal_to_a_user_id_is_still_a_visitor() {
    let token = mint_identity_token(IDENTITY_SECRET, &claims(now().timestamp() + 600));
    let mut logged_in = message("m-5");
    logged_in["identity_token"] = token.into();
    let user = accept_one(logged_in).customer;

    let mut impostor = message("m-6");
    impostor["visitor_id"] = "user-42".into();
    let visitor = accept_one(impostor);
    assert_ne!(visitor.customer, user, "the cookie cannot name the user's handle");
    assert_eq!(visitor.customer.key(), "web_chat_visitor:acme-web:user-42");
    assert!(visitor.identities.is_empty(), "a visitor vouches for nothing");
}

proptest! {
    #[test]
    fn no_body_makes_either_core_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let config = config();
        let timestamp = now().timestamp().to_string();
        let widget = request("/widget", &[
            (widget::SITE_HEADER, SITE.into()),
            (widget::TIMESTAMP_HEADER, timestamp.clone()),
            (widget::SIGNATURE_HEADER, widget::sign(OLD_SECRET, &timestamp, &body)),
        ], &body);
        let _ = accept(&widget, &config, now());
        let telegram = request(&format!("/telegram/{BOT}"), &[(crate::telegram::SECRET_HEADER, BOT_TOKEN.into())], &body);
        let _ = accept(&telegram, &config, now());
    }

    #[test]
    fn any_identity_token_text_is_handled(token in "\\PC{0,200}") {
        let _ = verify_identity_token(&token, &[Secret::new(IDENTITY_SECRET)], max_lifetime(), now());
    }
}
