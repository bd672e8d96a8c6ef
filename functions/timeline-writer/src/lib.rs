//! SQS consumer: each message is one interaction (resolved to its customer and written to the
//! timeline once), an update to one (applied to its entry), a provider's status of an outbound
//! message (applied to the reply's delivery record) or an erasure step. Failures are reported
//! per message (`ReportBatchItemFailures`), so SQS redelivers only those, and moves a message
//! that keeps failing to the dead-letter queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use throughline_edge::{ConfigError, config};
use throughline_model::ErasureStep;
use throughline_model::QueueMessage;
use throughline_model::{Channel, Delivery, DeliveryStatus, Interaction};
use throughline_queue::InteractionPublisher;
use throughline_service::hours::BusinessHours;
use throughline_store::{Actor, Applied, Lane, Observed, ReasonMark, Recorded, TimelineStore};

/// Everything the writer needs, built once per cold start.
#[derive(Debug, Clone)]
pub struct Writer {
    pub store: TimelineStore,
    /// Where an erasure step that did not finish queues the next one.
    pub publisher: InteractionPublisher,
    /// How long one message works on an erasure: a batch of ten must end within the
    /// function's 30 s even if every one of them is an erasure step.
    pub erasure_budget: std::time::Duration,
    /// The company's reasons for contact, whose rules suggest reasons for each customer
    /// message's conversation; `None`: no suggestions.
    pub taxonomy: Option<throughline_reasons::ReloadingTaxonomy>,
}

/// The reasons the taxonomy's rules suggest for an interaction: for a customer message, from
/// its text and (email) its subject, each code once, with the rule that matched. Pure.
pub fn suggested_reasons(taxonomy: &throughline_reasons::Taxonomy, interaction: &Interaction) -> Vec<ReasonMark> {
    if !throughline_service::is_customer_message(interaction) {
        return Vec::new();
    }
    let mut marks: Vec<ReasonMark> = Vec::new();
    for text in [&interaction.subject, &interaction.text].into_iter().flatten() {
        for suggestion in taxonomy.suggest(text, interaction.channel) {
            let code = suggestion.code.as_str();
            if !marks.iter().any(|m| m.code == code) {
                marks.push(ReasonMark {
                    code: code.to_owned(),
                    confirmed: false,
                    rule: Some(format!("{code}:{}", suggestion.rule)),
                });
            }
        }
    }
    marks
}

impl Writer {
    /// Reads `TIMELINE_TABLE_NAME`, `SUPPRESSION_KEY` (or `SUPPRESSION_KEY_PARAMETER`),
    /// `INTERACTIONS_QUEUE_URL`, the optional `CONVERSATION_WINDOW_MINUTES` (default 24 h) and
    /// the optional taxonomy `REASONS_TAXONOMY` (or `REASONS_TAXONOMY_PARAMETER`) and
    /// `BUSINESS_HOURS`.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let table = config::required_env("TIMELINE_TABLE_NAME")?;
        let window = match config::optional_env("CONVERSATION_WINDOW_MINUTES") {
            Some(minutes) => minutes
                .trim()
                .parse()
                .ok()
                .filter(|m: &i64| *m > 0)
                .and_then(chrono::TimeDelta::try_minutes)
                .ok_or_else(|| ConfigError::Invalid("CONVERSATION_WINDOW_MINUTES must be positive minutes".into()))?,
            None => throughline_store::DEFAULT_WINDOW,
        };
        let suppression_key = config::load_secret(aws, "SUPPRESSION_KEY").await?;
        Ok(Self {
            store: TimelineStore::deployed(aws, table, suppression_key.expose())
                .with_conversation_window(window)
                .with_business_hours(BusinessHours::from_env().map_err(ConfigError::Invalid)?),
            publisher: InteractionPublisher::from_env(aws)?,
            erasure_budget: DEFAULT_ERASURE_BUDGET,
            taxonomy: throughline_reasons::from_env(aws).await?,
        })
    }
}

/// The handler as the runtime calls it: it never fails the invocation (what failed is listed
/// per message in the response).
pub async fn serve(event: SqsEvent, writer: &Writer) -> Result<SqsBatchResponse, std::convert::Infallible> {
    Ok(handle(event, writer).await)
}

/// The reasons the writer's taxonomy (as it is now) suggests for `interaction`.
async fn suggested(writer: &Writer, interaction: &Interaction) -> Vec<ReasonMark> {
    match &writer.taxonomy {
        Some(taxonomy) => suggested_reasons(&*taxonomy.current().await, interaction),
        None => Vec::new(),
    }
}

/// Of one erasure step per message.
pub const DEFAULT_ERASURE_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// The ledger's actor of an erasure step is the one who asked for the erasure (kept on its
/// tombstone); this names the writer only if that was lost.
const ERASURE_JOB: &str = "throughline:erasure-job";

/// Deliveries whose interaction id was already recorded for another customer handle.
pub const DEDUPE_COLLISIONS: &str = "DedupeCollisions";

/// How many lanes of a batch are worked at once. A batch has at most 10 messages (the
/// template's `BatchSize`); every lane is mostly waiting on DynamoDB, so all of them can.
pub const LANES_AT_ONCE: usize = 10;

/// Handles one batch. Never fails as a whole: every message that could not be recorded is
/// listed in `batch_item_failures`, and only those come back.
///
/// Messages about different customers are worked concurrently (up to `LANES_AT_ONCE` lanes);
/// the messages of one lane (see `lanes`) one after another, in the batch's order. The store is
/// correct under any interleaving; lanes keep one customer's messages in the order they came.
pub async fn handle(event: SqsEvent, writer: &Writer) -> SqsBatchResponse {
    use futures_util::StreamExt;
    let records = &event.records;
    let mut failed: Vec<(usize, String)> = futures_util::stream::iter(lanes(records))
        .map(|lane| async move {
            let mut failed = Vec::new();
            // What the lane's last commit left of its customer: the next message need not read it.
            let mut memory = Lane::default();
            for index in lane {
                if let Err(message_id) = process(&records[index], writer, &mut memory).await {
                    failed.push((index, message_id));
                }
            }
            failed
        })
        .buffer_unordered(LANES_AT_ONCE)
        .flat_map(futures_util::stream::iter)
        .collect()
        .await;
    // In the batch's order, whatever order the lanes finished in.
    failed.sort();
    let mut response = SqsBatchResponse::default();
    for (_, message_id) in failed {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = message_id;
        response.batch_item_failures.push(failure);
    }
    response
}

/// The batch's messages (by index) in lanes: one lane per customer handle an interaction came
/// in on (an update joins the lane of its interaction when that is in the batch, else has one
/// of its own), one per customer an erasure step is about, one per unreadable message. Each
/// lane keeps the batch's order; lanes are in the order of their first message. Pure.
fn lanes(records: &[SqsMessage]) -> Vec<Vec<usize>> {
    let parsed: Vec<Option<QueueMessage>> = records
        .iter()
        .map(|r| QueueMessage::from_json(r.body.as_deref().unwrap_or_default()).ok())
        .collect();
    let interaction_lane = |id: &throughline_model::InteractionId| {
        parsed.iter().find_map(|m| match m {
            Some(QueueMessage::Interaction(i)) if &i.id == id => Some(format!("handle:{}", i.customer.key())),
            _ => None,
        })
    };
    let mut keys: Vec<String> = Vec::new();
    let mut lanes: Vec<Vec<usize>> = Vec::new();
    for (index, message) in parsed.iter().enumerate() {
        let key = match message {
            Some(QueueMessage::Interaction(i)) => format!("handle:{}", i.customer.key()),
            Some(QueueMessage::Update(u)) => {
                interaction_lane(&u.interaction_id).unwrap_or_else(|| format!("interaction:{}", u.interaction_id))
            }
            Some(QueueMessage::Status(report)) => format!("interaction:{}", report.interaction_id),
            Some(QueueMessage::Watermark(report)) => format!("handle:{}", report.customer.key()),
            Some(QueueMessage::Erasure(step)) => format!("erasure:{}", step.customer_id),
            None => format!("unreadable:{index}"),
        };
        match keys.iter().position(|k| *k == key) {
            Some(lane) => lanes[lane].push(index),
            None => {
                keys.push(key);
                lanes.push(vec![index]);
            }
        }
    }
    lanes
}

/// Records one message; on failure returns the id SQS needs to redeliver it.
async fn process(message: &SqsMessage, writer: &Writer, lane: &mut Lane) -> Result<(), String> {
    let store = &writer.store;
    let message_id = message.message_id.clone().unwrap_or_default();
    let receive_count = message
        .attributes
        .get("ApproximateReceiveCount")
        .map(String::as_str)
        .unwrap_or("?");
    let parsed = match QueueMessage::from_json(message.body.as_deref().unwrap_or_default()) {
        Ok(parsed) => parsed,
        Err(error) => {
            // Retrying cannot fix it; SQS moves it to the DLQ after maxReceiveCount receives.
            tracing::error!(%message_id, receive_count, %error, "message is not an interaction");
            return Err(message_id);
        }
    };
    let (interaction_id, outcome) = match &parsed {
        QueueMessage::Erasure(step) => {
            return erasure_step(step, writer).await.map_err(|error| {
                tracing::error!(%message_id, receive_count, %error, "erasure step failed");
                message_id
            });
        }
        QueueMessage::Interaction(interaction) => (
            &interaction.id,
            store.record_suggesting(interaction, &suggested(writer, interaction).await, lane).await.map(|recorded| match recorded {
                Recorded::New { customer, observed, .. } => {
                    if let Some(answer) = observed.answered.filter(|a| a.first) {
                        let channel = observed.conversation_channel.unwrap_or(interaction.channel);
                        throughline_edge::metrics::first_response("timeline-writer", channel.as_str(), answer.waited);
                    }
                    ("recorded", Some(customer))
                }
                Recorded::Duplicate { customer } => ("duplicate", Some(customer)),
                Recorded::Collision { customer } => {
                    // Ids and the provider only: the handles are personal data.
                    tracing::warn!(interaction_id = %interaction.id, provider = interaction.provider.as_str(), "interaction id already recorded for another handle; not recorded");
                    throughline_edge::metrics::count("timeline-writer", DEDUPE_COLLISIONS, interaction.provider.as_str(), 1);
                    ("dedupe_collision", Some(customer))
                }
                // Its customer was erased: dropping it is the point, not a failure.
                Recorded::Erased => ("erased", None),
            }),
        ),
        QueueMessage::Watermark(report) => {
            // Names a customer, not an interaction: logged without the handle.
            return match store.record_watermark(report).await {
                Ok(raised) => {
                    let outcome = if raised { "watermark_raised" } else { "watermark_not_later" };
                    tracing::info!(%message_id, status = report.status.as_str(), outcome, "message processed");
                    Ok(())
                }
                Err(error) => {
                    tracing::error!(%message_id, receive_count, %error, "could not record a watermark");
                    Err(message_id)
                }
            };
        }
        QueueMessage::Status(report) => (
            &report.interaction_id,
            store.observe_status(report).await.map(|observed| match observed {
                Observed::Applied {
                    customer,
                    channel,
                    previous,
                    delivery,
                } => {
                    for (metric, reason, value) in delivery_metrics(channel, previous, &delivery) {
                        match metric {
                            DELIVERY_LATENCY => throughline_edge::metrics::milliseconds(WRITER, metric, &reason, value),
                            _ => throughline_edge::metrics::count(WRITER, metric, &reason, value),
                        }
                    }
                    ("status_applied", Some(customer))
                }
                Observed::Unchanged { customer } => ("status_duplicate", Some(customer)),
                Observed::Pending => ("status_pending", None),
                Observed::Erased => ("erased", None),
            }),
        ),
        QueueMessage::Update(update) => (
            &update.interaction_id,
            store.apply(update).await.map(|applied| match applied {
                Applied::Updated { customer } => ("updated", Some(customer)),
                Applied::Pending => ("update_pending", None),
                Applied::Erased => ("erased", None),
            }),
        ),
    };
    match outcome {
        Ok((outcome, customer)) => {
            let customer_id = customer.as_ref().map(|c| c.as_str()).unwrap_or("-");
            tracing::info!(%message_id, %interaction_id, customer_id, outcome, "message processed");
            Ok(())
        }
        Err(error) => {
            tracing::error!(%message_id, %interaction_id, receive_count, %error, "could not record");
            Err(message_id)
        }
    }
}

/// The connector name of the writer's metrics.
const WRITER: &str = "timeline-writer";
/// Replies the provider reported delivered (or read), by channel.
pub const OUTBOUND_DELIVERED: &str = "OutboundDelivered";
/// Replies the provider reported failed or undelivered, by `<channel>/<provider code>`.
pub const OUTBOUND_FAILED: &str = "OutboundFailed";
/// From `sent` to the provider's `delivered` (or `read`), in milliseconds, by channel.
pub const DELIVERY_LATENCY: &str = "DeliveryLatency";

/// The metrics a status event's change makes, as (metric, reason, value): a reply counts once
/// as delivered when it first reaches delivered or read (with its latency from `sent`), once as
/// failed when it first turns failed or undelivered; a late or repeated event counts nothing.
/// Pure.
fn delivery_metrics(
    channel: Channel,
    previous: DeliveryStatus,
    delivery: &Delivery,
) -> Vec<(&'static str, String, u64)> {
    let reached = |s: DeliveryStatus| matches!(s, DeliveryStatus::Delivered | DeliveryStatus::Read);
    let mut metrics = Vec::new();
    if reached(delivery.status) && !reached(previous) {
        metrics.push((OUTBOUND_DELIVERED, channel.as_str().to_owned(), 1));
        let sent = delivery
            .history
            .iter()
            .find(|c| c.attempt == delivery.attempt && c.status == DeliveryStatus::Sent && c.source.is_none());
        if let Some(sent) = sent {
            let latency = (delivery.updated_at - sent.at).num_milliseconds().max(0);
            metrics.push((DELIVERY_LATENCY, channel.as_str().to_owned(), latency as u64));
        }
    }
    if delivery.status.is_failure() && !previous.is_failure() {
        let code = delivery.error.as_ref().map(|e| e.code.as_str()).unwrap_or("unknown");
        metrics.push((OUTBOUND_FAILED, format!("{}/{code}", channel.as_str()), 1));
    }
    metrics
}

/// Works on an erasure for `erasure_budget`; if it is not done, queues the next step (the
/// work done so far stays done: each page is deleted before the next is read).
async fn erasure_step(step: &ErasureStep, writer: &Writer) -> Result<(), String> {
    let customer = step.customer_id.clone();
    let actor = Actor {
        who: ERASURE_JOB.into(),
        principal_id: None,
        reason: None,
    };
    let deadline = std::time::Instant::now() + writer.erasure_budget;
    let erasure = writer
        .store
        .erase(&customer, &actor, deadline)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(customer_id = %erasure.customer_id, interactions = erasure.interactions, complete = erasure.complete, "erasure step");
    if !erasure.complete {
        writer
            .publisher
            .publish(&[QueueMessage::Erasure(step.clone())])
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use throughline_model::{
        AttemptOutcome, Change, CustomerId, Interaction, InteractionUpdate, ProviderMessageId, StatusEvent,
    };

    use super::*;

    fn sms(from: &str, id: &str) -> Interaction {
        throughline_testkit::inbound_sms(from, id, throughline_testkit::sample_day_at(9, 0))
    }

    fn message(body: String) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.body = Some(body);
        message
    }

    #[test]
    fn one_lane_per_customer_handle_in_the_batch_order_with_updates_behind_their_interaction() {
        let ada = sms("+14155550100", "SM1");
        let deleted = InteractionUpdate {
            interaction_id: ada.id.clone(),
            change: Change::Deleted,
            at: ada.occurred_at,
        };
        let elsewhere = InteractionUpdate {
            interaction_id: sms("+14155550177", "SM9").id,
            ..deleted.clone()
        };
        let erasure = QueueMessage::Erasure(ErasureStep {
            customer_id: CustomerId::generate(),
        });
        let records = [
            message(QueueMessage::Interaction(Box::new(ada.clone())).to_json()),
            message(QueueMessage::Interaction(Box::new(sms("+14155550111", "SM2"))).to_json()),
            message(QueueMessage::Update(deleted).to_json()),
            message("not json".into()),
            message(QueueMessage::Interaction(Box::new(sms("+14155550100", "SM3"))).to_json()),
            message(erasure.to_json()),
            message(QueueMessage::Update(elsewhere).to_json()),
            message("{}".into()),
        ];
        assert_eq!(
            lanes(&records),
            [vec![0, 2, 4], vec![1], vec![3], vec![5], vec![6], vec![7]]
        );
    }

    #[test]
    fn a_reply_counts_once_as_delivered_with_its_latency_and_once_as_failed() {
        let at = |minute| throughline_testkit::sample_day_at(10, minute);
        let sent = Delivery::queued(1, at(0))
            .settled(
                1,
                &AttemptOutcome::Sent(ProviderMessageId::parse("SM1").unwrap()),
                at(1),
            )
            .unwrap();
        let event = |status, minute| StatusEvent {
            status,
            at: at(minute),
            source: "twilio_status_callback".into(),
            error: None,
        };
        let delivered = sent.observed(1, &event(DeliveryStatus::Delivered, 3)).unwrap();
        assert_eq!(
            delivery_metrics(Channel::Sms, DeliveryStatus::Sent, &delivered),
            [
                (OUTBOUND_DELIVERED, "sms".to_owned(), 1),
                (DELIVERY_LATENCY, "sms".to_owned(), 120_000)
            ]
        );
        // Read after delivered: no second count.
        let read = delivered.observed(1, &event(DeliveryStatus::Read, 4)).unwrap();
        assert!(delivery_metrics(Channel::Sms, DeliveryStatus::Delivered, &read).is_empty());
        let undelivered = sent.observed(1, &event(DeliveryStatus::Undelivered, 5)).unwrap();
        assert_eq!(
            delivery_metrics(Channel::Whatsapp, DeliveryStatus::Sent, &undelivered),
            [(OUTBOUND_FAILED, "whatsapp/unknown".to_owned(), 1)]
        );
        assert!(delivery_metrics(Channel::Whatsapp, DeliveryStatus::Undelivered, &undelivered).is_empty());
    }
}
