//! Unit tests on the pure core: the parser on the sample mails in events/email/mime/, the
//! reply splitter, format=flowed, SES events, Mailgun's signature.

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::http::StatusCode;
use proptest::prelude::*;
use throughline_edge::{Secret, WebhookRequest};
use throughline_model::{AttachmentSource, Channel, EmailAddress, InteractionKind, Provider};

use crate::mail::{Envelope, StoredMail, Verdict, Verdicts, normalize, split_reply, unflow};
use crate::mailgun::{self, MailgunConfig};
use crate::ses;

/// Must match `xtask::stack::TEST_MAILGUN_SIGNING_KEY`, which signed the sample events.
const TEST_MAILGUN_KEY: &str = "throughline-test-mailgun-key";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z").unwrap().to_utc()
}

fn events_dir() -> String {
    format!("{}/../../events/email", env!("CARGO_MANIFEST_DIR"))
}

fn mime(name: &str) -> Vec<u8> {
    let path = format!("{}/mime/{name}", events_dir());
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn event(name: &str) -> serde_json::Value {
    let path = format!("{}/{name}", events_dir());
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

fn envelope(verdicts: Verdicts) -> Envelope {
    Envelope {
        provider: Provider::Ses,
        mailbox: EmailAddress::parse("support@acme.example").unwrap(),
        delivery_id: "ses-delivery-1".into(),
        verdicts,
        stored: Some(StoredMail {
            bucket: "mail".into(),
            key: "inbound/x".into(),
        }),
        received_at: now(),
    }
}

fn passing() -> Verdicts {
    Verdicts {
        spf: Some(Verdict::Pass),
        dkim: Some(Verdict::Pass),
        dmarc: Some(Verdict::Pass),
        spam: Some(Verdict::Pass),
        virus: Some(Verdict::Pass),
    }
}

#[test]
fn a_plain_question_becomes_an_email_interaction() {
    let i = normalize(&mime("01-ada-question.eml"), &envelope(passing())).unwrap();
    assert_eq!(i.channel, Channel::Email);
    assert_eq!(i.customer.key(), "email:ada@example.com", "From is lower-cased");
    assert_eq!(i.business_endpoint.key(), "email:support@acme.example");
    assert_eq!(i.provider_message_id.as_str(), "CAAda1042-q1@mail.example.com");
    assert_eq!(i.subject.as_deref(), Some("Order 1042 has not arrived"));
    assert!(i.text.as_deref().unwrap().contains("1042"));
    assert!(i.html.is_some());
    assert_eq!(i.customer_display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(i.attributes["sender_verified"], "true");
    assert_eq!(i.kind, InteractionKind::Message);
}

#[test]
fn legacy_charsets_and_encoded_words_are_decoded() {
    let grace = normalize(&mime("02-grace-windows-1252.eml"), &envelope(passing())).unwrap();
    let text = grace.text.unwrap();
    assert!(text.contains('é') && text.contains('€'), "{text}");
    assert!(!grace.subject.unwrap().is_ascii());

    let taro = normalize(&mime("07-taro-iso-2022-jp.eml"), &envelope(passing())).unwrap();
    let text = taro.text.unwrap();
    assert!(
        text.chars()
            .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c) || ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{text}"
    );
    assert!(!taro.subject.unwrap().is_ascii());
    assert!(!taro.customer_display_name.unwrap().is_ascii());
}

#[test]
fn attachments_are_referenced_in_the_stored_mail_never_copied() {
    let i = normalize(&mime("03-ada-large-with-attachments.eml"), &envelope(passing())).unwrap();
    assert!(i.attachments.len() >= 2, "{:?}", i.attachments);
    let pdf = i
        .attachments
        .iter()
        .find(|a| a.file_name.as_deref() == Some("invoice-1042.pdf"))
        .expect("the PDF");
    assert_eq!(pdf.content_type.as_deref(), Some("application/pdf"));
    assert!(pdf.size_bytes.unwrap() > 100_000);
    assert!(!pdf.inline);
    assert!(
        matches!(&pdf.source, AttachmentSource::MimePart { bucket, key, .. } if bucket == "mail" && key == "inbound/x")
    );
    let photo = i.attachments.iter().find(|a| a.inline).expect("the inline image");
    assert_eq!(photo.content_id.as_deref(), Some("photo1@acme"));
    assert!(i.to_json().len() < 64 * 1024, "the interaction stays small");
    assert_eq!(i.thread.in_reply_to.as_deref(), Some("CAAda1042-q1@mail.example.com"));
}

#[test]
fn a_reply_keeps_the_new_text_and_the_full_text() {
    let i = normalize(&mime("04-ada-reply-quoted.eml"), &envelope(passing())).unwrap();
    let text = i.text.unwrap();
    let full = i.full_text.unwrap();
    assert!(!text.contains("wrote:") && !text.contains("\n>"), "{text}");
    assert!(!text.contains("Analytical Engines"), "the signature is cut: {text}");
    assert!(full.contains("wrote:") && full.starts_with(text.trim_end()));
    assert_eq!(i.thread.references.len(), 2);
}

#[test]
fn threads_are_scoped_to_mailbox_and_customer() {
    let ada = normalize(&mime("08-newsletter-reply-ada.eml"), &envelope(passing())).unwrap();
    let grace = normalize(&mime("09-newsletter-reply-grace.eml"), &envelope(passing())).unwrap();
    assert_eq!(
        ada.thread.in_reply_to, grace.thread.in_reply_to,
        "both answer the newsletter"
    );
    assert_ne!(ada.thread.provider_thread_id, grace.thread.provider_thread_id);
    // Ada's reply to her own question stays in her question's thread.
    let question = normalize(&mime("01-ada-question.eml"), &envelope(passing())).unwrap();
    let photos = normalize(&mime("03-ada-large-with-attachments.eml"), &envelope(passing())).unwrap();
    assert_eq!(question.thread.provider_thread_id, photos.thread.provider_thread_id);
}

#[test]
fn automated_mail_is_flagged_and_spam_is_quarantined() {
    let auto = normalize(&mime("05-ada-auto-reply.eml"), &envelope(passing())).unwrap();
    assert_eq!(auto.kind, InteractionKind::Automated);
    assert_eq!(auto.attributes["automated"], "auto_reply");

    let bounce = normalize(&mime("06-bounce-dsn.eml"), &envelope(passing())).unwrap();
    assert_eq!(bounce.kind, InteractionKind::Automated);
    assert_eq!(bounce.attributes["automated"], "bounce");
    assert!(
        !bounce.customer.key().contains("mailer-daemon"),
        "{}",
        bounce.customer.key()
    );

    let spam = Verdicts {
        spam: Some(Verdict::Fail),
        ..passing()
    };
    let quarantined = normalize(&mime("10-spam.eml"), &envelope(spam)).unwrap();
    assert_eq!(quarantined.kind, InteractionKind::Quarantined);
    assert_eq!(quarantined.attributes["verdict.spam"], "fail");

    let unauthenticated = Verdicts {
        dmarc: Some(Verdict::Gray),
        ..passing()
    };
    let i = normalize(&mime("01-ada-question.eml"), &envelope(unauthenticated)).unwrap();
    assert_eq!(i.attributes["sender_verified"], "false");
}

#[test]
fn the_reply_splitter_finds_the_usual_separators() {
    for (mail, new) in [
        ("Thanks!\n\nOn Mon, 1 Jan 2026, Bob <b@x> wrote:\n> hi\n", "Thanks!\n\n"),
        (
            "Thanks!\nOn Mon, 1 Jan 2026 at 10:00, Bob Smith\n<b@x> wrote:\n> hi\n",
            "Thanks!\n",
        ),
        ("Yes\n-- \nAda\n", "Yes\n"),
        ("Ok\n-----Original Message-----\nFrom: x\n", "Ok\n"),
        ("Ok\n\n> quoted\n> more\n", "Ok\n\n"),
        ("> inline quote\nmy answer\n", "> inline quote\nmy answer\n"),
        ("> only a quote\n", "> only a quote\n"),
    ] {
        assert_eq!(split_reply(mail).0, new, "{mail:?}");
    }
}

#[test]
fn format_flowed_lines_are_joined() {
    assert_eq!(
        unflow("This is a \r\nflowed line.\r\nNext\r\n", false),
        "This is a flowed line.\nNext\n"
    );
    assert_eq!(unflow("Del\r\nsp", false), "Del\nsp");
    assert_eq!(unflow("ab \r\ncd\r\n", true), "abcd\n");
    assert_eq!(unflow(" >not a quote\r\n", false), ">not a quote\n");
    assert_eq!(unflow("-- \r\nsig\r\n", false), "-- \nsig\n");
}

#[test]
fn ses_events_with_content_in_base64_and_utf8_and_without_content() {
    let base64 = ses::mails_in(&event("01-ses-sns-base64.json")).unwrap();
    assert_eq!(base64.len(), 1);
    assert_eq!(
        base64[0].content.as_deref(),
        Some(mime("01-ada-question.eml").as_slice())
    );
    assert_eq!(base64[0].verdicts, passing());
    assert_eq!(base64[0].recipients[0].as_str(), "support@acme.example");

    let utf8 = ses::mails_in(&event("02-ses-sns-utf8-windows-1252.json")).unwrap();
    assert_eq!(utf8[0].verdicts.dmarc, Some(Verdict::Gray));
    let grace = normalize(utf8[0].content.as_deref().unwrap(), &utf8[0].envelope(now()).unwrap()).unwrap();
    assert!(grace.text.unwrap().contains('€'));

    let s3 = ses::mails_in(&event("03-ses-s3-large-with-attachments.json")).unwrap();
    assert_eq!(s3[0].content, None, "the Lambda action carries headers only");
    assert!(!s3[0].message_id.is_empty());

    assert!(ses::mails_in(&serde_json::json!({})).is_err());
    assert!(ses::mails_in(&serde_json::json!({"Records": [{"Sns": {"Message": "{"}}]})).is_err());
}

fn mailgun_config() -> MailgunConfig {
    MailgunConfig {
        signing_keys: vec![Secret::new("old-key"), Secret::new(TEST_MAILGUN_KEY)],
        tolerance: TimeDelta::seconds(300),
    }
}

fn mailgun_request(name: &str) -> WebhookRequest {
    let text = std::fs::read_to_string(format!("{}/{name}", events_dir())).unwrap();
    WebhookRequest::from_lambda(lambda_http::request::from_str(&text).unwrap(), None)
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

#[test]
fn mailgun_vector_signature_window_and_raw_mime() {
    assert_eq!(
        mailgun::sign(
            "key-3ax6xnjp29jd6fds4gc373sgvjxteol0",
            "1403645220",
            "5egbgr1vjgqxtrnp65xfznchgdccwh5d6i09vijqi3whgowmn6"
        ),
        "9cfc5c41582e51246e73c88d34db3af0a3a2692a76fbab81492842f000256d33"
    );
    let delivery = mailgun::accept(
        &mailgun_request("11-mailgun-mime.json"),
        &mailgun_config(),
        at(1795510000),
    )
    .unwrap();
    assert_eq!(delivery.envelope.mailbox.as_str(), "support@mg.acme.example");
    let i = normalize(&delivery.raw_mime, &delivery.envelope).unwrap();
    assert_eq!(i.provider, Provider::Mailgun);
    assert_eq!(i.customer.key(), "email:grace@hopper.example");
    assert_eq!(i.provider_message_id.as_str(), "grace-mg-1@hopper.example");

    let late = mailgun::accept(
        &mailgun_request("11-mailgun-mime.json"),
        &mailgun_config(),
        at(1795510301),
    )
    .unwrap_err();
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
    let forged = mailgun::accept(
        &mailgun_request("12-mailgun-bad-signature.json"),
        &mailgun_config(),
        at(1795510000),
    )
    .unwrap_err();
    assert_eq!(forged.message(), "signature does not match timestamp and token");
    let stale = mailgun::accept(
        &mailgun_request("13-mailgun-stale-timestamp.json"),
        &mailgun_config(),
        at(1795510000),
    )
    .unwrap_err();
    assert_eq!(stale.message(), "timestamp is outside the allowed window");
}

proptest! {
    #[test]
    fn no_bytes_make_the_parser_panic(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = normalize(&raw, &envelope(passing()));
    }

    #[test]
    fn no_header_garbage_makes_it_panic(
        headers in proptest::collection::vec("[A-Za-z-]{1,20}: [\\x20-\\x7e\\u{80}-\\u{ff}]{0,80}", 0..12),
        body in "\\PC{0,300}",
    ) {
        let raw = format!("{}\r\n\r\n{body}", headers.join("\r\n"));
        let _ = normalize(raw.as_bytes(), &envelope(passing()));
    }

    #[test]
    fn the_reply_splitter_only_cuts(text in "\\PC{0,400}") {
        let (new, rest) = split_reply(&text);
        prop_assert_eq!(format!("{new}{rest}"), text);
    }
}
