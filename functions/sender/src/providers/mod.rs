//! One request builder and one response interpreter per provider, all pure: what a send job
//! becomes on the wire, and what the provider's answer means.

mod mailgun;
mod meta;
pub mod ses;
mod telegram;
pub(crate) mod twilio;
mod webchat;
mod x;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use throughline_model::{Channel, Handle, Platform, Provider, SendJob, SendRefusal, check_content};

use crate::{Credentials, ProviderApis, ProviderRequest, ProviderResponse, SendOutcome};

/// What sending `job` takes: one HTTPS request to its provider, or one SES raw send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// A provider's HTTP API.
    Http(ProviderRequest),
    /// SES v2 `SendEmail` (through the SDK, signed by the function's role).
    Ses(ses::SesEmail),
}

/// What sending `job` takes, or why it cannot be sent (the same refusals the API gives before
/// queueing, which runs this dry: the credentials may have changed since).
pub fn prepare(
    job: &SendJob,
    credentials: &Credentials,
    apis: &ProviderApis,
    now: DateTime<Utc>,
) -> Result<Prepared, SendRefusal> {
    let message = &job.message;
    if (message.provider, message.channel) == (Provider::Ses, Channel::Email) {
        check_content(message.channel, message.provider, &message.content)?;
        return ses::build(&job.interaction_id, message, credentials, now).map(Prepared::Ses);
    }
    build_request(job, credentials, apis, now).map(Prepared::Http)
}

/// The one request `job` makes to its provider's HTTP API, or why it cannot be sent.
pub fn build_request(
    job: &SendJob,
    credentials: &Credentials,
    apis: &ProviderApis,
    now: DateTime<Utc>,
) -> Result<ProviderRequest, SendRefusal> {
    let message = &job.message;
    check_content(message.channel, message.provider, &message.content)?;
    match (message.provider, message.channel) {
        (Provider::Twilio, Channel::Sms | Channel::Whatsapp) => twilio::build(message, credentials, apis),
        (Provider::Meta, Channel::Whatsapp) => meta::build_whatsapp(message, credentials, apis),
        (Provider::Meta, Channel::Messenger | Channel::Instagram) => meta::build_page(message, credentials, apis),
        (Provider::Telegram, Channel::Telegram) => telegram::build(message, credentials, apis),
        (Provider::X, Channel::X) => x::build(message, credentials, apis),
        (Provider::Mailgun, Channel::Email) => mailgun::build(message, credentials, apis),
        (Provider::WebChat, Channel::Chat) => webchat::build(job, credentials, now),
        // SES is sent through its SDK (`prepare`); other pairs never receive.
        _ => Err(SendRefusal::ChannelNotConfigured(message.channel)),
    }
}

/// What `response` to `job`'s request means. `now` turns X's reset time into a wait.
pub fn interpret_response(job: &SendJob, response: &ProviderResponse, now: DateTime<Utc>) -> SendOutcome {
    let message = &job.message;
    match message.provider {
        Provider::Twilio => twilio::interpret(response),
        Provider::Meta => meta::interpret(message.channel, response),
        Provider::Telegram => telegram::interpret(response),
        Provider::X => x::interpret(response, now),
        Provider::Mailgun => mailgun::interpret(response),
        _ => webchat::interpret(job, response),
    }
}

/// A phone number or short code as providers write it (`+14155550100`, `12345`).
fn phone(handle: &Handle) -> Option<&str> {
    match handle {
        Handle::Phone { number } => Some(number.as_str()),
        Handle::ShortCode { code } => Some(code.as_str()),
        _ => None,
    }
}

/// The id of a platform handle on `platforms`, and its scope.
fn platform_id<'a>(handle: &'a Handle, platforms: &[Platform]) -> Option<(&'a str, Option<&'a str>)> {
    match handle {
        Handle::Platform { platform, scope, id } if platforms.contains(platform) => {
            Some((id.as_str(), scope.as_ref().map(|s| s.as_str())))
        }
        _ => None,
    }
}

/// A mail's mailbox and recipient, and the mailbox's domain: what both mail providers check
/// against their configured domains or identities.
fn mail_addresses(
    message: &throughline_model::OutboundMessage,
) -> Result<(&throughline_model::EmailAddress, &throughline_model::EmailAddress, &str), SendRefusal> {
    let (Handle::Email { address: from }, Handle::Email { address: to }) = (&message.from, &message.to) else {
        return Err(wrong_handle("email goes from a mailbox to an address"));
    };
    let domain = from.as_str().rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    Ok((from, to, domain))
}

/// The refusal for a handle that is not what the channel sends to.
fn wrong_handle(what: &'static str) -> SendRefusal {
    SendRefusal::UnsupportedContent(what)
}

/// The part of a generic answer every provider shares: 429 and 5xx are worth another try.
fn transient_status(provider: &str, response: &ProviderResponse) -> Option<SendOutcome> {
    match response.status {
        429 => Some(SendOutcome::transient(
            response.retry_after(),
            format!("{provider}:429"),
            format!("{provider} is rate limiting this sender; the message will be tried again"),
        )),
        500..=599 => Some(SendOutcome::transient(
            response.retry_after(),
            format!("{provider}:{}", response.status),
            format!("{provider} was unavailable; the message will be tried again"),
        )),
        _ => None,
    }
}
