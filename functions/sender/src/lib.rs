//! The sender: turns a send job into at most one call to its provider's send API per attempt.
//!
//! The core is pure. Per provider, a request builder (`SendJob` + credentials → `ProviderRequest`)
//! and a response interpreter (`ProviderResponse` → `SendOutcome`), in `providers`; the
//! credentials document in `credentials`; what an outcome makes of the attempt (`settlement`).
//! The shell (`handle`, over an OutboundQueue batch) claims each attempt on the reply's marker,
//! makes the one HTTP call, and records the outcome on the timeline entry. `reconcile` is the
//! daily function that asks Twilio what became of replies its callbacks said nothing more of.

pub mod credentials;
pub mod http;
pub mod providers;
pub mod reconcile;
pub mod request;

pub use credentials::{Credentials, ProviderApis};
pub use http::{CallResult, ProviderClient};
pub use providers::ses::{SesAnswer, SesEmail};
pub use providers::{Prepared, build_request, interpret_response, prepare};
pub use request::{ProviderFailure, ProviderRequest, ProviderResponse, SendOutcome};

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use throughline_edge::{ConfigError, config};
use throughline_model::{AttemptOutcome, DeliveryError, SendJob, SendRefusal};
use throughline_store::{Claim, SendResult, TimelineStore};

/// How the sender reaches providers: the one HTTPS client, and SES through the SDK (with no
/// retries of its own: a send is not idempotent, so a retry is a new delivery of the job, after
/// the claim).
#[derive(Debug, Clone)]
pub struct Transports {
    pub http: ProviderClient,
    pub ses: aws_sdk_sesv2::Client,
    /// SES's region, which names the Message-ID it gives a message.
    pub ses_region: String,
}

impl Transports {
    /// The HTTPS client with `timeout`, and an SES client of `aws` that never retries by itself
    /// and gives up after `timeout`.
    pub fn new(aws: &aws_config::SdkConfig, timeout: Duration) -> Result<Self, std::io::Error> {
        let ses_config = aws_sdk_sesv2::config::Builder::from(aws)
            .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_sesv2::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(timeout / 3)
                    .operation_timeout(timeout)
                    .build(),
            )
            .build();
        Ok(Self {
            http: ProviderClient::new(timeout)?,
            ses: aws_sdk_sesv2::Client::from_conf(ses_config),
            ses_region: aws.region().map_or_else(|| "us-east-1".to_owned(), |r| r.to_string()),
        })
    }
}

/// One attempt at `job`: prepared, the one call made, the answer read. Refused before any call
/// when the job cannot be sent (the credentials changed since it was queued).
pub async fn send_once(
    transports: &Transports,
    job: &SendJob,
    credentials: &Credentials,
    apis: &ProviderApis,
    now: DateTime<Utc>,
) -> Result<SendOutcome, SendRefusal> {
    let request = match prepare(job, credentials, apis, now)? {
        Prepared::Http(request) => request,
        Prepared::Ses(email) => {
            let answer = send_ses(&transports.ses, &email).await;
            return Ok(providers::ses::interpret(&answer, &transports.ses_region));
        }
    };
    Ok(match transports.http.call(&request).await {
        CallResult::Answered(response) => interpret_response(job, &response, now),
        CallResult::NotSent(why) => {
            SendOutcome::transient(None, "network", format!("{why}; the message will be tried again"))
        }
        CallResult::Unknown(why) => SendOutcome::Unknown {
            reason: format!("{why}: the provider may have sent it, so it is not sent again by itself"),
        },
    })
}

/// The one SES call, its result as an `SesAnswer`.
async fn send_ses(ses: &aws_sdk_sesv2::Client, email: &SesEmail) -> SesAnswer {
    use aws_sdk_sesv2::error::SdkError;
    use aws_sdk_sesv2::primitives::Blob;
    use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
    let raw = match RawMessage::builder().data(Blob::new(email.raw.clone())).build() {
        Ok(raw) => raw,
        Err(e) => return SesAnswer::NotSent(format!("the request could not be built: {e}")),
    };
    let result = ses
        .send_email()
        .from_email_address(&email.from)
        .destination(Destination::builder().to_addresses(&email.to).build())
        .content(EmailContent::builder().raw(raw).build())
        .set_configuration_set_name(email.configuration_set.clone())
        .send()
        .await;
    match result {
        Ok(output) => match output.message_id {
            Some(message_id) => SesAnswer::Accepted { message_id },
            None => SesAnswer::NoAnswer("SES answered without a message id".into()),
        },
        Err(SdkError::ServiceError(e)) => {
            use aws_sdk_sesv2::error::ProvideErrorMetadata as _;
            SesAnswer::Refused {
                code: e.err().code().unwrap_or("Unknown").to_owned(),
                status: e.raw().status().as_u16(),
            }
        }
        Err(SdkError::ConstructionFailure(_)) => SesAnswer::NotSent("the request could not be built".into()),
        // The SDK does not say whether a failed dispatch reached SES (a reset connection may
        // have): unknown, never sent again by itself.
        Err(SdkError::DispatchFailure(e)) if e.is_user() => SesAnswer::NotSent("the request could not be sent".into()),
        Err(SdkError::DispatchFailure(_)) => SesAnswer::NoAnswer("the connection to SES failed".into()),
        Err(SdkError::TimeoutError(_)) => SesAnswer::NoAnswer("SES did not answer in time".into()),
        Err(_) => SesAnswer::NoAnswer("SES's answer could not be read".into()),
    }
}

/// Deliveries of one job after which a provider that keeps answering "not now" is given up
/// on: the attempt is `failed` (an agent can retry it), not left `queued` in the dead-letter
/// queue. Below the queue's `maxReceiveCount` (8), which is kept for jobs that cannot be
/// worked at all (the table unreachable).
pub const TRANSIENT_TRIES: u32 = 6;

/// The longest wait between tries (SQS takes up to 12 h; a reply older than this is stale).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(900);

/// What an attempt's outcome makes of it, on the `receive_count`-th delivery of its job: settled
/// (sent, failed, unknown), or tried again after the returned wait: the provider's
/// `Retry-After` when it gave one, else `retry_base` doubled per delivery, at most
/// `MAX_RETRY_DELAY`.
pub fn settlement(outcome: SendOutcome, receive_count: u32, retry_base: Duration) -> (SendResult, Option<Duration>) {
    let settled = |outcome| (SendResult::Settled(outcome), None);
    match outcome {
        SendOutcome::Sent { provider_message_id } => settled(AttemptOutcome::Sent(provider_message_id)),
        SendOutcome::Failed(failure) => settled(AttemptOutcome::Failed(DeliveryError {
            code: failure.provider_code,
            reason: failure.reason,
        })),
        SendOutcome::Unknown { reason } => settled(AttemptOutcome::Unknown(DeliveryError {
            code: "no_answer".into(),
            reason,
        })),
        SendOutcome::Transient { failure, .. } if receive_count >= TRANSIENT_TRIES => {
            settled(AttemptOutcome::Failed(DeliveryError {
                code: failure.provider_code,
                reason: format!("{} (gave up after {receive_count} tries)", failure.reason),
            }))
        }
        SendOutcome::Transient { retry_after, .. } => {
            let doubled = retry_base.saturating_mul(1 << receive_count.saturating_sub(1).min(16));
            let wait = retry_after
                .and_then(|d| d.to_std().ok())
                .map_or(doubled, |asked| asked.max(doubled))
                .min(MAX_RETRY_DELAY);
            (SendResult::Transient, Some(wait))
        }
    }
}

/// A refusal at send time (the credentials were removed after the reply was queued): failed.
fn refused(refusal: &SendRefusal) -> AttemptOutcome {
    AttemptOutcome::Failed(DeliveryError {
        code: refusal.code().into(),
        reason: refusal.to_string(),
    })
}

/// Everything the sender needs: built by `main`, or by tests against the local stack.
#[derive(Debug, Clone)]
pub struct Sender {
    pub store: TimelineStore,
    /// To delay a job's next delivery after a transient failure.
    pub sqs: aws_sdk_sqs::Client,
    /// The outbound queue's URL (`OUTBOUND_QUEUE_URL`), for those delays.
    pub queue_url: String,
    pub transports: Transports,
    pub credentials: Credentials,
    pub apis: ProviderApis,
    /// The first wait after a transient failure (`SEND_RETRY_BASE_SECONDS`, default 10 s).
    pub retry_base: Duration,
    /// How long an unsettled claim may be another delivery still calling (`CLAIM_TIMEOUT`);
    /// older, its sender stopped mid-call.
    pub claim_timeout: Duration,
}

/// Longer than one invocation can run (the function's timeout, 30 s) and shorter than the
/// queue's visibility timeout (180 s), after which a stopped invocation's job comes back.
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(60);

/// Replies that failed, by `<channel>/<provider code>`: the same metric the writer counts a
/// provider's later failure report under.
pub const OUTBOUND_FAILED: &str = "OutboundFailed";

/// How long a provider has to answer a send (the function's timeout is 30 s; the queue's
/// visibility timeout 180 s, so a job is never worked twice at once).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

impl Sender {
    /// Reads `TIMELINE_TABLE_NAME`, `OUTBOUND_QUEUE_URL`, `SEND_CREDENTIALS` (or
    /// `SEND_CREDENTIALS_PARAMETER`), and
    /// the optional `PROVIDER_API_BASE_URL` (every provider under one base: the local stack's
    /// stub) and `SEND_RETRY_BASE_SECONDS`.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let table = config::required_env("TIMELINE_TABLE_NAME")?;
        let queue_url = config::required_env(throughline_queue::OUTBOUND_QUEUE_URL_VAR)?;
        let credentials = Credentials::from_document(&config::load_secret(aws, "SEND_CREDENTIALS").await?)?;
        let apis = match config::optional_env("PROVIDER_API_BASE_URL") {
            Some(base) => ProviderApis::under(base.trim_end_matches('/')),
            None => ProviderApis::default(),
        };
        let retry_base = match config::optional_env("SEND_RETRY_BASE_SECONDS") {
            Some(seconds) => Duration::from_secs(
                seconds
                    .trim()
                    .parse()
                    .map_err(|_| ConfigError::Invalid("SEND_RETRY_BASE_SECONDS must be whole seconds".into()))?,
            ),
            None => Duration::from_secs(10),
        };
        Ok(Self {
            store: TimelineStore::new(aws_sdk_dynamodb::Client::new(aws), table),
            sqs: aws_sdk_sqs::Client::new(aws),
            queue_url,
            transports: Transports::new(aws, SEND_TIMEOUT)
                .map_err(|e| ConfigError::Invalid(format!("HTTPS client: {e}")))?,
            credentials,
            apis,
            retry_base,
            claim_timeout: CLAIM_TIMEOUT,
        })
    }
}

/// The handler as the runtime calls it: it never fails the invocation (what failed is listed
/// per message in the response).
pub async fn serve(event: SqsEvent, sender: &Sender) -> Result<SqsBatchResponse, std::convert::Infallible> {
    Ok(handle(event, sender).await)
}

/// Works a batch of send jobs, all at once (each mostly waits on its provider). A job that
/// failed transiently, or could not be worked, is reported failed: SQS delivers it again.
pub async fn handle(event: SqsEvent, sender: &Sender) -> SqsBatchResponse {
    let results = futures_util::future::join_all(event.records.iter().map(|record| process(record, sender))).await;
    let mut response = SqsBatchResponse::default();
    for (record, done) in event.records.iter().zip(results) {
        if !done {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// One job: `true` when it is finished with (settled, or nothing left to do).
async fn process(record: &SqsMessage, sender: &Sender) -> bool {
    let job = match SendJob::from_json(record.body.as_deref().unwrap_or_default()) {
        Ok(job) => job,
        Err(error) => {
            // Left to the dead-letter queue and its alarm: nothing here can ever send it.
            tracing::error!(%error, "not a send job");
            return false;
        }
    };
    let receive_count = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    match work(&job, receive_count, sender).await {
        Ok(None) => true,
        Ok(Some(wait)) => {
            delay(record, wait, sender).await;
            false
        }
        Err(error) => {
            tracing::error!(%error, interaction = %job.interaction_id, attempt = job.attempt, "send job not worked");
            false
        }
    }
}

/// Claims, calls, records. `Some(wait)`: to be tried again after `wait`.
async fn work(
    job: &SendJob,
    receive_count: u32,
    sender: &Sender,
) -> Result<Option<Duration>, throughline_store::StoreError> {
    let now = Utc::now();
    let (interaction, attempt, provider) = (&job.interaction_id, job.attempt, job.message.provider.as_str());
    match sender.store.claim_send(job, now, sender.claim_timeout).await? {
        Claim::Granted => {}
        Claim::AlreadyRan | Claim::Erased => {
            tracing::info!(%interaction, attempt, "attempt ran before: not sent again");
            return Ok(None);
        }
        Claim::InFlight => {
            tracing::info!(%interaction, attempt, "attempt being sent by another delivery of its job");
            return Ok(None);
        }
        Claim::Interrupted => {
            tracing::warn!(%interaction, attempt, "a sender stopped while calling the provider: outcome unknown");
            let outcome = AttemptOutcome::Unknown(DeliveryError {
                code: "interrupted".into(),
                reason:
                    "the sender stopped while calling the provider, which may have sent it; not sent again by itself"
                        .into(),
            });
            sender
                .store
                .settle_send(job, &SendResult::Settled(outcome), now)
                .await?;
            return Ok(None);
        }
    }
    let (result, wait) = match send_once(&sender.transports, job, &sender.credentials, &sender.apis, now).await {
        Ok(outcome) => settlement(outcome, receive_count, sender.retry_base),
        Err(refusal) => (SendResult::Settled(refused(&refusal)), None),
    };
    let status = match &result {
        SendResult::Settled(AttemptOutcome::Sent(_)) => "sent",
        SendResult::Settled(AttemptOutcome::Failed(e)) | SendResult::Settled(AttemptOutcome::Unknown(e)) => &e.code,
        SendResult::Transient => "transient",
    };
    tracing::info!(%interaction, attempt, provider, status, "send attempt");
    // A refusal the provider gave at once counts with those it reports later (the writer's).
    if let SendResult::Settled(AttemptOutcome::Failed(error)) = &result {
        throughline_edge::metrics::count(
            "sender",
            OUTBOUND_FAILED,
            &format!("{}/{}", job.message.channel.as_str(), error.code),
            1,
        );
    }
    // The attempt's time is when the provider was called, not when it answered: a provider's
    // watermark ("everything sent before T was delivered", with T its own time of the message)
    // must cover a message it delivered at once.
    sender.store.settle_send(job, &result, now).await?;
    // Twilio does not promise its status callbacks: keep the reply for reconciliation, and so
    // one whose outcome is unknown (Twilio's records will say whether it was sent).
    if job.message.provider == throughline_model::Provider::Twilio {
        match &result {
            SendResult::Settled(AttemptOutcome::Sent(sid)) => sender.store.await_status(job, Some(sid), now).await?,
            SendResult::Settled(AttemptOutcome::Unknown(_)) => sender.store.await_status(job, None, now).await?,
            _ => {}
        }
    }
    Ok(wait)
}

/// Holds the job back for `wait` before SQS delivers it again. If this fails the queue's own
/// visibility timeout applies: later, never sooner.
async fn delay(record: &SqsMessage, wait: Duration, sender: &Sender) {
    let Some(handle) = record.receipt_handle.as_deref() else {
        return;
    };
    let result = sender
        .sqs
        .change_message_visibility()
        .queue_url(&sender.queue_url)
        .receipt_handle(handle)
        .visibility_timeout(i32::try_from(wait.as_secs()).unwrap_or(i32::MAX))
        .send()
        .await;
    if let Err(error) = result {
        tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(error), "could not delay a send job's retry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(retry_after: Option<i64>) -> SendOutcome {
        SendOutcome::Transient {
            retry_after: retry_after.map(chrono::Duration::seconds),
            failure: ProviderFailure {
                provider_code: "20429".into(),
                reason: "too many requests".into(),
            },
        }
    }

    #[test]
    fn transient_failures_wait_longer_each_time_and_are_given_up_on() {
        let base = Duration::from_secs(10);
        let waits: Vec<Option<Duration>> = (1..TRANSIENT_TRIES)
            .map(|n| settlement(transient(None), n, base).1)
            .collect();
        let expected: Vec<Option<Duration>> = [10, 20, 40, 80, 160]
            .iter()
            .map(|s| Some(Duration::from_secs(*s)))
            .collect();
        assert_eq!(waits, expected);
        // The provider's own wait, when longer; never beyond the cap.
        assert_eq!(
            settlement(transient(Some(60)), 1, base).1,
            Some(Duration::from_secs(60))
        );
        assert_eq!(settlement(transient(Some(5_000)), 1, base).1, Some(MAX_RETRY_DELAY));
        let (result, wait) = settlement(transient(None), TRANSIENT_TRIES, base);
        assert_eq!(wait, None);
        let SendResult::Settled(AttemptOutcome::Failed(error)) = result else {
            panic!("{result:?}");
        };
        assert_eq!(error.code, "20429");
        assert!(error.reason.contains("gave up after 6 tries"), "{}", error.reason);
    }
}
