//! One reply per channel, from the sample events' business endpoints (the ones
//! `secrets::test_send_credentials` can send from) to a sample customer: what the sender's
//! tests and benches send.

use throughline_model::*;

use crate::SAMPLE_BUSINESS_NUMBER;
use crate::secrets::*;

fn platform(platform: Platform, scope: Option<&str>, id: &str) -> Handle {
    Handle::Platform {
        platform,
        scope: scope.map(|s| PlatformUserId::parse(s).expect("a sample id")),
        id: PlatformUserId::parse(id).expect("a sample id"),
    }
}

fn phone(number: &str) -> Handle {
    Handle::Phone {
        number: E164::parse(number).expect("a sample number"),
    }
}

fn email(address: &str) -> Handle {
    Handle::Email {
        address: EmailAddress::parse(address).expect("a sample address"),
    }
}

/// A text reply `from` → `to`, attempt 1 (email with the sample thread's headers).
pub fn sample_send_job(channel: Channel, provider: Provider, from: Handle, to: Handle) -> SendJob {
    SendJob {
        schema_version: SEND_JOB_VERSION,
        interaction_id: InteractionId::try_from(format!("ix_{}", "cd".repeat(16))).expect("a valid id"),
        customer_id: CustomerId::generate(),
        attempt: 1,
        message: OutboundMessage {
            channel,
            provider,
            from,
            to,
            content: OutboundContent::Message {
                text: Some("Your order ships today".into()),
                attachments: vec![],
            },
            reply_to: None,
            email: (channel == Channel::Email).then(|| EmailThreading {
                subject: Some("Re: Order A-1001".into()),
                in_reply_to: Some("<ada-1@mail.example.com>".into()),
                references: vec!["<ada-1@mail.example.com>".into()],
            }),
            messenger_tag: None,
            survey: None,
        },
    }
}

/// One text reply per channel and provider, with the provider stub's prefix for its API
/// (`twilio`, `graph`, `telegram`, `x`, `mailgun`, `chat`): Twilio SMS and WhatsApp, WhatsApp
/// Cloud, Messenger, Instagram, Telegram, X, Mailgun, web chat.
pub fn sample_send_jobs() -> Vec<(&'static str, SendJob)> {
    let sms = || {
        sample_send_job(
            Channel::Sms,
            Provider::Twilio,
            phone(SAMPLE_BUSINESS_NUMBER),
            phone("+14155550100"),
        )
    };
    let mut twilio_whatsapp = sms();
    twilio_whatsapp.message.channel = Channel::Whatsapp;
    vec![
        ("twilio", sms()),
        ("twilio", twilio_whatsapp),
        (
            "graph",
            sample_send_job(
                Channel::Whatsapp,
                Provider::Meta,
                phone(TEST_WHATSAPP_NUMBER.0),
                phone("+14155550100"),
            ),
        ),
        (
            "graph",
            sample_send_job(
                Channel::Messenger,
                Provider::Meta,
                platform(Platform::Messenger, None, TEST_META_PAGES[0]),
                platform(Platform::Messenger, Some(TEST_META_PAGES[0]), "6010000000000042"),
            ),
        ),
        (
            "graph",
            sample_send_job(
                Channel::Instagram,
                Provider::Meta,
                platform(Platform::Instagram, None, TEST_META_PAGES[1]),
                platform(Platform::Instagram, Some(TEST_META_PAGES[1]), "1784000000000777"),
            ),
        ),
        (
            "telegram",
            sample_send_job(
                Channel::Telegram,
                Provider::Telegram,
                platform(Platform::Telegram, None, TEST_TELEGRAM_BOT),
                platform(Platform::Telegram, None, "111222333"),
            ),
        ),
        (
            "x",
            sample_send_job(
                Channel::X,
                Provider::X,
                platform(Platform::X, None, TEST_X_ACCOUNT),
                platform(Platform::X, None, "2244994945"),
            ),
        ),
        (
            "mailgun",
            sample_send_job(
                Channel::Email,
                Provider::Mailgun,
                email(&format!("support@{TEST_MAILGUN_DOMAIN}")),
                email("ada@example.com"),
            ),
        ),
        (
            "chat",
            sample_send_job(
                Channel::Chat,
                Provider::WebChat,
                platform(Platform::WebChat, None, TEST_CHAT_SITE),
                platform(Platform::WebChatUser, Some(TEST_CHAT_SITE), "user-42"),
            ),
        ),
    ]
}

/// Twilio's error body, as its API answers a refused request (`code`, `message`, `more_info`,
/// `status`): what the tests script the provider stub to answer.
pub fn twilio_error(code: u32, message: &str, status: u16) -> serde_json::Value {
    serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

/// Twilio's 503 (`20500`, internal error).
pub fn twilio_outage() -> serde_json::Value {
    twilio_error(20500, "Internal Server Error", 503)
}

/// Twilio's 400 for a number that texted STOP (`21610`).
pub fn twilio_unsubscribed() -> serde_json::Value {
    twilio_error(21610, "Attempt to send to unsubscribed recipient", 400)
}
