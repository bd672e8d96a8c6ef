use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lambda_http::http::{HeaderMap, HeaderName, Method, StatusCode};
use proptest::prelude::*;
use serde_json::json;
use throughline_edge::{Rejection, Secret, WebhookRequest};
use throughline_model::{
    AttachmentSource, Change, Channel, Direction, E164, EmailAddress, Evidence, EvidenceSource, Handle, InteractionId,
    Platform, PlatformUserId, Provider, ProviderMessageId,
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
        iat: None,
    }
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
    assert_eq!(interaction.customer.key(), "web_chat:acme-web:v-7f3a");
    assert_eq!(interaction.business_endpoint.key(), "web_chat::acme-web");
    assert_eq!(interaction.text.as_deref(), Some("Is the blue one back in stock?"));
    assert_eq!(interaction.occurred_at.to_rfc3339(), "2026-11-24T11:59:30+00:00");
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
    assert_eq!(interaction.customer.key(), "web_chat:acme-web:user-42");
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
    assert_eq!(interaction.customer.key(), "web_chat:acme-web:v-7f3a");
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
    let visitor = verify_identity_token(&valid, &secrets, now()).unwrap();
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
        assert_eq!(verify_identity_token(token, &secrets, now()), Err(problem), "{token}");
    }

    let mut m = message("m-4");
    m["identity_token"] = expired.into();
    let interaction = &accept_one(m);
    assert_eq!(interaction.customer.key(), "web_chat:acme-web:v-7f3a");
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
fn malformed_deliveries_name_the_problem() {
    let config = config();
    let mut no_visitor = message("m-7");
    no_visitor.as_object_mut().unwrap().remove("visitor_id");
    let mut bad_time = message("m-8");
    bad_time["sent_at"] = "yesterday".into();
    let too_many: Vec<_> = (0..101).map(|i| message(&format!("m-{i}"))).collect();
    for (body, expected) in [
        (
            json!({ "messages": [message("ok"), no_visitor] }),
            "messages[1]: missing field `visitor_id`",
        ),
        (json!({ "messages": [bad_time] }), "messages[0]: "),
        (json!({ "messages": [] }), "messages must hold 1 to 100 messages"),
        (json!({ "messages": too_many }), "messages must hold 1 to 100 messages"),
        (
            json!({ "message": {} }),
            "body is not a chat delivery: missing field `messages`",
        ),
    ] {
        let rejection = accept(&widget_request(&body, OLD_SECRET, now()), &config, now()).unwrap_err();
        assert_eq!(rejection.status(), StatusCode::BAD_REQUEST);
        assert!(rejection.message().starts_with(expected), "{}", rejection.message());
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

    let mut no_chat = telegram_message(10);
    no_chat.as_object_mut().unwrap().remove("chat");
    let rejection = accept(
        &telegram_request(&json!({ "update_id": 1, "message": no_chat }), BOT_TOKEN),
        &config,
        now(),
    )
    .unwrap_err();
    assert_eq!(rejection.message(), "message: missing field `chat`");
    let rejection = accept(&telegram_request(&json!({ "message": {} }), BOT_TOKEN), &config, now()).unwrap_err();
    assert_eq!(rejection.message(), "update_id is missing or not an integer");
}

#[test]
fn unknown_paths_are_not_found() {
    let req = request("/nothing-here", &[], b"{}");
    assert_eq!(status(accept(&req, &config(), now())), StatusCode::NOT_FOUND);
}

#[test]
fn the_secrets_document_is_checked_without_quoting_it() {
    let err = ChatConfig::from_secrets(&Secret::new("{not json"), TimeDelta::seconds(300)).unwrap_err();
    assert!(!err.contains("not json"), "{err}");
    let err = ChatConfig::from_secrets(
        &Secret::new(r#"{"sites":{"s":{"webhook_secrets":[]}}}"#),
        TimeDelta::seconds(300),
    )
    .unwrap_err();
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
        platform: Platform::WebChat,
        scope: Some(PlatformUserId::parse(SITE).unwrap()),
        id: PlatformUserId::parse("v-7f3a").unwrap(),
    };
    assert_eq!(handle.key(), "web_chat:acme-web:v-7f3a");
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
        let _ = verify_identity_token(&token, &[Secret::new(IDENTITY_SECRET)], now());
    }
}
