//! Unit tests on the pure core: the parser on the sample mails in events/email/mime/, the
//! reply splitter, format=flowed, SES events and their sources, Mailgun's form, signature and
//! token claims.

use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::http::StatusCode;
use proptest::prelude::*;
use throughline_edge::ErrorCode;
use throughline_edge::{Secret, WebhookRequest};
use throughline_model::{
    AttachmentSource, Channel, EmailAddress, Handle, InteractionId, InteractionKind, Provider, ProviderMessageId,
    SenderCheck, StoredObject,
};

use crate::mail::{
    Envelope, MAX_TEXT_BYTES, Verdict, Verdicts, normalize, normalize_address, sender_scoped, split_reply, unflow,
};
use crate::mailgun::{self, MailgunConfig};
use crate::ses::{self, MailSources, Refused};

use throughline_testkit::secrets::TEST_MAILGUN_SIGNING_KEY as TEST_MAILGUN_KEY;

fn now() -> DateTime<Utc> {
    throughline_testkit::sample_day_at(12, 0)
}

fn mime(name: &str) -> Vec<u8> {
    throughline_testkit::events::event_bytes(&format!("email/mime/{name}"))
}

fn event(name: &str) -> serde_json::Value {
    throughline_testkit::events::event_json(&format!("email/{name}"))
}

fn envelope(verdicts: Verdicts) -> Envelope {
    Envelope {
        provider: Provider::Ses,
        mailbox: EmailAddress::parse("support@acme.example").unwrap(),
        delivery_id: "ses-delivery-1".into(),
        verdicts,
        stored: Some(StoredObject {
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
    assert_eq!(i.sender_check, Some(SenderCheck::Verified));
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
    // The raw mail they point into is the interaction's own, so erasure finds and deletes it.
    assert_eq!(i.raw_object.as_ref().map(|o| o.key.as_str()), Some("inbound/x"));
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
    assert_eq!(i.sender_check, Some(SenderCheck::Unverified));
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
    let any = MailSources::default();
    let base64 = ses::mails_in(&event("01-ses-sns-base64.json"), &any).unwrap().mails;
    assert_eq!(base64.len(), 1);
    assert_eq!(
        base64[0].content.as_deref(),
        Some(mime("01-ada-question.eml").as_slice())
    );
    assert_eq!(base64[0].verdicts, passing());
    assert_eq!(base64[0].recipients[0].as_str(), "support@acme.example");

    let utf8 = ses::mails_in(&event("02-ses-sns-utf8-windows-1252.json"), &any)
        .unwrap()
        .mails;
    assert_eq!(utf8[0].verdicts.dmarc, Some(Verdict::Gray));
    let grace = normalize(utf8[0].content.as_deref().unwrap(), &utf8[0].envelope(now()).unwrap()).unwrap();
    assert!(grace.text.unwrap().contains('€'));

    let s3 = ses::mails_in(&event("03-ses-s3-large-with-attachments.json"), &any)
        .unwrap()
        .mails;
    assert_eq!(s3[0].content, None, "the Lambda action carries headers only");
    assert!(!s3[0].message_id.is_empty());

    assert!(ses::mails_in(&serde_json::json!({}), &any).is_err());
    assert!(ses::mails_in(&serde_json::json!({"Records": [{"Sns": {"Message": "{"}}]}), &any).is_err());
}

fn mailgun_config() -> MailgunConfig {
    MailgunConfig {
        signing_keys: vec![Secret::new("old-key"), Secret::new(TEST_MAILGUN_KEY)],
        tolerance: TimeDelta::seconds(300),
    }
}

fn mailgun_request(name: &str) -> WebhookRequest {
    WebhookRequest::from_lambda(
        throughline_testkit::events::lambda_request(&format!("email/{name}")),
        None,
    )
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

/// "hi", half a million quoted lines, then "bye": the run does not last to the end.
fn long_quoted_run(with_bye: bool) -> String {
    let mut text = String::from("hi\n");
    text.push_str(&">\n".repeat(500_000));
    if with_bye {
        text.push_str("bye\n");
    }
    text
}

#[test]
fn a_long_quoted_run_is_split_only_when_it_lasts_to_the_end() {
    // Quadratic before: every quoted line looked at every line after it.
    let text = long_quoted_run(true);
    assert_eq!(split_reply(&text), (text.as_str(), ""), "text follows the run: no cut");
    let text = long_quoted_run(false);
    let (new, rest) = split_reply(&text);
    assert_eq!(new, "hi\n");
    assert_eq!(rest.len(), 1_000_000);
}

#[test]
fn a_huge_body_is_truncated_before_it_is_split() {
    let raw = format!(
        "From: Ada <ada@example.com>\r\nTo: support@acme.example\r\nSubject: q\r\nMessage-ID: <big@example.com>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{}",
        long_quoted_run(true)
    );
    let i = normalize(raw.as_bytes(), &envelope(passing())).unwrap();
    // Only the kept text is split: the run reaches the cut, so it is the quoted tail there.
    assert_eq!(i.text.as_deref(), Some("hi"));
    let full = i.full_text.unwrap();
    assert!(
        full.starts_with("hi\n>\n") && full.len() <= MAX_TEXT_BYTES,
        "{}",
        full.len()
    );
}

/// The splitter as it was (quadratic), the reference for the rule the linear one must keep.
fn split_reply_reference(text: &str) -> (&str, &str) {
    let mut offset = 0;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_end_matches(['\r', '\n']);
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or_default();
        let attribution = |l: &str| {
            let l = l.trim();
            (l.starts_with("On ") || l.starts_with("Le ") || l.starts_with("Am "))
                && (l.ends_with("wrote:") || l.ends_with("a écrit :") || l.ends_with("schrieb:"))
        };
        let starts_history = trimmed == "-- "
            || trimmed == "--"
            || attribution(trimmed)
            || (trimmed.trim().starts_with("On ") && attribution(&format!("{trimmed} {next}")))
            || trimmed.trim().starts_with("-----Original Message-----")
            || (trimmed.starts_with("From: ") && lines[i..].iter().take(4).any(|l| l.starts_with("Sent: ")))
            || (trimmed.starts_with('>') && lines[i..].iter().all(|l| l.starts_with('>') || l.trim().is_empty()));
        if starts_history && !text[..offset].trim().is_empty() {
            return (&text[..offset], &text[offset..]);
        }
        offset += line.len();
    }
    (text, "")
}

fn mail_from(from: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@acme.example\r\nSubject: hello\r\nMessage-ID: <{message_id}>\r\n\
         Content-Type: text/plain\r\n\r\nHello\r\n"
    )
    .into_bytes()
}

#[test]
fn email_ids_are_scoped_to_the_sender() {
    let ada = normalize(&mail_from("Ada <ada@example.com>", "same@x"), &envelope(passing())).unwrap();
    let mallory = normalize(&mail_from("mallory@evil.example", "same@x"), &envelope(passing())).unwrap();
    assert_ne!(
        ada.id, mallory.id,
        "another sender reusing a Message-ID is another interaction"
    );
    assert_eq!(
        ada.provider_message_id, mallory.provider_message_id,
        "the Message-ID is kept as is"
    );
    // Deterministic, and on the normalized address.
    let again = normalize(&mail_from("ADA <Ada@EXAMPLE.com>", "same@x"), &envelope(passing())).unwrap();
    assert_eq!(ada.id, again.id);
    let mailbox = Handle::Email {
        address: EmailAddress::parse("support@acme.example").unwrap(),
    };
    let message_id = ProviderMessageId::parse("same@x").unwrap();
    let sender = normalize_address("ada@example.com").unwrap();
    assert_eq!(
        ada.id,
        InteractionId::derive(Provider::Ses, &mailbox, &sender_scoped(&message_id, &sender))
    );
    // Pinned: a change here changes every recorded email's id (it was ix_0249ab1a… before the
    // sender was part of it).
    let question = normalize(&mime("01-ada-question.eml"), &envelope(passing())).unwrap();
    assert_eq!(question.id.as_str(), "ix_4883bf5b2759c76d16036fed6a625b8e");
}

#[test]
fn sns_records_from_another_topic_are_refused() {
    let sns = event("01-ses-sns-base64.json");
    let topic = sns["Records"][0]["Sns"]["TopicArn"].as_str().unwrap().to_owned();
    let ours = MailSources {
        topic_arn: Some(topic),
        ..MailSources::default()
    };
    assert_eq!(ses::mails_in(&sns, &ours).unwrap().mails.len(), 1);
    let theirs = MailSources {
        topic_arn: Some("arn:aws:sns:us-east-1:210987654321:someone-else".into()),
        ..MailSources::default()
    };
    let announced = ses::mails_in(&sns, &theirs).unwrap();
    assert!(announced.mails.is_empty());
    assert_eq!(announced.refused, vec![Refused::UnexpectedTopic { index: 0 }]);
    assert_eq!(announced.refused[0].reason(), "unexpected_topic");
    // Refused before its message is read: a foreign topic's garbage is not an error either.
    let garbage = serde_json::json!({"Records": [{"Sns": {"TopicArn": "arn:aws:sns:x:1:t", "Message": "{"}}]});
    assert_eq!(ses::mails_in(&garbage, &ours).unwrap().refused.len(), 1);
    let no_topic = serde_json::json!({"Records": [{"Sns": {"Message": "{}"}}]});
    assert_eq!(ses::mails_in(&no_topic, &ours).unwrap().refused.len(), 1);
}

#[test]
fn ses_records_must_come_from_the_configured_lambda_action() {
    let lambda = event("03-ses-s3-large-with-attachments.json");
    let function = lambda["Records"][0]["ses"]["receipt"]["action"]["functionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let ours = MailSources {
        receipt_function_arn: Some(function),
        ..MailSources::default()
    };
    assert_eq!(ses::mails_in(&lambda, &ours).unwrap().mails.len(), 1);
    let other = MailSources {
        receipt_function_arn: Some("arn:aws:lambda:us-east-1:123456789012:function:other".into()),
        ..MailSources::default()
    };
    let announced = ses::mails_in(&lambda, &other).unwrap();
    assert!(announced.mails.is_empty());
    assert_eq!(announced.refused, vec![Refused::UnexpectedReceiptAction { index: 0 }]);
    // The topic setting does not apply to SES records, nor the action setting to SNS ones.
    assert_eq!(
        ses::mails_in(&event("01-ses-sns-base64.json"), &other)
            .unwrap()
            .mails
            .len(),
        1
    );
}

fn form_request(body: Vec<u8>) -> WebhookRequest {
    let mut headers = lambda_http::http::HeaderMap::new();
    headers.insert(
        "content-type",
        lambda_http::http::HeaderValue::from_static("multipart/form-data; boundary=b"),
    );
    WebhookRequest {
        method: lambda_http::http::Method::POST,
        headers,
        url: "https://mail.example/mailgun/mime".into(),
        body,
    }
}

#[test]
fn an_oversized_mailgun_body_is_refused_before_it_is_parsed() {
    let mut body = b"--b\r\nContent-Disposition: form-data; name=\"body-mime\"\r\n\r\n".to_vec();
    body.resize(mailgun::MAX_FORM_BYTES + 1, b'a');
    let refused = mailgun::accept(&form_request(body), &mailgun_config(), at(1795510000)).unwrap_err();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(refused.code(), "malformed_request");
    assert!(refused.message().contains("larger than"), "{}", refused.message());
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

    #[test]
    fn the_reply_splitter_keeps_the_line_by_line_rule(
        lines in proptest::collection::vec(
            prop_oneof![
                Just(">"), Just("> q"), Just(""), Just("  "), Just("text"), Just("-- "), Just("--"),
                Just("On Mon, Bob"), Just("<b@x> wrote:"), Just("On Mon, Bob wrote:"),
                Just("From: Bob"), Just("Sent: Monday"), Just("-----Original Message-----"),
            ],
            0..40,
        ),
        crlf in any::<bool>(),
        last_newline in any::<bool>(),
    ) {
        let mut text = lines.join(if crlf { "\r\n" } else { "\n" });
        if last_newline {
            text.push('\n');
        }
        prop_assert_eq!(split_reply(&text), split_reply_reference(&text));
    }

    #[test]
    fn no_form_body_makes_mailgun_accept_panic(
        fields in proptest::collection::vec(("[a-z-]{1,12}", proptest::collection::vec(any::<u8>(), 0..64)), 0..6),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut body = Vec::new();
        for (name, value) in &fields {
            body.extend_from_slice(format!("--b\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes());
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(&tail);
        let _ = mailgun::accept(&form_request(body), &mailgun_config(), at(1795510000));
    }
}

/// Sources that take the event's own topic as the replies' events topic (a sample without a
/// `TopicArn` is a broken sample).
fn events_topic_of(event: &serde_json::Value) -> MailSources {
    let topic = event["Records"][0]["Sns"]["TopicArn"]
        .as_str()
        .expect("the sample's SNS record has a TopicArn");
    MailSources {
        events_topic_arn: Some(topic.to_owned()),
        ..MailSources::default()
    }
}

/// The statuses of the sample SES events, as the events topic's records.
fn ses_statuses(name: &str) -> Vec<throughline_model::StatusReport> {
    let event = event(name);
    let sources = events_topic_of(&event);
    let announced = ses::mails_in(&event, &sources).unwrap();
    assert!(
        announced.mails.is_empty() && announced.refused.is_empty(),
        "{announced:?}"
    );
    announced.statuses
}

fn reply_id(provider: Provider, from: &str, provider_id: &str) -> throughline_model::InteractionId {
    throughline_model::InteractionId::derive(
        provider,
        &throughline_model::Handle::Email {
            address: EmailAddress::parse(from).unwrap(),
        },
        &throughline_model::ProviderMessageId::parse(provider_id).unwrap(),
    )
}

#[test]
fn ses_events_about_replies_are_statuses_of_the_id_the_sender_recorded() {
    use throughline_model::{DeliveryStatus, RecipientState};
    let [delivered] = ses_statuses("14-ses-event-delivery.json").try_into().unwrap();
    assert_eq!(
        delivered.interaction_id,
        reply_id(
            Provider::Ses,
            "support@acme.example",
            "0100019ad0c6f1a2-3b4c5d6e-7f80-4a1b-9c2d-3e4f5a6b7c8d-000000@us-east-1.amazonses.com"
        )
    );
    assert_eq!(delivered.event.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.event.at.to_rfc3339(), "2026-11-24T12:00:02.118+00:00");
    assert_eq!(delivered.recipient, None);

    // A hard bounce: undelivered, and the address is undeliverable.
    let [bounced] = ses_statuses("15-ses-event-bounce.json").try_into().unwrap();
    assert_eq!(bounced.event.status, DeliveryStatus::Undelivered);
    let error = bounced.event.error.clone().unwrap();
    assert_eq!(error.code, "bounce:Permanent/General");
    assert!(error.reason.contains("hard bounce"), "{}", error.reason);
    let fact = bounced.recipient.clone().unwrap();
    assert_eq!(
        (fact.handle.key(), fact.state),
        ("email:ada@exmaple.com".to_owned(), RecipientState::Undeliverable)
    );

    // A complaint: it arrived, and the address opted out.
    let [complaint] = ses_statuses("16-ses-event-complaint.json").try_into().unwrap();
    assert_eq!(complaint.event.status, DeliveryStatus::Delivered);
    assert_eq!(complaint.recipient.unwrap().state, RecipientState::OptedOut);

    // A soft bounce is history (`sent`, with why); a delay too; a reject fails it.
    let with = |kind: &str, detail: serde_json::Value| {
        let mut message: serde_json::Value = serde_json::from_str(
            event("15-ses-event-bounce.json")["Records"][0]["Sns"]["Message"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        message["eventType"] = kind.into();
        message.as_object_mut().unwrap().remove("bounce");
        if let serde_json::Value::Object(detail) = detail {
            message.as_object_mut().unwrap().extend(detail);
        }
        crate::events::ses_event(&message, "us-east-1").unwrap()
    };
    let soft = with(
        "Bounce",
        serde_json::json!({"bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull",
            "bouncedRecipients": [{"emailAddress": "ada@exmaple.com"}], "timestamp": "2026-11-24T12:00:04Z"}}),
    );
    assert_eq!(soft[0].event.status, DeliveryStatus::Sent);
    assert!(soft[0].event.error.as_ref().unwrap().reason.contains("full"));
    assert_eq!(soft[0].recipient, None, "a soft bounce says nothing of the address");
    let delay = with(
        "DeliveryDelay",
        serde_json::json!({"deliveryDelay": {"delayType": "MailboxFull"}}),
    );
    assert_eq!(delay[0].event.status, DeliveryStatus::Sent);
    assert_eq!(
        with("Reject", serde_json::json!({"reject": {"reason": "Bad content"}}))[0]
            .event
            .status,
        DeliveryStatus::Failed
    );
    assert!(with("Open", serde_json::json!({})).is_empty());
    assert!(crate::events::ses_event(&serde_json::json!({"eventType": "Delivery"}), "us-east-1").is_err());
}

#[test]
fn a_malformed_ses_event_is_refused_alone() {
    let mut event = event("14-ses-event-delivery.json");
    let good = event["Records"][0].clone();
    let mut bad = good.clone();
    bad["Sns"]["Message"] = "{\"eventType\":\"Delivery\"}".into();
    event["Records"] = serde_json::json!([bad, good]);
    let sources = events_topic_of(&event);
    let announced = ses::mails_in(&event, &sources).unwrap();
    assert_eq!(announced.statuses.len(), 1);
    assert_eq!(announced.refused, vec![Refused::MalformedEvent { index: 0 }]);
}

/// A sample Mailgun event request and the time it was signed at.
fn mailgun_event_request(name: &str) -> (WebhookRequest, DateTime<Utc>) {
    let request = mailgun_request(name);
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let signed_at = at(body["signature"]["timestamp"].as_str().unwrap().parse().unwrap());
    (request, signed_at)
}

#[test]
fn mailgun_events_are_signed_like_routes_and_report_on_replies() {
    use throughline_model::{DeliveryStatus, RecipientState};
    let (request, signed_at) = mailgun_event_request("17-mailgun-event-delivered.json");
    assert!(mailgun::is_event(&request));
    let delivered = mailgun::accept_event(&request, &mailgun_config(), signed_at).unwrap();
    let [report] = delivered.accepted.statuses.as_slice() else {
        panic!("{:?}", delivered.accepted)
    };
    assert_eq!(
        report.interaction_id,
        reply_id(
            Provider::Mailgun,
            "support@mg.acme.example",
            "20261124120000.1.AB12CD34EF56@mg.acme.example"
        )
    );
    assert_eq!(report.event.status, DeliveryStatus::Delivered);
    assert_eq!(report.event.at.timestamp_millis(), 1795521600123);

    let (request, signed_at) = mailgun_event_request("18-mailgun-event-failed-permanent.json");
    let failed = mailgun::accept_event(&request, &mailgun_config(), signed_at).unwrap();
    let report = &failed.accepted.statuses[0];
    assert_eq!(report.event.status, DeliveryStatus::Undelivered);
    assert_eq!(report.event.error.as_ref().unwrap().code, "mailgun:bounce/550");
    assert_eq!(
        report.recipient.as_ref().map(|f| (f.handle.key(), f.state)),
        Some(("email:ada@exmaple.com".to_owned(), RecipientState::Undeliverable))
    );

    // Out of the window, or signed with another key: 401, nothing reported.
    let late = mailgun::accept_event(&request, &mailgun_config(), signed_at + TimeDelta::seconds(301)).unwrap_err();
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
    let other = MailgunConfig {
        signing_keys: vec![Secret::new("someone-elses-key")],
        ..mailgun_config()
    };
    assert_eq!(
        mailgun::accept_event(&request, &other, signed_at).unwrap_err().status(),
        StatusCode::UNAUTHORIZED
    );
    // Signed, but not an event: 400 naming what is missing.
    let mut body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    body["event-data"]["message"]["headers"]
        .as_object_mut()
        .unwrap()
        .remove("message-id");
    let mut broken = request.clone();
    broken.body = body.to_string().into_bytes();
    let err = mailgun::accept_event(&broken, &mailgun_config(), signed_at).unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert!(err.message().contains("message-id"), "{}", err.message());
    // Events with no state here are acknowledged and counted.
    body["event-data"] = serde_json::json!({"event": "opened"});
    broken.body = body.to_string().into_bytes();
    let opened = mailgun::accept_event(&broken, &mailgun_config(), signed_at).unwrap();
    assert_eq!(opened.accepted.ignored, vec!["event_other"]);
}
