//! The secrets the sample events are signed with, and the configuration documents that hold
//! them: the local stack puts these in its SSM, the tests configure functions with them, and
//! `cargo xtask sign` signs the events with them.

/// The Twilio auth token of the events in `events/sms/`.
pub const TEST_TWILIO_AUTH_TOKEN: &str = "throughline-test-auth-token";
/// The X consumer secret of the events in `events/x/`.
pub const TEST_X_CONSUMER_SECRET: &str = "throughline-test-consumer-secret";
/// The chat site of the events in `events/chat/`.
pub const TEST_CHAT_SITE: &str = "acme-web";
/// The chat site's current webhook secret.
pub const TEST_CHAT_SECRET: &str = "throughline-test-chat-secret";
/// The chat site's previous webhook secret, still accepted while secrets rotate.
pub const TEST_CHAT_PREVIOUS_SECRET: &str = "throughline-test-chat-secret-2025";
/// The secret the chat site's backend signs identity tokens with.
pub const TEST_CHAT_IDENTITY_SECRET: &str = "throughline-test-identity-secret";
/// The Telegram bot of the Telegram events in `events/chat/`.
pub const TEST_TELEGRAM_BOT: &str = "acme_support_bot";
/// That bot's webhook `secret_token`.
pub const TEST_TELEGRAM_SECRET_TOKEN: &str = "throughline-test-telegram-token";
/// The Meta app secret of the events in `events/facebook/`.
pub const TEST_META_APP_SECRET: &str = "throughline-test-meta-app-secret";
/// The verify token of Meta's subscription handshake in `events/facebook/`.
pub const TEST_META_VERIFY_TOKEN: &str = "throughline-test-verify-token";
/// The Mailgun webhook signing key of the Mailgun events in `events/email/`.
pub const TEST_MAILGUN_SIGNING_KEY: &str = "throughline-test-mailgun-key";
/// Keys the local stack's `SUPPRESSED#` items (deployed: a random secret in SSM).
pub const TEST_SUPPRESSION_KEY: &str = "throughline-test-suppression-key";

/// The `META_SECRETS` document for the sample events.
pub fn test_meta_secrets() -> String {
    serde_json::json!({ "app_secrets": [TEST_META_APP_SECRET], "verify_token": TEST_META_VERIFY_TOKEN }).to_string()
}

/// The `CHAT_SECRETS` document for the sample events.
pub fn test_chat_secrets() -> String {
    serde_json::json!({
        "sites": { TEST_CHAT_SITE: {
            "webhook_secrets": [TEST_CHAT_SECRET, TEST_CHAT_PREVIOUS_SECRET],
            "identity_secrets": [TEST_CHAT_IDENTITY_SECRET]
        }},
        "telegram_bots": { TEST_TELEGRAM_BOT: TEST_TELEGRAM_SECRET_TOKEN }
    })
    .to_string()
}

/// The Twilio account the sender's tests send from.
pub const TEST_TWILIO_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// The WhatsApp Cloud API number of the events in `events/facebook/` (display number, id).
pub const TEST_WHATSAPP_NUMBER: (&str, &str) = ("+15550783881", "106540352242922");
/// The Facebook page and the Instagram account of the events in `events/facebook/`.
pub const TEST_META_PAGES: [&str; 2] = ["1060000000000001", "17841400000000001"];
/// The X account of the events in `events/x/`.
pub const TEST_X_ACCOUNT: &str = "3001000000000000001";
/// The SES domain of the sample mail in `events/email/` (`support@acme.example`), verified in
/// the local stack's SES.
pub const TEST_SES_DOMAIN: &str = "acme.example";
/// The Mailgun sending domain of the tests.
pub const TEST_MAILGUN_DOMAIN: &str = "mg.acme.example";

/// The `SEND_CREDENTIALS` document of the tests, every provider's API and the chat site's
/// backend at `stub` (the provider stub's base URL). Its tokens are what the stub accepts.
pub fn test_send_credentials(stub: &str) -> String {
    let token = |name: &str| format!("throughline-test-{name}-token");
    serde_json::json!({
        "twilio": {"account_sid": TEST_TWILIO_ACCOUNT_SID, "auth_token": TEST_TWILIO_AUTH_TOKEN,
                   "status_callback": "https://sms.throughline.example/twilio/status"},
        "whatsapp_cloud": {TEST_WHATSAPP_NUMBER.0: {"phone_number_id": TEST_WHATSAPP_NUMBER.1, "access_token": token("whatsapp")}},
        "meta_pages": {TEST_META_PAGES[0]: {"access_token": token("page")}, TEST_META_PAGES[1]: {"access_token": token("instagram")}},
        "telegram": {TEST_TELEGRAM_BOT: {"token": "7000000001:throughline-test-bot-token"}},
        "x": {TEST_X_ACCOUNT: {"access_token": token("x")}},
        "mailgun": {"api_key": token("mailgun"), "domains": [TEST_MAILGUN_DOMAIN]},
        "ses": {"identities": [TEST_SES_DOMAIN]},
        "web_chat": {TEST_CHAT_SITE: {"outbound_url": format!("{}/chat/agent-messages", stub.trim_end_matches('/')),
                                      "secret": TEST_CHAT_SECRET}}
    })
    .to_string()
}

/// The reasons-for-contact taxonomy of the tests and the demo: the example the README gives
/// companies (`infra/reasons-taxonomy.example.json`).
pub fn test_reasons_taxonomy() -> &'static str {
    include_str!("../../../infra/reasons-taxonomy.example.json")
}

/// The survey settings of the tests and the demo: the example the README gives companies
/// (`infra/surveys.example.json`).
pub fn test_surveys() -> &'static str {
    include_str!("../../../infra/surveys.example.json")
}

/// The segment definitions of the tests and the demo: the example the README gives companies
/// (`infra/segments.example.json`).
pub fn test_segments() -> &'static str {
    include_str!("../../../infra/segments.example.json")
}

/// The key the tests' rating-page links are signed with.
pub const TEST_FEEDBACK_KEY: &str = "throughline-test-feedback-key";
