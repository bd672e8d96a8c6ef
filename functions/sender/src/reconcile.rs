//! Reconciliation: Twilio does not guarantee that status callbacks arrive (nor their order), so
//! once a day the replies Twilio took two days before and that are still `sent` are looked up
//! with Twilio's Fetch Message, and what Twilio's record says goes onto the interactions queue
//! as a status report, through the same writer and status machine as a callback.
//!
//! The sender keeps each reply Twilio took under the day it was sent (`await_status`); the
//! reconciler reads that day's partition (one Query per 100 replies), reads each reply's entry,
//! and calls Twilio only for those still `sent` on the same attempt.

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
    /// Of those, still `sent`: looked up at Twilio.
    pub looked_up: usize,
    /// Lookups that found a status past `sent`: queued as status reports.
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
    /// Twilio's record says no more than the entry.
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
    let still_sent = entry
        .delivery
        .as_ref()
        .is_some_and(|d| d.attempt == awaiting.attempt && d.status == DeliveryStatus::Sent);
    if !still_sent {
        return Lookup::Settled;
    }
    let request = match twilio::fetch(&awaiting.provider_message_id, &reconciler.credentials, &reconciler.apis) {
        Ok(request) => request,
        Err(refusal) => return Lookup::Failed(refusal.to_string()),
    };
    let response = match reconciler.http.call(&request).await {
        CallResult::Answered(response) => response,
        CallResult::NotSent(why) | CallResult::Unknown(why) => return Lookup::Failed(why.to_owned()),
    };
    match twilio::interpret_fetch(&response) {
        Ok(Some(event)) if event.status != DeliveryStatus::Sent => Lookup::Found(Box::new(StatusReport {
            interaction_id: awaiting.alias.clone(),
            event,
            recipient: None,
        })),
        Ok(_) => Lookup::StillSent,
        Err(problem) => Lookup::Failed(problem),
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
