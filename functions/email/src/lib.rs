//! Email connector: mail received by Amazon SES (SNS action with the content, or S3 action then
//! Lambda action) and by Mailgun routes (raw MIME mode), parsed into interactions and queued.
//! `mail` is the one pure parser every source uses; `ses` and `mailgun` read their sources;
//! this module is the shell (S3, the replay store, the queue).

pub mod events;
pub mod mail;
pub mod mailgun;
pub mod ses;

#[cfg(test)]
mod tests;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use lambda_http::{Body, Request, Response};
use throughline_edge::{ConfigError, Rejection, Secret, WebhookRequest, config, metrics};
use throughline_model::{Interaction, QueueMessage, StoredObject};
use throughline_queue::InteractionPublisher;
use throughline_store::{StoreError, TimelineStore, s3_failed};

use crate::mail::{Envelope, MailProblem};
pub use crate::mailgun::MailgunConfig;
pub use crate::ses::MailSources;

pub const CONNECTOR: &str = "email";
/// Default window for a Mailgun delivery's timestamp, either side of now.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// Where raw mail lives in S3.
#[derive(Debug, Clone)]
pub struct MailStorage {
    pub s3: aws_sdk_s3::Client,
    /// The project's bucket: raw mail with attachments from sources that do not keep it
    /// (SES via SNS, Mailgun), so attachments can point into it.
    pub bucket: String,
    /// Where SES's S3 action writes (bucket and key prefix), for mail over 150 KB.
    pub inbound_bucket: String,
    pub inbound_prefix: String,
}

impl MailStorage {
    pub fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let bucket = config::required_env("MAIL_BUCKET")?;
        Ok(Self {
            s3: throughline_store::s3_client(aws),
            inbound_bucket: config::optional_env("INBOUND_MAIL_BUCKET").unwrap_or_else(|| bucket.clone()),
            inbound_prefix: config::optional_env("INBOUND_MAIL_PREFIX").unwrap_or_default(),
            bucket,
        })
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, StoreError> {
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(s3_failed("GetObject"))?;
        let bytes = object.body.collect().await.map_err(s3_failed("GetObject"))?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// Keeps a raw mail under a key derived from its content: a retry writes the same object.
    async fn keep(&self, source: &str, raw: &[u8]) -> Result<StoredObject, StoreError> {
        let key = format!("raw/{source}/{}.eml", mail::sha256_hex(raw));
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("message/rfc822")
            .body(ByteStream::from(raw.to_vec()))
            .send()
            .await
            .map_err(s3_failed("PutObject"))?;
        Ok(StoredObject {
            bucket: self.bucket.clone(),
            key,
        })
    }
}

/// Normalizes one raw mail, keeping it in S3 first when it has attachments and is not stored.
async fn interaction_for(
    storage: &MailStorage,
    source: &str,
    raw: &[u8],
    mut envelope: Envelope,
) -> Result<Result<Interaction, MailProblem>, StoreError> {
    if envelope.stored.is_none() && mail::has_attachments(raw) {
        envelope.stored = Some(storage.keep(source, raw).await?);
    }
    Ok(mail::normalize(raw, &envelope))
}

fn count_unusable(problem: &MailProblem) {
    let reason = match problem {
        MailProblem::Unparseable => "unparseable_mail",
        MailProblem::NoSender => "no_sender",
    };
    tracing::warn!(connector = CONNECTOR, reason, "mail acknowledged and not recorded");
    metrics::count(CONNECTOR, metrics::IGNORED_EVENTS, reason, 1);
}

/// The SES function: everything it needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct SesFunction {
    pub storage: MailStorage,
    pub publisher: InteractionPublisher,
    /// Who may deliver mail to it.
    pub sources: MailSources,
}

impl SesFunction {
    /// Reads `INTERACTIONS_QUEUE_URL`, `MAIL_BUCKET`, `INBOUND_MAIL_BUCKET`, `INBOUND_MAIL_PREFIX`
    /// and who may deliver (`MailSources::from_env`).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            storage: MailStorage::from_env(aws)?,
            publisher: InteractionPublisher::from_env(aws)?,
            sources: MailSources::from_env()?,
        })
    }
}

impl MailSources {
    /// Reads `INBOUND_MAIL_TOPIC_ARN` (required: a function that took notifications from any
    /// topic would record whatever their publishers wrote), the optional
    /// `SES_RECEIPT_FUNCTION_ARN` (the template cannot name the function in its own
    /// environment; unset: not checked) and the optional `OUTBOUND_MAIL_EVENTS_TOPIC_ARN`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            topic_arn: Some(config::required_env("INBOUND_MAIL_TOPIC_ARN")?.trim().to_owned()),
            receipt_function_arn: config::optional_env("SES_RECEIPT_FUNCTION_ARN").map(|v| v.trim().to_owned()),
            events_topic_arn: config::optional_env("OUTBOUND_MAIL_EVENTS_TOPIC_ARN").map(|v| v.trim().to_owned()),
        })
    }
}

/// Handles an SNS (SES SNS action) or SES (Lambda action) event. An error fails the invocation,
/// so Lambda retries it (and then sends it to the function's dead-letter queue). Records not
/// from `sources` are skipped (logged and counted): retrying would not change where they came
/// from.
pub async fn handle_ses(event: serde_json::Value, function: &SesFunction) -> Result<serde_json::Value, String> {
    let announced = ses::mails_in(&event, &function.sources).map_err(|e| e.to_string())?;
    for refused in &announced.refused {
        let reason = refused.reason();
        tracing::warn!(
            connector = CONNECTOR,
            reason,
            "SES record refused: not from a configured source"
        );
        metrics::count(CONNECTOR, metrics::IGNORED_EVENTS, reason, 1);
    }
    let now = Utc::now();
    let mut interactions = Vec::new();
    for mail in &announced.mails {
        let Some(envelope) = mail.envelope(now) else {
            count_unusable(&MailProblem::NoSender);
            continue;
        };
        let (raw, envelope) = match &mail.content {
            Some(content) => (content.clone(), envelope),
            None => {
                let storage = &function.storage;
                let key = format!("{}{}", storage.inbound_prefix, mail.message_id);
                let raw = storage
                    .get(&storage.inbound_bucket, &key)
                    .await
                    .map_err(|e| e.to_string())?;
                let stored = StoredObject {
                    bucket: storage.inbound_bucket.clone(),
                    key,
                };
                (
                    raw,
                    Envelope {
                        stored: Some(stored),
                        ..envelope
                    },
                )
            }
        };
        match interaction_for(&function.storage, "ses", &raw, envelope)
            .await
            .map_err(|e| e.to_string())?
        {
            Ok(interaction) => interactions.push(interaction),
            Err(problem) => count_unusable(&problem),
        }
    }
    let messages: Vec<QueueMessage> = interactions
        .into_iter()
        .map(QueueMessage::from)
        .chain(announced.statuses.into_iter().map(QueueMessage::from))
        .collect();
    let published = function.publisher.publish(&messages).await.map_err(|e| e.to_string())?;
    throughline_edge::report_ignored(CONNECTOR, published.dropped.iter().map(|d| d.reason.code()));
    tracing::info!(connector = CONNECTOR, count = published.queued, "mail queued");
    metrics::count(
        CONNECTOR,
        metrics::PUBLISHED_INTERACTIONS,
        "queued",
        published.queued as u64,
    );
    Ok(serde_json::json!({ "queued": published.queued }))
}

/// The Mailgun function.
#[derive(Debug, Clone)]
pub struct MailgunFunction {
    pub mailgun: MailgunConfig,
    pub storage: MailStorage,
    pub store: TimelineStore,
    pub publisher: InteractionPublisher,
}

impl MailgunFunction {
    /// Reads `INTERACTIONS_QUEUE_URL`, `MAIL_BUCKET`, `TIMELINE_TABLE_NAME` (replay tokens),
    /// `MAILGUN_SIGNING_KEY` (or `_PARAMETER`; several keys comma-separated while rotating) and
    /// the optional `MAILGUN_TIMESTAMP_TOLERANCE_SECONDS` (default 300).
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let keys = config::load_secret(aws, "MAILGUN_SIGNING_KEY").await?;
        let tolerance = config::positive_seconds(
            "MAILGUN_TIMESTAMP_TOLERANCE_SECONDS",
            config::optional_env("MAILGUN_TIMESTAMP_TOLERANCE_SECONDS"),
            DEFAULT_TOLERANCE_SECONDS,
        )?;
        Ok(Self {
            mailgun: MailgunConfig {
                signing_keys: keys
                    .expose()
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(Secret::new)
                    .collect(),
                tolerance,
            },
            storage: MailStorage::from_env(aws)?,
            store: TimelineStore::new(
                aws_sdk_dynamodb::Client::new(aws),
                config::required_env("TIMELINE_TABLE_NAME")?,
            ),
            publisher: InteractionPublisher::from_env(aws)?,
        })
    }
}

const REPLAY_NAMESPACE: &str = "mailgun";

/// The Mailgun route handler: verify, claim the token, keep, normalize, queue, answer. The
/// token is claimed before anything is done with the mail (Mailgun signs the timestamp and
/// the token, not the body, so a captured delivery's fields posted with another mail must find
/// its token taken); when the mail could not be kept or queued (503), the claim is given back
/// so that Mailgun's retry is not refused as a replay. A mail refused as malformed keeps its
/// claim: its retry would be refused the same way.
pub async fn handle_mailgun(req: Request, function: &MailgunFunction) -> Response<Body> {
    let request = WebhookRequest::from_lambda(req, None);
    let now = Utc::now();
    // An event webhook (JSON) reports on a reply; a route (a form) delivers a mail.
    let (token, delivery) = if mailgun::is_event(&request) {
        match mailgun::accept_event(&request, &function.mailgun, now) {
            Ok(event) => (event.token, Err(event.accepted)),
            Err(rejection) => {
                return throughline_edge::respond(CONNECTOR, Err(rejection), &function.publisher, ok).await;
            }
        }
    } else {
        match mailgun::accept(&request, &function.mailgun, now) {
            Ok(delivery) => (delivery.token.clone(), Ok(delivery)),
            Err(rejection) => {
                return throughline_edge::respond(CONNECTOR, Err(rejection), &function.publisher, ok).await;
            }
        }
    };
    let until = replay_memory(now, &function.mailgun);
    // The claim is the conditional put itself: of two posts of one token exactly one gets it.
    match function.store.remember(REPLAY_NAMESPACE, &token, until).await {
        Ok(true) => {}
        Ok(false) => {
            let replay = Rejection::BadSignature {
                status: lambda_http::http::StatusCode::UNAUTHORIZED,
                reason: "token was used before",
            };
            return throughline_edge::respond(CONNECTOR, Err(replay), &function.publisher, ok).await;
        }
        // 503 `store_unavailable` (logged by error_response): Mailgun retries.
        Err(e) => return throughline_edge::error_response(&e),
    }
    let release = || async {
        if let Err(e) = function.store.forget(REPLAY_NAMESPACE, &token).await {
            tracing::error!(
                connector = CONNECTOR,
                error = %e,
                "could not give the token back; Mailgun's retry of this delivery will be refused"
            );
        }
    };
    let delivery = match delivery {
        Ok(delivery) => delivery,
        Err(statuses) => {
            let response = throughline_edge::respond(CONNECTOR, Ok(statuses), &function.publisher, ok).await;
            if response.status().is_server_error() {
                release().await;
            }
            return response;
        }
    };
    let interaction = match interaction_for(
        &function.storage,
        "mailgun",
        &delivery.raw_mime,
        delivery.envelope.clone(),
    )
    .await
    {
        Ok(Ok(interaction)) => interaction,
        Ok(Err(problem)) => {
            let rejection = Rejection::malformed(format!("body-mime: {problem}"));
            return throughline_edge::respond(CONNECTOR, Err(rejection), &function.publisher, ok).await;
        }
        Err(e) => {
            release().await;
            return throughline_edge::error_response(&e);
        }
    };
    let response = throughline_edge::respond(
        CONNECTOR,
        Ok(throughline_edge::Accepted::interactions(vec![interaction])),
        &function.publisher,
        ok,
    )
    .await;
    if response.status().is_server_error() {
        release().await;
    }
    response
}

fn ok() -> Response<Body> {
    throughline_edge::empty_ok()
}

/// The time a Mailgun replay token must be remembered: past the window, a replay is stale anyway.
pub fn replay_memory(now: DateTime<Utc>, config: &MailgunConfig) -> DateTime<Utc> {
    now + config.tolerance * 2
}
