//! The one shape of a call to a provider and of its answer, whatever the provider.

use chrono::{DateTime, Duration, Utc};
use throughline_model::ProviderMessageId;

/// An HTTP request to a provider's send API, ready to go (always a `POST`).
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    /// `POST` for a send; `GET` to read a message back (reconciliation).
    pub method: http::Method,
    /// The whole URL. Telegram's carries the bot token: never log it.
    pub url: String,
    /// The headers, credentials included.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ProviderRequest {
    // Credentials and message text stay out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRequest")
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl ProviderRequest {
    /// The value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// The value of header `name` in `headers` (ASCII case-insensitive).
fn find_header<'a, N: AsRef<str>>(headers: &'a [(N, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What the provider answered.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers the interpreters read (`Retry-After`, `x-rate-limit-reset`), lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ProviderResponse {
    // Providers echo the recipient and the text back (Twilio's `to` and `body`): not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderResponse")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl ProviderResponse {
    /// The value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as JSON, if it is.
    pub(crate) fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `Retry-After` in seconds (the HTTP-date form is not used by these providers).
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|s| *s >= 0)
            .map(Duration::seconds)
    }
}

/// Why a provider did not take a message, as the agent reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFailure {
    /// The provider's own code (`21610`, `131047`, `telegram:403`), for support and the docs.
    pub provider_code: String,
    /// What happened, in words an agent understands.
    pub reason: String,
}

impl ProviderFailure {
    pub(crate) fn new(provider_code: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            provider_code: provider_code.into(),
            reason: reason.into(),
        }
    }
}

/// What one call to the provider came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The provider took it and gave it this id (an email's Message-ID without angle brackets).
    Sent {
        /// The provider's id for the message: its echo and its status events carry it.
        provider_message_id: ProviderMessageId,
    },
    /// The provider refused it for good: sending it again would fail again.
    Failed(ProviderFailure),
    /// The provider could not take it now (5xx, rate limited): try again, not before
    /// `retry_after` when it says.
    Transient {
        /// The wait the provider asked for, if it did.
        retry_after: Option<Duration>,
        /// What it said.
        failure: ProviderFailure,
    },
    /// The request may have reached the provider, but no answer came: it may have been sent.
    /// Never sent again by itself; an agent decides (retry).
    Unknown {
        /// What happened.
        reason: String,
    },
}

impl SendOutcome {
    /// A 429 or 5xx: transient, with the provider's code and our words.
    pub(crate) fn transient(retry_after: Option<Duration>, code: impl Into<String>, reason: impl Into<String>) -> Self {
        SendOutcome::Transient {
            retry_after,
            failure: ProviderFailure::new(code, reason),
        }
    }

    pub(crate) fn failed(code: impl Into<String>, reason: impl Into<String>) -> Self {
        SendOutcome::Failed(ProviderFailure::new(code, reason))
    }

    /// `Sent` with `id`, or `Failed` if the provider answered success without a usable id.
    pub(crate) fn sent_with(provider: &str, id: Option<&str>) -> Self {
        match id.map(ProviderMessageId::parse) {
            Some(Ok(provider_message_id)) => SendOutcome::Sent { provider_message_id },
            _ => SendOutcome::failed(
                format!("{provider}:no_id"),
                format!("{provider} accepted the request but returned no message id"),
            ),
        }
    }
}

/// Seconds until the epoch time `reset` (X's `x-rate-limit-reset`), never negative.
pub(crate) fn until(reset: i64, now: DateTime<Utc>) -> Duration {
    Duration::seconds((reset - now.timestamp()).max(0))
}

/// `Authorization: Basic base64(user:password)`.
pub(crate) fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// An `application/x-www-form-urlencoded` body.
pub(crate) fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        body.append_pair(name, value);
    }
    body.finish().into_bytes()
}

/// A `multipart/form-data` body of text fields, and its boundary. The boundary is derived from
/// the content, which it then cannot appear in.
pub(crate) fn multipart(pairs: &[(&str, &str)]) -> (String, Vec<u8>) {
    let mut boundary = String::from("throughline-boundary");
    while pairs
        .iter()
        .any(|(n, v)| n.contains(&boundary) || v.contains(&boundary))
    {
        boundary.push('x');
    }
    let mut body = String::new();
    for (name, value) in pairs {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (boundary, body.into_bytes())
}
