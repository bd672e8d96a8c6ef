//! Reconciliation: Twilio does not guarantee that status callbacks arrive (nor their order), so
//! once a day the replies Twilio was called for two days before and that are still `sent` (or
//! `unknown`: the call got no answer) are looked up at Twilio, and what Twilio's records say
//! goes onto the interactions queue as a status report, through the same writer and status
//! machine as a callback.
//!
//! The sender keeps each such reply under the day it called Twilio (`await_status`); the
//! reconciler reads that day's partition (one Query per 100 replies), reads each reply's entry,
//! and calls Twilio only for those still `sent` (Fetch Message) or `unknown` (List Messages
//! between the two numbers) on the same attempt.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures_util::StreamExt;
use throughline_edge::{ConfigError, config};
use throughline_model::{DeliveryStatus, QueueMessage, StatusReport};
use throughline_queue::InteractionPublisher;
use throughline_store::{AwaitingStatus, TimelineStore};

use crate::providers::twilio;
use crate::{CallResult, Credentials, ProviderApis, ProviderClient};

/// How long after a reply was sent it is reconciled: the run on day D+2 reads the replies sent
/// on day D, all of them more than 24 h old.
pub const RECONCILE_AFTER_DAYS: i64 = 2;
/// Replies looked up at once.
const AT_ONCE: usize = 8;
/// Replies per page of the day's partition.
const PAGE: i32 = 100;
/// The time a run gives itself before it stops (the function's timeout is 300 s): what is left
/// is logged, not lost silently.
const BUDGET: std::time::Duration = std::time::Duration::from_secs(240);

/// Everything the reconciler needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct Reconciler {
    pub store: TimelineStore,
    pub publisher: InteractionPublisher,
    pub http: ProviderClient,
    pub credentials: Credentials,
    pub apis: ProviderApis,
}

/// What one run did, for its log and its answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reconciled {
    /// The day whose replies were read.
    pub day: String,
    /// Replies kept for that day.
    pub kept: usize,
    /// Of those, still `sent` or `unknown`: looked up at Twilio.
    pub looked_up: usize,
    /// Lookups that found more than the entry says: queued as status reports.
    pub reported: usize,
    /// Lookups that failed (Twilio unreachable, an answer that is not a message).
    pub failed: usize,
    /// Replies not reached before the run's budget ran out.
    pub left: usize,
}

impl Reconciler {
    /// Reads `TIMELINE_TABLE_NAME`, `INTERACTIONS_QUEUE_URL`, `SEND_CREDENTIALS` (or
    /// `SEND_CREDENTIALS_PARAMETER`) and the optional `PROVIDER_API_BASE_URL`.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let table = config::required_env("TIMELINE_TABLE_NAME")?;
        let credentials = Credentials::from_document(&config::load_secret(aws, "SEND_CREDENTIALS").await?)?;
        let apis = match config::optional_env("PROVIDER_API_BASE_URL") {
            Some(base) => ProviderApis::under(base.trim_end_matches('/')),
            None => ProviderApis::default(),
        };
        Ok(Self {
            store: TimelineStore::new(aws_sdk_dynamodb::Client::new(aws), table),
            publisher: InteractionPublisher::from_env(aws)?,
            http: ProviderClient::new(crate::SEND_TIMEOUT)
                .map_err(|e| ConfigError::Invalid(format!("HTTPS client: {e}")))?,
            credentials,
            apis,
        })
    }
}

/// The day a run at `now` reconciles. Pure.
pub fn day_to_reconcile(now: DateTime<Utc>) -> NaiveDate {
    (now - TimeDelta::days(RECONCILE_AFTER_DAYS)).date_naive()
}

/// The handler as the scheduler calls it (the event's `time` is the run's time, or now).
pub async fn serve(event: serde_json::Value, reconciler: &Reconciler) -> Result<Reconciled, String> {
    let now = event["time"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(Utc::now, |t| t.to_utc());
    let reconciled = run(reconciler, day_to_reconcile(now)).await?;
    tracing::info!(
        day = %reconciled.day,
        kept = reconciled.kept,
        looked_up = reconciled.looked_up,
        reported = reconciled.reported,
        failed = reconciled.failed,
        left = reconciled.left,
        "reconciliation"
    );
    Ok(reconciled)
}

/// Reconciles the replies sent on `day`. Fails only when the store or the queue does (the
/// scheduler's retry runs it again: reports are idempotent).
pub async fn run(reconciler: &Reconciler, day: NaiveDate) -> Result<Reconciled, String> {
    let deadline = std::time::Instant::now() + BUDGET;
    let mut reconciled = Reconciled {
        day: day.to_string(),
        ..Reconciled::default()
    };
    let mut cursor: Option<String> = None;
    loop {
        let (page, next) = reconciler
            .store
            .awaiting_on(day, cursor.as_deref(), PAGE)
            .await
            .map_err(|e| e.to_string())?;
        reconciled.kept += page.len();
        if std::time::Instant::now() > deadline {
            reconciled.left += page.len();
        } else {
            let outcomes: Vec<Lookup> = futures_util::stream::iter(page.iter())
                .map(|awaiting| look_up(reconciler, awaiting))
                .buffer_unordered(AT_ONCE)
                .collect()
                .await;
            let mut reports = Vec::new();
            for outcome in outcomes {
                match outcome {
                    Lookup::Settled => {}
                    Lookup::StillSent => reconciled.looked_up += 1,
                    Lookup::Found(report) => {
                        reconciled.looked_up += 1;
                        reports.push(QueueMessage::from(*report));
                    }
                    Lookup::Failed(problem) => {
                        reconciled.looked_up += 1;
                        reconciled.failed += 1;
                        tracing::warn!(problem, "reconciliation lookup failed");
                    }
                    Lookup::Store(error) => return Err(error),
                }
            }
            if !reports.is_empty() {
                let published = reconciler
                    .publisher
                    .publish(&reports)
                    .await
                    .map_err(|e| e.to_string())?;
                reconciled.reported += published.queued;
            }
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(reconciled),
        }
    }
}

enum Lookup {
    /// The entry is past `sent` (a callback came), or on another attempt: nothing to ask.
    Settled,
    /// Twilio's records say no more than the entry.
    StillSent,
    Found(Box<StatusReport>),
    Failed(String),
    Store(String),
}

async fn look_up(reconciler: &Reconciler, awaiting: &AwaitingStatus) -> Lookup {
    let entry = match reconciler.store.entry(&awaiting.reply).await {
        Ok(Some((_, entry))) => entry,
        // Erased since: nothing to reconcile.
        Ok(None) => return Lookup::Settled,
        Err(e) => return Lookup::Store(e.to_string()),
    };
    let Some(delivery) = entry.delivery.filter(|d| d.attempt == awaiting.attempt) else {
        return Lookup::Settled;
    };
    match (&awaiting.sent, delivery.status) {
        (Some((sid, alias)), DeliveryStatus::Sent) => match fetch(reconciler, sid).await {
            Ok(Some(event)) if event.status != DeliveryStatus::Sent => found(alias, event),
            Ok(_) => Lookup::StillSent,
            Err(problem) => Lookup::Failed(problem),
        },
        (None, DeliveryStatus::Unknown) => unknown(reconciler, awaiting).await,
        // A callback (or an agent's retry) settled it since.
        _ => Lookup::Settled,
    }
}

fn found(id: &throughline_model::InteractionId, event: throughline_model::StatusEvent) -> Lookup {
    Lookup::Found(Box::new(StatusReport {
        interaction_id: id.clone(),
        event,
        recipient: None,
    }))
}

/// Twilio's record of one message.
async fn fetch(
    reconciler: &Reconciler,
    sid: &throughline_model::ProviderMessageId,
) -> Result<Option<throughline_model::StatusEvent>, String> {
    let request = twilio::fetch(sid, &reconciler.credentials, &reconciler.apis).map_err(|e| e.to_string())?;
    match reconciler.http.call(&request).await {
        CallResult::Answered(response) => twilio::interpret_fetch(&response),
        CallResult::NotSent(why) | CallResult::Unknown(why) => Err(why.to_owned()),
    }
}

/// How far from the call a message Twilio created for it can be: the call's timeout, and
/// Twilio's whole seconds.
const CALL_WINDOW: TimeDelta = TimeDelta::seconds(crate::SEND_TIMEOUT.as_secs() as i64 + 2);

/// A reply whose send got no answer: Twilio's messages from its number to the customer's
/// around the call (with its text) say whether Twilio has it. One there: its record is the reply's status
/// (reported by the reply's own id, its provider id never having been known). None, on a page
/// that reaches back past the call: it was not sent, so it is `failed` and an agent may send it
/// again without the customer getting it twice. Several: it stays `unknown`.
async fn unknown(reconciler: &Reconciler, awaiting: &AwaitingStatus) -> Lookup {
    let job = match reconciler.store.send_job(&awaiting.reply).await {
        Ok(Some(job)) => job,
        Ok(None) => return Lookup::Settled,
        Err(e) => return Lookup::Store(e.to_string()),
    };
    let request = match twilio::list(&job.message, &reconciler.credentials, &reconciler.apis) {
        Ok(request) => request,
        Err(refusal) => return Lookup::Failed(refusal.to_string()),
    };
    let listed = match reconciler.http.call(&request).await {
        CallResult::Answered(response) => match twilio::interpret_list(&response) {
            Ok(listed) => listed,
            Err(problem) => return Lookup::Failed(problem),
        },
        CallResult::NotSent(why) | CallResult::Unknown(why) => return Lookup::Failed(why.to_owned()),
    };
    let (start, end) = (
        awaiting.called_at - TimeDelta::seconds(2),
        awaiting.called_at + CALL_WINDOW,
    );
    // A text reply is Twilio's message with the same text; a template's text is Twilio's to
    // render, so only the time tells.
    let text = match &job.message.content {
        throughline_model::OutboundContent::Message { text, .. } => text.as_deref(),
        throughline_model::OutboundContent::WhatsappTemplate(_) => None,
    };
    let around: Vec<&twilio::Listed> = listed
        .iter()
        .filter(|m| m.created_at >= start && m.created_at <= end)
        .filter(|m| text.is_none_or(|text| m.body.as_deref() == Some(text)))
        .collect();
    match around.as_slice() {
        [one] => match fetch(reconciler, &one.sid).await {
            Ok(Some(event)) => found(&awaiting.reply, event),
            Ok(None) => Lookup::StillSent,
            Err(problem) => Lookup::Failed(problem),
        },
        [] if listed.len() < twilio::LIST_PAGE || listed.iter().any(|m| m.created_at < start) => found(
            &awaiting.reply,
            throughline_model::StatusEvent {
                status: DeliveryStatus::Failed,
                at: Utc::now(),
                source: twilio::RECONCILIATION_SOURCE.into(),
                error: Some(throughline_model::DeliveryError {
                    code: "not_sent".into(),
                    reason: "Twilio has no record of it: it was not sent, and may be sent again".into(),
                }),
            },
        ),
        _ => Lookup::StillSent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reconciles_the_day_before_yesterday() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T04:00:00Z").unwrap().to_utc();
        assert_eq!(day_to_reconcile(now).to_string(), "2026-11-24");
        let just_after_midnight = DateTime::parse_from_rfc3339("2026-11-26T00:00:01Z").unwrap().to_utc();
        assert_eq!(day_to_reconcile(just_after_midnight).to_string(), "2026-11-24");
    }
}
