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
