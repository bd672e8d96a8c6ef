//! SQS consumer: each message is one interaction (resolved to its customer and written to the
//! timeline once) or an update to one (applied to its entry). Failures are reported per message (`ReportBatchItemFailures`), so SQS
//! redelivers only those, and moves a message that keeps failing to the dead-letter queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use throughline_model::QueueMessage;
use throughline_store::{Applied, Recorded, TimelineStore};

/// Deliveries whose interaction id was already recorded for another customer handle.
pub const DEDUPE_COLLISIONS: &str = "DedupeCollisions";

/// Handles one batch. Never fails as a whole: every message that could not be recorded is
/// listed in `batch_item_failures`, and only those come back.
pub async fn handle(event: SqsEvent, store: &TimelineStore) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in &event.records {
        if let Err(message_id) = process(message, store).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Records one message; on failure returns the id SQS needs to redeliver it.
async fn process(message: &SqsMessage, store: &TimelineStore) -> Result<(), String> {
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
        QueueMessage::Interaction(interaction) => (
            &interaction.id,
            store.record(interaction).await.map(|recorded| match recorded {
                Recorded::New { customer, .. } => ("recorded", Some(customer)),
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
