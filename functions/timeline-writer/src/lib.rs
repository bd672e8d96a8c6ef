//! SQS consumer: each message is one interaction; each is resolved to its customer and written
//! to the timeline once. Failures are reported per message (`ReportBatchItemFailures`), so SQS
//! redelivers only those, and moves a message that keeps failing to the dead-letter queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use throughline_model::Interaction;
use throughline_store::{Recorded, TimelineStore};

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
async fn process(message: &SqsMessage, store: &TimelineStore) -> Result<Recorded, String> {
    let message_id = message.message_id.clone().unwrap_or_default();
    let receive_count = message
        .attributes
        .get("ApproximateReceiveCount")
        .map(String::as_str)
        .unwrap_or("?");
    let interaction = match Interaction::from_json(message.body.as_deref().unwrap_or_default()) {
        Ok(interaction) => interaction,
        Err(error) => {
            // Retrying cannot fix it; SQS moves it to the DLQ after maxReceiveCount receives.
            tracing::error!(%message_id, receive_count, %error, "message is not an interaction");
            return Err(message_id);
        }
    };
    match store.record(&interaction).await {
        Ok(recorded) => {
            let outcome = if matches!(recorded, Recorded::New { .. }) {
                "recorded"
            } else {
                "duplicate"
            };
            tracing::info!(
                %message_id,
                interaction_id = %interaction.id,
                customer_id = %recorded.customer(),
                outcome,
                "interaction processed"
            );
            Ok(recorded)
        }
        Err(error) => {
            tracing::error!(%message_id, interaction_id = %interaction.id, receive_count, %error, "could not record");
            Err(message_id)
        }
    }
}
