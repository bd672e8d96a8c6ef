//! Each provider's request as its API documents it, and each documented answer — success,
//! refusals, rate limits, outages — read the way it means.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use throughline_edge::Secret;
use throughline_model::*;

use super::*;
use crate::ProviderFailure;
use throughline_testkit::outbound::sample_send_job;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 9, 12, 0, 0).unwrap()
}

fn credentials() -> Credentials {
    let document = json!({
        "twilio": {"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "tw-token",
                   "status_callback": "https://sms.throughline.example/twilio/status"},
        "whatsapp_cloud": {"+14155550199": {"phone_number_id": "106540352242922", "access_token": "wa-token"}},
        "meta_pages": {"1234": {"access_token": "page-token"}},
        "telegram": {"acme_support_bot": {"token": "123456:bot-token"}},
        "x": {"9999": {"access_token": "x-token"}},
        "mailgun": {"api_key": "mg-key", "domains": ["mg.acme.example"]},
        "ses": {"identities": ["acme.example", "billing@other.example"]},
        "web_chat": {"acme-web": {"outbound_url": "https://backend.acme.example/agent-messages", "secret": "chat-secret"}}
    });
    Credentials::from_document(&Secret::new(document.to_string())).unwrap()
}

fn apis() -> ProviderApis {
    ProviderApis {
        twilio: "http://stub/twilio".into(),
        graph: "http://stub/graph".into(),
        graph_version: "v23.0".into(),
        telegram: "http://stub/telegram".into(),
        x: "http://stub/x".into(),
        mailgun: "http://stub/mailgun".into(),
    }
}

fn phone(n: &str) -> Handle {
    Handle::Phone {
        number: E164::parse(n).unwrap(),
    }
}

fn platform(platform: Platform, scope: Option<&str>, id: &str) -> Handle {
    Handle::Platform {
        platform,
        scope: scope.map(|s| PlatformUserId::parse(s).unwrap()),
        id: PlatformUserId::parse(id).unwrap(),
    }
}

fn email(a: &str) -> Handle {
    Handle::Email {
        address: EmailAddress::parse(a).unwrap(),
    }
}

fn text(t: &str) -> OutboundContent {
    OutboundContent::Message {
        text: Some(t.into()),
        attachments: vec![],
    }
}

fn image(caption: Option<&str>) -> OutboundContent {
    OutboundContent::Message {
        text: caption.map(str::to_owned),
        attachments: vec![OutboundAttachment {
            url: "https://cdn.acme.example/receipt.png".into(),
            content_type: Some("image/png".into()),
            file_name: Some("receipt.png".into()),
        }],
    }
}

fn job(channel: Channel, provider: Provider, from: Handle, to: Handle, content: OutboundContent) -> SendJob {
    let mut job = sample_send_job(channel, provider, from, to);
    job.message.content = content;
    job.message.email = None;
    job
}

fn build(job: &SendJob) -> ProviderRequest {
    build_request(job, &credentials(), &apis(), now()).unwrap()
}

fn refusal(job: &SendJob, credentials: &Credentials) -> &'static str {
    build_request(job, credentials, &apis(), now()).unwrap_err().code()
}

fn json_body(request: &ProviderRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn form_pairs(request: &ProviderRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn answer(status: u16, body: Value) -> ProviderResponse {
    ProviderResponse {
        status,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

fn answer_with(status: u16, headers: &[(&str, &str)], body: Value) -> ProviderResponse {
    ProviderResponse {
        headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        ..answer(status, body)
    }
}

fn sent(outcome: SendOutcome) -> String {
    match outcome {
        SendOutcome::Sent { provider_message_id } => provider_message_id.to_string(),
        other => panic!("not sent: {other:?}"),
    }
}

fn failed(outcome: SendOutcome) -> ProviderFailure {
    match outcome {
        SendOutcome::Failed(failure) => failure,
        other => panic!("not failed: {other:?}"),
    }
}

fn transient(outcome: SendOutcome) -> (Option<Duration>, ProviderFailure) {
    match outcome {
        SendOutcome::Transient { retry_after, failure } => (retry_after, failure),
        other => panic!("not transient: {other:?}"),
    }
}

fn decoded_basic(request: &ProviderRequest) -> String {
    use base64::Engine as _;
    let value = request.header("authorization").unwrap().strip_prefix("Basic ").unwrap();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(value).unwrap()).unwrap()
}

mod twilio {
    use super::*;

    fn sms(content: OutboundContent) -> SendJob {
        job(
            Channel::Sms,
            Provider::Twilio,
            phone("+14155550199"),
            phone("+14155550100"),
            content,
        )
    }

    #[test]
    fn an_sms_is_a_form_post_to_the_accounts_messages_with_basic_auth() {
        let request = build(&sms(text("Your order ships today")));
        assert_eq!(
            request.url,
            "http://stub/twilio/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        assert_eq!(decoded_basic(&request), "AC0123456789abcdef0123456789abcdef:tw-token");
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let pairs = form_pairs(&request);
        let expected = [
            ("To", "+14155550100"),
            ("From", "+14155550199"),
            ("Body", "Your order ships today"),
            ("StatusCallback", "https://sms.throughline.example/twilio/status"),
        ];
        assert_eq!(pairs, expected.map(|(n, v)| (n.to_owned(), v.to_owned())).to_vec());
    }

    #[test]
    fn mms_media_and_whatsapp_templates() {
        let pairs = form_pairs(&build(&sms(image(Some("receipt")))));
        assert!(pairs.contains(&("MediaUrl".into(), "https://cdn.acme.example/receipt.png".into())));
        let mut whatsapp = sms(OutboundContent::WhatsappTemplate(WhatsappTemplate {
            name: "HXb5b62575e6e4ff6129ad7c8efe1f983e".into(),
            language: "en".into(),
            components: json!({"1": "12/1", "2": "3pm"}),
        }));
        whatsapp.message.channel = Channel::Whatsapp;
        let pairs = form_pairs(&build(&whatsapp));
        assert_eq!(pairs[0], ("To".into(), "whatsapp:+14155550100".into()));
        assert_eq!(pairs[1], ("From".into(), "whatsapp:+14155550199".into()));
        assert!(pairs.contains(&("ContentSid".into(), "HXb5b62575e6e4ff6129ad7c8efe1f983e".into())));
        assert!(pairs.contains(&("ContentVariables".into(), r#"{"1":"12/1","2":"3pm"}"#.into())));
        assert!(!pairs.iter().any(|(n, _)| n == "Body"));
        let OutboundContent::WhatsappTemplate(t) = &mut whatsapp.message.content else {
            panic!("the job is a template");
        };
        t.name = "order_update".into();
        assert_eq!(refusal(&whatsapp, &credentials()), "unsupported_content");
    }

    #[test]
    fn an_api_key_authenticates_in_place_of_the_account() {
        let mut credentials = credentials();
        credentials.twilio.as_mut().unwrap().api_key_sid = Some("SK0123".into());
        let request = build_request(&sms(text("hi")), &credentials, &apis(), now()).unwrap();
        assert_eq!(decoded_basic(&request), "SK0123:tw-token");
        assert!(request.url.contains("/Accounts/AC0123456789abcdef0123456789abcdef/"));
    }

    #[test]
    fn without_an_account_the_channel_is_not_configured() {
        let credentials = Credentials::default();
        assert_eq!(refusal(&sms(text("hi")), &credentials), "channel_not_configured");
    }

    #[test]
    fn answers() {
        let job = sms(text("hi"));
        let created = answer(
            201,
            json!({"sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f", "status": "queued", "direction": "outbound-api",
                   "error_code": null, "num_segments": "1"}),
        );
        assert_eq!(
            sent(interpret_response(&job, &created, now())),
            "SM1f0e8ae6ade43cb3c0ce4525424e404f"
        );
        let stopped = answer(
            400,
            json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient",
                   "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}),
        );
        let failure = failed(interpret_response(&job, &stopped, now()));
        assert_eq!(failure.provider_code, "21610");
        assert!(failure.reason.contains("STOP"), "{}", failure.reason);
        let window = answer(
            400,
            json!({"code": 63016, "message": "Failed to send freeform message because you are outside the allowed window.", "status": 400}),
        );
        assert!(
            failed(interpret_response(&job, &window, now()))
                .reason
                .contains("template")
        );
        let auth = answer(401, json!({"code": 20003, "message": "Authenticate", "status": 401}));
        assert_eq!(failed(interpret_response(&job, &auth, now())).provider_code, "20003");
        let limited = answer_with(
            429,
            &[("Retry-After", "7")],
            json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
        );
        let (wait, failure) = transient(interpret_response(&job, &limited, now()));
        assert_eq!(
            (wait, failure.provider_code.as_str()),
            (Some(Duration::seconds(7)), "20429")
        );
        let down = ProviderResponse {
            status: 503,
            headers: vec![],
            body: b"<html>Service Unavailable</html>".to_vec(),
        };
        assert_eq!(
            transient(interpret_response(&job, &down, now())).1.provider_code,
            "twilio:503"
        );
        let no_sid = answer(201, json!({"status": "queued"}));
        assert_eq!(
            failed(interpret_response(&job, &no_sid, now())).provider_code,
            "twilio:no_id"
        );
    }
}

mod meta {
    use super::*;

    fn whatsapp(content: OutboundContent) -> SendJob {
        job(
            Channel::Whatsapp,
            Provider::Meta,
            phone("+14155550199"),
            phone("+14155550100"),
            content,
        )
    }

    fn messenger(content: OutboundContent) -> SendJob {
        job(
            Channel::Messenger,
            Provider::Meta,
            platform(Platform::Messenger, None, "1234"),
            platform(Platform::Messenger, Some("1234"), "5678"),
            content,
        )
    }

    #[test]
    fn whatsapp_text_goes_to_the_numbers_id_with_its_token() {
        let mut job = whatsapp(text("Hello Ada"));
        job.message.reply_to = Some(ProviderMessageId::parse("wamid.HBgLMTQxNTU1NTAxMDA=").unwrap());
        let request = build(&job);
        assert_eq!(request.url, "http://stub/graph/v23.0/106540352242922/messages");
        assert_eq!(request.header("authorization"), Some("Bearer wa-token"));
        assert_eq!(
            json_body(&request),
            json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "14155550100",
                   "type": "text", "text": {"body": "Hello Ada", "preview_url": false},
                   "context": {"message_id": "wamid.HBgLMTQxNTU1NTAxMDA="}})
        );
    }

    #[test]
    fn whatsapp_media_by_link_and_templates() {
        let body = json_body(&build(&whatsapp(image(Some("your receipt")))));
        assert_eq!(body["type"], "image");
        assert_eq!(
            body["image"],
            json!({"link": "https://cdn.acme.example/receipt.png", "caption": "your receipt"})
        );
        let template = whatsapp(OutboundContent::WhatsappTemplate(WhatsappTemplate {
            name: "order_update".into(),
            language: "en_US".into(),
            components: json!([{"type": "body", "parameters": [{"type": "text", "text": "A-1001"}]}]),
        }));
        let body = json_body(&build(&template));
        assert_eq!(body["type"], "template");
        assert_eq!(
            body["template"],
            json!({"name": "order_update", "language": {"code": "en_US"},
                   "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-1001"}]}]})
        );
    }

    #[test]
    fn a_number_without_credentials_is_not_configured() {
        let mut job = whatsapp(text("hi"));
        job.message.from = phone("+14155550111");
        assert_eq!(refusal(&job, &credentials()), "channel_not_configured");
    }

    #[test]
    fn messenger_replies_are_responses_or_tagged_human_agent() {
        let request = build(&messenger(text("We are on it")));
        assert_eq!(request.url, "http://stub/graph/v23.0/1234/messages");
        assert_eq!(request.header("authorization"), Some("Bearer page-token"));
        assert_eq!(
            json_body(&request),
            json!({"recipient": {"id": "5678"}, "messaging_type": "RESPONSE", "message": {"text": "We are on it"}})
        );
        let mut tagged = messenger(text("Following up"));
        tagged.message.messenger_tag = Some(MessengerTag::HumanAgent);
        let body = json_body(&build(&tagged));
        assert_eq!(
            (&body["messaging_type"], &body["tag"]),
            (&json!("MESSAGE_TAG"), &json!("HUMAN_AGENT"))
        );
        let body = json_body(&build(&messenger(image(None))));
        assert_eq!(
            body["message"],
            json!({"attachment": {"type": "image", "payload": {"url": "https://cdn.acme.example/receipt.png", "is_reusable": false}}})
        );
    }

    #[test]
    fn answers() {
        let wa = whatsapp(text("hi"));
        let ok = answer(
            200,
            json!({"messaging_product": "whatsapp", "contacts": [{"input": "14155550100", "wa_id": "14155550100"}],
                   "messages": [{"id": "wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", "message_status": "accepted"}]}),
        );
        assert_eq!(
            sent(interpret_response(&wa, &ok, now())),
            "wamid.HBgLMTQxNTU1NTAxMDAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
        );
        let window = answer(
            400,
            json!({"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
                   "error_data": {"messaging_product": "whatsapp", "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                   "fbtrace_id": "AvHdu8nbqOxsgtTHEYbQkdT"}}),
        );
        let failure = failed(interpret_response(&wa, &window, now()));
        assert_eq!(failure.provider_code, "131047");
        assert!(failure.reason.contains("24-hour"));
        let limited = answer(
            400,
            json!({"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429, "fbtrace_id": "x"}}),
        );
        assert_eq!(
            transient(interpret_response(&wa, &limited, now())).1.provider_code,
            "130429"
        );
        let token = answer(
            401,
            json!({"error": {"message": "Error validating access token", "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "x"}}),
        );
        assert_eq!(failed(interpret_response(&wa, &token, now())).provider_code, "190/463");
        let down = answer(503, json!({}));
        assert_eq!(
            transient(interpret_response(&wa, &down, now())).1.provider_code,
            "meta:503"
        );

        let page = messenger(text("hi"));
        let ok = answer(
            200,
            json!({"recipient_id": "5678", "message_id": "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM"}),
        );
        assert_eq!(
            sent(interpret_response(&page, &ok, now())),
            "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM"
        );
        let outside = answer(
            400,
            json!({"error": {"message": "(#10) This message is sent outside of allowed window.", "type": "OAuthException", "code": 10, "error_subcode": 2018278, "fbtrace_id": "x"}}),
        );
        let failure = failed(interpret_response(&page, &outside, now()));
        assert_eq!(failure.provider_code, "10/2018278");
        assert!(failure.reason.contains("window"));
        let away = answer(
            400,
            json!({"error": {"message": "(#551) This person isn't available right now.", "type": "OAuthException", "code": 551, "error_subcode": 1545041, "fbtrace_id": "x"}}),
        );
        assert!(
            failed(interpret_response(&page, &away, now()))
                .reason
                .contains("not available")
        );
    }
}

mod telegram {
    use super::*;

    fn telegram(content: OutboundContent) -> SendJob {
        job(
            Channel::Telegram,
            Provider::Telegram,
            platform(Platform::Telegram, None, "acme_support_bot"),
            platform(Platform::Telegram, None, "111222333"),
            content,
        )
    }

    #[test]
    fn send_message_quotes_the_customers_message() {
        let mut job = telegram(text("On its way"));
        job.message.reply_to = Some(ProviderMessageId::parse("111222333:42").unwrap());
        let request = build(&job);
        assert_eq!(request.url, "http://stub/telegram/bot123456:bot-token/sendMessage");
        assert_eq!(
            json_body(&request),
            json!({"chat_id": "111222333", "text": "On its way",
                   "reply_parameters": {"message_id": 42, "allow_sending_without_reply": true}})
        );
        let photo = build(&telegram(image(Some("receipt"))));
        assert!(photo.url.ends_with("/sendPhoto"));
        assert_eq!(
            json_body(&photo),
            json!({"chat_id": "111222333", "photo": "https://cdn.acme.example/receipt.png", "caption": "receipt"})
        );
    }

    #[test]
    fn answers() {
        let job = telegram(text("hi"));
        let ok = answer(
            200,
            json!({"ok": true, "result": {"message_id": 43, "from": {"id": 987, "is_bot": true, "first_name": "Acme", "username": "acme_support_bot"},
                   "chat": {"id": 111222333, "first_name": "Ada", "type": "private"}, "date": 1778328000, "text": "hi"}}),
        );
        assert_eq!(sent(interpret_response(&job, &ok, now())), "111222333:43");
        let flood = answer(
            429,
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 5", "parameters": {"retry_after": 5}}),
        );
        let (wait, failure) = transient(interpret_response(&job, &flood, now()));
        assert_eq!(
            (wait, failure.provider_code.as_str()),
            (Some(Duration::seconds(5)), "telegram:429")
        );
        let blocked = answer(
            403,
            json!({"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
        );
        assert_eq!(
            failed(interpret_response(&job, &blocked, now())).reason,
            "the customer has blocked the bot"
        );
        let unknown = answer(
            400,
            json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
        );
        assert!(
            failed(interpret_response(&job, &unknown, now()))
                .reason
                .contains("never started")
        );
    }
}

mod x {
    use super::*;

    fn dm(content: OutboundContent) -> SendJob {
        job(
            Channel::X,
            Provider::X,
            platform(Platform::X, None, "9999"),
            platform(Platform::X, None, "2244994945"),
            content,
        )
    }

    #[test]
    fn a_dm_goes_to_the_one_to_one_conversation_with_the_user_token() {
        let request = build(&dm(text("Thanks for writing")));
        assert_eq!(request.url, "http://stub/x/2/dm_conversations/with/2244994945/messages");
        assert_eq!(request.header("authorization"), Some("Bearer x-token"));
        assert_eq!(json_body(&request), json!({"text": "Thanks for writing"}));
        assert_eq!(refusal(&dm(image(Some("x"))), &credentials()), "unsupported_content");
    }

    #[test]
    fn answers() {
        let job = dm(text("hi"));
        let ok = answer(
            201,
            json!({"data": {"dm_conversation_id": "9999-2244994945", "dm_event_id": "1582838223456789012"}}),
        );
        assert_eq!(sent(interpret_response(&job, &ok, now())), "1582838223456789012");
        let reset = (now() + Duration::seconds(90)).timestamp().to_string();
        let limited = answer_with(
            429,
            &[("x-rate-limit-reset", &reset)],
            json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}),
        );
        assert_eq!(
            transient(interpret_response(&job, &limited, now())).0,
            Some(Duration::seconds(90))
        );
        let forbidden = answer(
            403,
            json!({"detail": "You are not permitted to create a Direct Message with this user.", "title": "Forbidden", "type": "about:blank", "status": 403}),
        );
        assert_eq!(
            failed(interpret_response(&job, &forbidden, now())).provider_code,
            "x:403"
        );
    }
}

mod mailgun {
    use super::*;

    fn mail() -> SendJob {
        let mut job = job(
            Channel::Email,
            Provider::Mailgun,
            email("support@mg.acme.example"),
            email("ada@example.com"),
            text("Your refund is on its way."),
        );
        job.message.email = Some(EmailThreading {
            subject: Some("Re: Refund".into()),
            in_reply_to: Some("<CAF=ada-1@mail.example.com>".into()),
            references: vec![
                "<CAF=ada-0@mail.example.com>".into(),
                "<CAF=ada-1@mail.example.com>".into(),
            ],
        });
        job
    }

    #[test]
    fn a_reply_is_a_multipart_post_to_the_mailbox_domain_with_thread_headers() {
        let request = build(&mail());
        assert_eq!(request.url, "http://stub/mailgun/v3/mg.acme.example/messages");
        assert_eq!(decoded_basic(&request), "api:mg-key");
        let content_type = request.header("content-type").unwrap();
        let boundary = content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
        let body = String::from_utf8(request.body.clone()).unwrap();
        for (name, value) in [
            ("from", "support@mg.acme.example"),
            ("to", "ada@example.com"),
            ("subject", "Re: Refund"),
            ("text", "Your refund is on its way."),
            ("h:In-Reply-To", "<CAF=ada-1@mail.example.com>"),
            (
                "h:References",
                "<CAF=ada-0@mail.example.com> <CAF=ada-1@mail.example.com>",
            ),
        ] {
            let part = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n");
            assert!(body.contains(&part), "{name}");
        }
        assert!(body.ends_with(&format!("--{boundary}--\r\n")));
    }

    #[test]
    fn a_mailbox_outside_the_accounts_domains_is_not_configured() {
        let mut job = mail();
        job.message.from = email("support@acme.example");
        assert_eq!(refusal(&job, &credentials()), "channel_not_configured");
    }

    #[test]
    fn answers() {
        let job = mail();
        let ok = answer(
            200,
            json!({"id": "<20260509120000.1.ABCDEF@mg.acme.example>", "message": "Queued. Thank you."}),
        );
        assert_eq!(
            sent(interpret_response(&job, &ok, now())),
            "20260509120000.1.ABCDEF@mg.acme.example"
        );
        let bad = answer(
            400,
            json!({"message": "to parameter is not a valid address. please check documentation"}),
        );
        assert_eq!(
            failed(interpret_response(&job, &bad, now())).provider_code,
            "mailgun:400"
        );
        let forbidden = ProviderResponse {
            status: 401,
            headers: vec![],
            body: b"Forbidden".to_vec(),
        };
        assert!(
            failed(interpret_response(&job, &forbidden, now()))
                .reason
                .contains("API key")
        );
        let (_, failure) = transient(interpret_response(&job, &answer(502, json!({})), now()));
        assert_eq!(failure.provider_code, "mailgun:502");
    }
}

mod webchat {
    use super::*;

    fn chat() -> SendJob {
        job(
            Channel::Chat,
            Provider::WebChat,
            platform(Platform::WebChat, None, "acme-web"),
            platform(Platform::WebChatUser, Some("acme-web"), "user-42"),
            text("An agent is here"),
        )
    }

    #[test]
    fn a_delivery_is_signed_as_the_chat_webhook_verifies() {
        let job = chat();
        let request = build(&job);
        assert_eq!(request.url, "https://backend.acme.example/agent-messages");
        assert_eq!(request.header("x-throughline-site"), Some("acme-web"));
        let timestamp = request.header("x-throughline-timestamp").unwrap();
        assert_eq!(timestamp, now().timestamp().to_string());
        // The site verifies with the scheme it signs its own deliveries with.
        assert_eq!(
            request.header("x-throughline-signature").unwrap(),
            throughline_chat::widget::sign("chat-secret", timestamp, &request.body)
        );
        let body = json_body(&request);
        assert_eq!(body["message_id"], job.interaction_id.as_str());
        assert_eq!(body["to"], json!({"user_id": "user-42"}));
        assert_eq!(body["text"], "An agent is here");
        assert!(body.get("survey_id").is_none(), "a reply is no survey");
        // A survey names itself, for the widget's own rating control.
        let mut survey = chat();
        survey.message.survey = Some("sv_0a1b".into());
        assert_eq!(json_body(&build(&survey))["survey_id"], "sv_0a1b");
    }

    #[test]
    fn answers() {
        let job = chat();
        assert_eq!(
            sent(interpret_response(&job, &answer(202, json!({})), now())),
            job.interaction_id.as_str()
        );
        assert_eq!(
            sent(interpret_response(&job, &answer(200, json!({"id": "msg-77"})), now())),
            "msg-77"
        );
        assert_eq!(
            failed(interpret_response(&job, &answer(404, json!({})), now())).provider_code,
            "web_chat:404"
        );
        assert!(matches!(
            interpret_response(&job, &answer(500, json!({})), now()),
            SendOutcome::Transient { .. }
        ));
    }
}

mod ses {
    use super::*;
    use crate::providers::ses::{SesAnswer, interpret};

    fn reply(from: &str) -> SendJob {
        let mut job = job(
            Channel::Email,
            Provider::Ses,
            email(from),
            email("ada@example.com"),
            text("It ships today."),
        );
        job.message.email = Some(EmailThreading {
            subject: Some("Re: Order A-1001".into()),
            in_reply_to: Some("<ada-2@mail.example.com>".into()),
            references: vec!["<ada-1@mail.example.com>".into(), "<ada-2@mail.example.com>".into()],
        });
        job
    }

    fn prepared(job: &SendJob) -> crate::SesEmail {
        match prepare(job, &credentials(), &apis(), now()).unwrap() {
            Prepared::Ses(email) => email,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_reply_is_one_raw_mime_message_in_the_customers_thread() {
        let email = prepared(&reply("support@acme.example"));
        assert_eq!(
            (email.from.as_str(), email.to.as_str()),
            ("support@acme.example", "ada@example.com")
        );
        let raw = String::from_utf8(email.raw.clone()).unwrap();
        for header in [
            "From: <support@acme.example>",
            "To: <ada@example.com>",
            "Subject: Re: Order A-1001",
            "In-Reply-To: <ada-2@mail.example.com>",
            "References: <ada-1@mail.example.com> <ada-2@mail.example.com>",
        ] {
            assert!(raw.contains(header), "{header} missing:\n{raw}");
        }
        assert!(raw.contains("It ships today."), "{raw}");
        // The same message read back by the parser the inbound side uses.
        let parsed = mail_parser::MessageParser::default().parse(&email.raw).unwrap();
        assert_eq!(parsed.subject(), Some("Re: Order A-1001"));
        assert_eq!(parsed.body_text(0).as_deref().map(str::trim), Some("It ships today."));
        // Neither the addresses nor the text in Debug.
        let debug = format!("{email:?}");
        assert!(
            !debug.contains("ada@example.com") && !debug.contains("ships"),
            "{debug}"
        );
        // An address identity, outside any listed domain, sends too.
        assert_eq!(prepared(&reply("billing@other.example")).from, "billing@other.example");
    }

    #[test]
    fn only_listed_identities_send_and_only_text() {
        assert_eq!(
            refusal(&reply("support@elsewhere.example"), &credentials()),
            "channel_not_configured"
        );
        let mut none = credentials();
        none.ses = None;
        assert_eq!(refusal(&reply("support@acme.example"), &none), "channel_not_configured");
        let mut with_file = reply("support@acme.example");
        with_file.message.content = image(None);
        assert_eq!(refusal(&with_file, &credentials()), "unsupported_content");
    }

    #[test]
    fn ses_answers_mean_what_ses_documents() {
        let accepted = SesAnswer::Accepted {
            message_id: "010f019a-5e2b".into(),
        };
        assert_eq!(
            sent(interpret(&accepted, "eu-west-1")),
            "010f019a-5e2b@eu-west-1.amazonses.com"
        );
        let refused = |code: &str, status| SesAnswer::Refused {
            code: code.into(),
            status,
        };
        assert_eq!(
            failed(interpret(&refused("MessageRejected", 400), "eu-west-1")).provider_code,
            "MessageRejected"
        );
        assert_eq!(
            failed(interpret(
                &refused("MailFromDomainNotVerifiedException", 400),
                "eu-west-1"
            ))
            .provider_code,
            "MailFromDomainNotVerifiedException"
        );
        transient(interpret(&refused("TooManyRequestsException", 429), "eu-west-1"));
        transient(interpret(&refused("InternalFailure", 500), "eu-west-1"));
        transient(interpret(&SesAnswer::NotSent("no connection".into()), "eu-west-1"));
        assert!(matches!(
            interpret(&SesAnswer::NoAnswer("timeout".into()), "eu-west-1"),
            SendOutcome::Unknown { .. }
        ));
    }
}

#[test]
fn a_credentials_document_with_an_unknown_field_is_refused_without_its_values() {
    let error = Credentials::from_document(&Secret::new(r#"{"twilo": {"auth_token": "s3cret"}}"#)).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("twilo"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    let error = Credentials::from_document(&Secret::new("{not json"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("not JSON"), "{error}");
}

#[test]
fn debug_output_never_shows_a_credential_or_the_text() {
    let request = build(&job(
        Channel::Sms,
        Provider::Twilio,
        phone("+14155550199"),
        phone("+14155550100"),
        text("secret plans"),
    ));
    let response = answer(201, json!({"sid": "SM1", "to": "+14155550100", "body": "secret plans"}));
    let shown = format!("{request:?} {:?} {response:?}", credentials());
    for hidden in [
        "tw-token",
        "secret plans",
        "wa-token",
        "page-token",
        "bot-token",
        "mg-key",
        "chat-secret",
    ] {
        assert!(!shown.contains(hidden), "{hidden} in {shown}");
    }
}

#[test]
fn reconciliation_reads_twilios_record_of_a_message_and_the_messages_between_two_numbers() {
    let sid = ProviderMessageId::parse("SM0123456789abcdef0123456789abcdef").unwrap();
    let fetch = crate::providers::twilio::fetch(&sid, &credentials(), &apis()).unwrap();
    assert_eq!(fetch.method, http::Method::GET);
    assert_eq!(
        fetch.url,
        "http://stub/twilio/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SM0123456789abcdef0123456789abcdef.json"
    );
    assert!(fetch.body.is_empty());
    let record = |status: &str, code: Value| {
        answer(
            200,
            json!({"sid": sid.as_str(), "status": status, "error_code": code,
                   "date_updated": "Wed, 25 Nov 2026 10:00:00 +0000"}),
        )
    };
    let undelivered = crate::providers::twilio::interpret_fetch(&record("undelivered", json!(30003)))
        .unwrap()
        .unwrap();
    assert_eq!(undelivered.status, DeliveryStatus::Undelivered);
    assert_eq!(undelivered.at.to_rfc3339(), "2026-11-25T10:00:00+00:00");
    assert_eq!(undelivered.error.unwrap().code, "30003");
    let delivered = crate::providers::twilio::interpret_fetch(&record("delivered", Value::Null))
        .unwrap()
        .unwrap();
    assert_eq!((delivered.status, delivered.error), (DeliveryStatus::Delivered, None));
    assert_eq!(
        crate::providers::twilio::interpret_fetch(&record("sending", Value::Null)).unwrap(),
        None
    );
    assert!(crate::providers::twilio::interpret_fetch(&answer(404, json!({"code": 20404}))).is_err());

    let sms = sample_send_job(
        Channel::Whatsapp,
        Provider::Twilio,
        Handle::Phone {
            number: E164::parse("+14155550199").unwrap(),
        },
        Handle::Phone {
            number: E164::parse("+14155550100").unwrap(),
        },
    );
    let list = crate::providers::twilio::list(&sms.message, &credentials(), &apis()).unwrap();
    assert!(
        list.url
            .ends_with("/Messages.json?To=whatsapp%3A%2B14155550100&From=whatsapp%3A%2B14155550199&PageSize=50"),
        "{}",
        list.url
    );
    let page = crate::providers::twilio::interpret_list(&answer(
        200,
        json!({"messages": [{"sid": sid.as_str(), "body": "Hi", "date_created": "Wed, 25 Nov 2026 09:59:58 +0000"},
                            {"sid": "not a sid"}]}),
    ))
    .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(
        (page[0].sid.as_str(), page[0].body.as_deref()),
        (sid.as_str(), Some("Hi"))
    );
}
